//! End-to-end latency, send to consume, through a NameServer-less broker in this process:
//! producers send 1 KiB (or 128 B) messages at a fixed rate over `conns` connections, a
//! consumer long-polls every queue, and each message's latency is the time from just before
//! its send to its arrival in a pull answer (the body carries the send instant). Prints
//! p50/p99/max per scenario and the process's RSS.
//!
//! `cargo bench -p rmq-broker --bench e2e` (about a minute).

use bytes::Bytes;
use rmq_broker::config::BrokerConfig;
use rmq_broker::Broker;
use rmq_protocol::codes::request;
use rmq_protocol::headers::pull::PullMessageRequestHeader;
use rmq_protocol::headers::send::SendMessageRequestHeaderV2;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const QUEUES: i32 = 4;

/// The allocator the `rmq` binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn send_req(topic: &str, queue: i32, body: Bytes) -> RemotingCommand {
    send_with(topic, queue, body, "WAIT\u{1}true\u{2}")
}

/// SEND_MESSAGE_V2 with `properties` (Java's property string).
fn send_with(topic: &str, queue: i32, body: Bytes, properties: &str) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        a: "PG_bench".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: QUEUES,
        e: queue,
        f: 0,
        g: rmq_broker::now_ms(),
        h: 0,
        i: Some(properties.into()),
        j: Some(0),
        k: Some(false),
        l: None,
        m: Some(false),
        n: None,
    };
    RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &h).with_body(body)
}

fn pull_req(topic: &str, queue: i32, offset: i64) -> RemotingCommand {
    pull_as("CG_bench", "*", topic, queue, offset)
}

/// A long-polling pull of `group` filtering on `tags` (`*`: all).
fn pull_as(group: &str, tags: &str, topic: &str, queue: i32, offset: i64) -> RemotingCommand {
    let h = PullMessageRequestHeader {
        sys_flag: 0x2 | 0x4,
        suspend_timeout_millis: 15_000,
        ..PullMessageRequestHeader::subscribed(group, topic, queue, offset, tags)
    };
    RemotingCommand::request_with_header(request::PULL_MESSAGE, &h)
}

/// The body's first 8 bytes: nanoseconds since `epoch` at send.
fn stamp(epoch: Instant, size: usize) -> Bytes {
    let mut b = vec![b'x'; size.max(8)];
    b[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
    Bytes::from(b)
}

async fn scenario(addr: &str, topic: &str, size: usize, rate: u64, conns: usize, secs: f64) {
    let epoch = Instant::now();
    let hist = Arc::new(Mutex::new(hdrhistogram::Histogram::<u64>::new(3).unwrap()));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = RemotingClient::new(ClientConfig::default());
    let mut pullers = Vec::new();
    for q in 0..QUEUES {
        let (c, a, t, hist, stop) = (
            consumer.clone(),
            addr.to_owned(),
            topic.to_owned(),
            hist.clone(),
            stop.clone(),
        );
        pullers.push(tokio::spawn(async move {
            let mut offset = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let Ok(r) = c
                    .invoke_sync(&a, pull_req(&t, q, offset), Duration::from_secs(20))
                    .await
                else {
                    continue;
                };
                if let Some(n) = r.ext("nextBeginOffset").and_then(|n| n.parse().ok()) {
                    offset = n;
                }
                if r.code != 0 {
                    continue;
                }
                let now = epoch.elapsed().as_nanos() as u64;
                let mut at = 0;
                let mut h = hist.lock().unwrap();
                while at < r.body.len() {
                    let Ok(rmq_store::record::Found::Message(m, len)) =
                        rmq_store::record::decode(&r.body.slice(at..), false)
                    else {
                        break;
                    };
                    at += len;
                    let sent = u64::from_be_bytes(m.body[..8].try_into().unwrap());
                    let _ = h.record(now.saturating_sub(sent) / 1000);
                }
            }
        }));
    }
    // Start measuring from an empty queue state: existing messages were consumed by earlier runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let per_conn = rate / conns as u64;
    let mut senders = Vec::new();
    for i in 0..conns {
        let c = RemotingClient::new(ClientConfig::default());
        let (a, t) = (addr.to_owned(), topic.to_owned());
        senders.push(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_conn.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut n = 0u64;
            let mut inflight = tokio::task::JoinSet::new();
            while Instant::now() < end {
                tick.tick().await;
                let q = ((n + i as u64) % QUEUES as u64) as i32;
                n += 1;
                let c = c.clone();
                let a = a.clone();
                let req = send_req(&t, q, stamp(epoch, size));
                inflight.spawn(async move {
                    c.invoke_sync(&a, req, Duration::from_secs(5))
                        .await
                        .map(|r| r.code)
                });
                while inflight.len() > 256 {
                    inflight.join_next().await;
                }
            }
            while inflight.join_next().await.is_some() {}
            n
        }));
    }
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for p in pullers {
        p.abort();
    }
    let h = hist.lock().unwrap();
    println!(
        "e2e size={size}B rate={rate}/s conns={conns}: sent={sent} consumed={} p50={}us p99={}us max={}us rss={}MiB",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max(),
        rss_kib() / 1024
    );
}

/// Puts while `pollers` consumers (each its own group) long-poll queue 0 of `topic` with
/// filter `tags`: 16 senders send 1 KiB messages tagged `A` one at a time for `secs`; returns
/// (sends/s, p50 µs, p99 µs). Each poller pulls again as soon as it is answered, as a push
/// consumer does.
async fn puts_beside_pollers(
    addr: &str,
    topic: &str,
    pollers: usize,
    tags: &str,
    secs: f64,
) -> (f64, u64, u64) {
    // The topic first (a send creates it): a pull of a missing topic is answered at once.
    let first = RemotingClient::new(ClientConfig::default());
    let _ = first
        .invoke_sync(
            addr,
            send_req(topic, 0, Bytes::from_static(b"first")),
            Duration::from_secs(5),
        )
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..pollers {
        let c = RemotingClient::new(ClientConfig::default());
        let (a, t, tags, stop) = (
            addr.to_owned(),
            topic.to_owned(),
            tags.to_owned(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (group, mut offset) = (format!("CG_poll_{i}"), 0i64);
            while !stop.load(Ordering::Relaxed) {
                let req = pull_as(&group, &tags, &t, 0, offset);
                let Ok(r) = c.invoke_sync(&a, req, Duration::from_secs(20)).await else {
                    continue;
                };
                if let Some(n) = r.ext("nextBeginOffset").and_then(|n| n.parse().ok()) {
                    offset = n;
                }
            }
        }));
    }
    // Let every poller reach its hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hist = Arc::new(Mutex::new(hdrhistogram::Histogram::<u64>::new(3).unwrap()));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut senders = Vec::new();
    for _ in 0..16 {
        let c = RemotingClient::new(ClientConfig::default());
        let (a, t, hist) = (addr.to_owned(), topic.to_owned(), hist.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let req = send_with(
                    &t,
                    0,
                    Bytes::from(vec![b'x'; 1024]),
                    "TAGS\u{1}A\u{2}WAIT\u{1}true\u{2}",
                );
                let started = Instant::now();
                if c.invoke_sync(&a, req, Duration::from_secs(5)).await.is_ok() {
                    let _ = hist
                        .lock()
                        .unwrap()
                        .record(started.elapsed().as_micros() as u64);
                    n += 1;
                }
            }
            n
        }));
    }
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let h = hist.lock().unwrap();
    (
        sent as f64 / secs,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
    )
}

fn main() {
    // As `rmq`'s server processes run (cli/src/memory.rs): with transparent huge pages a
    // profile of the pollers rows spent 32 % of the CPU zeroing fresh 2 MiB pages.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // RMQ_E2E_FLUSH=SYNC_FLUSH (or ASYNC_FLUSH): one mode only.
        let only = std::env::var("RMQ_E2E_FLUSH").ok();
        for flush in ["ASYNC_FLUSH", "SYNC_FLUSH"] {
            if only.as_deref().is_some_and(|o| o != flush) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let broker = Broker::start(BrokerConfig {
                listen_port: 0,
                broker_name: "bench".into(),
                store_path_root_dir: dir.path().display().to_string(),
                flush_disk_type: flush.into(),
                mapped_file_size_commit_log: 256 << 20,
                ..Default::default()
            })
            .await
            .unwrap();
            let addr = broker.local_addr().to_string();
            println!("-- {flush}");
            if flush == "ASYNC_FLUSH" && std::env::var_os("RMQ_E2E_ROWS").is_none() {
                let mut base = None;
                // RMQ_E2E_ONLY_POLLERS=1: only the long-polling rows (for profiling them).
                for (pollers, tags) in [(0, "*"), (200, "Other"), (200, "*"), (0, "*")] {
                    let topic = format!("POLLED_{pollers}_{}", tags.replace('*', "all"));
                    let (rate, p50, p99) =
                        puts_beside_pollers(&addr, &topic, pollers, tags, 3.0).await;
                    let (b_rate, b_p99) = *base.get_or_insert((rate, p99));
                    println!(
                        "puts, 16 sync senders, 1 KiB, {pollers} consumers long-polling the queue (filter {tags}): {rate:.0} msgs/s ({:.2}x none), p50 {p50}us, p99 {p99}us ({:.2}x none)",
                        rate / b_rate,
                        p99 as f64 / b_p99.max(1) as f64
                    );
                }
            }
            if std::env::var_os("RMQ_E2E_ONLY_POLLERS").is_some() {
                broker.shutdown().await;
                break;
            }
            // RMQ_E2E_ROWS=1024:30000:16,128:30000:1 (size:rate:connections): only these rows.
            let rows = std::env::var("RMQ_E2E_ROWS").ok();
            for (size, rate, conns) in [
                (1024, 5_000, 1),
                (1024, 30_000, 1),
                (128, 30_000, 1),
                (1024, 30_000, 16),
            ] {
                if rows
                    .as_deref()
                    .is_some_and(|r| !r.split(',').any(|row| row == format!("{size}:{rate}:{conns}")))
                {
                    continue;
                }
                let topic = format!("E2E_{size}_{rate}_{conns}");
                let c = RemotingClient::new(ClientConfig::default());
                let _ = c
                    .invoke_sync(
                        &addr,
                        send_req(&topic, 0, stamp(Instant::now(), 8)),
                        Duration::from_secs(5),
                    )
                    .await;
                scenario(&addr, &topic, size, rate, conns, 5.0).await;
            }
            broker.shutdown().await;
        }
    });
}
