//! # rmq-bench
//!
//! What `rmq bench` is made of: an echo server on our runtime ([`echo`]), a raw-TCP framed echo
//! that does no protocol work at all ([`raw`]), two load drivers ([`load`]): one on our
//! `RemotingClient`, one "neutral" pipelined client that speaks frames straight over a socket, and
//! the `compare` runner ([`compare`]) that measures them side by side in one process and one run.
//!
//! The convention any server can follow to be benchmarked (a Java one included): request code 1
//! is answered with the request's body and ext fields, code 2 arrives oneway and is counted.
//! Code 3 is an rmq extension that reports the server's counters; servers without it still work.

pub mod compare;
pub mod cpu;
pub mod echo;
pub mod idle;
pub mod load;
pub mod raw;
pub mod report;

pub use compare::{CompareOptions, Scenario};
pub use echo::{BenchServer, CODE_ECHO, CODE_ONEWAY, CODE_STATS};
pub use load::{Driver, LoadSpec, Mode};
pub use raw::RawEchoServer;
pub use report::Report;
