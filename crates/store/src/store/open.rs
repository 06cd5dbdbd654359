//! Opening a store: the lock, the directory's own file sizes, the abort marker, the commit
//! log's recovery, then the consume queues' (see [`super::recovery`]), in that order: nothing
//! is written before the lock is held and the directory is known to hold nothing this store
//! would ignore.

use super::flush::write_checkpoint;
use super::queues::Queues;
use super::recovery::RebuildFrom;
use super::{MessageStore, StoreConfig, StoreError};
use crate::checkpoint::{Checkpoint, Mark};
use crate::commit_log::{CommitLog, LastStop};
use crate::durable;
use crate::index::Indexes;
use std::fs::File;
use std::path::Path;

impl MessageStore {
    /// Opens the store under `config.root`, taking its lock, recovering the commit log and the
    /// consume queues, and dispatching records the queues lack.
    pub fn open(mut config: StoreConfig) -> Result<MessageStore, StoreError> {
        let root = config.root.clone();
        durable::create_dir(&root).map_err(StoreError::io(&root))?;
        let lock = take_lock(&root)?;
        adopt_found_layout(&root, &mut config)?;
        let clean_stop = mark_running(&root)?;
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
        log.set_mapped_writes(config.mapped_appends.unwrap_or(false));
        log.set_warm_ahead(!config.sync_flush);
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
            // Until a put, syncs keep the checkpoint's time (not 0, which would make the
            // next crash recovery walk every segment).
            last_store_time: flushed_time.unwrap_or(0),
            job_store_time: i64::MIN,
            job_dispatched: u64::MAX,
            clean_stop,
            disk_full: None,
            undispatched: None,
            write_failure: None,
            crc_from,
            synced_end: 0,
        };
        store.recover_from_mark(mark.map(|m| m.dispatched))?;
        // What recovery kept was on disk before this run: readable.
        store.synced_end = store.log.end();
        Ok(store)
    }

    /// Recovers the consume queues and writes the checkpoint that says so. The queues are
    /// trusted up to the checkpoint's dispatch mark and rebuilt from the log from there;
    /// without a mark, from where a clean stop left them, or after a crash from where Java's
    /// rule starts the log's walk.
    fn recover_from_mark(&mut self, dispatched: Option<u64>) -> Result<(), StoreError> {
        let from = match (dispatched, self.clean_stop) {
            (Some(offset), clean) => RebuildFrom::Mark {
                offset,
                verify: !clean,
            },
            (None, true) => RebuildFrom::QueuesEnd,
            (None, false) => RebuildFrom::Mark {
                offset: self.recovered.walked_from,
                verify: true,
            },
        };
        let trusted = self.recover_queues(from)?;
        // The checkpoint says from the start where records carry the CRC property (the
        // setting may have changed); the dispatch mark is where the rebuild started, which
        // every queue holds up to on disk.
        write_checkpoint(
            &self.config.root.join("checkpoint"),
            self.last_store_time,
            Mark {
                dispatched: trusted,
                crc_from: self.crc_from,
            },
        )?;
        Ok(())
    }
}

/// Takes the store's lock file, both kinds of lock: a second opener gets
/// [`StoreError::Locked`].
fn take_lock(root: &Path) -> Result<File, StoreError> {
    let lock_path = root.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(StoreError::io(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(StoreError::Locked(root.to_owned()));
    }
    // Java's broker locks byte 0 of the same file with fcntl (FileChannel.tryLock), a lock
    // flock does not see: take that kind too, so a Java broker and rmq never share a store.
    if rustix::fs::fcntl_lock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
    {
        return Err(StoreError::Locked(root.to_owned()));
    }
    Ok(lock)
}

/// A Java broker's directory: data of a feature not implemented here stops the open before
/// anything is written, and files written with other sizes (64 MiB segments, say) are opened
/// with the sizes they have, not the configured ones.
fn adopt_found_layout(root: &Path, config: &mut StoreConfig) -> Result<(), StoreError> {
    let found = crate::layout::survey(root)?;
    if let Some(why) = found.refusals() {
        return Err(StoreError::Unsupported(why));
    }
    if found.timer_files {
        tracing::info!("timer-wheel files found with no timer message waiting: left as they are");
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
    Ok(())
}

/// Writes Java's abort marker (present while the store runs; still there at open means the
/// last run did not stop cleanly). Returns whether the last run stopped cleanly.
fn mark_running(root: &Path) -> Result<bool, StoreError> {
    let abort = root.join("abort");
    let clean_stop = !abort.exists();
    // Synced: a power loss that lost the marker would make the next open take a crash for
    // a clean stop and walk only the last segment.
    write_synced(&abort, std::process::id().to_string().as_bytes())?;
    durable::sync_dir(root).map_err(StoreError::io(root))?;
    Ok(clean_stop)
}

/// Writes `bytes` to a new file at `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let f = File::create(path).map_err(StoreError::io(path))?;
    std::io::Write::write_all(&mut &f, bytes).map_err(StoreError::io(path))?;
    durable::sync_file(&f, path).map_err(StoreError::io(path))
}
