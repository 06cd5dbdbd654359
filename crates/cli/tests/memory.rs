//! The broker process's memory after the attacks of issue 28, measured on the real `rmq
//! standalone` (its allocator and its settings, src/memory.rs): a client flooding sends it
//! never reads, then 104,000 abandoned long polls. Once their connections close, the
//! process's anonymous RSS comes back within 2x of what it was idle.
//!
//! "Idle" is the broker after a first ordinary workload (a producer's 2,000 sends, read back),
//! not the broker before its first request: a broker in service has its topics, its
//! connection tables and its threads' stacks in place. The file-backed part of RSS is the
//! store's mapped segments (the flood's messages are stored, like any producer's) and is
//! printed, not bounded here.

mod support;

use rmq_testkit::flood::Flooder;
use rmq_testkit::process::{free_ports, StandaloneProcess};
use rmq_testkit::requests::{pull_request, send_request};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// `key` (e.g. "RssAnon") of process `pid`, in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    rmq_testkit::process::status_kib(&pid.to_string(), key)
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

/// Anonymous RSS once it has stopped moving (two readings 1 s apart within 1 %), 20 s at most.
async fn settled_anon_kib(pid: u32) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = status_kib(pid, "RssAnon");
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = status_kib(pid, "RssAnon");
        if now.abs_diff(last) * 100 <= last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_rss_comes_back_after_the_starve_flood_and_abandoned_long_polls() {
    let dir = tempfile::tempdir().unwrap();
    let rmq = Path::new(env!("CARGO_BIN_EXE_rmq"));
    let sa = StandaloneProcess::start(rmq, dir.path(), free_ports(), &[]).await;
    let pid = sa.child.id().expect("running");
    let broker: SocketAddr = sa.broker.parse().unwrap();
    for topic in ["Warm", "Empty"] {
        let (code, _, err) = support::rmq_n(
            &sa.ns,
            &[
                "update-topic",
                "-t",
                topic,
                "-c",
                "DefaultCluster",
                "-r",
                "1",
                "-w",
                "1",
            ],
        )
        .await;
        assert_eq!(code, 0, "update-topic {topic}: {err}");
    }
    // A first ordinary workload: 2,000 sends, consumed back.
    let (code, _, err) = support::rmq_n(
        &sa.ns,
        &[
            "send", "--topic", "Warm", "--body", "warm-up", "--count", "2000", "--mode", "async",
        ],
    )
    .await;
    assert_eq!(code, 0, "warm-up send: {err}");
    let (code, _, err) = support::rmq_n(
        &sa.ns,
        &[
            "consume", "--topic", "Warm", "--group", "CG_warm", "--from", "first", "--count",
            "2000", "--print", "none",
        ],
    )
    .await;
    assert_eq!(code, 0, "warm-up consume: {err}");
    let idle = settled_anon_kib(pid).await;
    let idle_rss = status_kib(pid, "VmRSS");

    // The starve flood: 25,000 sends of 1 KiB written as fast as the socket takes them and
    // never read, for up to 3 s, then the connection closes.
    let flood = Flooder::start(
        broker,
        &send_request("Flood", 0, &"f".repeat(1024), &[]),
        25_000,
    )
    .await;
    let until = Instant::now() + Duration::from_secs(3);
    while flood.written() < 25_000 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flooded = flood.written();
    let peak_flood = status_kib(pid, "RssAnon");
    flood.stop();

    // The abandoned long polls: 26 rounds of 4,000 pulls held "forever" on an empty queue,
    // each round's connection closed after 50 ms.
    let pull = pull_request("CG_attack", "Empty", 0, 0, 9_000_000_000_000_000_000);
    for _ in 0..26 {
        let round = Flooder::start(broker, &pull, 4_000).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        round.stop();
    }
    let peak_polls = status_kib(pid, "RssAnon");

    // Back within 2x of idle once the connections are gone (20 s at most).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = status_kib(pid, "RssAnon");
    while after > 2 * idle && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = status_kib(pid, "RssAnon");
    }
    eprintln!(
        "anonymous RSS: idle {idle} KiB, {peak_flood} KiB during the flood ({flooded} sends), \
         {peak_polls} KiB after the long polls, {after} KiB after; VmRSS {idle_rss} -> {} KiB",
        status_kib(pid, "VmRSS")
    );
    assert!(
        after <= 2 * idle,
        "anonymous RSS {after} KiB after the attacks, {idle} KiB idle"
    );
    // And the broker still serves.
    let (code, out, err) =
        support::rmq_n(&sa.ns, &["send", "--topic", "Warm", "--body", "x"]).await;
    assert_eq!(code, 0, "send after the attacks: {out} {err}");
    let status = sa.sigterm_and_wait().await;
    assert!(status.success(), "rmq standalone stopped with {status}");
}
