//! The remoting server: accept loop, per-connection tasks, graceful shutdown.

use crate::config::ServerConfig;
use crate::connection::{self, ConnectionConfig, ConnectionHandle, ServerSlots, SlotGuard};
use crate::dispatch::{Dispatcher, ShutdownState};
use crate::error::RemotingError;
use crate::event::{ChannelEvent, ChannelEventListener, EventSink};
use crate::hook::RpcHook;
use crate::per_client::ClientTable;
use crate::preamble::{self, Prefixed, TLS_HANDSHAKE};
use crate::processor::{Handlers, ProcessorRegistry};
use crate::tls::TlsMode;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
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
                write_queue_bytes: self.config.write_queue_bytes,
                write_stall_timeout: self.config.write_stall_timeout,
                max_inflight: self.config.max_inflight_per_connection,
                request_bytes: self.config.max_request_bytes_per_connection,
                request_bytes_total: Some(Arc::new(crate::budget::ByteBudget::new(
                    self.config.max_request_bytes_total,
                ))),
                write_bytes_total: Some(Arc::new(crate::budget::ByteBudget::new(
                    self.config.write_queue_bytes_total,
                ))),
                traffic: Some(Arc::default()),
            },
            tls: match &self.config.tls {
                Some(t) => Some((
                    t.mode,
                    std::sync::RwLock::new(t.acceptor().map_err(|e| RemotingError::Bind {
                        addr: addr.clone(),
                        reason: e.to_string(),
                    })?),
                )),
                None => None,
            },
            active: Arc::new(AtomicUsize::new(0)),
            clients: ClientTable::new(
                self.config.max_connections_per_client,
                self.config.max_request_bytes_per_client,
            ),
            tls_changes_seen: AtomicUsize::new(0),
            tls_reloads: AtomicUsize::new(0),
            events: EventSink::new(self.handlers.listener),
            connections: Mutex::new(ConnectionTable::default()),
            stop_accepting: CancellationToken::new(),
            shutdown,
            config: self.config,
        });
        if let Some(tls) = inner.config.tls.as_ref().filter(|t| !t.test_mode) {
            // The contents served from now on, read before `bind` returns: a change made right
            // after (however loaded the machine) is a change the watcher sees.
            let files = tls.clone();
            let seen = tokio::task::spawn_blocking(move || tls_files_fingerprint(&files))
                .await
                .unwrap_or_default();
            tokio::spawn(watch_tls_files(Arc::downgrade(&inner), tls.clone(), seen));
        }
        tokio::spawn(accept_loop(listener, inner.clone()));
        tracing::info!(%local_addr, "remoting server listening");
        Ok(RemotingServer { local_addr, inner })
    }
}

struct ServerInner {
    config: ServerConfig,
    /// TLS mode and acceptor (no acceptor in DISABLED mode); replaced when the certificate
    /// files change.
    tls: Option<(TlsMode, std::sync::RwLock<Option<TlsAcceptor>>)>,
    /// Connections accepted and not yet ended (the cap counts these).
    active: Arc<AtomicUsize>,
    /// Per-client shares (connection cap, request bytes).
    clients: Arc<ClientTable>,
    /// Changes of the TLS files the watcher has acted on, and how many of them loaded.
    tls_changes_seen: AtomicUsize,
    tls_reloads: AtomicUsize,
    dispatcher: Arc<Dispatcher>,
    conn_config: ConnectionConfig,
    events: EventSink,
    connections: Mutex<ConnectionTable>,
    stop_accepting: CancellationToken,
    shutdown: Arc<ShutdownState>,
}

/// The live connections, and whether shutdown has closed them: a connection that finishes its
/// PROXY/TLS handshake after that is closed as it registers, never left running.
#[derive(Default)]
struct ConnectionTable {
    live: HashMap<u64, ConnectionHandle>,
    closed: bool,
}

impl ConnectionTable {
    /// Marks the table closed and hands back every connection, to be closed.
    fn close_all(&mut self) -> Vec<ConnectionHandle> {
        self.closed = true;
        self.live.drain().map(|(_, c)| c).collect()
    }
}

impl ServerInner {
    fn connections(&self) -> std::sync::MutexGuard<'_, ConnectionTable> {
        // Poisoning: the critical sections are single map operations that cannot leave the
        // table half-updated, so a poisoned lock still guards a consistent table.
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

    /// Bytes read from and written to all connections since the server started (metrics).
    pub fn traffic(&self) -> (u64, u64) {
        match &self.inner.conn_config.traffic {
            Some(t) => (
                t.bytes_in.load(Ordering::Relaxed),
                t.bytes_out.load(Ordering::Relaxed),
            ),
            None => (0, 0),
        }
    }

    /// Clients (source IPs) holding a connection: from its accept, or behind a trusted proxy
    /// from its PROXY header.
    pub fn client_count(&self) -> usize {
        self.inner.clients.len()
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.inner
            .connections()
            .live
            .values()
            .filter(|c| !c.is_closed())
            .count()
    }

    /// Handles of the live connections (e.g. to invoke clients, as brokers do).
    pub fn connections(&self) -> Vec<ConnectionHandle> {
        self.inner
            .connections()
            .live
            .values()
            .filter(|c| !c.is_closed())
            .cloned()
            .collect()
    }

    /// Changes of the TLS certificate, key or trust files the server has acted on, and how many
    /// of them loaded (the rest kept the previous certificate). For monitoring and tests.
    pub fn tls_reload_counts(&self) -> (usize, usize) {
        (
            self.inner.tls_changes_seen.load(Ordering::Acquire),
            self.inner.tls_reloads.load(Ordering::Acquire),
        )
    }

    /// True once [`RemotingServer::shutdown`] (or `shutdown_now`) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.stop_accepting.is_cancelled()
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
        if tokio::time::timeout(grace.max(MIN_DRAIN), self.inner.shutdown.drain())
            .await
            .is_err()
        {
            tracing::warn!(
                inflight = self.inner.shutdown.inflight(),
                "shutdown: requests still in flight after the grace period"
            );
        }
        let conns = self.inner.connections().close_all();
        for c in &conns {
            c.close();
        }
        tracing::info!(addr = %self.local_addr, "remoting server stopped");
    }
}

/// How long a graceful shutdown waits for requests in flight even with no grace period: a
/// request being processed (a send the store is appending) gets its answer out before the
/// connections close, and requests arriving meanwhile are refused unprocessed (SYSTEM_BUSY).
/// At 100 ms, and with late requests still processed, a send stored during a broker's restart
/// could lose its answer and be sent again by its producer (stored twice; found by the ali-ons
/// restart test).
const MIN_DRAIN: Duration = Duration::from_secs(3);

impl RemotingServer {
    /// Stops at once: no more accepts, every connection closed after its queued frames are written.
    /// Requests still being processed lose their replies; prefer [`RemotingServer::shutdown`].
    pub fn shutdown_now(&self) {
        self.inner.stop_accepting.cancel();
        let conns = self.inner.connections().close_all();
        for c in &conns {
            c.close();
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<ServerInner>) {
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
        let max = inner.config.max_connections;
        if max > 0 && inner.active.load(Ordering::Acquire) >= max {
            tracing::warn!(%peer, max, "connection refused: at the connection limit");
            drop(stream);
            continue;
        }
        // A client is known at accept unless a trusted proxy will name it in a PROXY header.
        let early_client = if inner.proxy_trusted(peer.ip()) {
            None
        } else {
            match inner.clients.join(peer.ip()) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(%peer, limit = e.limit, "connection refused: this client is at max_connections_per_client");
                    continue;
                }
            }
        };
        inner.active.fetch_add(1, Ordering::AcqRel);
        let slot = SlotGuard(inner.active.clone());
        let inner = inner.clone();
        tokio::spawn(async move {
            // One deadline for everything before the first frame (PROXY header, TLS handshake,
            // the frame itself). A connection that says nothing is idle: it goes at the idle
            // timeout if that is shorter.
            let timeout = inner
                .config
                .handshake_timeout
                .min(inner.config.idle_timeout);
            let deadline = tokio::time::Instant::now() + timeout;
            let refused = |event: &dyn Fn(crate::event::Channel) -> ChannelEvent| {
                // Listeners see what Java's would: the connection came, then failed or idled.
                let channel = crate::event::Channel {
                    id: connection::next_connection_id(),
                    peer: peer.to_string(),
                };
                inner.events.emit(ChannelEvent::Connect(channel.clone()));
                inner.events.emit(event(channel.clone()));
                inner.events.emit(ChannelEvent::Close(channel));
            };
            match tokio::time::timeout_at(deadline, prepare(&inner, stream, peer)).await {
                Ok(Ok(prepared)) => {
                    // Behind a trusted proxy the client is known only now.
                    let ip = crate::per_client::client_ip(prepared.peer()).unwrap_or(peer.ip());
                    let client = match early_client.map_or_else(|| inner.clients.join(ip), Ok) {
                        Ok(c) => c,
                        Err(e) => {
                            let reason = format!(
                                "this client ({ip}) already holds {} connections (max_connections_per_client)",
                                e.limit
                            );
                            tracing::warn!(%peer, %reason, "connection refused");
                            refused(&|c| ChannelEvent::Exception(c, reason.clone()));
                            return;
                        }
                    };
                    let slots = ServerSlots {
                        _server: slot,
                        client: Some(client),
                    };
                    match prepared {
                        Prepared::Plain(s, peer) => {
                            register(&inner, || spawn_conn(&inner, s, peer, deadline, slots))
                        }
                        Prepared::Tls(s, peer) => {
                            register(&inner, || spawn_conn(&inner, *s, peer, deadline, slots))
                        }
                    }
                }
                Ok(Err(Refusal::ClosedEarly)) => {
                    // Health checks (load balancers, Kubernetes) connect and close: not news.
                    tracing::debug!(%peer, "connection closed before its first byte");
                    let channel = crate::event::Channel {
                        id: connection::next_connection_id(),
                        peer: peer.to_string(),
                    };
                    inner.events.emit(ChannelEvent::Connect(channel.clone()));
                    inner.events.emit(ChannelEvent::Close(channel));
                }
                Ok(Err(Refusal::Failed(reason))) => {
                    tracing::warn!(%peer, %reason, "connection refused");
                    refused(&|c| ChannelEvent::Exception(c, reason.clone()));
                }
                Err(_) => {
                    tracing::debug!(%peer, ?timeout, "closing connection: nothing (or no complete PROXY header / TLS handshake) in time");
                    refused(&ChannelEvent::Idle);
                }
            }
        });
    }
}

impl ServerInner {
    /// Whether a PROXY header from `source` is read (and so names the client).
    fn proxy_trusted(&self, source: std::net::IpAddr) -> bool {
        self.config.proxy_protocol
            && self
                .config
                .proxy_protocol_trusted_sources
                .iter()
                .any(|t| t.contains(source))
    }
}

/// Why a connection was refused before its first frame.
enum Refusal {
    /// It closed before sending a byte.
    ClosedEarly,
    /// Anything else, with why.
    Failed(String),
}

/// A connection ready for frames.
enum Prepared {
    Plain(Prefixed<TcpStream>, String),
    Tls(
        Box<tokio_rustls::server::TlsStream<Prefixed<TcpStream>>>,
        String,
    ),
}

impl Prepared {
    fn peer(&self) -> &str {
        match self {
            Prepared::Plain(_, p) | Prepared::Tls(_, p) => p,
        }
    }
}

/// PROXY header (if enabled and the source is trusted), then the TLS sniff (spec §4-5).
async fn prepare(
    inner: &ServerInner,
    mut stream: TcpStream,
    socket_peer: SocketAddr,
) -> Result<Prepared, Refusal> {
    let _ = stream.set_nodelay(true);
    let trusted = inner.proxy_trusted(socket_peer.ip());
    let (proxy, mut rest) = if trusted {
        match preamble::read_proxy(&mut stream).await {
            Ok(r) => r,
            Err(preamble::PreambleError::Io(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                return Err(Refusal::ClosedEarly)
            }
            Err(e) => return Err(Refusal::Failed(e.to_string())),
        }
    } else {
        (None, bytes::BytesMut::new())
    };
    let peer = proxy
        .as_ref()
        .and_then(|p| p.source.clone())
        .unwrap_or_else(|| socket_peer.to_string());
    if let Some(p) = &proxy {
        tracing::debug!(%socket_peer, %peer, destination = ?p.destination, tlvs = ?p.tlvs, "PROXY header");
    }
    let Some((mode, acceptor)) = &inner.tls else {
        // No TLS configured: whatever comes is read as frames (a handshake fails as a frame).
        return Ok(Prepared::Plain(Prefixed::new(rest, stream), peer));
    };
    if rest.is_empty() {
        use tokio::io::AsyncReadExt;
        match stream.read_buf(&mut rest).await {
            Ok(0) => return Err(Refusal::ClosedEarly),
            Ok(_) => {}
            Err(e) => return Err(Refusal::Failed(e.to_string())),
        }
    }
    let is_tls = rest[0] == TLS_HANDSHAKE;
    let stream = Prefixed::new(rest, stream);
    // The acceptor in force now (a certificate reload swaps it for new connections only).
    // Poisoning: the lock only ever guards a whole-value swap, so a poisoned one is consistent.
    let acceptor = acceptor.read().unwrap_or_else(|p| p.into_inner()).clone();
    let failed = |why: &str| Err(Refusal::Failed(why.to_owned()));
    match (mode, is_tls, acceptor) {
        (TlsMode::Disabled, true, _) => failed("TLS handshake on a server with TLS disabled"),
        (TlsMode::Enforcing, false, _) => failed("plaintext on a server that enforces TLS"),
        (_, true, Some(acceptor)) => match acceptor.accept(stream).await {
            Ok(tls) => Ok(Prepared::Tls(Box::new(tls), peer)),
            Err(e) => Err(Refusal::Failed(format!("TLS handshake failed: {e}"))),
        },
        (_, true, None) => failed("TLS handshake but no TLS context"),
        (_, false, _) => Ok(Prepared::Plain(stream, peer)),
    }
}

/// How often the TLS files are checked for changes (Java's FileWatchService: 500 ms).
const TLS_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A fingerprint of the TLS files' contents (a missing file counts as empty).
fn tls_files_fingerprint(tls: &crate::ServerTlsConfig) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for path in [&tls.cert_path, &tls.key_path, &tls.trust_cert_path]
        .into_iter()
        .flatten()
    {
        std::fs::read(path).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

/// Certificate rotation, as Java's servers do with FileWatchService: when the certificate, key or
/// trust files change, a new acceptor serves new connections (live ones keep theirs). A change
/// that does not load (a half-written file, a key that does not match) is logged and the old
/// acceptor stays. Ends with the server.
async fn watch_tls_files(
    inner: std::sync::Weak<ServerInner>,
    tls: crate::ServerTlsConfig,
    mut seen: u64,
) {
    loop {
        tokio::time::sleep(TLS_WATCH_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { break };
        if inner.stop_accepting.is_cancelled() {
            break;
        }
        // Reading the files (and building an acceptor from them) is blocking file I/O: off the
        // runtime's threads.
        let files = tls.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || tls_files_fingerprint(&files)).await
        else {
            continue;
        };
        if now == seen {
            continue;
        }
        // Either way this content has been tried: a writer still busy changes it again.
        seen = now;
        inner.tls_changes_seen.fetch_add(1, Ordering::AcqRel);
        let files = tls.clone();
        let Ok(built) = tokio::task::spawn_blocking(move || files.acceptor()).await else {
            continue;
        };
        match built {
            Ok(acceptor) => {
                if let Some((_, slot)) = &inner.tls {
                    // Poisoning: a whole-value swap (see prepare).
                    *slot.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
                }
                inner.tls_reloads.fetch_add(1, Ordering::AcqRel);
                tracing::info!("TLS certificate files changed: reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate files changed but do not load; keeping the old ones");
            }
        }
    }
}

fn spawn_conn<S>(
    inner: &Arc<ServerInner>,
    io: S,
    peer: String,
    first_frame_deadline: tokio::time::Instant,
    slots: ServerSlots,
) -> ConnectionHandle
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    connection::spawn(
        io,
        peer,
        inner.conn_config.clone(),
        Some(first_frame_deadline),
        inner.dispatcher.clone(),
        inner.events.clone(),
        Some(slots),
    )
}

/// Starts a new connection (`start` spawns its tasks) and adds it to the table, under the
/// table's lock: when shutdown has already closed the table (the connection finished its
/// handshake too late) it is never started, and its socket is dropped unread.
fn register(inner: &Arc<ServerInner>, start: impl FnOnce() -> ConnectionHandle) {
    let mut conns = inner.connections();
    if conns.closed {
        return;
    }
    let handle = start();
    // Forget connections that already closed, so the table stays the size of the live set.
    conns.live.retain(|_, c| !c.is_closed());
    conns.live.insert(handle.id(), handle);
}
