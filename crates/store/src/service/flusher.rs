//! The periodic flush's thread (`rmq-store-flush`).

use super::lock::lock;
use super::FlushLatency;
use crate::store::{MessageStore, StoreError, SyncJob};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// The periodic flush's own thread: the `rmq-store` thread hands it the files to fsync and
/// lets go of the store, so an ASYNC_FLUSH fsync of many megabytes never stalls puts and
/// reads. One job at a time; a job due while one runs is skipped (the next one covers its
/// files).
pub(super) struct Flusher {
    /// `None` once dropped: the thread then ends.
    jobs: Option<std::sync::mpsc::SyncSender<SyncJob>>,
    state: FlusherState,
    /// Set with the first failure: checked with one atomic load per lock.
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// (busy, the first failure), and the condition a waiter for "not busy" waits on.
type FlusherState = Arc<(Mutex<(bool, Option<String>)>, Condvar)>;

impl Flusher {
    pub(super) fn start(latency: Arc<FlushLatency>) -> Flusher {
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
            jobs: Some(tx),
            state,
            failed,
            thread,
        }
    }

    /// Starts a flush of everything written so far, unless one is running.
    pub(super) fn submit(&self, store: &mut MessageStore) {
        let Some(jobs) = &self.jobs else { return };
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
    pub(super) fn wait_idle(&self) {
        let (state, cv) = &*self.state;
        let mut g = lock(state);
        while g.0 {
            g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A failed job makes the store refuse writes (and say why) from now on.
    pub(super) fn apply_failure(&self, store: &mut MessageStore) {
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
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
