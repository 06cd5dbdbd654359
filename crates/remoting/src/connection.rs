//! One TCP connection: a read loop (codec + dispatch) and a coalescing writer task.
//!
//! Both client and server connections are this type; the only difference is the dispatcher
//! (processor registry, hooks) they were given. Bounds everywhere, in frames and in bytes:
//! - the write queue holds at most `write_queue_frames` frames and `write_queue_bytes` bytes
//!   (released as the bytes reach the socket), so a peer that does not read costs at most that;
//! - at most `max_inflight` requests of one connection are processed or wait for their reply to
//!   be queued, and at most `request_bytes` bytes of them are being processed, plus a server-wide
//!   byte budget shared by all connections; a large frame's bytes are reserved before it is read,
//!   so going over a budget stops reading (back-pressure) instead of allocating.
//!
//! When a peer pipelines requests and reads its replies slowly, its replies fill its write queue,
//! its requests wait for room there (holding their in-flight permits, never an executor slot, a
//! byte budget or anything else shared), the permits run out and the read loop stops reading that
//! connection: TCP pushes back on the peer and nothing is dropped. A peer that accepts no byte for
//! `write_stall_timeout` while we have output for it is closed.

use crate::budget::ByteBudget;
use crate::error::RemotingError;
use crate::event::{ChannelEvent, EventSink};
use crate::per_client::ClientSlot;
use crate::response_table::{Completion, InvokeCallback, KeepingCallback, ResponseTable};
use rmq_protocol::RemotingCommand;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

mod read;
mod write;

pub(crate) use read::RequestBytes;

/// How often callback waiters past their deadline are failed (Java scans every second).
const EXPIRY_SCAN: Duration = Duration::from_millis(100);

/// Bytes a frame's header is assumed to take beyond its ext fields and remark, for the byte
/// budgets (the real size is known only once encoded, in the writer).
const HEADER_OVERHEAD: usize = 64;

/// Per-connection limits.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionConfig {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_frame_length: usize,
    pub(crate) write_queue_frames: usize,
    /// Bytes queued for writing (and being written) before senders wait.
    pub(crate) write_queue_bytes: usize,
    /// Close the connection when it accepts no byte of pending output for this long.
    pub(crate) write_stall_timeout: Duration,
    pub(crate) max_inflight: usize,
    /// Bytes of this connection's requests being processed at once.
    pub(crate) request_bytes: usize,
    /// Bytes of requests being processed on all connections together (server-wide), if bounded.
    pub(crate) request_bytes_total: Option<Arc<ByteBudget>>,
    /// Bytes queued for writing on all connections together (server-wide), if bounded.
    pub(crate) write_bytes_total: Option<Arc<ByteBudget>>,
    /// Where bytes read and written are counted (a server's totals), if anywhere.
    pub(crate) traffic: Option<Arc<Traffic>>,
}

/// Bytes read from and written to the sockets of a server's connections, for metrics: one
/// relaxed atomic add per socket read and per write batch.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes read from peers (frames, after TLS).
    pub bytes_in: AtomicU64,
    /// Bytes written to peers (frames, before TLS).
    pub bytes_out: AtomicU64,
}

/// Where a connection's queued output is counted: its own budget and, on a server, the shared
/// one. The shared one bounds what all connections together hold; so that connections that stop
/// reading cannot starve the others through it, a connection with nothing queued may always
/// queue one frame (an overdraft of the shared budget, at most one frame per connection).
struct WriteBudget {
    connection: ByteBudget,
    total: Option<Arc<ByteBudget>>,
}

impl WriteBudget {
    fn try_take(&self, n: usize) -> Result<bool, crate::budget::Closed> {
        if !self.connection.try_take(n)? {
            return Ok(false);
        }
        if let Some(total) = &self.total {
            if !matches!(total.try_take(n), Ok(true)) {
                if self.connection.used() == n {
                    total.force_take(n);
                } else {
                    self.connection.give(n);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    async fn take(&self, n: usize) -> Result<(), crate::budget::Closed> {
        loop {
            if self.try_take(n)? {
                return Ok(());
            }
            let own = self.connection.watch();
            let shared = self.total.as_ref().map(|t| t.watch());
            // Watching both before the re-check: no give in between is missed.
            if self.try_take(n)? {
                return Ok(());
            }
            match shared {
                None => own.changed().await,
                Some(shared) => {
                    tokio::select! {
                        _ = own.changed() => {}
                        _ = shared.changed() => {}
                    }
                }
            }
        }
    }

    fn give(&self, n: usize) {
        self.connection.give(n);
        if let Some(total) = &self.total {
            total.give(n);
        }
    }

    fn close(&self) {
        self.connection.close();
    }
}

impl std::fmt::Debug for ByteBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteBudget")
    }
}

/// A process-wide connection id: what identifies a connection in events and registrations (its
/// peer address can be claimed by anyone through a PROXY header, an id cannot).
pub(crate) fn next_connection_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Held by a connection's task until it ends; dropping it gives the slot back (connection cap).
pub(crate) struct SlotGuard(pub(crate) Arc<std::sync::atomic::AtomicUsize>);

/// What a server connection holds of its server's shares until it ends: its place under the
/// server's connection cap and under its client's ([`crate::per_client`]).
pub(crate) struct ServerSlots {
    pub(crate) _server: SlotGuard,
    pub(crate) client: Option<ClientSlot>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Shared {
    id: u64,
    peer: Arc<str>,
    /// The client the peer belongs to (its IP), for per-client budgets.
    client_ip: Option<std::net::IpAddr>,
    /// Frames to write, each with the write-budget bytes it holds.
    tx: mpsc::Sender<(RemotingCommand, usize)>,
    /// Bytes that may be queued for writing; the writer gives them back once written.
    write_budget: WriteBudget,
    table: ResponseTable,
    closed: CancellationToken,
    is_closed: AtomicBool,
    /// Milliseconds since `epoch()` of the last read or write.
    last_activity: AtomicU64,
    max_frame_length: usize,
    traffic: Option<Arc<Traffic>>,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// A cheap, cloneable handle to a live (or dead) connection: send, invoke, close.
#[derive(Clone)]
pub struct ConnectionHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("peer", &self.shared.peer)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Removes a waiter from the table if its invocation ends any other way than by its response
/// (a delivered response already took the entry out: no second lookup then).
struct PendingGuard<'a> {
    table: &'a ResponseTable,
    opaque: i32,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.table.remove(self.opaque);
        }
    }
}

impl ConnectionHandle {
    /// Remote address "ip:port" (from the PROXY header when a trusted proxy sent one).
    pub fn peer(&self) -> &str {
        &self.shared.peer
    }

    /// The client this connection belongs to for per-client budgets: the peer's IP address
    /// (the PROXY header's source when a trusted proxy sent one). `None` only when the peer
    /// is not an IP address.
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.shared.client_ip
    }

    /// The connection as events name it.
    pub(crate) fn channel(&self) -> crate::event::Channel {
        crate::event::Channel {
            id: self.shared.id,
            peer: self.shared.peer.to_string(),
        }
    }

    /// This connection's process-wide id (also in its [`crate::ChannelEvent`]s). Unlike the peer
    /// address, no client can claim another connection's id.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The peer address as the shared string the connection holds (no allocation per request).
    pub(crate) fn peer_shared(&self) -> Arc<str> {
        self.shared.peer.clone()
    }

    /// True when both handles are the same connection.
    pub fn same_as(&self, other: &ConnectionHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// True once the connection is closed (it never reopens; dial a new one).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed.load(Ordering::Acquire)
    }

    /// Closes the connection: queued frames are still written, then the socket is shut down and
    /// every pending request fails at once.
    pub fn close(&self) {
        self.shared.closed.cancel();
    }

    /// Resolves once the connection is closed (by either side): a request waiting on an event
    /// for this peer (a held pull) stops waiting then.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await
    }

    /// Number of requests waiting for a response on this connection.
    pub fn pending_requests(&self) -> usize {
        self.shared.table.len()
    }

    /// Queues a frame for writing, waiting for room in the bounded write queue (in frames and in
    /// bytes). Fails when the connection closes while waiting.
    pub async fn send(&self, cmd: RemotingCommand) -> Result<(), RemotingError> {
        match self.try_queue(cmd)? {
            None => Ok(()),
            Some(cmd) => self.send_waiting(cmd).await,
        }
    }

    async fn send_waiting(&self, cmd: RemotingCommand) -> Result<(), RemotingError> {
        let cost = self.cost(&cmd);
        if self.shared.write_budget.take(cost).await.is_err() {
            return Err(RemotingError::closed(self.peer()));
        }
        // Closed while the frame waits for a slot: the writer is gone, the budget no longer matters.
        self.shared
            .tx
            .send((cmd, cost))
            .await
            .map_err(|_| RemotingError::closed(self.peer()))
    }

    /// Write-budget bytes `cmd` takes: its body, ext fields and remark, plus a fixed overhead.
    fn cost(&self, cmd: &RemotingCommand) -> usize {
        HEADER_OVERHEAD
            + cmd.body.len()
            + cmd.remark.as_ref().map_or(0, |r| r.len())
            + cmd.ext_fields.as_ref().map_or(0, |e| e.encoded_len_hint())
    }

    /// Queues `cmd` if the write queue has room (frames and bytes); gives it back when it has not.
    fn try_queue(&self, cmd: RemotingCommand) -> Result<Option<RemotingCommand>, RemotingError> {
        if cmd.body.len() + 8 > self.shared.max_frame_length {
            return Err(RemotingError::Protocol {
                addr: self.peer().to_owned(),
                reason: format!(
                    "body of {} bytes exceeds the max frame length",
                    cmd.body.len()
                ),
            });
        }
        if self.is_closed() {
            return Err(RemotingError::closed(self.peer()));
        }
        let cost = self.cost(&cmd);
        match self.shared.write_budget.try_take(cost) {
            Ok(true) => {}
            Ok(false) => return Ok(Some(cmd)),
            Err(_) => return Err(RemotingError::closed(self.peer())),
        }
        match self.shared.tx.try_send((cmd, cost)) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full((cmd, cost))) => {
                self.shared.write_budget.give(cost);
                Ok(Some(cmd))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RemotingError::closed(self.peer())),
        }
    }

    /// Sends a request and waits for its response until `timeout`.
    ///
    /// Completes exactly once: with the response, `Timeout`, or `SendRequest` when the connection
    /// dies first (immediately, not at the timeout). The pending entry never outlives the call.
    pub async fn invoke(
        &self,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        let opaque = cmd.opaque;
        if let Err((_, why)) = self.shared.table.insert(opaque, Completion::Task(tx)) {
            return Err(why.into_error(self.peer(), opaque));
        }
        let mut guard = PendingGuard {
            table: &self.shared.table,
            opaque,
            armed: true,
        };
        let timed_out = || RemotingError::Timeout {
            addr: self.peer().to_owned(),
            timeout_ms: timeout.as_millis() as u64,
        };
        // Only a full write queue needs a timer for the send.
        if let Some(cmd) = self.try_queue(cmd)? {
            match Box::pin(tokio::time::timeout_at(deadline, self.send_waiting(cmd))).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => {}
            }
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => {
                guard.armed = false;
                result
            }
            Ok(Err(_)) => Err(RemotingError::closed(self.peer())),
            Err(_) => Err(timed_out()),
        }
    }

    /// Sends a request whose outcome goes to `callback` (Java's `invokeAsync` with an
    /// `InvokeCallback`): no task per request, the callback runs on this connection's reader task
    /// as the response arrives, so it must be quick and must not block (it may send the next
    /// request). A request still unanswered at `timeout` fails with `Timeout` within the expiry
    /// scan interval (100 ms); a dead connection fails it at once.
    ///
    /// `callback` runs exactly once; when the request cannot even be queued (closed connection,
    /// oversized body) it runs with that error before this returns.
    pub fn invoke_callback(
        &self,
        cmd: RemotingCommand,
        timeout: Duration,
        callback: InvokeCallback,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        let callback: KeepingCallback = Box::new(move |outcome, _| callback(outcome));
        self.invoke_keeping(cmd, deadline, timeout, false, callback);
    }

    /// [`ConnectionHandle::invoke_callback`] for the client: with `keep`, the writer hands the
    /// request back to the waiter once written, and the callback gets it with the outcome (for
    /// after-response hooks and GO_AWAY resends, without a copy of every request).
    /// `deadline` is now + `timeout`, passed in so that the caller's clock read serves both.
    pub(crate) fn invoke_keeping(
        &self,
        cmd: RemotingCommand,
        deadline: tokio::time::Instant,
        timeout: Duration,
        keep: bool,
        callback: KeepingCallback,
    ) {
        let opaque = cmd.opaque;
        let waiter = Completion::Callback {
            deadline,
            timeout_ms: timeout.as_millis() as u64,
            callback,
            keep,
            kept: None,
        };
        match self.shared.table.insert(opaque, waiter) {
            Err((waiter, why)) => return waiter.deliver(Err(why.into_error(self.peer(), opaque))),
            // The first callback waiter since the table had none: start the expiry scans.
            Ok(true) => self.spawn_expiry_scan(),
            Ok(false) => {}
        }
        match self.try_queue(cmd) {
            Ok(None) => {}
            // The write queue is full: wait for room on a task of its own, until the deadline.
            Ok(Some(cmd)) => {
                let conn = self.clone();
                tokio::spawn(async move {
                    let failed =
                        match tokio::time::timeout_at(deadline, conn.send_waiting(cmd)).await {
                            Ok(Ok(())) => return,
                            Ok(Err(e)) => e,
                            Err(_) => RemotingError::Timeout {
                                addr: conn.peer().to_owned(),
                                timeout_ms: timeout.as_millis() as u64,
                            },
                        };
                    conn.shared.table.complete(opaque, Err(failed));
                });
            }
            Err(e) => {
                self.shared.table.complete(opaque, Err(e));
            }
        }
    }

    /// Fails expired callback waiters every [`EXPIRY_SCAN`] for as long as there are any (callback
    /// waiters have no timers of their own). The table says when to start (its first callback
    /// waiter) and when to stop (none left, or the connection closed), under its lock, so exactly
    /// one scan runs while callbacks wait.
    fn spawn_expiry_scan(&self) {
        let shared = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(EXPIRY_SCAN).await;
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                if !shared
                    .table
                    .expire(tokio::time::Instant::now(), &shared.peer)
                {
                    break;
                }
            }
        });
    }

    /// Sends a oneway request (flag bit 1 set): nothing is awaited but room in the write queue.
    pub async fn invoke_oneway(
        &self,
        mut cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        cmd.mark_oneway();
        // Room in the queue (the usual case) needs no timer; only a wait for room does.
        let Some(cmd) = self.try_queue(cmd)? else {
            return Ok(());
        };
        match Box::pin(tokio::time::timeout(timeout, self.send_waiting(cmd))).await {
            Ok(r) => r,
            Err(_) => Err(RemotingError::Timeout {
                addr: self.peer().to_owned(),
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }
}

/// Where a connection's read loop hands each inbound request: the dispatcher (processor
/// registry, hooks, executors) implements it. Defined here so that the connection depends on
/// nothing that handles requests (they depend on it); the read loop is generic over it, so each
/// request is one static call, no allocation or dynamic dispatch more than a direct call.
pub(crate) trait RequestSink: Send + Sync + 'static {
    /// Handles one request that arrived on `conn`. Returns once the request is either answered
    /// or handed on: the read loop reads no further frame before then. `permit` (the
    /// connection's in-flight slot) and `bytes` (the request's share of the byte budgets) are
    /// given back by dropping them, as the sink decides.
    fn dispatch(
        self: &Arc<Self>,
        request: RemotingCommand,
        conn: &ConnectionHandle,
        permit: OwnedSemaphorePermit,
        bytes: RequestBytes,
    ) -> impl Future<Output = ()> + Send;
}

/// Starts the reader and writer tasks of a connection over `io`. `first_frame_deadline` (server
/// side): the connection is closed unless a whole frame arrived by then.
pub(crate) fn spawn<S, D: RequestSink>(
    io: S,
    peer: String,
    config: ConnectionConfig,
    first_frame_deadline: Option<tokio::time::Instant>,
    dispatcher: Arc<D>,
    events: EventSink,
    slots: Option<ServerSlots>,
) -> ConnectionHandle
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let client_bytes = slots
        .as_ref()
        .and_then(|s| s.client.as_ref())
        .and_then(|c| c.request_bytes.clone());
    // A server connection's client is the one its slot was taken for (the server's reading
    // of the peer, with its fallback); a client connection reads its peer.
    let client_ip = match slots.as_ref().and_then(|s| s.client.as_ref()) {
        Some(c) => Some(c.ip()),
        None => crate::per_client::client_ip(&peer),
    };
    let (tx, rx) = mpsc::channel(config.write_queue_frames.max(1));
    let shared = Arc::new(Shared {
        id: next_connection_id(),
        peer: peer.into(),
        client_ip,
        tx,
        write_budget: WriteBudget {
            connection: ByteBudget::new(config.write_queue_bytes),
            total: config.write_bytes_total.clone(),
        },
        table: ResponseTable::default(),
        closed: CancellationToken::new(),
        is_closed: AtomicBool::new(false),
        last_activity: AtomicU64::new(now_ms()),
        max_frame_length: config.max_frame_length,
        traffic: config.traffic.clone(),
    });
    let handle = ConnectionHandle {
        shared: shared.clone(),
    };
    events.emit(ChannelEvent::Connect(handle.channel()));
    let writer_task = tokio::spawn(write::write_loop(
        writer,
        rx,
        shared.clone(),
        config.write_stall_timeout,
    ));
    let h = handle.clone();
    tokio::spawn(async move {
        // Cleans up however the read loop ends, a panic included: the connection never stays
        // looking open with requests that wait for nothing.
        let mut end = ConnectionEnd {
            conn: h.clone(),
            events: events.clone(),
            writer: Some(writer_task),
            slots,
        };
        let outcome = read::read_loop(
            reader,
            &h,
            &config,
            client_bytes,
            first_frame_deadline,
            &dispatcher,
        )
        .await;
        read::report(outcome, &h, &events);
        end.fail_pending();
        if let Some(writer) = end.writer.take() {
            let _ = writer.await;
        }
    });
    handle
}

/// What ends a connection, run on drop so that it runs even if the reader task panics: mark it
/// closed, fail its pending requests, stop its writer, emit Close (after the writer is done) and
/// give back its connection slot.
struct ConnectionEnd {
    conn: ConnectionHandle,
    events: EventSink,
    writer: Option<tokio::task::JoinHandle<()>>,
    slots: Option<ServerSlots>,
}

impl ConnectionEnd {
    fn fail_pending(&self) {
        let shared = &self.conn.shared;
        // Pending requests fail now, not at their timeouts; senders waiting for room fail too.
        shared.is_closed.store(true, Ordering::Release);
        shared.table.fail_all(RemotingError::closed(&shared.peer));
        shared.write_budget.close();
        shared.closed.cancel();
    }
}

impl Drop for ConnectionEnd {
    fn drop(&mut self) {
        self.fail_pending();
        let (events, channel, slot) = (self.events.clone(), self.conn.channel(), self.slots.take());
        match self.writer.take() {
            // Ended normally: the writer was awaited.
            None => {
                events.emit(ChannelEvent::Close(channel));
                drop(slot);
            }
            // Unwinding from a panic in the reader, or the task was dropped (its runtime shut
            // down): wait for the writer elsewhere.
            Some(writer) => {
                if std::thread::panicking() {
                    tracing::error!(peer = %channel.peer, "connection reader panicked; connection closed");
                }
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = writer.await;
                        events.emit(ChannelEvent::Close(channel));
                        drop(slot);
                    });
                }
            }
        }
    }
}
