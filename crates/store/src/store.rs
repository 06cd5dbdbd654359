//! The message store: the commit log, the consume queues built from it, and the lock that keeps
//! a second process out, in Java's directory layout (spec §1.1):
//!
//! ```text
//! <root>/lock
//! <root>/commitlog/00000000000000000000 ...
//! <root>/consumequeue/<topic>/<queueId>/00000000000000000000 ...
//! ```
//!
//! A put appends the record to the commit log (assigning its queue offset) and dispatches it to
//! its consume queue in the same call. At open, consume queues are recovered, entries pointing
//! past the recovered commit log are dropped, and records the queues lack are dispatched again
//! (Java's reput), so the queues can always be rebuilt from the log.
//!
//! Blocking file I/O: run it on a dedicated thread or `spawn_blocking`.
//!
//! `MessageStore` owns the state; each responsibility is a module of its own:
//! - `open` takes the lock, adopts the directory's file sizes and recovers
//!   (the commit log's walk, then `recovery` of the consume queues from the dispatch mark);
//! - `put` appends and `dispatch` writes the queue entry and index keys;
//! - `read` is the one read path of a queue ([`MessageStore::get_message`]) and the
//!   offset and time queries; `query` finds records by key or physical offset;
//! - [`flush`] is the write-behind policy: which buffers hold written data, and which call
//!   makes what durable ([`MessageStore::sync_log`], [`MessageStore::sync_all`],
//!   [`MessageStore::take_sync_job`]);
//! - `retention` deletes expired segments and what pointed into them.

mod config;
mod dispatch;
mod error;
pub mod flush;
mod open;
mod put;
mod query;
mod queues;
mod read;
mod recovery;
mod retention;

pub use config::{
    parse_delay_levels, parse_delete_when, Retention, StoreConfig, DEFAULT_DELAY_LEVELS,
    SCHEDULE_TOPIC,
};
pub use error::StoreError;
pub use flush::{LogSync, SyncJob};
pub use put::PutResult;
pub use query::{KeyHits, MAX_KEY_HITS};
pub use read::{GetMessage, GetStatus};
pub use retention::{disk_space, disk_used_ratio, CleanReport};

use crate::commit_log::{CommitLog, Recovered};
use crate::index::Indexes;
use dispatch::Undispatched;
use queues::Queues;
use std::fs::File;
use std::path::Path;

/// The message store.
pub struct MessageStore {
    config: StoreConfig,
    log: CommitLog,
    queues: Queues,
    /// The key index (`None` when `message_index` is off).
    indexes: Option<Indexes>,
    /// Held for the store's lifetime: the OS lock keeps other processes out.
    _lock: File,
    /// What recovery found at open.
    recovered: Recovered,
    /// Flushes done (fsync rounds), for group-commit accounting.
    flushes: u64,
    /// Store time of the last record put (for the checkpoint).
    last_store_time: i64,
    /// The store time the last flush job covered: an idle store hands out empty jobs.
    job_store_time: i64,
    /// The dispatch mark the last flush job wrote.
    job_dispatched: u64,
    /// Whether the last run stopped cleanly (no abort marker at open).
    clean_stop: bool,
    /// Set by a retention round that found the disk above `disk_full_ratio`: the usage.
    disk_full: Option<f64>,
    /// The last appended record while its dispatch has not completed.
    undispatched: Option<Undispatched>,
    /// Set by the first failed flush (fsync): writes are refused until the store is reopened.
    write_failure: Option<String>,
    /// Records from this commit-log offset on carry the whole-record CRC property (kept in
    /// the checkpoint for recovery).
    crc_from: Option<u64>,
    /// The end of the commit log the last fsync covered: under SYNC_FLUSH reads stop there
    /// ([`MessageStore::readable_end`]), so a consumer never reads (and commits an offset
    /// past) a put that is not yet acknowledged and could vanish with a power loss.
    synced_end: u64,
}

impl MessageStore {
    /// The (commit-log segment, consume-queue file) sizes in use: the configured ones, or those
    /// of the files found at open.
    pub fn file_sizes(&self) -> (u64, u64) {
        (
            self.config.commit_log_segment_size,
            self.config.consume_queue_file_size,
        )
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// How often the `rmq-store` thread runs a retention round.
    pub fn retention_interval(&self) -> std::time::Duration {
        self.config.retention.interval
    }

    /// What recovery found in the commit log at open.
    pub fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// Whether the previous run stopped cleanly (no abort marker was found at open).
    pub fn last_stop_was_clean(&self) -> bool {
        self.clean_stop
    }
}

impl Drop for MessageStore {
    /// A clean stop: everything made durable ([`MessageStore::sync_all`]), then the abort
    /// marker removed.
    fn drop(&mut self) {
        if self.sync_all().is_ok() {
            let _ = std::fs::remove_file(self.config.root.join("abort"));
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// True if `root` looks like a store directory (has a commit log).
pub fn is_store(root: &Path) -> bool {
    root.join("commitlog").is_dir()
}
