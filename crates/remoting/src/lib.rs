//! # rmq-remoting
//!
//! RocketMQ's remoting runtime on tokio: the NettyRemotingServer/Client pair, done with small
//! composed types. A [`RemotingServer`] dispatches requests by code to [`RequestProcessor`]s, each
//! with its own bounded executor, and answers busy, overload, unsupported and error cases with the
//! exact Java codes and remarks. A [`RemotingClient`] invokes sync, async (future or callback) and
//! oneway over a table of connections, with flow-control permits and precise per-request timeouts.
//!
//! ```no_run
//! use async_trait::async_trait;
//! use rmq_protocol::RemotingCommand;
//! use rmq_remoting::*;
//! use std::{sync::Arc, time::Duration};
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl RequestProcessor for Echo {
//!     async fn process(&self, _: &RequestContext, req: RemotingCommand) -> Result<Option<RemotingCommand>, ProcessorError> {
//!         Ok(Some(RemotingCommand::response(0, None).with_body(req.body)))
//!     }
//! }
//!
//! # async fn run() -> Result<(), RemotingError> {
//! let mut registry = ProcessorRegistry::new();
//! registry.register(1, Arc::new(Echo), ExecutorConfig::new(4, 1024));
//! let config = ServerConfig { listen_addr: "127.0.0.1:0".into(), ..Default::default() };
//! let server = ServerBuilder::new(config).registry(registry).bind().await?;
//!
//! let client = RemotingClient::new(ClientConfig::default());
//! let addr = server.local_addr().to_string();
//! let resp = client.invoke_sync(&addr, RemotingCommand::request(1).with_body("hi"), Duration::from_secs(3)).await?;
//! assert_eq!(&resp.body[..], b"hi");
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod budget;
pub mod client;
pub mod config;
pub mod connection;
mod dispatch;
pub mod error;
pub mod event;
pub mod hook;
mod per_client;
pub mod preamble;
pub mod processor;
mod response_table;
pub mod server;
pub mod tls;

pub use client::{ClientBuilder, RemotingClient};

/// The text of a caught panic's payload (a `&str` or `String` message, as `panic!` makes).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
pub use config::{ClientConfig, ServerConfig};
pub use connection::ConnectionHandle;
pub use error::RemotingError;
pub use event::{Channel, ChannelEvent, ChannelEventListener};
pub use hook::{HookError, RpcHook};
pub use processor::{
    ExecutorConfig, ProcessorError, ProcessorRegistry, RequestContext, RequestProcessor,
};
pub use response_table::InvokeCallback;
pub use server::{RemotingServer, ServerBuilder};
pub use tls::{ClientAuth, ClientTlsConfig, ServerTlsConfig, TlsError, TlsMode};
