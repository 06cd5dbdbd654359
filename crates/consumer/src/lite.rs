//! The lite pull consumer (Java's DefaultLitePullConsumer, spec §4.12): the application asks
//! for messages (`poll`, or a `Stream`), instead of a listener being called. Subscribed topics
//! are rebalanced as for the push consumer; assigned queues are not. Pulls are
//! LITE_PULL_MESSAGE (sysFlag SUSPEND|SUBSCRIPTION|LITE, 20 s suspend) into a bounded buffer:
//! when the application stops polling, pulling stops (nothing is dropped).
//!
//! As Java's with `autoCommit` on: `poll` moves the offset to commit past what it returns,
//! and the offsets are committed every 5 s, by `commit()` at once, and at shutdown.

use crate::config::{ConsumerConfig, ConsumerError};
use crate::push::PushConsumer;
use crate::state::{ConsumerState, Delivery, LiteBatch};
use crate::{MessageExt, MessageQueue};
use futures_util::Stream;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

/// Pulled batches buffered before pulling pauses.
const BUFFERED_BATCHES: usize = 64;

/// A running lite pull consumer.
pub struct LitePullConsumer {
    consumer: PushConsumer,
    rx: Mutex<mpsc::Receiver<LiteBatch>>,
}

impl LitePullConsumer {
    /// Subscribes `topics` (topic, tag expression) as `config.group`; queues are rebalanced.
    pub async fn subscribe(
        mut config: ConsumerConfig,
        topics: &[(&str, &str)],
    ) -> Result<LitePullConsumer, ConsumerError> {
        config.suspend_timeout = Duration::from_secs(20);
        let (tx, rx) = mpsc::channel(BUFFERED_BATCHES);
        let consumer =
            PushConsumer::start_with(config, topics, Delivery::Poll { tx, assigned: None }).await?;
        Ok(LitePullConsumer {
            consumer,
            rx: Mutex::new(rx),
        })
    }

    /// Consumes exactly `queues` (no rebalance), every message of them (`*`).
    pub async fn assign(
        mut config: ConsumerConfig,
        queues: Vec<MessageQueue>,
    ) -> Result<LitePullConsumer, ConsumerError> {
        config.suspend_timeout = Duration::from_secs(20);
        let mut topics: Vec<String> = queues.iter().map(|q| q.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let subs: Vec<(&str, &str)> = topics.iter().map(|t| (t.as_str(), "*")).collect();
        let (tx, rx) = mpsc::channel(BUFFERED_BATCHES);
        let consumer = PushConsumer::start_with(
            config,
            &subs,
            Delivery::Poll {
                tx,
                assigned: Some(queues),
            },
        )
        .await?;
        Ok(LitePullConsumer {
            consumer,
            rx: Mutex::new(rx),
        })
    }

    /// The next pulled messages, waiting up to `timeout` (empty when none arrived).
    pub async fn poll(&self, timeout: Duration) -> Vec<MessageExt> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.rx.lock().await;
        loop {
            let Ok(Some((mq, generation, msgs))) =
                tokio::time::timeout_at(deadline, rx.recv()).await
            else {
                return Vec::new();
            };
            let state = self.consumer.state();
            if generation != state.seeks.generation(&mq) {
                // Pulled before a seek of its queue.
                continue;
            }
            let offsets: Vec<i64> = msgs.iter().map(|m| m.queue_offset).collect();
            state.mark_polled(&mq, &offsets);
            return msgs;
        }
    }

    /// The messages as a stream (each `poll` waits up to a second; the stream never ends by
    /// itself: drop it, then `shutdown`).
    pub fn stream(&self) -> impl Stream<Item = MessageExt> + '_ {
        futures_util::stream::unfold(Vec::<MessageExt>::new(), move |mut buf| async move {
            loop {
                if let Some(m) = buf.pop() {
                    return Some((m, buf));
                }
                buf = self.poll(Duration::from_secs(1)).await;
                buf.reverse();
            }
        })
    }

    /// The next pull of `mq` starts at `offset`; messages pulled before are not returned.
    pub fn seek(&self, mq: &MessageQueue, offset: i64) {
        self.consumer.state().seek(mq, offset);
    }

    /// Commits the consumed offsets now (they are also committed every 5 s).
    pub async fn commit(&self) {
        self.consumer.state().persist_all().await;
    }

    /// The queues consumed now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        self.consumer.owned_queues()
    }

    /// Commits and leaves the group.
    pub async fn shutdown(self) {
        drop(self.rx);
        self.consumer.shutdown().await;
    }
}

impl ConsumerState {
    /// Marks polled messages consumed: they leave the queue's cache and its offset to commit
    /// moves past them.
    fn mark_polled(&self, mq: &MessageQueue, offsets: &[i64]) {
        if let Some(o) = self.owned().get(mq) {
            let next = o.pq.remove(offsets);
            o.commit_offset.advance(next);
        }
    }
}
