//! Counters behind GET_BROKER_RUNTIME_INFO (spec §2.9.5) and the README's numbers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Broker-wide counters.
#[derive(Default)]
pub struct Stats {
    /// Messages stored.
    pub put_messages: AtomicU64,
    /// Bytes of bodies stored.
    pub put_bytes: AtomicU64,
    /// Puts that failed.
    pub put_failures: AtomicU64,
    /// Messages pulls returned.
    pub got_messages: AtomicU64,
    /// Pulls that found something.
    pub get_found: AtomicU64,
    /// Pulls that found nothing.
    pub get_miss: AtomicU64,
    /// Longest put (µs).
    pub put_max_micros: AtomicU64,
    /// One sample per second: (put messages, got messages), the last 600.
    samples: Mutex<VecDeque<(u64, u64)>>,
}

impl Stats {
    /// Counts a stored message.
    pub fn put(&self, body_len: usize, micros: u64) {
        self.put_messages.fetch_add(1, Ordering::Relaxed);
        self.put_bytes.fetch_add(body_len as u64, Ordering::Relaxed);
        self.put_max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// Takes the per-second sample (called every second).
    pub fn sample(&self) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        s.push_back((
            self.put_messages.load(Ordering::Relaxed),
            self.got_messages.load(Ordering::Relaxed),
        ));
        if s.len() > 601 {
            s.pop_front();
        }
    }

    /// Java's TPS strings: rates over the last 10 s, 60 s and 600 s, space-separated
    /// (`putTps`, `getTransferredTps`).
    pub fn tps(&self) -> (String, String) {
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let rate = |window: usize, pick: fn(&(u64, u64)) -> u64| -> String {
            if s.len() < 2 {
                return "0.0".into();
            }
            let n = window.min(s.len() - 1);
            let last = pick(&s[s.len() - 1]);
            let first = pick(&s[s.len() - 1 - n]);
            format!("{:.2}", (last - first) as f64 / n as f64)
        };
        let put = [10, 60, 600].map(|w| rate(w, |x| x.0)).join(" ");
        let get = [10, 60, 600].map(|w| rate(w, |x| x.1)).join(" ");
        (put, get)
    }
}
