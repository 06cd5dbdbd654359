//! A store directory laid out as a Java 5.3.3 broker leaves it, from the spec and the Java
//! broker's own records: 64 KiB commit-log segments with BLANK ends, 1,280-byte consume-queue
//! files, topics JavaT (100 messages in queue 0, 30 in queue 1, keys `k<i>`, tag TagA) and
//! PullCaptureTopic (the three records from ../shared/vectors/broker-java), a delayed message
//! due for JavaT queue 1, Java's config JSON (offsets 42 and 7 for CG_java, retryMaxTimes 5),
//! a checkpoint and timer-wheel files with nothing waiting.

use super::Next;
use std::path::{Path, PathBuf};

/// The commit-log segment size of the Java-layout store (rmq's default is 1 GiB).
pub const SEG: usize = 64 * 1024;
/// Its consume-queue file size (Java's default is 6,000,000 bytes).
pub const CQ_FILE: usize = 64 * 20;
/// Where delayed messages wait.
pub const SCHEDULE: &str = "SCHEDULE_TOPIC_XXXX";

/// A commit log being laid out: Java's BLANK at a segment's end when the next record (plus
/// the 8-byte end marker) does not fit.
struct LogBuilder {
    bytes: Vec<u8>,
}

impl LogBuilder {
    fn end(&self) -> i64 {
        self.bytes.len() as i64
    }

    /// Appends the record `make(physical offset)` returns; returns its offset and size.
    fn append(&mut self, len: usize, make: impl FnOnce(i64) -> Vec<u8>) -> (i64, i32) {
        let within = self.bytes.len() % SEG;
        if within + len + 8 > SEG {
            let remaining = SEG - within;
            self.bytes
                .extend_from_slice(&(remaining as i32).to_be_bytes());
            self.bytes
                .extend_from_slice(&super::BLANK_MAGIC.to_be_bytes());
            self.bytes.resize(self.bytes.len() + remaining - 8, 0);
        }
        let at = self.end();
        let r = make(at);
        assert_eq!(r.len(), len);
        self.bytes.extend_from_slice(&r);
        (at, len as i32)
    }

    fn write(&self, root: &Path) {
        let dir = root.join("commitlog");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, chunk) in self.bytes.chunks(SEG).enumerate() {
            let mut seg = chunk.to_vec();
            seg.resize(SEG, 0); // Java preallocates every mapped file
            std::fs::write(dir.join(format!("{:020}", i * SEG)), seg).unwrap();
        }
    }
}

/// Writes a consume queue's entries into files of [`CQ_FILE`] bytes.
pub fn write_queue(root: &Path, topic: &str, queue: i32, entries: &[[u8; 20]]) {
    let dir = root
        .join("consumequeue")
        .join(topic)
        .join(queue.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let per_file = CQ_FILE / 20;
    for (i, chunk) in entries.chunks(per_file).enumerate() {
        let mut f: Vec<u8> = chunk.concat();
        f.resize(CQ_FILE, 0);
        std::fs::write(dir.join(format!("{:020}", i * CQ_FILE)), f).unwrap();
    }
}

/// The shared vectors (`RMQ_SHARED_DIR/vectors`, else `../shared/vectors` beside the checkout).
pub fn vectors() -> PathBuf {
    match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

/// The records a Java 5.3.3 broker stored: the bodies of its PULL answers 061/062/063.
fn java_record_vectors() -> Vec<Vec<u8>> {
    let dir = vectors().join("broker-java");
    ["061_resp_c0.bin", "062_resp_c0.bin", "063_resp_c0.bin"]
        .iter()
        .map(|n| {
            let frame = std::fs::read(dir.join(n)).expect("vector present");
            let header_len =
                (u32::from_be_bytes(frame[4..8].try_into().unwrap()) & 0xFF_FFFF) as usize;
            frame[8 + header_len..].to_vec()
        })
        .collect()
}

/// The body of JavaT message `i` (700 bytes).
pub fn body_of(i: usize) -> Vec<u8> {
    let mut b = format!("java-{i}|").into_bytes();
    b.resize(700, b'x');
    b
}

/// What the Java-layout directory holds.
pub struct JavaStore {
    /// Physical offsets of JavaT's records, by message number (0..100 queue 0, 100..130 queue 1).
    pub offsets: Vec<i64>,
    /// Where the valid log ends.
    pub end: i64,
    /// The verbatim Java records (with their offsets patched in) and their offsets.
    pub java: Vec<(i64, Vec<u8>)>,
}

/// Lays out a Java 5.3.3 broker's store in `root`; `crash`: an abort marker and a torn record
/// (with a consume-queue entry pointing at it) after the last whole one.
pub fn build_java_store(root: &Path, crash: bool) -> JavaStore {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let stored = now - 60_000;
    let mut log = LogBuilder { bytes: Vec::new() };
    let mut java = Vec::new();
    let mut capture_queues: Vec<(i32, [u8; 20])> = Vec::new();
    for raw in java_record_vectors() {
        let (at, size) = log.append(raw.len(), |phys| {
            let mut r = raw.clone();
            r[28..36].copy_from_slice(&phys.to_be_bytes()); // PHYSICALOFFSET
            r
        });
        let Next::Record(r) = super::decode(&log.bytes[at as usize..]) else {
            panic!("a Java record")
        };
        capture_queues.push((
            r.queue_id,
            super::cq_entry(
                at,
                size,
                i64::from(super::java_hash(r.property("TAGS").unwrap())),
            ),
        ));
        java.push((
            at,
            log.bytes[at as usize..(at + size as i64) as usize].to_vec(),
        ));
    }
    let tag = i64::from(super::java_hash("TagA"));
    let mut offsets = Vec::new();
    let (mut q0, mut q1) = (Vec::new(), Vec::new());
    for i in 0..130 {
        let (queue, qoff) = if i < 100 { (0, i) } else { (1, i - 100) };
        let key = format!("k{i}");
        let uniq = format!("UNIQ{i:028}");
        let props = [
            ("KEYS", key.as_str()),
            ("TAGS", "TagA"),
            ("UNIQ_KEY", uniq.as_str()),
            ("WAIT", "true"),
        ];
        let body = body_of(i);
        let len = super::encode("JavaT", queue, qoff as i64, 0, stored, 10911, &body, &props).len();
        let (at, size) = log.append(len, |phys| {
            super::encode(
                "JavaT",
                queue,
                qoff as i64,
                phys,
                stored + i as i64,
                10911,
                &body,
                &props,
            )
        });
        offsets.push(at);
        if queue == 0 { &mut q0 } else { &mut q1 }.push(super::cq_entry(at, size, tag));
    }
    // A message delayed at level 1 (1 s), stored a minute ago: due.
    let props = [
        ("REAL_TOPIC", "JavaT"),
        ("REAL_QID", "1"),
        ("DELAY", "1"),
        ("TAGS", "TagA"),
        ("KEYS", "delayed-1"),
        ("UNIQ_KEY", "UNIQDELAYED000000000000000001"),
    ];
    let len = super::encode(SCHEDULE, 0, 0, 0, stored, 10911, b"delayed", &props).len();
    let (at, size) = log.append(len, |phys| {
        super::encode(SCHEDULE, 0, 0, phys, stored, 10911, b"delayed", &props)
    });
    let schedule = [super::cq_entry(at, size, stored + 1000)];
    let end = log.end();
    if crash {
        // A record cut by the crash, and its consume-queue entry written before it was whole.
        let torn = super::encode(
            "JavaT",
            0,
            100,
            end,
            stored,
            10911,
            &body_of(999),
            &[("TAGS", "TagA")],
        );
        q0.push(super::cq_entry(end, torn.len() as i32, tag));
        log.bytes.extend_from_slice(&torn[..60]);
        std::fs::write(root.join("abort"), "12345").unwrap();
    }
    log.write(root);
    write_queue(root, "JavaT", 0, &q0);
    write_queue(root, "JavaT", 1, &q1);
    for (q, e) in &capture_queues {
        write_queue(root, "PullCaptureTopic", *q, &[*e]);
    }
    write_queue(root, SCHEDULE, 0, &schedule);
    let config = root.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let topic = |name: &str, n: i32| {
        format!("\"{name}\":{{\"attributes\":{{}},\"order\":false,\"perm\":6,\"readQueueNums\":{n},\"topicFilterType\":\"SINGLE_TAG\",\"topicName\":\"{name}\",\"topicSysFlag\":0,\"writeQueueNums\":{n}}}")
    };
    std::fs::write(
        config.join("topics.json"),
        format!(
            "{{\n\t\"dataVersion\":{{\"counter\":3,\"stateVersion\":0,\"timestamp\":{stored}}},\n\t\"topicConfigTable\":{{{},{}}}\n}}",
            topic("JavaT", 4),
            topic("PullCaptureTopic", 4)
        ),
    )
    .unwrap();
    std::fs::write(
        config.join("subscriptionGroup.json"),
        "{\"dataVersion\":{\"counter\":1,\"stateVersion\":0,\"timestamp\":1},\"forbiddenTable\":{},\"subscriptionGroupTable\":{\"CG_java\":{\"attributes\":{},\"brokerId\":0,\"consumeBroadcastEnable\":true,\"consumeEnable\":true,\"consumeFromMinEnable\":true,\"consumeMessageOrderly\":false,\"consumeTimeoutMinute\":15,\"groupName\":\"CG_java\",\"groupRetryPolicy\":{\"type\":\"CUSTOMIZED\"},\"groupSysFlag\":0,\"notifyConsumerIdsChangedEnable\":true,\"retryMaxTimes\":5,\"retryQueueNums\":1,\"whichBrokerWhenConsumeSlowly\":1}}}",
    )
    .unwrap();
    std::fs::write(
        config.join("consumerOffset.json"),
        "{\"dataVersion\":{\"counter\":1,\"stateVersion\":0,\"timestamp\":1},\"offsetTable\":{\"JavaT@CG_java\":{0:42,1:7}}}",
    )
    .unwrap();
    std::fs::write(
        config.join("delayOffset.json"),
        "{\"dataVersion\":{\"counter\":1,\"stateVersion\":0,\"timestamp\":1},\"offsetTable\":{1:0}}",
    )
    .unwrap();
    // What every 5.3.3 broker leaves (timerWheelEnable is on by default), with nothing waiting.
    std::fs::write(root.join("timerwheel"), vec![0u8; 4096]).unwrap();
    std::fs::create_dir_all(root.join("timerlog")).unwrap();
    std::fs::write(config.join("timercheck"), vec![0u8; 4096]).unwrap();
    let mut cp = vec![0u8; 4096];
    cp[..8].copy_from_slice(&(stored + 130).to_be_bytes());
    cp[8..16].copy_from_slice(&(stored + 130).to_be_bytes());
    std::fs::write(root.join("checkpoint"), cp).unwrap();
    JavaStore { offsets, end, java }
}
