//! # rmq-producer
//!
//! A RocketMQ 5.x producer on rmq-remoting: route lookup at the NameServer (with a cache and the
//! TBW102 fall-back for new topics), queue selection (round robin, latency fault avoidance, or
//! a selector of yours), and SEND_MESSAGE_V2 exactly as the Java client sends it, in sync, async
//! and oneway modes, with Java's retries, compression, heartbeats and unregistration.
//!
//! ```no_run
//! # async fn run() -> Result<(), rmq_producer::ProducerError> {
//! use rmq_producer::{Message, Producer, ProducerConfig};
//! let producer = Producer::start(ProducerConfig::new("PG_orders", &["127.0.0.1:9876"])).await?;
//! let result = producer.send(Message::new("Orders", "hello").with_tags("TagA")).await?;
//! println!("{} at {:?} offset {}", result.msg_id, result.queue, result.queue_offset);
//! producer.shutdown().await;
//! # Ok(()) }
//! ```

pub mod error;
pub mod fault;
pub mod health;
pub mod message;
pub use rmq_model::msg_id;
pub mod producer;
pub mod result;
pub mod route;
pub mod validate;
pub mod wire;

pub use error::ProducerError;
pub use message::Message;
pub use producer::{Producer, ProducerConfig, QueueSelector, RpcHooks};
pub use result::{SendResult, SendStatus};
pub use route::MessageQueue;

pub use rmq_model::local_ip;
