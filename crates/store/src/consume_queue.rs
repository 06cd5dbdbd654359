//! A consume queue (spec §1.5): the index of one queue of one topic into the commit log, as
//! fixed 20-byte entries in files of `file_size` bytes named by the 20-digit logical byte offset
//! they start at (`consumequeue/<topic>/<queueId>/00000000000000000000`...). Entry `n` (queue
//! offset `n`) lives at logical byte `n * 20`.
//!
//! Built from the commit log by dispatch, so it can always be rebuilt from it: appending an
//! entry that is already there is a no-op (re-dispatch after a crash is idempotent), and
//! [`ConsumeQueue::truncate_from_physical`] drops entries that point past a truncated log.
//! Blocking file I/O, like the commit log.

use crate::durable;
use crate::files::{self, io, parse_segment_name, segment_name, FileError};
use crate::queue_entry::{QueueEntry, ENTRY_LEN};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Java's default file size: 300,000 entries.
pub const DEFAULT_FILE_SIZE: u64 = 300_000 * ENTRY_LEN as u64;

/// Why a consume queue failed: one of its files.
pub type QueueError = FileError;

struct QueueFile {
    base: u64,
    path: PathBuf,
    file: File,
}

/// One topic queue's index into the commit log.
pub struct ConsumeQueue {
    dir: PathBuf,
    file_size: u64,
    files: Vec<QueueFile>,
    /// The next queue offset to be written (entries, pre-blanks included).
    max_offset: u64,
    /// Entries before this point point at deleted commit-log data.
    min_logic_offset: u64,
    dirty_from: Option<usize>,
    /// Names created or removed in the queue's directories since the last flush: a flush
    /// syncs those directories, so a new file survives a power loss with its entries.
    names_changed: NamesChanged,
    /// Entries written but not yet in their file, contiguous, all in one file: they reach it in
    /// one write per batch (at a flush, when the batch is full or leaves the file, before any
    /// file operation) instead of one 20-byte write each. Reads see them here. The queue is
    /// rebuilt from the commit log at open, so what a crash loses here is dispatched again.
    pending: Vec<u8>,
    /// Queue offset of the first pending entry.
    pending_from: u64,
}

/// What [`ConsumeQueue::restore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The entry was there already.
    Held,
    /// Another entry was there: the queue was cut at the offset and the entry written.
    Rewritten,
    /// Written at the end.
    Appended,
    /// Written past the end: this many offsets before it were padded with pre-blanks.
    Gap(u64),
    /// Below the queue's min offset (retention moved past it): nothing to do.
    BelowMin,
}

/// Which directories a flush must sync for the names in them to be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NamesChanged {
    No,
    /// Files were created or removed in the queue's directory.
    Files,
    /// The queue's directory itself was created (maybe its topic's too).
    Created,
}

/// Bytes of entries held before they are written (3,276 entries).
const PENDING_MAX: usize = 64 * 1024;

impl ConsumeQueue {
    /// Opens (or creates) the queue in `dir`. Its end is found in its last files only (a
    /// binary search for where entries give way to zeros), not by reading every file: the
    /// store's recovery then checks the entries a crash could have left unsynced against the
    /// commit log ([`crate::store`]'s dispatch mark), so startup does not grow with the
    /// queues' size.
    pub fn open(dir: &Path, file_size: u64) -> Result<ConsumeQueue, QueueError> {
        if file_size == 0 || !file_size.is_multiple_of(ENTRY_LEN as u64) {
            return Err(FileError::Layout {
                path: dir.to_owned(),
                reason: format!("file size {file_size} is not a positive multiple of {ENTRY_LEN}"),
            });
        }
        let created = !dir.is_dir();
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut q = ConsumeQueue {
            dir: dir.to_owned(),
            file_size,
            files: Vec::new(),
            max_offset: 0,
            min_logic_offset: 0,
            dirty_from: None,
            names_changed: if created {
                NamesChanged::Created
            } else {
                NamesChanged::No
            },
            pending: Vec::new(),
            pending_from: 0,
        };
        q.load()?;
        q.recover()?;
        Ok(q)
    }

    fn load(&mut self) -> Result<(), QueueError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let path = entry.path();
            let Some(base) = parse_segment_name(&path) else {
                continue;
            };
            if base % self.file_size != 0 {
                return Err(FileError::Layout {
                    path,
                    reason: format!(
                        "start {base} is not a multiple of the file size {}",
                        self.file_size
                    ),
                });
            }
            found.push((base, path));
        }
        found.sort();
        for (i, (base, path)) in found.iter().enumerate() {
            // Files follow each other; after a missing one nothing can be trusted (the
            // store's recovery rebuilds what the commit log still holds).
            if i > 0 && *base != found[i - 1].0 + self.file_size {
                tracing::error!(
                    dir = %self.dir.display(),
                    missing = found[i - 1].0 + self.file_size,
                    "a consume-queue file is missing: the files after it are dropped"
                );
                for (_, later) in &found[i..] {
                    std::fs::remove_file(later).map_err(io(later))?;
                }
                self.names_changed = self.names_changed.max(NamesChanged::Files);
                break;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io(path))?;
            file.set_len(self.file_size).map_err(io(path))?;
            self.files.push(QueueFile {
                base: *base,
                path: path.clone(),
                file,
            });
        }
        Ok(())
    }

    /// Finds the end: in the last file whose first entry is valid, the boundary between
    /// valid entries and invalid ones (zeros), by binary search (Java walks its last three
    /// files). The files before it count as full.
    fn recover(&mut self) -> Result<(), QueueError> {
        let per_file = self.file_size / ENTRY_LEN as u64;
        let mut end = self.files.first().map_or(0, |f| f.base);
        for f in self.files.iter().rev() {
            if !Self::entry_in(f, 0)?.is_valid() {
                continue;
            }
            // Invariant: entry `lo` is valid, entry `hi` is not (or past the file).
            let (mut lo, mut hi) = (0u64, per_file);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if Self::entry_in(f, mid)?.is_valid() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            end = f.base + hi * ENTRY_LEN as u64;
            break;
        }
        self.set_end(end / ENTRY_LEN as u64)
    }

    /// Entry number `n` of file `f`, read from the file.
    fn entry_in(f: &QueueFile, n: u64) -> Result<QueueEntry, QueueError> {
        let mut b = [0u8; ENTRY_LEN];
        f.file
            .read_exact_at(&mut b, n * ENTRY_LEN as u64)
            .map_err(io(&f.path))?;
        Ok(QueueEntry::decode(&b))
    }

    /// Cuts the queue at queue offset `offset`: pending entries from there are dropped, later
    /// files deleted, the rest of the file holding it zeroed (a hole punched: a later
    /// recovery must not find stale entries past the end), and that file marked for the
    /// next flush.
    pub fn set_end(&mut self, offset: u64) -> Result<(), QueueError> {
        let held = (self.pending.len() / ENTRY_LEN) as u64;
        if offset <= self.pending_from {
            self.pending.clear();
        } else if offset < self.pending_from + held {
            self.pending
                .truncate(((offset - self.pending_from) as usize) * ENTRY_LEN);
        }
        // What stays pending goes to its file before any file operation.
        self.write_pending()?;
        let end = offset * ENTRY_LEN as u64;
        while self
            .files
            .last()
            .is_some_and(|f| f.base > end || (f.base == end && f.base != 0))
        {
            let f = self.files.pop().expect("checked");
            drop(f.file);
            std::fs::remove_file(&f.path).map_err(io(&f.path))?;
            self.names_changed = self.names_changed.max(NamesChanged::Files);
        }
        let last = self.files.len().checked_sub(1);
        self.dirty_from = self.dirty_from.map(|d| d.min(last.unwrap_or(0)));
        if let (Some(idx), Some(f)) = (last, self.files.last()) {
            if end < f.base + self.file_size && end >= f.base {
                let from = end - f.base;
                files::zero_range(&f.file, from, self.file_size - from).map_err(io(&f.path))?;
                self.dirty_from = Some(self.dirty_from.map_or(idx, |d| d.min(idx)));
            }
        }
        if self.files.is_empty() {
            self.dirty_from = None;
        }
        self.max_offset = offset;
        Ok(())
    }

    /// The next queue offset to be written.
    pub fn max_offset(&self) -> u64 {
        self.max_offset
    }

    /// Where the record of the last entry ends in the commit log (how far dispatch got).
    pub fn last_end(&self) -> Result<Option<u64>, QueueError> {
        let Some(last) = self.max_offset.checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .get(last)?
            .filter(|e| e.size != QueueEntry::PRE_BLANK.size)
            .map(|e| e.physical_offset as u64 + e.size as u64))
    }

    /// The first queue offset still held: the first file's start, or past the entries whose
    /// commit-log data was deleted (see [`ConsumeQueue::drop_before_physical`]).
    pub fn min_offset(&self) -> u64 {
        let first = self
            .files
            .first()
            .map_or(self.max_offset, |f| f.base / ENTRY_LEN as u64);
        first.max(self.min_logic_offset).min(self.max_offset)
    }

    /// Forgets entries whose records lie before `log_start` (the commit log's oldest segments
    /// were deleted): whole files whose last entry is older go, and the minimum offset moves
    /// past the rest (Java's CleanConsumeQueueService and CorrectLogicOffsetService).
    pub fn drop_before_physical(&mut self, log_start: u64) -> Result<usize, QueueError> {
        self.write_pending()?;
        let entries_per_file = self.file_size / ENTRY_LEN as u64;
        let mut deleted = 0;
        while self.files.len() > 1 {
            let last_of_first = self.files[0].base / ENTRY_LEN as u64 + entries_per_file - 1;
            match self.get(last_of_first)? {
                Some(e) if (e.physical_offset as u64) < log_start => {
                    let f = self.files.remove(0);
                    drop(f.file);
                    std::fs::remove_file(&f.path).map_err(io(&f.path))?;
                    self.dirty_from = self.dirty_from.map(|d| d.saturating_sub(1));
                    self.names_changed = self.names_changed.max(NamesChanged::Files);
                    deleted += 1;
                }
                _ => break,
            }
        }
        self.min_logic_offset = self.first_at_or_after(log_start)?;
        Ok(deleted)
    }

    /// The first queue offset from the minimum on whose entry does not point before
    /// `log_start` (an entry past the end, or a hole, counts as not pointing before it).
    ///
    /// A binary search over the entries (a 20-byte read per probe, ~20 for a whole file of
    /// 300,000, where walking read every one): real entries point forward in the log along a
    /// queue, so "points before `log_start`" holds for a prefix of them. Pre-blank entries
    /// (physical offset 0) break that order where a gap was padded; a probe that lands on one
    /// hands over to the walk from what is decided so far, so the answer is always the walk's.
    fn first_at_or_after(&self, log_start: u64) -> Result<u64, QueueError> {
        let before = |e: &QueueEntry| (e.physical_offset as u64) < log_start;
        let (mut lo, mut hi) = (self.min_offset(), self.max_offset);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid)? {
                Some(e) if e == QueueEntry::PRE_BLANK => break,
                Some(e) if before(&e) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        // Walk what is left (nothing, unless a probe met a pre-blank).
        while lo < hi {
            match self.get(lo)? {
                Some(e) if before(&e) => lo += 1,
                _ => break,
            }
        }
        Ok(lo)
    }

    /// Writes `entry` at queue offset `offset`. An offset already written is left as it is (a
    /// re-dispatch); a gap before it is filled with pre-blank entries, as Java does for a queue
    /// that starts past zero.
    pub fn put(&mut self, offset: u64, entry: QueueEntry) -> Result<(), QueueError> {
        if offset < self.max_offset {
            return Ok(());
        }
        while self.max_offset < offset {
            self.write(self.max_offset, QueueEntry::PRE_BLANK)?;
        }
        self.write(offset, entry)
    }

    /// Recovery's write, from a record of the commit log: makes the entry at `offset` be
    /// `entry`. An equal entry there is kept; a different one (torn, or stale from before a
    /// cut) cuts the queue there first; past the end, the gap is padded with pre-blanks and
    /// reported, since recovery rebuilds from a point that leaves none.
    pub fn restore(&mut self, offset: u64, entry: QueueEntry) -> Result<Restored, QueueError> {
        if offset < self.min_offset() {
            return Ok(Restored::BelowMin);
        }
        if offset < self.max_offset {
            if self.get(offset)? == Some(entry) {
                return Ok(Restored::Held);
            }
            self.set_end(offset)?;
            self.write(offset, entry)?;
            return Ok(Restored::Rewritten);
        }
        let gap = offset - self.max_offset;
        self.put(offset, entry)?;
        Ok(if gap == 0 {
            Restored::Appended
        } else {
            Restored::Gap(gap)
        })
    }

    fn write(&mut self, offset: u64, entry: QueueEntry) -> Result<(), QueueError> {
        let at = offset * ENTRY_LEN as u64;
        // The file is created now, so a queue that cannot grow fails this put, not a flush.
        let idx = self.file_for(at)?;
        if !self.pending.is_empty() {
            let pending_at = self.pending_from * ENTRY_LEN as u64;
            let same_file = pending_at - pending_at % self.file_size == at - at % self.file_size;
            let next = self.pending_from + (self.pending.len() / ENTRY_LEN) as u64;
            if !same_file || next != offset || self.pending.len() >= PENDING_MAX {
                self.write_pending()?;
            }
        }
        if self.pending.is_empty() {
            self.pending_from = offset;
        }
        self.pending.extend_from_slice(&entry.encode());
        self.dirty_from = Some(self.dirty_from.map_or(idx, |d| d.min(idx)));
        self.max_offset = offset + 1;
        Ok(())
    }

    /// Writes the pending entries into their file (kept pending if the write fails).
    fn write_pending(&mut self) -> Result<(), QueueError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.pending_from * ENTRY_LEN as u64;
        let base = at - at % self.file_size;
        let Some(f) = self.files.iter().find(|f| f.base == base) else {
            // Its file was deleted (retention, a cut): nothing left to write.
            self.pending.clear();
            return Ok(());
        };
        f.file
            .write_all_at(&self.pending, at - f.base)
            .map_err(io(&f.path))?;
        self.pending.clear();
        Ok(())
    }

    /// The entry at queue offset `offset`, if it is in the queue.
    pub fn get(&self, offset: u64) -> Result<Option<QueueEntry>, QueueError> {
        if offset < self.min_offset() || offset >= self.max_offset {
            return Ok(None);
        }
        let held = (self.pending.len() / ENTRY_LEN) as u64;
        if offset >= self.pending_from && offset < self.pending_from + held {
            let i = ((offset - self.pending_from) as usize) * ENTRY_LEN;
            let b: &[u8; ENTRY_LEN] = self.pending[i..i + ENTRY_LEN].try_into().expect("20 bytes");
            return Ok(Some(QueueEntry::decode(b)));
        }
        let at = offset * ENTRY_LEN as u64;
        let Some(f) = self
            .files
            .iter()
            .find(|f| f.base <= at && at < f.base + self.file_size)
        else {
            return Ok(None);
        };
        let mut b = [0u8; ENTRY_LEN];
        f.file
            .read_exact_at(&mut b, at - f.base)
            .map_err(io(&f.path))?;
        Ok(Some(QueueEntry::decode(&b)))
    }

    /// Entries from queue offset `from` on, at most `n` (fewer at the queue's end): one read
    /// per file touched, pending entries from memory. What a pull walks.
    pub fn entries(&self, from: u64, n: usize) -> Result<Vec<QueueEntry>, QueueError> {
        let mut out = Vec::new();
        if from < self.min_offset() {
            return Ok(out);
        }
        let held = (self.pending.len() / ENTRY_LEN) as u64;
        let per_file = self.file_size / ENTRY_LEN as u64;
        let mut at = from;
        while out.len() < n && at < self.max_offset {
            if held > 0 && at >= self.pending_from && at < self.pending_from + held {
                let i = ((at - self.pending_from) as usize) * ENTRY_LEN;
                let b: &[u8; ENTRY_LEN] =
                    self.pending[i..i + ENTRY_LEN].try_into().expect("20 bytes");
                out.push(QueueEntry::decode(b));
                at += 1;
                continue;
            }
            let pos = at * ENTRY_LEN as u64;
            let Some(f) = self
                .files
                .iter()
                .find(|f| f.base <= pos && pos < f.base + self.file_size)
            else {
                break;
            };
            let file_end = f.base / ENTRY_LEN as u64 + per_file;
            let mut stop = file_end
                .min(self.max_offset)
                .min(at + (n - out.len()) as u64);
            if held > 0 && self.pending_from > at {
                stop = stop.min(self.pending_from);
            }
            let mut buf = vec![0u8; ((stop - at) as usize) * ENTRY_LEN];
            f.file
                .read_exact_at(&mut buf, pos - f.base)
                .map_err(io(&f.path))?;
            out.extend(
                buf.chunks_exact(ENTRY_LEN)
                    .map(|c| QueueEntry::decode(c.try_into().expect("20 bytes"))),
            );
            at = stop;
        }
        Ok(out)
    }

    /// Drops every entry that points at or past `physical_offset` (the commit log was cut there).
    pub fn truncate_from_physical(&mut self, physical_offset: u64) -> Result<(), QueueError> {
        let mut keep = self.max_offset;
        while keep > self.min_offset() {
            match self.get(keep - 1)? {
                Some(e)
                    if e.size != QueueEntry::PRE_BLANK.size
                        && e.physical_offset as u64 >= physical_offset =>
                {
                    keep -= 1
                }
                _ => break,
            }
        }
        if keep < self.max_offset {
            self.set_end(keep)?;
        }
        Ok(())
    }

    /// What a flush must sync for every entry written so far to be durable, marked clean:
    /// the files written since the last flush (see `CommitLog::take_unsynced`) into `files`, and
    /// the directories whose names changed (a new file, a new queue) into `dirs`.
    pub fn take_unsynced(
        &mut self,
        files: &mut Vec<PathBuf>,
        dirs: &mut Vec<PathBuf>,
    ) -> Result<(), QueueError> {
        self.write_pending()?;
        if let Some(from) = self.dirty_from.take() {
            files.extend(self.files[from..].iter().map(|f| f.path.clone()));
        }
        dirs.extend(self.changed_dirs());
        self.names_changed = NamesChanged::No;
        Ok(())
    }

    /// The directories to sync for the names created or removed since the last flush: the
    /// queue's own, and for a new queue the three above it too (its topic's, `consumequeue`,
    /// the store's root), any of which it may have created.
    fn changed_dirs(&self) -> Vec<PathBuf> {
        let levels = match self.names_changed {
            NamesChanged::No => 0,
            NamesChanged::Files => 1,
            NamesChanged::Created => 4,
        };
        self.dir
            .ancestors()
            .take(levels)
            .map(Path::to_owned)
            .collect()
    }

    /// Makes every entry written so far durable (and the names of new files).
    pub fn sync(&mut self) -> Result<(), QueueError> {
        self.write_pending()?;
        if let Some(from) = self.dirty_from {
            for f in &self.files[from..] {
                durable::sync_file(&f.file, &f.path).map_err(io(&f.path))?;
            }
            self.dirty_from = None;
        }
        for dir in self.changed_dirs() {
            durable::sync_dir(&dir).map_err(io(&dir))?;
        }
        self.names_changed = NamesChanged::No;
        Ok(())
    }

    /// The file holding logical byte `at`, created when needed.
    fn file_for(&mut self, at: u64) -> Result<usize, QueueError> {
        let base = at - at % self.file_size;
        if let Some(i) = self.files.iter().position(|f| f.base == base) {
            return Ok(i);
        }
        let path = self.dir.join(segment_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        file.set_len(self.file_size).map_err(io(&path))?;
        self.names_changed = self.names_changed.max(NamesChanged::Files);
        self.files.push(QueueFile { base, path, file });
        self.files.sort_by_key(|f| f.base);
        Ok(self
            .files
            .iter()
            .position(|f| f.base == base)
            .expect("just added"))
    }
}
