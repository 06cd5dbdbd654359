//! The message store over real files: puts assign queue offsets and read back as the exact stored
//! records, survive a reopen, consume queues are rebuilt from the commit log when lost, tag
//! filtering by hash code, the key index, and a second opener is refused by the lock.

use bytes::Bytes;
use rmq_store::record::{self, Found, Record};
use rmq_store::store::{parse_delete_when, MessageStore, Retention, StoreConfig, StoreError};
use std::net::SocketAddr;

fn config(root: &std::path::Path) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 64 * 1024,
        consume_queue_file_size: 100 * 20,
        // Small index files, so that tests roll them.
        index_slot_num: 64,
        index_num: 200,
        // The records' own store times (the tests choose them).
        stamp_store_time: false,
        ..StoreConfig::new(root)
    }
}

fn message(topic: &str, queue_id: i32, i: usize, tag: &str) -> Record {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    Record {
        queue_id,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000 + i as i64,
        born_host: host,
        store_timestamp: 1_700_000_000_001 + i as i64,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(format!("message {i}")),
        topic: topic.into(),
        properties: format!("TAGS\u{1}{tag}\u{2}UNIQ_KEY\u{1}{i:032X}\u{2}"),
    }
}

fn decode(raw: &Bytes) -> Record {
    match record::decode(raw, true).unwrap() {
        Found::Message(r, _) => *r,
        Found::Blank => panic!("a record"),
    }
}

#[test]
fn puts_read_back_per_queue_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..1000 {
        let r = store
            .put(message(
                "TopicTest",
                (i % 4) as i32,
                i,
                if i % 2 == 0 { "TagA" } else { "TagB" },
            ))
            .unwrap();
        assert_eq!(r.queue_offset, (i / 4) as u64);
    }
    store.sync_all().unwrap();
    assert_eq!(store.max_offset("TopicTest", 1), 250);
    let got = store.get("TopicTest", 1, 10, 32, 1 << 20, None).unwrap();
    assert_eq!(got.len(), 32);
    for (k, (offset, raw)) in got.iter().enumerate() {
        let r = decode(raw);
        assert_eq!(*offset, 10 + k as u64);
        assert_eq!(r.queue_offset, *offset as i64);
        assert_eq!(r.queue_id, 1);
        assert_eq!(r.body, Bytes::from(format!("message {}", (10 + k) * 4 + 1)));
    }
    // Bytes cap: at least one record, then no more than the cap.
    let one = store.get("TopicTest", 1, 0, 32, 10, None).unwrap();
    assert_eq!(one.len(), 1);
    drop(store);
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_offset("TopicTest", 3), 250);
    let again = store.get("TopicTest", 1, 10, 32, 1 << 20, None).unwrap();
    assert_eq!(again, got);
}

#[test]
fn lost_consume_queues_are_rebuilt_from_the_commit_log_and_tags_filter() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..200 {
        let tag = if i % 3 == 0 { "TagA" } else { "TagB" };
        store.put(message("T", (i % 2) as i32, i, tag)).unwrap();
    }
    let before = store.get("T", 0, 0, 1000, 1 << 30, None).unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_offset("T", 0), 100);
    assert_eq!(store.get("T", 0, 0, 1000, 1 << 30, None).unwrap(), before);
    // Broker-side filtering by tag hash code (exact tags stay the client's job).
    let code = rmq_store::queue_entry::tags_code(Some("TagA"));
    let tagged = store.get("T", 0, 0, 1000, 1 << 30, Some(&[code])).unwrap();
    assert!(!tagged.is_empty());
    for (_, raw) in &tagged {
        assert_eq!(
            record::property(&decode(raw).properties, "TAGS"),
            Some("TagA")
        );
    }
}

#[test]
fn a_second_opener_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _first = MessageStore::open(config(dir.path())).unwrap();
    match MessageStore::open(config(dir.path())) {
        Err(StoreError::Locked(p)) => assert_eq!(p, dir.path()),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("two stores on one directory"),
    }
}

#[test]
fn offsets_are_found_by_store_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..100 {
        let mut m = message("T", 0, i, "TagA");
        m.store_timestamp = 1_000 + 10 * i as i64;
        store.put(m).unwrap();
    }
    assert_eq!(store.store_time("T", 0, 0).unwrap(), Some(1_000));
    assert_eq!(store.offset_by_time("T", 0, 0).unwrap(), 0);
    assert_eq!(store.offset_by_time("T", 0, 1_000).unwrap(), 0);
    assert_eq!(store.offset_by_time("T", 0, 1_005).unwrap(), 1);
    assert_eq!(store.offset_by_time("T", 0, 1_500).unwrap(), 50);
    assert_eq!(store.offset_by_time("T", 0, 9_999).unwrap(), 100);
    assert_eq!(store.offset_by_time("Nope", 0, 1).unwrap(), 0);
}

#[test]
fn the_abort_marker_tells_a_clean_stop_from_a_crash_and_the_checkpoint_is_javas() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    assert!(dir.path().join("abort").is_file(), "present while running");
    let mut m = message("T", 0, 1, "TagA");
    m.store_timestamp = 1_700_000_123_456;
    store.put(m).unwrap();
    drop(store);
    assert!(
        !dir.path().join("abort").exists(),
        "removed by a clean stop"
    );
    let cp = std::fs::read(dir.path().join("checkpoint")).unwrap();
    assert_eq!(cp.len(), 4096);
    assert_eq!(
        i64::from_be_bytes(cp[..8].try_into().unwrap()),
        1_700_000_123_456
    );
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert!(store.last_stop_was_clean());
    drop(store);
    // A crash leaves the marker behind (the kill -9 test in tests/service.rs does it for real).
    std::fs::write(dir.path().join("abort"), "12345").unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert!(!store.last_stop_was_clean());
    assert_eq!(store.max_offset("T", 0), 1);
}

#[test]
fn retention_deletes_old_segments_and_min_offsets_follow() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..2000 {
        store.put(message("T", (i % 2) as i32, i, "TagA")).unwrap();
    }
    store.sync_all().unwrap();
    let segments = |d: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(d.join("commitlog"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let all = segments(dir.path());
    assert!(all.len() >= 3, "{} segments", all.len());
    // Nothing is old yet.
    assert_eq!(
        store
            .delete_expired(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    // The two oldest segments were last written two days ago.
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    for seg in &all[..2] {
        std::fs::File::options()
            .write(true)
            .open(seg)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    assert_eq!(
        store
            .delete_expired(std::time::Duration::from_secs(72 * 3600))
            .unwrap(),
        0,
        "within fileReservedTime"
    );
    assert_eq!(
        store
            .delete_expired(std::time::Duration::from_secs(3600))
            .unwrap(),
        2
    );
    assert_eq!(segments(dir.path()).len(), all.len() - 2);
    let min = store.min_offset("T", 0);
    assert!(min > 0, "the min offset moved");
    // Reads start at the new minimum; everything still there reads back whole.
    let got = store.get("T", 0, 0, 10, 1 << 20, None).unwrap();
    assert_eq!(got[0].0, min);
    for (_, raw) in &got {
        decode(raw);
    }
    drop(store);
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.min_offset("T", 0), min, "after a reopen too");
    assert_eq!(store.max_offset("T", 0), 1000);
}

#[test]
fn keys_and_unique_ids_are_found_across_index_files_and_a_lagging_index_catches_up() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let mut offsets = Vec::new();
    {
        let mut store = MessageStore::open(config(dir.path())).unwrap();
        for i in 0..500 {
            let mut m = message("TopicTest", (i % 4) as i32, i, "TagA");
            m.properties
                .push_str(&format!("KEYS\u{1}order-{} shared\u{2}", i % 50));
            offsets.push(store.put(m).unwrap().physical_offset);
        }
        // 500 records x (UNIQ_KEY + 2 keys) = 1500 entries: 199 per file.
        let files = std::fs::read_dir(dir.path().join("index")).unwrap().count();
        assert_eq!(files, 1500usize.div_ceil(199));

        let hits = store
            .query_by_key("TopicTest", "order-7", 32, 0, i64::MAX)
            .unwrap();
        let found: Vec<String> = hits
            .records
            .iter()
            .map(|raw| String::from_utf8(decode(raw).body.to_vec()).unwrap())
            .collect();
        let want: Vec<String> = (0..10)
            .rev()
            .map(|k| format!("message {}", k * 50 + 7))
            .collect();
        assert_eq!(
            found, want,
            "newest first, exactly the key's records, across files"
        );
        assert_eq!(hits.index_last_update_phy_offset, offsets[499] as i64);

        let uniq = format!("{:032X}", 123);
        let hits = store
            .query_by_key("TopicTest", &uniq, 32, 0, i64::MAX)
            .unwrap();
        assert_eq!(hits.records.len(), 1);
        assert_eq!(decode(&hits.records[0]).body, Bytes::from("message 123"));
        // Java's cap, a time window, another topic, an unknown key.
        let shared = store
            .query_by_key("TopicTest", "shared", 1000, 0, i64::MAX)
            .unwrap();
        assert_eq!(shared.records.len(), 64);
        let window = store
            .query_by_key(
                "TopicTest",
                "order-7",
                32,
                1_700_000_000_001 + 100,
                1_700_000_000_001 + 300,
            )
            .unwrap();
        assert!(window.records.len() >= 4, "records 107..=307 at least");
        assert!(store
            .query_by_key("Other", "order-7", 32, 0, i64::MAX)
            .unwrap()
            .records
            .is_empty());
        assert!(store
            .query_by_key("TopicTest", "nope", 32, 0, i64::MAX)
            .unwrap()
            .records
            .is_empty());
        // VIEW_MESSAGE_BY_ID reads by physical offset.
        let raw = store.record_at(offsets[42]).unwrap().unwrap();
        assert_eq!(decode(&raw).body, Bytes::from("message 42"));
        assert!(store.record_at(offsets[42] + 1).unwrap().is_none());
        assert!(store.record_at(u64::MAX / 2).unwrap().is_none());
    }
    // A crash before the newest index file's header was synced: it counts only its first
    // entry. The open re-indexes the records after it, once each.
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let newest = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(files.last().unwrap())
        .unwrap();
    let mut h = [0u8; 40];
    newest.read_exact_at(&mut h, 0).unwrap();
    let begin_phy = i64::from_be_bytes(h[16..24].try_into().unwrap());
    h[24..32].copy_from_slice(&begin_phy.to_be_bytes());
    h[36..40].copy_from_slice(&2i32.to_be_bytes());
    newest.write_all_at(&h, 0).unwrap();
    drop(newest);
    let store = MessageStore::open(config(dir.path())).unwrap();
    let hits = store
        .query_by_key("TopicTest", "order-49", 32, 0, i64::MAX)
        .unwrap();
    assert_eq!(hits.records.len(), 10, "re-indexed, not duplicated");
    assert_eq!(decode(&hits.records[0]).body, Bytes::from("message 499"));
    assert_eq!(hits.index_last_update_phy_offset, offsets[499] as i64);
}

#[test]
fn the_index_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(StoreConfig {
        message_index: false,
        ..config(dir.path())
    })
    .unwrap();
    store.put(message("T", 0, 1, "a")).unwrap();
    let uniq = format!("{:032X}", 1);
    assert!(store
        .query_by_key("T", &uniq, 32, 0, i64::MAX)
        .unwrap()
        .records
        .is_empty());
    assert!(!dir.path().join("index").exists());
}

#[test]
fn a_crash_recovery_starts_where_the_checkpoint_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..1500 {
        let mut m = message("T", 0, i, "TagA");
        m.store_timestamp = 1_700_000_000_000 + i as i64 * 1000;
        store.put(m).unwrap();
    }
    drop(store); // the checkpoint now holds the last record's store time
    let segments = std::fs::read_dir(dir.path().join("commitlog"))
        .unwrap()
        .count();
    assert!(segments >= 3, "{segments} segments");
    std::fs::write(dir.path().join("abort"), "12345").unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert!(!store.last_stop_was_clean());
    let walked = store.recovered().records;
    assert!(
        walked > 0 && walked < 1500 / segments as u64 + 50,
        "only the newest segment is walked: {walked} records"
    );
    assert_eq!(store.max_offset("T", 0), 1500);
    drop(store);
    // Without a checkpoint, a crash walks everything.
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    std::fs::write(dir.path().join("abort"), "12345").unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.recovered().records, 1500);
}

#[test]
fn retention_rounds_follow_the_hour_and_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(StoreConfig {
        retention: Retention {
            file_reserved: std::time::Duration::from_secs(3600),
            delete_when: parse_delete_when("04;x;25; 13"),
            batch_max: 2,
            ..Retention::default()
        },
        ..config(dir.path())
    })
    .unwrap();
    for i in 0..3000 {
        store.put(message("T", 0, i, "TagA")).unwrap();
    }
    store.sync_all().unwrap();
    let count = || {
        std::fs::read_dir(dir.path().join("commitlog"))
            .unwrap()
            .count()
    };
    let total = count();
    assert!(total >= 5, "{total} segments");
    // Age the three oldest past fileReservedTime.
    let mut all: Vec<_> = std::fs::read_dir(dir.path().join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for seg in &all[..3] {
        let f = std::fs::File::options().write(true).open(seg).unwrap();
        f.set_modified(old).unwrap();
    }
    // Not the hour, disk below 75%: nothing.
    assert_eq!(store.clean(5, 0.5).unwrap().deleted, 0);
    // The hour (13 from "04;x;25; 13"): expired ones, at most batch_max a round.
    assert_eq!(store.clean(13, 0.5).unwrap().deleted, 2);
    // Another hour, but the disk above 75%: the third expired one, and no young one.
    assert_eq!(store.clean(7, 0.80).unwrap().deleted, 1);
    assert_eq!(store.clean(7, 0.80).unwrap().deleted, 0);
    assert_eq!(count(), total - 3);
    // Above 85%: young segments go too (never the one being written).
    assert_eq!(store.clean(7, 0.86).unwrap().deleted, 2);
    assert_eq!(count(), total - 5);
    assert!(store.min_offset("T", 0) > 0);
    // Above 90%: puts refused, and accepted again once a round finds less.
    let report = store.clean(7, 0.95).unwrap();
    assert!(report.disk_full);
    let err = store.put(message("T", 0, 9999, "TagA")).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull(_)), "{err}");
    assert!(err.to_string().contains("95% used"), "{err}");
    assert!(!store.clean(7, 0.5).unwrap().disk_full);
    assert_eq!(
        store
            .put(message("T", 0, 9999, "TagA"))
            .unwrap()
            .queue_offset,
        3000
    );
    // The real disk's usage is a fraction.
    let used = rmq_store::store::disk_used_ratio(dir.path()).unwrap();
    assert!((0.0..=1.0).contains(&used), "{used}");
}

#[test]
fn a_dispatch_that_fails_after_the_append_is_retried_and_no_queue_offset_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..100 {
        store.put(message("T", 0, i, "TagA")).unwrap();
    }
    // The queue's next file (entries 100..200) cannot be created: a directory is in the way.
    let blocker = dir
        .path()
        .join("consumequeue/T/0")
        .join(rmq_store::commit_log::segment_name(100 * 20));
    std::fs::create_dir_all(&blocker).unwrap();
    // Put 100 reaches the log: it succeeds, its queue entry is pending.
    let r = store.put(message("T", 0, 100, "TagA")).unwrap();
    assert_eq!(r.queue_offset, 100);
    assert_eq!(store.max_offset("T", 0), 100, "not in the queue yet");
    // While the entry cannot be written, puts are refused (not given offset 100 again).
    assert!(store.put(message("T", 0, 101, "TagA")).is_err());
    assert!(
        store.put(message("T", 1, 101, "TagA")).is_err(),
        "any queue"
    );
    std::fs::remove_dir(&blocker).unwrap();
    let r = store.put(message("T", 0, 101, "TagA")).unwrap();
    assert_eq!(r.queue_offset, 101);
    drop(store);
    let store = MessageStore::open(config(dir.path())).unwrap();
    let got = store.get("T", 0, 0, usize::MAX, usize::MAX, None).unwrap();
    let bodies: Vec<_> = got.iter().map(|(_, raw)| decode(raw).body).collect();
    let want: Vec<_> = (0..102)
        .map(|i| Bytes::from(format!("message {i}")))
        .collect();
    assert_eq!(bodies, want, "each record once, in order");
}

#[test]
fn a_sync_job_names_every_written_file_once_and_ends_with_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..10 {
        let mut m = message("T", i % 2, i as usize, "TagA");
        m.store_timestamp = 1_700_000_000_000 + i as i64;
        store.put(m).unwrap();
    }
    let job = store.take_sync_job().unwrap();
    let text = format!("{job:?}");
    for part in [
        "commitlog",
        "consumequeue/T/0",
        "consumequeue/T/1",
        "index",
        "checkpoint",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
    // Run it on another thread while the store takes more puts (as the service does).
    let worker = std::thread::spawn(move || job.run());
    let mut m = message("T", 0, 99, "TagA");
    m.store_timestamp = 1_700_000_000_099;
    store.put(m).unwrap();
    worker.join().unwrap().unwrap();
    let cp = std::fs::read(dir.path().join("checkpoint")).unwrap();
    assert_eq!(
        i64::from_be_bytes(cp[..8].try_into().unwrap()),
        1_700_000_000_009,
        "the checkpoint claims what the job covered, not the put after it"
    );
    // Nothing written since the job except that one put: the next job has only its files.
    let next = store.take_sync_job().unwrap();
    let text = format!("{next:?}");
    assert!(!text.contains("consumequeue/T/1"), "{text}");
    assert!(text.contains("consumequeue/T/0"), "{text}");
    next.run().unwrap();
    // An idle store hands out empty jobs: no fsync, no checkpoint write.
    assert!(store.take_sync_job().unwrap().is_empty());
}

/// Reads return, for each offset asked, the record stored at that queue offset, whatever mix
/// of written and pending consume-queue entries and flush jobs lies behind them.
#[test]
fn reads_match_queue_offsets_across_sync_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path())).unwrap();
    let mut stored = 0usize;
    for round in 0..40usize {
        for _ in 0..(round % 7 + 1) * 3 {
            store
                .put(message("R", (stored % 4) as i32, stored, "TagA"))
                .unwrap();
            stored += 1;
        }
        if round % 3 == 0 {
            store.take_sync_job().unwrap().run().unwrap();
        }
        for q in 0..4 {
            let max = store.max_offset("R", q);
            for from in [0, max / 2, max.saturating_sub(1), max.saturating_sub(5)] {
                let got = store.get_message("R", q, from, 32, 1 << 20, None).unwrap();
                for (i, (at, raw)) in got.records.iter().enumerate() {
                    assert_eq!(*at, from + i as u64);
                    let Found::Message(r, _) = record::decode(raw, true).unwrap() else {
                        panic!()
                    };
                    assert_eq!(
                        r.queue_offset as u64, *at,
                        "round {round} queue {q} from {from}"
                    );
                }
                let plain = store.get("R", q, from, 32, 1 << 20, None).unwrap();
                assert_eq!(plain.len(), got.records.len());
            }
        }
    }
}

/// Issue 27, item 4: the broker stamped the store time before a record waited for the store
/// thread, so times along the log were not sorted and SEARCH_OFFSET_BY_TIMESTAMP's binary
/// search could answer wrong offsets. The store stamps it at append, never going back.
#[test]
fn store_times_are_stamped_at_append_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(StoreConfig {
        stamp_store_time: true,
        ..config(dir.path())
    })
    .unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Callers' times out of order (as sends stamped before waiting for the store thread).
    for i in 0..200 {
        let mut m = message("T", 0, i, "TagA");
        m.store_timestamp = started + 10_000 - (i as i64 % 7) * 1_000;
        store.put(m).unwrap();
    }
    let mut last = 0;
    for o in 0..200 {
        let t = store.store_time("T", 0, o).unwrap().unwrap();
        assert!(t >= last, "offset {o}: {t} < {last}");
        assert!(
            t >= started && t < started + 60_000,
            "offset {o}: {t} is not the store's clock"
        );
        last = t;
    }
    // The binary search answers the first record stored at or after a time.
    let mid = store.store_time("T", 0, 100).unwrap().unwrap();
    let found = store.offset_by_time("T", 0, mid).unwrap();
    assert_eq!(store.store_time("T", 0, found).unwrap(), Some(mid));
    assert!(found == 0 || store.store_time("T", 0, found - 1).unwrap().unwrap() < mid);
}

/// SYNC_FLUSH: a put appended but not yet covered by an fsync is not readable (a consumer
/// could otherwise commit an offset past a message a power loss takes back); the group
/// commit's sync makes it readable, and only what that sync covered.
#[test]
fn under_sync_flush_reads_stop_at_what_an_fsync_covered() {
    use rmq_store::store::GetStatus;
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(StoreConfig {
        sync_flush: true,
        ..config(dir.path())
    })
    .unwrap();
    store.put(message("T", 0, 0, "A")).unwrap(); // put() syncs: readable
    store.put_unflushed(message("T", 0, 1, "A")).unwrap();
    let read = |s: &MessageStore| s.get_message("T", 0, 0, 32, 1 << 20, None).unwrap();
    let r = read(&store);
    assert_eq!(
        (r.status, r.records.len(), r.max_offset),
        (GetStatus::Found, 1, 1)
    );
    // At the readable end, the unsynced put is "nothing new yet": a long poll waits for it.
    let r = store.get_message("T", 0, 1, 32, 1 << 20, None).unwrap();
    assert_eq!(r.status, GetStatus::OffsetOverflowOne);
    // The group commit's two halves: taken, then a third put, then the fsync.
    let sync = store.take_log_sync().unwrap();
    store.put_unflushed(message("T", 0, 2, "A")).unwrap();
    let ran = sync.run();
    store.log_synced(&sync, ran).unwrap();
    let r = read(&store);
    assert_eq!(
        r.records.len(),
        2,
        "the sync covered offsets 0 and 1, not 2"
    );
    assert_eq!(store.max_offset("T", 0), 3, "the queue holds all three");
    store.sync_log().unwrap();
    assert_eq!(read(&store).records.len(), 3);
}
