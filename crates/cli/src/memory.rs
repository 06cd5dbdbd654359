//! Keeping a broker's memory near its working set, so that a burst (a client flooding it with
//! sends it never reads, then leaving) does not leave the process holding the burst's pages.
//!
//! Measured on `rmq standalone` with the starve flood (README, Limits), anonymous RSS:
//! - as mimalloc leaves it: 12-15 MB idle, 31-41 MB after, for good;
//! - with what this module does: 2 MB idle, 4.5 MB after, flat over repeated floods.
//!
//! Three causes, three nudges:
//! - **Transparent huge pages.** mimalloc asks for huge pages on its arena, so one touched
//!   byte makes 2 MB resident and a page freed inside it returns nothing. The broker's heap
//!   is small and short-lived (records, frames), the TLB gain measured nil (`rmq send` async
//!   and sync within noise), so THP is off for the process.
//! - **Pages held by idle threads.** mimalloc frees a page back to its arena only when the
//!   owning thread next collects; a runtime worker that parks after a burst never does. A
//!   worker about to park collects its own heap, at most every [`PARK_COLLECT_EVERY`].
//! - **Purges nobody runs.** Emptied arena pages are returned to the OS after mimalloc's
//!   `purge_delay` (1 s), but only when some thread later calls into the allocator. The
//!   `memory` thread collects every [`PURGE_EVERY`]. (Purging at once on every free,
//!   `MIMALLOC_PURGE_DELAY=0`, cost ~11 % of send throughput.)

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often a parking runtime worker may collect its heap: rare enough to cost nothing under
/// load (workers park thousands of times a second), often enough that a worker's last park
/// after a burst usually collects.
pub const PARK_COLLECT_EVERY: Duration = Duration::from_millis(100);

/// How often the `memory` thread runs the purges that have come due.
pub const PURGE_EVERY: Duration = Duration::from_millis(500);

/// The runtime of a long-running server process (broker, NameServer), set up as above.
pub fn server_runtime() -> tokio::runtime::Runtime {
    server_process();
    tokio::runtime::Builder::new_multi_thread()
        .on_thread_park(on_worker_park)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// THP off for the process and the `memory` thread started.
fn server_process() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!("transparent huge pages left on: {e}");
    }
    let spawned = std::thread::Builder::new()
        .name("memory".into())
        .spawn(|| loop {
            std::thread::sleep(PURGE_EVERY);
            collect();
        });
    if let Err(e) = spawned {
        tracing::warn!("memory thread not started: {e}");
    }
}

thread_local! {
    static LAST_COLLECT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// For `tokio::runtime::Builder::on_thread_park`: collects this worker's heap if it has not
/// done so for [`PARK_COLLECT_EVERY`].
fn on_worker_park() {
    let now = Instant::now();
    let due = LAST_COLLECT.with(|last| match last.get() {
        Some(t) if now.duration_since(t) < PARK_COLLECT_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        collect();
    }
}

fn collect() {
    // SAFETY: `mi_collect` takes no pointers; it walks the calling thread's own heap and the
    // allocator's arenas under mimalloc's own synchronisation, and mimalloc documents it as
    // callable from any thread at any time. It is the library `GLOBAL` (main.rs) links.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
