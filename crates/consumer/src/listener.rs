//! What consumes the messages of a push consumer: a [`MessageListener`] and its verdict, a
//! [`ConsumeResult`]; [`listener`] makes one from an async closure.

use crate::MessageExt;
use async_trait::async_trait;
use std::sync::Arc;

/// A listener's verdict on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Consumed: its offset may be committed.
    Success,
    /// Deliver again later (CONSUMER_SEND_MSG_BACK, delay level 3 + reconsumeTimes).
    ReconsumeLater,
    /// Orderly: stop this queue for `suspend_current_queue_time`, then offer the same messages
    /// again (reconsumeTimes + 1); later messages of the queue wait. Concurrently: as
    /// ReconsumeLater.
    SuspendCurrentQueueAMoment,
}

/// What consumes the messages. A panic in it counts as [`ConsumeResult::ReconsumeLater`].
#[async_trait]
pub trait MessageListener: Send + Sync + 'static {
    /// Consumes a batch (`consume_batch_max_size` messages at most, one by default).
    async fn consume(&self, msgs: Vec<MessageExt>) -> ConsumeResult;
}

struct FnListener<F>(F);

#[async_trait]
impl<F, Fut> MessageListener for FnListener<F>
where
    F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ConsumeResult> + Send + 'static,
{
    async fn consume(&self, msgs: Vec<MessageExt>) -> ConsumeResult {
        (self.0)(msgs).await
    }
}

/// A listener from an async closure.
pub fn listener<F, Fut>(f: F) -> Arc<dyn MessageListener>
where
    F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ConsumeResult> + Send + 'static,
{
    Arc::new(FnListener(f))
}
