//! `inspect` and `verify` over hostile directories: random bytes where segments, consume-queue
//! files, the checkpoint and the timer check should be. They report, never panic, never
//! allocate from a size field they read.

mod support;

use proptest::prelude::*;
use rmq_store::{inspect, layout};

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_stores_are_reported_not_crashed_on(
        seg in proptest::collection::vec(any::<u8>(), 0..8192),
        cq in proptest::collection::vec(any::<u8>(), 0..400),
        timer_cq in proptest::collection::vec(any::<u8>(), 0..200),
        check in proptest::collection::vec(any::<u8>(), 0..64),
        abort in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("commitlog").join(format!("{:020}", 0)), &seg);
        write(&root.join("consumequeue/T/0").join(format!("{:020}", 0)), &cq);
        write(&root.join("consumequeue/rmq_sys_wheel_timer/0").join(format!("{:020}", 0)), &timer_cq);
        write(&root.join("checkpoint"), &check);
        write(&root.join("config/timercheck"), &check);
        if abort {
            write(&root.join("abort"), b"1");
        }
        // Whatever the bytes, these answer (a report or an error), and never panic.
        if let Ok(l) = layout::survey(root) {
            prop_assert_eq!(l.clean_stop, !abort);
        }
        if let Ok(s) = inspect::inspect(root) {
            prop_assert!(s.log_end >= s.log_start);
        }
        if let Ok(r) = inspect::verify(root) {
            prop_assert!(r.log_end <= seg.len() as u64);
        }
    }
}

/// A record-sized field claiming gigabytes is damage, not an allocation.
#[test]
fn a_huge_size_field_is_a_problem_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = vec![0u8; 4096];
    seg[..4].copy_from_slice(&i32::MAX.to_be_bytes());
    seg[4..8].copy_from_slice(&0xDAA3_20A7u32.to_be_bytes());
    write(
        &dir.path().join("commitlog").join(format!("{:020}", 0)),
        &seg,
    );
    let r = inspect::verify(dir.path()).unwrap();
    assert_eq!(r.records, 0);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("does not fit"), "{:?}", r.problems);
}

// --- Consume queues checked entry by entry, over stores `MessageStore` wrote. ---

use rmq_store::inspect::{EntryFault, QueueDamage};
use rmq_store::queue_entry::{QueueEntry, ENTRY_LEN};
use rmq_store::store::{MessageStore, StoreConfig};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// 100 entries per consume-queue file, so queues span several files.
const CQ_FILE: u64 = 100 * ENTRY_LEN as u64;

fn config(root: &Path) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 64 * 1024,
        consume_queue_file_size: CQ_FILE,
        ..StoreConfig::new(root)
    }
}

/// The queues [`build`] fills, 300 records each.
const QUEUES: [(&str, i32); 5] = [("A", 0), ("A", 1), ("A", 2), ("A", 3), ("B", 0)];

/// A store of 1,500 records interleaved over [`QUEUES`] (about 4 segments), closed.
fn build(root: &Path) {
    let mut store = MessageStore::open(config(root)).unwrap();
    for i in 0..1500 {
        let (topic, queue_id) = QUEUES[i % QUEUES.len()];
        let properties = format!("TAGS\u{1}Tag{}\u{2}", i % 3);
        store
            .put(support::record(
                topic,
                queue_id,
                format!("message {i}"),
                properties,
            ))
            .unwrap();
    }
    store.sync_all().unwrap();
}

/// Where entry `offset` of a queue lives: (file, byte in it).
fn entry_at(root: &Path, topic: &str, queue_id: i32, offset: u64) -> (std::fs::File, u64) {
    let byte = offset * ENTRY_LEN as u64;
    let path = root
        .join("consumequeue")
        .join(topic)
        .join(queue_id.to_string())
        .join(format!("{:020}", byte - byte % CQ_FILE));
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    (f, byte % CQ_FILE)
}

fn read_entry(root: &Path, topic: &str, queue_id: i32, offset: u64) -> QueueEntry {
    let (f, at) = entry_at(root, topic, queue_id, offset);
    let mut b = [0u8; ENTRY_LEN];
    f.read_exact_at(&mut b, at).unwrap();
    QueueEntry::decode(&b)
}

fn write_entry(root: &Path, topic: &str, queue_id: i32, offset: u64, e: QueueEntry) {
    let (f, at) = entry_at(root, topic, queue_id, offset);
    f.write_all_at(&e.encode(), at).unwrap();
}

/// `verify`'s damage, after checking that each damaged queue is one problem line naming it.
fn damage(root: &Path) -> Vec<QueueDamage> {
    let r = inspect::verify(root).unwrap();
    assert_eq!(r.records, 1500);
    assert_eq!(r.problem_count, r.damage.len() as u64, "{:?}", r.problems);
    for (d, line) in r.damage.iter().zip(&r.problems) {
        assert!(
            line.starts_with(&format!("{}/{} offset(s) ", d.topic, d.queue_id))
                && line.contains(&format!(": {} ", d.entries)),
            "{line}"
        );
    }
    r.damage
}

fn one(d: &[QueueDamage]) -> &QueueDamage {
    assert_eq!(d.len(), 1, "{d:#?}");
    &d[0]
}

#[test]
fn an_undamaged_store_passes() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let r = inspect::verify(dir.path()).unwrap();
    assert!(
        r.problems.is_empty() && r.damage.is_empty(),
        "{:?}",
        r.problems
    );
    assert_eq!((r.records, r.entries, r.expired), (1500, 1500, 0));
    assert_eq!(r.queues, QUEUES.len() as u64);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn pre_blank_placeholders_after_real_entries_are_lost_entries() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // 100 entries of A/1, across a file boundary (200), overwritten as a crash left them.
    for o in 120..220 {
        write_entry(dir.path(), "A", 1, o, QueueEntry::PRE_BLANK);
    }
    let d = damage(dir.path());
    let d = one(&d);
    assert_eq!((d.topic.as_str(), d.queue_id), ("A", 1));
    assert_eq!(d.fault, EntryFault::Placeholder);
    assert_eq!(
        (d.entries, d.ranges.clone(), d.more_ranges),
        (100, vec![(120, 219)], 0)
    );
    let line = inspect::verify(dir.path()).unwrap().problems.remove(0);
    assert!(
        line.contains("120-219") && line.contains("pre-blank"),
        "{line}"
    );
}

#[test]
fn many_scattered_bad_entries_are_one_line_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // Every other entry from 1 to 279 of B/0: 140 ranges of one.
    for o in (1..280).step_by(2) {
        write_entry(dir.path(), "B", 0, o, QueueEntry::PRE_BLANK);
    }
    let d = damage(dir.path());
    let d = one(&d);
    assert_eq!(d.entries, 140);
    assert_eq!(d.ranges.len(), 16);
    assert_eq!((d.ranges[0], d.ranges[15]), ((1, 1), (31, 31)));
    assert_eq!(d.more_ranges, 140 - 16);
    assert!(d.to_string().contains("and 124 more range(s)"), "{d}");
}

#[test]
fn zeros_before_the_last_entry_are_a_hole_and_zeros_after_it_the_end() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    for o in 50..60 {
        write_entry(dir.path(), "A", 2, o, QueueEntry::decode(&[0; ENTRY_LEN]));
    }
    // Garbage (a negative size) further on, also before the end.
    write_entry(
        dir.path(),
        "A",
        2,
        150,
        QueueEntry {
            physical_offset: 7,
            size: -3,
            tags_code: 0,
        },
    );
    let d = damage(dir.path());
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!((d[0].fault, d[0].entries), (EntryFault::Hole, 10));
    assert_eq!(d[0].ranges, vec![(50, 59)]);
    assert_eq!(
        (d[1].fault, d[1].ranges.clone()),
        (EntryFault::Invalid, vec![(150, 150)])
    );
    assert!(d.iter().all(|d| (d.topic.as_str(), d.queue_id) == ("A", 2)));
}

#[test]
fn an_entry_pointing_at_another_queues_record_or_at_no_record_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    write_entry(dir.path(), "A", 0, 10, read_entry(dir.path(), "B", 0, 10));
    let mut e = read_entry(dir.path(), "A", 3, 40);
    e.physical_offset += 1;
    write_entry(dir.path(), "A", 3, 40, e);
    let d = damage(dir.path());
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!((d[0].topic.as_str(), d[0].queue_id), ("A", 0));
    assert_eq!(
        (d[0].fault, d[0].ranges.clone()),
        (EntryFault::OtherQueue, vec![(10, 10)])
    );
    let example = d[0].example.as_deref().unwrap();
    assert!(example.contains("a record of B/0 offset 10"), "{example}");
    assert_eq!((d[1].topic.as_str(), d[1].queue_id), ("A", 3));
    assert_eq!(
        (d[1].fault, d[1].ranges.clone()),
        (EntryFault::NotARecord, vec![(40, 40)])
    );
}

#[test]
fn swapped_entries_point_at_records_of_other_offsets() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let (a, b) = (
        read_entry(dir.path(), "A", 3, 30),
        read_entry(dir.path(), "A", 3, 31),
    );
    write_entry(dir.path(), "A", 3, 30, b);
    write_entry(dir.path(), "A", 3, 31, a);
    let d = damage(dir.path());
    let d = one(&d);
    assert_eq!((d.topic.as_str(), d.queue_id), ("A", 3));
    assert_eq!(
        (d.fault, d.entries, d.ranges.clone()),
        (EntryFault::WrongOffset, 2, vec![(30, 31)])
    );
}

/// Ages the commit log's two oldest segments and lets retention delete them.
fn expire_two_segments(root: &Path) {
    let mut segs: Vec<_> = std::fs::read_dir(root.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 4, "{} segments", segs.len());
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    for seg in &segs[..2] {
        std::fs::File::options()
            .write(true)
            .open(seg)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let mut store = MessageStore::open(config(root)).unwrap();
    let deleted = store
        .delete_expired(std::time::Duration::from_secs(3600))
        .unwrap();
    assert_eq!(deleted, 2);
}

#[test]
fn entries_into_deleted_segments_pass_unless_they_follow_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    expire_two_segments(dir.path());
    let r = inspect::verify(dir.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.expired > 0 && r.entries > 0);
    assert_eq!(r.entries, r.records, "every live record has its entry");
    // Queues rebuilt from what is left start with placeholders: fine too.
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    drop(MessageStore::open(config(dir.path())).unwrap());
    assert_eq!(read_entry(dir.path(), "A", 1, 0), QueueEntry::PRE_BLANK);
    let r = inspect::verify(dir.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // An entry late in a queue pointing into the deleted segments is damage.
    let mut e = read_entry(dir.path(), "A", 0, 290);
    e.physical_offset = 0;
    write_entry(dir.path(), "A", 0, 290, e);
    let d = inspect::verify(dir.path()).unwrap().damage;
    let d = one(&d);
    assert_eq!(
        (d.fault, d.ranges.clone()),
        (EntryFault::Deleted, vec![(290, 290)])
    );
}

#[test]
fn a_torn_last_record_and_its_entry_are_notes_after_a_crash_and_damage_after_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // The last record (B/0 offset 299): one flipped body byte (IPv4 hosts: the body starts 92
    // bytes in).
    let last = read_entry(dir.path(), "B", 0, 299);
    let at = last.physical_offset as u64;
    let seg_size = 64 * 1024;
    let seg = dir
        .path()
        .join("commitlog")
        .join(format!("{:020}", at - at % seg_size));
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(seg)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at % seg_size + 92).unwrap();
    f.write_all_at(&[b[0] ^ 0xFF], at % seg_size + 92).unwrap();
    write(&dir.path().join("abort"), b"1");
    let r = inspect::verify(dir.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        (r.records, r.log_end),
        (1499, at),
        "the log ends where the torn record starts"
    );
    assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    assert!(
        r.notes[0].starts_with(&format!("torn record at {at} ")),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes[1].starts_with("B/0 offset(s) 299: 1 entries pointing past"),
        "{:?}",
        r.notes
    );
    std::fs::remove_file(dir.path().join("abort")).unwrap();
    let r = inspect::verify(dir.path()).unwrap();
    assert_eq!(r.problem_count, 2, "{:?}", r.problems);
    assert!(
        r.problems[0].starts_with(&format!("commit log at {at}: ")),
        "{:?}",
        r.problems
    );
    assert_eq!(r.damage[0].fault, EntryFault::PastLogEnd);
}

#[test]
fn a_short_file_in_the_middle_is_a_hole_and_garbage_after_the_end_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let (f, _) = entry_at(dir.path(), "A", 0, 100);
    f.set_len(50 * ENTRY_LEN as u64).unwrap();
    let garbage = QueueEntry {
        physical_offset: -1,
        size: 5,
        tags_code: 9,
    };
    // B/0 ends at 290 (zeros after), with garbage at 295.
    for o in 290..300 {
        write_entry(dir.path(), "B", 0, o, QueueEntry::decode(&[0; ENTRY_LEN]));
    }
    write_entry(dir.path(), "B", 0, 295, garbage);
    let d = damage(dir.path());
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!((d[0].topic.as_str(), d[0].fault), ("A", EntryFault::Hole));
    assert_eq!((d[0].entries, d[0].ranges.clone()), (50, vec![(150, 199)]));
    assert_eq!(
        (d[1].topic.as_str(), d[1].fault),
        ("B", EntryFault::TrailingInvalid)
    );
    assert_eq!(d[1].ranges, vec![(295, 295)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Entries pointing anywhere in a real log (mid-record, at a blank, past a segment's end,
    /// with any size), and garbage over part of the log: reported, never a panic.
    #[test]
    fn entries_pointing_anywhere_are_reported_not_crashed_on(
        entries in proptest::collection::vec((0u64..300, 0u64..300_000, any::<i32>(), any::<i64>()), 1..20),
        garbage_at in 0u64..200_000,
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        for (offset, physical, size, tags_code) in entries {
            let e = QueueEntry { physical_offset: physical as i64, size, tags_code };
            write_entry(dir.path(), "A", 0, offset, e);
        }
        let seg_size = 64 * 1024;
        let seg = dir.path().join("commitlog").join(format!("{:020}", garbage_at - garbage_at % seg_size));
        if let Ok(f) = std::fs::File::options().write(true).open(seg) {
            f.write_all_at(&garbage, garbage_at % seg_size).unwrap();
        }
        let r = inspect::verify(dir.path()).unwrap();
        prop_assert!(r.problem_count >= r.problems.len() as u64);
        prop_assert!(r.damage.iter().all(|d| d.entries > 0 && !d.ranges.is_empty()));
    }
}
