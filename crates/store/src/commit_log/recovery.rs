//! Recovery of the commit log at open: the segments found (their names and sizes checked),
//! where the walk starts (the last segment after a clean stop; after a crash, the newest one
//! started before the checkpoint's time less Java's margin), and the walk itself, record by
//! record, which keeps exactly the valid prefix and discards the rest.

use super::{io, CommitLog, LogError, Recovered, Segment};
use crate::durable;
use crate::files::{self, FileError};
use crate::record::{self, Check, Found};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Java's margin under the checkpoint's time when choosing where a crash recovery starts.
pub(super) const CHECKPOINT_MARGIN_MS: i64 = 3_000;

impl CommitLog {
    /// How recovery checks the record at `offset`: the whole-record CRC property required
    /// where records carry it, else verified when present.
    pub(super) fn check_at(&self, offset: u64) -> Check {
        if self.crc_required_from.is_some_and(|from| offset >= from) {
            Check::WholeRecord
        } else {
            Check::Crc
        }
    }

    /// The newest segment whose first record is valid and was stored at or before `time`
    /// (0 when none is: walk them all).
    pub(super) fn newest_segment_started_by(&self, time: i64) -> usize {
        for (i, seg) in self.segments.iter().enumerate().rev() {
            let check = self.check_at(seg.base);
            let mut len = [0u8; 4];
            if seg.file.read_exact_at(&mut len, 0).is_err() {
                continue;
            }
            let len = u32::from_be_bytes(len) as u64;
            if !(8..=self.segment_size).contains(&len) {
                continue;
            }
            let mut buf = vec![0u8; len as usize];
            if seg.file.read_exact_at(&mut buf, 0).is_err() {
                continue;
            }
            if let Ok(Found::Message(r, _)) = record::decode_checked(&Bytes::from(buf), check) {
                if r.physical_offset == seg.base as i64 && r.store_timestamp <= time {
                    return i;
                }
            }
        }
        0
    }

    pub(super) fn load_segments(dir: &Path, segment_size: u64) -> Result<Vec<Segment>, LogError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let Some(base) = files::parse_segment_name(&path) else {
                continue;
            };
            let len = entry.metadata().map_err(io(&path))?.len();
            if base % segment_size != 0 {
                return Err(FileError::Layout {
                    path,
                    reason: format!(
                        "start offset {base} is not a multiple of the segment size {segment_size}"
                    ),
                }
                .into());
            }
            if len != segment_size && len != 0 {
                return Err(FileError::Layout {
                    path,
                    reason: format!("{len} bytes, segments are {segment_size}"),
                }
                .into());
            }
            found.push((base, path, len));
        }
        found.sort();
        let mut segments = Vec::new();
        for (i, (base, path, len)) in found.iter().enumerate() {
            if *len == 0 && i + 1 == found.len() {
                // A last file created and never written (Java deletes it too).
                std::fs::remove_file(path).map_err(io(path))?;
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io(path))?;
            segments.push(Segment {
                base: *base,
                path: path.clone(),
                file,
                read_map: std::sync::OnceLock::new(),
                reserved: Some(0),
            });
        }
        for pair in segments.windows(2) {
            if pair[1].base != pair[0].base + segment_size {
                return Err(FileError::Layout {
                    path: pair[1].path.clone(),
                    reason: format!(
                        "a segment is missing before it (previous starts at {})",
                        pair[0].base
                    ),
                }
                .into());
            }
        }
        Ok(segments)
    }

    /// Walks the segments from `first` on record by record and keeps exactly the valid prefix
    /// (the segments before `first` are taken as they are: whole, flushed).
    pub(super) fn recover_from(&mut self, first: usize) -> Result<Recovered, LogError> {
        let mut records = 0;
        let walked_from = self.segments.get(first).map_or(0, |s| s.base);
        let mut end = walked_from;
        let mut damaged = None;
        'segments: for seg in &self.segments[first.min(self.segments.len())..] {
            // Read in chunks as the walk goes: a segment holding a few records costs those
            // bytes, not a whole-segment read and allocation (1 GiB by default). (Not mapped:
            // reading a mapped hole of a full tmpfs is a SIGBUS.)
            let mut reader = ChunkReader::new(&seg.file, self.segment_size);
            let mut pos = 0u64;
            loop {
                if pos + 8 > self.segment_size {
                    // Not even a header fits: the segment ended (the writer rolls before this).
                    end = seg.base + self.segment_size;
                    continue 'segments;
                }
                let Some(head) = reader.get(pos, 8).map_err(io(&seg.path))? else {
                    // The file ends here: nothing was written past this point.
                    end = seg.base + pos;
                    break 'segments;
                };
                let head: [u8; 8] = head.try_into().expect("8 bytes");
                let total = i32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
                let magic = i32::from_be_bytes(head[4..].try_into().expect("4 bytes"));
                // A record is read whole (its size is bounded by the segment); anything else
                // (a BLANK, a bad size) needs only its header to be judged.
                let want = if magic != record::BLANK_MAGIC
                    && total > 8
                    && (total as u64) <= self.segment_size - pos
                {
                    total as usize
                } else {
                    8
                };
                let bytes = match reader.get(pos, want).map_err(io(&seg.path))? {
                    Some(b) => Bytes::copy_from_slice(b),
                    None => Bytes::copy_from_slice(&head),
                };
                match record::decode_checked(&bytes, self.check_at(seg.base + pos)) {
                    Ok(Found::Blank) => {
                        end = seg.base + self.segment_size;
                        continue 'segments;
                    }
                    Ok(Found::Message(r, len)) if r.physical_offset == (seg.base + pos) as i64 => {
                        records += 1;
                        pos += len as u64;
                    }
                    Ok(Found::Message(..)) | Err(_) => {
                        // An all-zero header is the unwritten rest of the segment, not damage.
                        if head != [0u8; 8] {
                            damaged = Some(seg.base + pos);
                        }
                        end = seg.base + pos;
                        break 'segments;
                    }
                }
            }
        }
        self.end = end;
        self.truncate_after(end)?;
        Ok(Recovered {
            records,
            end,
            discarded_from: damaged,
            walked_from,
        })
    }

    /// Discards everything from `end` on: later segments are deleted, the tail of the segment
    /// holding `end` is zeroed (so that a later walk cannot mistake stale bytes for records).
    pub(super) fn truncate_after(&mut self, end: u64) -> Result<(), LogError> {
        while self.segments.last().is_some_and(|last| last.base > end) {
            let last = self.segments.pop().expect("checked");
            drop(last.file);
            std::fs::remove_file(&last.path).map_err(io(&last.path))?;
        }
        if let Some(seg) = self
            .segments
            .iter()
            .find(|s| s.base <= end && end < s.base + self.segment_size)
        {
            let from = end - seg.base;
            let len = self.segment_size - from;
            if len > 0 {
                files::zero_range(&seg.file, from, len).map_err(io(&seg.path))?;
                durable::sync_file(&seg.file, &seg.path).map_err(io(&seg.path))?;
            }
        }
        Ok(())
    }
}

/// Positioned reads of a segment through a window of at least 4 MiB, moved forward as a walk
/// asks for later bytes.
struct ChunkReader<'a> {
    file: &'a File,
    /// The segment's size: no window reaches past it.
    size: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> ChunkReader<'a> {
    const CHUNK: usize = 4 << 20;

    fn new(file: &'a File, size: u64) -> Self {
        ChunkReader {
            file,
            size,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// `len` bytes at `at`, or `None` if the file ends before them.
    fn get(&mut self, at: u64, len: usize) -> std::io::Result<Option<&[u8]>> {
        let covered = at >= self.start && at + len as u64 <= self.start + self.buf.len() as u64;
        if !covered {
            self.buf.clear();
            let window = (Self::CHUNK as u64).min(self.size.saturating_sub(at)) as usize;
            self.buf.resize(len.max(window), 0);
            let mut done = 0;
            while done < self.buf.len() {
                let n = self.file.read_at(&mut self.buf[done..], at + done as u64)?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            self.buf.truncate(done);
            self.start = at;
        }
        let from = (at - self.start) as usize;
        Ok(self.buf.get(from..from + len))
    }
}
