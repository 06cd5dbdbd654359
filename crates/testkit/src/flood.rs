//! A hostile client and a canary: the isolation test every server of ours must pass.
//!
//! The flooder pipelines one request over and over on a raw socket and never reads a reply, as
//! a broken or malicious client would; the canary, on its own connection, sends a request every
//! few milliseconds and records how long each answer took.

use rmq_protocol::frame::encode_to_vec;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Writes `count` copies of `request` to `addr` without ever reading, on a task of its own;
/// the writes stall once the server stops reading (that is the point). Dropping it (or
/// [`Flooder::stop`]) ends the task and closes the socket. Also returns how many were written
/// so far through [`Flooder::written`].
pub struct Flooder {
    task: tokio::task::JoinHandle<()>,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Flooder {
    /// Connects and starts writing.
    pub async fn start(addr: SocketAddr, request: &RemotingCommand, count: usize) -> Flooder {
        let frame = encode_to_vec(request).expect("request encodes");
        // Many frames per write: the flood is as fast as the socket allows.
        let per_write = (64 * 1024 / frame.len()).max(1);
        let chunk: Vec<u8> = frame.repeat(per_write);
        let mut stream = TcpStream::connect(addr).await.expect("flooder connects");
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = written.clone();
        let task = tokio::spawn(async move {
            let mut sent = 0;
            while sent < count {
                let n = per_write.min(count - sent);
                if stream.write_all(&chunk[..n * frame.len()]).await.is_err() {
                    return;
                }
                sent += n;
                counter.store(sent, std::sync::atomic::Ordering::Relaxed);
            }
            // Keep the socket open (and unread) until stopped.
            std::future::pending::<()>().await;
        });
        Flooder { task, written }
    }

    /// Requests written to the socket so far.
    pub fn written(&self) -> usize {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends the flood and closes its socket.
    pub fn stop(self) {}
}

impl Drop for Flooder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Latencies the canary saw, sorted.
pub struct CanaryReport {
    /// Every answered request's latency, ascending.
    pub latencies: Vec<Duration>,
    /// Requests that failed or timed out.
    pub failures: usize,
}

impl CanaryReport {
    /// The `q` quantile (0.0..=1.0) of the latencies; a failure counts as the longest.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.failures > 0 && q >= 1.0 - self.failures as f64 / self.total() as f64 {
            return Duration::MAX;
        }
        if self.latencies.is_empty() {
            return Duration::MAX;
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[idx]
    }

    /// Requests sent.
    pub fn total(&self) -> usize {
        self.latencies.len() + self.failures
    }
}

/// Sends `request` (a fresh opaque each time) to `addr` every `every` for `run`, each with a
/// one-second timeout, on its own connection, and reports the latencies.
pub async fn canary(
    addr: &str,
    request: impl Fn() -> RemotingCommand,
    every: Duration,
    run: Duration,
) -> CanaryReport {
    let client = RemotingClient::new(ClientConfig::default());
    let end = Instant::now() + run;
    let mut latencies = Vec::new();
    let mut failures = 0;
    while Instant::now() < end {
        let started = Instant::now();
        match client
            .invoke_sync(addr, request(), Duration::from_secs(1))
            .await
        {
            Ok(_) => latencies.push(started.elapsed()),
            Err(_) => failures += 1,
        }
        tokio::time::sleep(every).await;
    }
    client.shutdown();
    latencies.sort();
    CanaryReport {
        latencies,
        failures,
    }
}
