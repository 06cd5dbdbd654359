//! The commit log over real files in a temp dir: appends across segment rolls read back, a
//! reopen after a clean stop keeps everything, and recovery after a cut or a damaged range keeps
//! exactly a prefix of what was appended (property test), never a torn record; after a crash
//! the walk starts where the checkpoint says (Java's rule).

use bytes::Bytes;
use proptest::prelude::*;
use rmq_store::commit_log::{segment_name, CommitLog, LastStop};
use rmq_store::record::{self, Record};
use std::net::SocketAddr;

const SEGMENT: u64 = 4096;

fn record(i: usize, body_len: usize) -> Record {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    Record {
        queue_id: (i % 4) as i32,
        flag: 0,
        queue_offset: i as i64,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000 + i as i64,
        born_host: host,
        store_timestamp: 1_700_000_000_001 + i as i64,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(vec![(i % 251) as u8; body_len]),
        topic: "TopicTest".into(),
        properties: format!("UNIQ_KEY\u{1}{i:032X}\u{2}"),
    }
}

/// Every record from the start, following BLANKs into the next segment.
fn read_all(log: &CommitLog) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = log.start();
    while at < log.end() {
        match log.read(at).unwrap() {
            Some(r) => {
                at += r.encoded_len() as u64;
                out.push(*r);
            }
            None => at = log.roll_offset(at),
        }
    }
    out
}

#[test]
fn appends_roll_segments_and_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, rec) = CommitLog::open(dir.path(), SEGMENT).unwrap();
    assert_eq!((rec.records, rec.end), (0, 0));
    let mut offsets = Vec::new();
    for i in 0..100 {
        let a = log.append(record(i, 100 + i % 300)).unwrap();
        offsets.push(a.offset);
    }
    log.sync().unwrap();
    assert!(log.end() > 3 * SEGMENT, "several segments");
    assert!(dir.path().join(segment_name(SEGMENT)).is_file());
    let got = read_all(&log);
    assert_eq!(got.len(), 100);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.physical_offset as u64, offsets[i]);
        assert_eq!(r.queue_offset, i as i64);
    }
    let end = log.end();
    drop(log);
    let (log, rec) = CommitLog::open(dir.path(), SEGMENT).unwrap();
    assert_eq!(rec.end, end);
    assert_eq!(rec.discarded_from, None);
    assert_eq!(read_all(&log), got);
    // A record that cannot fit any segment is refused, and nothing changes.
    let (mut log, _) = CommitLog::open(dir.path(), SEGMENT).unwrap();
    assert!(log.append(record(0, 5000)).is_err());
    assert_eq!(log.end(), end);
}

/// The two ways appends reach a segment (a memory map for ASYNC_FLUSH, positioned writes for
/// SYNC_FLUSH) write the same bytes, BLANK ends and segment rolls included, with and without
/// the whole-record CRC; and a log can switch between them mid-segment.
#[test]
fn mapped_and_positioned_writes_make_the_same_files() {
    for crc in [false, true] {
        let dirs = [
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        ];
        for (n, dir) in dirs.iter().enumerate() {
            let (mut log, _) = CommitLog::open_with(dir.path(), SEGMENT, crc).unwrap();
            log.set_mapped_writes(n == 0);
            for i in 0..40 {
                if n == 2 {
                    log.set_mapped_writes(i % 3 == 0);
                }
                log.append(record(i, 37 * i % 700)).unwrap();
            }
            log.sync().unwrap();
            assert_eq!(read_all(&log).len(), 40);
        }
        let files = |d: &std::path::Path| {
            let mut names: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            assert!(names.len() > 3, "the appends roll segments");
            names
                .iter()
                .map(|p| std::fs::read(p).unwrap())
                .collect::<Vec<_>>()
        };
        let mapped = files(dirs[0].path());
        assert_eq!(
            mapped,
            files(dirs[1].path()),
            "positioned writes, crc {crc}"
        );
        assert_eq!(mapped, files(dirs[2].path()), "switching, crc {crc}");
    }
}

/// Positioned writes hold appends back until a flush (a group commit's records go in one
/// write): they read back before it, by record and as raw bytes; a clean close writes them;
/// a crash before the flush loses exactly those, as it loses unflushed mapped appends.
#[test]
fn appends_held_for_the_flush_read_back_and_survive_a_close() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = CommitLog::open_with(dir.path(), SEGMENT, true).unwrap();
    log.set_mapped_writes(false);
    let mut offsets = Vec::new();
    for i in 0..30 {
        offsets.push(log.append(record(i, 200)).unwrap());
    }
    let got = read_all(&log);
    assert_eq!(got.len(), 30, "read before any flush");
    for (i, a) in offsets.iter().enumerate() {
        let raw = log.read_raw(a.offset, a.size).unwrap();
        assert_eq!(raw.len() as u32, a.size);
        assert_eq!(got[i].body, record(i, 200).body);
    }
    drop(log);
    let (log, _) = CommitLog::open_with(dir.path(), SEGMENT, true).unwrap();
    assert_eq!(read_all(&log).len(), 30, "a close writes what was pending");

    let (mut log, _) = CommitLog::open_with(dir.path(), SEGMENT, true).unwrap();
    log.set_mapped_writes(false);
    log.append(record(30, 200)).unwrap();
    log.sync().unwrap();
    log.append(record(31, 200)).unwrap();
    std::mem::forget(log); // a crash: nothing runs after this
    let (log, _) = CommitLog::open_with(dir.path(), SEGMENT, true).unwrap();
    let after = read_all(&log);
    assert_eq!(
        after.len(),
        31,
        "the flushed append survives, the pending one does not"
    );
    assert_eq!(after[30].body, record(30, 200).body);
}

/// A record whose properties (with the CRC property the log adds) or topic do not fit their
/// length fields is refused before a byte is written, in both write modes: a clear error, the
/// log's end unchanged, and the next append and every earlier record fine.
#[test]
fn an_oversized_record_is_refused_before_anything_is_written() {
    for mapped in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = CommitLog::open_with(dir.path(), 1 << 20, true).unwrap();
        log.set_mapped_writes(mapped);
        log.append(record(0, 100)).unwrap();
        let end = log.end();
        // Fits an i16 alone; not with the 24 bytes of the CRC property and separator.
        let mut props = record(1, 10);
        props.properties = format!("K\u{1}{}", "v".repeat(i16::MAX as usize - 10));
        let e = log.append(props).unwrap_err().to_string();
        assert!(e.contains("properties of") && e.contains("exceed"), "{e}");
        let mut topic = record(2, 10);
        topic.topic = "t".repeat(i16::MAX as usize + 1);
        let e = log.append(topic).unwrap_err().to_string();
        assert!(e.contains("topic too long"), "{e}");
        assert_eq!(log.end(), end, "nothing appended (mapped {mapped})");
        log.append(record(3, 100)).unwrap();
        log.sync().unwrap();
        drop(log);
        let (log, _) = CommitLog::open_with(dir.path(), 1 << 20, true).unwrap();
        let bodies: Vec<_> = read_all(&log).into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, [record(0, 100).body, record(3, 100).body]);
    }
}

#[test]
fn a_torn_last_record_is_cut_off_and_appends_go_on_after_the_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = CommitLog::open(dir.path(), SEGMENT).unwrap();
    for i in 0..5 {
        log.append(record(i, 200)).unwrap();
    }
    let last = log.append(record(5, 200)).unwrap();
    log.sync().unwrap();
    drop(log);
    // Tear the last record: its second half never reached the disk.
    let seg = dir.path().join(segment_name(0));
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    use std::os::unix::fs::FileExt;
    let half = last.size as usize / 2;
    f.write_all_at(
        &vec![0u8; last.size as usize - half],
        last.offset + half as u64,
    )
    .unwrap();
    let (mut log, rec) = CommitLog::open(dir.path(), SEGMENT).unwrap();
    assert_eq!(rec.records, 5);
    assert_eq!(rec.end, last.offset);
    assert_eq!(rec.discarded_from, Some(last.offset));
    assert_eq!(read_all(&log).len(), 5);
    let again = log.append(record(6, 10)).unwrap();
    assert_eq!(again.offset, last.offset);
    assert_eq!(read_all(&log).len(), 6);
}

/// Damages the log at byte `at`: with `cut`, a crash that lost the rest of that segment and
/// every later one; otherwise `len` bytes of garbage (never 0) written over it. Whether any
/// byte changed.
fn damage(dir: &std::path::Path, at: u64, cut: bool, len: usize, garbage: u8) -> bool {
    use std::os::unix::fs::FileExt;
    let seg_base = at - at % SEGMENT;
    let path = dir.join(segment_name(seg_base));
    let within = at - seg_base;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    if cut {
        f.set_len(within).unwrap();
        f.set_len(SEGMENT).unwrap();
        let mut next = seg_base + SEGMENT;
        while dir.join(segment_name(next)).exists() {
            std::fs::remove_file(dir.join(segment_name(next))).unwrap();
            next += SEGMENT;
        }
        return true;
    }
    let len = (len as u64).min(SEGMENT - within) as usize;
    let fill = if garbage == 0 { 0xA5 } else { garbage };
    let mut old = vec![0u8; len];
    f.read_exact_at(&mut old, within).unwrap();
    f.write_all_at(&vec![fill; len], within).unwrap();
    old.iter().any(|b| *b != fill)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random appends, then one segment file cut at a random byte or a random range overwritten
    /// with garbage: reopening keeps exactly a prefix of the appended records (none altered, none
    /// from after the damage), and the log takes appends again.
    #[test]
    fn recovery_keeps_exactly_a_prefix(
        sizes in proptest::collection::vec(0usize..900, 1..40),
        damage_at in any::<u64>(),
        damage_len in 1usize..300,
        cut in any::<bool>(),
        garbage in any::<u8>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = CommitLog::open(dir.path(), SEGMENT).unwrap();
        let mut appended = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let a = log.append(record(i, *size)).unwrap();
            appended.push(Record { physical_offset: a.offset as i64, ..record(i, *size) });
        }
        log.sync().unwrap();
        let end = log.end();
        drop(log);
        let at = damage_at % end;
        damage(dir.path(), at, cut, damage_len, garbage);
        let (mut log, _) = CommitLog::open(dir.path(), SEGMENT).unwrap();
        let got = read_all(&log);
        prop_assert!(got.len() <= appended.len());
        // The record holding the damage. Java's format checks the body's CRC and every length
        // (we also check the physical offset against the position), not the other header
        // fields, the topic or the properties, so damage there (a torn tail, or garbage) goes
        // unseen until records carry a whole-record CRC (Java's `__CRC32#` property; planned).
        let holder = appended.iter().position(|a| {
            let start = a.physical_offset as u64;
            start <= at && at < start + a.encoded_len() as u64
        });
        // Where a record's unchecked bytes begin: its properties (after the body, the topic
        // and both length fields, which the size formula checks).
        let properties_start = |a: &Record| {
            a.physical_offset as u64 + 88 + a.body.len() as u64 + 1 + a.topic.len() as u64 + 2
        };
        for (i, (g, a)) in got.iter().zip(&appended).enumerate() {
            if Some(i) == holder {
                // Only the body (CRC), the lengths and the physical offset (checked against the
                // record's position) are protected; other header fields, the topic and the
                // properties are not.
                prop_assert_eq!((&g.body, g.physical_offset), (&a.body, a.physical_offset));
            } else {
                prop_assert_eq!(g, a, "a recovered record differs from what was appended");
            }
        }
        // Every record wholly before the damage survives.
        let before = appended
            .iter()
            .filter(|a| a.physical_offset as u64 + a.encoded_len() as u64 <= at)
            .count();
        prop_assert!(got.len() >= before, "{} records recovered, {} lay before the damage", got.len(), before);
        if cut {
            // A torn write: nothing after the cut survives; the record holding the cut survives
            // only if the cut is in its properties.
            let holder_kept = holder.is_some_and(|h| at >= properties_start(&appended[h]));
            prop_assert_eq!(got.len(), before + usize::from(holder_kept));
        }
        let next = log.append(record(9999, 10)).unwrap();
        prop_assert_eq!(next.offset, log.end() - u64::from(next.size));
        let after = read_all(&log);
        prop_assert_eq!(after.len(), got.len() + 1);
    }
}

/// The stored form of records with Java's whole-record CRC property: `__CRC32#`, `\u{1}`, ten
/// digits of the masked CRC32 of every byte before the property, least significant first, `\u{2}`.
#[test]
fn whole_record_crc_property_as_java_writes_it() {
    let r = record(7, 50).with_prop_crc_reserved();
    let raw = r.to_bytes_with_prop_crc().unwrap();
    let tail = &raw[raw.len() - record::PROP_CRC_LEN..];
    let crc = crc32fast::hash(&raw[..raw.len() - record::PROP_CRC_LEN]) & 0x7FFF_FFFF;
    let mut digits = String::new();
    let mut c = crc;
    for _ in 0..10 {
        digits.push(char::from(b'0' + (c % 10) as u8));
        c /= 10;
    }
    assert_eq!(tail, format!("__CRC32#\u{1}{digits}\u{2}").as_bytes());
    assert!(record::decode(&raw, true).is_ok());
    // Any byte outside the body changed (here the topic's first byte) is now caught.
    let mut bad = raw.to_vec();
    let topic_at = 88 + 50 + 1;
    bad[topic_at] ^= 0x20;
    assert!(matches!(
        record::decode(&Bytes::from(bad), true),
        Err(record::RecordError::BadCrc { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// With whole-record CRCs, recovery keeps exactly the records wholly before the damage,
    /// whatever the damage (a cut or garbage) and wherever it lands in a record.
    #[test]
    fn with_whole_record_crcs_recovery_keeps_exactly_the_records_before_the_damage(
        sizes in proptest::collection::vec(0usize..900, 1..40),
        damage_at in any::<u64>(),
        damage_len in 1usize..300,
        cut in any::<bool>(),
        garbage in any::<u8>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = CommitLog::open_with(dir.path(), SEGMENT, true).unwrap();
        let mut appended = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let a = log.append(record(i, *size)).unwrap();
            appended.push((a.offset, u64::from(a.size)));
        }
        log.sync().unwrap();
        let end = log.end();
        drop(log);
        let at = damage_at % end;
        let changed = damage(dir.path(), at, cut, damage_len, garbage);
        let (log, _) = CommitLog::open_with(dir.path(), SEGMENT, true).unwrap();
        let got = read_all(&log);
        let before = appended.iter().filter(|(o, s)| o + s <= at).count();
        // Damage that lands in a record, or a cut, ends the log exactly there. (Garbage that
        // writes the bytes already there is no damage; garbage past the last record's end, in
        // the unused part of a segment, either hits a BLANK or nothing.)
        let hit = appended.iter().any(|(o, s)| *o <= at && at < o + s);
        if cut || (hit && changed) {
            prop_assert_eq!(got.len(), before,
                "{} recovered, {} before the damage, {} appended", got.len(), before, appended.len());
        }
        for (g, (o, _)) in got.iter().zip(&appended) {
            prop_assert_eq!(g.physical_offset as u64, *o);
        }
    }
}

#[test]
fn after_a_crash_the_walk_starts_at_the_newest_segment_the_checkpoint_covers() {
    let dir = tempfile::tempdir().unwrap();
    let mut firsts = Vec::new(); // (segment base, store time of its first record)
    let end;
    {
        let (mut log, _) = CommitLog::open(dir.path(), SEGMENT).unwrap();
        for i in 0..60 {
            let mut r = record(i, 300);
            r.store_timestamp = 1_700_000_000_000 + i as i64 * 1000;
            let a = log.append(r).unwrap();
            if a.offset % SEGMENT == 0 {
                firsts.push((a.offset, 1_700_000_000_000 + i as i64 * 1000));
            }
        }
        log.sync().unwrap();
        end = log.end();
    }
    assert!(firsts.len() >= 4, "several segments: {firsts:?}");
    // Damage inside the first segment: only a walk that reaches it sees it.
    assert!(damage(dir.path(), 100, false, 4, 0xEE));
    let open = |stop| {
        CommitLog::open_after(dir.path(), SEGMENT, false, stop)
            .unwrap()
            .1
    };

    // The checkpoint covers the third segment's first record (with Java's 3 s margin): the walk
    // starts there, the first segment is taken as flushed.
    let (base, t) = firsts[2];
    let rec = open(LastStop::Crash {
        checkpoint: Some(t + 3_000),
    });
    assert_eq!(rec.end, end);
    assert_eq!(rec.discarded_from, None);
    let walked = open(LastStop::Crash {
        checkpoint: Some(t + 2_999),
    });
    assert!(
        walked.records > rec.records,
        "1 ms less: the walk starts a segment earlier"
    );
    let (log, _) = CommitLog::open_after(dir.path(), SEGMENT, false, LastStop::Clean).unwrap();
    let from_third = read_all(&log)
        .iter()
        .filter(|r| r.physical_offset >= base as i64)
        .count();
    drop(log);
    assert_eq!(rec.records, from_third as u64);

    // A checkpoint older than every segment: everything is walked, and the damage (in the
    // first record's body) ends the log there.
    let rec = open(LastStop::Crash {
        checkpoint: Some(1_000),
    });
    assert_eq!((rec.end, rec.discarded_from), (0, Some(0)));
}
