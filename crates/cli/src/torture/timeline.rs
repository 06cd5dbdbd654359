//! When the broker served, and when retention moved a queue's start: what "due" and "excused"
//! are decided on. A delayed message is due once the broker has served for a margin past its
//! delivery time (a broker that is down delivers nothing); a message whose queue position is
//! unknown (a give-back, a delivered delay) is excused only if its queue's min offset moved
//! after it was due.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The broker's serving windows and the queues' min-offset moves.
#[derive(Debug, Default)]
pub struct Timeline {
    /// [ready, killed) of each run that got ready; the last may be open.
    windows: Vec<(Instant, Option<Instant>)>,
    /// (topic, queue) -> (last min offset seen, when it was first seen at that value).
    mins: HashMap<(String, i32), (i64, Instant)>,
}

impl Timeline {
    /// The broker is ready (serving) from `at`.
    pub fn up(&mut self, at: Instant) {
        self.windows.push((at, None));
    }

    /// The broker stopped serving at `at`.
    pub fn down(&mut self, at: Instant) {
        if let Some(w) = self.windows.last_mut() {
            w.1.get_or_insert(at);
        }
    }

    /// How long the broker has served between `since` and `now`.
    pub fn uptime_since(&self, since: Instant, now: Instant) -> Duration {
        self.windows
            .iter()
            .map(|&(start, end)| {
                let (a, b) = (start.max(since), end.unwrap_or(now).min(now));
                b.saturating_duration_since(a)
            })
            .sum()
    }

    /// Notes a queue's min offset as read at `now`.
    pub fn saw_min(&mut self, topic: &str, queue_id: i32, min: i64, now: Instant) {
        let e = self
            .mins
            .entry((topic.to_owned(), queue_id))
            .or_insert((min, now));
        if e.0 != min {
            *e = (min, now);
        }
    }

    /// Whether the queue's min offset moved (retention) after `t`: what it held before may be
    /// gone, so a copy of unknown position that is missing is excused.
    pub fn min_moved_after(&self, topic: &str, queue_id: i32, t: Instant) -> bool {
        self.mins
            .get(&(topic.to_owned(), queue_id))
            .is_some_and(|&(min, at)| min > 0 && at > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_counts_only_serving_windows() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut t = Timeline::default();
        t.up(s(0));
        t.down(s(10));
        t.up(s(20));
        assert_eq!(t.uptime_since(s(5), s(25)), Duration::from_secs(10));
        assert_eq!(t.uptime_since(s(12), s(19)), Duration::ZERO);
        assert_eq!(t.uptime_since(s(30), s(25)), Duration::ZERO);
    }

    #[test]
    fn min_moves_are_dated() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        t.saw_min("T", 0, 0, t0);
        assert!(!t.min_moved_after("T", 0, t0 - Duration::from_secs(1)));
        let later = t0 + Duration::from_secs(5);
        t.saw_min("T", 0, 40, later);
        assert!(t.min_moved_after("T", 0, t0));
        assert!(!t.min_moved_after("T", 0, later));
        t.saw_min("T", 0, 40, later + Duration::from_secs(5));
        assert!(
            t.min_moved_after("T", 0, t0),
            "the first sighting dates the move"
        );
        assert!(!t.min_moved_after("U", 0, t0));
    }
}
