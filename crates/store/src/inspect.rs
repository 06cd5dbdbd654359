//! Read-only looks at any store directory, ours or a Java broker's, for `rmq store inspect` and
//! `rmq store verify`: no lock taken, nothing written, so they run beside a live broker too
//! (then the tail may be in flight).
//!
//! [`inspect`] summarises: segments, the commit log's valid range (the last segment walked),
//! each consume queue's min and max offset, the checkpoint, whether the last stop was clean.
//! [`verify`] walks every record (sizes, magic, body CRC, the physical offset each record
//! carries) and checks every consume-queue entry against the record it points to (size, topic,
//! queue id, queue offset, tags hash code).

use crate::layout::{self, Layout, LayoutError};
use crate::queue_entry::{tags_code, QueueEntry, ENTRY_LEN};
use crate::record::{self, Check, Found, BLANK_MAGIC};
use crate::store::SCHEDULE_TOPIC;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// One consume queue's range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRange {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// First entry that points somewhere (retention and pre-blank padding skipped).
    pub min_offset: u64,
    /// One past the last valid entry.
    pub max_offset: u64,
}

/// What [`inspect`] found.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The files.
    pub layout: Layout,
    /// First byte of the commit log (the oldest segment's start).
    pub log_start: u64,
    /// End of the last whole record (the newest segment walked).
    pub log_end: u64,
    /// Every consume queue.
    pub queues: Vec<QueueRange>,
}

/// Reads a consume queue's files (`files`, a subset of its files in order): every entry with
/// its logical offset, up to the first never-written one.
fn queue_entries(
    root: &Path,
    q: &layout::QueueFiles,
    files: &[(u64, u64)],
) -> Result<Vec<(u64, QueueEntry)>, LayoutError> {
    let dir = root
        .join("consumequeue")
        .join(&q.topic)
        .join(q.queue_id.to_string());
    let mut out = Vec::new();
    for (base, _) in files {
        let path = dir.join(crate::files::segment_name(*base));
        let bytes = std::fs::read(&path).map_err(crate::files::io(&path))?;
        for (i, chunk) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
            let e = QueueEntry::decode(chunk.try_into().expect("20 bytes"));
            if e.physical_offset == 0 && e.size == 0 && e.tags_code == 0 {
                // Never written: the queue ends here.
                return Ok(out);
            }
            out.push((base / ENTRY_LEN as u64 + i as u64, e));
        }
    }
    Ok(out)
}

fn queue_range(entries: &[(u64, QueueEntry)], q: &layout::QueueFiles) -> QueueRange {
    let valid = || entries.iter().filter(|(_, e)| e.is_valid());
    QueueRange {
        topic: q.topic.clone(),
        queue_id: q.queue_id,
        min_offset: valid().next().map(|(o, _)| *o).unwrap_or(0),
        max_offset: valid().next_back().map(|(o, _)| o + 1).unwrap_or(0),
    }
}

/// A walk through one segment: each record's offset and outcome.
enum Step {
    Record(Box<record::Record>, u64),
    /// BLANK or never-written space: the segment's data ends.
    End,
    /// Not a whole, valid record: why.
    Bad(String),
}

/// Reads records one after the other from a segment (buffered sequential reads).
struct SegmentWalk {
    reader: std::io::BufReader<File>,
    pos: u64,
    len: u64,
}

impl SegmentWalk {
    fn open(path: &Path, len: u64) -> Result<SegmentWalk, LayoutError> {
        let f = File::open(path).map_err(crate::files::io(path))?;
        Ok(SegmentWalk {
            reader: std::io::BufReader::with_capacity(1 << 20, f),
            pos: 0,
            len,
        })
    }

    fn next(&mut self) -> Step {
        if self.pos + 8 > self.len {
            return Step::End;
        }
        let mut head = [0u8; 8];
        if let Err(e) = self.reader.read_exact(&mut head) {
            return Step::Bad(format!("read failed: {e}"));
        }
        let size = i32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
        let magic = i32::from_be_bytes(head[4..].try_into().expect("4 bytes"));
        if size == 0 && magic == 0 || magic == BLANK_MAGIC {
            return Step::End;
        }
        if size < 8 || self.pos + size as u64 > self.len || size as u64 > layout::MAX_RECORD_LEN {
            return Step::Bad(format!("record size {size} does not fit the segment"));
        }
        let mut buf = vec![0u8; size as usize];
        buf[..8].copy_from_slice(&head);
        if let Err(e) = self.reader.read_exact(&mut buf[8..]) {
            return Step::Bad(format!("read failed: {e}"));
        }
        let at = self.pos;
        self.pos += size as u64;
        match record::decode_checked(&bytes::Bytes::from(buf), Check::Crc) {
            Ok(Found::Message(r, _)) => Step::Record(r, at),
            Ok(Found::Blank) => Step::End,
            Err(e) => Step::Bad(e.to_string()),
        }
    }
}

/// Where the valid records of one segment end (walked from its start), and why the walk stopped
/// early if it did.
fn segment_end(dir: &Path, base: u64, len: u64) -> Result<(u64, Option<String>, u64), LayoutError> {
    let mut walk = SegmentWalk::open(&dir.join(crate::files::segment_name(base)), len)?;
    let mut records = 0;
    loop {
        match walk.next() {
            Step::Record(r, at) => {
                if r.physical_offset as u64 != base + at {
                    return Ok((
                        base + at,
                        Some(format!(
                            "record at {} says it is at {}",
                            base + at,
                            r.physical_offset
                        )),
                        records,
                    ));
                }
                records += 1;
            }
            Step::End => return Ok((base + walk.pos, None, records)),
            Step::Bad(why) => return Ok((base + walk.pos, Some(why), records)),
        }
    }
}

/// Summarises `root` (read-only; the commit log's end is found by walking its last segment).
pub fn inspect(root: &Path) -> Result<Summary, LayoutError> {
    let layout = layout::survey(root)?;
    let dir = root.join("commitlog");
    let log_start = layout.segments.first().map(|(b, _)| *b).unwrap_or(0);
    let log_end = match layout.segments.last() {
        Some((base, len)) => segment_end(&dir, *base, *len)?.0,
        None => 0,
    };
    // A queue's first and last files are enough for its range (a Java broker's store can hold
    // thousands of 6 MB queue files).
    let mut queues = Vec::new();
    for q in &layout.queues {
        let ends: Vec<(u64, u64)> = match (q.files.first(), q.files.last()) {
            (Some(a), Some(b)) if a != b => vec![*a, *b],
            (Some(a), _) => vec![*a],
            _ => Vec::new(),
        };
        queues.push(queue_range(&queue_entries(root, q, &ends)?, q));
    }
    Ok(Summary {
        layout,
        log_start,
        log_end,
        queues,
    })
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Whole, valid records walked.
    pub records: u64,
    /// Where the valid commit log ends.
    pub log_end: u64,
    /// Consume-queue entries checked against their records.
    pub entries: u64,
    /// Consume queues checked.
    pub queues: u64,
    /// Damage: anything recovery would cut or a reader would trip on, one line each.
    pub problems: Vec<String>,
    /// What recovery will tidy after a crash and is not damage (a torn tail, queue entries
    /// past it).
    pub notes: Vec<String>,
}

/// Most problems listed (the count is always exact).
const MAX_LISTED: usize = 100;

impl Report {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        }
    }
}

/// Checks every record and every consume-queue entry of `root` (read-only).
pub fn verify(root: &Path) -> Result<Report, LayoutError> {
    let layout = layout::survey(root)?;
    let dir = root.join("commitlog");
    let mut report = Report::default();
    let n = layout.segments.len();
    let mut log_end = layout.segments.first().map(|(b, _)| *b).unwrap_or(0);
    for (i, (base, len)) in layout.segments.iter().enumerate() {
        let (end, why, records) = segment_end(&dir, *base, *len)?;
        report.records += records;
        log_end = end;
        if let Some(why) = why {
            let last = i + 1 == n;
            if last && !layout.clean_stop {
                report.notes.push(format!(
                    "torn record at {end} ({why}): the last run crashed; recovery cuts the log there"
                ));
            } else {
                report.problem(format!("commit log at {end}: {why}"));
            }
            if !last {
                report.problem(format!(
                    "{} later segment(s) after the damage at {end} are unreachable",
                    n - i - 1
                ));
            }
            break;
        }
    }
    report.log_end = log_end;
    let reader = layout::SegmentReader::new(root, &layout);
    for q in &layout.queues {
        report.queues += 1;
        for (offset, e) in queue_entries(root, q, &q.files)? {
            if !e.is_valid() {
                continue;
            }
            report.entries += 1;
            let at = e.physical_offset as u64;
            let name = format!("{}/{} offset {offset}", q.topic, q.queue_id);
            if at + e.size as u64 > log_end {
                let line =
                    format!("{name}: points past the log's end ({at}, log ends at {log_end})");
                if layout.clean_stop {
                    report.problem(line);
                } else {
                    report.notes.push(format!("{line}: recovery drops it"));
                }
                continue;
            }
            let Some(r) = reader.record(at) else {
                report.problem(format!("{name}: no valid record at {at}"));
                continue;
            };
            let size = r.encoded_len() as i32;
            let tags_ok = q.topic == SCHEDULE_TOPIC
                || e.tags_code == tags_code(record::property(&r.properties, "TAGS"));
            if size != e.size
                || r.topic != q.topic
                || r.queue_id != q.queue_id
                || r.queue_offset != offset as i64
                || !tags_ok
            {
                report.problem(format!(
                    "{name}: entry (size {}, tags code {}) does not match the record at {at} ({} bytes, {}/{} offset {})",
                    e.size, e.tags_code, size, r.topic, r.queue_id, r.queue_offset
                ));
            }
        }
    }
    Ok(report)
}
