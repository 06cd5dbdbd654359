//! The store's lock, and the poison-ignoring `lock` for the service's plain mutexes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A mutex for tasks and threads alike, not fair on purpose: a task that finds it taken parks
/// (its runtime thread goes on with other work) and is woken when it is released, but a task
/// or thread that comes while it is free takes it at once (barging). tokio's own mutex is
/// fair: it hands the lock to the next waiter, which then holds it until a runtime thread
/// gets round to running it, so under load every hand-off waited behind the run queue (a
/// canary's send beside a flooding client: p50 2 ms with the store thread, 327 ms with
/// tokio's mutex). Threads (the group commit, the housekeeping, queries on the blocking pool)
/// block on it as on any mutex.
pub(super) struct BargingLock<T> {
    inner: Mutex<T>,
    /// Tasks parked waiting for a release.
    waiting: AtomicUsize,
    released: tokio::sync::Notify,
}

/// The lock held (see [`BargingLock`]); a release wakes one parked task, if any.
pub(super) struct Held<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    lock: &'a BargingLock<T>,
}

impl<T> BargingLock<T> {
    pub(super) fn new(value: T) -> Self {
        BargingLock {
            inner: Mutex::new(value),
            waiting: AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn try_held(&self) -> Option<Held<'_, T>> {
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
    pub(super) async fn lock(&self) -> Held<'_, T> {
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
    pub(super) fn lock_blocking(&self) -> Held<'_, T> {
        Held {
            guard: Some(lock(&self.inner)),
            lock: self,
        }
    }
}

/// One task parked on a [`BargingLock`], counted for as long as it lives.
struct Waiter<'a>(&'a AtomicUsize);

impl<'a> Waiter<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
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

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

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
}
