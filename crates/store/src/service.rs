//! The store shared by async callers: puts append on the caller's own thread, without a hop.
//!
//! The store sits behind one lock ([`BargingLock`]): a task that finds it taken parks (its
//! runtime thread goes on with other work), a plain thread blocks. A put takes it for the append alone
//! (a copy into the mapped segment, its queue entry and index slot: microseconds), on the
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

use crate::record::Record;
use crate::store::{MessageStore, PutResult, StoreConfig, StoreError, SyncJob};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
/// The store's lock (see the module's doc).
type StoreLock = BargingLock<Option<MessageStore>>;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Stored records by queue offset.
type Records = Vec<(u64, Bytes)>;
/// A put's durability answer (SYNC_FLUSH), from the group commit.
type Durable = oneshot::Sender<Result<(), Arc<StoreError>>>;

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
        let mut g = shared.store.lock().await;
        let st = g.as_mut().ok_or(ServiceError::Stopped)?;
        shared.flusher.apply_failure(st);
        Ok(job(st))
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
        let st = g.as_mut().ok_or(ServiceError::Stopped)?;
        self.flusher.apply_failure(st);
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

    /// Runs `job` with the store in hand (blocking), after marking a failed flush job.
    fn with_store<T>(&self, job: impl FnOnce(&mut MessageStore) -> T) -> Result<T, ServiceError> {
        let mut g = self.store.lock_blocking();
        let st = g.as_mut().ok_or(ServiceError::Stopped)?;
        self.flusher.apply_failure(st);
        Ok(job(st))
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

/// A mutex for tasks and threads alike, not fair on purpose: a task that finds it taken parks
/// (its runtime thread goes on with other work) and is woken when it is released, but a task
/// or thread that comes while it is free takes it at once (barging). tokio's own mutex is
/// fair: it hands the lock to the next waiter, which then holds it until a runtime thread
/// gets round to running it, so under load every hand-off waited behind the run queue (a
/// canary's send beside a flooding client: p50 2 ms with the store thread, 327 ms with
/// tokio's mutex). Threads (the group commit, the housekeeping, queries on the blocking pool)
/// block on it as on any mutex.
struct BargingLock<T> {
    inner: Mutex<T>,
    /// Tasks parked waiting for a release.
    waiting: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
}

/// The lock held (see [`BargingLock`]); a release wakes one parked task, if any.
struct Held<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    lock: &'a BargingLock<T>,
}

impl<T> BargingLock<T> {
    fn new(value: T) -> Self {
        BargingLock {
            inner: Mutex::new(value),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
        }
    }

    fn try_held(&self) -> Option<Held<'_, T>> {
        let guard = match self.inner.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Held {
            guard: Some(guard),
            lock: self,
        })
    }

    /// For tasks: the lock, parking (not blocking the thread) while another holds it.
    async fn lock(&self) -> Held<'_, T> {
        loop {
            if let Some(held) = self.try_held() {
                return held;
            }
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            // Counted while parked, and uncounted even if this future is dropped meanwhile (a
            // pull whose connection closed).
            let _waiter = Waiter::count(&self.waiting);
            // Pairs with the fence in `Held::drop` (Dekker): either this try sees the lock
            // released, or that release sees this waiter and wakes it.
            std::sync::atomic::fence(Ordering::SeqCst);
            if let Some(held) = self.try_held() {
                return held;
            }
            released.await;
        }
    }

    /// For threads: the lock, blocking.
    fn lock_blocking(&self) -> Held<'_, T> {
        Held {
            guard: Some(lock(&self.inner)),
            lock: self,
        }
    }
}

/// One task parked on a [`BargingLock`], counted for as long as it lives.
struct Waiter<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiter<'a> {
    fn count(waiting: &'a std::sync::atomic::AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiter(waiting)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<T> std::ops::DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.lock.waiting.load(Ordering::SeqCst) > 0 {
            self.lock.released.notify_one();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// The puts waiting for the group commit (SYNC_FLUSH), each with the log's end after it.
#[derive(Default)]
struct Commits {
    state: Mutex<CommitState>,
    /// Wakes the commit thread: a put arrived, or the store is closing.
    wake: Condvar,
}

#[derive(Default)]
struct CommitState {
    waiting: Vec<(u64, Durable)>,
    /// Every put before this log offset is durable.
    durable: u64,
    /// A failed fsync: every later put fails with it.
    failed: Option<Arc<StoreError>>,
    stopped: bool,
}

impl Commits {
    /// Waits for the fsync that covers the log up to `end`.
    fn register(&self, end: u64) -> oneshot::Receiver<Result<(), Arc<StoreError>>> {
        let (tx, rx) = oneshot::channel();
        let mut st = lock(&self.state);
        if let Some(e) = &st.failed {
            let _ = tx.send(Err(e.clone()));
        } else if end <= st.durable {
            let _ = tx.send(Ok(()));
        } else if st.stopped {
            drop(tx); // closed: Stopped
        } else {
            st.waiting.push((end, tx));
            self.wake.notify_one();
        }
        rx
    }

    /// The log is durable up to `end`: the puts it covers are answered.
    fn durable_to(&self, end: u64) {
        let mut st = lock(&self.state);
        st.durable = st.durable.max(end);
        let durable = st.durable;
        let (done, left): (Vec<_>, Vec<_>) = std::mem::take(&mut st.waiting)
            .into_iter()
            .partition(|(e, _)| *e <= durable);
        st.waiting = left;
        drop(st);
        for (_, tx) in done {
            let _ = tx.send(Ok(()));
        }
    }

    /// An fsync failed: every waiting and later put fails with `e`.
    fn fail(&self, e: Arc<StoreError>) {
        let mut st = lock(&self.state);
        st.failed.get_or_insert(e.clone());
        let waiting = std::mem::take(&mut st.waiting);
        drop(st);
        for (_, tx) in waiting {
            let _ = tx.send(Err(e.clone()));
        }
    }

    fn stop(&self) {
        lock(&self.state).stopped = true;
        self.wake.notify_all();
    }
}

/// The `rmq-store-commit` thread (SYNC_FLUSH): while puts wait, one fsync round covers all
/// of them, gathering stragglers first ([`Gather`]); ends when the store closes.
fn group_commit(shared: &Shared) {
    let commits = &shared.commits;
    let mut gather = Gather::new(true);
    loop {
        let mut st = lock(&commits.state);
        while st.waiting.is_empty() && !st.stopped {
            st = commits.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.waiting.is_empty() {
            return; // stopped, nobody waiting
        }
        while let Some(left) = gather.wait_left(st.waiting.len(), Instant::now()) {
            st = commits
                .wake
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let size = st.waiting.len();
        drop(st);
        match shared.commit_round() {
            Ok((end, took)) => {
                gather.committed(size, took);
                commits.durable_to(end);
            }
            Err(e) => {
                gather.committed(size, Duration::ZERO);
                commits.fail(e);
            }
        }
    }
}

/// Group commit's wait for stragglers (as PostgreSQL's `commit_delay` with
/// `commit_siblings`): the appenders answered by one fsync come back at once, but one by one,
/// and the first of them used to start the next group alone, so with 16 appenders groups
/// alternated between a few and the rest, two fsyncs a round. A group smaller than the last
/// one waits for more puts: until it is as large, or for at most half the last fsync (never
/// more than [`Gather::MAX_WAIT`]). A lone appender (last group of one) never waits.
struct Gather {
    sync: bool,
    /// Puts the last group committed (the appenders likely to come back).
    last_size: usize,
    /// How long the last fsync took.
    last_fsync: Duration,
    /// When the group being gathered waits no longer.
    deadline: Option<Instant>,
}

impl Gather {
    const MAX_WAIT: Duration = Duration::from_micros(100);

    fn new(sync: bool) -> Self {
        Gather {
            sync,
            last_size: 0,
            last_fsync: Duration::ZERO,
            deadline: None,
        }
    }

    /// How long a group of `size` puts may still wait for stragglers at `now` (`None`: it
    /// does not wait). The rule, kept apart from the clock so it can be tested on state: only
    /// a SYNC_FLUSH group smaller than the last one waits, until a deadline set at its first
    /// wait to half the last fsync (at most [`Gather::MAX_WAIT`]).
    fn wait_left(&mut self, size: usize, now: Instant) -> Option<Duration> {
        if size == 0 {
            self.deadline = None;
        }
        if !self.sync || size == 0 || size >= self.last_size {
            return None;
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| now + (self.last_fsync / 2).min(Self::MAX_WAIT));
        deadline
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
    }

    /// A group of `size` puts was committed by an fsync that took `fsync`.
    fn committed(&mut self, size: usize, fsync: Duration) {
        if size > 0 {
            self.last_size = size;
            self.last_fsync = fsync;
        }
        self.deadline = None;
    }
}

/// The periodic flush's own thread: the `rmq-store` thread hands it the files to fsync and
/// lets go of the store, so an ASYNC_FLUSH fsync of many megabytes never stalls puts and
/// reads. One job at a time; a job due while one runs is skipped (the next one covers its
/// files).
struct Flusher {
    jobs: Mutex<Option<std::sync::mpsc::SyncSender<SyncJob>>>,
    state: FlusherState,
    /// Set with the first failure: checked with one atomic load per lock.
    failed: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// (busy, the first failure), and the condition a waiter for "not busy" waits on.
type FlusherState = Arc<(Mutex<(bool, Option<String>)>, Condvar)>;

impl Flusher {
    fn start(latency: Arc<FlushLatency>) -> Flusher {
        let (tx, rx) = std::sync::mpsc::sync_channel::<SyncJob>(1);
        let state: FlusherState = Arc::default();
        let failed = Arc::new(AtomicBool::new(false));
        let (st, flag) = (state.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("rmq-store-flush".into())
            .spawn(move || {
                for job in rx {
                    let started = Instant::now();
                    let r = job.run();
                    latency
                        .periodic_micros
                        .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    let (lock_, cv) = &*st;
                    let mut g = lock(lock_);
                    if let Err(e) = r {
                        tracing::error!(error = %e, "a flush failed: the store refuses writes until it is reopened");
                        g.1.get_or_insert(e.to_string());
                        flag.store(true, Ordering::Release);
                    }
                    g.0 = false;
                    cv.notify_all();
                }
            })
            .ok();
        Flusher {
            jobs: Mutex::new(Some(tx)),
            state,
            failed,
            thread: Mutex::new(thread),
        }
    }

    /// Starts a flush of everything written so far, unless one is running.
    fn submit(&self, store: &mut MessageStore) {
        let jobs = lock(&self.jobs);
        let Some(jobs) = jobs.as_ref() else { return };
        let (state, _) = &*self.state;
        let mut g = lock(state);
        if g.0 {
            return;
        }
        match store.take_sync_job() {
            Ok(job) if job.is_empty() => {}
            Ok(job) => {
                g.0 = true;
                if jobs.send(job).is_err() {
                    g.0 = false;
                }
            }
            Err(e) => {
                g.1.get_or_insert(e.to_string());
                self.failed.store(true, Ordering::Release);
                store.flush_failed(e);
            }
        }
    }

    /// Waits for the running job, if any.
    fn wait_idle(&self) {
        let (state, cv) = &*self.state;
        let mut g = lock(state);
        while g.0 {
            g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A failed job makes the store refuse writes (and say why) from now on.
    fn apply_failure(&self, store: &mut MessageStore) {
        if !self.failed.load(Ordering::Acquire) || store.write_failure().is_some() {
            return;
        }
        let why = lock(&self.state.0).1.clone();
        if let Some(why) = why {
            store.flush_failed(StoreError::FlushFailed(why));
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        *lock(&self.jobs) = None;
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule on state, with given instants: no test here needs a thread scheduled within
    /// microseconds (the earlier version did, and failed on a loaded 2-core machine).
    #[test]
    fn a_smaller_group_waits_until_half_the_last_fsync_and_no_longer() {
        let mut gather = Gather::new(true);
        gather.committed(16, Duration::from_micros(200));
        let t0 = Instant::now();
        // Half the last fsync (100 us, the cap too), counted from the group's first wait.
        assert_eq!(gather.wait_left(3, t0), Some(Duration::from_micros(100)));
        assert_eq!(
            gather.wait_left(4, t0 + Duration::from_micros(30)),
            Some(Duration::from_micros(70))
        );
        // The deadline is the group's: once passed, no more waiting for it.
        assert_eq!(gather.wait_left(4, t0 + Duration::from_micros(100)), None);
        assert_eq!(gather.wait_left(5, t0 + Duration::from_micros(101)), None);
        // The next group gets its own deadline; a quick fsync means a short wait, a slow one
        // is capped.
        gather.committed(16, Duration::from_micros(80));
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(gather.wait_left(2, t1), Some(Duration::from_micros(40)));
        gather.committed(16, Duration::from_secs(1));
        assert_eq!(gather.wait_left(2, t1), Some(Gather::MAX_WAIT));
    }

    #[test]
    fn a_lone_appender_an_empty_group_and_async_flush_never_wait() {
        let now = Instant::now();
        let mut lone = Gather::new(true);
        lone.committed(1, Duration::from_secs(1));
        let mut async_flush = Gather::new(false);
        async_flush.committed(16, Duration::from_secs(1));
        let mut grown = Gather::new(true);
        grown.committed(4, Duration::from_secs(1));
        assert_eq!(lone.wait_left(1, now), None);
        assert_eq!(async_flush.wait_left(3, now), None);
        assert_eq!(grown.wait_left(0, now), None, "nothing to commit yet");
        assert_eq!(grown.wait_left(4, now), None, "as large as the last");
        assert_eq!(grown.wait_left(5, now), None, "larger than the last");
    }

    #[test]
    fn a_parked_task_is_woken_by_a_release_and_a_dropped_waiter_leaves_no_count() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let lock = Arc::new(BargingLock::new(0u32));
            let held = lock.lock_blocking();
            let task = tokio::spawn({
                let lock = lock.clone();
                async move { *lock.lock().await += 1 }
            });
            for _ in 0..100 {
                if lock.waiting.load(Ordering::SeqCst) == 1 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert_eq!(lock.waiting.load(Ordering::SeqCst), 1, "the task parked");
            drop(held); // the release wakes the parked task
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("woken by the release")
                .unwrap();
            assert_eq!(*lock.lock().await, 1);
            // A waiter given up while the lock is held (its future dropped) is not counted.
            let held = lock.lock_blocking();
            assert!(tokio::time::timeout(Duration::from_millis(20), lock.lock())
                .await
                .is_err());
            assert_eq!(lock.waiting.load(Ordering::SeqCst), 0);
            drop(held);
            // Free: taken at once, no waiting.
            assert!(lock.try_held().is_some());
        });
    }

    #[test]
    fn a_put_already_covered_is_answered_at_once_and_a_failure_fails_the_rest() {
        let commits = Commits::default();
        commits.durable_to(100);
        let mut covered = commits.register(100);
        assert!(matches!(covered.try_recv(), Ok(Ok(()))));
        let mut waiting = commits.register(200);
        assert!(waiting.try_recv().is_err(), "not yet covered");
        commits.durable_to(150);
        assert!(waiting.try_recv().is_err(), "150 does not cover 200");
        commits.fail(Arc::new(StoreError::FlushFailed("EIO".into())));
        assert!(matches!(waiting.try_recv(), Ok(Err(_))));
        let mut later = commits.register(120);
        assert!(matches!(later.try_recv(), Ok(Err(_))), "after a failure");
    }
}
