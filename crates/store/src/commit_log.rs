//! The commit log: fixed-size segment files named by their 20-digit start offset (spec §1.3,
//! §1.4), records appended one after another, a BLANK record where the next one does not fit.
//!
//! Blocking file I/O (positioned writes and reads through `std::os::unix::fs::FileExt`): callers
//! on an async runtime run it on a dedicated thread or `spawn_blocking`. Recovery on open walks
//! the segments record by record and keeps exactly the valid prefix: the first record that
//! is cut, mis-sized, of an unknown magic or fails its CRC ends the log, and everything after it
//! (the tail of that segment, later segments) is discarded, so a torn write is never served.

mod ahead;
mod recovery;

use crate::durable;
pub use crate::files::segment_name;
use crate::files::{self, FileError};
use crate::record::{self, Found, Record, RecordError, BLANK_LEN};
use bytes::Bytes;
use recovery::CHECKPOINT_MARGIN_MS;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Why the commit log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A segment file failed or cannot be used.
    #[error(transparent)]
    File(#[from] FileError),
    /// The record cannot be stored (too large for a segment, bad field).
    #[error(transparent)]
    Record(#[from] RecordError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |e| LogError::File(files::io(path)(e))
}

/// One segment file.
struct Segment {
    base: u64,
    path: PathBuf,
    file: File,
    /// The whole segment mapped read-only, as `Bytes`, made at its first read (`None`: it
    /// could not be mapped; reads use `pread`). Reads hand out slices of it: no copy, no
    /// system call; the map lives as long as the last slice, even past the segment's deletion.
    read_map: std::sync::OnceLock<Option<Bytes>>,
    /// Bytes from the start known to have disk blocks reserved (`fallocate`, see
    /// [`files::reserve_blocks`]); `None` once the filesystem said it cannot.
    reserved: Option<u64>,
}

/// A read-only map of a segment, owned by the `Bytes` slices handed out.
struct SegmentMap(memmap2::Mmap);

impl AsRef<[u8]> for SegmentMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Segment {
    /// The segment's bytes through a read-only map, made on first use.
    fn mapped(&self, segment_size: u64) -> Option<&Bytes> {
        self.read_map
            .get_or_init(|| {
                // SAFETY: sound while no one truncates the file or changes bytes a slice
                // covers. The segment belongs to this log, opened only by `MessageStore` under
                // the store's exclusive lock (flock and Java's fcntl lock): no other process
                // writes it; its length is set once, at creation; recovery's cut happens at
                // open, before any read; and slices are handed out only for whole records
                // below the log's end, which are never written again (appends go past it).
                // Retention unlinks a file, which leaves existing maps valid.
                let map = unsafe { memmap2::Mmap::map(&self.file) }.ok()?;
                (map.len() as u64 == segment_size).then(|| Bytes::from_owner(SegmentMap(map)))
            })
            .as_ref()
    }
}

/// What recovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Records found valid in the walked segments.
    pub records: u64,
    /// The end of the log (the next record's offset).
    pub end: u64,
    /// Bytes discarded after the last valid record (a torn or damaged tail), if any.
    pub discarded_from: Option<u64>,
    /// Where the walk started (the first walked segment's start): records before it were
    /// taken as they are (Java re-dispatches from here after a crash).
    pub walked_from: u64,
}

/// Where an appended record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its physical offset.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u32,
}

/// How the last run of the log's owner ended, which decides where recovery starts walking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastStop {
    /// Everything flushed, nothing torn: only the last segment is walked.
    Clean,
    /// A crash. With the checkpoint's store time (the time of the last record known flushed;
    /// Java's `StoreCheckpoint.getMinTimestamp`), the walk starts at the newest segment whose
    /// first record was stored at or before it minus 3 s (Java's margin): those before it
    /// were flushed whole. Without one, every segment is walked.
    Crash {
        /// Store time (ms) up to which records were flushed.
        checkpoint: Option<i64>,
    },
}

/// An append-only log of records over segment files.
pub struct CommitLog {
    dir: PathBuf,
    segment_size: u64,
    segments: Vec<Segment>,
    /// The next record's offset (global).
    end: u64,
    /// Segments written since the last flush (their indexes into `segments`).
    dirty_from: Option<usize>,
    /// Appended records carry Java's whole-record CRC property (`enabledAppendPropCRC`).
    whole_record_crc: bool,
    /// Recovery requires the property of records from this offset on (and verifies it on any
    /// record that carries it).
    crc_required_from: Option<u64>,
    /// The segment being appended to, mapped for writes (see [`CommitLog::write_at`]).
    active: Option<ActiveMap>,
    /// Appends use positioned writes: chosen ([`CommitLog::set_mapped_writes`]), mapping
    /// failed, or the filesystem cannot reserve blocks.
    no_map: bool,
    /// The encoding buffer of appends, reused.
    scratch: Vec<u8>,
    /// Positioned writes only: appended records not yet written to their segment, from
    /// `pending_at` (all in the active segment, into blocks already reserved). They are
    /// written with one `pwrite` by the next flush (a group commit's records go in one
    /// system call, not one each), before any other write, or when they reach
    /// [`PENDING_MAX`]; reads of them are served from here.
    pending: Vec<u8>,
    /// The log offset of `pending[0]`.
    pending_at: u64,
    /// Warms the page cache ahead of the appends (see [`ahead`]); `None`: not asked for
    /// ([`CommitLog::set_warm_ahead`]).
    ahead: Option<ahead::Ahead>,
}

/// Bytes of pending appends written out without waiting for a flush.
const PENDING_MAX: usize = 1 << 20;

/// The segment being appended to, memory-mapped (when chosen, see
/// [`CommitLog::set_mapped_writes`]): an append is a copy into the page cache with no system
/// call. Reads keep using positioned reads, which see the same pages; fsync of the file (by
/// any descriptor) writes the mapped pages back, so flushes and the flusher thread are
/// unchanged.
struct ActiveMap {
    base: u64,
    map: memmap2::MmapMut,
}

/// Blocks reserved ahead of the appends in the active segment.
const RESERVE_AHEAD: u64 = 4 << 20;

/// Pending appends are written when the log is dropped unflushed, as mapped ones reach the
/// page cache without a flush (neither is durable before an fsync).
impl Drop for CommitLog {
    fn drop(&mut self) {
        if let Err(e) = self.write_pending() {
            tracing::warn!(error = %e, "appends pending at close could not be written");
        }
    }
}

impl CommitLog {
    /// Opens (or creates) the log in `dir` with segments of `segment_size` bytes, recovering
    /// the valid prefix of what is there; records as Java writes them by default (no
    /// whole-record CRC).
    pub fn open(dir: &Path, segment_size: u64) -> Result<(CommitLog, Recovered), LogError> {
        Self::open_with(dir, segment_size, false)
    }

    /// [`CommitLog::open`], choosing whether records carry Java's whole-record CRC property
    /// (`__CRC32#`, Java's `enabledAppendPropCRC`). With it, recovery detects damage anywhere
    /// in a record (and requires the property); without it, only in the body and the lengths.
    pub fn open_with(
        dir: &Path,
        segment_size: u64,
        whole_record_crc: bool,
    ) -> Result<(CommitLog, Recovered), LogError> {
        Self::open_after(
            dir,
            segment_size,
            whole_record_crc,
            LastStop::Crash { checkpoint: None },
        )
    }

    /// [`CommitLog::open_with`] knowing how the last run ended ([`LastStop`] says which
    /// segments are walked).
    pub fn open_after(
        dir: &Path,
        segment_size: u64,
        whole_record_crc: bool,
        last_stop: LastStop,
    ) -> Result<(CommitLog, Recovered), LogError> {
        Self::open_checked(
            dir,
            segment_size,
            whole_record_crc,
            whole_record_crc.then_some(0),
            last_stop,
        )
    }

    /// [`CommitLog::open_after`] saying from which offset recovery requires the whole-record
    /// CRC property (`None`: nowhere; a record that carries it is verified in any case). A
    /// store that turned the property on keeps the offset where it did, so its older records,
    /// written without it, are not taken for damage.
    pub fn open_checked(
        dir: &Path,
        segment_size: u64,
        whole_record_crc: bool,
        crc_required_from: Option<u64>,
        last_stop: LastStop,
    ) -> Result<(CommitLog, Recovered), LogError> {
        durable::create_dir(dir).map_err(io(dir))?;
        let mut log = CommitLog {
            dir: dir.to_owned(),
            segment_size,
            segments: Self::load_segments(dir, segment_size)?,
            end: 0,
            dirty_from: None,
            whole_record_crc,
            crc_required_from,
            active: None,
            no_map: false,
            scratch: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            ahead: None,
        };
        let first = match last_stop {
            LastStop::Clean => log.segments.len().saturating_sub(1),
            LastStop::Crash { checkpoint: None } => 0,
            LastStop::Crash {
                checkpoint: Some(t),
            } => log.newest_segment_started_by(t - CHECKPOINT_MARGIN_MS),
        };
        let recovered = log.recover_from(first)?;
        Ok((log, recovered))
    }

    /// The next record's offset.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The first offset still in the log.
    pub fn start(&self) -> u64 {
        self.segments.first().map_or(self.end, |s| s.base)
    }

    /// Deletes whole segments, oldest first, while `expired` says so of them (Java's
    /// CleanCommitLogService: by last-modified time); the segment being written is never
    /// deleted. Returns how many went; [`CommitLog::start`] moves past them.
    pub fn delete_oldest_segments(
        &mut self,
        mut expired: impl FnMut(&std::fs::Metadata) -> bool,
    ) -> Result<usize, LogError> {
        let mut deleted = 0;
        while self.segments.len() > 1 {
            let first = &self.segments[0];
            let meta = first.file.metadata().map_err(io(&first.path))?;
            if !expired(&meta) {
                break;
            }
            let seg = self.segments.remove(0);
            drop(seg.file);
            std::fs::remove_file(&seg.path).map_err(io(&seg.path))?;
            self.dirty_from = self.dirty_from.map(|d| d.saturating_sub(1));
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The segment size.
    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }

    /// Appends `record` (its physical offset is set here); rolls to a new segment, writing a
    /// BLANK record, when it does not fit in the current one.
    pub fn append(&mut self, mut record: Record) -> Result<Appended, LogError> {
        self.append_mut(&mut record)
    }

    /// Chooses how appends reach the active segment: with positioned writes (the store's
    /// default in both flush modes: under ASYNC_FLUSH each put's records are written with one
    /// `pwrite` before it is acknowledged, under SYNC_FLUSH a group commit's with one), or
    /// through a memory map (an append is a copy with no system call).
    ///
    /// Measured on a 2-core VM (2026-12-08, `cargo bench -p rmq-broker --bench e2e`, send to a
    /// long-polling consumer at 30k msgs/s over 16 connections, five runs each): p99 1.8-4.7
    /// ms positioned, 4.4-51 ms mapped (three of five above 37 ms). Every flush write-protects each dirty mapped page
    /// again, one TLB shoot-down (an inter-processor interrupt, costly in a VM) per page: the
    /// flusher spent 30-40 ms of CPU per 500 ms interval in it, and every next append into
    /// such a page takes a fault. With an fsync after every append, mapped writes ran at
    /// 0.65x of positioned ones. Throughput of `rmq send` was the same either way.
    pub fn set_mapped_writes(&mut self, mapped: bool) {
        self.no_map = !mapped;
        if !mapped {
            self.active = None;
        }
    }

    /// Whether a thread warms the page cache ahead of the appends ([`ahead`]): what appends
    /// that reach the page cache on the caller's thread want (ASYNC_FLUSH, where each put is
    /// written before it is answered). Under SYNC_FLUSH the group commit writes a group with
    /// one call on its own thread, and the warming measured no better there (its readahead
    /// shares the file's locks with the fsync).
    pub fn set_warm_ahead(&mut self, warm: bool) {
        match (warm, self.ahead.is_some()) {
            (true, false) => self.ahead = Some(ahead::Ahead::new()),
            (false, true) => self.ahead = None,
            _ => {}
        }
    }

    /// [`CommitLog::append`] without taking the record: its physical offset is set in place
    /// (so the caller can dispatch it without a copy).
    pub fn append_mut(&mut self, record: &mut Record) -> Result<Appended, LogError> {
        self.append_record(record)
    }

    fn append_record(&mut self, record: &mut Record) -> Result<Appended, LogError> {
        let crc = self.whole_record_crc;
        record.check_storable(crc)?;
        let len = record.stored_len(crc) as u64;
        if len + BLANK_LEN as u64 > self.segment_size {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "a record of {len} bytes does not fit a segment of {}",
                self.segment_size
            ))));
        }
        let within = self.end % self.segment_size;
        // A record always leaves room for a BLANK after it; one that does not fit goes to the
        // next segment, after a BLANK saying the rest of this one is unused.
        if within != 0 && within + len + BLANK_LEN as u64 > self.segment_size {
            let remaining = self.segment_size - within;
            let idx = self.current_index()?;
            self.dirty_from = Some(self.dirty_from.map_or(idx, |d| d.min(idx)));
            self.write_at(idx, within, &record::blank(remaining as u32))?;
            self.end += remaining;
        }
        record.physical_offset = self.end as i64;
        let within = self.end % self.segment_size;
        let idx = self.current_index()?;
        // Encoded straight into the mapped segment; without a map, behind the pending
        // appends (written by the next flush) into blocks reserved now, so that write cannot
        // meet a full disk; where nothing can be reserved, written at once, so a full disk
        // fails this append rather than a later flush.
        if let Some(dst) = self.mapped_range(idx, within, len as usize)? {
            record.encode_stored(dst, crc)?;
        } else if self.reserve(idx, within + len)? {
            if self.pending.len() >= PENDING_MAX {
                self.write_pending()?;
            }
            if self.pending.is_empty() {
                self.pending_at = self.end;
            }
            let from = self.pending.len();
            self.pending.resize(from + len as usize, 0);
            if let Err(e) = record.encode_stored(&mut self.pending[from..], crc) {
                self.pending.truncate(from);
                return Err(e.into());
            }
        } else {
            let mut bytes = std::mem::take(&mut self.scratch);
            bytes.resize(len as usize, 0);
            let written = record
                .encode_stored(&mut bytes, crc)
                .map_err(LogError::Record)
                .and_then(|()| self.write_at(idx, within, &bytes));
            self.scratch = bytes;
            written?;
        }
        self.dirty_from = Some(self.dirty_from.map_or(idx, |d| d.min(idx)));
        let offset = self.end;
        self.end += len;
        if let Some(ahead) = &mut self.ahead {
            let seg = &self.segments[idx];
            ahead.appended(&seg.file, seg.base, self.segment_size, self.end);
        }
        Ok(Appended {
            offset,
            size: len as u32,
        })
    }

    /// Writes `bytes` at `within` of segment `idx`: through the map when it is the active
    /// segment, else with a positioned write.
    fn write_at(&mut self, idx: usize, within: u64, bytes: &[u8]) -> Result<(), LogError> {
        if let Some(dst) = self.mapped_range(idx, within, bytes.len())? {
            dst.copy_from_slice(bytes);
            return Ok(());
        }
        // Blocks reserved here too, so a full disk fails the same way in both write modes.
        self.reserve(idx, within + bytes.len() as u64)?;
        self.write_pending()?;
        let seg = &self.segments[idx];
        seg.file
            .write_all_at(bytes, within)
            .map_err(io(&seg.path))?;
        Ok(())
    }

    /// The `len` bytes at `within` of segment `idx` in the map of the active segment (mapping
    /// it first, and reserving its blocks ahead so a full disk is an error, never a SIGBUS);
    /// `None` where writes cannot go through a map.
    fn mapped_range(
        &mut self,
        idx: usize,
        within: u64,
        len: usize,
    ) -> Result<Option<&mut [u8]>, LogError> {
        let seg = &self.segments[idx];
        if !self.no_map && self.active.as_ref().map(|a| a.base) != Some(seg.base) {
            // Unmapping the previous segment loses nothing: its pages stay in the page cache
            // until written back (or fsynced by a flush).
            self.active = None;
            // SAFETY: a mapping is sound while no one else truncates or writes the file. The
            // segment belongs to this log, opened only by `MessageStore` under the store's
            // exclusive lock (flock and Java's fcntl lock), so no other process writes it;
            // within this process its length is set once at creation, before any mapping,
            // and recovery's cut (a punched hole) happens at open, before any append; a
            // segment is deleted only when it is not the active one. Stores go through this
            // map only into reserved blocks and within its length (checked by slicing).
            match unsafe { memmap2::MmapMut::map_mut(&seg.file) } {
                Ok(map) if map.len() as u64 == self.segment_size => {
                    self.active = Some(ActiveMap {
                        base: seg.base,
                        map,
                    });
                }
                _ => self.no_map = true,
            }
        }
        if self.active.as_ref().is_none_or(|a| a.base != seg.base) {
            return Ok(None);
        }
        // Switched from positioned writes: what they left pending goes first.
        self.write_pending()?;
        let end = within + len as u64;
        if !self.reserve(idx, end)? {
            // No fallocate here: a store into a hole could be a SIGBUS on a full disk.
            // Positioned writes from now on.
            self.no_map = true;
            self.active = None;
            return Ok(None);
        }
        let a = self.active.as_mut().expect("kept above");
        Ok(a.map.get_mut(within as usize..end as usize))
    }

    /// Reserves disk blocks for segment `idx` up to `end`, [`RESERVE_AHEAD`] more when there
    /// is room: a full disk is then an error of the append that needs the room, and a write
    /// into reserved blocks (through the map, or a write-behind buffer written later) cannot
    /// meet one. `false` where the filesystem cannot reserve.
    fn reserve(&mut self, idx: usize, end: u64) -> Result<bool, LogError> {
        let seg = &mut self.segments[idx];
        let Some(reserved) = seg.reserved else {
            return Ok(false);
        };
        seg.reserved = files::reserve_blocks(
            &seg.file,
            &seg.path,
            reserved,
            end,
            RESERVE_AHEAD,
            self.segment_size,
        )?;
        Ok(seg.reserved.is_some())
    }

    /// The segments written since the last flush, marked clean: the caller makes them
    /// durable (a flusher thread fsyncs them by path while appends go on).
    pub fn take_unsynced(&mut self) -> Result<Vec<PathBuf>, LogError> {
        let paths = self.unsynced_paths()?;
        self.dirty_from = None;
        Ok(paths)
    }

    /// The segments written since the last sync, as handles of their own with their paths,
    /// marked clean: for a group commit that fsyncs them without the log in hand (appends go
    /// on meanwhile and mark their segment dirty again). The pending appends are written first.
    pub fn take_unsynced_files(&mut self) -> Result<Vec<(PathBuf, File)>, LogError> {
        self.write_pending()?;
        let Some(from) = self.dirty_from else {
            return Ok(Vec::new());
        };
        // Every handle first: on a failure the segments stay dirty for the next sync.
        let files = self.segments[from..]
            .iter()
            .map(|s| Ok((s.path.clone(), s.file.try_clone().map_err(io(&s.path))?)))
            .collect::<Result<Vec<_>, LogError>>()?;
        self.dirty_from = None;
        Ok(files)
    }

    /// The paths of the segments written since the last sync, left dirty (pending appends
    /// written first): for a flush job that syncs them too while a group commit (SYNC_FLUSH)
    /// keeps the say over when an append is durable.
    pub fn unsynced_paths(&mut self) -> Result<Vec<PathBuf>, LogError> {
        self.write_pending()?;
        Ok(match self.dirty_from {
            Some(from) => self.segments[from..]
                .iter()
                .map(|s| s.path.clone())
                .collect(),
            None => Vec::new(),
        })
    }

    /// Writes the pending appends (positioned writes only) to their segment in one positioned
    /// write: every append so far is then with the kernel, so a process crash loses none (a
    /// power loss can, until [`CommitLog::sync`]). Nothing to do for appends through the map.
    /// On failure they stay pending (reads still see them) and the next flush tries again.
    pub fn write_pending(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(seg) = self.segment_at(self.pending_at) else {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "pending appends at {} have no segment",
                self.pending_at
            ))));
        };
        seg.file
            .write_all_at(&self.pending, self.pending_at - seg.base)
            .map_err(io(&seg.path))?;
        self.pending.clear();
        Ok(())
    }

    /// The pending bytes from `offset` on, when `offset` is among them.
    fn pending_from(&self, offset: u64) -> Option<&[u8]> {
        let at = offset.checked_sub(self.pending_at)?;
        self.pending
            .get(usize::try_from(at).ok()?..)
            .filter(|p| !p.is_empty())
    }

    /// Makes every append so far durable (fsync of the segments written since the last flush).
    /// The segments stay marked dirty until their fsync succeeded: a failed flush leaves them
    /// to the next one (which the store refuses to rely on: see `MessageStore`'s write
    /// failure).
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.write_pending()?;
        if let Some(from) = self.dirty_from {
            for seg in &self.segments[from..] {
                durable::sync_file(&seg.file, &seg.path).map_err(io(&seg.path))?;
            }
            self.dirty_from = None;
        }
        Ok(())
    }

    /// The record at `offset` (a BLANK there: `Ok(None)`, the reader moves to the next
    /// segment's start).
    pub fn read(&self, offset: u64) -> Result<Option<Box<Record>>, LogError> {
        let Some(seg) = self.segment_at(offset) else {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "offset {offset} is outside the log [{}, {})",
                self.start(),
                self.end
            ))));
        };
        if offset >= self.end {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "offset {offset} is at or past the end {}",
                self.end
            ))));
        }
        // The record's header: from the pending appends, or the segment.
        let mut head = [0u8; BLANK_LEN];
        match self.pending_from(offset) {
            Some(p) => match p.get(..BLANK_LEN) {
                Some(h) => head.copy_from_slice(h),
                None => {
                    return Err(LogError::Record(RecordError::Invalid(format!(
                        "no record at {offset}"
                    ))))
                }
            },
            None => seg
                .file
                .read_exact_at(&mut head, offset - seg.base)
                .map_err(io(&seg.path))?,
        }
        let magic = i32::from_be_bytes(head[4..].try_into().expect("4 bytes"));
        if magic == record::BLANK_MAGIC {
            return Ok(None);
        }
        // The offset can come from a client (VIEW_MESSAGE_BY_ID, CONSUMER_SEND_MSG_BACK): the
        // size at it never sizes an allocation unchecked. A record's magic must be there, and
        // `read_raw` takes the size only where it fits what was written and the segment (Java
        // refuses past the written position too), as a slice of the segment's map, no copy.
        if magic != record::MAGIC_V1 && magic != record::MAGIC_V2 {
            return Err(LogError::Record(RecordError::BadMagic(magic as u32)));
        }
        let size = i32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
        if size < BLANK_LEN as i32 {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "no record at {offset}: size {size}"
            ))));
        }
        match record::decode(&self.read_raw(offset, size as u32)?, false)? {
            Found::Blank => Ok(None),
            Found::Message(r, _) => Ok(Some(r)),
        }
    }

    /// The `size` stored bytes of the record at `offset`, exactly as on disk (what a pull
    /// answer carries), checked to be one whole record.
    pub fn read_raw(&self, offset: u64, size: u32) -> Result<Bytes, LogError> {
        let Some(seg) = self.segment_at(offset) else {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "offset {offset} is outside the log"
            ))));
        };
        if offset + u64::from(size) > self.end
            || offset - seg.base + u64::from(size) > self.segment_size
        {
            return Err(LogError::Record(RecordError::Invalid(format!(
                "{size} bytes at {offset} run past the log or the segment"
            ))));
        }
        let within = (offset - seg.base) as usize;
        let pending = self
            .pending_from(offset)
            .and_then(|p| p.get(..size as usize));
        let raw = match (pending, seg.mapped(self.segment_size)) {
            // Not written to the segment yet (positioned writes wait for the flush).
            (Some(p), _) => Bytes::copy_from_slice(p),
            (None, Some(map)) => map.slice(within..within + size as usize),
            (None, None) => {
                let mut buf = vec![0u8; size as usize];
                seg.file
                    .read_exact_at(&mut buf, offset - seg.base)
                    .map_err(io(&seg.path))?;
                Bytes::from(buf)
            }
        };
        // Records below the end were validated when recovered or written: checking the size
        // and magic they start with is enough to know the entry pointed at one.
        let head_size = raw
            .get(..4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
        let magic = raw
            .get(4..8)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
        if head_size == Some(size as i32)
            && matches!(magic, Some(m) if m == record::MAGIC_V1 || m == record::MAGIC_V2)
        {
            Ok(raw)
        } else {
            Err(LogError::Record(RecordError::Invalid(format!(
                "no record of {size} bytes at {offset}"
            ))))
        }
    }

    /// The start of the segment after the one holding `offset` (where a reader goes on after a
    /// BLANK).
    pub fn roll_offset(&self, offset: u64) -> u64 {
        offset + self.segment_size - offset % self.segment_size
    }

    fn segment_at(&self, offset: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| s.base <= offset && offset < s.base + self.segment_size)
    }

    /// The segment holding `end`, created when it does not exist yet.
    fn current_index(&mut self) -> Result<usize, LogError> {
        let base = self.end - self.end % self.segment_size;
        if let Some(i) = self.segments.iter().position(|s| s.base == base) {
            return Ok(i);
        }
        let path = self.dir.join(segment_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        file.set_len(self.segment_size).map_err(io(&path))?;
        // The new name must survive a power loss too: a group commit's fsync of the segment
        // does not make its directory entry durable.
        durable::sync_dir(&self.dir).map_err(io(&self.dir))?;
        self.segments.push(Segment {
            base,
            path,
            file,
            read_map: std::sync::OnceLock::new(),
            reserved: Some(0),
        });
        Ok(self.segments.len() - 1)
    }
}
