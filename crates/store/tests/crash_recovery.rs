//! Recovery after a process crash, read back through the pull path: every record put is
//! delivered again, at its queue offset, with no placeholder in a queue.
//!
//! A process crash keeps the page cache and loses the process's memory: a copy of the store's
//! files taken while the store is open (and never closed) is exactly what a kill -9 leaves.
//! That makes the crash deterministic: the copy is taken at the moment that matters.

mod support;

use rmq_store::record::{self, Found, Record};
use rmq_store::store::{GetStatus, MessageStore, StoreConfig};
use std::path::Path;

fn config(root: &Path) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 1 << 20,
        consume_queue_file_size: 1000 * 20,
        message_index: false,
        ..StoreConfig::new(root)
    }
}

fn message(topic: &str, i: usize, body_len: usize) -> Record {
    let mut body = format!("{topic}-{i}-").into_bytes();
    body.resize(body_len.max(body.len()), b'x');
    support::record(topic, 0, body, "")
}

/// Every record of a queue read from offset 0 through `get_message` (the pull path): its
/// bodies in order. Fails on a skipped offset.
fn pull_all(store: &MessageStore, topic: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut offset = 0;
    loop {
        let r = store
            .get_message(topic, 0, offset, 32, 1 << 20, None)
            .unwrap();
        match r.status {
            GetStatus::Found => {}
            GetStatus::OffsetOverflowOne | GetStatus::NoMessageInQueue => return bodies,
            other => panic!("{topic} at {offset}: {other:?}"),
        }
        for (at, raw) in &r.records {
            assert_eq!(*at, offset, "{topic}: offset {offset} skipped");
            let Ok(Found::Message(rec, _)) = record::decode(raw, true) else {
                panic!("{topic} at {at}: not a record");
            };
            assert_eq!(rec.queue_offset as u64, *at);
            bodies.push(
                String::from_utf8_lossy(&rec.body)
                    .split('-')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join("-"),
            );
            offset += 1;
        }
        assert_eq!(
            r.next_begin_offset, offset,
            "{topic}: a pull skipped offsets"
        );
    }
}

/// The reported case: a hot queue whose entries reach their file in full batches, an idle
/// queue whose last entries wait in memory, a kill -9. Before the fix, re-dispatch started
/// where the hot queue ended, the idle queue's lost entries were never rebuilt, and its next
/// records were put past a gap of placeholders that pulls skip (1,091 of 3,000 messages gone
/// in the report, with every offset count looking right).
#[test]
fn an_idle_queue_behind_a_hot_one_loses_nothing_in_a_process_crash() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let mut store = MessageStore::open(config(&live)).unwrap();
    let mut cold = 0;
    let mut put_cold = |store: &mut MessageStore, n: usize| {
        for _ in 0..n {
            store.put(message("COLD", cold, 100)).unwrap();
            cold += 1;
        }
    };
    put_cold(&mut store, 100);
    // A periodic flush: everything so far is durable, the checkpoint written.
    store.take_sync_job().unwrap().run().unwrap();
    // The idle queue's next entries wait in memory...
    put_cold(&mut store, 7);
    // ...while the hot queue writes full batches of entries past them.
    for i in 0..10_000 {
        store.put(message("HOT", i, 128)).unwrap();
        if i % 2_500 == 0 {
            put_cold(&mut store, 1);
        }
    }
    put_cold(&mut store, 3);
    // kill -9 now.
    let crashed = dir.path().join("crashed");
    support::crash_copy(&live, &crashed);
    std::mem::forget(store);

    let store = MessageStore::open(config(&crashed)).unwrap();
    assert!(!store.last_stop_was_clean());
    let expected: Vec<String> = (0..cold).map(|i| format!("COLD-{i}")).collect();
    assert_eq!(pull_all(&store, "COLD"), expected);
    let hot = pull_all(&store, "HOT");
    assert_eq!(hot.len(), 10_000);
    assert!(hot
        .iter()
        .enumerate()
        .all(|(i, b)| *b == format!("HOT-{i}")));
    // No placeholder anywhere in the queues either.
    for topic in ["COLD", "HOT"] {
        for o in 0..store.max_offset(topic, 0) {
            let got = store.get(topic, 0, o, 1, 1 << 20, None).unwrap();
            assert_eq!(got.first().map(|(at, _)| *at), Some(o), "{topic} {o}");
        }
    }
}

/// Every record of `topic` queue 0 by `get` (bodies' "topic-i" prefixes).
fn bodies(store: &MessageStore, topic: &str) -> Vec<String> {
    store
        .get(topic, 0, 0, usize::MAX, usize::MAX, None)
        .unwrap()
        .iter()
        .map(|(_, raw)| {
            let Ok(Found::Message(r, _)) = record::decode(raw, true) else {
                panic!("not a record");
            };
            String::from_utf8_lossy(&r.body)
                .split('-')
                .take(2)
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// Issue 27, item 1: `enabledAppendPropCRC=true` on a store written without it made recovery
/// take every record without the CRC property for damage and cut the log at the first one.
/// The store now requires the property only from where it started writing it, and verifies
/// it wherever present.
#[test]
fn turning_the_whole_record_crc_on_keeps_the_records_written_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let small = |root: &Path, crc: bool| StoreConfig {
        commit_log_segment_size: 64 * 1024,
        whole_record_crc: crc,
        ..config(root)
    };
    let mut store = MessageStore::open(small(&live, false)).unwrap();
    for i in 0..300 {
        store.put(message("T", i, 500)).unwrap();
    }
    drop(store);
    // The setting turned on: a clean reopen walks the last segment, which holds records
    // without the property.
    let mut store = MessageStore::open(small(&live, true)).unwrap();
    assert_eq!(store.max_offset("T", 0), 300);
    for i in 300..600 {
        store.put(message("T", i, 500)).unwrap();
    }
    store.sync_all().unwrap();
    let expected: Vec<String> = (0..600).map(|i| format!("T-{i}")).collect();
    // A crash now: the walk covers both kinds of record.
    let crashed = dir.path().join("crashed");
    support::crash_copy(&live, &crashed);
    std::mem::forget(store);
    let store = MessageStore::open(small(&crashed, true)).unwrap();
    assert_eq!(bodies(&store, "T"), expected);
    drop(store);
    // Without a checkpoint (every segment walked, nothing known of where the property
    // starts), nothing is taken for damage either.
    let bare = dir.path().join("bare");
    support::crash_copy(&crashed, &bare);
    std::fs::remove_file(bare.join("checkpoint")).unwrap();
    std::fs::write(bare.join("abort"), b"1").unwrap();
    let store = MessageStore::open(small(&bare, true)).unwrap();
    assert_eq!(bodies(&store, "T"), expected);
    drop(store);
    // A record that carries the property and was torn is still cut: the last record's last
    // bytes (its CRC property) zeroed, as a torn write leaves them.
    let torn = dir.path().join("torn");
    support::crash_copy(&crashed, &torn);
    std::fs::write(torn.join("abort"), b"1").unwrap();
    let (start, end) = {
        let s = MessageStore::open(small(&crashed, true)).unwrap();
        let (_, end) = s.log_range();
        let last = s.get("T", 0, 599, 1, usize::MAX, None).unwrap();
        (last[0].0, end)
    };
    assert_eq!(start, 599);
    let seg = 64 * 1024u64;
    let file = torn
        .join("commitlog")
        .join(format!("{:020}", (end - 1) / seg * seg));
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0u8; 10], (end - 10) % seg).unwrap();
    let store = MessageStore::open(small(&torn, true)).unwrap();
    assert_eq!(bodies(&store, "T"), expected[..599].to_vec());
}

/// A power loss can tear an unsynced queue entry into one that looks valid and points before
/// the dispatch mark (its offset bytes in a sector that kept old zeros, its size in one that
/// was written). Recovery checks such an entry against the record it points at and drops it,
/// instead of serving another message at that queue offset.
#[test]
fn a_torn_queue_entry_pointing_before_the_mark_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let mut store = MessageStore::open(config(&live)).unwrap();
    for i in 0..5 {
        store.put(message("HOT", i, 100)).unwrap();
    }
    store.take_sync_job().unwrap().run().unwrap();
    let first_size = store.get("HOT", 0, 0, 1, usize::MAX, None).unwrap()[0]
        .1
        .len();
    for i in 5..8 {
        store.put(message("HOT", i, 100)).unwrap();
    }
    // The entries reach their file (a flush job started: it takes them), the checkpoint does
    // not move (the job never finishes).
    let unfinished = store.take_sync_job().unwrap();
    let crashed = dir.path().join("crashed");
    support::crash_copy(&live, &crashed);
    std::mem::forget(store);
    drop(unfinished);
    // Offset 8 (no record has it): a torn entry pointing at the first record, before the mark.
    let torn = rmq_store::queue_entry::QueueEntry {
        physical_offset: 0,
        size: first_size as i32,
        tags_code: 0,
    };
    let q = crashed
        .join("consumequeue/HOT/0")
        .join(format!("{:020}", 0));
    let f = std::fs::OpenOptions::new().write(true).open(q).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&torn.encode(), 8 * 20).unwrap();
    drop(f);
    let store = MessageStore::open(config(&crashed)).unwrap();
    let expected: Vec<String> = (0..8).map(|i| format!("HOT-{i}")).collect();
    assert_eq!(pull_all(&store, "HOT"), expected);
    assert_eq!(store.max_offset("HOT", 0), 8);
}

/// Under ASYNC_FLUSH a put is answered before any fsync, so it must at least be in the page
/// cache: a process crash then loses none. With positioned writes (what the store falls back
/// to when a segment cannot be mapped) appends used to wait in the process for the next
/// flush, up to `flushIntervalCommitLog` later: a kill -9 in between lost answered puts.
#[test]
fn an_answered_async_put_survives_a_process_crash_with_positioned_writes() {
    for mapped in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (live, copy) = (dir.path().join("live"), dir.path().join("copy"));
        let mut store = MessageStore::open(StoreConfig {
            sync_flush: false,
            mapped_appends: Some(mapped),
            ..config(&live)
        })
        .unwrap();
        for i in 0..50 {
            store.put(message("T", i, 100)).unwrap();
        }
        support::crash_copy(&live, &copy);
        drop(store);
        let reopened = MessageStore::open(config(&copy)).unwrap();
        let expected: Vec<String> = (0..50).map(|i| format!("T-{i}")).collect();
        assert_eq!(
            pull_all(&reopened, "T"),
            expected,
            "mapped appends: {mapped}"
        );
    }
}
