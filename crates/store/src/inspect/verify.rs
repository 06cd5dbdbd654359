//! `rmq store verify`: every record of the commit log and every consume-queue entry checked
//! (read-only), damage reported per queue and fault.

use super::damage::{EntryFault, QueueDamage};
use super::heads::RecordHeads;
use super::segment_end;
use crate::layout::{self, LayoutError};
use crate::queue_entry::{tags_code, QueueEntry, ENTRY_LEN};
use crate::record;
use crate::store::SCHEDULE_TOPIC;
use std::fs::File;
use std::io::Read;
use std::path::Path;

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
        self.check_live(offset, e);
    }

    /// A real entry at queue offset `offset` pointing into the live log: checked against the
    /// record it points at.
    fn check_live(&mut self, offset: u64, e: QueueEntry) {
        let at = e.physical_offset as u64;
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
