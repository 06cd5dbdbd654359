//! Long polling (spec §2.3.4): a pull that finds nothing waits for its queue to grow, and is
//! answered as soon as a put lands in that queue, not on a polling tick.
//!
//! One [`tokio::sync::Notify`] per queue that has ever been waited on, and one per tag a held
//! pull filters on (Java's `MessageArrivingListener` checks the tags code the same way): a
//! put (sends, retries, delayed deliveries) wakes the queue's unfiltered waiters and the
//! waiters of its own tag, which re-read the store and answer or wait again; a pull filtering
//! on other tags sleeps on. A waiter registers before it reads, so a put between its read and
//! its wait is never missed. Shutdown wakes everyone at once, so no held pull delays a stop.

use crate::budgets::Client;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A queue's waiters: all of them, and per tags code those filtering on it.
#[derive(Default)]
struct QueueWaiters {
    /// Waiters with no filter, or several tags (woken by every put).
    any: Arc<Notify>,
    /// Waiters filtering on one tag, by its code; an entry goes with its last waiter.
    by_tag: HashMap<i64, Arc<Notify>>,
}

/// The queues pulls are waiting on.
#[derive(Default)]
pub struct PullNotifier {
    queues: Mutex<HashMap<String, HashMap<i32, QueueWaiters>>>,
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
    /// What a pull of the queue filtering on `codes` (`None`: everything) waits on: create
    /// the `notified()` future and `enable` it before reading the store. A pull on one tag is
    /// woken only by puts of that tag.
    pub fn listen(&self, topic: &str, queue_id: i32, codes: Option<&[i64]>) -> Listening<'_> {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let waiters = q
            .entry(topic.to_owned())
            .or_default()
            .entry(queue_id)
            .or_default();
        let (tag, notify) = match codes {
            Some([code]) => (
                Some(*code),
                waiters.by_tag.entry(*code).or_default().clone(),
            ),
            _ => (None, waiters.any.clone()),
        };
        Listening {
            notifier: self,
            topic: topic.to_owned(),
            queue_id,
            tag,
            notify,
        }
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

    /// A put whose queue entry has tags code `tag` (the code pull filters compare) landed in
    /// this queue: wake its unfiltered waiters and those filtering on that code (no
    /// allocation; a lookup when none wait).
    pub fn arrived(&self, topic: &str, queue_id: i32, tag: i64) {
        let q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = q.get(topic).and_then(|t| t.get(&queue_id)) else {
            return;
        };
        w.any.notify_waiters();
        if let Some(n) = w.by_tag.get(&tag) {
            n.notify_waiters();
        }
    }

    /// Forgets a deleted topic's queues.
    pub fn remove_topic(&self, topic: &str) {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queues) = q.remove(topic) {
            for w in queues.values() {
                w.any.notify_waiters();
                w.by_tag.values().for_each(|n| n.notify_waiters());
            }
        }
    }

    /// Tag entries held right now (a bound check: they go with their last waiter).
    pub fn tag_entries(&self) -> usize {
        let q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.values()
            .flat_map(|t| t.values())
            .map(|w| w.by_tag.len())
            .sum()
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

/// A held pull's registration with its queue (and tag): what it waits on. A tag's entry goes
/// when its last waiter drops, so filters a client makes up leave nothing behind.
pub struct Listening<'a> {
    notifier: &'a PullNotifier,
    topic: String,
    queue_id: i32,
    tag: Option<i64>,
    notify: Arc<Notify>,
}

impl Listening<'_> {
    /// Resolves when a put this pull may want lands (create and `enable` it before reading).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        let Some(code) = self.tag else { return };
        let mut q = self
            .notifier
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(w) = q
            .get_mut(&self.topic)
            .and_then(|t| t.get_mut(&self.queue_id))
        else {
            return;
        };
        // The table's reference and this one: nobody else waits on the tag.
        if w.by_tag
            .get(&code)
            .is_some_and(|n| Arc::strong_count(n) <= 2)
        {
            w.by_tag.remove(&code);
        }
    }
}
