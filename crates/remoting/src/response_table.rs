//! Pending requests of one connection, keyed by opaque.
//!
//! Per connection rather than per client (Java keeps one big table and scans it every second):
//! when a connection dies, failing exactly its requests is one drain, and each waiter has its own
//! deadline, so there is no timer scan. The `closed` flag lives under the same lock as the map so
//! that no request can be registered after the drain and then wait for nothing.

use crate::error::RemotingError;
use rmq_protocol::RemotingCommand;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Where a response (or the reason there will be none) is delivered.
pub(crate) type Completion = oneshot::Sender<Result<RemotingCommand, RemotingError>>;

/// Opaques are sequential ints the peer cannot choose for our table (a response for an unknown
/// opaque is dropped), so SipHash's flood resistance buys nothing here; a Fibonacci multiply
/// spreads them over the hash bits for a fraction of the cost.
#[derive(Default)]
struct OpaqueHasher(u64);

impl Hasher for OpaqueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, v: i32) {
        self.0 = u64::from(v as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Default)]
struct Inner {
    closed: bool,
    pending: HashMap<i32, Completion, BuildHasherDefault<OpaqueHasher>>,
}

/// Opaque -> waiter. Every entry leaves exactly once: completed, removed on timeout/cancel, or
/// failed when the connection closes.
#[derive(Default)]
pub(crate) struct ResponseTable {
    inner: Mutex<Inner>,
}

impl ResponseTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the map inconsistent (single operations).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a waiter; `Err` hands it back if the connection already closed.
    pub(crate) fn insert(&self, opaque: i32, tx: Completion) -> Result<(), Completion> {
        let mut g = self.lock();
        if g.closed {
            return Err(tx);
        }
        g.pending.insert(opaque, tx);
        Ok(())
    }

    /// Delivers a response; `false` when nobody waits for that opaque (late or unknown response).
    pub(crate) fn complete(
        &self,
        opaque: i32,
        result: Result<RemotingCommand, RemotingError>,
    ) -> bool {
        let tx = self.lock().pending.remove(&opaque);
        match tx {
            Some(tx) => {
                let _ = tx.send(result);
                true
            }
            None => false,
        }
    }

    /// Forgets a waiter (its caller timed out or went away).
    pub(crate) fn remove(&self, opaque: i32) {
        self.lock().pending.remove(&opaque);
    }

    /// Marks the table closed and fails every waiter with `err`, at once.
    pub(crate) fn fail_all(&self, err: RemotingError) {
        let drained: Vec<Completion> = {
            let mut g = self.lock();
            g.closed = true;
            g.pending.drain().map(|(_, tx)| tx).collect()
        };
        for tx in drained {
            let _ = tx.send(Err(err.clone()));
        }
    }

    /// Number of waiters (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.lock().pending.len()
    }
}
