//! Dispatch: a record in the commit log becomes its consume-queue entry and its key-index
//! entries. A put dispatches in the same call; recovery re-dispatches from the checkpoint's
//! dispatch mark; a dispatch that failed (a full disk) is retried before the next put or sync.

use super::{MessageStore, StoreConfig, StoreError, SCHEDULE_TOPIC};
use crate::index;
use crate::queue_entry::{tags_code, QueueEntry};
use crate::record::{self, Record};

/// A record in the commit log whose consume-queue entry or index keys failed to be written.
pub(super) struct Undispatched {
    pub(super) record: Box<Record>,
    pub(super) offset: u64,
    pub(super) size: u32,
    /// The queue entry is written (only the index is left).
    pub(super) queued: bool,
}

impl MessageStore {
    /// Dispatches the record appended last if a failure (a full disk...) left it undispatched:
    /// until that succeeds no other put is taken, since the next one would get the same queue
    /// offset. Each step runs once: the queue entry (idempotent anyway), then the index.
    pub(super) fn finish_dispatch(&mut self) -> Result<(), StoreError> {
        let Some(mut u) = self.undispatched.take() else {
            return Ok(());
        };
        let props = record::DispatchProperties::of(&u.record.properties);
        let result = (|| {
            if !u.queued {
                self.dispatch_queue(&u.record, &props, u.offset, u.size)?;
                u.queued = true;
            }
            self.dispatch_index(&u.record, &props, u.offset)
        })();
        if result.is_err() {
            self.undispatched = Some(u);
        }
        result
    }

    pub(super) fn dispatch_index(
        &mut self,
        r: &Record,
        props: &record::DispatchProperties<'_>,
        physical_offset: u64,
    ) -> Result<(), StoreError> {
        if let Some(ix) = &mut self.indexes {
            ix.put_hashes(
                index::raw_keys(r.sys_flag, props.uniq_key, props.keys)
                    .map(|k| index::topic_key_hash(&r.topic, k)),
                physical_offset as i64,
                r.store_timestamp,
            )?;
        }
        Ok(())
    }

    fn dispatch_queue(
        &mut self,
        r: &Record,
        props: &record::DispatchProperties<'_>,
        physical_offset: u64,
        size: u32,
    ) -> Result<(), StoreError> {
        let entry = queue_entry(&self.config, r, props, physical_offset, size);
        let q = self.queue(&r.topic, r.queue_id)?;
        q.put(r.queue_offset.max(0) as u64, entry)?;
        Ok(())
    }
}

/// The consume-queue entry of a record: its tag hash code, or for a delayed record in
/// SCHEDULE_TOPIC_XXXX its delivery time (spec §1.5): store time plus its level's delay
/// (`DELAY` clamped to the table, as Java's `computeDeliverTimestamp`).
pub(super) fn queue_entry(
    config: &StoreConfig,
    r: &Record,
    props: &record::DispatchProperties<'_>,
    physical_offset: u64,
    size: u32,
) -> QueueEntry {
    let tags_code = if r.topic == SCHEDULE_TOPIC {
        let levels = &config.delay_levels_ms;
        let level = props
            .delay
            .and_then(|d| d.parse::<usize>().ok())
            .unwrap_or(0)
            .min(levels.len());
        match level {
            0 => r.store_timestamp,
            l => r.store_timestamp + levels[l - 1],
        }
    } else {
        tags_code(props.tags)
    };
    QueueEntry {
        physical_offset: physical_offset as i64,
        size: size as i32,
        tags_code,
    }
}
