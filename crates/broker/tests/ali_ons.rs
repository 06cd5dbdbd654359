//! The npm ali-ons producer AND push consumer against our NameServer + broker (what `rmq
//! standalone` runs), SYNC_FLUSH: 1,000 messages sent while the broker restarts in the middle;
//! every acknowledged message is consumed at least once (what RocketMQ promises: across a
//! restart, a send whose answer was lost is sent again, and messages consumed since the
//! client's last offset commit are delivered again), and the group's offsets are committed up
//! to the end of every queue.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const COUNT: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ali_ons_producer_and_consumer_across_a_broker_restart() {
    let dir = tokio::task::spawn_blocking(rmq_testkit::e2e::ali_ons)
        .await
        .expect("ali-ons install");
    let mut sa = support::Standalone::start(|c| c.flush_disk_type = "SYNC_FLUSH".into()).await;
    let client = support::client();
    // ali-ons does not auto-create topics (no TBW102 fallback): create it as mqadmin would.
    support::create_topic(&client, &sa.broker_addr(), "AliTopic", 4).await;

    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("produce_consume.js"))
        .args([&sa.ns_addr(), "AliTopic", "CG_ali", &COUNT.to_string()])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut restarted = false;
    let mut sent_all = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while got.len() < COUNT || !sent_all {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out: {} distinct consumed, all sent: {sent_all}",
                    got.len()
                )
            })
            .expect("read node output")
            .expect("node exited early");
        if let Some(body) = line.strip_prefix("got ") {
            let body = body.split(' ').next().unwrap_or_default().to_owned();
            *got.entry(body).or_default() += 1;
        } else if line == "sent 500" && !restarted {
            restarted = true;
            sa.stop_broker().await;
            sa.start_broker().await;
        } else if line.starts_with("done") {
            sent_all = true;
        }
    }
    assert!(restarted);
    let missing: Vec<usize> = (0..COUNT)
        .filter(|i| !got.contains_key(&format!("body-{i}")))
        .collect();
    let mut dups: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    dups.sort();
    // At least once, and what the run saw, whatever happens below.
    eprintln!(
        "ali-ons across a restart: {} distinct consumed, {} delivered more than once{}",
        got.len(),
        dups.len(),
        if dups.is_empty() {
            String::new()
        } else {
            format!(" (first: {:?})", &dups[..dups.len().min(10)])
        }
    );
    assert!(missing.is_empty(), "never consumed: {missing:?}");

    // ali-ons commits offsets every few seconds: wait for the committed offsets to reach the
    // end of every queue (a message the producer sent twice across the restart is stored
    // twice, so the end is the queues' max offsets, not the count).
    let state = sa.broker().state().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut behind = Vec::new();
        for q in 0..4 {
            let committed = state.offsets.query("CG_ali", "AliTopic", q).unwrap_or(0);
            let (_, max) = state.store.offsets("AliTopic", q).await.unwrap();
            if committed != max as i64 {
                behind.push((q, committed, max));
            }
        }
        if behind.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "committed offsets behind the queues' ends (queue, committed, max): {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().await.ok();
    sa.stop_broker().await;
}
