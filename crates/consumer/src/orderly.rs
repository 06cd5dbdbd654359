//! Orderly consumption (`ConsumerConfig::orderly`, Java's ConsumeMessageOrderlyService): a
//! queue is consumed only while its broker's lock is ours (LOCK_BATCH_MQ, renewed every
//! `lock_interval`), by one task per queue, one batch at a time in offset order. A suspended
//! batch is offered again; nothing after it runs meanwhile.

use crate::commit_offset::CommitOffset;
use crate::listener::ConsumeResult;
use crate::message::MessageExt;
use crate::process_queue::ProcessQueue;
use crate::state::{ConsumerState, RPC_TIMEOUT};
use crate::{broker_requests, MessageQueue};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Pulled batches go to the queue's consumption task in order.
pub(crate) type OrderlyTx = mpsc::UnboundedSender<Vec<MessageExt>>;

impl ConsumerState {
    /// LOCK_BATCH_MQ for `queues`: the ones now ours.
    pub(crate) async fn lock(&self, queues: &[MessageQueue]) -> Vec<MessageQueue> {
        let mut granted = Vec::new();
        for (addr, req) in self.lock_requests(request::LOCK_BATCH_MQ, queues) {
            let Ok(r) = self.client.invoke_sync(&addr, req, RPC_TIMEOUT).await else {
                continue;
            };
            if r.code != 0 {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if let Ok(ok) = serde_json::from_value::<Vec<MessageQueue>>(v["lockOKMQSet"].clone()) {
                granted.extend(ok);
            }
        }
        granted
    }

    /// UNLOCK_BATCH_MQ (oneway when a rebalance gives queues away, sync at shutdown).
    pub(crate) async fn unlock(&self, queues: &[MessageQueue], oneway: bool) {
        for (addr, req) in self.lock_requests(request::UNLOCK_BATCH_MQ, queues) {
            let _ = if oneway {
                self.client.invoke_oneway(&addr, req, RPC_TIMEOUT).await
            } else {
                self.client
                    .invoke_sync(&addr, req, RPC_TIMEOUT)
                    .await
                    .map(|_| ())
            };
        }
    }

    /// One LOCK/UNLOCK_BATCH_MQ request (`code`) per broker group of `queues`, with its
    /// master's address (groups without a known master are skipped).
    fn lock_requests(&self, code: i32, queues: &[MessageQueue]) -> Vec<(String, RemotingCommand)> {
        let mut by_broker: BTreeMap<&str, Vec<&MessageQueue>> = BTreeMap::new();
        for q in queues {
            by_broker.entry(&q.broker_name).or_default().push(q);
        }
        by_broker
            .into_iter()
            .filter_map(|(broker, mqs)| {
                let addr = self.master_of(broker)?;
                let req =
                    broker_requests::lock_batch(code, &self.client_id, &self.config.group, &mqs);
                Some((addr, req))
            })
            .collect()
    }

    /// Renews the locks of every owned queue; a queue not granted stops until relocked.
    pub(crate) async fn lock_all(&self) {
        let owned: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .owned()
            .iter()
            .map(|(k, v)| (k.clone(), v.pq.clone()))
            .collect();
        let queues: Vec<MessageQueue> = owned.iter().map(|(k, _)| k.clone()).collect();
        let granted = self.lock(&queues).await;
        for (mq, pq) in owned {
            pq.set_locked(granted.contains(&mq));
        }
    }
}

/// One queue's consumption task: its pulled messages, one batch at a time, in offset order.
/// A batch the listener suspends is offered again after `suspend_current_queue_time` with
/// reconsumeTimes + 1, and nothing after it runs meanwhile; while the broker's lock is not
/// ours, nothing runs.
pub(crate) async fn consume_in_order(
    state: Arc<ConsumerState>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
    commit_offset: Arc<CommitOffset>,
    mut rx: mpsc::UnboundedReceiver<Vec<MessageExt>>,
) {
    let retry_topic = state.retry_topic();
    while let Some(pulled) = rx.recv().await {
        for chunk in pulled.chunks(state.config.consume_batch_max_size) {
            let mut batch = chunk.to_vec();
            crate::message::restore_retry_topics(&mut batch, &retry_topic);
            let queue = OrderlyQueue {
                state: &state,
                mq: &mq,
                pq: &pq,
                commit_offset: &commit_offset,
            };
            if !queue.consume_until_done(batch).await {
                return;
            }
        }
    }
}

/// One orderly queue, as its consumption task sees it.
struct OrderlyQueue<'a> {
    state: &'a Arc<ConsumerState>,
    mq: &'a MessageQueue,
    pq: &'a Arc<ProcessQueue>,
    commit_offset: &'a CommitOffset,
}

impl OrderlyQueue<'_> {
    /// Offers `batch` to the listener until it succeeds (relocking the queue when its lock
    /// was lost, pausing after each suspension); `false` when the task ends instead (the
    /// consumer stops, the queue was given away).
    async fn consume_until_done(&self, mut batch: Vec<MessageExt>) -> bool {
        let (state, pq) = (self.state, self.pq);
        loop {
            if state.is_stopping() || pq.is_dropped() {
                return false;
            }
            if !pq.is_locked() {
                if state
                    .lock(std::slice::from_ref(self.mq))
                    .await
                    .contains(self.mq)
                {
                    pq.set_locked(true);
                } else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
            let Ok(_slot) = state.consume_slots.clone().acquire_owned().await else {
                return false;
            };
            // Held while the listener runs: a rebalance that gives the queue away waits
            // for it before unlocking the queue on the broker.
            let held = pq.lock_consume().await;
            let Some(consuming) = pq.begin_consume() else {
                return false;
            };
            let Some(listener) = state.delivery.listener() else {
                return false;
            };
            let msgs = batch.clone();
            let result = tokio::spawn(async move { listener.consume(msgs).await })
                .await
                .unwrap_or(ConsumeResult::SuspendCurrentQueueAMoment);
            if result == ConsumeResult::Success {
                let offsets: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
                self.commit_offset.advance(pq.remove(&offsets));
                return true;
            }
            for m in batch.iter_mut() {
                m.reconsume_times += 1;
            }
            drop(consuming);
            drop(held);
            tokio::time::sleep(state.config.suspend_current_queue_time).await;
        }
    }
}
