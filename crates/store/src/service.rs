//! The store shared by async callers: puts append on the caller's own thread, without a hop.
//!
//! The store sits behind one lock (`BargingLock`, in `service/lock.rs`): a task that finds it
//! taken parks (its runtime thread goes on with other work), a plain thread blocks. A put takes
//! it for the append alone (a copy into the mapped segment, its queue entry and index slot:
//! microseconds), on the
//! runtime thread that decoded the send, as Java's send threads append under its put lock; a
//! pull's read takes it the same way ([`StoreService::read`]: queue entries and slices of the
//! mapped log). Queries that may take longer ([`StoreService::run`]) and the store's own
//! threads take it from outside the runtime. (A `std` mutex was tried first: a runtime thread
//! blocked on it whenever the holder was descheduled or stalled in the filesystem, and the
//! end-to-end p99 at 30k sends/s over 16 connections went from 34 ms to 100-200 ms.)
//!
//! Durability, as before:
//! - **ASYNC_FLUSH**: a put is answered once its bytes are in the page cache
//!   ([`MessageStore::write_out_log`]), so a process crash loses no answered put; the `rmq-store`
//!   thread hands a flush job ([`MessageStore::take_sync_job`]) to the `rmq-store-flush`
//!   thread every `flush_interval`.
//! - **SYNC_FLUSH**: a put is answered after the fsync that covers it. The `rmq-store-commit`
//!   thread is the group commit: it takes the commit-log segments written so far
//!   ([`MessageStore::take_log_sync`]), fsyncs them without the lock (appends go on), then
//!   answers every put they cover. Reads stop at what an fsync covered
//!   ([`MessageStore::readable_end`]): no consumer sees a put before it is acknowledged.
//!
//! A failed fsync (group commit or flush job) makes the store refuse writes until reopened.

mod flusher;
mod group_commit;
mod lock;

use crate::record::Record;
use crate::store::{MessageStore, PutResult, StoreConfig, StoreError};
use bytes::Bytes;
use flusher::Flusher;
use group_commit::{group_commit, Commits};
use lock::{lock, BargingLock};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The store's lock (see the module's doc).
type StoreLock = BargingLock<Option<MessageStore>>;

/// Stored records by queue offset.
type Records = Vec<(u64, Bytes)>;

/// Why a request to the store failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store refused or failed (shared: a group's fsync failure fails every put in it).
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// The store is closed (shut down, or it failed).
    #[error("the store is shut down")]
    Stopped,
}

/// How long the last flushes took (µs): a group commit's fsync (SYNC_FLUSH acknowledgements
/// wait for it) and a periodic flush job. For metrics; read without a lock.
#[derive(Default, Debug)]
pub struct FlushLatency {
    /// The last group commit's fsync.
    pub group_commit_micros: std::sync::atomic::AtomicU64,
    /// The last periodic flush job.
    pub periodic_micros: std::sync::atomic::AtomicU64,
}

/// A handle to the store. Cheap to clone; the last one dropped closes the store.
#[derive(Clone)]
pub struct StoreService {
    inner: Arc<Owner>,
}

/// Closes the store when the last handle goes.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // The store's lock must not be waited on blocking inside a runtime: close from a
        // thread of its own (and wait for it: the store is closed when the handle is gone).
        let shared = &self.shared;
        std::thread::scope(|s| {
            let _ = s.spawn(|| shared.close()).join();
        });
    }
}

/// What the handles and the store's threads share.
struct Shared {
    /// `None` once closed.
    store: StoreLock,
    sync: bool,
    flush_every: Duration,
    latency: Arc<FlushLatency>,
    flusher: Flusher,
    commits: Commits,
    /// The `rmq-store` thread's stop signal.
    stop: (Mutex<bool>, Condvar),
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl StoreService {
    /// Opens the store (on the calling thread: do it from `spawn_blocking` on a runtime) and
    /// starts its threads.
    pub fn start(
        config: StoreConfig,
        flush_interval: Duration,
    ) -> Result<StoreService, StoreError> {
        let sync = config.sync_flush;
        let store = MessageStore::open(config)?;
        let latency = Arc::new(FlushLatency::default());
        let shared = Arc::new(Shared {
            store: BargingLock::new(Some(store)),
            sync,
            flush_every: flush_interval,
            flusher: Flusher::start(latency.clone()),
            latency,
            commits: Commits::default(),
            stop: (Mutex::new(false), Condvar::new()),
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = vec![spawn("rmq-store", {
            let shared = shared.clone();
            move || housekeeping(&shared)
        })?];
        if sync {
            threads.push(spawn("rmq-store-commit", {
                let shared = shared.clone();
                move || group_commit(&shared)
            })?);
        }
        *lock(&shared.threads) = threads;
        Ok(StoreService {
            inner: Arc::new(Owner { shared }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Stores a record; with `sync_flush`, answers after the fsync that covers it.
    pub async fn put(&self, record: Record) -> Result<PutResult, ServiceError> {
        let mut r = self.put_all(vec![record]).await?;
        r.pop()
            .ok_or_else(|| ServiceError::Store(Arc::new(StoreError::Empty)))
    }

    /// Stores records back to back, none of another put between them (a batch); answered as
    /// one, after the fsync that covers them all with `sync_flush`. If one fails, those before
    /// it stay stored and the error is returned.
    pub async fn put_all(&self, records: Vec<Record>) -> Result<Vec<PutResult>, ServiceError> {
        let shared = self.shared();
        let (results, end) = shared.append(&mut *shared.store.lock().await, records)?;
        if shared.sync {
            let durable = shared.commits.register(end);
            durable.await.map_err(|_| ServiceError::Stopped)??;
        }
        Ok(results)
    }

    /// A short read on the hot path (a pull), with the store in hand on the calling thread,
    /// as a put: a queue's entries and slices of the mapped log (no copy: the pages are
    /// touched when the answer is written to its socket).
    pub async fn read<T>(
        &self,
        job: impl FnOnce(&mut MessageStore) -> T,
    ) -> Result<T, ServiceError> {
        let shared = self.shared();
        Ok(job(shared.in_hand(&mut *shared.store.lock().await)?))
    }

    /// Runs `job` on the blocking pool with the store in hand: the broker's queries (offsets by
    /// time, key lookups, stats, admin) without a request type per query. Puts and reads wait
    /// for it (parked): keep it short.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut MessageStore) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let shared = self.shared().clone();
        tokio::task::spawn_blocking(move || shared.with_store(job))
            .await
            .map_err(|_| ServiceError::Stopped)?
    }

    /// Stored records of a queue from `offset` (see [`MessageStore::get`]).
    pub async fn get(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<Records, ServiceError> {
        let topic = topic.to_owned();
        Ok(self
            .run(move |st| st.get(&topic, queue_id, offset, max_msgs, max_bytes, None))
            .await?
            .map_err(Arc::new)?)
    }

    /// A queue's (min, max) offsets.
    pub async fn offsets(&self, topic: &str, queue_id: i32) -> Result<(u64, u64), ServiceError> {
        let topic = topic.to_owned();
        self.run(move |st| {
            (
                st.min_offset(&topic, queue_id),
                st.max_offset(&topic, queue_id),
            )
        })
        .await
    }

    /// Flush rounds so far (with `sync_flush`, one per group of puts).
    pub async fn flushes(&self) -> Result<u64, ServiceError> {
        self.run(|st| st.flushes()).await
    }

    /// Closes the store: every put answered, everything flushed, the store closed cleanly (the
    /// abort marker removed) before this returns. Later requests from any handle fail with
    /// [`ServiceError::Stopped`].
    pub async fn close(&self) {
        let shared = self.shared().clone();
        let _ = tokio::task::spawn_blocking(move || shared.close()).await;
    }

    /// How long the last flushes took.
    pub fn flush_latency(&self) -> &FlushLatency {
        &self.shared().latency
    }

    /// Makes everything stored so far durable ([`MessageStore::sync_all`], after any running
    /// flush job).
    pub async fn sync_all(&self) -> Result<(), ServiceError> {
        let shared = self.shared().clone();
        tokio::task::spawn_blocking(move || {
            let end = shared.with_store(|st| {
                shared.flusher.wait_idle();
                st.sync_all().map(|()| st.log_range().1)
            })?;
            match end {
                Ok(end) => {
                    shared.commits.durable_to(end);
                    Ok(())
                }
                Err(e) => Err(ServiceError::Store(Arc::new(e))),
            }
        })
        .await
        .map_err(|_| ServiceError::Stopped)?
    }
}

/// The result of appending a put: its records' results and the log's end after them.
type Appended = Result<(Vec<PutResult>, u64), ServiceError>;

impl Shared {
    /// Appends a put's records with the store in hand. Under ASYNC_FLUSH they are in the page
    /// cache when this returns; under SYNC_FLUSH the caller waits for the group commit to
    /// cover the returned end.
    fn append(&self, g: &mut Option<MessageStore>, records: Vec<Record>) -> Appended {
        let st = self.in_hand(g)?;
        let mut results = Vec::with_capacity(records.len());
        for record in records {
            match st.put_unflushed(record) {
                Ok(r) => results.push(r),
                Err(e) => {
                    // Those appended before the failure are in the log: make them as durable
                    // as acknowledged ones before answering (a rare path: the fsync is here).
                    if self.sync && !results.is_empty() && st.sync_log().is_ok() {
                        self.commits.durable_to(st.log_range().1);
                    }
                    return Err(ServiceError::Store(Arc::new(e)));
                }
            }
        }
        if !self.sync {
            st.write_out_log()
                .map_err(|e| ServiceError::Store(Arc::new(e)))?;
        }
        Ok((results, st.log_range().1))
    }

    /// The store, once its lock is held: `Stopped` once closed, and refusing writes after a
    /// failed flush job.
    fn in_hand<'a>(
        &self,
        g: &'a mut Option<MessageStore>,
    ) -> Result<&'a mut MessageStore, ServiceError> {
        let st = g.as_mut().ok_or(ServiceError::Stopped)?;
        self.flusher.apply_failure(st);
        Ok(st)
    }

    /// Runs `job` with the store in hand (blocking).
    fn with_store<T>(&self, job: impl FnOnce(&mut MessageStore) -> T) -> Result<T, ServiceError> {
        Ok(job(self.in_hand(&mut self.store.lock_blocking())?))
    }

    /// One group commit round: the log's unsynced segments taken with the lock, fsynced
    /// without it, the outcome recorded with it. Returns the end covered and how long the
    /// fsync took.
    fn commit_round(&self) -> Result<(u64, Duration), Arc<StoreError>> {
        let sync = {
            let mut g = self.store.lock_blocking();
            let Some(st) = g.as_mut() else {
                return Err(Arc::new(StoreError::FlushFailed(
                    "the store is closed".into(),
                )));
            };
            self.flusher.apply_failure(st);
            if let Some(why) = st.write_failure() {
                return Err(Arc::new(StoreError::FlushFailed(why.to_owned())));
            }
            st.take_log_sync().map_err(Arc::new)?
        };
        let started = Instant::now();
        let ran = sync.run();
        let took = started.elapsed();
        self.latency
            .group_commit_micros
            .store(took.as_micros() as u64, Ordering::Relaxed);
        let mut g = self.store.lock_blocking();
        match g.as_mut() {
            Some(st) => st.log_synced(&sync, ran).map_err(Arc::new)?,
            None => ran.map_err(Arc::new)?,
        }
        Ok((sync.end(), took))
    }

    /// Closes the store once (later calls return at once): puts refused from here on, every
    /// waiting put answered after the final flush, the threads stopped, the store dropped
    /// (clean-stop marker).
    fn close(&self) {
        let mut g = self.store.lock_blocking();
        let Some(mut st) = g.take() else { return };
        self.flusher.wait_idle();
        self.flusher.apply_failure(&mut st);
        match st.sync_all() {
            Ok(()) => self.commits.durable_to(st.log_range().1),
            Err(e) => {
                tracing::error!(error = %e, "final flush failed");
                self.commits.fail(Arc::new(e));
            }
        }
        drop(st);
        drop(g);
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        self.commits.stop();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|source| StoreError::Io {
            path: format!("{name} thread").into(),
            source,
        })
}

/// The `rmq-store` thread: a flush job every `flush_every` (both modes: the consume queues,
/// the index and the checkpoint; under ASYNC_FLUSH the commit log too) and the retention
/// rounds, until the store closes.
fn housekeeping(shared: &Shared) {
    let mut last_clean = Instant::now();
    loop {
        {
            let (stop, cv) = &shared.stop;
            let g = lock(stop);
            let (g, _) = cv
                .wait_timeout_while(g, shared.flush_every, |stopped| !*stopped)
                .unwrap_or_else(|p| p.into_inner());
            if *g {
                return;
            }
        }
        let mut g = shared.store.lock_blocking();
        let Some(st) = g.as_mut() else { return };
        shared.flusher.apply_failure(st);
        shared.flusher.submit(st);
        if last_clean.elapsed() >= st.retention_interval() {
            last_clean = Instant::now();
            clean_round(st);
        }
    }
}

/// One retention round on the clock: the UTC hour and the store disk's usage decide it.
fn clean_round(store: &mut MessageStore) {
    let used = match crate::store::disk_used_ratio(store.root()) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "disk usage unknown: retention round skipped");
            return;
        }
    };
    let hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 3600 % 24) as u32);
    if let Err(e) = store.clean(hour, used) {
        tracing::error!(error = %e, "retention round failed");
    }
}
