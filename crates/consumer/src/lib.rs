//! # rmq-consumer
//!
//! The fourth role: consumers that behave like the Java client's DefaultMQPushConsumer and
//! DefaultLitePullConsumer (`../shared/docs/broker-spec.md` §4), against our broker and Java's.
//!
//! What an application uses:
//! - [`push`]: the push consumer ([`PushConsumer`]); [`config`]: its settings;
//!   [`listener`](mod@listener): what consumes the messages;
//! - [`lite`]: the lite pull consumer (`poll`, a `Stream`, `seek`, `commit`, assign or
//!   subscribe);
//! - [`subscription`]: tag expressions as Java builds them, and the client's exact tag check;
//! - [`allocate`]: Java's AllocateMessageQueueAveragely (exactly), by circle, or your own;
//! - [`message`]: pull answers decoded into [`MessageExt`] (rmq-message's record codec), bodies
//!   inflated.
//!
//! How a consumer works, one module per responsibility, over the state its tasks share
//! (`state`): `rebalance` (queues divided among the group, taken and given up), `pull` (one
//! task per queue: long polling, flow control, hand-over), `concurrent` and `orderly`
//! consumption, `offset_store` (start offsets and commits), `seek` (restarting a queue at an
//! offset), `routes` (routes and heartbeats), `broker_requests` (the requests still built from
//! string keys); [`process_queue`]: one queue's messages in flight, for flow control and safe
//! commits; [`local_offsets`]: BROADCASTING offsets in a file, Java's layout.
//!
//! No module import cycle: what `state` holds is plain data from modules that do not use the
//! state (`commit_offset`: a queue's offset to commit; `queue_seeks`: the seeks table; the lite
//! pull batch type lives in `state` itself), while the modules working on the state depend on
//! it and never the other way.

pub mod allocate;
mod broker_requests;
mod commit_offset;
mod concurrent;
pub mod config;
pub mod listener;
pub mod lite;
pub mod local_offsets;
pub mod message;
mod offset_store;
mod orderly;
pub mod process_queue;
mod pull;
pub mod push;
mod queue_seeks;
mod rebalance;
mod routes;
mod seek;
mod state;
pub mod subscription;

pub use config::{ConsumeFrom, ConsumerConfig, ConsumerError};
pub use listener::{listener, ConsumeResult, MessageListener};
pub use lite::LitePullConsumer;
pub use message::MessageExt;
pub use push::PushConsumer;
pub use rmq_model::MessageQueue;

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
