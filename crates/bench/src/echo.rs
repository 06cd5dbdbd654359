//! The bench echo server on our runtime: code 1 echoes, code 2 counts oneways, code 3 reports.

use async_trait::async_trait;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{
    ExecutorConfig, ProcessorError, ProcessorRegistry, RemotingError, RemotingServer,
    RequestContext, RequestProcessor, ServerBuilder, ServerConfig,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// Answered with the request's body and ext fields.
pub const CODE_ECHO: i32 = 1;
/// Sent oneway; the server only counts it.
pub const CODE_ONEWAY: i32 = 2;
/// rmq extension: answered with ext fields `echoed`, `oneway` and `connections` (the counters).
pub const CODE_STATS: i32 = 3;

/// What the bench server has seen, readable in-process or over the wire with [`CODE_STATS`].
#[derive(Debug, Default)]
pub struct Counters {
    /// Echo requests answered.
    pub echoed: AtomicU64,
    /// Oneway requests received.
    pub oneway: AtomicU64,
}

struct Echo(Arc<Counters>);

#[async_trait]
impl RequestProcessor for Echo {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.0.echoed.fetch_add(1, Ordering::Relaxed);
        let mut resp = RemotingCommand::response(0, None).with_body(req.body);
        resp.ext_fields = req.ext_fields;
        Ok(Some(resp))
    }
}

struct Oneway(Arc<Counters>);

#[async_trait]
impl RequestProcessor for Oneway {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.0.oneway.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }
}

struct Stats {
    counters: Arc<Counters>,
    server: Arc<OnceLock<Weak<RemotingServer>>>,
}

#[async_trait]
impl RequestProcessor for Stats {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let connections = self
            .server
            .get()
            .and_then(Weak::upgrade)
            .map_or(0, |s| s.connection_count());
        let c = &self.counters;
        Ok(Some(
            RemotingCommand::response(0, None)
                .with_ext("echoed", c.echoed.load(Ordering::Relaxed).to_string())
                .with_ext("oneway", c.oneway.load(Ordering::Relaxed).to_string())
                .with_ext("connections", connections.to_string()),
        ))
    }
}

/// A running bench server; stops when [`BenchServer::shutdown`] is called or it is dropped.
pub struct BenchServer {
    server: Arc<RemotingServer>,
    counters: Arc<Counters>,
}

impl BenchServer {
    /// Binds `config.listen_addr`. The echo and oneway processors run inline in each connection's
    /// read loop (they never wait), the fastest executor our runtime offers for such work.
    pub async fn start(config: ServerConfig) -> Result<Self, RemotingError> {
        let counters = Arc::new(Counters::default());
        let slot = Arc::new(OnceLock::new());
        let mut registry = ProcessorRegistry::new();
        registry.register(
            CODE_ECHO,
            Arc::new(Echo(counters.clone())),
            ExecutorConfig::inline(),
        );
        registry.register(
            CODE_ONEWAY,
            Arc::new(Oneway(counters.clone())),
            ExecutorConfig::inline(),
        );
        registry.register(
            CODE_STATS,
            Arc::new(Stats {
                counters: counters.clone(),
                server: slot.clone(),
            }),
            ExecutorConfig::inline(),
        );
        let server = Arc::new(ServerBuilder::new(config).registry(registry).bind().await?);
        let _ = slot.set(Arc::downgrade(&server));
        Ok(BenchServer { server, counters })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The live counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.server.connection_count()
    }

    /// Stops accepting and closes every connection at once.
    pub fn shutdown(&self) {
        self.server.shutdown_now();
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        self.server.shutdown_now();
    }
}
