//! `StoreService`: puts appended on the caller's thread, never blocking a runtime thread behind
//! a slow reader; group commit (concurrent SYNC_FLUSH puts share fsyncs, each answered after
//! the fsync that covers it); a process killed with SIGKILL while putting keeps every
//! acknowledged record.

mod support;

use bytes::Bytes;
use rmq_store::record::{self, Found, Record};
use rmq_store::service::StoreService;
use rmq_store::store::{MessageStore, Retention, StoreConfig};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

fn config(root: &std::path::Path, sync: bool) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 256 * 1024,
        consume_queue_file_size: 1000 * 20,
        sync_flush: sync,
        ..StoreConfig::new(root)
    }
}

fn message(i: u64) -> Record {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    Record {
        queue_id: (i % 4) as i32,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: host,
        store_timestamp: 1_700_000_000_000,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(format!("acked {i}")),
        topic: "Crash".into(),
        properties: format!("UNIQ_KEY\u{1}{i:032X}\u{2}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sync_puts_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let svc = StoreService::start(config(dir.path(), true), Duration::from_millis(500)).unwrap();
    let puts: Vec<_> = (0..2000)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.put(message(i)).await })
        })
        .collect();
    for p in puts {
        p.await.unwrap().unwrap();
    }
    let fsyncs = svc.flushes().await.unwrap();
    assert!(
        fsyncs < 2000,
        "{fsyncs} fsync rounds for 2,000 concurrent puts: no grouping"
    );
    let (min, max) = svc.offsets("Crash", 1).await.unwrap();
    assert_eq!((min, max), (0, 500));
    let got = svc.get("Crash", 1, 0, 32, 1 << 20).await.unwrap();
    assert_eq!(got.len(), 32);
}

/// The child: puts under SYNC_FLUSH and prints the number of each acknowledged put, until killed.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os("RMQ_STORE_CRASH_DIR") else {
        return; // only as the child of the test below
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let svc = StoreService::start(
            config(std::path::Path::new(&dir), true),
            Duration::from_millis(500),
        )
        .unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0.. {
            svc.put(message(i)).await.unwrap();
            writeln!(out, "{i}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn a_kill_9_keeps_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RMQ_STORE_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Kill it at a moment of its own choosing: after a varying number of acknowledgements.
    let stop_after = 200 + (std::process::id() % 300) as u64;
    let mut acked = None;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Ok(i) = line.trim().parse::<u64>() {
            acked = Some(i);
            if i >= stop_after {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acked = acked.expect("the child acknowledged puts");
    let store = MessageStore::open(config(dir.path(), true)).unwrap();
    // Every acknowledged put is there, readable, whole.
    let mut seen = std::collections::HashSet::new();
    for q in 0..4 {
        let max = store.max_offset("Crash", q);
        for (_, raw) in store
            .get("Crash", q, 0, usize::MAX, usize::MAX, None)
            .unwrap()
        {
            let Found::Message(r, _) = record::decode(&raw, true).unwrap() else {
                panic!("a record")
            };
            let i: u64 = std::str::from_utf8(&r.body).unwrap()[6..].parse().unwrap();
            seen.insert(i);
        }
        assert!(max > 0);
    }
    for i in 0..=acked {
        assert!(
            seen.contains(&i),
            "acknowledged put {i} lost (acked up to {acked})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_flush_puts_are_answered_at_once_and_flushed_on_a_clock() {
    let dir = tempfile::tempdir().unwrap();
    // A clock long enough that 100 puts finish before it ticks even on a loaded machine (at
    // 50 ms the first assertion failed now and then under a parallel build).
    let svc = StoreService::start(config(dir.path(), false), Duration::from_millis(1000)).unwrap();
    for i in 0..100 {
        svc.put(message(i)).await.unwrap();
    }
    assert_eq!(svc.flushes().await.unwrap(), 0, "no fsync per put");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while svc.flushes().await.unwrap() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no periodic flush");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(svc.offsets("Crash", 0).await.unwrap(), (0, 25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_on_the_store_threads_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        commit_log_segment_size: 8 * 1024,
        retention: Retention {
            file_reserved: Duration::ZERO,
            delete_when: (0..24).collect(),
            interval: Duration::from_millis(50),
            // Whatever this machine's disk holds, never refuse puts here.
            disk_full_ratio: 2.0,
            clean_forcibly_ratio: 2.0,
            ..Retention::default()
        },
        ..config(dir.path(), false)
    };
    let svc = StoreService::start(config, Duration::from_millis(50)).unwrap();
    for i in 0..400 {
        svc.put(message(i)).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (min, max) = svc.offsets("Crash", 0).await.unwrap();
        assert_eq!(max, 100);
        if min > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retention round deleted anything"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = std::fs::read_dir(dir.path().join("commitlog"))
        .unwrap()
        .count();
    assert!(left >= 1, "the segment being written stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_flush_runs_under_constant_load() {
    let dir = tempfile::tempdir().unwrap();
    let svc = StoreService::start(config(dir.path(), true), Duration::from_millis(100)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let putters: Vec<_> = (0..16u64)
        .map(|t| {
            let (svc, stop) = (svc.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = t * 1_000_000;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    svc.put(message(i)).await.unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    // The checkpoint is written by the full flush on the clock: it must appear while the
    // putters never let the store thread idle.
    let checkpoint = dir.path().join("checkpoint");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let written = loop {
        if let Ok(page) = std::fs::read(&checkpoint) {
            if page.len() >= 8 && page[..8] != [0u8; 8] {
                break true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in putters {
        p.await.unwrap();
    }
    assert!(written, "no periodic flush in 5 s of constant load");
}

/// An ASYNC_FLUSH put through the store thread is answered once its record is in the page
/// cache: a kill -9 right after (a copy of the files taken while the service runs) loses none,
/// with positioned writes (the fallback when a segment cannot be mapped) as with the map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_async_puts_survive_a_process_crash() {
    for mapped in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (live, copy) = (dir.path().join("live"), dir.path().join("copy"));
        let settings = StoreConfig {
            mapped_appends: Some(mapped),
            ..config(&live, false)
        };
        // A flush clock far away: nothing but the answer path hands the records over.
        let svc = StoreService::start(settings, Duration::from_secs(3600)).unwrap();
        for i in 0..40 {
            svc.put(message(i)).await.unwrap();
        }
        support::crash_copy(&live, &copy);
        let store = MessageStore::open(config(&copy, false)).unwrap();
        let mut bodies = Vec::new();
        for q in 0..4 {
            for (_, raw) in store.get("Crash", q, 0, 64, 1 << 20, None).unwrap() {
                let Found::Message(r, _) = record::decode(&raw, true).unwrap() else {
                    panic!("a record")
                };
                bodies.push(String::from_utf8_lossy(&r.body).into_owned());
            }
        }
        bodies.sort();
        let mut expected: Vec<String> = (0..40).map(|i| format!("acked {i}")).collect();
        expected.sort();
        assert_eq!(bodies, expected, "mapped appends: {mapped}");
        drop(svc);
    }
}

/// A put while a read holds the store waits for it on the blocking pool, not on a runtime
/// thread: with one runtime thread, the test's own task still runs (and ends the read) while
/// the put waits. Were the put to block that thread on the store's lock, nothing could end
/// the read: the watchdog would fire. Both flush modes; the put then reads back.
#[test]
fn a_put_behind_a_slow_read_leaves_the_runtime_thread_free() {
    for sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let outcome = rt.block_on(async move {
                let svc =
                    StoreService::start(config(&root, sync), Duration::from_secs(3600)).unwrap();
                let (holding_tx, holding_rx) = tokio::sync::oneshot::channel();
                let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
                let read = tokio::spawn({
                    let svc = svc.clone();
                    async move {
                        svc.run(move |st| {
                            let _ = holding_tx.send(());
                            let _ = release_rx.recv();
                            st.max_offset("Crash", 0)
                        })
                        .await
                    }
                });
                holding_rx.await.unwrap();
                let put = tokio::spawn({
                    let svc = svc.clone();
                    async move { svc.put(message(0)).await }
                });
                // This task runs although the put is waiting: the runtime thread is free.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                assert!(!put.is_finished(), "the put waited for the read");
                release_tx.send(()).unwrap();
                assert_eq!(read.await.unwrap().unwrap(), 0, "the read saw no put");
                let stored = put.await.unwrap().unwrap();
                let back = svc.get("Crash", 0, 0, 8, 1 << 20).await.unwrap();
                svc.close().await;
                (stored.queue_offset, back.len())
            });
            let _ = done_tx.send(outcome);
        });
        let outcome = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the runtime thread was blocked behind the read");
        assert_eq!(outcome, (0, 1), "sync_flush {sync}");
    }
}
