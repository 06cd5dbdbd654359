//! A really full disk: the store runs on a 512 KiB tmpfs (mounted in a private mount namespace
//! by `unshare`, so nothing outside the test sees it) and puts until the disk refuses. The put
//! that hits it fails with the OS's error, later puts fail the same way without a panic, and
//! after a reopen every acknowledged put is there, whole.

use bytes::Bytes;
use rmq_store::record::{self, Found, Record};
use rmq_store::store::{MessageStore, StoreConfig};
use std::net::SocketAddr;

/// The child runs in the mode `RMQ_STORE_FULL_MODE` names: SYNC_FLUSH or ASYNC_FLUSH with
/// positioned writes (the default), or ASYNC_FLUSH through a memory map (where a store into
/// a hole on a full disk would be a SIGBUS).
fn config(root: &std::path::Path) -> StoreConfig {
    let mode = std::env::var("RMQ_STORE_FULL_MODE").unwrap_or_default();
    StoreConfig {
        commit_log_segment_size: 64 * 1024,
        consume_queue_file_size: 200 * 20,
        index_slot_num: 64,
        index_num: 1000,
        sync_flush: mode == "sync",
        mapped_appends: (mode == "mapped").then_some(true),
        ..StoreConfig::new(root)
    }
}

fn message(i: u64) -> Record {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let mut body = format!("full {i} ").into_bytes();
    body.resize(1024, b'x');
    Record {
        queue_id: (i % 2) as i32,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: host,
        store_timestamp: 1_700_000_000_000 + i as i64,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(body),
        topic: "Full".into(),
        properties: format!("KEYS\u{1}k{i}\u{2}UNIQ_KEY\u{1}{i:032X}\u{2}"),
    }
}

/// The child, inside the namespace with the tmpfs at `RMQ_STORE_FULL_DIR`.
#[test]
fn disk_full_child() {
    let Some(dir) = std::env::var_os("RMQ_STORE_FULL_DIR") else {
        return; // only as the child of the test below
    };
    let dir = std::path::Path::new(&dir);
    let mut acked = 0u64;
    let first_error = {
        let mut store = MessageStore::open(config(dir)).unwrap();
        let mut error = None;
        for i in 0..10_000u64 {
            match store.put(message(i)) {
                Ok(_) => acked = i + 1,
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let error = error.expect("10 MB into 512 KiB: the disk must refuse");
        for i in 0..3 {
            assert!(
                store.put(message(10_000 + i)).is_err(),
                "a full disk keeps refusing"
            );
        }
        error
    };
    assert!(
        first_error.contains("No space left on device"),
        "{first_error}"
    );
    assert!(acked > 100, "only {acked} puts before the disk filled");
    let store = MessageStore::open(config(dir)).unwrap();
    let mut seen = vec![false; acked as usize];
    for q in 0..2 {
        for (_, raw) in store
            .get("Full", q, 0, usize::MAX, usize::MAX, None)
            .unwrap()
        {
            let Found::Message(r, _) = record::decode(&raw, true).unwrap() else {
                panic!("a record")
            };
            let text = std::str::from_utf8(&r.body[..16]).unwrap();
            let i: usize = text.split(' ').nth(1).unwrap().parse().unwrap();
            if i < seen.len() {
                seen[i] = true;
            }
        }
    }
    let lost: Vec<usize> = (0..seen.len()).filter(|&i| !seen[i]).collect();
    assert!(lost.is_empty(), "acknowledged puts lost: {lost:?}");
    let hits = store.query_by_key("Full", "k7", 32, 0, i64::MAX).unwrap();
    assert_eq!(hits.records.len(), 1, "the index survived too");
    println!("DISK_FULL_OK acked={acked} error={first_error}");
}

#[test]
fn a_full_disk_fails_puts_clearly_and_loses_no_acknowledged_one() {
    let can_unshare = std::process::Command::new("unshare")
        .args(["-r", "-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_unshare {
        eprintln!("SKIPPED: `unshare -r -m` is not available here (no user namespaces)");
        return;
    }
    for mode in ["sync", "async", "mapped"] {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"mount -t tmpfs -o size=512k tmpfs "$RMQ_STORE_FULL_DIR" && exec "$0" --exact disk_full_child --nocapture --test-threads=1"#;
        let out = std::process::Command::new("unshare")
            .args(["-r", "-m", "sh", "-c", script])
            .arg(std::env::current_exe().unwrap())
            .env("RMQ_STORE_FULL_DIR", dir.path())
            .env("RMQ_STORE_FULL_MODE", mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("DISK_FULL_OK"),
            "child ({mode}) failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        eprintln!(
            "{mode}: {}",
            stdout.lines().find(|l| l.contains("DISK_FULL_OK")).unwrap()
        );
    }
}
