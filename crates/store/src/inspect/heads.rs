//! Reads of the record fields a consume-queue entry is checked against, straight from the
//! segment files (no lock, nothing written): the fixed header, the topic and the properties.

use crate::layout::{self, Layout};
use crate::record::{self, BLANK_MAGIC};
use std::fs::File;
use std::path::Path;

/// The fields of a record an entry is checked against.
pub(super) struct Head<'a> {
    pub(super) size: u64,
    pub(super) queue_id: i32,
    pub(super) queue_offset: i64,
    pub(super) physical_offset: i64,
    pub(super) topic: &'a str,
    pub(super) properties: &'a str,
}

/// Bytes read at a record's start: the whole of most records, the fixed header of any.
const HEAD_WINDOW: u64 = 1024;

/// Reads the parts of records that entries are checked against (the fixed header, the topic
/// and the properties), one positioned read per record, two when it is larger than
/// [`HEAD_WINDOW`] (the topic and properties follow the body, which is not read: the segment
/// walk checked its CRC). One segment file is open at a time.
pub(super) struct RecordHeads {
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
    pub(super) fn new(root: &Path, l: &Layout) -> Self {
        RecordHeads {
            dir: root.join("commitlog"),
            segments: l.segments.clone(),
            open: None,
            window: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// Reads the bytes at commit-log offset `at` into the window (at most [`HEAD_WINDOW`],
    /// never past its segment), opening its segment first; returns `at`'s place in its
    /// segment and the segment's length.
    fn read_window(&mut self, at: u64) -> Result<(u64, u64), String> {
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
        Ok((within, len))
    }

    /// The record at commit-log offset `at`, or what is there instead.
    pub(super) fn read(&mut self, at: u64) -> Result<Head<'_>, String> {
        use std::os::unix::fs::FileExt;
        let (within, len) = self.read_window(at)?;
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
            let Some((_, f)) = &self.open else {
                return Err("no segment open".into());
            };
            self.tail.resize(total - tail_at, 0);
            f.read_exact_at(&mut self.tail, within + tail_at as u64)
                .map_err(|e| format!("read failed: {e}"))?;
            &self.tail
        };
        let t = Tail::parse(tail, magic == record::MAGIC_V2).ok_or_else(short)?;
        let computed = record::record_len(
            born,
            store,
            tail_at - body_at,
            t.topic.len(),
            t.topic_len_bytes,
            t.properties.len(),
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
            topic: std::str::from_utf8(t.topic).map_err(|_| "a topic that is not UTF-8")?,
            properties: std::str::from_utf8(t.properties)
                .map_err(|_| "properties that are not UTF-8")?,
        })
    }
}

/// The topic and the properties at the end of a record, after its body.
struct Tail<'a> {
    /// 2 for a MAGIC_V2 record's topic length, else 1.
    topic_len_bytes: usize,
    topic: &'a [u8],
    properties: &'a [u8],
}

impl<'a> Tail<'a> {
    /// `None` when a length is negative or runs past `tail`.
    fn parse(tail: &'a [u8], v2: bool) -> Option<Tail<'a>> {
        let topic_len_bytes = if v2 { 2 } else { 1 };
        let topic_len = if v2 {
            tail.get(..2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]) as i64)
        } else {
            tail.first().map(|b| *b as i8 as i64)
        };
        let topic_len = usize::try_from(topic_len?).ok()?;
        let topic_end = topic_len_bytes + topic_len;
        let topic = tail.get(topic_len_bytes..topic_end)?;
        let props_len = tail
            .get(topic_end..topic_end + 2)
            .and_then(|b| usize::try_from(i16::from_be_bytes([b[0], b[1]])).ok())?;
        let properties = tail.get(topic_end + 2..topic_end + 2 + props_len)?;
        Some(Tail {
            topic_len_bytes,
            topic,
            properties,
        })
    }
}
