//! The index by message key and unique id (spec §1.7), in Java's `IndexFile` format, so a Java
//! broker reading the store finds it where it looks (and QUERY_MESSAGE / VIEW_MESSAGE_BY_ID by
//! UNIQ_KEY have something to search):
//!
//! ```text
//! header (40): i64 beginTimestamp, i64 endTimestamp, i64 beginPhyOffset, i64 endPhyOffset,
//!              i32 hashSlotCount, i32 indexCount (starts at 1: entry 0 is never used)
//! slots (slotNum x 4): i32 newest entry number in this bucket, 0 = empty
//! entries (indexNum x 20): i32 keyHash, i64 phyOffset, i32 timeDiff (s since begin), i32 prev
//! ```
//!
//! A key is `topic#key`; its hash is Java's `String.hashCode`, made non-negative (MIN -> 0);
//! its slot is `hash % slotNum`. Entries of a bucket are chained newest first. Hash collisions
//! are returned by queries: callers check the record's keys.

use crate::durable;
use crate::files::{io, FileError};
use crate::queue_entry::java_string_hash;
use memmap2::MmapMut;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Header bytes.
pub const HEADER_LEN: u64 = 40;
/// Bytes per entry.
pub const ENTRY_LEN: u64 = 20;

/// `abs(String.hashCode(key))`, with `Integer.MIN_VALUE` as 0 (Java's `IndexFile.indexKeyHashMethod`).
pub fn key_hash(key: &str) -> i32 {
    let h = java_string_hash(key);
    if h == i32::MIN {
        0
    } else {
        h.abs()
    }
}

/// The indexed form of a key (`topic#key`).
pub fn index_key(topic: &str, key: &str) -> String {
    format!("{topic}#{key}")
}

/// [`key_hash`] of `topic#key`, computed without building the string (every put hashes one
/// or more keys).
pub fn topic_key_hash(topic: &str, key: &str) -> i32 {
    let h = if topic.is_ascii() && key.is_ascii() {
        // An ASCII byte is its own UTF-16 unit: hash the bytes, two at a time (h*31^2 +
        // a*31 + b is the same sum with half the chain of dependent multiplications).
        let step = |h: i32, bytes: &[u8]| {
            let mut pairs = bytes.chunks_exact(2);
            let mut h = h;
            for p in &mut pairs {
                h = h
                    .wrapping_mul(961)
                    .wrapping_add(i32::from(p[0]).wrapping_mul(31))
                    .wrapping_add(i32::from(p[1]));
            }
            if let [b] = pairs.remainder() {
                h = h.wrapping_mul(31).wrapping_add(i32::from(*b));
            }
            h
        };
        step(step(step(0, topic.as_bytes()), b"#"), key.as_bytes())
    } else {
        topic
            .encode_utf16()
            .chain("#".encode_utf16())
            .chain(key.encode_utf16())
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
    };
    if h == i32::MIN {
        0
    } else {
        h.abs()
    }
}

/// One index file, memory-mapped: a put touches a random slot and appends an entry, and as
/// positioned reads and writes that was three syscalls a key, a third of the append rate (the
/// store benchmark's index-off row is the comparison).
pub(crate) struct IndexFile {
    path: PathBuf,
    map: MmapMut,
    /// The file, for reserving disk blocks ahead of writes through the map.
    file: std::fs::File,
    /// Bytes from the start known to have disk blocks reserved (see [`IndexFile::reserve`]).
    reserved: u64,
    slot_num: u32,
    index_num: u32,
    begin_timestamp: i64,
    end_timestamp: i64,
    begin_phy: i64,
    end_phy: i64,
    slot_count: i32,
    index_count: i32,
}

impl IndexFile {
    /// Opens the file at `path` (created with the given sizes when missing); its header says
    /// how full it is. Only the store opens index files, under its lock.
    pub(crate) fn open(path: &Path, slot_num: u32, index_num: u32) -> Result<IndexFile, FileError> {
        let size = HEADER_LEN + u64::from(slot_num) * 4 + u64::from(index_num) * ENTRY_LEN;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        if len != 0 && len != size {
            return Err(FileError::Layout {
                path: path.to_owned(),
                reason: format!("{len} bytes, an index file of these sizes has {size}"),
            });
        }
        file.set_len(size).map_err(io(path))?;
        // SAFETY: a mapping is sound while no one else truncates or writes the file. Index
        // files are opened only by `MessageStore`, which holds the store's exclusive lock for
        // as long as they are open (a second store on the directory is refused), and nothing
        // in this crate changes a file's length once mapped; the map's length is the file's,
        // checked above, and every access below is bounds-checked against it.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(io(path))?;
        let slots_end = HEADER_LEN + u64::from(slot_num) * 4;
        let h: [u8; HEADER_LEN as usize] = map[..HEADER_LEN as usize].try_into().expect("40 bytes");
        let i64_at = |o: usize| i64::from_be_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        let i32_at = |o: usize| i32::from_be_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let mut f = IndexFile {
            path: path.to_owned(),
            map,
            file,
            reserved: 0,
            slot_num,
            index_num,
            begin_timestamp: i64_at(0),
            end_timestamp: i64_at(8),
            begin_phy: i64_at(16),
            end_phy: i64_at(24),
            slot_count: i32_at(32),
            index_count: i32_at(36).max(1),
        };
        // Header and slots are written anywhere at any time: all of them now; entries as
        // they are reached.
        let counted = f.entry_pos(f.index_count);
        f.reserve(slots_end.max(counted))?;
        Ok(f)
    }

    /// Makes sure the first `upto` bytes have disk blocks (`fallocate`), a chunk ahead. The
    /// file is sparse and written through a map: a store into a hole when the disk is full
    /// would be a SIGBUS that kills the process; reserved first, the disk-full case is an
    /// error from here instead. Filesystems without `fallocate` keep the sparse behaviour.
    fn reserve(&mut self, upto: u64) -> Result<(), FileError> {
        const CHUNK: u64 = 1 << 20;
        let size = self.map.len() as u64;
        self.reserved =
            crate::files::reserve_blocks(&self.file, &self.path, self.reserved, upto, CHUNK, size)?
                .unwrap_or(size);
        Ok(())
    }

    /// True when no more entries fit.
    pub fn is_full(&self) -> bool {
        self.index_count as u32 >= self.index_num
    }

    /// The file's time range (store timestamps of its first and last entries).
    #[cfg(test)]
    fn time_range(&self) -> (i64, i64) {
        (self.begin_timestamp, self.end_timestamp)
    }

    fn slot_pos(&self, hash: i32) -> u64 {
        HEADER_LEN + (hash as u32 % self.slot_num) as u64 * 4
    }

    fn entry_pos(&self, n: i32) -> u64 {
        HEADER_LEN + u64::from(self.slot_num) * 4 + n as u64 * ENTRY_LEN
    }

    fn bytes(&self, at: u64, len: usize) -> Result<&[u8], FileError> {
        let at = at as usize;
        self.map.get(at..at + len).ok_or_else(|| FileError::Layout {
            path: self.path.clone(),
            reason: format!("{len} bytes at {at} are past the end"),
        })
    }

    fn write(&mut self, at: u64, data: &[u8]) -> Result<(), FileError> {
        let at = at as usize;
        let len = self.map.len();
        match self.map.get_mut(at..at + data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                Ok(())
            }
            None => Err(FileError::Layout {
                path: self.path.clone(),
                reason: format!("{} bytes at {at} are past the end ({len})", data.len()),
            }),
        }
    }

    fn read_i32(&self, at: u64) -> Result<i32, FileError> {
        let b = self.bytes(at, 4)?;
        Ok(i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    /// Adds `key` (already `topic#key`) for the record at `phy_offset` stored at `store_time`.
    /// `false` when the file is full.
    #[cfg(test)]
    pub fn put(&mut self, key: &str, phy_offset: i64, store_time: i64) -> Result<bool, FileError> {
        self.put_hash(key_hash(key), phy_offset, store_time)
    }

    /// [`IndexFile::put`] of a key already hashed ([`key_hash`]).
    pub fn put_hash(
        &mut self,
        hash: i32,
        phy_offset: i64,
        store_time: i64,
    ) -> Result<bool, FileError> {
        if self.is_full() {
            return Ok(false);
        }
        let slot_pos = self.slot_pos(hash);
        let prev = self.read_i32(slot_pos)?;
        let prev = if prev < 0 || prev > self.index_count {
            0
        } else {
            prev
        };
        if self.index_count <= 1 {
            self.begin_timestamp = store_time;
            self.begin_phy = phy_offset;
        }
        let diff =
            ((store_time - self.begin_timestamp) / 1000).clamp(0, i64::from(i32::MAX)) as i32;
        let mut e = [0u8; ENTRY_LEN as usize];
        e[..4].copy_from_slice(&hash.to_be_bytes());
        e[4..12].copy_from_slice(&phy_offset.to_be_bytes());
        e[12..16].copy_from_slice(&diff.to_be_bytes());
        e[16..].copy_from_slice(&prev.to_be_bytes());
        let n = self.index_count;
        self.reserve(self.entry_pos(n) + ENTRY_LEN)?;
        self.write(self.entry_pos(n), &e)?;
        self.write(slot_pos, &n.to_be_bytes())?;
        if prev == 0 {
            self.slot_count += 1;
        }
        self.index_count += 1;
        self.end_timestamp = store_time;
        self.end_phy = phy_offset;
        Ok(true)
    }

    fn write_header(&mut self) -> Result<(), FileError> {
        let h = self.header();
        self.write(0, &h)
    }

    /// The header as it stands: the counts and ranges of the entries written so far.
    fn header(&self) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[..8].copy_from_slice(&self.begin_timestamp.to_be_bytes());
        h[8..16].copy_from_slice(&self.end_timestamp.to_be_bytes());
        h[16..24].copy_from_slice(&self.begin_phy.to_be_bytes());
        h[24..32].copy_from_slice(&self.end_phy.to_be_bytes());
        h[32..36].copy_from_slice(&self.slot_count.to_be_bytes());
        h[36..40].copy_from_slice(&self.index_count.to_be_bytes());
        h
    }

    /// Physical offsets of records indexed under `key` (newest first, hash collisions
    /// included), stored within `[begin, end]`, at most `max`.
    pub fn query(
        &self,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Result<Vec<i64>, FileError> {
        let hash = key_hash(key);
        let mut out = Vec::new();
        let mut n = self.read_i32(self.slot_pos(hash))?;
        let mut steps = 0;
        while n > 0 && n < self.index_count && out.len() < max && steps < self.index_count {
            steps += 1;
            let e = self.bytes(self.entry_pos(n), ENTRY_LEN as usize)?;
            let h = i32::from_be_bytes(e[..4].try_into().expect("4 bytes"));
            let phy = i64::from_be_bytes(e[4..12].try_into().expect("8 bytes"));
            let diff = i32::from_be_bytes(e[12..16].try_into().expect("4 bytes"));
            let prev = i32::from_be_bytes(e[16..].try_into().expect("4 bytes"));
            let t = self.begin_timestamp + i64::from(diff) * 1000;
            if h == hash && t >= begin - 1000 && t <= end {
                out.push(phy);
            }
            if prev >= n {
                break; // a chain only goes back; anything else is damage
            }
            n = prev;
        }
        Ok(out)
    }

    /// Makes the file durable. The header, which says how many entries count, is written
    /// only here, after the entries and slots it covers are synced: after a crash the header
    /// never counts an entry that did not reach the disk (entries past it are re-indexed from
    /// the commit log at open).
    pub(crate) fn sync(&mut self) -> Result<(), FileError> {
        durable::sync_map(&self.map, &self.path, None).map_err(io(&self.path))?;
        self.write_header()?;
        durable::sync_map(&self.map, &self.path, Some((0, HEADER_LEN as usize)))
            .map_err(io(&self.path))
    }

    /// Physical offset of the last record indexed here (-1 when none counts).
    pub fn end_phy(&self) -> i64 {
        if self.index_count <= 1 {
            -1
        } else {
            self.end_phy
        }
    }

    /// Continues where a full predecessor stopped (Java: a new file's header begins with the
    /// previous file's end values).
    fn continue_from(&mut self, prev: &IndexFile) {
        if self.index_count <= 1 {
            self.begin_timestamp = prev.end_timestamp;
            self.begin_phy = prev.end_phy;
            self.end_timestamp = prev.end_timestamp;
            self.end_phy = prev.end_phy;
        }
    }

    /// Whether the file's time range meets `[begin, end]` (Java's `isTimeMatched`).
    fn meets(&self, begin: i64, end: i64) -> bool {
        (begin < self.begin_timestamp && end > self.end_timestamp)
            || (begin >= self.begin_timestamp && begin <= self.end_timestamp)
            || (end >= self.begin_timestamp && end <= self.end_timestamp)
    }
}

/// The index files of a store (`<root>/index/`), oldest first; keys go to the newest, a new
/// one starts when it is full.
pub(crate) struct Indexes {
    dir: PathBuf,
    slot_num: u32,
    index_num: u32,
    files: Vec<IndexFile>,
    /// Files that filled since the last flush, their final header not yet written: the next
    /// flush (or flush job) syncs them and then writes it. Rolling no longer syncs the full
    /// file while appends wait.
    unsynced: Vec<PathBuf>,
}

impl Indexes {
    /// Opens every index file under `dir` (names are creation times, so name order is age).
    pub(crate) fn open(dir: &Path, slot_num: u32, index_num: u32) -> Result<Indexes, FileError> {
        durable::create_dir(dir).map_err(io(dir))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        for path in names {
            files.push(IndexFile::open(&path, slot_num, index_num)?);
        }
        Ok(Indexes {
            dir: dir.to_owned(),
            slot_num,
            index_num,
            files,
            unsynced: Vec::new(),
        })
    }

    /// Whether any index file exists.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Physical offset of the last record indexed (-1 when none): records after it are not.
    pub fn end_phy(&self) -> i64 {
        self.files
            .iter()
            .rev()
            .map(IndexFile::end_phy)
            .find(|&e| e >= 0)
            .unwrap_or(-1)
    }

    /// Store time and physical offset of the last record indexed (QUERY_MESSAGE's
    /// `indexLastUpdateTimestamp` / `indexLastUpdatePhyoffset`).
    pub fn last_update(&self) -> (i64, i64) {
        self.files
            .last()
            .map_or((0, 0), |f| (f.end_timestamp, f.end_phy))
    }

    /// Indexes every key of `keys` (each already `topic#key`) for the record at `phy_offset`.
    #[cfg(test)]
    pub fn put<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k str>,
        phy_offset: i64,
        store_time: i64,
    ) -> Result<(), FileError> {
        self.put_hashes(keys.into_iter().map(key_hash), phy_offset, store_time)
    }

    /// [`Indexes::put`] of keys already hashed ([`key_hash`], [`topic_key_hash`]).
    pub fn put_hashes(
        &mut self,
        hashes: impl IntoIterator<Item = i32>,
        phy_offset: i64,
        store_time: i64,
    ) -> Result<(), FileError> {
        for hash in hashes {
            if self.files.last().is_none_or(IndexFile::is_full) {
                self.roll(store_time)?;
            }
            let file = self.files.last_mut().expect("rolled");
            if !file.put_hash(hash, phy_offset, store_time)? {
                return Err(FileError::Layout {
                    path: file.path.clone(),
                    reason: "a new index file is already full".into(),
                });
            }
        }
        Ok(())
    }

    /// Starts a new file, named by `now` as Java names them, after syncing the full one.
    fn roll(&mut self, now: i64) -> Result<(), FileError> {
        if let Some(full) = self.files.last() {
            self.unsynced.push(full.path.clone());
        }
        let mut at = now;
        let mut path = self.dir.join(file_name(at));
        while path.exists() || self.files.last().is_some_and(|f| f.path >= path) {
            at += 1;
            path = self.dir.join(file_name(at));
        }
        let mut file = IndexFile::open(&path, self.slot_num, self.index_num)?;
        if let Some(prev) = self.files.last() {
            file.continue_from(prev);
        }
        self.files.push(file);
        Ok(())
    }

    /// Physical offsets indexed under `key` (`topic#key`) stored within `[begin, end]`: newest
    /// file first, newest entry first, at most `max`; hash collisions included.
    pub fn query(
        &self,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Result<Vec<i64>, FileError> {
        let mut out = Vec::new();
        for f in self.files.iter().rev() {
            if out.len() >= max {
                break;
            }
            if f.meets(begin, end) {
                out.extend(f.query(key, max - out.len(), begin, end)?);
            }
        }
        Ok(out)
    }

    /// Deletes files (never the newest) whose every entry points below `phy_offset`: retention
    /// removed the records they index. Returns how many went.
    pub fn delete_before(&mut self, phy_offset: i64) -> Result<usize, FileError> {
        let mut deleted = 0;
        while self.files.len() > 1 && self.files[0].end_phy < phy_offset {
            let f = self.files.remove(0);
            std::fs::remove_file(&f.path).map_err(io(&f.path))?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// The headers a flush job writes, each after an fsync of its file has made the entries
    /// it counts durable: files that filled since the last flush, and the newest. Captured
    /// now, with the store in hand; written by the job on another thread (see [`HeaderWrite`]).
    pub(crate) fn take_header_writes(&mut self) -> Vec<HeaderWrite> {
        let unsynced = std::mem::take(&mut self.unsynced);
        self.files
            .iter()
            .filter(|f| unsynced.contains(&f.path))
            .chain(self.files.last())
            .map(|f| HeaderWrite {
                path: f.path.clone(),
                header: f.header(),
            })
            .collect()
    }

    /// Makes the newest file, and those that filled since the last flush, durable: entries
    /// synced first, then each header, then the header synced.
    pub fn sync(&mut self) -> Result<(), FileError> {
        let unsynced = std::mem::take(&mut self.unsynced);
        let last = self.files.len().saturating_sub(1);
        for (i, f) in self.files.iter_mut().enumerate() {
            if i == last || unsynced.contains(&f.path) {
                f.sync()?;
            }
        }
        Ok(())
    }
}

/// An index file's header for a flush job to write: the job fsyncs the file first (the
/// entries and slots the header counts, written through the map), then writes these 40 bytes
/// and syncs them. A crash at any point leaves a header that counts only entries on disk.
#[derive(Debug, Clone)]
pub struct HeaderWrite {
    path: PathBuf,
    header: [u8; HEADER_LEN as usize],
}

impl HeaderWrite {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the header (after the file's fsync) and syncs it. A file deleted since (by
    /// retention) needs nothing.
    pub fn run(&self) -> Result<(), FileError> {
        use std::os::unix::fs::FileExt;
        let f = match OpenOptions::new().write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&self.path)(e)),
        };
        f.write_all_at(&self.header, 0).map_err(io(&self.path))?;
        durable::sync_file(&f, &self.path).map_err(io(&self.path))
    }
}

/// Java's index file name for a time: `yyyyMMddHHmmssSSS` (UTC here; Java uses local time,
/// and only the order of names matters when reading them).
pub fn file_name(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}{m:02}{d:02}{h:02}{min:02}{s:02}{milli:03}")
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`;
/// the store has no date crate, and this is all it needs of one).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The keys a record is indexed under (Java's `IndexService.buildIndex`): its `UNIQ_KEY` and
/// each non-empty element of `KEYS` split on a space, as `topic#key`; none for a transaction
/// rollback.
pub fn record_keys(topic: &str, sys_flag: i32, properties: &str) -> Vec<String> {
    record_raw_keys(sys_flag, properties)
        .map(|k| index_key(topic, k))
        .collect()
}

/// The keys of [`record_keys`] without their topic, borrowed from the properties.
pub fn record_raw_keys(sys_flag: i32, properties: &str) -> impl Iterator<Item = &str> {
    let p = crate::record::DispatchProperties::of(properties);
    raw_keys(sys_flag, p.uniq_key, p.keys)
}

/// [`record_raw_keys`] of properties already read: `UNIQ_KEY`, then each non-empty element of
/// `KEYS` split on a space; none for a transaction rollback.
pub fn raw_keys<'a>(
    sys_flag: i32,
    uniq_key: Option<&'a str>,
    keys: Option<&'a str>,
) -> impl Iterator<Item = &'a str> {
    const TRANSACTION_ROLLBACK: i32 = 0x3 << 2;
    let indexed = sys_flag & TRANSACTION_ROLLBACK != TRANSACTION_ROLLBACK;
    let uniq = uniq_key.filter(|u| indexed && !u.is_empty());
    let keys = keys
        .filter(|_| indexed)
        .into_iter()
        .flat_map(|k| k.split(' '))
        .filter(|k| !k.is_empty());
    uniq.into_iter().chain(keys)
}

#[cfg(test)]
mod tests;
