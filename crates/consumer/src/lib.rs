//! # rmq-consumer
//!
//! The fourth role: a consumer that behaves like the Java client's DefaultMQPushConsumer
//! (`../shared/docs/broker-spec.md` §4), against our broker and Java's alike.
//!
//! - [`subscription`]: tag expressions as Java builds them, and the client's exact tag check;
//! - [`allocate`]: Java's AllocateMessageQueueAveragely (exactly), by circle, or your own;
//! - [`message`]: pull answers decoded into [`MessageExt`], bodies inflated;
//! - [`process_queue`]: one queue's messages in flight, for flow control and safe commits;
//! - [`consumer`]: the push consumer: rebalance, long-polling pulls, concurrent consumption,
//!   give-backs, offsets.
//!
//! - [`local_offsets`]: BROADCASTING offsets in a file, Java's layout;
//! - [`lite`]: the lite pull consumer (`poll`, a `Stream`, `seek`, `commit`, assign or
//!   subscribe).

pub mod allocate;
pub mod consumer;
pub mod lite;
pub mod local_offsets;
pub mod message;
pub mod process_queue;
pub mod subscription;

pub use consumer::{
    listener, ConsumeFrom, ConsumeResult, ConsumerConfig, MessageListener, PushConsumer,
};
pub use lite::LitePullConsumer;
pub use message::MessageExt;
pub use rmq_model::MessageQueue;

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
