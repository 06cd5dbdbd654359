//! Concurrent consumption (Java's ConsumeMessageConcurrentlyService): each pulled batch of
//! `consume_batch_max_size` messages runs on its own task once one of `consume_concurrency`
//! slots is free; a failed batch is given back (CONSUMER_SEND_MSG_BACK), and what the broker
//! does not take is consumed again locally. The queue's offset to commit moves to the smallest
//! message still in flight.

use crate::broker_requests;
use crate::commit_offset::CommitOffset;
use crate::listener::ConsumeResult;
use crate::message::MessageExt;
use crate::process_queue::ProcessQueue;
use crate::state::{ConsumerState, RPC_TIMEOUT};
use std::sync::Arc;
use std::time::Duration;

/// How long a message the broker would not take back waits before it is consumed again
/// locally (Java's `submitConsumeRequestLater`).
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Runs the listener on a batch when a consumption slot is free; a failed batch is given back
/// (the messages the broker cannot take are consumed again locally 5 s later, as Java's
/// `submitConsumeRequestLater`, and stay in the cache until then); then the messages done with
/// leave the cache and the offset to commit moves to the smallest message still in flight.
pub(crate) fn submit(
    state: Arc<ConsumerState>,
    pq: Arc<ProcessQueue>,
    commit_offset: Arc<CommitOffset>,
    batch: Vec<MessageExt>,
) {
    tokio::spawn(consume(state, pq, commit_offset, batch));
}

async fn consume(
    state: Arc<ConsumerState>,
    pq: Arc<ProcessQueue>,
    commit_offset: Arc<CommitOffset>,
    mut batch: Vec<MessageExt>,
) {
    let Ok(_slot) = state.consume_slots.clone().acquire_owned().await else {
        return;
    };
    let Some(_consuming) = pq.begin_consume() else {
        return;
    };
    crate::message::restore_retry_topics(&mut batch, &state.retry_topic());
    let Some(listener) = state.delivery.listener() else {
        return;
    };
    let msgs = batch.clone();
    // A panicking listener fails its batch, never the consumer.
    let result = tokio::spawn(async move { listener.consume(msgs).await })
        .await
        .unwrap_or(ConsumeResult::ReconsumeLater);
    if result != ConsumeResult::Success && state.config.broadcasting {
        tracing::warn!(
            msgs = batch.len(),
            "broadcasting: a failed message is not retried"
        );
    } else if result != ConsumeResult::Success {
        let local = give_back(&state, &batch).await;
        if !local.is_empty() {
            // Those given back are done with (below); the others stay in the cache until
            // consumed: the offset to commit waits for them.
            batch.retain(|m| !local.iter().any(|l| l.queue_offset == m.queue_offset));
            retry_locally(state.clone(), pq.clone(), commit_offset.clone(), local);
        }
    }
    let offsets: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
    let next = pq.remove(&offsets);
    // Before the consuming guard drops: a queue being given away waits for this.
    commit_offset.advance(next);
}

/// Gives a failed batch back to the broker; returns the messages it did not take.
async fn give_back(state: &ConsumerState, batch: &[MessageExt]) -> Vec<MessageExt> {
    let mut local = Vec::new();
    for m in batch {
        if !state.send_back(m).await {
            local.push(m.clone());
        }
    }
    local
}

/// Consumes `local` again after [`LOCAL_RETRY_DELAY`], with reconsumeTimes + 1.
fn retry_locally(
    state: Arc<ConsumerState>,
    pq: Arc<ProcessQueue>,
    commit_offset: Arc<CommitOffset>,
    mut local: Vec<MessageExt>,
) {
    tokio::spawn(async move {
        tokio::time::sleep(LOCAL_RETRY_DELAY).await;
        for m in &mut local {
            m.reconsume_times += 1;
        }
        submit(state, pq, commit_offset, local);
    });
}

impl ConsumerState {
    /// Gives a message back for redelivery; `false` if the broker refused or was unreachable.
    async fn send_back(&self, m: &MessageExt) -> bool {
        let Some(addr) = self.master_of(&m.broker_name) else {
            return false;
        };
        let req = broker_requests::consumer_send_msg_back(
            &self.config.group,
            m,
            self.config.max_reconsume_times,
        );
        matches!(self.client.invoke_sync(&addr, req, RPC_TIMEOUT).await, Ok(r) if r.code == 0)
    }
}
