//! Shares of the broker's shared queues, per connection and per client: how many store
//! requests one connection, and one client over all its connections, may have queued for the
//! store thread, and how many pull answers they may have built and waiting to be written.
//!
//! A turn takes a permit of the connection's semaphore, then of its client's (always in that
//! order, so no two waiters hold each other up crosswise) and gives both back when dropped. A
//! client is a source IP (see [`crate::budgets::Client`]): opening more connections buys a
//! client more than one connection's share, never more than the client's.

use crate::budgets::Client;
use rmq_remoting::ConnectionHandle;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pull answers of one connection being built or waiting for room in its write queue at once:
/// each can be `maxTransferBytesOnMessageInMemory` (256 KiB), so a client that pipelines pulls
/// and never reads their answers holds at most 16 of them (4 MiB) plus its write queue, and is
/// then not read (its in-flight pulls wait for a turn, holding no answer).
pub const PULL_ANSWERS_PER_CONNECTION: usize = 16;
/// Pull answers of one client over all its connections (32 MiB at 256 KiB each).
pub const PULL_ANSWERS_PER_CLIENT: usize = 128;

/// Store requests (puts, reads) one connection may have waiting for the store at once (puts
/// for its lock, reads for it on the blocking pool). Without a share one client pipelining
/// sends faster than they are processed could fill the lock's queue and the blocking pool and
/// put every other client's request behind all of its own; with it, another client waits
/// behind at most this many per busy connection. More than a well-behaved producer keeps in
/// flight (`rmq send` keeps 64).
pub const STORE_SHARE: usize = 128;
/// Store requests one client may have waiting over all its connections, so that a client with
/// many connections cannot take the whole store for itself.
pub const STORE_SHARE_PER_CLIENT: usize = 1024;

/// Past this many clients' semaphores, those nobody holds are dropped (they would be made anew
/// with all their permits): the table stays the size of the busy clients.
const CLIENTS_BEFORE_PRUNE: usize = 1024;

/// Semaphores of `per_connection` permits per connection and `per_client` per client, made at
/// first use; a connection's is forgotten when it closes.
pub struct Shares {
    per_connection: usize,
    per_client: usize,
    connections: Mutex<HashMap<u64, Arc<Semaphore>>>,
    clients: Mutex<HashMap<Client, Arc<Semaphore>>>,
}

/// A turn of a connection's share and its client's, given back when dropped.
pub struct Turn {
    _connection: OwnedSemaphorePermit,
    _client: OwnedSemaphorePermit,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning: every critical section is a map lookup, insert or removal.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shares {
    /// Shares of `per_connection` turns per connection and `per_client` per client.
    pub fn new(per_connection: usize, per_client: usize) -> Self {
        Shares {
            per_connection,
            per_client,
            connections: Default::default(),
            clients: Default::default(),
        }
    }

    /// The connection's semaphore. A request of a connection that already closed (it ran on
    /// after the close) gets one that is not kept: the close's `forget` came first, and an
    /// entry made now would never go.
    fn connection(&self, conn: &ConnectionHandle) -> Arc<Semaphore> {
        let id = conn.id();
        let mut m = lock(&self.connections);
        let sem = m
            .entry(id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_connection)))
            .clone();
        // Checked after the insert: a close marks the connection closed before `forget`.
        if conn.is_closed() {
            m.remove(&id);
        }
        sem
    }

    fn client(&self, client: Client) -> Arc<Semaphore> {
        let mut m = lock(&self.clients);
        if m.len() >= CLIENTS_BEFORE_PRUNE && !m.contains_key(&client) {
            // Held by nobody but the table: no permit out, no waiter.
            m.retain(|_, sem| Arc::strong_count(sem) > 1);
        }
        m.entry(client)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_client)))
            .clone()
    }

    /// A turn if one is free now, for the connection and its client.
    pub fn try_turn(&self, conn: &ConnectionHandle) -> Option<Turn> {
        self.try_turn_of(self.connection(conn), self.client(Client::of(conn)))
    }

    fn try_turn_of(&self, connection: Arc<Semaphore>, client: Arc<Semaphore>) -> Option<Turn> {
        let connection = connection.try_acquire_owned().ok()?;
        let client = client.try_acquire_owned().ok()?;
        Some(Turn {
            _connection: connection,
            _client: client,
        })
    }

    /// Waits for a turn of the connection's share, then of its client's.
    pub async fn turn(&self, conn: &ConnectionHandle) -> Turn {
        let (connection, client) = (self.connection(conn), self.client(Client::of(conn)));
        Turn {
            _connection: connection
                .acquire_owned()
                .await
                .expect("a share's semaphore is never closed"),
            _client: client
                .acquire_owned()
                .await
                .expect("a share's semaphore is never closed"),
        }
    }

    /// A connection closed: forget its share (its client's stays while others use it).
    pub fn forget(&self, conn: u64) {
        lock(&self.connections).remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_connections_share_its_turns() {
        let shares = Shares::new(2, 3);
        let (a, b) = (Client::Connection(100), Client::Connection(200));
        let conn = |_id: u64| Arc::new(Semaphore::new(2));
        let (a1, a2, b1) = (conn(1), conn(2), conn(3));
        let take = |c: &Arc<Semaphore>, who| shares.try_turn_of(c.clone(), shares.client(who));
        let held: Vec<Turn> = [take(&a1, a), take(&a1, a), take(&a2, a)]
            .into_iter()
            .map(|t| t.expect("within both shares"))
            .collect();
        // The connection's share is spent, then the client's (over its two connections)...
        assert!(take(&a1, a).is_none());
        assert!(take(&a2, a).is_none());
        // ...while another client takes its own.
        assert!(take(&b1, b).is_some());
        drop(held);
        assert!(take(&a2, a).is_some());
    }

    #[test]
    fn unheld_client_semaphores_are_pruned() {
        let shares = Shares::new(1, 1);
        for i in 0..CLIENTS_BEFORE_PRUNE as u64 {
            shares.client(Client::Connection(i));
        }
        let held = shares.client(Client::Connection(0));
        shares.client(Client::Connection(u64::MAX));
        assert_eq!(lock(&shares.clients).len(), 2);
        drop(held);
    }
}
