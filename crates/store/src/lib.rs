//! # rmq-store
//!
//! RocketMQ's message store in its own on-disk formats, so that a PULL_MESSAGE answer is a read
//! of the commit log, not a re-encode (spec: `../shared/docs/broker-spec.md` §1). No networking.
//!
//! Built bottom-up. So far the sans-IO layer every part stands on:
//! - [`record`]: the commit-log message record (both magic codes, 1- or 2-byte topic length,
//!   IPv4 and IPv6 hosts), its validation as recovery needs it (size formula, magic, body CRC),
//!   and the 8-byte BLANK end-of-file record;
//! - [`queue_entry`]: the 20-byte consume-queue entry and the tags hash code it carries;
//! - [`msg_id`]: offsetMsgId (store host + physical offset) both ways.
//!
//! Segment files, the append path with group commit, dispatch, recovery, retention and the
//! index come next (issue 15).

pub mod commit_log;
pub mod consume_queue;
pub mod files;
pub mod msg_id;
pub mod queue_entry;
pub mod record;
pub mod service;
pub mod store;
