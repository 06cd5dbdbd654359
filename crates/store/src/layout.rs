//! What a store directory holds, read without opening it (no lock taken, nothing written): the
//! commit-log segments and the segment size they imply, the consume-queue file size, index
//! files, whether the last stop was clean, the checkpoint, and the files of Java features this
//! store does not implement (RocksDB consume queues or config, DLedger, tiered storage, batch or
//! extended consume queues, timer messages still waiting in the timer wheel).
//!
//! A Java broker's directory opens here without flags matching the Java broker's file sizes
//! ([`crate::store::MessageStore::open`] takes the sizes found), and a directory holding
//! something this store would silently ignore is refused by the broker with the file and the
//! Java setting that produced it ([`Layout::refusals`]).

use crate::files::FileError;
use crate::queue_entry::{QueueEntry, ENTRY_LEN};
use crate::record::{self, Found};
use std::path::{Path, PathBuf};

/// No record is larger (Java's maxMessageSize is 4 MiB): a size field above it is damage, and
/// never an allocation.
pub const MAX_RECORD_LEN: u64 = 64 << 20;

/// The topic Java's timer wheel keeps timer messages in until they are due.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";

/// Java's `checkpoint` file (spec §1.8), with rmq's mark when it has one.
pub use crate::checkpoint::Checkpoint;

/// A file or directory of a Java feature this store does not implement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Foreign {
    /// The file or directory found.
    pub path: PathBuf,
    /// The Java setting that makes a broker write it.
    pub setting: &'static str,
    /// What it holds and why it matters.
    pub what: String,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.path.display(),
            self.setting,
            self.what
        )
    }
}

/// One consume queue's files: topic, queue id, (start offset, length) of each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueFiles {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// (start byte offset, length) of each file, in order.
    pub files: Vec<(u64, u64)>,
}

/// What a store directory holds.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The directory.
    pub root: PathBuf,
    /// (start offset, length) of each commit-log segment, in order.
    pub segments: Vec<(u64, u64)>,
    /// The segment size the files imply (`mappedFileSizeCommitLog` of whoever wrote them).
    pub commit_log_segment_size: Option<u64>,
    /// Every consume queue.
    pub queues: Vec<QueueFiles>,
    /// The consume-queue file size the files imply (`mappedFileSizeConsumeQueue`).
    pub consume_queue_file_size: Option<u64>,
    /// (name, length) of each index file.
    pub index_files: Vec<(String, u64)>,
    /// No `abort` marker: the last run stopped cleanly (or nothing ever ran).
    pub clean_stop: bool,
    /// The checkpoint, if there is one.
    pub checkpoint: Option<Checkpoint>,
    /// Java features this store does not implement, found in the directory.
    pub foreign: Vec<Foreign>,
    /// Timer-wheel files (`timerwheel`, `timerlog/`) present: harmless unless timer messages
    /// wait in them (then they are in [`Layout::foreign`]).
    pub timer_files: bool,
}

/// Why a directory could not be surveyed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A file could not be read, or its name or size makes no sense.
    #[error(transparent)]
    File(#[from] FileError),
}

use crate::files::io;

/// Files of a directory named by a 20-digit start offset: (start, length, path), in order.
fn numbered_files(dir: &Path) -> Result<Vec<(u64, u64, PathBuf)>, FileError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(base) = name.parse::<u64>() else {
            continue;
        };
        let path = entry.path();
        let len = entry.metadata().map_err(io(&path))?.len();
        out.push((base, len, path));
    }
    out.sort();
    Ok(out)
}

/// The file size a sequence of files implies: the distance between consecutive names when
/// there are several (it must be the same everywhere), else the one file's length.
fn implied_size(dir: &Path, files: &[(u64, u64, PathBuf)]) -> Result<Option<u64>, FileError> {
    let Some(first) = files.first() else {
        return Ok(None);
    };
    if files.len() == 1 {
        return Ok((first.1 > 0).then_some(first.1));
    }
    let size = files[1].0 - files[0].0;
    for pair in files.windows(2) {
        if pair[1].0 - pair[0].0 != size {
            return Err(FileError::Layout {
                path: dir.to_owned(),
                reason: format!(
                    "files {} and {} are {} bytes apart, earlier ones {size}",
                    crate::files::segment_name(pair[0].0),
                    crate::files::segment_name(pair[1].0),
                    pair[1].0 - pair[0].0
                ),
            });
        }
    }
    Ok(Some(size))
}

fn non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
}

/// Surveys `root` (read-only).
pub fn survey(root: &Path) -> Result<Layout, LayoutError> {
    let mut l = Layout {
        root: root.to_owned(),
        clean_stop: !root.join("abort").exists(),
        checkpoint: Checkpoint::read(&root.join("checkpoint")),
        ..Default::default()
    };
    let log_dir = root.join("commitlog");
    let segments = numbered_files(&log_dir)?;
    l.commit_log_segment_size = implied_size(&log_dir, &segments)?;
    l.segments = segments.iter().map(|(b, len, _)| (*b, *len)).collect();

    let cq_root = root.join("consumequeue");
    let mut cq_size: Option<(u64, PathBuf)> = None;
    if let Ok(topics) = std::fs::read_dir(&cq_root) {
        for topic in topics.flatten() {
            let tpath = topic.path();
            let Some(tname) = topic.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !tpath.is_dir() {
                continue;
            }
            let Ok(queues) = std::fs::read_dir(&tpath) else {
                continue;
            };
            for q in queues.flatten() {
                let Some(queue_id) = q.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                let qpath = q.path();
                let files = numbered_files(&qpath)?;
                if let Some(size) = implied_size(&qpath, &files)? {
                    match &cq_size {
                        None => cq_size = Some((size, qpath.clone())),
                        Some((s, first)) if *s != size && files.len() > 1 => {
                            return Err(FileError::Layout {
                                path: qpath,
                                reason: format!(
                                    "consume-queue files of {size} bytes, {} has {s}",
                                    first.display()
                                ),
                            }
                            .into());
                        }
                        _ => {}
                    }
                }
                l.queues.push(QueueFiles {
                    topic: tname.clone(),
                    queue_id,
                    files: files.iter().map(|(b, len, _)| (*b, *len)).collect(),
                });
            }
        }
    }
    l.queues
        .sort_by(|a, b| (&a.topic, a.queue_id).cmp(&(&b.topic, b.queue_id)));
    l.consume_queue_file_size = cq_size.map(|(s, _)| s);

    if let Ok(files) = std::fs::read_dir(root.join("index")) {
        for f in files.flatten() {
            if let (Some(name), Ok(m)) = (f.file_name().to_str().map(str::to_owned), f.metadata()) {
                if m.is_file() {
                    l.index_files.push((name, m.len()));
                }
            }
        }
        l.index_files.sort();
    }
    l.foreign = foreign_files(root);
    l.timer_files = root.join("timerwheel").exists() || root.join("timerlog").exists();
    if let Some(f) = pending_timers(root, &l)? {
        l.foreign.push(f);
    }
    Ok(l)
}

/// Files of Java features this store does not implement.
fn foreign_files(root: &Path) -> Vec<Foreign> {
    let mut out = rocksdb_files(root);
    out.extend(dledger_dirs(root));
    out.extend(other_foreign_files(root));
    out
}

/// RocksDB consume queues or config (`storeType=defaultRocksDB`, `configManagerVersion=v2`).
fn rocksdb_files(root: &Path) -> Vec<Foreign> {
    let mut out = Vec::new();
    let cq = root.join("consumequeue");
    let rocks_cq = ["CURRENT", "IDENTITY", "OPTIONS"]
        .iter()
        .any(|n| cq.join(n).exists())
        || std::fs::read_dir(&cq).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("MANIFEST-") || n.ends_with(".sst"))
            })
        });
    if rocks_cq {
        out.push(Foreign {
            path: cq,
            setting: "storeType=defaultRocksDB",
            what: "consume queues in RocksDB; rmq reads Java's file consume queues only".into(),
        });
    }
    for (dir, setting) in [
        ("config/topics", "storeType=defaultRocksDB"),
        ("config/subscriptionGroups", "storeType=defaultRocksDB"),
        ("config/consumerOffsets", "storeType=defaultRocksDB"),
        ("config/rdb", "configManagerVersion=v2"),
    ] {
        let p = root.join(dir);
        if p.is_dir() {
            out.push(Foreign {
                path: p,
                setting,
                what: "topics, groups or offsets in RocksDB; rmq reads Java's JSON config files \
                       only (topics.json, subscriptionGroup.json, consumerOffset.json)"
                    .into(),
            });
        }
    }
    out
}

/// DLedger (Raft) commit logs (`enableDLegerCommitLog=true`).
fn dledger_dirs(root: &Path) -> Vec<Foreign> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            if e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("dledger-"))
                && e.path().is_dir()
            {
                out.push(Foreign {
                    path: e.path(),
                    setting: "enableDLegerCommitLog=true",
                    what: "a DLedger (Raft) commit log; rmq reads Java's plain commit log only"
                        .into(),
                });
            }
        }
    }
    out
}

/// Batch consume queues, consume-queue extensions and tiered storage.
fn other_foreign_files(root: &Path) -> Vec<Foreign> {
    let mut out = Vec::new();
    for (dir, setting, what) in [
        (
            "batchconsumequeue",
            "topic attribute queue.type=BatchCQ",
            "batch consume queues; rmq keeps one entry per message",
        ),
        (
            "consumequeue_ext",
            "enableConsumeQueueExt=true",
            "consume-queue extensions (filter bit maps)",
        ),
    ] {
        let p = root.join(dir);
        if non_empty_dir(&p) {
            out.push(Foreign {
                path: p,
                setting,
                what: what.into(),
            });
        }
    }
    let tiered = root.join("config").join("tieredStoreMetadata.json");
    if tiered.exists() {
        out.push(Foreign {
            path: tiered,
            setting: "messageStorePlugIn=...TieredMessageStore",
            what: "messages moved to tiered storage are not in this directory's commit log".into(),
        });
    }
    out
}

/// Timer messages (Java's timer wheel, `timerWheelEnable`, on by default in 5.x) that have not
/// been delivered yet: entries of the timer topic's queue the wheel has not taken in yet
/// (`config/timercheck`'s lastTimerQueueOffset), or taken in with a delivery time
/// (`TIMER_OUT_MS`) at or after the wheel's last read time. rmq does not run the timer wheel;
/// starting on such a directory would leave them undelivered.
fn pending_timers(root: &Path, l: &Layout) -> Result<Option<Foreign>, FileError> {
    let Some(queue) = l
        .queues
        .iter()
        .find(|q| q.topic == TIMER_TOPIC && q.queue_id == 0)
    else {
        return Ok(None);
    };
    let check = std::fs::read(root.join("config").join("timercheck")).ok();
    let at = |o: usize| -> Option<i64> {
        let page = check.as_ref()?;
        Some(i64::from_be_bytes(page.get(o..o + 8)?.try_into().ok()?))
    };
    let last_read_ms = at(0).unwrap_or(0);
    let taken_in = at(16).unwrap_or(0);
    let qdir = root.join("consumequeue").join(TIMER_TOPIC).join("0");
    let mut pending = 0u64;
    let log = SegmentReader::new(root, l);
    for (base, len) in &queue.files {
        let path = qdir.join(crate::files::segment_name(*base));
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        for (i, chunk) in bytes[..(*len as usize).min(bytes.len())]
            .chunks_exact(ENTRY_LEN)
            .enumerate()
        {
            let entry = QueueEntry::decode(chunk.try_into().expect("20 bytes"));
            if !entry.is_valid() {
                continue;
            }
            let offset = (base / ENTRY_LEN as u64) + i as u64;
            let due = log
                .record(entry.physical_offset as u64)
                .and_then(|r| {
                    record::property(&r.properties, "TIMER_OUT_MS").and_then(|v| v.parse().ok())
                })
                .unwrap_or(i64::MAX);
            if offset as i64 >= taken_in || due >= last_read_ms {
                pending += 1;
            }
        }
    }
    Ok((pending > 0).then(|| Foreign {
        path: root.join("timerlog"),
        setting: "timerWheelEnable=true",
        what: format!(
            "{pending} timer message(s) in {TIMER_TOPIC} not yet delivered; rmq does not run \
             the timer wheel: let the Java broker deliver them first"
        ),
    }))
}

/// Reads single records from a directory's commit-log segments (plain reads, no lock; the
/// files are opened once).
pub struct SegmentReader {
    segments: Vec<(u64, u64, Option<std::fs::File>)>,
}

impl SegmentReader {
    /// A reader over the segments `l` lists.
    pub fn new(root: &Path, l: &Layout) -> Self {
        let dir = root.join("commitlog");
        SegmentReader {
            segments: l
                .segments
                .iter()
                .map(|(b, len)| {
                    let f = std::fs::File::open(dir.join(crate::files::segment_name(*b))).ok();
                    (*b, *len, f)
                })
                .collect(),
        }
    }

    /// The record at physical `offset`, if one is there and whole (body CRC checked).
    pub fn record(&self, offset: u64) -> Option<record::Record> {
        use std::os::unix::fs::FileExt;
        let (base, len, f) = self.segments.iter().rev().find(|(b, _, _)| *b <= offset)?;
        let f = f.as_ref()?;
        let within = offset - base;
        if within + 4 > *len {
            return None;
        }
        let mut size = [0u8; 4];
        f.read_exact_at(&mut size, within).ok()?;
        let size = i32::from_be_bytes(size);
        if size <= 0 || within + size as u64 > *len || size as u64 > MAX_RECORD_LEN {
            return None;
        }
        let mut buf = vec![0u8; size as usize];
        f.read_exact_at(&mut buf, within).ok()?;
        match record::decode(&bytes::Bytes::from(buf), true) {
            Ok(Found::Message(r, _)) => Some(*r),
            _ => None,
        }
    }
}

impl Layout {
    /// Why a broker must not start on this directory: one line per foreign file.
    pub fn refusals(&self) -> Option<String> {
        if self.foreign.is_empty() {
            return None;
        }
        let lines: Vec<String> = self.foreign.iter().map(|f| format!("  {f}")).collect();
        Some(format!(
            "{} holds data rmq does not implement (nothing was changed):\n{}",
            self.root.display(),
            lines.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, spec: &[(u64, usize)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (base, len) in spec {
            std::fs::write(dir.join(crate::files::segment_name(*base)), vec![0u8; *len]).unwrap();
        }
    }

    #[test]
    fn sizes_come_from_the_files() {
        let d = tempfile::tempdir().unwrap();
        files(
            &d.path().join("commitlog"),
            &[(0, 4096), (4096, 4096), (8192, 4096)],
        );
        files(&d.path().join("consumequeue/T/0"), &[(0, 200)]);
        let l = survey(d.path()).unwrap();
        assert_eq!(l.commit_log_segment_size, Some(4096));
        assert_eq!(l.consume_queue_file_size, Some(200));
        assert!(l.clean_stop && l.foreign.is_empty());
        assert_eq!(l.queues[0].topic, "T");
    }

    #[test]
    fn uneven_segments_are_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        files(
            &d.path().join("commitlog"),
            &[(0, 4096), (4096, 4096), (12288, 4096)],
        );
        let e = survey(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("commitlog") && e.contains("8192 bytes apart"),
            "{e}"
        );
    }

    #[test]
    fn timer_files_alone_are_not_foreign() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("timerwheel"), [0u8; 16]).unwrap();
        std::fs::create_dir_all(d.path().join("timerlog")).unwrap();
        let l = survey(d.path()).unwrap();
        assert!(l.timer_files);
        assert!(l.foreign.is_empty());
    }
}
