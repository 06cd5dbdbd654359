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
use std::sync::{Arc, OnceLock, Weak};

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
