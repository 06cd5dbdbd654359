//! Unit tests of the index files: chains, collisions, time windows, full files, names, and
//! the order in which a sync job writes headers.

use super::*;

#[test]
fn keys_chain_per_bucket_and_queries_find_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("20260101000000000");
    // Four slots: many keys share buckets, so chains and collisions are exercised.
    let mut f = IndexFile::open(&path, 4, 100).unwrap();
    for i in 0..50i64 {
        let key = index_key("T", &format!("k{}", i % 10));
        assert!(f.put(&key, i * 100, 1_700_000_000_000 + i * 1000).unwrap());
    }
    let hits = f.query(&index_key("T", "k3"), 64, 0, i64::MAX).unwrap();
    assert_eq!(
        hits,
        vec![4300, 3300, 2300, 1300, 300],
        "newest first, exactly k3's"
    );
    // A time window.
    let hits = f
        .query(
            &index_key("T", "k3"),
            64,
            1_700_000_013_000,
            1_700_000_033_000,
        )
        .unwrap();
    assert_eq!(hits, vec![3300, 2300, 1300]);
    assert_eq!(
        f.query(&index_key("T", "k3"), 2, 0, i64::MAX)
            .unwrap()
            .len(),
        2
    );
    f.sync().unwrap();
    drop(f);
    // Reopened: the header carries the counts.
    let f = IndexFile::open(&path, 4, 100).unwrap();
    assert_eq!(
        f.query(&index_key("T", "k9"), 64, 0, i64::MAX)
            .unwrap()
            .len(),
        5
    );
    assert_eq!(f.time_range(), (1_700_000_000_000, 1_700_000_049_000));
    // Java's hash: abs(hashCode), MIN_VALUE -> 0.
    assert_eq!(key_hash("TagA"), 2598919);
    for (t, k) in [
        ("T", "k1"),
        ("Topic", "\u{e9}t\u{e9}"),
        ("", ""),
        ("a#b", "c"),
    ] {
        assert_eq!(topic_key_hash(t, k), key_hash(&index_key(t, k)), "{t} {k}");
    }
    assert!(
        IndexFile::open(&path, 8, 100).is_err(),
        "sizes that do not match the file"
    );
}

#[test]
fn names_are_java_times() {
    assert_eq!(file_name(0), "19700101000000000");
    assert_eq!(file_name(1_798_848_000_123), "20270102000000123");
    assert_eq!(file_name(1_709_210_096_789), "20240229123456789");
}

#[test]
fn keys_follow_java_rules() {
    let props = "KEYS\u{1}k1  k2\u{2}UNIQ_KEY\u{1}U1\u{2}";
    assert_eq!(record_keys("T", 0, props), ["T#U1", "T#k1", "T#k2"]);
    assert!(
        record_keys("T", 0x3 << 2, props).is_empty(),
        "rollback: not indexed"
    );
    assert!(record_keys("T", 0, "TAGS\u{1}a\u{2}").is_empty());
}

#[test]
fn files_roll_when_full_and_queries_span_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut ix = Indexes::open(dir.path(), 8, 5).unwrap();
    for i in 0..10i64 {
        ix.put(["T#same"], i * 10, 1_000_000 + i * 1000).unwrap();
    }
    assert_eq!(ix.files.len(), 3, "4 entries per file");
    assert_eq!(ix.end_phy(), 90);
    let all = ix.query("T#same", 64, 0, i64::MAX).unwrap();
    assert_eq!(all, (0..10).rev().map(|i| i * 10).collect::<Vec<_>>());
    ix.sync().unwrap();
    drop(ix);
    let mut ix = Indexes::open(dir.path(), 8, 5).unwrap();
    assert_eq!(ix.end_phy(), 90, "headers survive a reopen");
    assert_eq!(ix.query("T#same", 3, 0, i64::MAX).unwrap(), [90, 80, 70]);
    assert_eq!(
        ix.delete_before(45).unwrap(),
        1,
        "only the first file ends below 45"
    );
    assert_eq!(ix.query("T#same", 64, 0, i64::MAX).unwrap().len(), 6);
}

/// Rolling leaves the full file's sync to the next flush job, which writes each header
/// only after its file's fsync: a crash before the job leaves headers that count nothing
/// new (the records are indexed again at open); after the job they count every entry.
#[test]
fn a_sync_job_writes_the_headers_of_rolled_files_after_their_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut ix = Indexes::open(dir.path(), 8, 5).unwrap();
    for i in 0..10i64 {
        ix.put(["T#k"], i * 10, 1_000_000 + i * 1000).unwrap();
    }
    assert_eq!(ix.files.len(), 3);
    let headers = ix.take_header_writes();
    assert_eq!(headers.len(), 3, "two filled files and the newest");
    assert!(
        ix.take_header_writes().len() == 1,
        "only the newest until another fills"
    );
    std::mem::forget(ix); // a crash before the job ran
    let ix = Indexes::open(dir.path(), 8, 5).unwrap();
    assert_eq!(ix.end_phy(), -1, "no header was written: nothing counts");
    drop(ix);

    let mut ix = Indexes::open(dir.path(), 8, 5).unwrap();
    for i in 0..10i64 {
        ix.put(["T#k"], i * 10, 1_000_000 + i * 1000).unwrap();
    }
    let headers = ix.take_header_writes();
    for h in &headers {
        std::fs::File::open(h.path()).unwrap().sync_data().unwrap();
        h.run().unwrap();
    }
    std::mem::forget(ix); // a crash after the job
    let ix = Indexes::open(dir.path(), 8, 5).unwrap();
    assert_eq!(ix.end_phy(), 90);
    assert_eq!(ix.query("T#k", 64, 0, i64::MAX).unwrap().len(), 10);
    // A file deleted before its header is written needs nothing.
    std::fs::remove_file(headers[0].path()).unwrap();
    headers[0].run().unwrap();
}

#[test]
fn an_unflushed_header_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ix = Indexes::open(dir.path(), 8, 100).unwrap();
    ix.put(["T#a"], 0, 1).unwrap();
    ix.sync().unwrap();
    ix.put(["T#b"], 100, 2).unwrap();
    // A crash now: the entry for b is written but the header does not count it.
    std::mem::forget(ix);
    let mut ix = Indexes::open(dir.path(), 8, 100).unwrap();
    assert_eq!(
        ix.end_phy(),
        0,
        "re-indexing resumes after the last counted record"
    );
    assert!(ix.query("T#b", 64, 0, i64::MAX).unwrap().is_empty());
    ix.put(["T#b"], 100, 2).unwrap();
    assert_eq!(ix.query("T#b", 64, 0, i64::MAX).unwrap(), [100]);
    assert_eq!(ix.query("T#a", 64, 0, i64::MAX).unwrap(), [0]);
}

#[test]
fn a_full_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = IndexFile::open(&dir.path().join("x"), 4, 3).unwrap();
    assert!(f.put("T#a", 0, 1).unwrap());
    assert!(f.put("T#b", 1, 2).unwrap());
    assert!(
        !f.put("T#c", 2, 3).unwrap(),
        "entry 0 is never used: 2 fit in 3"
    );
    assert!(f.is_full());
}
