//! A Rust consumer and the npm ali-ons consumer in one group on our broker: Java's allocation
//! on both sides splits the queues without overlap, and every message is consumed once, by one
//! of them.

use rmq_consumer::{
    listener, ConsumeFrom, ConsumeResult, ConsumerConfig, MessageExt, PushConsumer,
};
use rmq_producer::message::Message;
use rmq_producer::{Producer, ProducerConfig};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_and_an_ali_ons_consumer_share_a_group() {
    let dir = tokio::task::spawn_blocking(rmq_testkit::e2e::ali_ons)
        .await
        .unwrap();
    let sa = rmq_testkit::Standalone::start(|_| {}).await;
    let broker = &sa.broker;
    let ns_addr = sa.ns_addr();
    sa.create_topic("Mixed", 8).await;

    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("consume.js"))
        .args([&ns_addr, "Mixed", "CG_mixed", "0"])
        .env("ALI_ONS_REBALANCE_MS", "300")
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let by_node: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
    let n = by_node.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            let field = |k: &str| {
                l.split(' ')
                    .find_map(|p| p.strip_prefix(k))
                    .map(str::to_owned)
            };
            if let (Some(q), Some(body)) = (field("queue="), field("body=")) {
                n.lock().unwrap().push((q.parse().unwrap(), body));
            }
        }
    });
    // The ali-ons member registers first.
    let state = broker.state().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while state.clients.consumer_ids("CG_mixed").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ali-ons never joined"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let by_rust: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
    let r = by_rust.clone();
    let mut cfg = ConsumerConfig::new("CG_mixed", &[&ns_addr]);
    cfg.consume_from = ConsumeFrom::FirstOffset;
    cfg.rebalance_interval = Duration::from_millis(300);
    let rust = PushConsumer::start(
        cfg,
        &[("Mixed", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let r = r.clone();
            async move {
                for m in msgs {
                    r.lock()
                        .unwrap()
                        .push((m.queue_id, String::from_utf8_lossy(&m.body).into_owned()));
                }
                ConsumeResult::Success
            }
        }),
    )
    .await
    .unwrap();
    // Both members seen by the Rust side (half the queues), then a few ali-ons rounds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rust
        .owned_queues()
        .iter()
        .filter(|q| q.topic == "Mixed")
        .count()
        != 4
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rust owns {:?}",
            rust.owned_queues()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let producer = Producer::start(ProducerConfig::new("PG_mixed", &[&ns_addr]))
        .await
        .unwrap();
    for i in 0..400 {
        producer
            .send(Message::new("Mixed", format!("x{i}").into_bytes()))
            .await
            .unwrap();
    }
    producer.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let total = by_node.lock().unwrap().len() + by_rust.lock().unwrap().len();
        if total >= 400 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {total} of 400"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (node_got, rust_got) = (
        by_node.lock().unwrap().clone(),
        by_rust.lock().unwrap().clone(),
    );
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, b) in node_got.iter().chain(&rust_got) {
        *count.entry(b.as_str()).or_default() += 1;
    }
    assert_eq!(count.len(), 400, "every message consumed");
    assert!(count.values().all(|n| *n == 1), "each once");
    let node_queues: HashSet<i32> = node_got.iter().map(|(q, _)| *q).collect();
    let rust_queues: HashSet<i32> = rust_got.iter().map(|(q, _)| *q).collect();
    assert!(
        node_queues.is_disjoint(&rust_queues),
        "ali-ons {node_queues:?}, rust {rust_queues:?}"
    );
    assert_eq!(node_queues.len() + rust_queues.len(), 8);
    rust.shutdown().await;
    node.kill().await.ok();
    reader.abort();
    sa.broker.shutdown().await;
}
