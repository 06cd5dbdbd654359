//! Long polling (spec §2.3.4): a pull that finds nothing waits for its queue to grow, and is
//! answered as soon as a put lands in that queue, not on a polling tick.
//!
//! One [`tokio::sync::Notify`] per queue that has ever been waited on; every put (sends,
//! retries, delayed deliveries) wakes that queue's waiters, which re-read the store and
//! answer or wait again. A waiter registers before it reads, so a put between its read and its
//! wait is never missed. Shutdown wakes everyone at once, so no held pull delays a stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The queues pulls are waiting on.
#[derive(Default)]
pub struct PullNotifier {
    queues: Mutex<HashMap<(String, i32), Arc<Notify>>>,
    closing: AtomicBool,
    closed: Notify,
    held: AtomicUsize,
    /// Held pulls per connection (connection id -> count), for the per-connection budget.
    per_connection: Mutex<HashMap<u64, usize>>,
}

/// Counts a pull as held (in all and for its connection) while it lives.
pub struct Held<'a> {
    notifier: &'a PullNotifier,
    conn: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.notifier.held.fetch_sub(1, Ordering::SeqCst);
        let mut m = self
            .notifier
            .per_connection
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.conn) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.conn);
            }
        }
    }
}

impl PullNotifier {
    /// The queue's notifier, to wait on (create the `notified()` future and `enable` it before
    /// reading the store).
    pub fn listen(&self, topic: &str, queue_id: i32) -> Arc<Notify> {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.entry((topic.to_owned(), queue_id))
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Marks a pull of connection `conn` as held until the guard drops; `None` when that
    /// connection already holds `max_per_connection`.
    pub fn hold(&self, conn: u64, max_per_connection: usize) -> Option<Held<'_>> {
        let mut m = self
            .per_connection
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = m.entry(conn).or_insert(0);
        if *n >= max_per_connection {
            if *n == 0 {
                m.remove(&conn);
            }
            return None;
        }
        *n += 1;
        self.held.fetch_add(1, Ordering::SeqCst);
        Some(Held {
            notifier: self,
            conn,
        })
    }

    /// Pulls held right now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// A put landed in this queue: wake its waiters (no cost beyond a lookup when none wait).
    pub fn arrived(&self, topic: &str, queue_id: i32) {
        let q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        // The key is built only to look up; most puts find a waiter-less queue or none.
        if let Some(n) = q.get(&(topic.to_owned(), queue_id)) {
            n.notify_waiters();
        }
    }

    /// Forgets a deleted topic's queues.
    pub fn remove_topic(&self, topic: &str) {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.retain(|(t, _), n| {
            if t == topic {
                n.notify_waiters();
            }
            t != topic
        });
    }

    /// The broker is stopping: every held pull answers now.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.closed.notify_waiters();
    }

    /// Stopping?
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Resolves when [`close`](Self::close) is called (register before checking `is_closing`).
    pub fn closed(&self) -> tokio::sync::futures::Notified<'_> {
        self.closed.notified()
    }
}
