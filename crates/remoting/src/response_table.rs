//! Pending requests of one connection, keyed by opaque.
//!
//! Per connection rather than per client (Java keeps one big table and scans it every second):
//! when a connection dies, failing exactly its requests is one drain, and each waiter has its own
//! deadline. The `closed` flag lives under the same lock as the map so that no request can be
//! registered after the drain and then wait for nothing.
//!
//! A waiter is either a task (a oneshot it awaits with its own timer) or a callback (Java's
//! `InvokeCallback`): the callback runs on the connection's reader task as the response is read,
//! with no task wake-up or channel in between, and its deadline is enforced by
//! [`ResponseTable::expire`], which a scan task of the connection calls every 100 ms while
//! callback waiters exist, as Java's `scanResponseTable` does every second.

use crate::error::RemotingError;
use rmq_protocol::RemotingCommand;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// What a response, or the reason there will be none, is.
pub(crate) type Outcome = Result<RemotingCommand, RemotingError>;

/// A callback waiter past its deadline: its timeout, callback and kept request.
type Expired = (u64, KeepingCallback, Option<Box<RemotingCommand>>);

/// A function run once with a request's outcome.
pub type InvokeCallback = Box<dyn FnOnce(Outcome) + Send>;

/// The runtime's own callback form: also gets the request back when its waiter asked the writer
/// to keep it (for after-response hooks and GO_AWAY resends, without copying every request).
pub(crate) type KeepingCallback = Box<dyn FnOnce(Outcome, Option<Box<RemotingCommand>>) + Send>;

/// Where a response (or the reason there will be none) is delivered.
pub(crate) enum Completion {
    /// A task awaits the receiver (and enforces its own timeout).
    Task(oneshot::Sender<Outcome>),
    /// Run on delivery; failed with a timeout by [`ResponseTable::expire`] after `deadline`.
    Callback {
        deadline: tokio::time::Instant,
        timeout_ms: u64,
        callback: KeepingCallback,
        /// Whether the writer should hand the request back once written ([`ResponseTable::keep_written`]).
        keep: bool,
        /// Boxed: the map's entries stay small (they move on every insert and removal).
        kept: Option<Box<RemotingCommand>>,
    },
}

impl Completion {
    pub(crate) fn deliver(self, outcome: Outcome) {
        match self {
            Completion::Task(tx) => {
                let _ = tx.send(outcome);
            }
            Completion::Callback { callback, kept, .. } => run_callback(callback, outcome, kept),
        }
    }
}

/// Runs a callback; a panic in it is logged and goes no further: it has had its request's
/// outcome, and the connection's reader (or the expiry scan) it runs on carries on for the rest.
fn run_callback(callback: KeepingCallback, outcome: Outcome, kept: Option<Box<RemotingCommand>>) {
    let run = std::panic::AssertUnwindSafe(move || callback(outcome, kept));
    if let Err(panic) = std::panic::catch_unwind(run) {
        tracing::error!(
            panic = %crate::panic_message(&*panic),
            "invoke callback panicked; the connection and other requests carry on"
        );
    }
}

/// Why a waiter could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The connection closed.
    Closed,
    /// Another request with that opaque is still waiting (its response must not be taken).
    OpaquePending,
}

impl Refused {
    pub(crate) fn into_error(self, peer: &str, opaque: i32) -> RemotingError {
        match self {
            Refused::Closed => RemotingError::closed(peer),
            Refused::OpaquePending => RemotingError::SendRequest {
                addr: peer.to_owned(),
                reason: format!("opaque {opaque} is already pending on this connection"),
            },
        }
    }
}

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
    /// Callback waiters among `pending`: `expire` has nothing to scan while this is zero.
    callbacks: usize,
    /// Callback waiters that want their request back once written.
    keepers: usize,
    /// An expiry scan is running (started by the first callback waiter, ended by `expire` when
    /// none is left).
    scanning: bool,
    pending: HashMap<i32, Completion, BuildHasherDefault<OpaqueHasher>>,
}

impl Inner {
    fn take(&mut self, opaque: i32) -> Option<Completion> {
        let c = self.pending.remove(&opaque)?;
        self.forget(&c);
        Some(c)
    }

    /// Keeps the counters right as `c` leaves the map.
    fn forget(&mut self, c: &Completion) {
        if let Completion::Callback { keep, .. } = c {
            self.callbacks -= 1;
            self.keepers -= usize::from(*keep);
        }
    }
}

/// Opaque -> waiter. Every entry leaves exactly once: completed, removed on timeout/cancel, or
/// failed when the connection closes.
#[derive(Default)]
pub(crate) struct ResponseTable {
    inner: Mutex<Inner>,
}

impl ResponseTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Poisoning: nothing that can panic runs under this lock (waiters are delivered after it
        // is released, and callbacks' panics are caught), and every critical section keeps the
        // map and its counters consistent at each step that could unwind (a HashMap operation
        // that fails to allocate aborts instead). So a poisoned lock still guards a consistent
        // table: take it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a waiter; `Err` hands it back if the connection already closed or a waiter for
    /// the same opaque is pending (a caller choosing its own opaque must not steal another
    /// request's response). `Ok(true)` when a callback waiter arrives and no expiry scan runs:
    /// the caller must start one.
    pub(crate) fn insert(
        &self,
        opaque: i32,
        tx: Completion,
    ) -> Result<bool, (Completion, Refused)> {
        let mut g = self.lock();
        if g.closed {
            return Err((tx, Refused::Closed));
        }
        if g.pending.contains_key(&opaque) {
            return Err((tx, Refused::OpaquePending));
        }
        let mut start_scan = false;
        if let Completion::Callback { keep, .. } = &tx {
            g.callbacks += 1;
            g.keepers += usize::from(*keep);
            start_scan = !g.scanning;
            g.scanning = true;
        }
        g.pending.insert(opaque, tx);
        Ok(start_scan)
    }

    /// Delivers a response; `false` when nobody waits for that opaque (late or unknown response).
    pub(crate) fn complete(&self, opaque: i32, result: Outcome) -> bool {
        // Taken under the lock, delivered outside it: a callback may send the next request.
        let waiter = self.lock().take(opaque);
        match waiter {
            Some(w) => {
                w.deliver(result);
                true
            }
            None => false,
        }
    }

    /// Forgets a waiter (its caller timed out or went away).
    pub(crate) fn remove(&self, opaque: i32) {
        self.lock().take(opaque);
    }

    /// Fails every callback waiter whose deadline has passed with a timeout naming `peer`.
    /// Task waiters keep their own timers and are left alone. `false` when the scan should stop
    /// (no callback waiter left, or the table closed); it is then marked stopped.
    pub(crate) fn expire(&self, now: tokio::time::Instant, peer: &str) -> bool {
        let (expired, go_on): (Vec<Expired>, bool) = {
            let mut g = self.lock();
            let due: Vec<i32> = g
                .pending
                .iter()
                .filter(
                    |(_, c)| matches!(c, Completion::Callback { deadline, .. } if *deadline <= now),
                )
                .map(|(opaque, _)| *opaque)
                .collect();
            let expired = due
                .into_iter()
                .filter_map(|opaque| match g.take(opaque) {
                    Some(Completion::Callback {
                        timeout_ms,
                        callback,
                        kept,
                        ..
                    }) => Some((timeout_ms, callback, kept)),
                    _ => None,
                })
                .collect();
            let go_on = g.callbacks > 0 && !g.closed;
            g.scanning = go_on;
            (expired, go_on)
        };
        for (timeout_ms, callback, kept) in expired {
            let timeout = RemotingError::Timeout {
                addr: peer.to_owned(),
                timeout_ms,
            };
            run_callback(callback, Err(timeout), kept);
        }
        go_on
    }

    /// Gives a just-written request to its waiter if that waiter asked for it; otherwise (or when
    /// nobody waits any more) hands it back to be dropped. Cheap when no waiter wants one.
    pub(crate) fn keep_written(&self, cmd: RemotingCommand) -> Option<RemotingCommand> {
        let mut g = self.lock();
        if g.keepers == 0 {
            return Some(cmd);
        }
        match g.pending.get_mut(&cmd.opaque) {
            Some(Completion::Callback {
                keep: true, kept, ..
            }) => {
                *kept = Some(Box::new(cmd));
                None
            }
            _ => Some(cmd),
        }
    }

    /// Marks the table closed and fails every waiter with `err`, at once.
    pub(crate) fn fail_all(&self, err: RemotingError) {
        let drained: Vec<Completion> = {
            let mut g = self.lock();
            g.closed = true;
            g.callbacks = 0;
            g.keepers = 0;
            g.pending.drain().map(|(_, tx)| tx).collect()
        };
        for tx in drained {
            tx.deliver(Err(err.clone()));
        }
    }

    /// Number of waiters (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.lock().pending.len()
    }
}
