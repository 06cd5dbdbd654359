//! `rmq store verify --json` on the run's store while the broker is down (between a kill and
//! the restart, and after the final graceful stop): the store's own read of every record and
//! queue entry must agree that nothing is damaged.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `rmq store verify` said: its problems (empty: OK), or `Err` when it could not be run.
pub async fn verify_store(
    exe: &Path,
    store: &Path,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let mut child = Command::new(exe)
        .args(["store", "verify", "--json"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("rmq store verify: {e}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "rmq store verify did not finish within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&out) {
        Ok(v) if v["ok"].is_boolean() => {
            let mut problems: Vec<String> = v["problems"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if v["ok"] == false && problems.is_empty() {
                problems.push(format!("not OK: {out}"));
            }
            Ok(problems)
        }
        _ if status.success() => Ok(Vec::new()),
        _ => Ok(vec![format!(
            "exited with {status}: {}{}",
            out.trim(),
            err.trim()
        )]),
    }
}
