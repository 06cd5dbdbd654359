//! # rmq-message
//!
//! A stored message as bytes, with no I/O: the commit-log record (spec §1.2) that the store
//! writes and a PULL_MESSAGE answer carries back to back, and the offsetMsgId (spec §1.6) that
//! names a record by its store host and physical offset.
//!
//! Its own crate so that clients (the consumer, the CLI's readers) decode pull answers without
//! depending on the store, its memory maps and its threads; the store re-exports both modules.

pub mod msg_id;
pub mod record;
