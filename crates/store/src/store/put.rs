//! Puts: a record appended to the commit log, then dispatched to its consume queue and the key
//! index (see [`super::dispatch`]). Under SYNC_FLUSH, [`MessageStore::put`] returns after the
//! fsync that covers the record ([`MessageStore::sync_log`], the durability point).

use super::dispatch::{queue_entry, Undispatched};
use super::queues::open_queue;
use super::{now_ms, MessageStore, StoreError};
use crate::record::{self, Record};

/// What a put stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    /// Commit-log offset of the record.
    pub physical_offset: u64,
    /// Its size.
    pub size: u32,
    /// Its consume-queue offset.
    pub queue_offset: u64,
    /// The tags code its queue entry got (what pull filters compare; for a delayed record its
    /// delivery time): what held pulls are woken by.
    pub tags_code: i64,
}

impl MessageStore {
    /// Stores `record` in its topic queue: the queue offset is assigned here (the next one of
    /// that queue), the physical offset by the commit log. With `sync_flush`, returns after the
    /// fsync that covers it; without, after the record is in the page cache (a process crash
    /// loses no put it returned).
    pub fn put(&mut self, record: Record) -> Result<PutResult, StoreError> {
        let put = self.put_unflushed(record)?;
        if self.config.sync_flush {
            self.sync_log()?;
        } else {
            self.write_out_log()?;
        }
        Ok(put)
    }

    /// [`MessageStore::put`] without SYNC_FLUSH's fsync, for a caller that commits a group of
    /// puts with one [`MessageStore::sync_log`] before acknowledging any of them (the store
    /// thread's group commit).
    pub fn put_unflushed(&mut self, mut record: Record) -> Result<PutResult, StoreError> {
        if let Some(why) = &self.write_failure {
            return Err(StoreError::FlushFailed(why.clone()));
        }
        if let Some(used) = self.disk_full {
            return Err(StoreError::DiskFull(used));
        }
        self.finish_dispatch()?;
        // One lookup of the queue serves the offset and the entry.
        let q = open_queue(
            &mut self.queues,
            &self.config,
            &record.topic,
            record.queue_id,
        )?;
        let queue_offset = q.max_offset();
        record.queue_offset = queue_offset as i64;
        if self.config.stamp_store_time {
            // Stamped here, in log order (Java stamps inside its put lock), never going back:
            // the times along a queue and the log are sorted, which the checkpoint's recovery
            // rule and SEARCH_OFFSET_BY_TIMESTAMP's binary search rely on.
            record.store_timestamp = now_ms().max(self.last_store_time);
        }
        self.last_store_time = record.store_timestamp;
        let appended = self.log.append_mut(&mut record)?;
        // The record is in the log: the put succeeded (as in Java, where dispatch runs behind
        // the append). A dispatch failure is retried by the next put or flush, and refuses
        // puts until it succeeds.
        let props = record::DispatchProperties::of(&record.properties);
        let entry = queue_entry(
            &self.config,
            &record,
            &props,
            appended.offset,
            appended.size,
        );
        let tags_code = entry.tags_code;
        let failed = match q.put(queue_offset, entry) {
            Err(e) => Some((false, StoreError::from(e))),
            Ok(()) => self
                .dispatch_index(&record, &props, appended.offset)
                .err()
                .map(|e| (true, e)),
        };
        if let Some((queued, e)) = failed {
            tracing::warn!(error = %e, offset = appended.offset, "dispatch failed; retried on the next put or flush");
            self.undispatched = Some(Undispatched {
                record: Box::new(record),
                offset: appended.offset,
                size: appended.size,
                queued,
            });
        }
        Ok(PutResult {
            physical_offset: appended.offset,
            size: appended.size,
            queue_offset,
            tags_code,
        })
    }
}
