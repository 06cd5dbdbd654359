//! Latency fault avoidance (Java MQFaultStrategy / LatencyFaultToleranceImpl, spec §9): a broker
//! whose last send was slow or failed is avoided for a while.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency thresholds (ms) and how long a broker is avoided after reaching each.
const LATENCY_MAX: [u64; 7] = [50, 100, 550, 1800, 3000, 5000, 15000];
const NOT_AVAILABLE: [u64; 7] = [0, 0, 2000, 5000, 6000, 10000, 30000];
/// A failed send counts as this latency (Java isolation).
pub const ISOLATION_LATENCY_MS: u64 = 10_000;

/// How long a broker is avoided after a send that took `latency_ms`.
pub fn not_available_for(latency_ms: u64) -> Duration {
    let i = LATENCY_MAX.iter().rposition(|&m| latency_ms >= m);
    Duration::from_millis(i.map_or(0, |i| NOT_AVAILABLE[i]))
}

/// Per-broker "avoid until" times.
#[derive(Default)]
pub struct FaultTable {
    until: Mutex<HashMap<String, Instant>>,
}

impl FaultTable {
    /// Records a send's outcome; `failed` counts as the isolation latency.
    pub fn update(&self, broker: &str, latency: Duration, failed: bool) {
        let ms = if failed {
            ISOLATION_LATENCY_MS
        } else {
            latency.as_millis() as u64
        };
        let d = not_available_for(ms);
        let mut t = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if d.is_zero() {
            t.remove(broker);
        } else {
            t.insert(broker.to_owned(), Instant::now() + d);
        }
    }

    /// Whether `broker` may be used now.
    pub fn is_available(&self, broker: &str) -> bool {
        let t = self.until.lock().unwrap_or_else(|p| p.into_inner());
        t.get(broker).is_none_or(|u| Instant::now() >= *u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_table() {
        assert_eq!(not_available_for(10), Duration::ZERO);
        assert_eq!(not_available_for(549), Duration::ZERO);
        assert_eq!(not_available_for(550), Duration::from_millis(2000));
        assert_eq!(
            not_available_for(ISOLATION_LATENCY_MS),
            Duration::from_millis(10000)
        );
        assert_eq!(not_available_for(99_999), Duration::from_millis(30000));
        let t = FaultTable::default();
        t.update("a", Duration::ZERO, true);
        assert!(!t.is_available("a") && t.is_available("b"));
        t.update("a", Duration::from_millis(1), false);
        assert!(t.is_available("a"));
    }
}
