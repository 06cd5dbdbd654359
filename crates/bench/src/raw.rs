//! The raw-TCP baseline: a minimal tokio server that splits length-prefixed frames and writes them
//! straight back (or, for oneway runs, just counts them). It parses no header, allocates nothing
//! per frame and copies nothing: what is left is the kernel, the socket and tokio, i.e. the wire.

use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames larger than this close the connection (the remoting default max frame).
const MAX_FRAME: usize = rmq_protocol::DEFAULT_MAX_FRAME_LENGTH;

/// A running raw echo (or sink) server.
pub struct RawEchoServer {
    addr: SocketAddr,
    frames: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl RawEchoServer {
    /// Listens on `listen`; with `echo` false frames are counted and dropped (the oneway baseline).
    pub async fn start(listen: &str, echo: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let frames = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (f, s) = (frames.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    r = listener.accept() => r,
                    _ = s.cancelled() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (f, s) = (f.clone(), s.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        r = serve(stream, echo, &f) => {
                            if let Err(e) = r {
                                tracing::debug!(error = %e, "raw echo connection ended");
                            }
                        }
                        _ = s.cancelled() => {}
                    }
                });
            }
        });
        Ok(RawEchoServer { addr, frames, stop })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Frames received so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

impl Drop for RawEchoServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Frames (as whole-buffer slices) queued between the reader and the writer of one connection.
const QUEUE: usize = 1024;

/// A reader that splits complete frames off its buffer (no copy) and hands them to a writer task
/// that writes everything queued in one go, so reading and writing overlap like in any real
/// server. With `echo` false frames are only counted.
async fn serve(stream: TcpStream, echo: bool, frames: &AtomicU64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 64).await > 0 {
            for chunk in batch.drain(..) {
                wr.write_all(&chunk).await?;
            }
        }
        Ok::<_, std::io::Error>(())
    });
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let result = async {
        loop {
            if rd.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            let mut complete = 0;
            let mut count = 0;
            let mut want = 0;
            loop {
                let rest = &buf[complete..];
                if rest.len() < 4 {
                    break;
                }
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if len + 4 > MAX_FRAME {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("frame length {len} over the maximum"),
                    ));
                }
                if rest.len() < 4 + len {
                    want = 4 + len - rest.len();
                    break;
                }
                complete += 4 + len;
                count += 1;
            }
            frames.fetch_add(count, Ordering::Relaxed);
            let done = buf.split_to(complete).freeze();
            if echo && !done.is_empty() && tx.send(done).await.is_err() {
                return Ok(());
            }
            // Make room for the rest of a partial frame in one go.
            buf.reserve(want.max(4096));
        }
    }
    .await;
    drop(tx);
    let _ = writer.await;
    result
}
