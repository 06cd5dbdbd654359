//! Recovery of the consume queues at open, from the commit log (Java's reput, with one rule
//! Java lacks): each queue is trusted up to the **dispatch mark**, the commit-log offset below
//! which every record's queue entry was durable when the checkpoint was written, and rebuilt
//! from the log from there.
//!
//! Why a mark and not "where the queues got to": every queue holds entries in memory and
//! writes them at its own moments, so after a crash one queue can end far past records whose
//! entries another queue lost. Re-dispatching from the furthest queue's end left those lost
//! entries behind as placeholders that pulls skip: acknowledged messages silently gone.
//!
//! Each queue is cut at its last entry that points before the mark (checked against the log
//! after a crash: an entry a power loss tore is not trusted), then every record from the mark
//! to the log's end is written back to its queue at its own queue offset. Entries already
//! right are kept; a gap (which the mark leaves none of) is padded and reported.

use super::{MessageStore, StoreError};
use crate::consume_queue::{ConsumeQueue, Restored};
use crate::queue_entry::QueueEntry;
use crate::record;

/// Where the rebuild of the queues starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RebuildFrom {
    /// The checkpoint's dispatch mark, or Java's walk start after a crash. `verify`: check
    /// the last trusted entry of each queue against the log (after a crash: an unsynced
    /// entry can be torn).
    Mark { offset: u64, verify: bool },
    /// A clean stop without a mark (a store Java or an older rmq wrote): every queue was
    /// flushed whole, so the furthest end any queue reached is where dispatch got.
    QueuesEnd,
}

/// Entries read per step of the backward scan for a queue's trusted end: the first step reads
/// a few (after a clean stop the last entry is the trusted one, and a store of thousands of
/// queues opens reading a few entries of each), each next step twice as many, up to the last.
const SCAN_FIRST: u64 = 8;
const SCAN_WINDOW: u64 = 1024;

impl MessageStore {
    /// Opens every consume queue on disk, cuts each at its trusted end, forgets entries whose
    /// records retention deleted, and writes every record from the mark on back to its queue
    /// (and to the key index where it lags). Returns where the rebuild started: every queue
    /// holds its entries before it on disk.
    pub(super) fn recover_queues(&mut self, from: RebuildFrom) -> Result<u64, StoreError> {
        self.load_queues()?;
        // Where the furthest queue ends: with no queue at all (an operator deleted
        // `consumequeue/` to have it rebuilt, as with Java), everything is rebuilt.
        let mut queues_end = None;
        for q in self.queues.values() {
            queues_end = queues_end.max(q.last_end()?);
        }
        let queues_end = queues_end.unwrap_or(0);
        let (mark, verify) = match from {
            // Never past the furthest queue: entries the mark vouches for can have gone with
            // a deleted queue directory.
            RebuildFrom::Mark { offset, verify } => (offset.min(queues_end), verify),
            RebuildFrom::QueuesEnd => (queues_end, false),
        };
        let mark = mark.clamp(self.log.start(), self.log.end());
        let log = &self.log;
        let mut cut = 0u64;
        for (topic, queue_id, q) in self.queues.iter_mut() {
            let trusted = trusted_end(q, topic, queue_id, log, mark, verify)?;
            if trusted < q.max_offset() {
                cut += q.max_offset() - trusted;
                q.set_end(trusted)?;
            }
            q.drop_before_physical(log.start())?;
        }
        if cut > 0 {
            tracing::info!(
                entries = cut,
                from = mark,
                "consume-queue entries past the dispatch mark are rebuilt from the commit log"
            );
        }
        self.rebuild(mark)?;
        Ok(mark)
    }

    /// Opens every consume queue on disk.
    fn load_queues(&mut self) -> Result<(), StoreError> {
        let base = self.config.root.join("consumequeue");
        let Ok(topics) = std::fs::read_dir(&base) else {
            return Ok(());
        };
        for topic in topics.flatten() {
            let Some(name) = topic.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(ids) = std::fs::read_dir(topic.path()) else {
                continue;
            };
            for id in ids.flatten() {
                let Some(queue_id) = id.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                let q = ConsumeQueue::open(&id.path(), self.config.consume_queue_file_size)?;
                self.queues.insert(name.clone(), queue_id, q);
            }
        }
        Ok(())
    }

    /// Writes every record from `mark` to the log's end back to its queue, and indexes the
    /// records the key index lacks (its headers count only synced entries; a store without
    /// index files starts indexing with new records, not the whole log).
    fn rebuild(&mut self, mark: u64) -> Result<(), StoreError> {
        // Records at or below `indexed` are in the index; `index_scan` is a record start at
        // or before the first one that is not.
        let (index_scan, indexed) = match &self.indexes {
            Some(ix) if !ix.is_empty() => {
                let end = ix.end_phy();
                (end.max(0) as u64, end)
            }
            // Index on but no index file (a Java broker that ran with messageIndexEnable=false,
            // or its index files deleted): every record is indexed, once, at this open.
            Some(_) => (self.log.start(), self.log.start() as i64 - 1),
            None => (mark, mark as i64 - 1),
        };
        let mut gaps = 0u64;
        let mut at = mark.min(index_scan).max(self.log.start());
        while at < self.log.end() {
            match self.log.read(at)? {
                None => at = self.log.roll_offset(at),
                Some(r) => {
                    let size = r.encoded_len() as u64;
                    let props = record::DispatchProperties::of(&r.properties);
                    if at >= mark {
                        let entry =
                            super::dispatch::queue_entry(&self.config, &r, &props, at, size as u32);
                        let q = self.queue(&r.topic, r.queue_id)?;
                        if let Restored::Gap(n) = q.restore(r.queue_offset.max(0) as u64, entry)? {
                            gaps += n;
                            tracing::error!(
                                topic = %r.topic,
                                queue_id = r.queue_id,
                                queue_offset = r.queue_offset,
                                missing = n,
                                "records before this one are not in the commit log: their queue offsets are padded"
                            );
                        }
                    }
                    if at as i64 > indexed {
                        self.dispatch_index(&r, &props, at)?;
                    }
                    at += size;
                }
            }
        }
        if gaps > 0 {
            tracing::error!(offsets = gaps, "consume queues rebuilt with padded gaps");
        }
        Ok(())
    }
}

/// The queue offset up to which `q` is trusted: one past its last entry that points before
/// `mark` (records before the mark had their entries synced when the mark was written), or a
/// Java pre-blank. With `verify`, that entry must also match the record it points at (topic,
/// queue id, queue offset, size): a power loss can leave an unsynced entry torn into one that
/// looks valid. Entries pointing into segments retention deleted cannot be checked and are
/// trusted (they were synced long ago).
fn trusted_end(
    q: &ConsumeQueue,
    topic: &str,
    queue_id: i32,
    log: &crate::commit_log::CommitLog,
    mark: u64,
    verify: bool,
) -> Result<u64, StoreError> {
    let min = q.min_offset();
    let mut end = q.max_offset();
    let mut step = SCAN_FIRST;
    while end > min {
        let from = end.saturating_sub(step).max(min);
        step = (step * 2).min(SCAN_WINDOW);
        let window = q.entries(from, (end - from) as usize)?;
        for (i, e) in window.iter().enumerate().rev() {
            let offset = from + i as u64;
            if is_trusted(e, offset, topic, queue_id, log, mark, verify) {
                return Ok(offset + 1);
            }
        }
        end = from;
    }
    Ok(min)
}

fn is_trusted(
    e: &QueueEntry,
    offset: u64,
    topic: &str,
    queue_id: i32,
    log: &crate::commit_log::CommitLog,
    mark: u64,
    verify: bool,
) -> bool {
    if *e == QueueEntry::PRE_BLANK {
        return true;
    }
    if !e.is_valid() || e.physical_offset as u64 >= mark {
        return false;
    }
    if !verify || (e.physical_offset as u64) < log.start() {
        return true;
    }
    match log.read(e.physical_offset as u64) {
        Ok(Some(r)) => {
            r.topic == topic
                && r.queue_id == queue_id
                && r.queue_offset == offset as i64
                && r.encoded_len() as i64 == i64::from(e.size)
        }
        _ => false,
    }
}
