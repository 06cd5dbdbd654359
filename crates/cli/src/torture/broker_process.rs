//! `rmq standalone` as the run's child: started from this very binary on the run's store and
//! ports, ready when it prints `ready:`, killed with SIGKILL (the crash under test) or stopped
//! with SIGTERM at the end. The guard kills the child when dropped, so no exit path of the run
//! (errors, panics) leaves a broker behind.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Two free loopback ports (bound, then released for the child to bind).
pub fn free_ports() -> std::io::Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// A running `rmq standalone` child; killed when dropped.
pub struct BrokerProcess {
    child: Child,
    ready: watch::Receiver<bool>,
}

impl BrokerProcess {
    /// Spawns `exe standalone` on `ports` (NameServer, broker) with `--store store` and every
    /// `--set` in `settings`; its log (stderr) is appended to `log`.
    pub fn spawn(
        exe: &Path,
        store: &Path,
        ports: (u16, u16),
        settings: &[String],
        log: &Path,
    ) -> std::io::Result<BrokerProcess> {
        let log = File::options().create(true).append(true).open(log)?;
        let mut cmd = Command::new(exe);
        cmd.arg("standalone")
            .args(["--namesrv-port", &ports.0.to_string()])
            .args(["--broker-port", &ports.1.to_string()])
            .arg("--store")
            .arg(store);
        for s in settings {
            cmd.args(["--set", s]);
        }
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let (tx, ready) = watch::channel(false);
        let stdout = child.stdout.take().expect("stdout is piped");
        // Drains stdout for the child's whole life; the sender drops (and waiters see it) when
        // the child's stdout closes.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready:") {
                    let _ = tx.send(true);
                }
            }
        });
        Ok(BrokerProcess { child, ready })
    }

    /// Whether it printed `ready:`.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until it is ready, it exits, or `timeout` passes.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if *self.ready.borrow_and_update() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.ready.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => {
                    let status = tokio::time::timeout(Duration::from_secs(5), async {
                        loop {
                            if let Ok(Some(s)) = self.child.try_wait() {
                                return s.to_string();
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    })
                    .await
                    .unwrap_or_else(|_| "still running".into());
                    return Err(format!("exited before it was ready ({status})"));
                }
                Err(_) => return Err(format!("not ready within {} s", timeout.as_secs())),
            }
        }
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) -> std::io::Result<ExitStatus> {
        let _ = self.child.kill();
        self.child.wait()
    }

    /// SIGTERM (a graceful stop) and the exit status within `timeout`; SIGKILL after it.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if let Ok(Some(s)) = self.child.try_wait() {
            // Already gone (and reaped: its pid may be someone else's now).
            return Ok(s);
        }
        // `kill` from the coreutils: no libc binding needed.
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("kill -TERM: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM exited with {sent}"));
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Ok(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.kill();
        Err(format!(
            "did not stop within {} s of SIGTERM (killed)",
            timeout.as_secs()
        ))
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.kill();
        }
    }
}
