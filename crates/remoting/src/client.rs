//! The remoting client: sync, async and oneway invoke over a table of connections.

use crate::config::ClientConfig;
use crate::connection::{self, ConnectionConfig, ConnectionHandle};
use crate::dispatch::{Dispatcher, ShutdownState};
use crate::error::RemotingError;
use crate::event::{ChannelEventListener, EventSink};
use crate::hook::{HookError, RpcHook};
use crate::processor::{Handlers, ProcessorRegistry};
use rand::seq::SliceRandom;
use rand::Rng;
use rmq_protocol::codes::response;
use rmq_protocol::RemotingCommand;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Told the address of a server that answered GO_AWAY (see [`ClientBuilder::go_away_listener`]).
pub type GoAwayListener = Arc<dyn Fn(&str) + Send + Sync>;

/// Builds a [`RemotingClient`].
pub struct ClientBuilder {
    config: ClientConfig,
    handlers: Handlers,
    go_away: Option<GoAwayListener>,
}

impl ClientBuilder {
    /// Starts from `config`.
    pub fn new(config: ClientConfig) -> Self {
        ClientBuilder {
            config,
            handlers: Handlers::default(),
            go_away: None,
        }
    }

    /// Processors for requests servers push to us (CHECK_TRANSACTION_STATE, NOTIFY_CONSUMER_IDS_CHANGED...).
    pub fn registry(mut self, registry: ProcessorRegistry) -> Self {
        self.handlers.registry = registry;
        self
    }

    /// Appends a client hook (before the write / after the response).
    pub fn hook(mut self, hook: Arc<dyn RpcHook>) -> Self {
        self.handlers.add_hook(hook);
        self
    }

    /// Receives connection events.
    pub fn event_listener(mut self, listener: Arc<dyn ChannelEventListener>) -> Self {
        self.handlers.listener = Some(listener);
        self
    }

    /// Called with a server's address whenever it answers GO_AWAY (it is shutting down
    /// gracefully), so that callers (the producer) stop choosing it. Must be quick: it runs on the
    /// connection's reader task or the invoking task.
    pub fn go_away_listener(mut self, listener: GoAwayListener) -> Self {
        self.go_away = Some(listener);
        self
    }

    /// Creates the client. Must run inside a tokio runtime.
    pub fn build(self) -> RemotingClient {
        let hooks: Arc<[Arc<dyn RpcHook>]> = self.handlers.hooks.into();
        RemotingClient {
            inner: Arc::new(ClientInner {
                dispatcher: Arc::new(Dispatcher {
                    registry: Arc::new(self.handlers.registry),
                    hooks: Arc::from(Vec::new()),
                    language: self.config.language,
                    version: self.config.version,
                    shutdown: Arc::new(ShutdownState::default()),
                }),
                hooks,
                events: EventSink::new(self.handlers.listener),
                connections: Mutex::new(HashMap::new()),
                dial_locks: Mutex::new(HashMap::new()),
                async_permits: Arc::new(Semaphore::new(self.config.async_permits)),
                oneway_permits: Arc::new(Semaphore::new(self.config.oneway_permits)),
                namesrv: Mutex::new(NamesrvState::default()),
                tls_connector: std::sync::OnceLock::new(),
                go_away: self.go_away,
                config: self.config,
            }),
        }
    }
}

#[derive(Default)]
struct NamesrvState {
    addrs: Vec<String>,
    index: usize,
    chosen: Option<String>,
    /// Addresses the last [`RemotingClient::scan_namesrv`] could not connect to: fail-over tries
    /// them last.
    unreachable: std::collections::HashSet<String>,
}

struct ClientInner {
    config: ClientConfig,
    dispatcher: Arc<Dispatcher>,
    hooks: Arc<[Arc<dyn RpcHook>]>,
    events: EventSink,
    connections: Mutex<HashMap<String, ConnectionHandle>>,
    dial_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    async_permits: Arc<Semaphore>,
    oneway_permits: Arc<Semaphore>,
    namesrv: Mutex<NamesrvState>,
    /// Built at the first TLS dial (the error is kept so every dial reports it).
    tls_connector: std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>>,
    go_away: Option<GoAwayListener>,
}

/// A dialled stream, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Poisoning: every lock of the client guards a map or a small state whose critical sections are
/// single operations (insert, remove, replace), so a panic elsewhere cannot leave one half-updated.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The limits of one dial: each step has its own (lock wait, connect, TLS handshake), cut short
/// by the invocation's deadline; errors say which ran out.
struct DialLimits<'a> {
    addr: &'a str,
    deadline: Option<Instant>,
}

impl DialLimits<'_> {
    /// When a step with its own `limit` must end, and whether the caller's deadline is why.
    fn bound(&self, limit: Duration) -> (Instant, bool) {
        let own = Instant::now() + limit;
        match self.deadline {
            Some(d) if d < own => (d, true),
            _ => (own, false),
        }
    }

    fn timed_out(&self, what: &str, by_caller: bool, limit: Duration) -> RemotingError {
        RemotingError::Connect {
            addr: self.addr.to_owned(),
            reason: if by_caller {
                format!("{what}: the invocation's timeout ran out")
            } else {
                format!("{what} ({}ms)", limit.as_millis())
            },
        }
    }
}

/// The per-address dial lock, held while dialling; on release, the lock's entry leaves the table
/// when nobody else holds or waits for it, so the table does not grow with every address ever
/// dialled.
struct DialLock<'a> {
    client: &'a RemotingClient,
    addr: &'a str,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for DialLock<'_> {
    fn drop(&mut self) {
        let mut locks = lock(&self.client.inner.dial_locks);
        drop(self.lock.take());
        // Two references left: the table's and the guard's own mutex (dropped just above, so
        // one): anyone else waiting holds a clone too.
        if locks
            .get(self.addr)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(self.addr);
        }
    }
}

/// Client side of the remoting protocol. Cheap to clone; all clones share connections and permits.
///
/// Every invocation completes exactly once: with the response, a timeout, or a connect/send error,
/// and pending requests of a connection that dies fail at once.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<ClientInner>,
}

impl RemotingClient {
    /// A client with `config` and no hooks or processors.
    pub fn new(config: ClientConfig) -> Self {
        ClientBuilder::new(config).build()
    }

    /// The connection to `addr` ("host:port"), dialled if there is no live one.
    ///
    /// Dialling takes a per-address lock, waited for at most `lock_timeout` (Java: 3 s), and the
    /// connect and TLS handshake are each bounded by `connect_timeout`. A dead connection is
    /// evicted and re-dialled.
    pub async fn connection(&self, addr: &str) -> Result<ConnectionHandle, RemotingError> {
        self.connection_by(addr, None).await
    }

    /// [`RemotingClient::connection`] within `deadline` as well: an invocation's timeout bounds
    /// its whole call, dialling included, whatever the dial's own limits are.
    async fn connection_by(
        &self,
        addr: &str,
        deadline: Option<Instant>,
    ) -> Result<ConnectionHandle, RemotingError> {
        if let Some(c) = self.live(addr) {
            return Ok(c);
        }
        let limits = DialLimits { addr, deadline };
        let cfg = &self.inner.config;
        let _held = self.dial_lock(&limits).await?;
        if let Some(c) = self.live(addr) {
            return Ok(c);
        }
        let (until, by_caller) = limits.bound(cfg.connect_timeout);
        let stream = match tokio::time::timeout_at(until, dial(addr, cfg.local_ip)).await {
            Err(_) => {
                return Err(limits.timed_out("connect timeout", by_caller, cfg.connect_timeout))
            }
            Ok(Err(e)) => {
                return Err(RemotingError::Connect {
                    addr: addr.to_owned(),
                    reason: e.to_string(),
                })
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let io: Box<dyn Io> = match &cfg.tls {
            None => Box::new(stream),
            Some(tls) => self.tls_handshake(tls, stream, &limits).await?,
        };
        let conn_config = ConnectionConfig {
            idle_timeout: cfg.idle_timeout,
            max_frame_length: cfg.max_frame_length,
            write_queue_frames: cfg.write_queue_frames,
            write_queue_bytes: cfg.write_queue_bytes,
            write_stall_timeout: cfg.write_stall_timeout,
            max_inflight: cfg.max_inflight_per_connection,
            request_bytes: cfg.max_request_bytes_per_connection,
            request_bytes_total: None,
            write_bytes_total: None,
            traffic: None,
        };
        let handle = connection::spawn(
            io,
            addr.to_owned(),
            conn_config,
            None,
            self.inner.dispatcher.clone(),
            self.inner.events.clone(),
            None,
        );
        lock(&self.inner.connections).insert(addr.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Takes `addr`'s dial lock, waiting at most `lock_timeout` (or the caller's deadline).
    async fn dial_lock<'a>(
        &'a self,
        limits: &DialLimits<'a>,
    ) -> Result<DialLock<'a>, RemotingError> {
        let lock_timeout = self.inner.config.lock_timeout;
        let dial_lock = lock(&self.inner.dial_locks)
            .entry(limits.addr.to_owned())
            .or_default()
            .clone();
        let (until, by_caller) = limits.bound(lock_timeout);
        match tokio::time::timeout_at(until, dial_lock.lock_owned()).await {
            Ok(h) => Ok(DialLock {
                client: self,
                addr: limits.addr,
                lock: Some(h),
            }),
            Err(_) => Err(limits.timed_out(
                "timed out waiting for the connection-table lock",
                by_caller,
                lock_timeout,
            )),
        }
    }

    /// The TLS handshake over a fresh TCP stream, within `connect_timeout` (or the deadline).
    async fn tls_handshake(
        &self,
        tls: &crate::ClientTlsConfig,
        stream: TcpStream,
        limits: &DialLimits<'_>,
    ) -> Result<Box<dyn Io>, RemotingError> {
        let connect_timeout = self.inner.config.connect_timeout;
        let tls_err = |reason: String| RemotingError::Connect {
            addr: limits.addr.to_owned(),
            reason,
        };
        let connector = self
            .inner
            .tls_connector
            .get_or_init(|| tls.connector().map_err(|e| e.to_string()))
            .clone()
            .map_err(tls_err)?;
        let name = tls
            .server_name(limits.addr)
            .map_err(|e| tls_err(e.to_string()))?;
        let (until, by_caller) = limits.bound(connect_timeout);
        match tokio::time::timeout_at(until, connector.connect(name, stream)).await {
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(e)) => Err(tls_err(format!("TLS handshake failed: {e}"))),
            Err(_) => Err(limits.timed_out("TLS handshake timed out", by_caller, connect_timeout)),
        }
    }

    /// Addresses with a dial lock in the table right now (only while a dial is under way).
    #[doc(hidden)]
    pub fn dial_locks_in_use(&self) -> usize {
        lock(&self.inner.dial_locks).len()
    }

    fn live(&self, addr: &str) -> Option<ConnectionHandle> {
        let mut conns = lock(&self.inner.connections);
        match conns.get(addr) {
            Some(c) if !c.is_closed() => Some(c.clone()),
            Some(_) => {
                conns.remove(addr);
                None
            }
            None => None,
        }
    }

    /// Closes the connection to `addr`, if any (its pending requests fail at once).
    pub fn close_connection(&self, addr: &str) {
        if let Some(c) = lock(&self.inner.connections).remove(addr) {
            c.close();
        }
    }

    /// Closes every connection.
    pub fn shutdown(&self) {
        for (_, c) in lock(&self.inner.connections).drain() {
            c.close();
        }
    }

    async fn permit(
        sem: &Arc<Semaphore>,
        timeout: Duration,
        what: &str,
        max: usize,
    ) -> Result<OwnedSemaphorePermit, RemotingError> {
        // The common case: a permit is free, and no timer is needed to wait for one.
        let quick = sem.clone().try_acquire_owned();
        if quick.is_ok() || timeout.is_zero() {
            return quick
                .map_err(|_| RemotingError::TooManyRequests(format!("{what} invoke too fast")));
        }
        match tokio::time::timeout(timeout, sem.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(RemotingError::PermitTimeout(format!(
                "{what} tryAcquire semaphore timeout, {}ms, semaphore value: {max}",
                timeout.as_millis()
            ))),
        }
    }

    fn run_before_hooks(
        &self,
        addr: &str,
        request: &mut RemotingCommand,
    ) -> Result<(), RemotingError> {
        for hook in self.inner.hooks.iter() {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                hook.before_request(addr, request)
            }));
            if let Err(e) = ran.unwrap_or_else(|p| Err(hook_panicked(&*p))) {
                return Err(hook_error(addr, e));
            }
        }
        Ok(())
    }

    /// Sends `request` to `addr` and waits for the response, all within `timeout` (dialling and
    /// the permit wait included). Uses an async permit, as Java 5.2+ does. A timeout that left the
    /// request real time to be answered closes the connection (Java's
    /// `clientCloseSocketIfTimeout`, on by default).
    pub async fn invoke_sync(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        self.invoke_future(addr, request, timeout, true).await
    }

    /// Like [`RemotingClient::invoke_sync`] but returns a `'static` future that can be spawned or
    /// joined with others; nothing is sent until it is polled. As Java's `invokeAsync`, a timeout
    /// fails this request alone (unless `close_socket_if_async_timeout`).
    pub fn invoke_async(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> impl Future<Output = Result<RemotingCommand, RemotingError>> + Send + 'static {
        self.invoke_future(addr, request, timeout, false)
    }

    /// What a timeout of this kind of call does to its connection.
    fn close_on_timeout(&self, sync: bool) -> bool {
        let cfg = &self.inner.config;
        if sync {
            cfg.close_socket_if_timeout
        } else {
            cfg.close_socket_if_async_timeout
        }
    }

    fn invoke_future(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
        sync: bool,
    ) -> impl Future<Output = Result<RemotingCommand, RemotingError>> + Send + 'static {
        let this = self.clone();
        let addr = addr.to_owned();
        async move {
            let start = Instant::now();
            let cfg = &this.inner.config;
            // The slow paths (waiting for a permit, dialling) are boxed so that the future of
            // every call stays small: it is created and moved once per request.
            let _permit = match this.inner.async_permits.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    Box::pin(Self::permit(
                        &this.inner.async_permits,
                        timeout,
                        "invokeAsyncImpl",
                        cfg.async_permits,
                    ))
                    .await?
                }
            };
            let conn = match this.live(&addr) {
                Some(c) => c,
                None => Box::pin(this.connection_by(&addr, Some(start + timeout))).await?,
            };
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(RemotingError::Timeout {
                    addr,
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
            request.language = cfg.language;
            request.version = cfg.version;
            this.run_before_hooks(&addr, &mut request)?;
            let kept = this.keep(&request);
            let outcome = conn.invoke(request, left).await;
            if matches!(&outcome, Ok(r) if r.code == response::GO_AWAY) {
                this.told_go_away(&addr);
            }
            if let (Ok(resp), Some(req)) = (&outcome, &kept) {
                if resp.code == response::GO_AWAY && cfg.reconnect_for_go_away {
                    this.evict(&addr, &conn);
                    return this
                        .resend_after_go_away(&addr, req.clone(), start + timeout, sync)
                        .await;
                }
            }
            // A sync timeout that left the request real time to be answered closes the socket.
            let had_time = left > Duration::from_millis(100) || left > timeout / 4;
            let close = this.close_on_timeout(sync) && (had_time || !sync);
            this.settle(&conn, kept.as_ref(), outcome, close)
        }
    }

    /// A copy of `request` when an answer may need it again: for after-response hooks, or to send
    /// it once more after a GO_AWAY.
    fn keep(&self, request: &RemotingCommand) -> Option<RemotingCommand> {
        (!self.inner.hooks.is_empty() || self.inner.config.reconnect_for_go_away)
            .then(|| request.clone())
    }

    /// Tells the GO_AWAY listener, if any.
    fn told_go_away(&self, addr: &str) {
        if let Some(listener) = &self.inner.go_away {
            listener(addr);
        }
    }

    /// Takes `conn` out of the connection table (if it is still the one there) without closing
    /// it: requests in flight on it are still answered, new ones dial a fresh connection.
    fn evict(&self, addr: &str, conn: &ConnectionHandle) {
        let mut conns = lock(&self.inner.connections);
        if conns.get(addr).is_some_and(|c| c.same_as(conn)) {
            conns.remove(addr);
        }
    }

    /// Java's answer to GO_AWAY: the same request (new opaque) on a new connection, within what
    /// is left of the timeout; a second GO_AWAY is an error.
    async fn resend_after_go_away(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        deadline: Instant,
        sync: bool,
    ) -> Result<RemotingCommand, RemotingError> {
        let timed_out = || RemotingError::Timeout {
            addr: addr.to_owned(),
            timeout_ms: 0,
        };
        if deadline <= Instant::now() {
            return Err(timed_out());
        }
        request.opaque = rmq_protocol::next_opaque();
        let conn = self.connection_by(addr, Some(deadline)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let outcome = conn.invoke(request.clone(), left).await;
        match outcome {
            Ok(resp) if resp.code == response::GO_AWAY => Err(RemotingError::GoAway {
                addr: addr.to_owned(),
            }),
            outcome => self.settle(&conn, Some(&request), outcome, self.close_on_timeout(sync)),
        }
    }

    /// What every invoke path does with an outcome: after-response hooks on a response; on a
    /// timeout (when `close_on_timeout`) or a failed send, close the socket (Java's
    /// `clientCloseSocketIfTimeout` for sync calls, and a channel that cannot write is useless).
    fn settle(
        &self,
        conn: &ConnectionHandle,
        request: Option<&RemotingCommand>,
        outcome: Result<RemotingCommand, RemotingError>,
        close_on_timeout: bool,
    ) -> Result<RemotingCommand, RemotingError> {
        match outcome {
            Ok(mut resp) => {
                if let Some(req) = request {
                    for hook in self.inner.hooks.iter() {
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            hook.after_response(conn.peer(), req, &mut resp)
                        }));
                        ran.unwrap_or_else(|p| Err(hook_panicked(&*p)))
                            .map_err(|e| hook_error(conn.peer(), e))?;
                    }
                }
                Ok(resp)
            }
            Err(e) => {
                match &e {
                    RemotingError::Timeout { .. } if close_on_timeout => conn.close(),
                    RemotingError::SendRequest { .. } | RemotingError::Closed { .. } => {
                        conn.close()
                    }
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// Callback form of [`RemotingClient::invoke_async`] (Java's `invokeAsync` with an
    /// `InvokeCallback`): `callback` runs exactly once with the response or the error.
    ///
    /// In the steady state (a permit free, the connection up) the request is sent right here and
    /// `callback` runs on the connection's reader task when the response is read: no task, channel
    /// or timer per request, which is what lets one connection carry hundreds of thousands of
    /// requests a second. So `callback` must be quick and must not block; it may send the next
    /// request. Otherwise (permits exhausted, connection still to dial) the request takes the
    /// [`RemotingClient::invoke_async`] path on a task of its own. A request that cannot be queued
    /// at all runs `callback` with the error before this returns.
    pub fn invoke_async_callback<F>(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
        callback: F,
    ) where
        F: FnOnce(Result<RemotingCommand, RemotingError>) + Send + 'static,
    {
        let fast = match self.inner.async_permits.clone().try_acquire_owned() {
            Ok(permit) => self.live(addr).map(|conn| (permit, conn)),
            Err(_) => None,
        };
        let Some((permit, conn)) = fast else {
            let fut = self.invoke_async(addr, request, timeout);
            tokio::spawn(async move { callback(fut.await) });
            return;
        };
        let cfg = &self.inner.config;
        request.language = cfg.language;
        request.version = cfg.version;
        if let Err(e) = self.run_before_hooks(addr, &mut request) {
            return callback(Err(e));
        }
        // The writer hands the request back once written when hooks or a GO_AWAY resend may
        // need it: no copy per request.
        let keep = !self.inner.hooks.is_empty() || cfg.reconnect_for_go_away;
        let (this, on_conn) = (self.clone(), conn.clone());
        let deadline = Instant::now() + timeout;
        conn.invoke_keeping(
            request,
            deadline,
            timeout,
            keep,
            Box::new(move |outcome, kept| {
                // The permit goes back first, so the callback can send the next request with it.
                drop(permit);
                let go_away = matches!(&outcome, Ok(r) if r.code == response::GO_AWAY);
                if go_away {
                    this.told_go_away(on_conn.peer());
                }
                match kept {
                    Some(req) if go_away && this.inner.config.reconnect_for_go_away => {
                        // Dialling takes a task; the callback runs there once the resend is done.
                        this.evict(on_conn.peer(), &on_conn);
                        tokio::spawn(async move {
                            let peer = on_conn.peer().to_owned();
                            callback(
                                this.resend_after_go_away(&peer, *req, deadline, false)
                                    .await,
                            )
                        });
                    }
                    kept => {
                        let close = this.close_on_timeout(false);
                        callback(this.settle(&on_conn, kept.as_deref(), outcome, close))
                    }
                }
            }),
        );
    }

    /// Sends `request` with the oneway flag: waits only for a oneway permit, the connection and
    /// room in its bounded write queue, never for an answer.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let _permit = Self::permit(
            &self.inner.oneway_permits,
            timeout,
            "invokeOnewayImpl",
            cfg.oneway_permits,
        )
        .await?;
        let conn = self.connection_by(addr, Some(start + timeout)).await?;
        request.language = cfg.language;
        request.version = cfg.version;
        request.mark_oneway();
        self.run_before_hooks(addr, &mut request)?;
        conn.invoke_oneway(
            request,
            timeout
                .saturating_sub(start.elapsed())
                .max(Duration::from_millis(1)),
        )
        .await
    }

    /// Replaces the NameServer list (shuffled, starting at a random index, as Java does).
    pub fn update_namesrv_addresses(&self, addrs: &[String]) {
        let mut shuffled = addrs.to_vec();
        shuffled.shuffle(&mut rand::thread_rng());
        let mut ns = lock(&self.inner.namesrv);
        if ns.addrs != shuffled {
            ns.index = rand::thread_rng().gen_range(0..999);
            ns.chosen = ns.chosen.take().filter(|c| shuffled.contains(c));
            ns.unreachable.retain(|a| shuffled.contains(a));
            ns.addrs = shuffled;
        }
    }

    /// The NameServer addresses, in selection order.
    pub fn namesrv_addresses(&self) -> Vec<String> {
        lock(&self.inner.namesrv).addrs.clone()
    }

    /// Connects to every configured NameServer (Java's `scanAvailableNameSrv`, which a client
    /// runs every `connectTimeoutMillis`) and remembers which could not be reached, so fail-over
    /// goes to a reachable one first. Returns the reachable addresses.
    pub async fn scan_namesrv(&self) -> Vec<String> {
        let addrs = self.namesrv_addresses();
        let mut dials = tokio::task::JoinSet::new();
        for addr in addrs.iter().cloned() {
            let this = self.clone();
            dials.spawn(async move {
                let ok = this.connection(&addr).await.is_ok();
                (addr, ok)
            });
        }
        let mut unreachable = std::collections::HashSet::new();
        while let Some(done) = dials.join_next().await {
            if let Ok((addr, false)) = done {
                tracing::debug!(%addr, "NameServer unreachable in scan");
                unreachable.insert(addr);
            }
        }
        lock(&self.inner.namesrv).unreachable = unreachable.clone();
        addrs
            .into_iter()
            .filter(|a| !unreachable.contains(a))
            .collect()
    }

    /// The configured NameServers the last scan reached (all of them before any scan).
    pub fn available_namesrv_addresses(&self) -> Vec<String> {
        let ns = lock(&self.inner.namesrv);
        ns.addrs
            .iter()
            .filter(|a| !ns.unreachable.contains(*a))
            .cloned()
            .collect()
    }

    /// The NameServer to use: the chosen one while its connection is alive, else the next ones in
    /// turn until one connects (fail-over).
    pub async fn namesrv_connection(&self) -> Result<(String, ConnectionHandle), RemotingError> {
        let (chosen, addrs, start, unreachable) = {
            let ns = lock(&self.inner.namesrv);
            (
                ns.chosen.clone(),
                ns.addrs.clone(),
                ns.index,
                ns.unreachable.clone(),
            )
        };
        if addrs.is_empty() {
            return Err(RemotingError::NoNamesrv);
        }
        if let Some(addr) = chosen {
            if let Some(c) = self.live(&addr) {
                return Ok((addr, c));
            }
        }
        let mut last_err = RemotingError::NoNamesrv;
        for idx in failover_order(&addrs, start, &unreachable) {
            let addr = &addrs[idx];
            match self.connection(addr).await {
                Ok(c) => {
                    let mut ns = lock(&self.inner.namesrv);
                    ns.index = idx;
                    ns.chosen = Some(addr.clone());
                    return Ok((addr.clone(), c));
                }
                Err(e) => {
                    tracing::warn!(addr, error = %e, "NameServer unreachable, trying the next one");
                    last_err = e;
                }
            }
        }
        Err(last_err)
    }

    /// Sends to the current NameServer, failing over to the next one when the connection fails.
    pub async fn invoke_namesrv(
        &self,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let (addr, _) = self.namesrv_connection().await?;
        self.invoke_sync(&addr, request, timeout).await
    }
}

/// The order fail-over tries NameServers in: in turn from the one after `start` (Java's
/// `++index % size`), the ones the last scan reached before the ones it could not.
fn failover_order(
    addrs: &[String],
    start: usize,
    unreachable: &std::collections::HashSet<String>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..addrs.len())
        .map(|i| (start + 1 + i) % addrs.len())
        .collect();
    order.sort_by_key(|&idx| unreachable.contains(&addrs[idx]));
    order
}

/// A client hook's panic, as the failure of the request it ran for.
fn hook_panicked(payload: &(dyn std::any::Any + Send)) -> HookError {
    let msg = crate::panic_message(payload);
    tracing::error!(panic = %msg, "client rpc hook panicked");
    HookError::Failed(format!("panicked: {msg}"))
}

fn hook_error(addr: &str, e: HookError) -> RemotingError {
    RemotingError::SendRequest {
        addr: addr.to_owned(),
        reason: format!("rpc hook: {e}"),
    }
}

/// Connects to `addr`, from `local_ip` when one is set (a multi-homed host choosing its source
/// address; tests use 127.0.0.x to stand for distinct clients).
async fn dial(addr: &str, local_ip: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = local_ip else {
        return TcpStream::connect(addr).await;
    };
    let mut last = None;
    for target in tokio::net::lookup_host(addr).await? {
        if target.is_ipv4() != ip.is_ipv4() {
            continue;
        }
        let socket = if ip.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(std::net::SocketAddr::new(ip, 0))?;
        match socket.connect(target).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("no address of {addr} in the family of {ip}"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_tries_reachable_namesrvs_first_in_turn() {
        let addrs: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let none = std::collections::HashSet::new();
        assert_eq!(failover_order(&addrs, 1, &none), vec![2, 3, 0, 1]);
        let down: std::collections::HashSet<String> = ["c".to_owned(), "a".to_owned()].into();
        assert_eq!(failover_order(&addrs, 1, &down), vec![3, 1, 2, 0]);
        assert_eq!(failover_order(&addrs, 998, &down), vec![3, 1, 0, 2]);
    }
}
