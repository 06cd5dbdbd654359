//! SYNC_FLUSH's group commit: the puts waiting for an fsync, the `rmq-store-commit` thread
//! that covers them, and its wait for stragglers.

use super::lock::lock;
use super::Shared;
use crate::store::StoreError;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A put's durability answer, from the group commit.
type Durable = oneshot::Sender<Result<(), Arc<StoreError>>>;

/// The puts waiting for the group commit (SYNC_FLUSH), each with the log's end after it.
#[derive(Default)]
pub(super) struct Commits {
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
    pub(super) fn register(&self, end: u64) -> oneshot::Receiver<Result<(), Arc<StoreError>>> {
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
    pub(super) fn durable_to(&self, end: u64) {
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
    pub(super) fn fail(&self, e: Arc<StoreError>) {
        let mut st = lock(&self.state);
        st.failed.get_or_insert(e.clone());
        let waiting = std::mem::take(&mut st.waiting);
        drop(st);
        for (_, tx) in waiting {
            let _ = tx.send(Err(e.clone()));
        }
    }

    pub(super) fn stop(&self) {
        lock(&self.state).stopped = true;
        self.wake.notify_all();
    }
}

/// The `rmq-store-commit` thread (SYNC_FLUSH): while puts wait, one fsync round covers all
/// of them, gathering stragglers first ([`Gather`]); ends when the store closes.
pub(super) fn group_commit(shared: &Shared) {
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
