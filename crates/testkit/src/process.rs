//! `rmq standalone` as a child process, for tests of the binary: started on two free ports with
//! its store in a directory the caller keeps, ready once it prints `ready:`, with the addresses
//! it announced (metrics, dashboard), stopped with SIGTERM.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Two free ports (bound, then released: the process binds them right after).
pub fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    (
        a.local_addr().expect("bound").port(),
        b.local_addr().expect("bound").port(),
    )
}

/// A running `rmq standalone`.
pub struct StandaloneProcess {
    /// The child (killed when dropped).
    pub child: tokio::process::Child,
    /// The NameServer's address.
    pub ns: String,
    /// The broker's address.
    pub broker: String,
    /// What it announced before `ready:`: `"metrics"` and `"dashboard"` -> `host:port`.
    pub announced: HashMap<&'static str, String>,
}

impl StandaloneProcess {
    /// Starts `bin standalone` on `ports` with `--store store` and `extra` arguments, and waits
    /// (30 s at most) for its `ready:` line.
    pub async fn start(bin: &Path, store: &Path, ports: (u16, u16), extra: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(bin)
            .arg("standalone")
            .args(["--namesrv-port", &ports.0.to_string()])
            .args(["--broker-port", &ports.1.to_string()])
            .arg("--store")
            .arg(store)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("rmq runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let mut announced = HashMap::new();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(a) = l.strip_prefix("metrics on http://") {
                    announced.insert("metrics", a.trim_end_matches("/metrics").to_owned());
                } else if let Some(a) = l.strip_prefix("dashboard on http://") {
                    announced.insert("dashboard", a.trim_end_matches('/').to_owned());
                } else if l.starts_with("ready:") {
                    return true;
                }
            }
            false
        })
        .await
        .expect("rmq standalone ready within 30 s");
        assert!(ready, "rmq standalone exited before it was ready");
        // Keep draining stdout so the process never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        StandaloneProcess {
            child,
            ns: format!("127.0.0.1:{}", ports.0),
            broker: format!("127.0.0.1:{}", ports.1),
            announced,
        }
    }

    /// SIGTERM, then waits (20 s at most) for the exit status.
    pub async fn sigterm_and_wait(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        // `kill` from the coreutils: no libc binding needed.
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops within 20 s of SIGTERM")
            .expect("exit status")
    }
}

/// A `kB` field (`VmRSS`, `RssAnon`, `VmHWM`...) of `/proc/<pid>/status`, in KiB; `pid` is a
/// process id or `"self"`. `None` where the file or the field is missing.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
