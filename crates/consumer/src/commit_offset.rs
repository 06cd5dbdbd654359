//! [`CommitOffset`]: each owned queue's offset to commit. A plain value kept apart from
//! `offset_store` (which reads and commits offsets through `ConsumerState`) because
//! `ConsumerState` holds one per owned queue: here it depends on nothing, so `state` does not
//! depend back on the modules that work on the state.

use std::sync::atomic::{AtomicI64, Ordering};

/// One queue's offset to commit: the first offset not yet consumed (the smallest one still in
/// flight, or one past the last consumed), so a crash never skips a message. Unknown (-1) until
/// the queue's start offset is read.
#[derive(Debug)]
pub(crate) struct CommitOffset(AtomicI64);

impl CommitOffset {
    /// Not known yet.
    pub(crate) fn unknown() -> CommitOffset {
        CommitOffset(AtomicI64::new(-1))
    }

    /// Moves forward to `offset`, never back (consumption finished, the start offset read).
    pub(crate) fn advance(&self, offset: i64) {
        self.0.fetch_max(offset, Ordering::SeqCst);
    }

    /// Moves to `offset`, back or forward (a seek, an offset reset, PULL_OFFSET_MOVED).
    pub(crate) fn set(&self, offset: i64) {
        self.0.store(offset, Ordering::SeqCst);
    }

    /// The offset, -1 while unknown.
    pub(crate) fn raw(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// The offset, once known.
    pub(crate) fn known(&self) -> Option<i64> {
        let o = self.raw();
        (o >= 0).then_some(o)
    }
}
