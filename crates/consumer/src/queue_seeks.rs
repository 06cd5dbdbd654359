//! [`Seeks`]: every queue's pending seek and seek count. A plain table kept apart from `seek`
//! (which applies seeks through `ConsumerState`) because `ConsumerState` holds it: here it
//! depends on nothing but the queue type, so `state` does not depend back on `seek`.

use crate::MessageQueue;
use std::collections::HashMap;
use std::sync::Mutex;

/// A queue's pending seek and how many seeks it has seen.
#[derive(Default, Clone, Copy)]
struct QueueSeek {
    /// Where the next pull starts, not yet applied by the pull task.
    pending: Option<i64>,
    /// Seeks so far (the generation of what is pulled now).
    generation: u64,
}

/// The seeks of every queue.
#[derive(Default)]
pub(crate) struct Seeks(Mutex<HashMap<MessageQueue, QueueSeek>>);

impl Seeks {
    /// A seek waiting for `mq`'s pull task, taken.
    pub(crate) fn take(&self, mq: &MessageQueue) -> Option<i64> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.get_mut(mq)?.pending.take().filter(|o| *o >= 0)
    }

    /// How many seeks `mq` has seen.
    pub(crate) fn generation(&self, mq: &MessageQueue) -> u64 {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.get(mq).map_or(0, |e| e.generation)
    }

    /// Records a seek of `mq` to `offset`.
    pub(crate) fn request(&self, mq: &MessageQueue, offset: i64) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = s.entry(mq.clone()).or_default();
        e.pending = Some(offset);
        e.generation += 1;
    }
}
