//! A consume queue (spec §1.5): the index of one queue of one topic into the commit log, as
//! fixed 20-byte entries in files of `file_size` bytes named by the 20-digit logical byte offset
//! they start at (`consumequeue/<topic>/<queueId>/00000000000000000000`...). Entry `n` (queue
//! offset `n`) lives at logical byte `n * 20`.
//!
//! Built from the commit log by dispatch, so it can always be rebuilt from it: appending an
//! entry that is already there is a no-op (re-dispatch after a crash is idempotent), and
//! [`ConsumeQueue::truncate_from_physical`] drops entries that point past a truncated log.
//! Blocking file I/O, like the commit log.

use crate::files::{io, parse_segment_name, segment_name, FileError};
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
    /// Entries written but not yet in their file, contiguous, all in one file: they reach it in
    /// one write per batch (at a flush, when the batch is full or leaves the file, before any
    /// file operation) instead of one 20-byte write each. Reads see them here. The queue is
    /// rebuilt from the commit log at open, so what a crash loses here is dispatched again.
    pending: Vec<u8>,
    /// Queue offset of the first pending entry.
    pending_from: u64,
}

/// Bytes of entries held before they are written (3,276 entries).
const PENDING_MAX: usize = 64 * 1024;

impl ConsumeQueue {
    /// Opens (or creates) the queue in `dir`, keeping its valid entries: the first entry that is
    /// not `offset >= 0 && size > 0` (a zero entry, a torn one) ends it.
    pub fn open(dir: &Path, file_size: u64) -> Result<ConsumeQueue, QueueError> {
        if file_size == 0 || !file_size.is_multiple_of(ENTRY_LEN as u64) {
            return Err(FileError::Layout {
                path: dir.to_owned(),
                reason: format!("file size {file_size} is not a positive multiple of {ENTRY_LEN}"),
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut q = ConsumeQueue {
            dir: dir.to_owned(),
            file_size,
            files: Vec::new(),
            max_offset: 0,
            min_logic_offset: 0,
            dirty_from: None,
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
        for (base, path) in found {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.set_len(self.file_size).map_err(io(&path))?;
            self.files.push(QueueFile { base, path, file });
        }
        Ok(())
    }

    /// Finds the end: the first invalid entry after the valid ones.
    fn recover(&mut self) -> Result<(), QueueError> {
        let mut end = self.files.first().map_or(0, |f| f.base);
        'files: for f in &self.files {
            let mut buf = vec![0u8; self.file_size as usize];
            f.file.read_exact_at(&mut buf, 0).map_err(io(&f.path))?;
            for (i, chunk) in buf.chunks_exact(ENTRY_LEN).enumerate() {
                let e = QueueEntry::decode(chunk.try_into().expect("20 bytes"));
                if !e.is_valid() {
                    end = f.base + (i * ENTRY_LEN) as u64;
                    break 'files;
                }
            }
            end = f.base + self.file_size;
        }
        self.set_end(end / ENTRY_LEN as u64)
    }

    /// Cuts the queue at queue offset `offset`: later files are deleted, the rest of the file
    /// holding it zeroed.
    fn set_end(&mut self, offset: u64) -> Result<(), QueueError> {
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
        }
        if let Some(f) = self.files.last() {
            if end < f.base + self.file_size && end >= f.base {
                let from = end - f.base;
                let zeros = vec![0u8; (self.file_size - from) as usize];
                f.file.write_all_at(&zeros, from).map_err(io(&f.path))?;
            }
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
                    deleted += 1;
                }
                _ => break,
            }
        }
        let mut min = self.min_offset();
        while min < self.max_offset {
            match self.get(min)? {
                Some(e) if (e.physical_offset as u64) < log_start => min += 1,
                _ => break,
            }
        }
        self.min_logic_offset = min;
        Ok(deleted)
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

    /// The files written since the last flush, marked clean (see `CommitLog::take_dirty`).
    pub fn take_dirty(&mut self) -> Result<Vec<PathBuf>, QueueError> {
        self.write_pending()?;
        Ok(match self.dirty_from.take() {
            Some(from) => self.files[from..].iter().map(|f| f.path.clone()).collect(),
            None => Vec::new(),
        })
    }

    /// Makes every entry written so far durable.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        self.write_pending()?;
        if let Some(from) = self.dirty_from.take() {
            for f in &self.files[from..] {
                f.file.sync_data().map_err(io(&f.path))?;
            }
        }
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
        self.files.push(QueueFile { base, path, file });
        self.files.sort_by_key(|f| f.base);
        Ok(self
            .files
            .iter()
            .position(|f| f.base == base)
            .expect("just added"))
    }
}
