//! What the CLI's process tests share: running the `rmq` binary with a deadline, a plain
//! HTTP/1.0 GET, and reading one series out of Prometheus text.
#![allow(dead_code)]

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `rmq ARGS` (30 s at most): (exit code, stdout, stderr).
pub async fn rmq(args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rmq ends in time")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`rmq`] with `-n NS` after the arguments.
pub async fn rmq_n(ns: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend(["-n", ns]);
    rmq(&all).await
}

/// GET `path` on `addr` (HTTP/1.0: the server closes when done; 10 s at most): (status line,
/// body).
pub async fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("answered in time")
        .unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The value of the first series line starting with `prefix` (0 when absent).
pub fn series(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Runs `rmq ARGS` for at most `limit`: (exit code, stdout, stderr). Past the limit it gets
/// SIGTERM, so it can stop the processes it started (`rmq torture` kills its broker), then
/// SIGKILL 20 s later, and the test fails.
pub async fn rmq_bounded(args: &[&str], limit: Duration) -> (i32, String, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().expect("running");
    let mut output = tokio::spawn(child.wait_with_output());
    match tokio::time::timeout(limit, &mut output).await {
        Ok(out) => {
            let out = out.expect("waited").unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let late = tokio::time::timeout(Duration::from_secs(20), &mut output).await;
            output.abort();
            let text = match late {
                Ok(Ok(Ok(out))) => format!(
                    "{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
                _ => "(no output: killed)".into(),
            };
            panic!("rmq {args:?} still running after {limit:?}; SIGTERM sent:\n{text}");
        }
    }
}
