//! The typed custom headers rmq's services use, one file per request family. A broker request
//! has its header here whether a broker or a client (mqadmin, producer, consumer) is the side
//! that reads it.

pub mod admin;
pub mod broker;
pub mod client;
pub mod kv;
pub mod message;
pub mod offset;
pub mod pull;
pub mod route;
pub mod send;
