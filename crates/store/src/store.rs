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

mod recovery;

use crate::checkpoint::{self, Checkpoint, Mark};
use crate::commit_log::{CommitLog, LastStop, LogError, Recovered};
use crate::consume_queue::{ConsumeQueue, QueueError};
use crate::durable;
use crate::index::{self, Indexes};
use crate::queue_entry::{tags_code, QueueEntry};
use crate::record::{self, Record};
use bytes::Bytes;
use recovery::RebuildFrom;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Store settings (Java's property names in the comments).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `storePathRootDir`.
    pub root: PathBuf,
    /// `mappedFileSizeCommitLog` (1 GiB in Java).
    pub commit_log_segment_size: u64,
    /// `mappedFileSizeConsumeQueue` (300,000 entries x 20 bytes).
    pub consume_queue_file_size: u64,
    /// Fsync after every put (SYNC_FLUSH; `StoreService` groups them).
    pub sync_flush: bool,
    /// Records carry Java's whole-record CRC property (`enabledAppendPropCRC`, `__CRC32#`), so
    /// recovery detects a torn or damaged record anywhere in it, not only in the body and the
    /// lengths. On by default (Java: off); consumers see the extra property, as with a Java
    /// broker that enables it. Off: records byte-identical to a Java broker's defaults.
    pub whole_record_crc: bool,
    /// `messageIndexEnable`: index records by key and UNIQ_KEY (QUERY_MESSAGE).
    pub message_index: bool,
    /// `maxHashSlotNum` of an index file.
    pub index_slot_num: u32,
    /// `maxIndexNum`: entries per index file.
    pub index_num: u32,
    /// When and what retention deletes (Java's `CleanCommitLogService` settings).
    pub retention: Retention,
    /// The delay of each level in ms (`messageDelayLevel`): SCHEDULE_TOPIC_XXXX entries carry
    /// `store time + delay` as their tags code.
    pub delay_levels_ms: Vec<i64>,
    /// A put stamps the record's store time (the wall clock, never earlier than the last
    /// put's), as Java does in its put lock. Off: the caller's store time is kept (tests and
    /// tools that replay records with their times).
    pub stamp_store_time: bool,
}

/// The topic delayed messages wait in, one queue per level.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Java's default `messageDelayLevel`.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// Parses a `messageDelayLevel` value (`1s 5s 1m 2h 1d`) into ms per level; `None` if a level
/// does not parse.
pub fn parse_delay_levels(s: &str) -> Option<Vec<i64>> {
    s.split_whitespace()
        .map(|l| {
            let unit = match l.chars().last()? {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => return None,
            };
            l[..l.len() - 1].parse::<i64>().ok().map(|n| n * unit)
        })
        .collect()
}

/// Retention settings (spec §1.14), Java's names and defaults.
#[derive(Debug, Clone)]
pub struct Retention {
    /// `fileReservedTime` (72 h): a commit-log segment last modified longer ago is expired.
    pub file_reserved: std::time::Duration,
    /// `deleteWhen` (`"04"`): the hours (UTC here; Java: local time) at which expired
    /// segments are deleted.
    pub delete_when: Vec<u32>,
    /// `diskMaxUsedSpaceRatio` (0.75): above it, expired segments are deleted at any hour.
    pub disk_max_used_ratio: f64,
    /// `diskSpaceCleanForciblyRatio` (0.85): above it, the oldest segments are deleted even
    /// when not expired.
    pub clean_forcibly_ratio: f64,
    /// `diskSpaceWarningLevelRatio` (0.90): above it, puts are refused
    /// ([`StoreError::DiskFull`]) until usage drops.
    pub disk_full_ratio: f64,
    /// `deleteFileBatchMax` (10): segments deleted per round at most.
    pub batch_max: usize,
    /// `cleanResourceInterval` (10 s): how often `StoreService` runs a round.
    pub interval: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            file_reserved: std::time::Duration::from_secs(72 * 3600),
            delete_when: vec![4],
            disk_max_used_ratio: 0.75,
            clean_forcibly_ratio: 0.85,
            disk_full_ratio: 0.90,
            batch_max: 10,
            interval: std::time::Duration::from_secs(10),
        }
    }
}

/// Parses Java's `deleteWhen` (`;`-separated hours, e.g. `"04"` or `"01;13"`); parts that
/// are not hours are ignored, as Java's `isItTimeToDo` ignores them.
pub fn parse_delete_when(s: &str) -> Vec<u32> {
    s.split(';')
        .filter_map(|h| h.trim().parse().ok())
        .filter(|h| *h < 24)
        .collect()
}

/// What a retention round did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CleanReport {
    /// Commit-log segments deleted.
    pub deleted: usize,
    /// The disk usage the round was decided on.
    pub disk_used: f64,
    /// Whether puts are refused now.
    pub disk_full: bool,
}

/// The used fraction of the filesystem holding `path` (Java: `(total - free) / total`).
pub fn disk_used_ratio(path: &Path) -> std::io::Result<f64> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    if st.f_blocks == 0 {
        return Ok(0.0);
    }
    Ok((st.f_blocks - st.f_bfree.min(st.f_blocks)) as f64 / st.f_blocks as f64)
}

/// (total, free) bytes of the filesystem holding `path` (`commitLogDirCapacity`).
pub fn disk_space(path: &Path) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok((st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize))
}

impl StoreConfig {
    /// Java's sizes under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            commit_log_segment_size: 1 << 30,
            consume_queue_file_size: crate::consume_queue::DEFAULT_FILE_SIZE,
            sync_flush: false,
            whole_record_crc: true,
            message_index: true,
            index_slot_num: 5_000_000,
            index_num: 20_000_000,
            retention: Retention::default(),
            delay_levels_ms: parse_delay_levels(DEFAULT_DELAY_LEVELS).unwrap_or_default(),
            stamp_store_time: true,
        }
    }
}

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

/// What a put stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    /// Commit-log offset of the record.
    pub physical_offset: u64,
    /// Its size.
    pub size: u32,
    /// Its consume-queue offset.
    pub queue_offset: u64,
}

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
}

/// A record in the commit log whose consume-queue entry or index keys failed to be written.
struct Undispatched {
    record: Box<Record>,
    offset: u64,
    size: u32,
    /// The queue entry is written (only the index is left).
    queued: bool,
}

impl MessageStore {
    /// Opens the store under `config.root`, taking its lock, recovering the commit log and the
    /// consume queues, and dispatching records the queues lack.
    pub fn open(mut config: StoreConfig) -> Result<MessageStore, StoreError> {
        let root = config.root.clone();
        durable::create_dir(&root).map_err(|source| StoreError::Io {
            path: root.clone(),
            source,
        })?;
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                path: lock_path.clone(),
                source,
            })?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(root));
        }
        // Java's broker locks byte 0 of the same file with fcntl (FileChannel.tryLock), a lock
        // flock does not see: take that kind too, so a Java broker and rmq never share a store.
        if rustix::fs::fcntl_lock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .is_err()
        {
            return Err(StoreError::Locked(root));
        }
        // A Java broker's directory: data of a feature not implemented here stops the open
        // before anything is written, and files written with other sizes (64 MiB segments,
        // say) are opened with the sizes they have, not the configured ones.
        let found = crate::layout::survey(&root)?;
        if let Some(why) = found.refusals() {
            return Err(StoreError::Unsupported(why));
        }
        if found.timer_files {
            tracing::info!(
                "timer-wheel files found with no timer message waiting: left as they are"
            );
        }
        for (what, configured, found) in [
            (
                "mappedFileSizeCommitLog",
                &mut config.commit_log_segment_size,
                found.commit_log_segment_size,
            ),
            (
                "mappedFileSizeConsumeQueue",
                &mut config.consume_queue_file_size,
                found.consume_queue_file_size,
            ),
        ] {
            if let Some(size) = found.filter(|s| s != configured) {
                tracing::info!(
                    setting = what,
                    configured = *configured,
                    found = size,
                    "the store's files have another size than configured: using theirs"
                );
                *configured = size;
            }
        }
        // Java's abort marker: present while the store runs; still there at open means the last
        // run did not stop cleanly.
        let abort = root.join("abort");
        let clean_stop = !abort.exists();
        // Synced: a power loss that lost the marker would make the next open take a crash for
        // a clean stop and walk only the last segment.
        write_synced(&abort, std::process::id().to_string().as_bytes())?;
        durable::sync_dir(&root).map_err(|source| StoreError::Io {
            path: root.clone(),
            source,
        })?;
        let checkpoint = Checkpoint::read(&root.join("checkpoint"));
        let flushed_time = checkpoint.and_then(|c| c.flushed_time());
        let last_stop = if clean_stop {
            LastStop::Clean
        } else {
            LastStop::Crash {
                checkpoint: flushed_time,
            }
        };
        let mark = checkpoint.and_then(|c| c.mark);
        let (mut log, recovered) = CommitLog::open_checked(
            &root.join("commitlog"),
            config.commit_log_segment_size,
            config.whole_record_crc,
            mark.and_then(|m| m.crc_from),
            last_stop,
        )?;
        // Where records carry the whole-record CRC from: kept from the last run, or from
        // here on when the setting is new (older records are verified where they carry it).
        let crc_from = config.whole_record_crc.then(|| {
            mark.and_then(|m| m.crc_from)
                .map_or(log.end(), |from| from.min(log.end()))
        });
        log.set_mapped_writes(!config.sync_flush);
        let indexes = if config.message_index {
            Some(Indexes::open(
                &root.join("index"),
                config.index_slot_num,
                config.index_num,
            )?)
        } else {
            None
        };
        let mut store = MessageStore {
            queues: Queues::default(),
            indexes,
            _lock: lock,
            recovered,
            log,
            config,
            flushes: 0,
            // Until a put, flushes keep the checkpoint's time (not 0, which would make the
            // next crash recovery walk every segment).
            last_store_time: flushed_time.unwrap_or(0),
            job_store_time: i64::MIN,
            job_dispatched: u64::MAX,
            clean_stop,
            disk_full: None,
            undispatched: None,
            write_failure: None,
            crc_from,
        };
        // The queues are trusted up to the checkpoint's dispatch mark and rebuilt from the
        // log from there; without a mark, from where a clean stop left them, or after a
        // crash from where Java's rule starts the log's walk.
        let from = match (mark.map(|m| m.dispatched), clean_stop) {
            (Some(offset), clean) => RebuildFrom::Mark {
                offset,
                verify: !clean,
            },
            (None, true) => RebuildFrom::QueuesEnd,
            (None, false) => RebuildFrom::Mark {
                offset: store.recovered.walked_from,
                verify: true,
            },
        };
        let trusted = store.recover_queues(from)?;
        // The checkpoint says from the start where records carry the CRC property (the
        // setting may have changed); the dispatch mark is where the rebuild started, which
        // every queue holds up to on disk.
        checkpoint::write(
            &store.config.root.join("checkpoint"),
            store.last_store_time,
            Mark {
                dispatched: trusted,
                crc_from: store.crc_from,
            },
        )?;
        Ok(store)
    }

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

    /// How often the store thread runs a retention round.
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

    fn queue(&mut self, topic: &str, queue_id: i32) -> Result<&mut ConsumeQueue, StoreError> {
        open_queue(&mut self.queues, &self.config, topic, queue_id)
    }

    /// Dispatches the record appended last if a failure (a full disk...) left it undispatched:
    /// until that succeeds no other put is taken, since the next one would get the same queue
    /// offset. Each step runs once: the queue entry (idempotent anyway), then the index.
    fn finish_dispatch(&mut self) -> Result<(), StoreError> {
        let Some(mut u) = self.undispatched.take() else {
            return Ok(());
        };
        let props = record::DispatchProperties::of(&u.record.properties);
        let result = (|| {
            if !u.queued {
                self.dispatch_queue(&u.record, &props, u.offset, u.size)?;
                u.queued = true;
            }
            self.dispatch_index(&u.record, &props, u.offset)
        })();
        if result.is_err() {
            self.undispatched = Some(u);
        }
        result
    }

    fn dispatch_index(
        &mut self,
        r: &Record,
        props: &record::DispatchProperties<'_>,
        physical_offset: u64,
    ) -> Result<(), StoreError> {
        if let Some(ix) = &mut self.indexes {
            ix.put_hashes(
                index::raw_keys(r.sys_flag, props.uniq_key, props.keys)
                    .map(|k| index::topic_key_hash(&r.topic, k)),
                physical_offset as i64,
                r.store_timestamp,
            )?;
        }
        Ok(())
    }

    fn dispatch_queue(
        &mut self,
        r: &Record,
        props: &record::DispatchProperties<'_>,
        physical_offset: u64,
        size: u32,
    ) -> Result<(), StoreError> {
        let entry = queue_entry(&self.config, r, props, physical_offset, size);
        let q = self.queue(&r.topic, r.queue_id)?;
        q.put(r.queue_offset.max(0) as u64, entry)?;
        Ok(())
    }

    /// Stores `record` in its topic queue: the queue offset is assigned here (the next one of
    /// that queue), the physical offset by the commit log. With `sync_flush`, returns after the
    /// fsync that covers it.
    pub fn put(&mut self, record: Record) -> Result<PutResult, StoreError> {
        let put = self.put_unflushed(record)?;
        if self.config.sync_flush {
            self.flush_log()?;
        }
        Ok(put)
    }

    /// [`MessageStore::put`] without SYNC_FLUSH's fsync, for a caller that commits a group of
    /// puts with one [`MessageStore::flush_log`] before acknowledging any of them (the store
    /// thread's group commit).
    pub fn put_unflushed(&mut self, mut record: Record) -> Result<PutResult, StoreError> {
        if let Some(why) = &self.write_failure {
            return Err(StoreError::FlushFailed(why.clone()));
        }
        if let Some(used) = self.disk_full {
            return Err(StoreError::DiskFull(used));
        }
        self.finish_dispatch()?;
        // One lookup of the queue serves the offset and the entry.
        let q = open_queue(
            &mut self.queues,
            &self.config,
            &record.topic,
            record.queue_id,
        )?;
        let queue_offset = q.max_offset();
        record.queue_offset = queue_offset as i64;
        if self.config.stamp_store_time {
            // Stamped here, in log order (Java stamps inside its put lock), never going back:
            // the times along a queue and the log are sorted, which the checkpoint's recovery
            // rule and SEARCH_OFFSET_BY_TIMESTAMP's binary search rely on.
            record.store_timestamp = now_ms().max(self.last_store_time);
        }
        self.last_store_time = record.store_timestamp;
        let appended = self.log.append_mut(&mut record)?;
        // The record is in the log: the put succeeded (as in Java, where dispatch runs behind
        // the append). A dispatch failure is retried by the next put or flush, and refuses
        // puts until it succeeds.
        let props = record::DispatchProperties::of(&record.properties);
        let entry = queue_entry(
            &self.config,
            &record,
            &props,
            appended.offset,
            appended.size,
        );
        let failed = match q.put(queue_offset, entry) {
            Err(e) => Some((false, StoreError::from(e))),
            Ok(()) => self
                .dispatch_index(&record, &props, appended.offset)
                .err()
                .map(|e| (true, e)),
        };
        if let Some((queued, e)) = failed {
            tracing::warn!(error = %e, offset = appended.offset, "dispatch failed; retried on the next put or flush");
            self.undispatched = Some(Undispatched {
                record: Box::new(record),
                offset: appended.offset,
                size: appended.size,
                queued,
            });
        }
        Ok(PutResult {
            physical_offset: appended.offset,
            size: appended.size,
            queue_offset,
        })
    }

    /// Makes every put so far durable: the commit log alone (Java's SYNC_FLUSH does the same),
    /// since the consume queues are rebuilt from it at open.
    pub fn flush_log(&mut self) -> Result<(), StoreError> {
        self.flushes += 1;
        self.log.flush().map_err(|e| self.flush_failed(e.into()))
    }

    /// Records a failed flush: from now on writes are refused until the store is reopened.
    /// After a failed fsync the kernel may have dropped the dirty pages it could not write and
    /// report the next fsync as a success (the PostgreSQL fsync lesson): nothing written
    /// after it could be acknowledged as durable. Reopening recovers from what is on disk.
    pub fn flush_failed(&mut self, e: StoreError) -> StoreError {
        if self.write_failure.is_none() {
            let why = match &e {
                StoreError::FlushFailed(why) => why.clone(),
                other => other.to_string(),
            };
            tracing::error!(error = %why, "a flush failed: the store refuses writes until it is reopened");
            self.write_failure = Some(why);
        }
        e
    }

    /// Why writes are refused, if a flush failed (for the broker's status and metrics).
    pub fn write_failure(&self) -> Option<&str> {
        self.write_failure.as_deref()
    }

    /// rmq's checkpoint mark as of now: every record's queue entry is written before the log's
    /// end, or before the record whose dispatch is still failing.
    fn mark(&self) -> Mark {
        let dispatched = match &self.undispatched {
            Some(u) if !u.queued => u.offset,
            _ => self.log.end(),
        };
        Mark {
            dispatched,
            crc_from: self.crc_from,
        }
    }

    /// Makes everything durable, the consume queues too (periodic flushes, shutdown), and
    /// records the store time reached in the checkpoint.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self.finish_dispatch() {
            tracing::warn!(error = %e, "dispatch still failing");
        }
        self.flushes += 1;
        let mark = self.mark();
        let flushed = (|| {
            self.log.flush()?;
            for q in self.queues.values_mut() {
                q.flush()?;
            }
            if let Some(ix) = &mut self.indexes {
                ix.flush()?;
            }
            // Last: it claims what the flushes above made durable.
            checkpoint::write(
                &self.config.root.join("checkpoint"),
                self.last_store_time,
                mark,
            )
        })();
        flushed.map_err(|e| self.flush_failed(e))
    }

    /// What a flush would fsync, handed out so another thread can do it (the store thread
    /// goes on appending): every file written since the last flush (commit log, consume
    /// queues, the newest index file) and the checkpoint to write after them. Those files
    /// count as clean from here on: run the job, and treat its failure as fatal for writes.
    pub fn flush_job(&mut self) -> Result<FlushJob, StoreError> {
        if let Err(e) = self.finish_dispatch() {
            tracing::warn!(error = %e, "dispatch still failing");
        }
        let mark = self.mark();
        let mut files = self.log.take_dirty()?;
        let mut dirs = Vec::new();
        for q in self.queues.values_mut() {
            q.take_dirty(&mut files, &mut dirs)?;
        }
        dirs.sort();
        dirs.dedup();
        if files.is_empty()
            && dirs.is_empty()
            && self.job_store_time == self.last_store_time
            && self.job_dispatched == mark.dispatched
        {
            // Nothing written since the last job: nothing to fsync, no checkpoint to move (an
            // idle broker must not fsync twice a second).
            return Ok(FlushJob::default());
        }
        self.flushes += 1;
        let headers = match &mut self.indexes {
            Some(ix) => ix.prepare_flush(),
            None => Vec::new(),
        };
        files.extend(headers.iter().map(|h| h.path().to_owned()));
        self.job_store_time = self.last_store_time;
        self.job_dispatched = mark.dispatched;
        Ok(FlushJob {
            files,
            dirs,
            headers,
            checkpoint: Some(self.config.root.join("checkpoint")),
            store_time: self.last_store_time,
            mark,
        })
    }

    /// Flush rounds so far (each fsyncs what was written since the previous one).
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// The next queue offset of a queue (0 for a queue never written).
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queues
            .get(topic, queue_id)
            .map_or(0, |q| q.max_offset())
    }

    /// The first queue offset still held.
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queues
            .get(topic, queue_id)
            .map_or(0, |q| q.min_offset())
    }

    /// Retention (Java's `fileReservedTime`): deletes the commit log's oldest segments last
    /// modified more than `reserved` ago (never the one being written), then the consume-queue
    /// entries that pointed into them; min offsets move past what went. Returns the segments
    /// deleted.
    pub fn delete_expired(&mut self, reserved: std::time::Duration) -> Result<usize, StoreError> {
        self.delete_segments(reserved, false, usize::MAX)
    }

    /// One retention round (spec §1.14), decided on the UTC `hour` and the disk's `disk_used`
    /// fraction: expired segments go when the hour is in `delete_when` or the disk is above
    /// `disk_max_used_ratio`; above `clean_forcibly_ratio` the oldest go even when young; at
    /// most `batch_max`. Above `disk_full_ratio`, puts are refused until a round finds less.
    pub fn clean(&mut self, hour: u32, disk_used: f64) -> Result<CleanReport, StoreError> {
        let r = self.config.retention.clone();
        let full = disk_used > r.disk_full_ratio;
        if full && self.disk_full.is_none() {
            tracing::error!(used = disk_used, "disk full: puts refused");
        } else if !full && self.disk_full.is_some() {
            tracing::warn!(
                used = disk_used,
                "disk usage back under the limit: puts accepted"
            );
        }
        self.disk_full = full.then_some(disk_used);
        let forcibly = disk_used > r.clean_forcibly_ratio;
        let due = r.delete_when.contains(&hour) || disk_used > r.disk_max_used_ratio;
        let deleted = if due || forcibly {
            self.delete_segments(r.file_reserved, forcibly, r.batch_max)?
        } else {
            0
        };
        Ok(CleanReport {
            deleted,
            disk_used,
            disk_full: full,
        })
    }

    fn delete_segments(
        &mut self,
        reserved: std::time::Duration,
        forcibly: bool,
        max: usize,
    ) -> Result<usize, StoreError> {
        let now = std::time::SystemTime::now();
        let mut budget = max;
        let deleted = self.log.delete_oldest_segments(|meta| {
            let go = budget > 0
                && (forcibly
                    || meta
                        .modified()
                        .ok()
                        .and_then(|m| now.duration_since(m).ok())
                        .is_some_and(|age| age > reserved));
            budget = budget.saturating_sub(usize::from(go));
            go
        })?;
        if deleted > 0 {
            let start = self.log.start();
            for q in self.queues.values_mut() {
                q.drop_before_physical(start)?;
            }
            if let Some(ix) = &mut self.indexes {
                ix.delete_before(start as i64)?;
            }
            tracing::info!(
                segments = deleted,
                log_start = start,
                "expired commit-log segments deleted"
            );
        }
        Ok(deleted)
    }

    /// Drops a topic's consume queues, files included (DELETE_TOPIC_IN_BROKER); its records
    /// stay in the commit log until retention removes them. Returns the queues dropped.
    pub fn delete_topic(&mut self, topic: &str) -> Result<usize, StoreError> {
        let dropped = self.queues.remove_topic(topic);
        let dir = self.config.root.join("consumequeue").join(topic);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { path: dir, source }),
        }
        Ok(dropped)
    }

    /// The queue ids a topic has consume queues for, sorted.
    pub fn queue_ids(&self, topic: &str) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .queues
            .0
            .get(topic)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Commit-log (start, end) offsets.
    pub fn log_range(&self) -> (u64, u64) {
        (self.log.start(), self.log.end())
    }

    /// The store timestamp of the record at queue offset `offset` (SEARCH_OFFSET_BY_TIMESTAMP
    /// and GET_EARLIEST_MSG_STORETIME need it).
    pub fn store_time(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
    ) -> Result<Option<i64>, StoreError> {
        let Some(q) = self.queues.get(topic, queue_id) else {
            return Ok(None);
        };
        let Some(e) = q.get(offset)? else {
            return Ok(None);
        };
        if e.size == QueueEntry::PRE_BLANK.size {
            return Ok(None);
        }
        Ok(self
            .log
            .read(e.physical_offset as u64)?
            .map(|r| r.store_timestamp))
    }

    /// The first queue offset whose record was stored at or after `timestamp` (binary search
    /// over the queue, store times being non-decreasing along it); the max offset when none
    /// is. SEARCH_OFFSET_BY_TIMESTAMP.
    pub fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp: i64,
    ) -> Result<u64, StoreError> {
        let (mut lo, mut hi) = (
            self.min_offset(topic, queue_id),
            self.max_offset(topic, queue_id),
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.store_time(topic, queue_id, mid)? {
                Some(t) if t < timestamp => lo = mid + 1,
                Some(_) => hi = mid,
                // A pre-blank entry (no record): it precedes every real one.
                None => lo = mid + 1,
            }
        }
        Ok(lo)
    }

    /// Up to `max_msgs` stored records of a queue from queue offset `offset`, and up to
    /// `max_bytes` in total (at least one record when there is one), each as its exact stored
    /// bytes (a pull answer's body is these back to back). Entries whose tags code is not in
    /// `tag_codes` (when given) are skipped, as Java's broker-side filter does.
    pub fn get(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        tag_codes: Option<&[i64]>,
    ) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let Some(q) = self.queues.get(topic, queue_id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut at = offset.max(q.min_offset());
        let mut entries = EntryCursor::new(q);
        while at < q.max_offset() && out.len() < max_msgs {
            let Some(e) = entries.at(at)? else { break };
            at += 1;
            if e.size == QueueEntry::PRE_BLANK.size {
                continue;
            }
            if let Some(codes) = tag_codes {
                if !codes.contains(&e.tags_code) {
                    continue;
                }
            }
            if !out.is_empty() && bytes + e.size as usize > max_bytes {
                break;
            }
            let raw = self.log.read_raw(e.physical_offset as u64, e.size as u32)?;
            bytes += raw.len();
            out.push((at - 1, raw));
        }
        Ok(out)
    }
}

/// The queue of `topic`/`queue_id`, opened (or created) on first use. A function of the
/// fields it needs, so a put can hold it while appending to the commit log.
fn open_queue<'q>(
    queues: &'q mut Queues,
    config: &StoreConfig,
    topic: &str,
    queue_id: i32,
) -> Result<&'q mut ConsumeQueue, StoreError> {
    if queues.get(topic, queue_id).is_none() {
        let dir = config
            .root
            .join("consumequeue")
            .join(topic)
            .join(queue_id.to_string());
        let q = ConsumeQueue::open(&dir, config.consume_queue_file_size)?;
        queues.insert(topic.to_owned(), queue_id, q);
    }
    Ok(queues.get_mut(topic, queue_id).expect("just inserted"))
}

/// The consume-queue entry of a record: its tag hash code, or for a delayed record in
/// SCHEDULE_TOPIC_XXXX its delivery time (spec §1.5): store time plus its level's delay
/// (`DELAY` clamped to the table, as Java's `computeDeliverTimestamp`).
fn queue_entry(
    config: &StoreConfig,
    r: &Record,
    props: &record::DispatchProperties<'_>,
    physical_offset: u64,
    size: u32,
) -> QueueEntry {
    let tags_code = if r.topic == SCHEDULE_TOPIC {
        let levels = &config.delay_levels_ms;
        let level = props
            .delay
            .and_then(|d| d.parse::<usize>().ok())
            .unwrap_or(0)
            .min(levels.len());
        match level {
            0 => r.store_timestamp,
            l => r.store_timestamp + levels[l - 1],
        }
    } else {
        tags_code(props.tags)
    };
    QueueEntry {
        physical_offset: physical_offset as i64,
        size: size as i32,
        tags_code,
    }
}

/// The consume queues by topic, then queue id: a put finds its queue by `&str`, with no key
/// to allocate (a `(String, i32)` key cost an allocation and a hash of it per put).
#[derive(Default)]
struct Queues(HashMap<String, HashMap<i32, ConsumeQueue>>);

impl Queues {
    fn get(&self, topic: &str, queue_id: i32) -> Option<&ConsumeQueue> {
        self.0.get(topic)?.get(&queue_id)
    }

    fn get_mut(&mut self, topic: &str, queue_id: i32) -> Option<&mut ConsumeQueue> {
        self.0.get_mut(topic)?.get_mut(&queue_id)
    }

    fn insert(&mut self, topic: String, queue_id: i32, q: ConsumeQueue) {
        self.0.entry(topic).or_default().insert(queue_id, q);
    }

    fn values(&self) -> impl Iterator<Item = &ConsumeQueue> {
        self.0.values().flat_map(HashMap::values)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut ConsumeQueue> {
        self.0.values_mut().flat_map(HashMap::values_mut)
    }

    /// (topic, queue id, queue) of every queue.
    fn iter_mut(&mut self) -> impl Iterator<Item = (&str, i32, &mut ConsumeQueue)> {
        self.0
            .iter_mut()
            .flat_map(|(t, m)| m.iter_mut().map(move |(id, q)| (t.as_str(), *id, q)))
    }

    /// Forgets a topic's queues; how many there were.
    fn remove_topic(&mut self, topic: &str) -> usize {
        self.0.remove(topic).map_or(0, |m| m.len())
    }
}

/// Reads a queue's entries in windows of [`EntryCursor::WINDOW`] (one read each) for a walk
/// that goes forward one offset at a time.
struct EntryCursor<'q> {
    queue: &'q ConsumeQueue,
    window: Vec<QueueEntry>,
    start: u64,
}

impl<'q> EntryCursor<'q> {
    const WINDOW: usize = 64;

    fn new(queue: &'q ConsumeQueue) -> Self {
        EntryCursor {
            queue,
            window: Vec::new(),
            start: 0,
        }
    }

    /// The entry at `offset` (as [`ConsumeQueue::get`]).
    fn at(&mut self, offset: u64) -> Result<Option<QueueEntry>, QueueError> {
        let inside = offset >= self.start && offset < self.start + self.window.len() as u64;
        if !inside {
            self.window = self.queue.entries(offset, Self::WINDOW)?;
            self.start = offset;
        }
        Ok(self.window.get((offset - self.start) as usize).copied())
    }
}

/// Why a read found what it found (Java's `GetMessageStatus`, spec §1.15); the broker maps it
/// to a pull response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// At least one record.
    Found,
    /// Entries were examined, none passed the tag filter.
    NoMatchedMessage,
    /// The queue is empty (max offset 0).
    NoMessageInQueue,
    /// The offset is below the queue's min offset.
    OffsetTooSmall,
    /// The offset is the max offset: nothing new yet.
    OffsetOverflowOne,
    /// The offset is beyond the max offset.
    OffsetOverflowBadly,
    /// An entry points at commit-log data retention removed.
    MessageWasRemoving,
}

impl GetStatus {
    /// Java's name (a pull response's remark).
    pub fn name(self) -> &'static str {
        match self {
            GetStatus::Found => "FOUND",
            GetStatus::NoMatchedMessage => "NO_MATCHED_MESSAGE",
            GetStatus::NoMessageInQueue => "NO_MESSAGE_IN_QUEUE",
            GetStatus::OffsetTooSmall => "OFFSET_TOO_SMALL",
            GetStatus::OffsetOverflowOne => "OFFSET_OVERFLOW_ONE",
            GetStatus::OffsetOverflowBadly => "OFFSET_OVERFLOW_BADLY",
            GetStatus::MessageWasRemoving => "MESSAGE_WAS_REMOVING",
        }
    }
}

/// A read of one queue (Java's `GetMessageResult`).
#[derive(Debug, Clone)]
pub struct GetMessage {
    /// What the read found.
    pub status: GetStatus,
    /// Where the next read of this queue starts.
    pub next_begin_offset: u64,
    /// The queue's min offset.
    pub min_offset: u64,
    /// The queue's max offset.
    pub max_offset: u64,
    /// The records, each as its exact stored bytes, with its queue offset.
    pub records: Vec<(u64, Bytes)>,
    /// Their total size.
    pub bytes: usize,
}

/// Entries a read examines at most when a filter skips them (Java: `maxFilterMessageSize`
/// 16000 bytes of consume queue = 800 entries).
const MAX_FILTERED_ENTRIES: u64 = 800;

impl MessageStore {
    /// A pull's read (Java's `getMessage`, spec §1.15): the status rules on the queue's min
    /// and max, then up to `max_msgs` records and `max_bytes` (the first record always), tag
    /// filtered by `tag_codes` when given, examining at most 800 entries.
    pub fn get_message(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        tag_codes: Option<&[i64]>,
    ) -> Result<GetMessage, StoreError> {
        let (min, max) = (
            self.min_offset(topic, queue_id),
            self.max_offset(topic, queue_id),
        );
        let mut r = GetMessage {
            status: GetStatus::NoMessageInQueue,
            next_begin_offset: 0,
            min_offset: min,
            max_offset: max,
            records: Vec::new(),
            bytes: 0,
        };
        let q = match self.queues.get(topic, queue_id) {
            Some(q) if max > 0 => q,
            _ => return Ok(r),
        };
        if offset < min {
            r.status = GetStatus::OffsetTooSmall;
            r.next_begin_offset = min;
            return Ok(r);
        }
        if offset == max {
            r.status = GetStatus::OffsetOverflowOne;
            r.next_begin_offset = offset;
            return Ok(r);
        }
        if offset > max {
            r.status = GetStatus::OffsetOverflowBadly;
            r.next_begin_offset = max;
            return Ok(r);
        }
        let limit = offset + MAX_FILTERED_ENTRIES.max(max_msgs as u64);
        let mut at = offset;
        let mut removed = false;
        let mut entries = EntryCursor::new(q);
        while at < max && at < limit && r.records.len() < max_msgs {
            let Some(e) = entries.at(at)? else { break };
            if e.size == QueueEntry::PRE_BLANK.size {
                at += 1;
                continue;
            }
            if let Some(codes) = tag_codes {
                if !codes.contains(&e.tags_code) {
                    at += 1;
                    continue;
                }
            }
            if !r.records.is_empty() && r.bytes + e.size as usize > max_bytes {
                break;
            }
            if (e.physical_offset as u64) < self.log.start() {
                removed = true;
                at += 1;
                continue;
            }
            let raw = self.log.read_raw(e.physical_offset as u64, e.size as u32)?;
            r.bytes += raw.len();
            r.records.push((at, raw));
            at += 1;
        }
        r.next_begin_offset = at;
        r.status = if !r.records.is_empty() {
            GetStatus::Found
        } else if removed {
            GetStatus::MessageWasRemoving
        } else {
            GetStatus::NoMatchedMessage
        };
        Ok(r)
    }
}

/// What a key query found (QUERY_MESSAGE's answer).
#[derive(Debug, Clone, Default)]
pub struct KeyHits {
    /// The records, newest first, each as its exact stored bytes.
    pub records: Vec<Bytes>,
    /// Store time of the last record indexed (`indexLastUpdateTimestamp`).
    pub index_last_update_timestamp: i64,
    /// Its physical offset (`indexLastUpdatePhyoffset`).
    pub index_last_update_phy_offset: i64,
}

/// Java's cap on a key query's hits (`maxMsgsNumBatch`).
pub const MAX_KEY_HITS: usize = 64;

impl MessageStore {
    /// Records of `topic` stored within `[begin, end]` (ms) whose `KEYS` hold `key` or whose
    /// `UNIQ_KEY` is `key`, newest first, at most `max` (capped at 64, as Java does). Unlike
    /// Java's store, which leaves hash collisions for the client to drop, only exact matches
    /// are returned; records retention removed are skipped.
    pub fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Result<KeyHits, StoreError> {
        let Some(ix) = &self.indexes else {
            return Ok(KeyHits::default());
        };
        let (ts, phy) = ix.last_update();
        let mut hits = KeyHits {
            records: Vec::new(),
            index_last_update_timestamp: ts,
            index_last_update_phy_offset: phy,
        };
        let max = max.min(MAX_KEY_HITS);
        let wanted = index::index_key(topic, key);
        let offsets = ix.query(&wanted, MAX_KEY_HITS, begin, end)?;
        for phy in offsets {
            if hits.records.len() >= max {
                break;
            }
            let phy = phy as u64;
            if phy < self.log.start() || phy >= self.log.end() {
                continue;
            }
            // An entry can point at a record a crash truncated and a later put replaced:
            // the record itself decides.
            let Ok(Some(r)) = self.log.read(phy) else {
                continue;
            };
            // The keys it was indexed under, by the index's own rule.
            if r.topic == topic
                && index::record_keys(&r.topic, r.sys_flag, &r.properties).contains(&wanted)
            {
                hits.records
                    .push(self.log.read_raw(phy, r.encoded_len() as u32)?);
            }
        }
        Ok(hits)
    }

    /// The stored bytes of the record at physical offset `offset` (VIEW_MESSAGE_BY_ID: the
    /// offset comes from an offsetMsgId), `None` when no record starts there.
    pub fn record_at(&self, offset: u64) -> Result<Option<Bytes>, StoreError> {
        if offset < self.log.start() || offset >= self.log.end() {
            return Ok(None);
        }
        match self.log.read(offset) {
            Ok(Some(r)) => Ok(Some(self.log.read_raw(offset, r.encoded_len() as u32)?)),
            _ => Ok(None),
        }
    }
}

/// A flush to run off the store thread (see [`MessageStore::flush_job`]).
#[derive(Debug, Default)]
pub struct FlushJob {
    files: Vec<PathBuf>,
    /// Directories whose names changed (new queue files), synced with the files.
    dirs: Vec<PathBuf>,
    /// Index headers, written after `files` (which hold their index files) are synced.
    headers: Vec<index::HeaderWrite>,
    /// `None`: an empty job (nothing written since the last one).
    checkpoint: Option<PathBuf>,
    store_time: i64,
    /// rmq's mark the checkpoint claims: every record before its dispatch offset has its
    /// queue entry in `files`.
    mark: Mark,
}

impl FlushJob {
    /// Fsyncs every file (one deleted since, by retention, needs nothing) and directory, then
    /// writes each index header and syncs it (a header never counts entries not yet on
    /// disk), then the checkpoint with the dispatch mark: it never claims more than is
    /// durable. An error means the store must refuse writes ([`MessageStore::flush_failed`]).
    pub fn run(self) -> Result<(), StoreError> {
        for path in &self.files {
            let f = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(StoreError::Io {
                        path: path.clone(),
                        source,
                    })
                }
            };
            durable::sync_file(&f, path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        }
        for dir in &self.dirs {
            match durable::sync_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        path: dir.clone(),
                        source,
                    })
                }
            }
        }
        for h in &self.headers {
            h.run()?;
        }
        match &self.checkpoint {
            Some(path) => checkpoint::write(path, self.store_time, self.mark),
            None => Ok(()),
        }
    }

    /// Nothing to do (the store was idle since the last job).
    pub fn is_empty(&self) -> bool {
        self.checkpoint.is_none() && self.files.is_empty() && self.dirs.is_empty()
    }
}

impl Drop for MessageStore {
    /// A clean stop: everything flushed, then the abort marker removed.
    fn drop(&mut self) {
        if self.flush().is_ok() {
            let _ = std::fs::remove_file(self.config.root.join("abort"));
        }
    }
}

/// Writes `bytes` to a new file at `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let f = File::create(path).map_err(io)?;
    std::io::Write::write_all(&mut &f, bytes).map_err(io)?;
    durable::sync_file(&f, path).map_err(io)
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
