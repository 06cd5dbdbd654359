//! Long polling (spec §2.3.4): a pull that finds nothing waits for its queue to grow, and is
//! answered as soon as a put lands in that queue, not on a polling tick.
//!
//! One [`tokio::sync::Notify`] per queue that has ever been waited on; every put (sends,
//! retries, delayed deliveries) wakes that queue's waiters, which re-read the store and
//! answer or wait again. A waiter registers before it reads, so a put between its read and its
//! wait is never missed. Shutdown wakes everyone at once, so no held pull delays a stop.

use crate::budgets::Client;
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
    /// Held pulls per connection and per client, for their budgets.
    counts: Mutex<HeldCounts>,
}

#[derive(Default)]
struct HeldCounts {
    per_connection: HashMap<u64, usize>,
    per_client: HashMap<Client, usize>,
}

/// Decrements `key`'s count, forgetting it at zero.
fn release<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = m.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            m.remove(key);
        }
    }
}

/// The budget a pull that would be held is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverHeld {
    /// maxHeldPullsPerConnection.
    Connection(usize),
    /// maxHeldPullsPerClient.
    Client(usize),
}

/// Counts a pull as held (in all, for its connection and for its client) while it lives.
pub struct Held<'a> {
    notifier: &'a PullNotifier,
    conn: u64,
    client: Client,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.notifier.held.fetch_sub(1, Ordering::SeqCst);
        let mut m = self
            .notifier
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        release(&mut m.per_connection, &self.conn);
        release(&mut m.per_client, &self.client);
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

    /// Marks a pull of connection `conn` (of `client`) as held until the guard drops; the
    /// budget it is over when the connection already holds `max_per_connection` or the
    /// client `max_per_client`.
    pub fn hold(
        &self,
        conn: u64,
        client: Client,
        max_per_connection: usize,
        max_per_client: usize,
    ) -> Result<Held<'_>, OverHeld> {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if m.per_connection.get(&conn).copied().unwrap_or(0) >= max_per_connection {
            return Err(OverHeld::Connection(max_per_connection));
        }
        if m.per_client.get(&client).copied().unwrap_or(0) >= max_per_client {
            return Err(OverHeld::Client(max_per_client));
        }
        *m.per_connection.entry(conn).or_insert(0) += 1;
        *m.per_client.entry(client).or_insert(0) += 1;
        self.held.fetch_add(1, Ordering::SeqCst);
        Ok(Held {
            notifier: self,
            conn,
            client,
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
