//! The read side of a connection: frames decoded, responses matched to their requests, and
//! requests admitted under the in-flight and byte budgets, then handed to the [`RequestSink`].

/// Frames at least this large have their bytes reserved from the request budgets before they are
/// read; smaller ones are accounted once decoded (a read chunk holds few of them).
use super::{epoch, now_ms, ConnectionConfig, ConnectionHandle, RequestSink, Shared};
use crate::budget::ByteBudget;
use crate::event::{ChannelEvent, EventSink};
use bytes::BytesMut;
use rmq_protocol::{frame, RemotingCodec};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;
use tokio_util::codec::Decoder;

const RESERVE_BEFORE_READ: usize = 64 * 1024;

/// Bytes of one request held against the per-connection and server-wide budgets until the
/// request has been processed (given back on drop).
pub(crate) struct RequestBytes {
    budget: Arc<RequestBudget>,
    bytes: usize,
}

impl Drop for RequestBytes {
    fn drop(&mut self) {
        self.budget.connection.give(self.bytes);
        if let Some(client) = &self.budget.client {
            client.give(self.bytes);
        }
        if let Some(total) = &self.budget.total {
            total.give(self.bytes);
        }
    }
}

/// How a connection's read loop ended.
pub(super) enum ReadOutcome {
    Eof,
    Closed,
    Idle,
    /// No complete first frame within the first-frame timeout.
    Silent,
    Error(String),
}

/// Reads frames until the connection ends: responses complete their requests, requests are
/// admitted (back-pressure: reading stops while they wait) and handed to `dispatcher`.
pub(super) async fn read_loop<R: AsyncRead + Unpin, D: RequestSink>(
    mut reader: R,
    conn: &ConnectionHandle,
    config: &ConnectionConfig,
    client_bytes: Option<Arc<ByteBudget>>,
    mut first_frame_deadline: Option<tokio::time::Instant>,
    dispatcher: &Arc<D>,
) -> ReadOutcome {
    let shared = &conn.shared;
    let mut codec = RemotingCodec::new(config.max_frame_length);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let inflight = Arc::new(Semaphore::new(config.max_inflight.max(1)));
    let budget = Arc::new(RequestBudget {
        connection: ByteBudget::new(config.request_bytes),
        client: client_bytes,
        total: config.request_bytes_total.clone(),
    });
    // Bytes reserved for the large frame being read, before its body arrived.
    let mut reserved: Option<RequestBytes> = None;
    loop {
        loop {
            let frame_len = match frame::check_length(&buf, config.max_frame_length) {
                Ok(Some(total)) if total <= buf.len() => total,
                _ => 0,
            };
            match codec.decode(&mut buf) {
                Ok(Some(cmd)) => {
                    first_frame_deadline = None;
                    let reservation = reserved.take();
                    if cmd.is_response() {
                        drop(reservation);
                        let opaque = cmd.opaque;
                        if !shared.table.complete(opaque, Ok(cmd)) {
                            tracing::warn!(peer = %shared.peer, opaque, "receive response, but not matched any request");
                        }
                    } else {
                        // Back-pressure points: an in-flight slot, then the request's bytes,
                        // before reading on.
                        let Some((permit, bytes)) =
                            admit(&inflight, &budget, shared, frame_len, reservation).await
                        else {
                            return ReadOutcome::Closed;
                        };
                        dispatcher.dispatch(cmd, conn, permit, bytes).await;
                    }
                }
                Ok(None) => break,
                Err(e) => return ReadOutcome::Error(format!("malformed frame: {e}")),
            }
        }
        if !make_room(&mut buf, config, &budget, shared, &mut reserved).await {
            return ReadOutcome::Closed;
        }
        if let Some(end) =
            read_more(&mut reader, &mut buf, shared, config, first_frame_deadline).await
        {
            return end;
        }
    }
}

/// Waits for more bytes into `buf`, until the idle timeout (or the first frame's deadline):
/// `Some` when the connection ends instead.
async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    shared: &Shared,
    config: &ConnectionConfig,
    first_frame_deadline: Option<tokio::time::Instant>,
) -> Option<ReadOutcome> {
    let mut idle_deadline = tokio::time::Instant::from_std(
        epoch()
            + Duration::from_millis(shared.last_activity.load(Ordering::Relaxed))
            + config.idle_timeout,
    );
    if let Some(d) = first_frame_deadline {
        if tokio::time::Instant::now() >= d {
            return Some(ReadOutcome::Silent);
        }
        idle_deadline = idle_deadline.min(d);
    }
    tokio::select! {
        r = reader.read_buf(buf) => match r {
            Ok(0) => return Some(ReadOutcome::Eof),
            Ok(n) => {
                shared.last_activity.store(now_ms(), Ordering::Relaxed);
                if let Some(t) = &shared.traffic {
                    t.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            // A TLS peer that closes the socket without close_notify (Java clients, our
            // CLI, most clients) has simply closed: an end, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Some(ReadOutcome::Eof),
            Err(e) => return Some(ReadOutcome::Error(format!("read failed: {e}"))),
        },
        _ = tokio::time::sleep_until(idle_deadline) => {
            let last = shared.last_activity.load(Ordering::Relaxed);
            if now_ms().saturating_sub(last) >= config.idle_timeout.as_millis() as u64 {
                return Some(ReadOutcome::Idle);
            }
        }
        _ = shared.closed.cancelled() => return Some(ReadOutcome::Closed),
    }
    None
}

/// Admits a request of `frame_len` bytes: an in-flight slot of its connection, then its bytes
/// (already reserved for a large frame, else taken now). `None` when the connection closed while
/// waiting.
async fn admit(
    inflight: &Arc<Semaphore>,
    budget: &Arc<RequestBudget>,
    shared: &Shared,
    frame_len: usize,
    reservation: Option<RequestBytes>,
) -> Option<(tokio::sync::OwnedSemaphorePermit, RequestBytes)> {
    let permit = tokio::select! {
        p = inflight.clone().acquire_owned() => p.expect("semaphore never closed"),
        _ = shared.closed.cancelled() => return None,
    };
    let bytes = match reservation {
        Some(r) => r,
        None => match RequestBudget::try_acquire(budget, frame_len) {
            Some(b) => b,
            None => tokio::select! {
                b = RequestBudget::acquire(budget, frame_len) => b,
                _ = shared.closed.cancelled() => return None,
            },
        },
    };
    Some((permit, bytes))
}

/// Grows the read buffer by what the next frame needs (its length was checked against the
/// max); a large frame's bytes are first reserved from the budgets (waiting here is the
/// back-pressure, and nothing is allocated for it meanwhile), then room is made for all of it at
/// once (no doubling and copying on the way up). `false` when the connection closed meanwhile.
async fn make_room(
    buf: &mut BytesMut,
    config: &ConnectionConfig,
    budget: &Arc<RequestBudget>,
    shared: &Shared,
    reserved: &mut Option<RequestBytes>,
) -> bool {
    let need = match frame::check_length(buf, config.max_frame_length) {
        Ok(Some(total)) if total >= RESERVE_BEFORE_READ && total > buf.len() => {
            if reserved.is_none() {
                *reserved = Some(tokio::select! {
                    b = RequestBudget::acquire(budget, total) => b,
                    _ = shared.closed.cancelled() => return false,
                });
            }
            total - buf.len()
        }
        Ok(Some(total)) if total > buf.len() => total - buf.len(),
        _ => 8 * 1024,
    };
    if buf.capacity() - buf.len() < need {
        buf.reserve(need.max(8 * 1024));
    }
    true
}

/// The byte budgets requests of one connection are admitted under: its own, its client's
/// (shared by the client's connections) and the server's.
pub(crate) struct RequestBudget {
    connection: ByteBudget,
    client: Option<Arc<ByteBudget>>,
    total: Option<Arc<ByteBudget>>,
}

impl RequestBudget {
    /// Takes a frame of `bytes` from every budget if it fits now (the usual case: no waiting,
    /// an atomic add each).
    fn try_acquire(this: &Arc<Self>, bytes: usize) -> Option<RequestBytes> {
        if !matches!(this.connection.try_take(bytes), Ok(true)) {
            return None;
        }
        if let Some(client) = &this.client {
            if !matches!(client.try_take(bytes), Ok(true)) {
                this.connection.give(bytes);
                return None;
            }
        }
        if let Some(total) = &this.total {
            if !matches!(total.try_take(bytes), Ok(true)) {
                this.connection.give(bytes);
                if let Some(client) = &this.client {
                    client.give(bytes);
                }
                return None;
            }
        }
        Some(RequestBytes {
            budget: this.clone(),
            bytes,
        })
    }

    /// Waits until a frame of `bytes` fits this connection's budget, then its client's, then
    /// the server's (always in that order, so no two waiters hold each other up crosswise).
    async fn acquire(this: &Arc<Self>, bytes: usize) -> RequestBytes {
        // No budget is ever closed (the server's lives as long as the server, a client's as
        // long as one of its connections, this one as long as the read loop that owns it).
        let _ = this.connection.take(bytes).await;
        if let Some(client) = &this.client {
            let _ = client.take(bytes).await;
        }
        if let Some(total) = &this.total {
            let _ = total.take(bytes).await;
        }
        RequestBytes {
            budget: this.clone(),
            bytes,
        }
    }
}

/// Logs how a connection's read loop ended and emits the matching channel event (an end of
/// file or a close on our side emits none here: Close follows for every connection).
pub(super) fn report(outcome: ReadOutcome, conn: &ConnectionHandle, events: &EventSink) {
    let peer = conn.peer();
    match outcome {
        ReadOutcome::Eof | ReadOutcome::Closed => {}
        ReadOutcome::Idle => {
            tracing::info!(%peer, "closing idle connection");
            events.emit(ChannelEvent::Idle(conn.channel()));
        }
        ReadOutcome::Silent => {
            // Load-balancer and orchestrator health checks connect and say nothing.
            tracing::debug!(%peer, "closing connection: no complete first frame in time");
            events.emit(ChannelEvent::Idle(conn.channel()));
        }
        ReadOutcome::Error(e) => {
            tracing::warn!(%peer, error = %e, "closing connection");
            events.emit(ChannelEvent::Exception(conn.channel(), e));
        }
    }
}
