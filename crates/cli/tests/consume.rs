//! `rmq consume` as a process against `rmq standalone`: `--count` acknowledges exactly what it
//! showed, so two runs of one group share a backlog without a gap or a duplicate.

mod support;

use rmq_testkit::process::{free_ports, StandaloneProcess};
use std::collections::HashSet;
use std::path::Path;
use support::rmq_n;

/// (queue, offset) of each message a `--print json` run showed.
fn shown(stdout: &str) -> Vec<(i64, i64)> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["queueId"].as_i64().unwrap(),
                v["queueOffset"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_with_count_100_show_200_messages_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let p = StandaloneProcess::start(
        Path::new(env!("CARGO_BIN_EXE_rmq")),
        &dir.path().join("store"),
        free_ports(),
        &[],
    )
    .await;
    // 200 messages over the topic's 4 queues (created by the first send).
    let (code, out, err) = rmq_n(
        &p.ns,
        &[
            "send", "--topic", "Counted", "--body", "m", "--count", "200",
        ],
    )
    .await;
    assert!(code == 0 && out.contains("failed=0"), "{out}{err}");
    let consume = [
        "consume", "--topic", "Counted", "--group", "CG_count", "--from", "first", "--count",
        "100", "--print", "json",
    ];
    let mut all = Vec::new();
    for run in 1..=2 {
        let (code, out, err) = rmq_n(&p.ns, &consume).await;
        assert_eq!(code, 0, "run {run}: {err}");
        let got = shown(&out);
        assert_eq!(got.len(), 100, "run {run} shows exactly --count: {err}");
        assert!(err.contains("consumed=100"), "{err}");
        all.extend(got);
    }
    let distinct: HashSet<(i64, i64)> = all.iter().copied().collect();
    assert_eq!(distinct.len(), 200, "no message shown twice, none left out");
    let queues: HashSet<i64> = distinct.iter().map(|(q, _)| *q).collect();
    assert!(queues.len() > 1, "several queues: {queues:?}");
    let status = p.sigterm_and_wait().await;
    assert!(status.success());
}
