//! The remoting server: accept loop, per-connection tasks, graceful shutdown.

use crate::config::ServerConfig;
use crate::connection::{self, ConnectionConfig, ConnectionHandle};
use crate::dispatch::{Dispatcher, ShutdownState};
use crate::error::RemotingError;
use crate::event::{ChannelEventListener, EventSink};
use crate::hook::RpcHook;
use crate::processor::{Handlers, ProcessorRegistry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Builds a [`RemotingServer`]: config, processors, hooks and an optional event listener.
pub struct ServerBuilder {
    config: ServerConfig,
    handlers: Handlers,
}

impl ServerBuilder {
    /// Starts from `config` with no processors.
    pub fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            handlers: Handlers::default(),
        }
    }

    /// Uses `registry` for request dispatch.
    pub fn registry(mut self, registry: ProcessorRegistry) -> Self {
        self.handlers.registry = registry;
        self
    }

    /// Appends an RPC hook (run in registration order; the same hook object twice is ignored).
    pub fn hook(mut self, hook: Arc<dyn RpcHook>) -> Self {
        self.handlers.add_hook(hook);
        self
    }

    /// Receives connect/close/idle/exception events.
    pub fn event_listener(mut self, listener: Arc<dyn ChannelEventListener>) -> Self {
        self.handlers.listener = Some(listener);
        self
    }

    /// Binds the listener and starts accepting. Must run inside a tokio runtime.
    pub async fn bind(self) -> Result<RemotingServer, RemotingError> {
        let addr = self.config.listen_addr.clone();
        let bind_err = |e: std::io::Error| RemotingError::Bind {
            addr: addr.clone(),
            reason: e.to_string(),
        };
        let sock_addr: SocketAddr = tokio::net::lookup_host(&addr)
            .await
            .map_err(bind_err)?
            .next()
            .ok_or_else(|| RemotingError::Bind {
                addr: addr.clone(),
                reason: "no address".into(),
            })?;
        let socket = if sock_addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(bind_err)?;
        socket.set_reuseaddr(true).map_err(bind_err)?;
        socket.bind(sock_addr).map_err(bind_err)?;
        let listener = socket.listen(1024).map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let shutdown = Arc::new(ShutdownState::default());
        let inner = Arc::new(ServerInner {
            dispatcher: Arc::new(Dispatcher {
                registry: Arc::new(self.handlers.registry),
                hooks: self.handlers.hooks.into(),
                language: self.config.language,
                version: self.config.version,
                shutdown: shutdown.clone(),
            }),
            conn_config: ConnectionConfig {
                idle_timeout: self.config.idle_timeout,
                max_frame_length: self.config.max_frame_length,
                write_queue_frames: self.config.write_queue_frames,
                max_inflight: self.config.max_inflight_per_connection,
            },
            events: EventSink::new(self.handlers.listener),
            connections: Mutex::new(HashMap::new()),
            stop_accepting: CancellationToken::new(),
            shutdown,
            config: self.config,
        });
        tokio::spawn(accept_loop(listener, inner.clone()));
        tracing::info!(%local_addr, "remoting server listening");
        Ok(RemotingServer { local_addr, inner })
    }
}

struct ServerInner {
    config: ServerConfig,
    dispatcher: Arc<Dispatcher>,
    conn_config: ConnectionConfig,
    events: EventSink,
    connections: Mutex<HashMap<u64, ConnectionHandle>>,
    stop_accepting: CancellationToken,
    shutdown: Arc<ShutdownState>,
}

impl ServerInner {
    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ConnectionHandle>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running server. Dropping it does not stop it; call [`RemotingServer::shutdown`].
pub struct RemotingServer {
    local_addr: SocketAddr,
    inner: Arc<ServerInner>,
}

impl RemotingServer {
    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.inner
            .connections()
            .values()
            .filter(|c| !c.is_closed())
            .count()
    }

    /// Handles of the live connections (e.g. to invoke clients, as brokers do).
    pub fn connections(&self) -> Vec<ConnectionHandle> {
        self.inner
            .connections()
            .values()
            .filter(|c| !c.is_closed())
            .cloned()
            .collect()
    }

    /// Requests being processed right now.
    pub fn inflight_requests(&self) -> usize {
        self.inner.shutdown.inflight()
    }

    /// Graceful shutdown: stop accepting; for `shutdown_grace`, answer new requests from clients
    /// newer than V5_3_1 with GO_AWAY (1500, "please go away") while serving the others; then wait
    /// (up to another grace period) for requests in flight to be answered; then close every
    /// connection after its queued replies are written. Accepted requests are never dropped silently.
    pub async fn shutdown(&self) {
        self.inner.stop_accepting.cancel();
        self.inner
            .shutdown
            .going_away
            .store(true, Ordering::Release);
        let grace = self.inner.config.shutdown_grace;
        tokio::time::sleep(grace).await;
        if tokio::time::timeout(
            grace.max(Duration::from_millis(100)),
            self.inner.shutdown.wait_drained(),
        )
        .await
        .is_err()
        {
            tracing::warn!(
                inflight = self.inner.shutdown.inflight(),
                "shutdown: requests still in flight after the grace period"
            );
        }
        let conns: Vec<_> = self.inner.connections().drain().map(|(_, c)| c).collect();
        for c in &conns {
            c.close();
        }
        tracing::info!(addr = %self.local_addr, "remoting server stopped");
    }
}

impl RemotingServer {
    /// Stops at once: no more accepts, every connection closed after its queued frames are written.
    /// Requests still being processed lose their replies; prefer [`RemotingServer::shutdown`].
    pub fn shutdown_now(&self) {
        self.inner.stop_accepting.cancel();
        let conns: Vec<_> = self.inner.connections().drain().map(|(_, c)| c).collect();
        for c in &conns {
            c.close();
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<ServerInner>) {
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = inner.stop_accepting.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        start_connection(&inner, stream, peer, next_id);
    }
}

fn start_connection(inner: &Arc<ServerInner>, stream: TcpStream, peer: SocketAddr, id: u64) {
    let _ = stream.set_nodelay(true);
    let handle = connection::spawn(
        stream,
        peer.to_string(),
        inner.conn_config.clone(),
        inner.dispatcher.clone(),
        inner.events.clone(),
    );
    let mut conns = inner.connections();
    // Forget connections that already closed, so the table stays the size of the live set.
    conns.retain(|_, c| !c.is_closed());
    conns.insert(id, handle);
}
