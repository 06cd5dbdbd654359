//! The write-behind policy: which buffers hold written data before it reaches its file, who
//! writes them when, and which call makes what durable.
//!
//! Three write-behind buffers, each written by its owner at the moments listed, and always by
//! the calls below before they sync:
//! - **commit-log pending appends** (`CommitLog`, positioned-write mode: SYNC_FLUSH, or where
//!   the active segment cannot be mapped): written with one positioned write when they reach
//!   1 MiB, before any other write to the log, when the log is dropped, and by
//!   [`MessageStore::write_out_log`] before an ASYNC_FLUSH put is answered (so no answered
//!   put waits in the process). Under ASYNC_FLUSH appends are normally copied into the mapped
//!   active segment instead: in the page cache at once.
//! - **consume-queue pending entries** (`ConsumeQueue`, up to 64 KiB per queue, contiguous in
//!   one file): written when full, when the next entry does not follow them, and before any
//!   other file operation of the queue.
//! - **index headers** (`Indexes`): entries and slots go straight into the mapped file; the
//!   header, which says how many entries count, is written only by a sync, after the entries
//!   it counts are synced.
//!
//! What survives a process crash: every put [`MessageStore::write_out_log`] (ASYNC_FLUSH's
//! answer point) or a sync covered: it is in the page cache.
//!
//! What is durable (survives a power loss) and after which call:
//! - [`MessageStore::sync_log`]: every put so far, by an fsync of the commit-log segments
//!   written since the last sync. **The durability point of a put**: under SYNC_FLUSH
//!   [`MessageStore::put`] calls it; `StoreService`'s group commit runs it in two halves,
//!   [`MessageStore::take_log_sync`] with the store in hand and [`LogSync::run`] without, once
//!   per group before acknowledging any put of it. The queues and the index are not synced:
//!   they are rebuilt from the log at open. Under SYNC_FLUSH reads stop at the end of what it
//!   covered ([`MessageStore::readable_end`]).
//! - [`MessageStore::sync_all`]: everything: the log, every consume queue (and the directory
//!   entries of new files), the index (entries, then headers), then the checkpoint with the
//!   dispatch mark, which moves where recovery starts. Blocking; an explicit flush, close and
//!   drop call it.
//! - [`MessageStore::take_sync_job`] then [`SyncJob::run`]: `sync_all` in two halves, so the
//!   store is free for appends during the fsyncs. The first half, with the store in hand,
//!   writes the buffers and captures the files, directories and index headers written since
//!   the last job; the second, on the flusher thread, fsyncs them, writes and syncs the
//!   headers, and writes the checkpoint last. Nothing it covers is durable before `run`
//!   returns `Ok`. `StoreService` hands one out every `flush_interval` in both flush modes:
//!   under ASYNC_FLUSH it is what makes puts durable; under SYNC_FLUSH it syncs the log's
//!   segments too but leaves them to the group commit (`unsynced_paths`).
//!
//! Every fsync goes through [`crate::durable`], the one durability point underneath. A sync
//! that failed makes the store refuse writes until it is reopened
//! ([`MessageStore::flush_failed`]). A process crash (not a power loss) loses only what the
//! buffers held: the queues' and the index's are rebuilt from the log; the log's pending
//! appends were never acknowledged (`write_out_log` and the syncs write them first).

use super::{MessageStore, StoreError};
use crate::checkpoint::{self, Mark};
use crate::durable;
use crate::index;
use std::fs::File;
use std::path::{Path, PathBuf};

impl MessageStore {
    /// Makes every put so far durable: the commit log alone (Java's SYNC_FLUSH does the same),
    /// since the consume queues and the index are rebuilt from it at open. The durability
    /// point of a put (see the module's policy).
    pub fn sync_log(&mut self) -> Result<(), StoreError> {
        self.flushes += 1;
        self.log.sync().map_err(|e| self.flush_failed(e.into()))?;
        self.synced_end = self.log.end();
        Ok(())
    }

    /// [`MessageStore::sync_log`] in two halves, for a group commit that fsyncs without the
    /// store in hand (appends go on meanwhile): this half writes the pending appends and takes
    /// the segments written since the last sync; [`LogSync::run`] fsyncs them; then
    /// [`MessageStore::log_synced`] says so. The puts up to [`LogSync::end`] are durable, and
    /// may be acknowledged, only once `run` returned `Ok`.
    pub fn take_log_sync(&mut self) -> Result<LogSync, StoreError> {
        let files = self
            .log
            .take_unsynced_files()
            .map_err(|e| self.flush_failed(e.into()))?;
        Ok(LogSync {
            files,
            end: self.log.end(),
        })
    }

    /// A [`LogSync`] ended: `Ok` makes what it covered readable; an error makes the store
    /// refuse writes (returned, for the waiting puts).
    pub fn log_synced(
        &mut self,
        sync: &LogSync,
        ran: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match ran {
            Ok(()) => {
                if !sync.files.is_empty() {
                    self.flushes += 1;
                }
                self.synced_end = self.synced_end.max(sync.end);
                Ok(())
            }
            Err(e) => Err(self.flush_failed(e)),
        }
    }

    /// Hands every put so far to the kernel's page cache, where a process crash cannot lose
    /// it (a power loss can: that is [`MessageStore::sync_log`]). What an ASYNC_FLUSH put is
    /// acknowledged after: appends through the map are there already; positioned writes
    /// (SYNC_FLUSH's, or ASYNC_FLUSH's when the segment cannot be mapped) wait in the
    /// process for the next write, and would otherwise be acknowledged from memory.
    pub fn write_out_log(&mut self) -> Result<(), StoreError> {
        self.log
            .write_pending()
            .map_err(|e| self.flush_failed(e.into()))
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

    /// Makes everything durable, the consume queues and the index too (an explicit flush,
    /// shutdown), and records the store time and dispatch mark reached in the checkpoint.
    pub fn sync_all(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self.finish_dispatch() {
            tracing::warn!(error = %e, "dispatch still failing");
        }
        self.flushes += 1;
        let mark = self.mark();
        let flushed = (|| {
            self.log.sync()?;
            self.synced_end = self.log.end();
            for q in self.queues.values_mut() {
                q.sync()?;
            }
            if let Some(ix) = &mut self.indexes {
                ix.sync()?;
            }
            // Last: it claims what the flushes above made durable.
            write_checkpoint(
                &self.config.root.join("checkpoint"),
                self.last_store_time,
                mark,
            )
        })();
        flushed.map_err(|e| self.flush_failed(e))
    }

    /// What [`MessageStore::sync_all`] would fsync, handed out so another thread can do it
    /// (appends go on meanwhile): every file written since the last job (commit
    /// log, consume queues, the newest index file), their index headers, and the checkpoint
    /// to write after them. Those files count as synced from here on: run the job, and treat
    /// its failure as fatal for writes.
    pub fn take_sync_job(&mut self) -> Result<SyncJob, StoreError> {
        if let Err(e) = self.finish_dispatch() {
            tracing::warn!(error = %e, "dispatch still failing");
        }
        let mark = self.mark();
        // Under SYNC_FLUSH the group commit decides when an append is durable: this job syncs
        // the log too (before the queues, as always) but leaves its segments dirty for it.
        let mut files = if self.config.sync_flush {
            self.log.unsynced_paths()?
        } else {
            self.log.take_unsynced()?
        };
        let mut dirs = Vec::new();
        for q in self.queues.values_mut() {
            q.take_unsynced(&mut files, &mut dirs)?;
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
            return Ok(SyncJob::default());
        }
        self.flushes += 1;
        let headers = match &mut self.indexes {
            Some(ix) => ix.take_header_writes(),
            None => Vec::new(),
        };
        files.extend(headers.iter().map(|h| h.path().to_owned()));
        self.job_store_time = self.last_store_time;
        self.job_dispatched = mark.dispatched;
        Ok(SyncJob {
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
}

/// The second half of a [`MessageStore::sync_log`]: the commit-log segments to fsync, and the
/// log's end that makes durable (see [`MessageStore::take_log_sync`]).
#[derive(Debug)]
pub struct LogSync {
    files: Vec<(PathBuf, File)>,
    end: u64,
}

impl LogSync {
    /// The log's end when it was taken: every put before it is covered.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Fsyncs the segments (none: the puts up to `end` were durable already).
    pub fn run(&self) -> Result<(), StoreError> {
        for (path, file) in &self.files {
            durable::sync_file(file, path).map_err(StoreError::io(path))?;
        }
        Ok(())
    }
}

/// The second half of a [`MessageStore::sync_all`], run without the store in hand (see
/// [`MessageStore::take_sync_job`]).
#[derive(Debug, Default)]
pub struct SyncJob {
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

impl SyncJob {
    /// Fsyncs every file (one deleted since, by retention, needs nothing) and directory, then
    /// writes each index header and syncs it (a header never counts entries not yet on
    /// disk), then the checkpoint with the dispatch mark: it never claims more than is
    /// durable. An error means the store must refuse writes ([`MessageStore::flush_failed`]).
    pub fn run(self) -> Result<(), StoreError> {
        for path in &self.files {
            let f = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(path)(e)),
            };
            durable::sync_file(&f, path).map_err(StoreError::io(path))?;
        }
        for dir in &self.dirs {
            match durable::sync_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(dir)(e)),
            }
        }
        for h in &self.headers {
            h.run()?;
        }
        match &self.checkpoint {
            Some(path) => write_checkpoint(path, self.store_time, self.mark),
            None => Ok(()),
        }
    }

    /// Nothing to do (the store was idle since the last job).
    pub fn is_empty(&self) -> bool {
        self.checkpoint.is_none() && self.files.is_empty() && self.dirs.is_empty()
    }
}

/// Writes and syncs the checkpoint at `path` ([`checkpoint::write`]), naming the file in the
/// error: the checkpoint module only does I/O and knows nothing of the store's errors.
pub(super) fn write_checkpoint(path: &Path, store_time: i64, mark: Mark) -> Result<(), StoreError> {
    checkpoint::write(path, store_time, mark).map_err(StoreError::io(path))
}
