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
