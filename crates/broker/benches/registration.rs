//! What creating topics costs on the wire to the NameServer: a broker in this process creates
//! topics by sending one message to each (auto-create), through a byte-counting proxy in front
//! of a NameServer. Each created topic is registered alone (Java 5's
//! `registerIncrementBrokerData`); before, each triggered a registration of every topic, so N
//! topics cost O(N^2) bytes. The baseline, measured in the same run: the size of one full
//! registration at each step, times the topics created in it (what the old rule sent).
//!
//! `cargo bench -p rmq-broker --bench registration` (10,000 topics, about a minute;
//! `RMQ_REG_BENCH_TOPICS=N` for another count). `cargo test --benches` runs 400.

use rmq_broker::config::BrokerConfig;
use rmq_broker::Broker;
use rmq_protocol::codes::request;
use rmq_protocol::headers::send::SendMessageRequestHeaderV2;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to `target` that counts the bytes its clients send.
async fn counting_proxy(target: String) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&target).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
        }
    });
    (addr, sent)
}

fn send_req(topic: &str) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        a: "PG_reg".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: 4,
        e: 0,
        f: 0,
        g: rmq_broker::now_ms(),
        h: 0,
        i: None,
        j: Some(0),
        k: Some(false),
        l: None,
        m: Some(false),
        n: None,
    };
    RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &h).with_body("x")
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("RMQ_REG_BENCH_TOPICS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 10_000 } else { 400 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (ns, _ns_dir) = rmq_testkit::namesrv().await;
        let (proxy, sent) = counting_proxy(ns.local_addr().to_string()).await;
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::start(BrokerConfig {
            listen_port: 0,
            broker_name: "reg".into(),
            namesrv_addr: proxy,
            store_path_root_dir: dir.path().display().to_string(),
            mapped_file_size_commit_log: 64 << 20,
            mapped_file_size_consume_queue: 20 * 1000,
            // One connection creates every topic, faster than a client may by default.
            max_auto_created_topics_per_minute: usize::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
        let state = broker.state().clone();
        let addr = broker.local_addr().to_string();
        let client = RemotingClient::new(ClientConfig::default());
        println!("| topics | bytes to the NameServer this step | per topic | one full registration | full per topic (old rule), same step | ratio |");
        println!("|---|---|---|---|---|---|");
        let steps = [total / 8, total / 4, total / 2, total];
        let mut created = 0;
        let started = Instant::now();
        for &upto in &steps {
            // The old rule's cost for this step: a full registration after every creation,
            // each as large as the table then (measured at both ends of the step).
            let full_before = {
                let b = sent.load(Ordering::Relaxed);
                state.registrar.register_all(&state).await;
                sent.load(Ordering::Relaxed) - b
            };
            let from = sent.load(Ordering::Relaxed);
            let step = upto - created;
            while created < upto {
                let r = client
                    .invoke_sync(&addr, send_req(&format!("RegBench_{created}")), Duration::from_secs(10))
                    .await
                    .unwrap();
                assert_eq!(r.code, 0, "{:?}", r.remark_str());
                created += 1;
            }
            let incremental = sent.load(Ordering::Relaxed) - from;
            let full_after = {
                let b = sent.load(Ordering::Relaxed);
                state.registrar.register_all(&state).await;
                sent.load(Ordering::Relaxed) - b
            };
            let old_rule = (full_before + full_after) / 2 * step as u64;
            println!(
                "| {upto} | {incremental} | {} | {full_after} | {old_rule} | {:.1}x less |",
                incremental / step.max(1) as u64,
                old_rule as f64 / incremental.max(1) as f64
            );
        }
        println!(
            "{created} topics created in {:.1} s; bytes per created topic stay flat as the table grows (linear), where the old rule's grow with it (quadratic in total)",
            started.elapsed().as_secs_f64()
        );
        broker.shutdown().await;
    });
}
