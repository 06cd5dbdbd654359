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

/// What is wrong with a consume-queue entry (see [`QueueDamage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EntryFault {
    /// A pre-blank placeholder ([`QueueEntry::PRE_BLANK`]) after the queue's first real entry:
    /// an entry lost and padded over; pulls skip the offset.
    Placeholder,
    /// A never-written (all-zero) entry, or a stretch missing from a short file, before the
    /// queue's last entry: recovery ends the queue there.
    Hole,
    /// Neither a real entry nor a placeholder (negative commit-log offset, size 0 or less)
    /// before the queue's last entry.
    Invalid,
    /// Garbage after the queue's last entry.
    TrailingInvalid,
    /// Points into deleted segments after entries that point at live records.
    Deleted,
    /// Points past the end of the commit log's valid records.
    PastLogEnd,
    /// No whole record starts where it points.
    NotARecord,
    /// Points at a record of another topic or queue.
    OtherQueue,
    /// Points at a record of this queue stored at another queue offset.
    WrongOffset,
    /// Its size is not the record's.
    WrongSize,
    /// Its tags hash code is not the record's.
    WrongTags,
}

impl EntryFault {
    /// A short stable name (the JSON of `rmq store verify`).
    pub fn name(self) -> &'static str {
        match self {
            EntryFault::Placeholder => "placeholder",
            EntryFault::Hole => "hole",
            EntryFault::Invalid => "invalid",
            EntryFault::TrailingInvalid => "trailingInvalid",
            EntryFault::Deleted => "deleted",
            EntryFault::PastLogEnd => "pastLogEnd",
            EntryFault::NotARecord => "notARecord",
            EntryFault::OtherQueue => "otherQueue",
            EntryFault::WrongOffset => "wrongOffset",
            EntryFault::WrongSize => "wrongSize",
            EntryFault::WrongTags => "wrongTags",
        }
    }

    /// What it means, for a reader.
    pub fn what(self) -> &'static str {
        match self {
            EntryFault::Placeholder => {
                "pre-blank placeholders after the queue's first real entry (entries lost; pulls \
                 skip these offsets)"
            }
            EntryFault::Hole => {
                "never-written (zero) entries before the queue's last entry (a hole: recovery \
                 ends the queue there)"
            }
            EntryFault::Invalid => "invalid entries before the queue's last entry",
            EntryFault::TrailingInvalid => "invalid entries after the queue's last entry",
            EntryFault::Deleted => {
                "entries pointing into deleted segments after entries pointing at live records"
            }
            EntryFault::PastLogEnd => "entries pointing past the commit log's valid end",
            EntryFault::NotARecord => "entries pointing at no whole record",
            EntryFault::OtherQueue => "entries pointing at another queue's record",
            EntryFault::WrongOffset => "entries pointing at a record of another queue offset",
            EntryFault::WrongSize => "entries whose size is not their record's",
            EntryFault::WrongTags => "entries whose tags hash code is not their record's",
        }
    }
}

/// Ranges listed per [`QueueDamage`] (the counts are always exact).
const MAX_RANGES: usize = 16;

/// The damaged entries of one consume queue that share a [`EntryFault`]: how many and where,
/// as ranges of consecutive queue offsets, so that 1,000 bad entries are one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDamage {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// What is wrong.
    pub fault: EntryFault,
    /// Entries affected.
    pub entries: u64,
    /// The first ranges of affected queue offsets, `(first, last)` inclusive, in order.
    pub ranges: Vec<(u64, u64)>,
    /// Ranges after those listed.
    pub more_ranges: u64,
    /// The first affected entry, described (where it points, what is there), when there is
    /// more to say than the fault.
    pub example: Option<String>,
    /// The last offset added.
    last: u64,
}

impl QueueDamage {
    fn new(topic: &str, queue_id: i32, fault: EntryFault) -> Self {
        QueueDamage {
            topic: topic.to_owned(),
            queue_id,
            fault,
            entries: 0,
            ranges: Vec::new(),
            more_ranges: 0,
            example: None,
            last: 0,
        }
    }

    /// Adds the `n` entries from queue offset `from` (after every offset added so far).
    fn add(&mut self, from: u64, n: u64, example: impl FnOnce() -> Option<String>) {
        if n == 0 {
            return;
        }
        if self.entries == 0 {
            self.example = example();
        }
        let contiguous = self.entries > 0 && self.last + 1 == from;
        self.entries += n;
        self.last = from + n - 1;
        if contiguous {
            if self.more_ranges == 0 {
                if let Some(r) = self.ranges.last_mut() {
                    r.1 = self.last;
                }
            }
        } else if self.ranges.len() < MAX_RANGES {
            self.ranges.push((from, self.last));
        } else {
            self.more_ranges += 1;
        }
    }
}

impl std::fmt::Display for QueueDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        write!(
            f,
            "{}/{} offset(s) {}",
            self.topic,
            self.queue_id,
            ranges.join(", ")
        )?;
        if self.more_ranges > 0 {
            write!(f, " and {} more range(s)", self.more_ranges)?;
        }
        write!(f, ": {} {}", self.entries, self.fault.what())?;
        if let Some(e) = &self.example {
            write!(f, " (first: {e})")?;
        }
        Ok(())
    }
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
    /// Consume-queue entries pointing into deleted segments (retention; not checked).
    pub expired: u64,
    /// Consume queues checked.
    pub queues: u64,
    /// Damage: anything recovery would cut or a reader would trip on, one line each (a
    /// consume queue's damaged entries one line per queue and fault); at most 100 listed.
    pub problems: Vec<String>,
    /// Problems found, listed or not.
    pub problem_count: u64,
    /// Every queue's damaged entries (each also a line of [`Report::problems`]).
    pub damage: Vec<QueueDamage>,
    /// What recovery will tidy after a crash and is not damage (a torn tail, queue entries
    /// past it); at most 100 listed.
    pub notes: Vec<String>,
}

/// Most problems and notes listed.
const MAX_LISTED: usize = 100;

impl Report {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        }
    }

    fn note(&mut self, n: String) {
        if self.notes.len() < MAX_LISTED {
            self.notes.push(n);
        }
    }

    /// Entries found damaged, in all queues.
    pub fn damaged_entries(&self) -> u64 {
        self.damage.iter().map(|d| d.entries).sum()
    }
}

/// Entries per block read from a consume-queue file (64 KiB).
const ENTRIES_PER_READ: usize = 3276;

/// Calls `f` with the index in the file and the entry, for each whole entry of the first `len`
/// bytes of `path`, read a block at a time.
fn for_each_entry(
    path: &Path,
    len: u64,
    mut f: impl FnMut(u64, QueueEntry),
) -> Result<(), LayoutError> {
    let mut file = File::open(path).map_err(crate::files::io(path))?.take(len);
    let mut buf = vec![0u8; ENTRIES_PER_READ * ENTRY_LEN];
    let mut index = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match file.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(crate::files::io(path)(e).into()),
            }
        }
        for chunk in buf[..n].chunks_exact(ENTRY_LEN) {
            f(
                index,
                QueueEntry::decode(chunk.try_into().expect("20 bytes")),
            );
            index += 1;
        }
        if n < buf.len() {
            return Ok(());
        }
    }
}

fn queue_dir(root: &Path, q: &layout::QueueFiles) -> std::path::PathBuf {
    root.join("consumequeue")
        .join(&q.topic)
        .join(q.queue_id.to_string())
}

/// One past the queue's last entry that is real or a placeholder (its max offset), found from
/// its last file back; `None` when it has none.
fn queue_end(root: &Path, q: &layout::QueueFiles) -> Result<Option<u64>, LayoutError> {
    let dir = queue_dir(root, q);
    for (base, len) in q.files.iter().rev() {
        let mut last = None;
        let path = dir.join(crate::files::segment_name(*base));
        for_each_entry(&path, *len, |i, e| {
            if e.is_valid() {
                last = Some(i);
            }
        })?;
        if let Some(i) = last {
            return Ok(Some(base / ENTRY_LEN as u64 + i + 1));
        }
    }
    Ok(None)
}

/// The fields of a record an entry is checked against.
struct Head<'a> {
    size: u64,
    queue_id: i32,
    queue_offset: i64,
    physical_offset: i64,
    topic: &'a str,
    properties: &'a str,
}

/// Bytes read at a record's start: the whole of most records, the fixed header of any.
const HEAD_WINDOW: u64 = 1024;

/// Reads the parts of records that entries are checked against (the fixed header, the topic
/// and the properties), one positioned read per record, two when it is larger than
/// [`HEAD_WINDOW`] (the topic and properties follow the body, which is not read: the segment
/// walk checked its CRC). One segment file is open at a time.
struct RecordHeads {
    dir: std::path::PathBuf,
    segments: Vec<(u64, u64)>,
    open: Option<(u64, File)>,
    window: Vec<u8>,
    tail: Vec<u8>,
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl RecordHeads {
    fn new(root: &Path, l: &Layout) -> Self {
        RecordHeads {
            dir: root.join("commitlog"),
            segments: l.segments.clone(),
            open: None,
            window: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// The record at commit-log offset `at`, or what is there instead.
    fn read(&mut self, at: u64) -> Result<Head<'_>, String> {
        use std::os::unix::fs::FileExt;
        let i = self.segments.partition_point(|(b, _)| *b <= at);
        let Some(&(base, len)) = i.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return Err("before the first segment".into());
        };
        let within = at - base;
        if within + 8 > len {
            return Err("past its segment's end".into());
        }
        if self.open.as_ref().map(|(b, _)| *b) != Some(base) {
            let path = self.dir.join(crate::files::segment_name(base));
            let f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            self.open = Some((base, f));
        }
        let Some((_, f)) = &self.open else {
            return Err("no segment open".into());
        };
        self.window
            .resize((len - within).min(HEAD_WINDOW) as usize, 0);
        f.read_exact_at(&mut self.window, within)
            .map_err(|e| format!("read failed: {e}"))?;
        let w = &self.window[..];
        let short = || "lengths that do not add up".to_string();
        let total = be_i32(w, 0).ok_or_else(short)?;
        let magic = be_i32(w, 4).ok_or_else(short)?;
        if magic == BLANK_MAGIC {
            return Err("its segment's end-of-file blank".into());
        }
        if magic != record::MAGIC_V1 && magic != record::MAGIC_V2 {
            return Err(format!("no record start (magic {:#010x})", magic as u32));
        }
        if total < 8 || total as u64 > layout::MAX_RECORD_LEN || within + total as u64 > len {
            return Err(format!(
                "a record size {total} that does not fit its segment"
            ));
        }
        let total = total as usize;
        let sys_flag = be_i32(w, 36).ok_or_else(short)?;
        let host = |bit| if sys_flag & bit != 0 { 20 } else { 8 };
        let (born, store) = (host(record::BORNHOST_V6), host(record::STOREHOST_V6));
        let body_at = 72 + born + store;
        let body_len = be_i32(w, body_at - 4).ok_or_else(short)?;
        let tail_at = usize::try_from(body_len)
            .ok()
            .map(|b| body_at + b)
            .filter(|t| *t <= total)
            .ok_or_else(short)?;
        let queue_id = be_i32(w, 12).ok_or_else(short)?;
        let queue_offset = be_i64(w, 20).ok_or_else(short)?;
        let physical_offset = be_i64(w, 28).ok_or_else(short)?;
        let tail: &[u8] = if total <= w.len() {
            &w[tail_at..total]
        } else {
            // Topic length, topic, properties length, properties: at most this much.
            if total - tail_at > 4 + 2 * i16::MAX as usize {
                return Err(short());
            }
            self.tail.resize(total - tail_at, 0);
            f.read_exact_at(&mut self.tail, within + tail_at as u64)
                .map_err(|e| format!("read failed: {e}"))?;
            &self.tail
        };
        let topic_len_bytes = if magic == record::MAGIC_V2 { 2 } else { 1 };
        let topic_len = if magic == record::MAGIC_V2 {
            tail.get(..2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]) as i64)
        } else {
            tail.first().map(|b| *b as i8 as i64)
        };
        let topic_len = topic_len
            .and_then(|t| usize::try_from(t).ok())
            .ok_or_else(short)?;
        let topic_end = topic_len_bytes + topic_len;
        let topic = tail.get(topic_len_bytes..topic_end).ok_or_else(short)?;
        let props_len = tail
            .get(topic_end..topic_end + 2)
            .and_then(|b| usize::try_from(i16::from_be_bytes([b[0], b[1]])).ok())
            .ok_or_else(short)?;
        let properties = tail
            .get(topic_end + 2..topic_end + 2 + props_len)
            .ok_or_else(short)?;
        let computed = record::record_len(
            born,
            store,
            tail_at - body_at,
            topic_len,
            topic_len_bytes,
            props_len,
        );
        if computed != total {
            return Err(format!(
                "a record of size {total} whose fields add up to {computed}"
            ));
        }
        Ok(Head {
            size: total as u64,
            queue_id,
            queue_offset,
            physical_offset,
            topic: std::str::from_utf8(topic).map_err(|_| "a topic that is not UTF-8")?,
            properties: std::str::from_utf8(properties)
                .map_err(|_| "properties that are not UTF-8")?,
        })
    }
}

/// What the walk of the commit log found, for checking entries against it.
struct Log {
    start: u64,
    end: u64,
    clean_stop: bool,
}

/// One consume queue's check: its entries in order, each one classified.
struct QueueCheck<'a> {
    q: &'a layout::QueueFiles,
    log: &'a Log,
    heads: &'a mut RecordHeads,
    /// One past the last real or placeholder entry.
    end: u64,
    seen_real: bool,
    seen_live: bool,
    entries: u64,
    expired: u64,
    /// Damage, by fault, in the order found.
    damage: Vec<QueueDamage>,
    /// What recovery tidies after a crash (entries past the log's end, garbage after the last
    /// entry).
    tidy: Vec<QueueDamage>,
}

impl QueueCheck<'_> {
    fn fault(
        &mut self,
        fault: EntryFault,
        from: u64,
        n: u64,
        example: impl FnOnce() -> Option<String>,
    ) {
        let tidy = !self.log.clean_stop
            && matches!(fault, EntryFault::PastLogEnd | EntryFault::TrailingInvalid);
        let list = if tidy {
            &mut self.tidy
        } else {
            &mut self.damage
        };
        let i = match list.iter().position(|d| d.fault == fault) {
            Some(i) => i,
            None => {
                list.push(QueueDamage::new(&self.q.topic, self.q.queue_id, fault));
                list.len() - 1
            }
        };
        list[i].add(from, n, example);
    }

    /// Entries `from..to` are missing (a short file): a hole if before the queue's end.
    fn missing(&mut self, from: u64, to: u64) {
        let to = to.min(self.end);
        if from < to {
            self.fault(EntryFault::Hole, from, to - from, || {
                Some(format!("{} entries missing from a short file", to - from))
            });
        }
    }

    fn entry(&mut self, offset: u64, e: QueueEntry) {
        let zero = e.physical_offset == 0 && e.size == 0 && e.tags_code == 0;
        if offset >= self.end {
            if !zero {
                self.fault(EntryFault::TrailingInvalid, offset, 1, || {
                    Some(format!("{e:?}"))
                });
            }
            return;
        }
        if zero {
            return self.fault(EntryFault::Hole, offset, 1, || None);
        }
        if !e.is_valid() {
            return self.fault(EntryFault::Invalid, offset, 1, || Some(format!("{e:?}")));
        }
        if e.size == QueueEntry::PRE_BLANK.size {
            if self.seen_real {
                self.fault(EntryFault::Placeholder, offset, 1, || None);
            }
            return;
        }
        self.seen_real = true;
        let at = e.physical_offset as u64;
        if at < self.log.start {
            if self.seen_live {
                self.fault(EntryFault::Deleted, offset, 1, || {
                    Some(format!(
                        "offset {offset} points at {at}, the log starts at {}",
                        self.log.start
                    ))
                });
            } else {
                self.expired += 1;
            }
            return;
        }
        self.seen_live = true;
        self.entries += 1;
        let size = e.size as u64;
        if at + size > self.log.end {
            let end = self.log.end;
            return self.fault(EntryFault::PastLogEnd, offset, 1, || {
                Some(format!(
                    "offset {offset} points at {at} ({size} bytes), the log ends at {end}"
                ))
            });
        }
        let topic = &self.q.topic;
        let (fault, example) = match self.heads.read(at) {
            Err(why) => (
                Some(EntryFault::NotARecord),
                format!("offset {offset} points at {at}: {why}"),
            ),
            Ok(h) => {
                let fault = if h.physical_offset as u64 != at {
                    Some(EntryFault::NotARecord)
                } else if h.topic != topic || h.queue_id != self.q.queue_id {
                    Some(EntryFault::OtherQueue)
                } else if h.queue_offset != offset as i64 {
                    Some(EntryFault::WrongOffset)
                } else if h.size != size {
                    Some(EntryFault::WrongSize)
                } else if topic != SCHEDULE_TOPIC
                    && e.tags_code != tags_code(record::property(h.properties, "TAGS"))
                {
                    Some(EntryFault::WrongTags)
                } else {
                    None
                };
                (
                    fault,
                    format!(
                        "offset {offset} (size {size}, tags code {}) points at {at}: a record \
                         of {}/{} offset {} ({} bytes, physical offset {})",
                        e.tags_code, h.topic, h.queue_id, h.queue_offset, h.size, h.physical_offset
                    ),
                )
            }
        };
        if let Some(fault) = fault {
            self.fault(fault, offset, 1, || Some(example));
        }
    }
}

/// Checks every record and every consume-queue entry of `root` (read-only).
///
/// Records: sizes, magic, body CRC and the physical offset each carries, segment by segment.
/// Each consume queue, file by file: entries dense from its first real entry to its last (no
/// placeholder, zero or invalid entry between, no stretch missing), and each real entry
/// pointing at the start of a whole record of this topic and queue at this queue offset, with
/// its size and tags hash code. Entries pointing into deleted segments (retention) are fine.
/// Memory stays bounded: queue files are read in blocks, records one header at a time.
pub fn verify(root: &Path) -> Result<Report, LayoutError> {
    let layout = layout::survey(root)?;
    let dir = root.join("commitlog");
    let mut report = Report::default();
    let n = layout.segments.len();
    let log_start = layout.segments.first().map(|(b, _)| *b).unwrap_or(0);
    let mut log_end = log_start;
    for (i, (base, len)) in layout.segments.iter().enumerate() {
        let (end, why, records) = segment_end(&dir, *base, *len)?;
        report.records += records;
        log_end = end;
        if let Some(why) = why {
            let last = i + 1 == n;
            if last && !layout.clean_stop {
                report.note(format!(
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
    let log = Log {
        start: log_start,
        end: log_end,
        clean_stop: layout.clean_stop,
    };
    let mut heads = RecordHeads::new(root, &layout);
    for q in &layout.queues {
        report.queues += 1;
        let first = q.files.first().map_or(0, |(b, _)| b / ENTRY_LEN as u64);
        let mut check = QueueCheck {
            q,
            log: &log,
            heads: &mut heads,
            end: queue_end(root, q)?.unwrap_or(first),
            seen_real: false,
            seen_live: false,
            entries: 0,
            expired: 0,
            damage: Vec::new(),
            tidy: Vec::new(),
        };
        let dir = queue_dir(root, q);
        let mut next = first;
        for (base, len) in &q.files {
            let start = base / ENTRY_LEN as u64;
            check.missing(next, start);
            let path = dir.join(crate::files::segment_name(*base));
            for_each_entry(&path, *len, |i, e| check.entry(start + i, e))?;
            next = start + len / ENTRY_LEN as u64;
        }
        report.entries += check.entries;
        report.expired += check.expired;
        let (damage, tidy) = (check.damage, check.tidy);
        for d in tidy {
            report.note(format!("{d}: recovery drops them"));
        }
        for d in damage {
            report.problem(d.to_string());
            report.damage.push(d);
        }
    }
    Ok(report)
}
