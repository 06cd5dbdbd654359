//! Memory a server spends per idle connection: open N connections that each make one request and
//! then stay quiet, wait until the server holds them all, and read the server process's resident
//! set before and after.
//! The server must be another process (so the client's sockets are not counted) that answers
//! [`crate::CODE_STATS`] with its connection count, i.e. `rmq bench server`.

use crate::cpu::rss_bytes;
use crate::load::query_stats;
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What holding idle connections cost the server.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Idle connections the server held when measured.
    pub conns: usize,
    /// Server RSS before, in bytes.
    pub rss_before: u64,
    /// Server RSS with every connection open, in bytes.
    pub rss_after: u64,
    /// (after - before) / conns.
    pub bytes_per_conn: u64,
}

/// A bench server in a child process, killed on drop.
pub struct ChildServer {
    child: Child,
    /// The address it listens on.
    pub addr: String,
}

impl ChildServer {
    /// Starts `exe bench server --listen 127.0.0.1:0` and reads the address it prints.
    pub fn spawn(exe: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(exe)
            .args(["bench", "server", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_owned)
            .ok_or_else(|| {
                let _ = child.kill();
                std::io::Error::other(format!("bench server printed {line:?}"))
            })?;
        Ok(ChildServer { child, addr })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `conns` idle connections to the server at `addr` (process `pid`) and measures its RSS.
/// Fails if the server does not report holding them within `timeout`.
pub async fn measure(
    addr: &str,
    pid: u32,
    conns: usize,
    timeout: Duration,
) -> Result<IdleReport, String> {
    let deadline = Instant::now() + timeout;
    let base = query_stats(addr)
        .await
        .ok_or("server does not answer the stats request (code 3)")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_bytes(pid).ok_or("cannot read the server's RSS")?;
    let mut held = Vec::with_capacity(conns);
    // Each connection does one echo round trip first, as a real client does before it goes
    // quiet: a connection that never sends a byte is closed by the server's first-frame timeout.
    let hello = rmq_protocol::frame::encode_to_vec(&rmq_protocol::RemotingCommand::request(
        crate::CODE_ECHO,
    ))
    .map_err(|e| e.to_string())?;
    let mut scratch = vec![0u8; 1024];
    while held.len() < conns {
        // Loopback connects are quick one after another; the check bounds the whole loop.
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connection {} failed: {e}", held.len()))?;
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut scratch))
            .await
            .map_err(|_| "no echo within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection {} closed by the server", held.len()));
        }
        held.push(stream);
        if Instant::now() >= deadline {
            return Err(format!("only {} connections opened in time", held.len()));
        }
    }
    loop {
        let stats = query_stats(addr).await.ok_or("stats request failed")?;
        // The stats request's own connection is counted too.
        if stats.connections >= base.connections + conns as u64 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "server holds {} of {conns} connections at the deadline",
                stats.connections.saturating_sub(base.connections)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after = rss_bytes(pid).ok_or("cannot read the server's RSS")?;
    drop(held);
    Ok(IdleReport {
        conns,
        rss_before,
        rss_after,
        bytes_per_conn: rss_after.saturating_sub(rss_before) / conns.max(1) as u64,
    })
}
