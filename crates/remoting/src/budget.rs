//! Byte budgets: how many bytes may be held somewhere (a connection's write queue, its requests
//! being processed, all requests of a server) before whoever wants more waits.
//!
//! Hand-written rather than a `tokio::sync::Semaphore` of bytes because this sits on every
//! request's path: taking and giving back here is one atomic add each when nobody waits (tokio's
//! semaphore takes a mutex on every release, which showed up as ~20% more server CPU per
//! request in `rmq bench compare`).
//!
//! A budget admits a taker when the bytes in use plus its own fit, or when nothing is in use at
//! all: a single frame larger than the whole budget still goes, alone.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Notify;

/// A registered interest in a budget's room (see [`ByteBudget::watch`]).
pub(crate) struct Watch<'a> {
    budget: &'a ByteBudget,
    notified: std::pin::Pin<Box<tokio::sync::futures::Notified<'a>>>,
}

impl Watch<'_> {
    /// Resolves when bytes are given back or the budget closes.
    pub(crate) async fn changed(mut self) {
        self.notified.as_mut().await;
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.budget.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The budget was closed (its connection ended) while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

pub(crate) struct ByteBudget {
    cap: usize,
    used: AtomicUsize,
    /// Takers waiting for room: givers notify only when there are some.
    waiting: AtomicUsize,
    closed: AtomicBool,
    room: Notify,
}

impl ByteBudget {
    pub(crate) fn new(cap: usize) -> Self {
        ByteBudget {
            cap: cap.max(1),
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            room: Notify::new(),
        }
    }

    /// Takes `n` bytes if they fit now.
    pub(crate) fn try_take(&self, n: usize) -> Result<bool, Closed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            if used != 0 && used.saturating_add(n) > self.cap {
                return Ok(false);
            }
            match self.used.compare_exchange_weak(
                used,
                used + n,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(true),
                Err(now) => used = now,
            }
        }
    }

    /// Takes `n` bytes, waiting for room; fails only if the budget is closed meanwhile.
    pub(crate) async fn take(&self, n: usize) -> Result<(), Closed> {
        loop {
            if self.try_take(n)? {
                return Ok(());
            }
            let room = self.watch();
            // Registered before the re-check, so a give in between is not missed.
            if self.try_take(n)? {
                return Ok(());
            }
            room.changed().await;
        }
    }

    /// Takes `n` bytes whether they fit or not (an overdraft the caller has a reason for).
    pub(crate) fn force_take(&self, n: usize) {
        self.used.fetch_add(n, Ordering::SeqCst);
    }

    /// Starts watching for bytes given back (or the budget closing): check your condition
    /// after this, then await [`Watch::changed`].
    pub(crate) fn watch(&self) -> Watch<'_> {
        let mut notified = Box::pin(self.room.notified());
        notified.as_mut().enable();
        // SeqCst here and in `give`: each side writes one variable and then reads the other
        // (the store-load pattern), which only sequential consistency orders.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Watch {
            budget: self,
            notified,
        }
    }

    /// Gives `n` bytes back.
    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Fails every waiting and future taker.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }

    /// Bytes in use.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn admits_what_fits_and_one_oversized_taker_alone() {
        let b = ByteBudget::new(100);
        assert_eq!(b.try_take(60), Ok(true));
        assert_eq!(b.try_take(50), Ok(false));
        assert_eq!(b.try_take(40), Ok(true));
        b.give(100);
        assert_eq!(b.try_take(1_000), Ok(true), "alone, larger than the budget");
        assert_eq!(b.try_take(1), Ok(false));
        b.give(1_000);
        assert_eq!(b.used(), 0);
        b.close();
        assert_eq!(b.try_take(1), Err(Closed));
    }

    #[tokio::test]
    async fn waiters_wake_on_give_and_fail_on_close() {
        let b = Arc::new(ByteBudget::new(10));
        assert_eq!(b.try_take(10), Ok(true));
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.take(5).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        b.give(10);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(2), waiter)
                .await
                .unwrap()
                .unwrap(),
            Ok(())
        );
        assert_eq!(b.try_take(6), Ok(false));
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.take(6).await })
        };
        tokio::task::yield_now().await;
        b.close();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(2), waiter)
                .await
                .unwrap()
                .unwrap(),
            Err(Closed)
        );
    }
}
