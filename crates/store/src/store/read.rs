//! Reads of a queue: one read path ([`MessageStore::get_message`]) with one set of rules
//! (documented there; [`MessageStore::get`] is the same read, starting at the min offset when
//! asked below it), and the queries on a queue's offsets and store times.

use super::{MessageStore, StoreError};
use crate::consume_queue::{ConsumeQueue, QueueError};
use crate::queue_entry::QueueEntry;
use crate::record;
use bytes::Bytes;

/// Reads a queue's entries in windows of [`EntryCursor::WINDOW`] (one read each) for a walk
/// that goes forward one offset at a time.
struct EntryCursor<'q> {
    queue: &'q ConsumeQueue,
    window: Vec<QueueEntry>,
    start: u64,
}

impl<'q> EntryCursor<'q> {
    const WINDOW: usize = 64;

    fn new(queue: &'q ConsumeQueue) -> Self {
        EntryCursor {
            queue,
            window: Vec::new(),
            start: 0,
        }
    }

    /// The entry at `offset` (as [`ConsumeQueue::get`]).
    fn at(&mut self, offset: u64) -> Result<Option<QueueEntry>, QueueError> {
        let inside = offset >= self.start && offset < self.start + self.window.len() as u64;
        if !inside {
            self.window = self.queue.entries(offset, Self::WINDOW)?;
            self.start = offset;
        }
        Ok(self.window.get((offset - self.start) as usize).copied())
    }
}

/// Why a read found what it found (Java's `GetMessageStatus`, spec §1.15); the broker maps it
/// to a pull response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// At least one record.
    Found,
    /// Entries were examined, none passed the tag filter.
    NoMatchedMessage,
    /// The queue is empty (max offset 0).
    NoMessageInQueue,
    /// The offset is below the queue's min offset.
    OffsetTooSmall,
    /// The offset is the max offset: nothing new yet.
    OffsetOverflowOne,
    /// The offset is beyond the max offset.
    OffsetOverflowBadly,
    /// An entry points at commit-log data retention removed.
    MessageWasRemoving,
}

impl GetStatus {
    /// Java's name (a pull response's remark).
    pub fn name(self) -> &'static str {
        match self {
            GetStatus::Found => "FOUND",
            GetStatus::NoMatchedMessage => "NO_MATCHED_MESSAGE",
            GetStatus::NoMessageInQueue => "NO_MESSAGE_IN_QUEUE",
            GetStatus::OffsetTooSmall => "OFFSET_TOO_SMALL",
            GetStatus::OffsetOverflowOne => "OFFSET_OVERFLOW_ONE",
            GetStatus::OffsetOverflowBadly => "OFFSET_OVERFLOW_BADLY",
            GetStatus::MessageWasRemoving => "MESSAGE_WAS_REMOVING",
        }
    }
}

/// A read of one queue (Java's `GetMessageResult`).
#[derive(Debug, Clone)]
pub struct GetMessage {
    /// What the read found.
    pub status: GetStatus,
    /// Where the next read of this queue starts.
    pub next_begin_offset: u64,
    /// The queue's min offset.
    pub min_offset: u64,
    /// The queue's max offset.
    pub max_offset: u64,
    /// The records, each as its exact stored bytes, with its queue offset.
    pub records: Vec<(u64, Bytes)>,
    /// Their total size.
    pub bytes: usize,
}

/// Entries a read examines at most when it skips them (Java: `maxFilterMessageSize` 16000
/// bytes of consume queue = 800 entries), or `max_msgs` when more: a read of a queue whose
/// entries the tag filter mostly skips ends there, and the next one goes on from its
/// `next_begin_offset`.
const MAX_FILTERED_ENTRIES: u64 = 800;

impl MessageStore {
    /// The one read of a queue (Java's `getMessage`, spec §1.15), with one set of rules:
    /// 1. the status rules on the queue's min and max offsets: an unknown or empty queue is
    ///    NO_MESSAGE_IN_QUEUE; an offset below the min is OFFSET_TOO_SMALL, at the max
    ///    OFFSET_OVERFLOW_ONE, past it OFFSET_OVERFLOW_BADLY, each with the offset the next
    ///    read should use (`out_of_range`);
    /// 2. then the entries from `offset` on: pre-blank placeholders are skipped, entries whose
    ///    tags code is not in `tag_codes` (when given) are skipped, and entries pointing at
    ///    commit-log data retention removed are skipped (MESSAGE_WAS_REMOVING when nothing
    ///    else was found);
    /// 3. up to `max_msgs` records and `max_bytes` (the first record always), each its exact
    ///    stored bytes with its queue offset;
    /// 4. at most `max(800, max_msgs)` entries examined (`MAX_FILTERED_ENTRIES`).
    pub fn get_message(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        tag_codes: Option<&[i64]>,
    ) -> Result<GetMessage, StoreError> {
        let min = self.min_offset(topic, queue_id);
        let max = match self.queues.get(topic, queue_id) {
            Some(q) => self.readable_max(q, min, q.max_offset())?,
            None => 0,
        };
        let mut r = GetMessage {
            status: GetStatus::NoMessageInQueue,
            next_begin_offset: 0,
            min_offset: min,
            max_offset: max,
            records: Vec::new(),
            bytes: 0,
        };
        let q = match self.queues.get(topic, queue_id) {
            Some(q) if max > 0 => q,
            _ => return Ok(r),
        };
        if let Some((status, next)) = out_of_range(offset, min, max) {
            r.status = status;
            r.next_begin_offset = next;
            return Ok(r);
        }
        let limit = offset.saturating_add(MAX_FILTERED_ENTRIES.max(max_msgs as u64));
        let mut at = offset;
        let mut removed = false;
        let mut entries = EntryCursor::new(q);
        while at < max && at < limit && r.records.len() < max_msgs {
            let Some(e) = entries.at(at)? else { break };
            let skipped = e.size == QueueEntry::PRE_BLANK.size
                || tag_codes.is_some_and(|codes| !codes.contains(&e.tags_code));
            if skipped {
                at += 1;
                continue;
            }
            if !r.records.is_empty() && r.bytes + e.size as usize > max_bytes {
                break;
            }
            if (e.physical_offset as u64) < self.log.start() {
                removed = true;
                at += 1;
                continue;
            }
            let raw = self.log.read_raw(e.physical_offset as u64, e.size as u32)?;
            r.bytes += raw.len();
            r.records.push((at, raw));
            at += 1;
        }
        r.next_begin_offset = at;
        r.status = if !r.records.is_empty() {
            GetStatus::Found
        } else if removed {
            GetStatus::MessageWasRemoving
        } else {
            GetStatus::NoMatchedMessage
        };
        Ok(r)
    }

    /// A queue's max offset for readers: `max` less the last entries whose records lie past
    /// [`MessageStore::readable_end`] (SYNC_FLUSH puts appended but not yet covered by an
    /// fsync: at most a group's worth, walked back from the end).
    fn readable_max(&self, q: &ConsumeQueue, min: u64, mut max: u64) -> Result<u64, StoreError> {
        let end = self.readable_end();
        if end >= self.log.end() {
            return Ok(max);
        }
        while max > min {
            match q.get(max - 1)? {
                Some(e) if e.physical_offset as u64 >= end => max -= 1,
                _ => break,
            }
        }
        Ok(max)
    }

    /// The commit-log offset reads stop before: the log's end (an ASYNC_FLUSH put is answered
    /// once in the page cache), or under SYNC_FLUSH the end of what an fsync covered.
    pub fn readable_end(&self) -> u64 {
        if self.config.sync_flush {
            self.synced_end
        } else {
            self.log.end()
        }
    }

    /// The records of [`MessageStore::get_message`], without its status, for a reader that
    /// wants whatever the queue still holds: the one difference is that an `offset` below the
    /// queue's min offset reads from the min (where `get_message` answers OFFSET_TOO_SMALL).
    /// Empty where there is nothing to read.
    pub fn get(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        tag_codes: Option<&[i64]>,
    ) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let from = offset.max(self.min_offset(topic, queue_id));
        let read = self.get_message(topic, queue_id, from, max_msgs, max_bytes, tag_codes)?;
        Ok(read.records)
    }

    /// The next queue offset of a queue (0 for a queue never written).
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queues
            .get(topic, queue_id)
            .map_or(0, |q| q.max_offset())
    }

    /// The first queue offset still held.
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queues
            .get(topic, queue_id)
            .map_or(0, |q| q.min_offset())
    }

    /// The queue ids a topic has consume queues for, sorted.
    pub fn queue_ids(&self, topic: &str) -> Vec<i32> {
        self.queues.ids(topic)
    }

    /// Commit-log (start, end) offsets.
    pub fn log_range(&self) -> (u64, u64) {
        (self.log.start(), self.log.end())
    }

    /// The store timestamp of the record at queue offset `offset` (SEARCH_OFFSET_BY_TIMESTAMP,
    /// GET_EARLIEST_MSG_STORETIME and consume stats need it), read from the record's fixed
    /// header alone.
    pub fn store_time(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
    ) -> Result<Option<i64>, StoreError> {
        let Some(q) = self.queues.get(topic, queue_id) else {
            return Ok(None);
        };
        let Some(e) = q.get(offset)? else {
            return Ok(None);
        };
        if e.size == QueueEntry::PRE_BLANK.size {
            return Ok(None);
        }
        // The entry's size bounds the read (`read_raw` checks the record starts with it): a
        // slice of the segment's map, no header read first, no decode.
        let raw = self.log.read_raw(e.physical_offset as u64, e.size as u32)?;
        Ok(Some(
            record::store_timestamp(&raw).map_err(crate::commit_log::LogError::Record)?,
        ))
    }

    /// The first queue offset whose record was stored at or after `timestamp` (binary search
    /// over the queue, store times being non-decreasing along it); the max offset when none
    /// is. SEARCH_OFFSET_BY_TIMESTAMP.
    pub fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp: i64,
    ) -> Result<u64, StoreError> {
        let (mut lo, mut hi) = (
            self.min_offset(topic, queue_id),
            self.max_offset(topic, queue_id),
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.store_time(topic, queue_id, mid)? {
                Some(t) if t < timestamp => lo = mid + 1,
                Some(_) => hi = mid,
                // A pre-blank entry (no record): it precedes every real one.
                None => lo = mid + 1,
            }
        }
        Ok(lo)
    }
}

/// The status of a read at `offset` of a non-empty queue of `[min, max)` that finds nothing
/// because of where `offset` is, with the offset the next read should use: below the min,
/// OFFSET_TOO_SMALL (next: the min); at the max, OFFSET_OVERFLOW_ONE (nothing new yet); past
/// it, OFFSET_OVERFLOW_BADLY (next: the max). `None`: the offset is inside the queue.
fn out_of_range(offset: u64, min: u64, max: u64) -> Option<(GetStatus, u64)> {
    if offset < min {
        Some((GetStatus::OffsetTooSmall, min))
    } else if offset == max {
        Some((GetStatus::OffsetOverflowOne, offset))
    } else if offset > max {
        Some((GetStatus::OffsetOverflowBadly, max))
    } else {
        None
    }
}
