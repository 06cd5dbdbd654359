//! Queue allocation among a group's members (spec §4.4): Java's AllocateMessageQueueAveragely,
//! exactly, so a group mixing Java and Rust members splits queues without overlap or gap; the
//! "by circle" variant; or a strategy of your own.

use crate::MessageQueue;

/// Which of `all` queues (sorted) member `me` of `members` (sorted client ids) takes.
pub trait Allocate: Send + Sync + 'static {
    /// The queues `me` consumes; empty when `me` is not a member.
    fn allocate(&self, me: &str, all: &[MessageQueue], members: &[String]) -> Vec<MessageQueue>;
    /// A name for logs.
    fn name(&self) -> &'static str;
}

/// Java's default: contiguous ranges, the first `all % members` members one queue more.
pub struct Averagely;

impl Allocate for Averagely {
    fn allocate(&self, me: &str, all: &[MessageQueue], members: &[String]) -> Vec<MessageQueue> {
        let Some(index) = members.iter().position(|m| m == me) else {
            return Vec::new();
        };
        if all.is_empty() {
            return Vec::new();
        }
        let (n, c) = (all.len(), members.len());
        let m = n % c;
        let average = if n <= c {
            1
        } else if m > 0 && index < m {
            n / c + 1
        } else {
            n / c
        };
        let start = if m > 0 && index < m {
            index * average
        } else {
            index * average + m
        };
        let range = average.min(n.saturating_sub(start));
        all.iter().skip(start).take(range).cloned().collect()
    }

    fn name(&self) -> &'static str {
        "AVG"
    }
}

/// Java's AllocateMessageQueueAveragelyByCircle: queue `i` goes to member `i % members`.
pub struct AveragelyByCircle;

impl Allocate for AveragelyByCircle {
    fn allocate(&self, me: &str, all: &[MessageQueue], members: &[String]) -> Vec<MessageQueue> {
        let Some(index) = members.iter().position(|m| m == me) else {
            return Vec::new();
        };
        all.iter()
            .enumerate()
            .filter(|(i, _)| i % members.len() == index)
            .map(|(_, q)| q.clone())
            .collect()
    }

    fn name(&self) -> &'static str {
        "AVG_BY_CIRCLE"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|q| MessageQueue {
                topic: "T".into(),
                broker_name: "b".into(),
                queue_id: q,
            })
            .collect()
    }

    fn ids(v: Vec<MessageQueue>) -> Vec<i32> {
        v.into_iter().map(|q| q.queue_id).collect()
    }

    #[test]
    fn java_examples_and_a_whole_split() {
        let members: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let a = Averagely;
        assert_eq!(ids(a.allocate("a", &queues(4), &members)), [0, 1]);
        assert_eq!(ids(a.allocate("b", &queues(4), &members)), [2]);
        assert_eq!(ids(a.allocate("c", &queues(4), &members)), [3]);
        assert_eq!(ids(a.allocate("a", &queues(8), &members)), [0, 1, 2]);
        assert_eq!(ids(a.allocate("b", &queues(8), &members)), [3, 4, 5]);
        assert_eq!(ids(a.allocate("c", &queues(8), &members)), [6, 7]);
        assert_eq!(
            ids(a.allocate("c", &queues(2), &members)),
            Vec::<i32>::new()
        );
        assert!(a.allocate("x", &queues(2), &members).is_empty());
        for n in 0..20 {
            for c in 1..6usize {
                let members: Vec<String> = (0..c).map(|i| format!("m{i}")).collect();
                let mut all: Vec<i32> = Vec::new();
                for m in &members {
                    all.extend(ids(a.allocate(m, &queues(n), &members)));
                }
                all.sort();
                assert_eq!(
                    all,
                    (0..n).collect::<Vec<_>>(),
                    "n={n} c={c}: no overlap, no gap"
                );
            }
        }
        assert_eq!(
            ids(AveragelyByCircle.allocate("b", &queues(5), &members)),
            [1, 4]
        );
    }
}
