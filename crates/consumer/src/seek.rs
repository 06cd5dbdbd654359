//! Restarting a queue at an offset: lite pull's `seek` and a broker's
//! RESET_CONSUMER_CLIENT_OFFSET (an operator's reset-offset). The queue's pull task applies the
//! seek before its next pull (a held pull is abandoned), drops what it had cached, and the
//! offset to commit follows; each queue's seek count tells lite pull's `poll` which pulled
//! batches predate the last seek.

use crate::state::ConsumerState;
use crate::MessageQueue;
use async_trait::async_trait;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext, RequestProcessor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

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
    fn request(&self, mq: &MessageQueue, offset: i64) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = s.entry(mq.clone()).or_default();
        e.pending = Some(offset);
        e.generation += 1;
    }
}

impl ConsumerState {
    /// The next pull of `mq` starts at `offset`; what was pulled before is dropped.
    pub(crate) fn seek(&self, mq: &MessageQueue, offset: i64) {
        self.seeks.request(mq, offset);
        if let Some(o) = self.owned().get(mq) {
            // Seeking back is allowed: the offset to commit follows the seek.
            o.commit_offset.set(offset);
            o.seek_notify.notify_one();
        }
    }
}

/// Moves owned queues to the offsets a broker's RESET_CONSUMER_CLIENT_OFFSET names (an
/// operator's reset-offset): their pulls restart there, cached messages are dropped. Holds the
/// state weakly (set once it exists): the client's processors outlive no consumer.
pub(crate) struct OnReset(pub(crate) Arc<OnceLock<Weak<ConsumerState>>>);

#[async_trait]
impl RequestProcessor for OnReset {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let Some(state) = self.0.get().and_then(Weak::upgrade) else {
            return Ok(None);
        };
        for (mq, offset) in crate::local_offsets::parse(&req.body) {
            let owned = state.owned().contains_key(&mq);
            if owned {
                tracing::info!(queue = ?mq, offset, "offset reset by the broker");
                state.seek(&mq, offset);
            }
        }
        Ok(None)
    }
}
