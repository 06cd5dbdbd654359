//! Warming the page cache ahead of the appends, on a thread of its own.
//!
//! An append into a page not yet in the page cache allocates the page and zeroes it (the
//! segment's blocks are reserved but unwritten, which reads as zeros): in a fault through the
//! map, or in `write_begin` under `pwrite`. Profiled at 57k msgs/s of 1 KiB, that was a fifth
//! of the broker's CPU, all of it on the appending runtime thread and under the store's lock.
//! Here a thread asks the kernel for the next pages first (`posix_fadvise(WILLNEED)`, which
//! reads them in: zeroed, clean, not dirtied), so the append finds them cached.
//!
//! Nothing depends on it: a warmed page the kernel evicts again, a request dropped because the
//! thread is behind, or a filesystem that ignores the advice only brings back the slow path.
//! It changes no byte of any file.

use std::fs::File;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Bytes kept warm past the end of the log.
const AHEAD: u64 = 4 << 20;

/// Requests queued for the thread at most; more are dropped (a later one covers them).
const QUEUE: usize = 2;

/// A range of a segment to read into the page cache.
struct Warm {
    /// The segment's own handle (a duplicate: the log may close its one meanwhile).
    file: File,
    /// Offset within the segment.
    from: u64,
    len: u64,
}

/// The warming thread and how far it was asked to go.
pub(super) struct Ahead {
    tx: Option<SyncSender<Warm>>,
    thread: Option<JoinHandle<()>>,
    /// The log offset up to which warming was requested.
    requested: u64,
}

impl Ahead {
    /// No thread until the first append asks for one.
    pub(super) fn new() -> Self {
        Ahead {
            tx: None,
            thread: None,
            requested: 0,
        }
    }

    /// After an append that ended the log at `end`, in the segment starting at `base`
    /// (`size` bytes): when less than half of [`AHEAD`] is still warm, asks for up to
    /// [`AHEAD`] past `end` (never past the segment). Cheap otherwise: one comparison.
    pub(super) fn appended(&mut self, file: &File, base: u64, size: u64, end: u64) {
        if end + AHEAD / 2 <= self.requested {
            return;
        }
        let to = (end + AHEAD).min(base + size);
        self.requested = to;
        if to <= end {
            return;
        }
        let Some(tx) = self.sender() else { return };
        let Ok(file) = file.try_clone() else { return };
        let warm = Warm {
            file,
            from: end - base,
            len: to - end,
        };
        match tx.try_send(warm) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// The thread's queue, starting the thread on first use (`None`: it could not start).
    fn sender(&mut self) -> Option<&SyncSender<Warm>> {
        if self.tx.is_none() && self.thread.is_none() {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            match std::thread::Builder::new()
                .name("rmq-store-ahead".into())
                .spawn(move || warm_loop(rx))
            {
                Ok(handle) => {
                    self.tx = Some(tx);
                    self.thread = Some(handle);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no page-cache warming thread");
                    // `thread` stays None and `tx` None: asked again at the next request.
                    return None;
                }
            }
        }
        self.tx.as_ref()
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn warm_loop(rx: Receiver<Warm>) {
    while let Ok(w) = rx.recv() {
        let len = std::num::NonZeroU64::new(w.len);
        if let Err(e) = rustix::fs::fadvise(&w.file, w.from, len, rustix::fs::Advice::WillNeed) {
            tracing::debug!(error = %e, "page-cache warming refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests go out when less than half the window is warm, cover the window past the end,
    /// stop at the segment's end, and start again in the next segment.
    #[test]
    fn warms_a_window_ahead_within_the_segment() {
        let file = tempfile::tempfile().unwrap();
        let size = 64 << 20;
        file.set_len(size).unwrap();
        let mut ahead = Ahead::new();
        ahead.appended(&file, 0, size, 100);
        assert_eq!(ahead.requested, 100 + AHEAD);
        ahead.appended(&file, 0, size, 1 << 20);
        assert_eq!(ahead.requested, 100 + AHEAD, "more than half still warm");
        let end = 100 + AHEAD / 2 + 1;
        ahead.appended(&file, 0, size, end);
        assert_eq!(ahead.requested, end + AHEAD);
        ahead.appended(&file, 0, size, size - (1 << 20));
        assert_eq!(ahead.requested, size, "never past the segment");
        ahead.appended(&file, size, size, size + 10);
        assert_eq!(ahead.requested, size + 10 + AHEAD, "the next segment");
        assert!(ahead.thread.is_some());
        drop(ahead); // joins the thread
    }
}
