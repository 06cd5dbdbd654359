//! What the store's file-backed parts share: the error of a file that cannot be used, and the
//! 20-digit file names Java gives segment files.

use std::path::{Path, PathBuf};

/// A store file or directory that failed or cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// File I/O failed (disk full, permissions...).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The directory holds something the store cannot use (a gap, a wrong size...).
    #[error("{path}: {reason}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Maps an I/O error on `path` to a [`FileError`].
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The 20-digit file name of a file starting at `base` (Java's `UtilAll.offset2FileName`).
pub fn segment_name(base: u64) -> String {
    format!("{base:020}")
}

/// The start offset a file name stands for, if it is a 20-digit name.
pub(crate) fn parse_segment_name(path: &Path) -> Option<u64> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.len() == 20)
        .and_then(|n| n.parse().ok())
}

/// Reserves disk blocks (`fallocate`) for the bytes of `file` up to `upto`, `ahead` more when
/// there is room (never past `size`), given that the first `reserved` bytes already have them.
/// Files written through a memory map need this: a store into a hole on a full disk is a
/// SIGBUS that kills the process; reserved first, a full disk is an error here instead.
/// Returns the new reserved length, or `None` where the filesystem has no `fallocate`.
pub(crate) fn reserve_blocks(
    file: &std::fs::File,
    path: &Path,
    reserved: u64,
    upto: u64,
    ahead: u64,
    size: u64,
) -> Result<Option<u64>, FileError> {
    if upto <= reserved {
        return Ok(Some(reserved));
    }
    let allocate = |to: u64| {
        rustix::fs::fallocate(
            file,
            rustix::fs::FallocateFlags::empty(),
            reserved,
            to - reserved,
        )
    };
    let to = (upto + ahead).min(size).max(upto);
    match allocate(to) {
        Ok(()) => Ok(Some(to)),
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(None),
        // No room for the chunk ahead: perhaps for what is needed now.
        Err(rustix::io::Errno::NOSPC) if to > upto => match allocate(upto) {
            Ok(()) => Ok(Some(upto)),
            Err(e) => Err(io(path)(e.into())),
        },
        Err(e) => Err(io(path)(e.into())),
    }
}

/// Zeroes `len` bytes of `file` from `from`: by punching a hole, which reads back as zeros and
/// frees blocks instead of needing them (the one way to cut a file on a full disk: writing
/// zeros there fails with ENOSPC), or by writing zeros where holes are not supported.
pub(crate) fn zero_range(file: &std::fs::File, from: u64, len: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let punch = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
    match rustix::fs::fallocate(file, punch, from, len) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {} // no holes here: write the zeros
        Err(e) => return Err(e.into()),
    }
    const CHUNK: usize = 64 * 1024;
    let zeros = [0u8; CHUNK];
    let mut at = from;
    let end = from + len;
    while at < end {
        let n = ((end - at) as usize).min(CHUNK);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
