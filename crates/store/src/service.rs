//! The store on a thread of its own, for async callers: the runtime never blocks on the disk.
//!
//! Requests go to the store thread through a bounded queue (a full queue is back-pressure on
//! the callers). The thread takes every put that is waiting, appends them all, and with
//! `sync_flush` makes them durable with **one** fsync before answering any of them: group
//! commit, so a put is acknowledged after the fsync that covers it and concurrent puts share
//! it. Without `sync_flush` (ASYNC_FLUSH) a put is answered once appended and the thread
//! flushes every `flush_interval`.

use crate::record::Record;
use crate::store::{MessageStore, PutResult, StoreConfig, StoreError, SyncJob};
use bytes::Bytes;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests queued for the store thread before callers wait.
const QUEUE: usize = 4096;
/// Puts appended between two fsyncs at most (one group).
const MAX_GROUP: usize = 1024;

/// Where a put's answer goes (one result per record of the put).
type PutReply = oneshot::Sender<Result<Vec<PutResult>, Arc<StoreError>>>;
/// Work run on the store thread with the store in hand.
type Job = Box<dyn FnOnce(&mut MessageStore) + Send>;
/// Stored records by queue offset.
type Records = Vec<(u64, Bytes)>;

enum Request {
    /// Records appended back to back (a batch send's messages are contiguous in the log and
    /// in their queue), acknowledged together.
    Put(Vec<Record>, PutReply),
    Run(Job),
    Get {
        topic: String,
        queue_id: i32,
        offset: u64,
        max_msgs: usize,
        max_bytes: usize,
        reply: oneshot::Sender<Result<Records, Arc<StoreError>>>,
    },
    Offsets(String, i32, oneshot::Sender<(u64, u64)>),
    Flush(oneshot::Sender<Result<(), Arc<StoreError>>>),
    Flushes(oneshot::Sender<u64>),
    /// Flush, close the store (clean-stop marker) and end the thread, then answer.
    Close(oneshot::Sender<()>),
}

/// Why a request to the store thread failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store refused or failed (shared: a group's fsync failure fails every put in it).
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// The store thread is gone (shut down, or it failed).
    #[error("the store is shut down")]
    Stopped,
}

/// A handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct StoreService {
    tx: mpsc::Sender<Request>,
    latency: Arc<FlushLatency>,
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

impl StoreService {
    /// Opens the store (on the calling thread: do it from `spawn_blocking` on a runtime) and
    /// starts its thread. The thread ends, flushing, when every handle is dropped.
    pub fn start(
        config: StoreConfig,
        flush_interval: Duration,
    ) -> Result<StoreService, StoreError> {
        let sync = config.sync_flush;
        let store = MessageStore::open(config)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let latency = Arc::new(FlushLatency::default());
        std::thread::Builder::new()
            .name("rmq-store".into())
            .spawn({
                let latency = latency.clone();
                move || run(store, rx, sync, flush_interval, latency)
            })
            .map_err(|source| StoreError::Io {
                path: "rmq-store thread".into(),
                source,
            })?;
        Ok(StoreService { tx, latency })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ServiceError::Stopped)?;
        answer.await.map_err(|_| ServiceError::Stopped)
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
        Ok(self.ask(|r| Request::Put(records, r)).await??)
    }

    /// Runs `job` on the store thread with the store in hand, after every put before it is
    /// acknowledged: the broker's queries (offsets by time, key lookups, stats) without a
    /// request type per query. Keep it short: puts wait behind it.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut MessageStore) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.ask(|reply: oneshot::Sender<T>| {
            Request::Run(Box::new(move |store: &mut MessageStore| {
                let _ = reply.send(job(store));
            }))
        })
        .await
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
            .ask(|reply| Request::Get {
                topic,
                queue_id,
                offset,
                max_msgs,
                max_bytes,
                reply,
            })
            .await??)
    }

    /// A queue's (min, max) offsets.
    pub async fn offsets(&self, topic: &str, queue_id: i32) -> Result<(u64, u64), ServiceError> {
        let topic = topic.to_owned();
        self.ask(|r| Request::Offsets(topic, queue_id, r)).await
    }

    /// Flush rounds so far (with `sync_flush`, one per group of puts).
    pub async fn flushes(&self) -> Result<u64, ServiceError> {
        self.ask(Request::Flushes).await
    }

    /// Stops the store thread after everything queued before: the store is flushed and closed
    /// cleanly (the abort marker removed) before this returns. Later requests from any handle
    /// fail with [`ServiceError::Stopped`].
    pub async fn close(&self) {
        let _ = self.ask(Request::Close).await;
    }

    /// How long the last flushes took.
    pub fn flush_latency(&self) -> &FlushLatency {
        &self.latency
    }

    /// Makes everything stored so far durable ([`MessageStore::sync_all`] on the store
    /// thread, after any running sync job).
    pub async fn sync_all(&self) -> Result<(), ServiceError> {
        Ok(self.ask(Request::Flush).await??)
    }
}

/// The periodic flush's own thread: the store thread hands it the files to fsync and goes on
/// appending, so an ASYNC_FLUSH fsync of many megabytes never stalls puts and reads. One job
/// at a time; a job due while one runs is skipped (the next one covers its files).
/// (busy, the first failure), and the condition a waiter for "not busy" waits on.
type FlusherState = Arc<(Mutex<(bool, Option<String>)>, Condvar)>;

struct Flusher {
    jobs: Option<std::sync::mpsc::SyncSender<SyncJob>>,
    state: FlusherState,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(latency: Arc<FlushLatency>) -> Flusher {
        let (tx, rx) = std::sync::mpsc::sync_channel::<SyncJob>(1);
        let state: FlusherState = Arc::default();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("rmq-store-flush".into())
            .spawn(move || {
                for job in rx {
                    let started = Instant::now();
                    let r = job.run();
                    latency.periodic_micros.store(
                        started.elapsed().as_micros() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    let (lock, cv) = &*st;
                    let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = r {
                        tracing::error!(error = %e, "a flush failed: the store refuses writes until it is reopened");
                        g.1.get_or_insert(e.to_string());
                    }
                    g.0 = false;
                    cv.notify_all();
                }
            })
            .ok();
        Flusher {
            jobs: Some(tx),
            state,
            thread,
        }
    }

    /// Starts a flush of everything written so far, unless one is running.
    fn submit(&self, store: &mut MessageStore) {
        let Some(jobs) = &self.jobs else { return };
        let (lock, _) = &*self.state;
        let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
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
                store.flush_failed(e);
            }
        }
    }

    /// Waits for the running job, if any.
    fn wait_idle(&self) {
        let (lock, cv) = &*self.state;
        let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
        while g.0 {
            g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn failed(&self) -> Option<String> {
        let (lock, _) = &*self.state;
        lock.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The store thread: groups of puts, one fsync per group with `sync`, periodic flushes without.
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

fn run(
    mut store: MessageStore,
    mut rx: mpsc::Receiver<Request>,
    sync: bool,
    every: Duration,
    latency: Arc<FlushLatency>,
) {
    // A timer for the wait between periodic flushes (this thread's own, no I/O driver).
    let timer = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread timer runtime");
    let mut last_flush = Instant::now();
    let mut last_clean = Instant::now();
    let mut group: Vec<(Vec<PutResult>, PutReply)> = Vec::new();
    let mut gather = Gather::new(sync);
    let flusher = Flusher::start(latency.clone());
    loop {
        if last_clean.elapsed() >= store.retention_interval() {
            last_clean = Instant::now();
            clean_round(&mut store);
        }
        // Everything on the clock, under load too (a wait that never times out must not
        // postpone it): the commit log under ASYNC_FLUSH, and in both modes the consume
        // queues, the index and the checkpoint (acknowledgements never wait for those: they
        // are rebuilt from the log after a crash).
        // (The group is empty here: every batch below ends by answering it.)
        if last_flush.elapsed() >= every {
            flusher.submit(&mut store);
            last_flush = Instant::now();
        }
        // Wait for work (up to the next periodic flush), then take everything already waiting.
        let wait = every.saturating_sub(last_flush.elapsed());
        let first = match timer.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
            Ok(r) => r,
            Err(_) => continue, // the flush is due: at the top
        };
        let Some(first) = first else { break };
        let mut next = Some(first);
        while let Some(req) = next {
            // A flush job that failed on the flusher thread: the store refuses writes from now
            // on, and says why to whatever asks next (a put, or the broker's status).
            if let Some(e) = flusher.failed() {
                store.flush_failed(StoreError::FlushFailed(e));
            }
            match req {
                Request::Put(records, reply) => {
                    append_put(&mut store, records, reply, sync, &mut group);
                }
                Request::Close(reply) => {
                    final_sync(&mut store, &mut group, &latency, &flusher);
                    drop(store);
                    let _ = reply.send(());
                    return;
                }
                other => {
                    // Reads and flushes see every put before them acknowledged first.
                    finish_group(&mut store, &mut group, &latency);
                    if matches!(other, Request::Flush(_)) {
                        // What a running job took is durable only when it ends.
                        flusher.wait_idle();
                    }
                    serve(&mut store, other);
                }
            }
            next = if group.len() >= MAX_GROUP {
                None
            } else if let Ok(req) = rx.try_recv() {
                Some(req)
            } else {
                gather.straggler(&timer, &mut rx, group.len())
            };
        }
        gather.committed(group.len(), finish_group(&mut store, &mut group, &latency));
    }
    final_sync(&mut store, &mut group, &latency, &flusher);
}

/// Appends a put's records. Under SYNC_FLUSH its answer joins the group, answered after the
/// group's fsync ([`finish_group`]); under ASYNC_FLUSH it is answered once its records are in
/// the page cache ([`MessageStore::write_out_log`]), so a process crash loses no answered put.
fn append_put(
    store: &mut MessageStore,
    records: Vec<Record>,
    reply: PutReply,
    sync: bool,
    group: &mut Vec<(Vec<PutResult>, PutReply)>,
) {
    match records
        .into_iter()
        .map(|r| store.put_unflushed(r))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(r) if sync => group.push((r, reply)),
        Ok(r) => {
            let _ = reply.send(store.write_out_log().map(|()| r).map_err(Arc::new));
        }
        Err(e) => {
            // Those appended before the failure are in the log: make them as durable as
            // acknowledged ones before answering.
            if sync {
                let _ = store.sync_log();
            }
            let _ = reply.send(Err(Arc::new(e)));
        }
    }
}

/// Before the store closes: the waiting group answered after its fsync, the running sync job
/// finished, then everything made durable ([`MessageStore::sync_all`]).
fn final_sync(
    store: &mut MessageStore,
    group: &mut Vec<(Vec<PutResult>, PutReply)>,
    latency: &FlushLatency,
    flusher: &Flusher,
) {
    finish_group(store, group, latency);
    flusher.wait_idle();
    if let Err(e) = store.sync_all() {
        tracing::error!(error = %e, "final flush failed");
    }
}

/// One fsync for the whole group, then every put in it is answered (with the fsync's error if
/// it failed: none of them is acknowledged as durable).
fn finish_group(
    store: &mut MessageStore,
    group: &mut Vec<(Vec<PutResult>, PutReply)>,
    latency: &FlushLatency,
) -> Duration {
    if group.is_empty() {
        return Duration::ZERO;
    }
    let started = Instant::now();
    let flushed = store.sync_log().map_err(Arc::new);
    let took = started.elapsed();
    latency.group_commit_micros.store(
        took.as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    for (r, reply) in group.drain(..) {
        let _ = reply.send(flushed.clone().map(|()| r));
    }
    took
}

/// Group commit's wait for stragglers (as PostgreSQL's `commit_delay` with
/// `commit_siblings`): the appenders answered by one fsync come back at once, but one by one,
/// and the first of them used to start the next group alone, so with 16 appenders groups
/// alternated between a few and the rest, two fsyncs a round. A group smaller than the last
/// one waits, parked, for more puts: until it is as large, or for at most half the last fsync
/// (never more than [`Gather::MAX_WAIT`]). A lone appender (last group of one) never waits.
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

    /// The next request for a group of `size` puts when none is waiting: one that arrives
    /// within the wait, if the group should wait.
    fn straggler(
        &mut self,
        timer: &tokio::runtime::Runtime,
        rx: &mut mpsc::Receiver<Request>,
        size: usize,
    ) -> Option<Request> {
        let wait = self.wait_left(size, Instant::now())?;
        timer
            .block_on(async { tokio::time::timeout(wait, rx.recv()).await })
            .ok()
            .flatten()
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

fn serve(store: &mut MessageStore, req: Request) {
    match req {
        Request::Put(..) => unreachable!("puts are grouped"),
        Request::Run(job) => job(store),
        Request::Close(_) => unreachable!("handled in the loop"),
        Request::Get {
            topic,
            queue_id,
            offset,
            max_msgs,
            max_bytes,
            reply,
        } => {
            let r = store
                .get(&topic, queue_id, offset, max_msgs, max_bytes, None)
                .map_err(Arc::new);
            let _ = reply.send(r);
        }
        Request::Offsets(topic, queue_id, reply) => {
            let _ = reply.send((
                store.min_offset(&topic, queue_id),
                store.max_offset(&topic, queue_id),
            ));
        }
        Request::Flush(reply) => {
            let _ = reply.send(store.sync_all().map_err(Arc::new));
        }
        Request::Flushes(reply) => {
            let _ = reply.send(store.flushes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    fn request() -> Request {
        Request::Flushes(oneshot::channel().0)
    }

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
    fn a_waiting_group_takes_a_request_that_is_already_there() {
        let timer = timer();
        let (tx, mut rx) = mpsc::channel(8);
        let mut gather = Gather::new(true);
        gather.committed(16, Duration::from_secs(1));
        tx.try_send(request()).unwrap();
        assert!(gather.straggler(&timer, &mut rx, 3).is_some());
        // None arrives: the wait ends at its deadline with nothing.
        assert!(gather.straggler(&timer, &mut rx, 4).is_none());
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
}
