//! The live heap of a test process: an allocator that counts the bytes Rust code holds, on top
//! of the allocator the `rmq` binary ships with (mimalloc). RSS says what the allocator keeps
//! from the system, which includes pages freed but cached for reuse by idle threads; the live
//! count says what the broker still holds, exactly, whatever the allocator's caching policy.
//!
//! A test binary opts in with
//! `#[global_allocator] static HEAP: support::heap::Counting = support::heap::Counting;`.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// mimalloc, counting the bytes allocated and not yet freed.
pub struct Counting;

// SAFETY: every call is forwarded unchanged to mimalloc's `GlobalAlloc`, which upholds the
// trait's contract; the counter is a relaxed atomic with no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }
}

/// Bytes allocated and not yet freed, in KiB (0 unless [`Counting`] is the global allocator).
pub fn live_kib() -> u64 {
    (LIVE.load(Ordering::Relaxed).max(0) / 1024) as u64
}
