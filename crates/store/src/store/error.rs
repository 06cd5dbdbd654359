//! Why a store operation failed.

use crate::commit_log::LogError;
use crate::consume_queue::QueueError;
use std::path::{Path, PathBuf};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The commit log.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A consume queue or index file (the error names it).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The disk is above `disk_full_ratio`: puts are refused until retention frees space
    /// (a broker answers SERVICE_NOT_AVAILABLE, 14).
    #[error("the disk is full ({:.0}% used): puts are refused until space is freed", .0 * 100.0)]
    DiskFull(f64),
    /// A background flush failed: what was acknowledged may not be durable, so the store
    /// takes no more writes until it is reopened (and recovery checks the log).
    #[error("a flush failed, writes are refused until the store is reopened: {0}")]
    FlushFailed(String),
    /// A put of no records.
    #[error("nothing to store")]
    Empty,
    /// The directory's files are inconsistent (segments of different sizes...).
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// The directory holds data of a Java feature this store does not implement (RocksDB,
    /// DLedger, tiered storage, timer messages still waiting): opening it would silently
    /// ignore that data. Names each file and the Java setting that wrote it.
    #[error("{0}")]
    Unsupported(String),
    /// Another process holds the store.
    #[error("{0}: the store is in use by another process (lock held)")]
    Locked(PathBuf),
    /// File I/O outside the log and queues.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// [`StoreError::Io`] at `path`, for `map_err` (as `files::io` and the log's own).
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
