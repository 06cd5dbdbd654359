//! Read-only looks at any store directory, ours or a Java broker's, for `rmq store inspect` and
//! `rmq store verify`: no lock taken, nothing written, so they run beside a live broker too
//! (then the tail may be in flight).
//!
//! [`inspect`] summarises: segments, the commit log's valid range (the last segment walked),
//! each consume queue's min and max offset, the checkpoint, whether the last stop was clean.
//! [`verify`] walks every record (sizes, magic, body CRC, the physical offset each record
//! carries), checks that every consume queue is dense (no pre-blank placeholder, zero entry or
//! missing stretch between its first real entry and its last: a placeholder there is a lost
//! entry that pulls skip) and every entry against the record it points to (a whole record
//! starting there, topic, queue id, queue offset, size, tags hash code). Damaged entries are
//! reported per queue and fault as offset ranges ([`QueueDamage`]), with exact counts.

mod damage;
mod heads;
mod verify;

pub use damage::{EntryFault, QueueDamage};
pub use verify::{verify, Report};

use crate::layout::{self, Layout, LayoutError};
use crate::queue_entry::{QueueEntry, ENTRY_LEN};
use crate::record::{self, Check, Found, BLANK_MAGIC};
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
        // A bad record leaves `pos` at its start: where the valid log ends.
        match record::decode_checked(&bytes::Bytes::from(buf), Check::Crc) {
            Ok(Found::Message(r, _)) => {
                let at = self.pos;
                self.pos += size as u64;
                Step::Record(r, at)
            }
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
