//! The bench's numbers must be true: what the client counts is what the server counted, for both
//! drivers and every mode, and `compare` produces a full table from real runs.

use rmq_bench::compare::{self, CompareOptions, Metric};
use rmq_bench::load::{self, query_stats};
use rmq_bench::{BenchServer, Driver, LoadSpec, Mode, RawEchoServer};
use rmq_protocol::SerializeType;
use rmq_remoting::ServerConfig;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

fn spec(addr: String, mode: Mode, serialize: SerializeType) -> LoadSpec {
    LoadSpec {
        addr,
        mode,
        body: 100,
        conns: 2,
        inflight: 16,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        serialize,
        timeout: Duration::from_secs(3),
        query_stats: true,
        code: None,
        ext: None,
        tls: None,
    }
}

async fn server() -> BenchServer {
    BenchServer::start(ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_counts_agree_for_every_mode_and_driver() {
    for driver in [Driver::Ours, Driver::Neutral] {
        for mode in [Mode::Sync, Mode::Async, Mode::Oneway] {
            for st in [SerializeType::Json, SerializeType::RocketMq] {
                let srv = server().await;
                let s = spec(srv.local_addr().to_string(), mode, st);
                let progress = Arc::new(AtomicU64::new(0));
                let r = load::run("t", &s, driver, progress.clone()).await.unwrap();
                let what = format!("{driver:?} {mode:?} {st:?}: {r}");
                assert_eq!(r.errors, 0, "{what}");
                assert_eq!(r.unanswered, 0, "{what}");
                assert!(r.ops > 0 && r.ops <= r.sent, "{what}");
                assert!(r.p50_us > 0.0 && r.p50_us <= r.p999_us, "{what}");
                let stats = query_stats(&s.addr).await.expect("stats");
                match mode {
                    Mode::Oneway => {
                        assert_eq!(r.server_received, Some(r.sent), "{what}");
                        assert_eq!(stats.oneway, r.sent, "{what}");
                    }
                    _ => assert_eq!(stats.echoed, r.sent, "{what}"),
                }
                assert_eq!(
                    progress.load(std::sync::atomic::Ordering::Relaxed),
                    r.sent,
                    "{what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn raw_echo_returns_every_frame_and_the_sink_counts_them() {
    let echo = RawEchoServer::start("127.0.0.1:0", true).await.unwrap();
    let s = spec(
        echo.local_addr().to_string(),
        Mode::Async,
        SerializeType::Json,
    );
    let r = load::run("raw", &s, Driver::Neutral, Arc::default())
        .await
        .unwrap();
    assert_eq!((r.errors, r.unanswered), (0, 0), "{r}");
    assert_eq!(echo.frames(), r.sent, "{r}");

    let sink = RawEchoServer::start("127.0.0.1:0", false).await.unwrap();
    let mut s = spec(
        sink.local_addr().to_string(),
        Mode::Oneway,
        SerializeType::Json,
    );
    s.query_stats = false;
    let r = load::run("raw", &s, Driver::Neutral, Arc::default())
        .await
        .unwrap();
    // The raw sink has no stats request; wait (bounded) for it to read everything.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.frames() < r.sent && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.frames(), r.sent, "{r}");
    assert_eq!(r.server_received, None);
}

#[test]
fn compare_produces_ratios_from_real_runs() {
    let all = compare::default_scenarios();
    let opts = CompareOptions {
        scenarios: vec![all[0], all[2], all[3]],
        serialize: vec![SerializeType::Json],
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        ..Default::default()
    };
    let mut steps = 0;
    let rows = compare::run(&opts, Arc::default(), |_| steps += 1).unwrap();
    assert_eq!(steps, 9);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].metric, Metric::P50);
    assert_eq!(rows[2].metric, Metric::Throughput);
    for row in &rows {
        for r in [&row.raw, &row.ours_neutral, &row.ours_full] {
            assert!(r.ops > 0, "{r}");
            assert_eq!((r.errors, r.unanswered), (0, 0), "{r}");
            if let Some(got) = r.server_received {
                assert_eq!(got, r.sent, "{r}");
            }
            assert!(r.server_cpu_us_per_op.is_some(), "{r}");
        }
        assert!(row.ratio_neutral > 0.0 && row.ratio_full > 0.0);
    }
    let table = compare::table(&rows);
    assert_eq!(table.lines().count(), 2 + rows.len());
    assert!(table.contains("| oneway-128B | json | ops/s |"), "{table}");
}
