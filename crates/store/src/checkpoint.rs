//! The `checkpoint` file: Java's 4,096-byte page (spec §1.8) and, in bytes Java never touches,
//! rmq's dispatch mark.
//!
//! Java's part (big-endian i64s): physicMsgTimestamp, logicsMsgTimestamp, indexMsgTimestamp,
//! masterFlushedOffset, confirmPhyOffset. A crash recovery starts its commit-log walk from
//! their store time (Java's rule, kept for stores Java wrote).
//!
//! rmq's mark (at [`MARK_AT`]):
//! - the dispatch mark: the commit-log offset below which every record's consume-queue entry
//!   is durable, written only after the fsyncs that made it so. Recovery trusts the queues
//!   below it and rebuilds them from the log from it: a time is not enough, since a queue
//!   holds entries in memory for its own reasons and another queue can be further along;
//! - where records start carrying the whole-record CRC property (`enabledAppendPropCRC`):
//!   recovery requires it from there on and verifies it wherever present, so turning the
//!   setting on for an existing store never makes its older records look damaged.
//!
//! The mark carries a copy of the physic timestamp it was written with and a CRC: a
//! checkpoint Java rewrote since (its timestamp differs) or a torn one has no mark, and
//! recovery falls back to Java's rule (and requires no CRC property).

use crate::durable;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file's size (Java maps one OS page).
const PAGE: usize = 4096;
/// Where rmq's mark starts: after Java's five fields (40 bytes), in bytes Java leaves alone.
const MARK_AT: usize = 64;
/// "rmqD", version 1.
const MARK_MAGIC: [u8; 8] = *b"rmqD\0\0\0\x01";
/// magic (8) + physic copy (8) + dispatched offset (8) + CRC-from offset (8, `u64::MAX`: none)
/// + CRC32 of those (4).
const MARK_LEN: usize = 36;

/// rmq's part of the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// Every record before this commit-log offset has its queue entry on disk.
    pub dispatched: u64,
    /// Records from this commit-log offset on carry the whole-record CRC property (`None`:
    /// none is required to).
    pub crc_from: Option<u64>,
}

/// What a checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// physicMsgTimestamp: the store time of the last commit-log record flushed (ms).
    pub physic_ms: i64,
    /// logicsMsgTimestamp: the store time of the last record whose queue entry was flushed.
    pub logics_ms: i64,
    /// indexMsgTimestamp.
    pub index_ms: i64,
    /// masterFlushedOffset (HA: the master's flushed offset).
    pub master_flushed_offset: i64,
    /// confirmPhyOffset.
    pub confirm_phy_offset: i64,
    /// rmq's mark; `None` when absent, torn, or older than Java's fields.
    pub mark: Option<Mark>,
}

impl Checkpoint {
    /// Reads the checkpoint at `path` (ours or Java's); `None` when missing or shorter than
    /// Java's five fields.
    pub fn read(path: &Path) -> Option<Checkpoint> {
        let page = std::fs::read(path).ok()?;
        let at = |o: usize| -> Option<i64> {
            Some(i64::from_be_bytes(page.get(o..o + 8)?.try_into().ok()?))
        };
        let physic_ms = at(0)?;
        let mark = page
            .get(MARK_AT..MARK_AT + MARK_LEN)
            .and_then(|m| decode_mark(m, physic_ms));
        Some(Checkpoint {
            physic_ms,
            logics_ms: at(8)?,
            index_ms: at(16)?,
            master_flushed_offset: at(24)?,
            confirm_phy_offset: at(32)?,
            mark,
        })
    }

    /// The store time up to which records were flushed: the smaller of the physic and logics
    /// timestamps (Java's `getMinTimestamp` without the margin, which the commit log applies);
    /// `None` when not set.
    pub fn flushed_time(&self) -> Option<i64> {
        let t = self.physic_ms.min(self.logics_ms);
        (t > 0).then_some(t)
    }
}

fn decode_mark(m: &[u8], physic_ms: i64) -> Option<Mark> {
    let crc = u32::from_be_bytes(m[32..36].try_into().ok()?);
    if m[..8] != MARK_MAGIC || crc32fast::hash(&m[..32]) != crc {
        return None;
    }
    let u64_at = |o: usize| u64::from_be_bytes(m[o..o + 8].try_into().expect("8 bytes"));
    (u64_at(8) as i64 == physic_ms).then(|| Mark {
        dispatched: u64_at(16),
        crc_from: Some(u64_at(24)).filter(|&o| o != u64::MAX),
    })
}

/// Writes the checkpoint at `path` and syncs it: Java's three timestamps all `store_time`
/// (index headers are written at the flush this follows, so the index covers the same time;
/// a Java broker recovering from a crash deletes index files that end after
/// indexMsgTimestamp: 0 there would cost it every index file), and rmq's mark. Written last
/// in a flush: it claims what the flush made durable. A plain I/O error, so that this module
/// sits below the store (which names the file in its own error).
pub(crate) fn write(path: &Path, store_time: i64, mark: Mark) -> std::io::Result<()> {
    let m = mark;
    let mut page = [0u8; PAGE];
    page[..8].copy_from_slice(&store_time.to_be_bytes());
    page[8..16].copy_from_slice(&store_time.to_be_bytes());
    page[16..24].copy_from_slice(&store_time.to_be_bytes());
    let mark = &mut page[MARK_AT..MARK_AT + MARK_LEN];
    mark[..8].copy_from_slice(&MARK_MAGIC);
    mark[8..16].copy_from_slice(&store_time.to_be_bytes());
    mark[16..24].copy_from_slice(&m.dispatched.to_be_bytes());
    mark[24..32].copy_from_slice(&m.crc_from.unwrap_or(u64::MAX).to_be_bytes());
    let crc = crc32fast::hash(&mark[..32]);
    mark[32..36].copy_from_slice(&crc.to_be_bytes());
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    f.write_all_at(&page, 0)?;
    durable::sync_file(&f, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_survives_a_round_trip_and_is_dropped_when_java_rewrites_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        assert_eq!(Checkpoint::read(&path), None);
        let mark = Mark {
            dispatched: 123_456,
            crc_from: Some(4096),
        };
        write(&path, 1_700_000_000_000, mark).unwrap();
        let c = Checkpoint::read(&path).unwrap();
        assert_eq!(c.physic_ms, 1_700_000_000_000);
        assert_eq!(c.flushed_time(), Some(1_700_000_000_000));
        assert_eq!(c.mark, Some(mark));
        let none = Mark {
            crc_from: None,
            ..mark
        };
        write(&path, 1_700_000_000_000, none).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap().mark, Some(none));
        // Java rewrites its fields in place and leaves the rest of the page: the mark no
        // longer matches the physic timestamp and is ignored.
        let f = File::options().write(true).open(&path).unwrap();
        f.write_all_at(&1_700_000_009_999i64.to_be_bytes(), 0)
            .unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap().mark, None);
        // A damaged mark is ignored too.
        write(&path, 5, mark).unwrap();
        f.write_all_at(&[0xFF], (MARK_AT + 20) as u64).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap().mark, None);
        // Java's own page (40 bytes of fields, zeros after): no mark.
        let mut java = [0u8; PAGE];
        java[..8].copy_from_slice(&9i64.to_be_bytes());
        std::fs::write(&path, java).unwrap();
        let c = Checkpoint::read(&path).unwrap();
        assert_eq!((c.physic_ms, c.mark), (9, None));
    }
}
