//! One TCP connection: a read loop (codec + dispatch) and a coalescing writer task.
//!
//! Both client and server connections are this type; the only difference is the dispatcher
//! (processor registry, hooks) they were given. Bounds everywhere: the write queue holds at most
//! `write_queue_frames` frames and each connection has at most `max_inflight` requests being
//! processed. When a peer pipelines requests and reads its replies slowly, replies fill the write
//! queue, processors wait to queue theirs, in-flight permits run out and the read loop stops
//! reading: TCP pushes back on the peer and nothing is dropped.

use crate::dispatch::Dispatcher;
use crate::error::RemotingError;
use crate::event::{ChannelEvent, EventSink};
use crate::response_table::{Completion, InvokeCallback, KeepingCallback, ResponseTable};
use bytes::{Buf, Bytes, BytesMut};
use rmq_protocol::{frame, RemotingCodec, RemotingCommand};
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

/// Bodies at least this large are written from their own buffer (vectored write), not copied.
const ZERO_COPY_BODY: usize = 16 * 1024;
/// How often callback waiters past their deadline are failed (Java scans every second).
const EXPIRY_SCAN: Duration = Duration::from_millis(100);
/// Stop coalescing queued frames into one write past this many bytes.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Per-connection limits and identity.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionConfig {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_frame_length: usize,
    pub(crate) write_queue_frames: usize,
    pub(crate) max_inflight: usize,
    /// Server side: the first frame must be complete within this after the connection starts.
    pub(crate) first_frame_timeout: Option<Duration>,
}

/// Held by a connection's task until it ends; dropping it gives the slot back (connection cap).
pub(crate) struct SlotGuard(pub(crate) Arc<std::sync::atomic::AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Shared {
    peer: Arc<str>,
    tx: mpsc::Sender<RemotingCommand>,
    table: ResponseTable,
    closed: CancellationToken,
    is_closed: AtomicBool,
    /// Milliseconds since `epoch()` of the last read or write.
    last_activity: AtomicU64,
    max_frame_length: usize,
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
    /// Remote address "ip:port".
    pub fn peer(&self) -> &str {
        &self.shared.peer
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

    /// Number of requests waiting for a response on this connection.
    pub fn pending_requests(&self) -> usize {
        self.shared.table.len()
    }

    /// Queues a frame for writing, waiting for room in the bounded write queue.
    pub async fn send(&self, cmd: RemotingCommand) -> Result<(), RemotingError> {
        match self.try_queue(cmd)? {
            None => Ok(()),
            Some(cmd) => self
                .shared
                .tx
                .send(cmd)
                .await
                .map_err(|_| RemotingError::closed(self.peer())),
        }
    }

    /// Queues `cmd` if the write queue has room; gives it back when the queue is full.
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
        match self.shared.tx.try_send(cmd) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(cmd)) => Ok(Some(cmd)),
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
        if self
            .shared
            .table
            .insert(opaque, Completion::Task(tx))
            .is_err()
        {
            return Err(RemotingError::closed(self.peer()));
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
            match Box::pin(tokio::time::timeout_at(deadline, self.send(cmd))).await {
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
            Err(waiter) => return waiter.deliver(Err(RemotingError::closed(self.peer()))),
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
                    let failed = match tokio::time::timeout_at(deadline, conn.send(cmd)).await {
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
        match Box::pin(tokio::time::timeout(timeout, self.send(cmd))).await {
            Ok(r) => r,
            Err(_) => Err(RemotingError::Timeout {
                addr: self.peer().to_owned(),
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }
}

/// Starts the reader and writer tasks of a connection over `io`.
pub(crate) fn spawn<S>(
    io: S,
    peer: String,
    config: ConnectionConfig,
    dispatcher: Arc<Dispatcher>,
    events: EventSink,
    slot: Option<SlotGuard>,
) -> ConnectionHandle
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let (tx, rx) = mpsc::channel(config.write_queue_frames.max(1));
    let shared = Arc::new(Shared {
        peer: peer.into(),
        tx,
        table: ResponseTable::default(),
        closed: CancellationToken::new(),
        is_closed: AtomicBool::new(false),
        last_activity: AtomicU64::new(now_ms()),
        max_frame_length: config.max_frame_length,
    });
    let handle = ConnectionHandle {
        shared: shared.clone(),
    };
    events.emit(ChannelEvent::Connect(shared.peer.to_string()));
    let writer_task = tokio::spawn(write_loop(writer, rx, shared.clone()));
    let h = handle.clone();
    tokio::spawn(async move {
        let outcome = read_loop(reader, &h, &config, &dispatcher).await;
        let peer = h.peer().to_owned();
        match outcome {
            ReadOutcome::Eof | ReadOutcome::Closed => {}
            ReadOutcome::Idle => {
                tracing::info!(%peer, "closing idle connection");
                events.emit(ChannelEvent::Idle(peer.clone()));
            }
            ReadOutcome::Silent => {
                tracing::warn!(%peer, "closing connection: no complete first frame in time");
                events.emit(ChannelEvent::Idle(peer.clone()));
            }
            ReadOutcome::Error(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                events.emit(ChannelEvent::Exception(peer.clone(), e));
            }
        }
        // Pending requests fail now, not at their timeouts.
        h.shared.is_closed.store(true, Ordering::Release);
        h.shared.table.fail_all(RemotingError::closed(&peer));
        h.shared.closed.cancel();
        let _ = writer_task.await;
        events.emit(ChannelEvent::Close(peer));
        drop(slot);
    });
    handle
}

enum ReadOutcome {
    Eof,
    Closed,
    Idle,
    /// No complete first frame within the first-frame timeout.
    Silent,
    Error(String),
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    conn: &ConnectionHandle,
    config: &ConnectionConfig,
    dispatcher: &Arc<Dispatcher>,
) -> ReadOutcome {
    let shared = &conn.shared;
    let mut codec = RemotingCodec::new(config.max_frame_length);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let inflight = Arc::new(Semaphore::new(config.max_inflight.max(1)));
    let mut first_frame_deadline = config
        .first_frame_timeout
        .map(|t| tokio::time::Instant::now() + t);
    loop {
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(cmd)) => {
                    first_frame_deadline = None;
                    if cmd.is_response() {
                        let opaque = cmd.opaque;
                        if !shared.table.complete(opaque, Ok(cmd)) {
                            tracing::warn!(peer = %shared.peer, opaque, "receive response, but not matched any request");
                        }
                    } else {
                        // Back-pressure point: wait for an in-flight slot before reading on.
                        let permit = tokio::select! {
                            p = inflight.clone().acquire_owned() => p.expect("semaphore never closed"),
                            _ = shared.closed.cancelled() => return ReadOutcome::Closed,
                        };
                        dispatcher.dispatch(cmd, conn, permit).await;
                    }
                }
                Ok(None) => break,
                Err(e) => return ReadOutcome::Error(format!("malformed frame: {e}")),
            }
        }
        // Grow by what the next frame needs (its length was checked against the max), in chunks.
        let need = match frame::check_length(&buf, config.max_frame_length) {
            Ok(Some(total)) if total > buf.len() => (total - buf.len()).min(1 << 20),
            _ => 8 * 1024,
        };
        if buf.capacity() - buf.len() < need {
            buf.reserve(need.max(8 * 1024));
        }
        let mut idle_deadline = tokio::time::Instant::from_std(
            epoch()
                + Duration::from_millis(shared.last_activity.load(Ordering::Relaxed))
                + config.idle_timeout,
        );
        if let Some(d) = first_frame_deadline {
            if tokio::time::Instant::now() >= d {
                return ReadOutcome::Silent;
            }
            idle_deadline = idle_deadline.min(d);
        }
        tokio::select! {
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) => return ReadOutcome::Eof,
                Ok(_) => shared.last_activity.store(now_ms(), Ordering::Relaxed),
                Err(e) => return ReadOutcome::Error(format!("read failed: {e}")),
            },
            _ = tokio::time::sleep_until(idle_deadline) => {
                let last = shared.last_activity.load(Ordering::Relaxed);
                if now_ms().saturating_sub(last) >= config.idle_timeout.as_millis() as u64 {
                    return ReadOutcome::Idle;
                }
            }
            _ = shared.closed.cancelled() => return ReadOutcome::Closed,
        }
    }
}

/// Writes queued frames, coalescing everything already queued into one (vectored) write.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<RemotingCommand>,
    shared: Arc<Shared>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut segments: Vec<Bytes> = Vec::new();
    let mut closing = false;
    loop {
        let first = if closing {
            rx.try_recv().ok()
        } else {
            tokio::select! {
                biased;
                m = rx.recv() => m,
                _ = shared.closed.cancelled() => { closing = true; rx.try_recv().ok() }
            }
        };
        let Some(first) = first else { break };
        if rx.is_empty() && !closing {
            // Tokio runs a task it just woke next (LIFO slot), so without this the writer would
            // take each frame alone: one syscall per request. Yielding once lets every task that
            // is ready queue its frame first, and they all leave in one write.
            tokio::task::yield_now().await;
        }
        let mut batch = 0;
        let mut next = Some(first);
        while let Some(cmd) = next {
            batch += encode_into(&cmd, &mut buf, &mut segments, &shared);
            // Encoded: a waiter that wants its request back gets it now, before any answer can
            // arrive (the batch is written below).
            if !cmd.is_response() && !cmd.is_oneway() {
                drop(shared.table.keep_written(cmd));
            }
            next = if batch < MAX_BATCH_BYTES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !buf.is_empty() {
            segments.push(buf.split().freeze());
        }
        if let Err(e) = write_segments(&mut writer, &mut segments).await {
            tracing::debug!(peer = %shared.peer, error = %e, "write failed");
            shared.closed.cancel();
            break;
        }
        shared.last_activity.store(now_ms(), Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
    // Anything still queued can no longer be written; fail its waiters through the table.
    shared.is_closed.store(true, Ordering::Release);
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        if !cmd.is_response() {
            shared
                .table
                .complete(cmd.opaque, Err(RemotingError::closed(&shared.peer)));
        }
    }
}

/// Encodes one frame after the bytes already in `buf`; big bodies become their own segment.
/// A frame that cannot be encoded is logged and, if it is a request, fails its waiter.
fn encode_into(
    cmd: &RemotingCommand,
    buf: &mut BytesMut,
    segments: &mut Vec<Bytes>,
    shared: &Shared,
) -> usize {
    let before = buf.len();
    let header = frame::encode_prefix(cmd, buf)
        .map(|()| buf.len() - before)
        .and_then(|header| {
            if header + cmd.body.len() > shared.max_frame_length {
                let length = (header + cmd.body.len() - 4) as u32;
                Err(rmq_protocol::ProtocolError::FrameTooLong {
                    length,
                    max: shared.max_frame_length,
                })
            } else {
                Ok(header)
            }
        });
    let header = match header {
        Ok(h) => h,
        Err(e) => {
            buf.truncate(before);
            tracing::warn!(peer = %shared.peer, opaque = cmd.opaque, error = %e, "cannot encode frame");
            if !cmd.is_response() {
                shared
                    .table
                    .complete(cmd.opaque, Err(RemotingError::protocol(&shared.peer, &e)));
            }
            return 0;
        }
    };
    if cmd.body.len() >= ZERO_COPY_BODY {
        segments.push(buf.split().freeze());
        segments.push(cmd.body.clone());
    } else {
        buf.extend_from_slice(&cmd.body);
    }
    header + cmd.body.len()
}

async fn write_segments<W: AsyncWrite + Unpin>(
    writer: &mut W,
    segments: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    if segments.len() == 1 {
        writer.write_all(&segments[0]).await?;
        segments.clear();
        return Ok(());
    }
    let mut idx = 0;
    while idx < segments.len() {
        let slices: Vec<IoSlice<'_>> = segments[idx..]
            .iter()
            .take(64)
            .map(|b| IoSlice::new(b))
            .collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let seg = &mut segments[idx];
            if n >= seg.len() {
                n -= seg.len();
                idx += 1;
            } else {
                seg.advance(n);
                n = 0;
            }
        }
    }
    segments.clear();
    Ok(())
}
