//! # rmq-store
//!
//! RocketMQ's message store in its own on-disk formats, so that a PULL_MESSAGE answer is a read
//! of the commit log, not a re-encode (spec: `../shared/docs/broker-spec.md` §1). No networking.
//!
//! Bottom-up, each layer on the one before:
//! - [`record`], [`queue_entry`], [`msg_id`]: sans-IO codecs of the commit-log record, the
//!   20-byte consume-queue entry and offsetMsgId (`record` and `msg_id` from rmq-message);
//! - [`files`], [`commit_log`], [`consume_queue`], [`index`]: the segment files, their
//!   recovery, and the key index;
//! - [`store`]: `MessageStore`, which puts, dispatches, reads, recovers and retains;
//! - [`service`]: the store on its own thread for async callers, with group commit.
//!
//! Still missing (issue 15): cold-cache numbers, reads from mapped segments,
//! and the throughput goals; the README's store section says where each stands.

pub mod checkpoint;
pub mod commit_log;
pub mod consume_queue;
pub mod durable;
pub mod files;
pub mod index;
pub mod inspect;
pub mod layout;
pub mod queue_entry;
pub mod service;
pub mod store;

// The record and offsetMsgId codecs live in rmq-message so that clients read pull answers
// without the store; re-exported so `crate::record` and `rmq_store::record` keep their paths.
pub use rmq_message::{msg_id, record};
