//! The write side of a connection: queued frames coalesced into vectored writes, large bodies
//! written from their own buffers, write-budget bytes given back as they reach the socket.

use super::{now_ms, Shared};
use crate::error::RemotingError;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use rmq_protocol::{frame, RemotingCommand};
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bodies at least this large are written from their own buffer (vectored write), not copied.
const ZERO_COPY_BODY: usize = 16 * 1024;
/// Stop coalescing queued frames into one write past this many bytes.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Writes queued frames, coalescing everything already queued into one (vectored) write, and
/// gives their write-budget bytes back once written.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<(RemotingCommand, usize)>,
    shared: Arc<Shared>,
    stall_timeout: Duration,
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
        let mut budget = 0usize;
        let mut next = Some(first);
        while let Some((cmd, cost)) = next {
            batch += encode_into(&cmd, &mut buf, &mut segments, &shared);
            budget += cost;
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
        if let Err(e) = write_segments(&mut writer, &mut segments, &shared, stall_timeout).await {
            if e.kind() == std::io::ErrorKind::TimedOut {
                tracing::warn!(peer = %shared.peer, stall = ?stall_timeout, "closing connection: the peer accepted no byte of its pending output in time");
            } else {
                tracing::debug!(peer = %shared.peer, error = %e, "write failed");
            }
            shared.closed.cancel();
            break;
        }
        shared.write_budget.give(budget);
    }
    let _ = tokio::time::timeout(stall_timeout, writer.shutdown()).await;
    // Anything still queued can no longer be written; fail its waiters through the table.
    shared.is_closed.store(true, Ordering::Release);
    shared.write_budget.close();
    rx.close();
    while let Ok((cmd, _)) = rx.try_recv() {
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

/// Writes every segment. Each write call must accept some bytes within `stall_timeout` (a peer
/// that stops reading is closed, one that reads slowly is not); every accepted byte counts as
/// activity for the idle timer.
async fn write_segments<W: AsyncWrite + Unpin>(
    writer: &mut W,
    segments: &mut Vec<Bytes>,
    shared: &Shared,
    stall_timeout: Duration,
) -> std::io::Result<()> {
    let stalled = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let mut idx = 0;
    while idx < segments.len() {
        let written = if segments.len() - idx == 1 {
            let seg = &segments[idx];
            // The stall timer is armed only when the socket has no room right now.
            match writer.write(seg).now_or_never() {
                Some(r) => r?,
                None => match tokio::time::timeout(stall_timeout, writer.write(seg)).await {
                    Ok(r) => r?,
                    Err(_) => return Err(stalled()),
                },
            }
        } else {
            let slices: Vec<IoSlice<'_>> = segments[idx..]
                .iter()
                .take(64)
                .map(|b| IoSlice::new(b))
                .collect();
            match writer.write_vectored(&slices).now_or_never() {
                Some(r) => r?,
                None => {
                    match tokio::time::timeout(stall_timeout, writer.write_vectored(&slices)).await
                    {
                        Ok(r) => r?,
                        Err(_) => return Err(stalled()),
                    }
                }
            }
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        shared.last_activity.store(now_ms(), Ordering::Relaxed);
        if let Some(t) = &shared.traffic {
            t.bytes_out.fetch_add(written as u64, Ordering::Relaxed);
        }
        let mut n = written;
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
    match writer.flush().now_or_never() {
        Some(r) => r,
        None => match tokio::time::timeout(stall_timeout, writer.flush()).await {
            Ok(r) => r,
            Err(_) => Err(stalled()),
        },
    }
}
