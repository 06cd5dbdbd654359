//! The messages of one queue pulled but not yet consumed (Java's `ProcessQueue`): their count
//! and bytes drive flow control, and the smallest offset still in it is what may be committed
//! (nothing is skipped on a crash).

use crate::message::MessageExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One queue's cache.
#[derive(Default)]
pub struct ProcessQueue {
    inner: Mutex<Inner>,
    dropped: AtomicBool,
    name: std::sync::OnceLock<crate::MessageQueue>,
    /// Listener calls running on this queue's messages.
    consuming: AtomicUsize,
    /// Orderly consumption: the broker's lock on this queue is ours.
    locked: AtomicBool,
    /// Orderly consumption: held while the listener runs on this queue (Java's `consumeLock`);
    /// a rebalance gives the queue away, and unlocks it on the broker, only once it can take it.
    consume_lock: tokio::sync::Mutex<()>,
}

/// Counts a listener call on a queue while it runs.
pub struct Consuming<'a>(&'a AtomicUsize);

impl Drop for Consuming<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Inner {
    msgs: BTreeMap<i64, usize>,
    bytes: usize,
    max_offset: i64,
}

impl ProcessQueue {
    /// Adds pulled messages.
    pub fn put(&self, msgs: &[MessageExt]) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for m in msgs {
            if g.msgs.insert(m.queue_offset, m.body.len()).is_none() {
                g.bytes += m.body.len();
            }
            g.max_offset = g.max_offset.max(m.queue_offset);
        }
    }

    /// Removes consumed messages; returns the offset to commit: the smallest still cached, or
    /// one past the largest ever cached when empty.
    pub fn remove(&self, offsets: &[i64]) -> i64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for o in offsets {
            if let Some(len) = g.msgs.remove(o) {
                g.bytes -= len;
            }
        }
        match g.msgs.keys().next() {
            Some(first) => *first,
            None => g.max_offset + 1,
        }
    }

    /// Forgets every cached message (a seek).
    pub fn clear(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.msgs.clear();
        g.bytes = 0;
        // A batch still finishing from before the seek must not move the offset past it.
        g.max_offset = -1;
    }

    /// (messages, body bytes) cached.
    pub fn size(&self) -> (usize, usize) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (g.msgs.len(), g.bytes)
    }

    /// Rebalance gave the queue away: its pulls stop, its results are not committed.
    pub fn drop_queue(&self) {
        self.dropped.store(true, Ordering::SeqCst);
    }

    /// Starts a listener call unless the queue was given away: the guard ends it.
    pub fn begin_consume(&self) -> Option<Consuming<'_>> {
        self.consuming.fetch_add(1, Ordering::SeqCst);
        if self.is_dropped() {
            self.consuming.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Consuming(&self.consuming))
    }

    /// Orderly: records whether the broker's lock on the queue is held.
    pub fn set_locked(&self, locked: bool) {
        self.locked.store(locked, Ordering::SeqCst);
    }

    /// Orderly: is the broker's lock held?
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::SeqCst)
    }

    /// Orderly: the consume lock, held while the listener runs on this queue.
    pub async fn lock_consume(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.consume_lock.lock().await
    }

    /// Orderly: the consume lock if it comes free within `wait` (no listener call running on
    /// this queue then, and none starts while it is held).
    pub async fn try_lock_consume(
        &self,
        wait: std::time::Duration,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        tokio::time::timeout(wait, self.consume_lock.lock())
            .await
            .ok()
    }

    /// Listener calls running now.
    pub fn consuming(&self) -> usize {
        self.consuming.load(Ordering::SeqCst)
    }

    /// A cache that remembers its queue (for the final commit).
    pub fn named(mq: crate::MessageQueue) -> ProcessQueue {
        let pq = ProcessQueue::default();
        pq.set_name(mq);
        pq
    }

    /// Names the queue this cache belongs to (once).
    pub fn set_name(&self, mq: crate::MessageQueue) {
        let _ = self.name.set(mq);
    }

    /// The queue, if named.
    pub fn name(&self) -> Option<crate::MessageQueue> {
        self.name.get().cloned()
    }

    /// Given away?
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: i64) -> MessageExt {
        MessageExt {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: 0,
            queue_offset: offset,
            commit_log_offset: 0,
            body: bytes::Bytes::from_static(b"12345"),
            properties: vec![],
            flag: 0,
            reconsume_times: 0,
            born_timestamp: 0,
            store_timestamp: 0,
            offset_msg_id: String::new(),
            sys_flag: 0,
        }
    }

    #[test]
    fn the_commit_offset_never_passes_a_message_in_flight() {
        let q = ProcessQueue::default();
        q.put(&[msg(10), msg(11), msg(12)]);
        assert_eq!(q.size(), (3, 15));
        assert_eq!(q.remove(&[11]), 10, "10 is still in flight");
        assert_eq!(q.remove(&[10]), 12);
        assert_eq!(q.remove(&[12]), 13);
        assert_eq!(q.size(), (0, 0));
    }
}
