//! The typed custom headers rmq's services use, one file per request family.

pub mod broker;
pub mod kv;
pub mod pull;
pub mod route;
pub mod send;
