//! `cargo bench -p rmq-store --bench store`: the store's append, group-commit and read numbers,
//! next to the disk's own limits measured in the same run (the machine is shared and noisy:
//! compare the ratios). Runs in a temp dir on the filesystem of `$TMPDIR` (or /tmp).
//!
//! Prints one table; nothing here is asserted.

use bytes::Bytes;
use rmq_store::record::Record;
use rmq_store::service::StoreService;
use rmq_store::store::{MessageStore, StoreConfig};
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn message(i: u64, body: &Bytes) -> Record {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    Record {
        queue_id: (i % 8) as i32,
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
        body: body.clone(),
        topic: "BenchTopic".into(),
        properties: format!("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}{i:032X}\u{2}"),
    }
}

fn config(dir: &std::path::Path, sync: bool) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 256 << 20,
        sync_flush: sync,
        ..StoreConfig::new(dir)
    }
}

/// The disk alone: `n` writes of `size` bytes, each followed by fdatasync.
fn disk_fdatasync(size: usize, n: usize) -> (f64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("raw")).unwrap();
    f.set_len((size * n) as u64).unwrap();
    let buf = vec![0x5Au8; size];
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&buf, (i * size) as u64).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    ((size * n) as f64 / secs / 1e6, lat[n / 2])
}

fn async_append(body: usize, n: u64, index: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(StoreConfig {
        message_index: index,
        ..config(dir.path(), false)
    })
    .unwrap();
    let body = Bytes::from(vec![7u8; body]);
    // Built before the clock starts: the store is timed, not the benchmark's formatting.
    let messages: Vec<Record> = (0..n).map(|i| message(i, &body)).collect();
    let start = Instant::now();
    for m in messages {
        store.put(m).unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A `StoreService` and the runtime its callers run on, kept across a row's
/// rounds, and warmed up before any is timed: a broker's store is long-lived, and a fresh one
/// pays first touches (the key index's 20 MB of hash slots, a page fault each) that a running
/// one has behind it.
struct ServiceBench {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    svc: StoreService,
    /// The next message number (each has its own UNIQ_KEY).
    next: u64,
}

impl ServiceBench {
    fn start(sync: bool, warm_up: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let svc =
            StoreService::start(config(dir.path(), sync), Duration::from_millis(500)).unwrap();
        let mut bench = ServiceBench {
            _dir: dir,
            rt,
            svc,
            next: 0,
        };
        bench.puts(16, warm_up / 16, 1024);
        bench
    }

    /// `appenders` tasks each putting `per` messages, one at a time: (msgs/s, every
    /// acknowledgement's latency).
    fn puts(&mut self, appenders: usize, per: u64, body: usize) -> (f64, Vec<Duration>) {
        let body = Bytes::from(vec![7u8; body]);
        let first = self.next;
        self.next += appenders as u64 * per;
        let start = Instant::now();
        let lat: Vec<Duration> = self.rt.block_on(async {
            let tasks: Vec<_> = (0..appenders)
                .map(|a| {
                    let (svc, body) = (self.svc.clone(), body.clone());
                    tokio::spawn(async move {
                        let mut lat = Vec::new();
                        for i in 0..per {
                            let t = Instant::now();
                            svc.put(message(first + a as u64 * per + i, &body))
                                .await
                                .unwrap();
                            lat.push(t.elapsed());
                        }
                        lat
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        (lat.len() as f64 / start.elapsed().as_secs_f64(), lat)
    }
}

/// Five rounds, each the disk alone (`disk_ops` 1 KiB writes, each followed by fdatasync)
/// and then `measure` (msgs/s), so both see the same disk (its rate drifts by a third within
/// a minute here): (ratio to that round's disk rate, msgs/s) per round, lowest ratio first.
fn rounds_against_disk(disk_ops: usize, mut measure: impl FnMut() -> f64) -> Vec<(f64, f64)> {
    let mut rounds: Vec<(f64, f64)> = (0..5)
        .map(|_| {
            let (mbs, _) = disk_fdatasync(1024, disk_ops);
            let rate = measure();
            (rate / (mbs * 1e6 / 1024.0), rate)
        })
        .collect();
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    rounds
}

/// One caller putting straight into a `MessageStore` opened with SYNC_FLUSH, no `StoreService`
/// in between (each put returns after its own fsync), warmed up like [`ServiceBench`]:
/// [`rounds_against_disk`] of `n` puts each.
fn direct_sync_rounds(n: u64, disk_ops: usize) -> Vec<(f64, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path(), true)).unwrap();
    let body = Bytes::from(vec![7u8; 1024]);
    let mut next = 0;
    let mut puts = |n: u64| {
        let messages: Vec<Record> = (next..next + n).map(|i| message(i, &body)).collect();
        next += n;
        let start = Instant::now();
        for m in messages {
            store.put(m).unwrap();
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    puts(n);
    rounds_against_disk(disk_ops, || puts(n))
}

/// (p50, p99) of latencies.
fn percentiles(mut lat: Vec<Duration>) -> (Duration, Duration) {
    lat.sort();
    let n = lat.len();
    (lat[n / 2], lat[n * 99 / 100])
}

/// Reading every record of the commit log in order, two ways, after the store is closed: a
/// `pread` into a fresh buffer per record (what `CommitLog::read_raw` does, without its decode),
/// and a zero-copy slice of a memory map of each segment. Each record is then copied once into
/// a reused buffer, as a socket write copies it, so that both touch every byte (a slice alone
/// touches none). Returns (msgs/s, MB/s) for each.
fn log_reads(log_dir: &std::path::Path) -> [(f64, f64); 2] {
    let mut paths: Vec<_> = std::fs::read_dir(log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let files: Vec<std::fs::File> = paths
        .iter()
        .map(|p| std::fs::File::open(p).unwrap())
        .collect();
    // SAFETY: the segments are this benchmark's own temp files, closed by the store and not
    // written or truncated by anyone while mapped.
    let maps: Vec<Bytes> = files
        .iter()
        .map(|f| Bytes::from_owner(unsafe { memmap2::Mmap::map(f) }.unwrap()))
        .collect();
    // Where the records are (not timed): lengths until a BLANK or the unwritten rest.
    let mut records = Vec::new();
    for (i, map) in maps.iter().enumerate() {
        let mut pos = 0usize;
        while pos + 8 <= map.len() {
            let len = u32::from_be_bytes(map[pos..pos + 4].try_into().unwrap()) as usize;
            let magic = i32::from_be_bytes(map[pos + 4..pos + 8].try_into().unwrap());
            if len == 0 || magic == rmq_store::record::BLANK_MAGIC || pos + len > map.len() {
                break;
            }
            records.push((i, pos, len));
            pos += len;
        }
    }
    let total: usize = records.iter().map(|r| r.2).sum();
    let rate = |secs: f64| (records.len() as f64 / secs, total as f64 / secs / 1e6);
    let mut sink: Vec<u8> = Vec::with_capacity(1 << 20);
    let start = Instant::now();
    let mut sum = 0usize;
    for &(i, pos, len) in &records {
        let mut buf = vec![0u8; len];
        files[i].read_exact_at(&mut buf, pos as u64).unwrap();
        let raw = Bytes::from(buf);
        sink.clear();
        sink.extend_from_slice(&raw);
        sum += sink.len();
    }
    let pread = rate(start.elapsed().as_secs_f64());
    let start = Instant::now();
    // Fresh maps, inside the timing: page faults are part of the cost.
    drop(maps);
    // SAFETY: as above.
    let maps: Vec<Bytes> = files
        .iter()
        .map(|f| Bytes::from_owner(unsafe { memmap2::Mmap::map(f) }.unwrap()))
        .collect();
    for &(i, pos, len) in &records {
        let raw = maps[i].slice(pos..pos + len);
        sink.clear();
        sink.extend_from_slice(&raw);
        sum += sink.len();
    }
    let mmap = rate(start.elapsed().as_secs_f64());
    assert_eq!(sum, 2 * total);
    [pread, mmap]
}

/// Pulls of 32 over every queue, page cache warm then cold: ((msgs/s, MB/s) warm, cold), and
/// the raw log reads of [`log_reads`].
#[allow(clippy::type_complexity)]
fn sequential_reads(n: u64, body: usize) -> ((f64, f64), (f64, f64), [(f64, f64); 2]) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MessageStore::open(config(dir.path(), false)).unwrap();
    let b = Bytes::from(vec![7u8; body]);
    for i in 0..n {
        store.put(message(i, &b)).unwrap();
    }
    store.sync_all().unwrap();
    // Each pulled record is copied once into a reused buffer, as a socket write copies it:
    // a slice of a map alone touches no byte.
    let pulls = |store: &mut MessageStore| {
        let start = Instant::now();
        let mut msgs = 0u64;
        let mut bytes = 0u64;
        let mut sink: Vec<u8> = Vec::with_capacity(512 * 1024);
        for q in 0..8 {
            let mut at = 0;
            loop {
                let got = store
                    .get("BenchTopic", q, at, 32, 256 * 1024, None)
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                at = got.last().unwrap().0 + 1;
                msgs += got.len() as u64;
                sink.clear();
                for (_, r) in &got {
                    sink.extend_from_slice(r);
                }
                bytes += sink.len() as u64;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        (msgs as f64 / secs, bytes as f64 / secs / 1e6)
    };
    let warm = pulls(&mut store);
    // Cold: closed (its maps gone: mapped pages cannot be evicted), evicted, reopened.
    drop(store);
    evict_page_cache(dir.path());
    let mut store = MessageStore::open(config(dir.path(), false)).unwrap();
    let cold = pulls(&mut store);
    drop(store);
    let raw = log_reads(&dir.path().join("commitlog"));
    (warm, cold, raw)
}

/// Store-time lookups per second at `n` spread queue offsets of records of `body` bytes: what
/// `store_time` does now (the record's fixed header) against its old path (the whole record
/// read and decoded), in the same run over the same offsets.
fn store_time_reads(n: u64, body: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Bytes::from(vec![7u8; body]);
    let mut store = MessageStore::open(config(dir.path(), false)).unwrap();
    for i in 0..n {
        store.put(message(i * 8, &bytes)).unwrap();
    }
    let offsets: Vec<u64> = (0..n).map(|i| (i * 7919) % n).collect();
    let t = Instant::now();
    let mut sum = 0i64;
    for &o in &offsets {
        sum += store.store_time("BenchTopic", 0, o).unwrap().unwrap();
    }
    let header = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for &o in &offsets {
        let raw = store.get("BenchTopic", 0, o, 1, usize::MAX, None).unwrap();
        let rmq_store::record::Found::Message(r, _) =
            rmq_store::record::decode(&raw[0].1, false).unwrap()
        else {
            panic!("a record");
        };
        sum -= r.store_timestamp;
    }
    let decoded = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(sum, 0, "both paths read the same times");
    (header, decoded)
}

/// Reopen times over a store of about `bytes` of 1 KiB records: after a clean stop (the last
/// segment walked), after a crash with a checkpoint (from the newest segment it covers), and
/// after a crash without one (every segment walked).
fn recovery(bytes: u64) -> [(&'static str, Duration, u64); 5] {
    let dir = tempfile::tempdir().unwrap();
    let body = Bytes::from(vec![7u8; 1024]);
    let n = bytes / 1100;
    {
        let mut store = MessageStore::open(StoreConfig {
            commit_log_segment_size: 64 << 20,
            ..config(dir.path(), false)
        })
        .unwrap();
        for i in 0..n {
            let mut m = message(i, &body);
            m.store_timestamp = 1_700_000_000_000 + i as i64; // 1 ms apart
            store.put(m).unwrap();
        }
    }
    let open = || {
        let t = Instant::now();
        let store = MessageStore::open(StoreConfig {
            commit_log_segment_size: 64 << 20,
            ..config(dir.path(), false)
        })
        .unwrap();
        let walked = store.recovered().records;
        let took = t.elapsed();
        drop(store);
        (took, walked)
    };
    let (clean, clean_n) = open();
    std::fs::write(dir.path().join("abort"), "1").unwrap();
    let (cp, cp_n) = open();
    std::fs::write(dir.path().join("abort"), "1").unwrap();
    std::fs::remove_file(dir.path().join("checkpoint")).unwrap();
    let (all, all_n) = open();
    // The same walks with the store's pages out of the page cache.
    evict_page_cache(dir.path());
    let (clean_cold, clean_cold_n) = open();
    std::fs::write(dir.path().join("abort"), "1").unwrap();
    std::fs::remove_file(dir.path().join("checkpoint")).ok();
    evict_page_cache(dir.path());
    let (all_cold, all_cold_n) = open();
    [
        ("clean stop", clean, clean_n),
        ("crash, checkpoint", cp, cp_n),
        ("crash, no checkpoint", all, all_n),
        ("clean stop, page cache cold", clean_cold, clean_cold_n),
        (
            "crash, no checkpoint, page cache cold",
            all_cold,
            all_cold_n,
        ),
    ]
}

/// Drops every file under `dir` from the page cache (synced first: only clean pages can go),
/// with `posix_fadvise(DONTNEED)`: a cold start without root (no drop_caches). On a VM the
/// host may still cache the disk: "cold" means cold in this machine's memory.
fn evict_page_cache(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            evict_page_cache(&path);
        } else if let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            let _ = f.sync_all();
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run small then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = if quick { 1 } else { 20 };
    // RMQ_STORE_BENCH=append,service,... runs only those parts (disk always runs).
    let only = std::env::var("RMQ_STORE_BENCH").ok();
    let run = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    println!("rmq-store bench (scale {scale}; quick={quick})");
    let (disk_mbs, disk_lat) = disk_fdatasync(4096, 200 * scale as usize / 2);
    let (disk_1k_mbs, _) = disk_fdatasync(1024, 200 * scale as usize / 2);
    let disk_1k_ops = disk_1k_mbs * 1e6 / 1024.0;
    println!("| what | result |");
    println!("|---|---|");
    println!("| disk: 4 KiB write + fdatasync | {disk_mbs:.1} MB/s, p50 {disk_lat:?} |");
    println!("| disk: 1 KiB write + fdatasync | {disk_1k_ops:.0} ops/s |");
    let (disk_seq_mbs, _) = disk_fdatasync(256 << 10, 20 * scale as usize);
    println!("| disk: 256 KiB sequential writes + fdatasync | {disk_seq_mbs:.1} MB/s |");
    // Appends: one run thrown away, then the median of five (with the range). On this VM the
    // first touch of memory the hypervisor has taken back (the pages of files an earlier run
    // deleted) makes single runs vary 2-3x; the throw-away run and the median keep that out.
    let runs = |f: &dyn Fn() -> f64| {
        f();
        let mut r: Vec<f64> = (0..5).map(|_| f()).collect();
        r.sort_by(f64::total_cmp);
        (r[2], r[0], r[4])
    };
    for body in [1024usize, 128].into_iter().filter(|_| run("append")) {
        let (rate, lo, hi) = runs(&|| async_append(body, 20_000 * scale, true));
        let (bare, bare_lo, bare_hi) = runs(&|| async_append(body, 20_000 * scale, false));
        println!(
            "| ASYNC_FLUSH append, {body} B, one task | {rate:.0} msgs/s ({lo:.0}-{hi:.0}); index off: {bare:.0} ({bare_lo:.0}-{bare_hi:.0}), {:.2}x |",
            rate / bare
        );
    }
    for (body, tasks) in [(1024usize, 1usize), (1024, 4), (128, 1), (128, 4)]
        .into_iter()
        .filter(|_| run("service"))
    {
        let per = 20_000 * scale / tasks as u64;
        let mut bench = ServiceBench::start(false, 20_000 * scale);
        let (rate, lat) = bench.puts(tasks, per, body);
        let (p50, p99) = percentiles(lat);
        println!(
            "| ASYNC_FLUSH through `StoreService::put` (appended on the caller's thread), {body} B, {tasks} task(s) | {rate:.0} msgs/s, ack p50 {p50:?} p99 {p99:?} |"
        );
    }
    // SYNC_FLUSH: the median of five rounds against the disk (`rounds_against_disk`).
    if run("sync") {
        let rounds = direct_sync_rounds(400 * scale, 100 * scale as usize);
        println!(
            "| SYNC_FLUSH, 1 KiB, one caller on the store itself (no `StoreService`) | {:.0} msgs/s, {:.2}x the disk's 1 KiB fdatasync rate in the same round ({:.2}-{:.2}x over 5) |",
            rounds[2].1, rounds[2].0, rounds[0].0, rounds[4].0
        );
    }
    for appenders in [1usize, 16, 256].into_iter().filter(|_| run("sync")) {
        let per = ((400 * scale) / appenders as u64).max(10);
        let mut bench = ServiceBench::start(true, 400 * scale);
        let mut lat = Vec::new();
        let rounds = rounds_against_disk(100 * scale as usize, || {
            let (rate, l) = bench.puts(appenders, per, 1024);
            lat.extend(l);
            rate
        });
        let (ratio, rate) = rounds[2];
        let (p50, p99) = percentiles(lat);
        let record_len = message(0, &Bytes::from(vec![7u8; 1024])).stored_len(true) as f64;
        println!(
            "| SYNC_FLUSH group commit, 1 KiB, {appenders} appenders | {rate:.0} msgs/s ({:.1} MB/s of records), {ratio:.2}x the disk's 1 KiB fdatasync rate in the same round ({:.2}-{:.2}x over 5), ack p50 {p50:?} p99 {p99:?} |",
            rate * record_len / 1e6,
            rounds[0].0,
            rounds[4].0
        );
    }
    // RMQ_STORE_BENCH_GIB=10: the recovery rows over 10 GiB (needs that much free disk).
    let gib: u64 = std::env::var("RMQ_STORE_BENCH_GIB")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(1);
    let store_bytes: u64 = if quick { 32 << 20 } else { gib << 30 };
    if run("recovery") {
        for (what, took, walked) in recovery(store_bytes) {
            println!(
                "| reopen of {} MiB, {what} | {took:?}, {walked} records walked ({:.0} MB/s of log) |",
                store_bytes >> 20,
                walked as f64 * 1100.0 / took.as_secs_f64() / 1e6
            );
        }
    }
    if run("time") {
        let (header, decoded) = store_time_reads(20_000 * scale as u64, 4096);
        println!(
            "| store time of a queue entry (offset-by-time, consume stats), 4 KiB records: from the fixed header | {header:.0} lookups/s; whole record read and decoded: {decoded:.0}/s ({:.1}x) |",
            header / decoded
        );
    }
    if !run("reads") {
        return;
    }
    let ((mps, mbs), (cold_mps, cold_mbs), [pread, mmap]) =
        sequential_reads(if quick { 20_000 } else { (1 << 30) / 1100 }, 1024);
    println!(
        "| sequential pulls of 32 x 1 KiB (page cache warm) | {mps:.0} msgs/s, {mbs:.0} MB/s |"
    );
    println!(
        "| sequential pulls of 32 x 1 KiB (page cache cold) | {cold_mps:.0} msgs/s, {cold_mbs:.0} MB/s |"
    );
    println!(
        "| the commit log in order, pread into a buffer per record (no decode), then one copy | {:.0} msgs/s, {:.0} MB/s |",
        pread.0, pread.1
    );
    println!(
        "| the commit log in order, slices of a memory map, then one copy | {:.0} msgs/s, {:.0} MB/s ({:.1}x pread) |",
        mmap.0,
        mmap.1,
        mmap.0 / pread.0
    );
}
