//! Consume queues over real files: entries across files, reopen, a torn tail, idempotent
//! re-dispatch, pre-blank padding, and truncation after the commit log was cut.

use rmq_store::consume_queue::ConsumeQueue;
use rmq_store::queue_entry::{QueueEntry, ENTRY_LEN};

const FILE: u64 = 10 * ENTRY_LEN as u64;

fn entry(i: u64) -> QueueEntry {
    QueueEntry {
        physical_offset: (i * 100) as i64,
        size: 100,
        tags_code: i as i64,
    }
}

#[test]
fn entries_across_files_survive_a_reopen_and_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    for i in 0..25 {
        q.put(i, entry(i)).unwrap();
    }
    q.sync().unwrap();
    assert_eq!((q.min_offset(), q.max_offset()), (0, 25));
    assert_eq!(q.get(17).unwrap(), Some(entry(17)));
    assert_eq!(q.get(25).unwrap(), None);
    drop(q);
    let q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    assert_eq!(q.max_offset(), 25);
    for i in 0..25 {
        assert_eq!(q.get(i).unwrap(), Some(entry(i)));
    }
    drop(q);
    // Tear entry 23 (its second half lost): the queue ends at 23.
    let path = dir.path().join(format!("{:020}", 2 * FILE));
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[0u8; 20], 3 * ENTRY_LEN as u64).unwrap();
    let mut q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    assert_eq!(q.max_offset(), 23);
    q.put(23, entry(23)).unwrap();
    assert_eq!(q.get(23).unwrap(), Some(entry(23)));
}

#[test]
fn redispatch_is_idempotent_gaps_get_pre_blanks_and_truncation_follows_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    for i in 0..5 {
        q.put(i, entry(i)).unwrap();
    }
    // The same entries again (re-dispatch after a crash): nothing changes.
    q.put(
        3,
        QueueEntry {
            size: 1,
            ..entry(3)
        },
    )
    .unwrap();
    assert_eq!(q.get(3).unwrap(), Some(entry(3)));
    // A gap: filled with pre-blanks.
    q.put(8, entry(8)).unwrap();
    assert_eq!(q.get(6).unwrap(), Some(QueueEntry::PRE_BLANK));
    assert_eq!(q.max_offset(), 9);
    // The commit log was cut at 800: entries pointing there or later go (back to the pre-blanks,
    // which point nowhere and stay).
    q.truncate_from_physical(800).unwrap();
    assert_eq!(q.max_offset(), 8);
    let mut q2 = ConsumeQueue::open(dir.path(), FILE).unwrap();
    assert_eq!(q2.max_offset(), 8);
    q2.put(8, entry(8)).unwrap();
    assert_eq!(q2.max_offset(), 9);
    assert!(
        ConsumeQueue::open(&dir.path().join("bad"), 30).is_err(),
        "not a multiple of 20"
    );
}

/// Windows of entries (what pulls read) agree with single reads, across files and with some
/// entries still pending in memory; pending ones reach the file at a flush or when the queue
/// moves to its next file, and a drop without either loses them (the store's reput rebuilds
/// them from the log).
#[test]
fn windows_of_entries_match_single_reads_across_files_and_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    for i in 0..15 {
        q.put(i, entry(i)).unwrap();
    }
    q.sync().unwrap();
    for i in 15..27 {
        q.put(i, entry(i)).unwrap(); // pending: not flushed
    }
    for from in [0, 3, 9, 10, 14, 15, 19, 26] {
        for n in [1, 4, 7, 30] {
            let got = q.entries(from, n).unwrap();
            let want: Vec<_> = (from..27.min(from + n as u64)).map(entry).collect();
            assert_eq!(got, want, "from {from}, {n}");
        }
    }
    assert!(q.entries(27, 5).unwrap().is_empty());
    drop(q); // no flush: 15..19 were written when 20 opened the next file, 20.. never
    let q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    assert_eq!(q.max_offset(), 20);
    let mut q = q;
    for i in 20..27 {
        q.put(i, entry(i)).unwrap();
    }
    q.sync().unwrap();
    drop(q);
    let q = ConsumeQueue::open(dir.path(), FILE).unwrap();
    assert_eq!(
        q.entries(0, 100).unwrap(),
        (0..27).map(entry).collect::<Vec<_>>()
    );
}

/// Bytes this thread has read through system calls so far (`rchar` of /proc/thread-self/io).
fn thread_read_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Issue 27, item 8: opening a queue read every one of its files in full, so startup grew with
/// all consume-queue data even after a clean stop. Its end is now found in the last file by a
/// binary search: a queue of 40 full files of 10,000 entries (8 MB) opens reading a few KB.
#[test]
fn opening_a_queue_reads_its_last_file_only_a_little() {
    const BIG: u64 = 10_000 * ENTRY_LEN as u64;
    let dir = tempfile::tempdir().unwrap();
    let mut q = ConsumeQueue::open(dir.path(), BIG).unwrap();
    let n = 40 * 10_000 + 1234;
    for i in 0..n {
        q.put(i, entry(i)).unwrap();
    }
    q.sync().unwrap();
    drop(q);
    let Some(before) = thread_read_bytes() else {
        eprintln!("SKIPPED: no /proc/thread-self/io here");
        return;
    };
    let q = ConsumeQueue::open(dir.path(), BIG).unwrap();
    let read = thread_read_bytes().unwrap() - before;
    assert_eq!(q.max_offset(), n);
    assert_eq!(q.get(n - 1).unwrap(), Some(entry(n - 1)));
    assert!(
        read < 64 * 1024,
        "{read} bytes read to open a queue of {} bytes",
        41 * BIG
    );
}

/// Retention's new minimum (`drop_before_physical`) is found by binary search; it must be the
/// offset the entry-by-entry walk finds, whatever the layout: pre-blank padding at the start
/// and in the middle (where a gap was padded), several files, any cut in the log.
mod retention_min_offset {
    use super::*;
    use proptest::prelude::*;

    /// What the walk finds on `entries` (`None` = pre-blank) for a cut at `log_start`.
    fn walked(entries: &[Option<i64>], log_start: u64) -> u64 {
        let per_file = FILE / ENTRY_LEN as u64;
        let physical = |i: u64| entries[i as usize].unwrap_or(0) as u64;
        let n = entries.len() as u64;
        let files = n.div_ceil(per_file);
        // Whole files go while more than one is left and their last entry points before.
        let mut first_file = 0;
        while files - first_file > 1 && physical(first_file * per_file + per_file - 1) < log_start {
            first_file += 1;
        }
        let mut min = first_file * per_file;
        while min < n && physical(min) < log_start {
            min += 1;
        }
        min
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn the_binary_search_finds_what_the_walk_finds(
            layout in proptest::collection::vec(any::<bool>().prop_map(|b| !b), 1..120),
            blank_prefix in 0u64..15,
            cut in 0u64..15_000,
        ) {
            // `layout[i]`: entry i (after the prefix) is real; a false is a gap padded with a
            // pre-blank when the next real entry is put past it.
            let dir = tempfile::tempdir().unwrap();
            let mut q = ConsumeQueue::open(dir.path(), FILE).unwrap();
            let mut entries: Vec<Option<i64>> = vec![None; blank_prefix as usize];
            let mut physical = 1_000i64;
            for (i, real) in layout.iter().enumerate() {
                let offset = blank_prefix + i as u64;
                if *real {
                    q.put(offset, QueueEntry { physical_offset: physical, size: 100, tags_code: 0 }).unwrap();
                    while entries.len() < offset as usize {
                        entries.push(None);
                    }
                    entries.push(Some(physical));
                    physical += 100;
                }
            }
            prop_assume!(!entries.is_empty() && entries.iter().any(Option::is_some));
            q.sync().unwrap();
            let log_start = cut.min(physical as u64 + 200);
            q.drop_before_physical(log_start).unwrap();
            prop_assert_eq!(q.min_offset(), walked(&entries, log_start));
        }
    }
}
