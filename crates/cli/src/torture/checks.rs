//! The verdict after a restart, as a pure function of what was sent (the ledger), what the
//! reads found, the committed offsets and the timeline: every acknowledged message is there
//! (excused only below its queue's min offset), at the offset it was acknowledged at; nothing
//! came back that was never sent; queues are dense; due delays and give-backs were delivered;
//! the send-back group never committed past what its listener processed.

use super::ledger::{Kind, Ledger};
use super::reader::QueueRead;
use super::timeline::Timeline;
use super::topics::{DELAY_LEVELS_MS, RETRY_TOPIC, SCHEDULE_TOPIC};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Uptime past a delivery time after which a delayed message or a give-back must have been
/// delivered (the schedule service runs every 100 ms; this covers a restart's catch-up).
pub const DUE_MARGIN: Duration = Duration::from_secs(5);

/// A committed offset of the send-back group.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Topic as committed (`%RETRY%group` for the retry queue).
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// QUERY_CONSUMER_OFFSET's answer (`None`: nothing committed).
    pub offset: Option<i64>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What is broken, kebab-case (`lost`, `gap`, `never-sent`, ...).
    pub kind: &'static str,
    /// Identifies the finding across checks (a loss found again is the same loss).
    pub key: String,
    /// The id, topic, queue and offsets involved.
    pub text: String,
}

/// What one check found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Acknowledged messages that are missing: counter, and the queue (`topic/id`) their
    /// acknowledgement named.
    pub lost: Vec<(u64, String)>,
    /// Every broken rule (losses included).
    pub violations: Vec<Violation>,
    /// Acknowledged messages checked.
    pub acked: u64,
    /// Acknowledged messages excused (below their queue's min offset after retention).
    pub excused: u64,
    /// Extra copies of a message in one queue (a send retried after a lost answer, a delay
    /// delivered again after a crash).
    pub duplicates: u64,
    /// `duplicates` by queue (`topic/id`).
    pub duplicates_by_queue: BTreeMap<String, u64>,
    /// Delayed messages due by now, and those of them found in their real queue.
    pub delayed_due: u64,
    /// See `delayed_due`.
    pub delayed_delivered: u64,
    /// Acknowledged give-backs due by now, and those found in the retry queue.
    pub retries_due: u64,
    /// See `retries_due`.
    pub retries_delivered: u64,
    /// Messages read back.
    pub read: u64,
}

/// Where the copies of each message are: (index into the reads, queue offset).
struct Copies {
    first: Vec<Option<(u16, i64)>>,
    more: HashMap<u64, Vec<(u16, i64)>>,
}

impl Copies {
    fn of(&self, counter: u64) -> impl Iterator<Item = (u16, i64)> + '_ {
        self.first
            .get(counter as usize)
            .copied()
            .flatten()
            .into_iter()
            .chain(self.more.get(&counter).into_iter().flatten().copied())
    }
}

/// Checks everything the ledger holds against the reads (see the module doc).
pub fn check(
    ledger: &Ledger,
    reads: &[QueueRead],
    committed: &[Committed],
    timeline: &Timeline,
    now: Instant,
) -> Findings {
    let mut f = Findings::default();
    let index: HashMap<(&str, i32), usize> = reads
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.topic.as_str(), r.queue_id), i))
        .collect();
    let mut copies = Copies {
        first: vec![None; ledger.sent.len()],
        more: HashMap::new(),
    };
    for (qi, r) in reads.iter().enumerate() {
        let name = format!("{}/{}", r.topic, r.queue_id);
        for &(from, to) in &r.gaps {
            f.violations.push(Violation {
                kind: "gap",
                key: format!("gap {name} {from}"),
                text: format!(
                    "{name}: offsets {from}..{to} skipped, no message returned (queue {}..{})",
                    r.min, r.max
                ),
            });
        }
        for p in &r.problems {
            f.violations.push(Violation {
                kind: "pull",
                key: format!("pull {p}"),
                text: p.clone(),
            });
        }
        let mut seen_here: HashMap<u64, u32> = HashMap::new();
        for (offset, id) in &r.entries {
            f.read += 1;
            let counter = match id {
                Ok(c) if (*c as usize) < ledger.sent.len() => *c,
                Ok(c) => {
                    f.violations.push(Violation {
                        kind: "never-sent",
                        key: format!("never-sent {name} {offset}"),
                        text: format!("{name} offset {offset}: message {c} was never sent"),
                    });
                    continue;
                }
                Err(why) => {
                    f.violations.push(Violation {
                        kind: "never-sent",
                        key: format!("never-sent {name} {offset}"),
                        text: format!("{name} offset {offset}: {why}"),
                    });
                    continue;
                }
            };
            let sent = &ledger.sent[counter as usize];
            if !may_hold(&r.topic, sent.topic, sent.kind) {
                f.violations.push(Violation {
                    kind: "misplaced",
                    key: format!("misplaced {counter} {name}"),
                    text: format!(
                        "message {} ({}, sent to {}) found in {name} offset {offset}",
                        id_text(&ledger.run, counter),
                        sent.kind.name(),
                        sent.topic
                    ),
                });
            }
            let n = seen_here.entry(counter).or_default();
            *n += 1;
            if *n > 1 && r.topic != SCHEDULE_TOPIC {
                f.duplicates += 1;
                *f.duplicates_by_queue.entry(name.clone()).or_default() += 1;
            }
            let slot = &mut copies.first[counter as usize];
            if slot.is_none() {
                *slot = Some((qi as u16, *offset));
            } else {
                copies
                    .more
                    .entry(counter)
                    .or_default()
                    .push((qi as u16, *offset));
            }
        }
    }

    for (counter, sent) in ledger.sent.iter().enumerate() {
        let counter = counter as u64;
        let Some(ack) = sent.ack else { continue };
        f.acked += 1;
        let (topic, queue_id) = if sent.delay_level > 0 {
            (SCHEDULE_TOPIC, i32::from(sent.delay_level) - 1)
        } else {
            (sent.topic, ack.queue_id)
        };
        let Some(&qi) = index.get(&(topic, queue_id)) else {
            f.violations.push(Violation {
                kind: "unread",
                key: format!("unread {topic}/{queue_id}"),
                text: format!("{topic}/{queue_id} holds acknowledged messages but was not read"),
            });
            continue;
        };
        let r = &reads[qi];
        let mut in_queue = copies.of(counter).filter(|&(q, _)| q as usize == qi);
        let here: Vec<i64> = in_queue.by_ref().map(|(_, o)| o).collect();
        let what = || {
            format!(
                "message {} ({}, acknowledged in cycle {}) at {topic}/{queue_id} offset {}",
                id_text(&ledger.run, counter),
                sent.kind.name(),
                ack.cycle,
                ack.queue_offset
            )
        };
        if here.contains(&ack.queue_offset) {
            // Where it was acknowledged.
        } else if !here.is_empty() {
            f.violations.push(Violation {
                kind: "moved",
                key: format!("moved {counter}"),
                text: format!("{} found at offset(s) {here:?} instead", what()),
            });
        } else if ack.queue_offset < r.min {
            f.excused += 1;
        } else {
            f.lost.push((counter, format!("{topic}/{queue_id}")));
            f.violations.push(Violation {
                kind: "lost",
                key: format!("lost {counter}"),
                text: format!(
                    "{} is missing; the queue reads {}..{} now",
                    what(),
                    r.min,
                    r.max
                ),
            });
        }
        if sent.delay_level > 0 {
            let due = ack.at + delay_of(sent.delay_level);
            if timeline.uptime_since(due, now) >= DUE_MARGIN {
                f.delayed_due += 1;
                let delivered = index
                    .get(&(sent.topic, ack.queue_id))
                    .is_some_and(|&real| copies.of(counter).any(|(q, _)| q as usize == real));
                if delivered {
                    f.delayed_delivered += 1;
                } else if !timeline.min_moved_after(sent.topic, ack.queue_id, due) {
                    f.violations.push(Violation {
                        kind: "delay-not-delivered",
                        key: format!("delay {counter}"),
                        text: format!(
                            "{}: due {:.1} s of uptime ago, not in {}/{}",
                            what(),
                            timeline.uptime_since(due, now).as_secs_f64(),
                            sent.topic,
                            ack.queue_id
                        ),
                    });
                }
            }
        }
    }

    let retry_queue = index.get(&(RETRY_TOPIC, 0)).copied();
    for (&counter, g) in &ledger.gave_back {
        let due = g.at + delay_of(g.level);
        if timeline.uptime_since(due, now) < DUE_MARGIN {
            continue;
        }
        f.retries_due += 1;
        if retry_queue.is_some_and(|rq| copies.of(counter).any(|(q, _)| q as usize == rq)) {
            f.retries_delivered += 1;
        } else if !timeline.min_moved_after(RETRY_TOPIC, 0, due)
            && !timeline.min_moved_after(SCHEDULE_TOPIC, i32::from(g.level) - 1, g.at)
        {
            f.violations.push(Violation {
                kind: "retry-not-delivered",
                key: format!("retry {counter}"),
                text: format!(
                    "message {} given back (acknowledged) at level {}: due {:.1} s of uptime ago, not in {RETRY_TOPIC}/0",
                    id_text(&ledger.run, counter),
                    g.level,
                    timeline.uptime_since(due, now).as_secs_f64()
                ),
            });
        }
    }

    for c in committed {
        let Some(offset) = c.offset else { continue };
        let Some(&qi) = index.get(&(c.topic.as_str(), c.queue_id)) else {
            continue;
        };
        let r = &reads[qi];
        let name = format!("{}/{}", c.topic, c.queue_id);
        if offset > r.max {
            f.violations.push(Violation {
                kind: "offset-past-end",
                key: format!("offset-past-end {name} {offset}"),
                text: format!(
                    "the send-back group's committed offset {offset} of {name} is past the queue's max {}",
                    r.max
                ),
            });
        }
        let processed = ledger.processed.get(&(c.topic.clone(), c.queue_id));
        let unprocessed: Vec<i64> = (r.min.max(0)..offset.min(r.max))
            .filter(|o| !processed.is_some_and(|p| p.contains(o)))
            .collect();
        if let Some(first) = unprocessed.first() {
            f.violations.push(Violation {
                kind: "offset-ahead",
                key: format!("offset-ahead {name} {first}"),
                text: format!(
                    "the send-back group committed {offset} for {name}, but its listener never processed {} offset(s) below it, the first {first}",
                    unprocessed.len()
                ),
            });
        }
    }
    f
}

/// The delay of a level (1-based); levels past the table use its last.
fn delay_of(level: u8) -> Duration {
    let i = usize::from(level.max(1)) - 1;
    Duration::from_millis(DELAY_LEVELS_MS[i.min(DELAY_LEVELS_MS.len() - 1)])
}

/// Whether `topic` may hold a copy of a message sent to `sent_to` by `kind`.
fn may_hold(topic: &str, sent_to: &str, kind: Kind) -> bool {
    topic == sent_to
        || topic == SCHEDULE_TOPIC && matches!(kind, Kind::Delayed | Kind::Retry)
        || topic == RETRY_TOPIC && kind == Kind::Retry
}

/// How reports name a message: the run id and its counter (what its body starts with).
pub fn id_text(run: &str, counter: u64) -> String {
    format!("{run}-{counter}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torture::ledger::GiveBack;
    use crate::torture::topics::{COLD, HOT};

    fn read(topic: &str, q: i32, min: i64, max: i64, entries: &[(i64, u64)]) -> QueueRead {
        QueueRead {
            topic: topic.into(),
            queue_id: q,
            min,
            max,
            entries: entries.iter().map(|&(o, c)| (o, Ok(c))).collect(),
            ..QueueRead::default()
        }
    }

    fn ledger(acks: &[(&'static str, Kind, u8, i32, i64)]) -> Ledger {
        let mut l = Ledger::new("r".into());
        for &(topic, kind, delay, q, o) in acks {
            let c = l.attempt(topic, kind, delay, 1);
            l.ack(c, 1, q, o, 1);
        }
        l
    }

    fn kinds(f: &Findings) -> Vec<&'static str> {
        f.violations.iter().map(|v| v.kind).collect()
    }

    #[test]
    fn every_acknowledged_message_found_is_clean() {
        let l = ledger(&[(HOT, Kind::Hot, 0, 0, 0), (HOT, Kind::Hot, 0, 0, 1)]);
        let reads = [read(HOT, 0, 0, 2, &[(0, 0), (1, 1)])];
        let f = check(&l, &reads, &[], &Timeline::default(), Instant::now());
        assert!(f.violations.is_empty(), "{:?}", f.violations);
        assert_eq!((f.acked, f.read, f.duplicates), (2, 2, 0));
    }

    #[test]
    fn a_missing_message_is_lost_unless_below_the_min_offset() {
        // The report's case: the queue's offsets look dense, one acknowledged message is not
        // there (its place holds another), and one is below the min offset (retention).
        let l = ledger(&[
            (COLD[0], Kind::Cold, 0, 0, 0),
            (COLD[0], Kind::Cold, 0, 0, 5),
            (COLD[0], Kind::Cold, 0, 0, 6),
        ]);
        let reads = [read(COLD[0], 0, 3, 7, &[(3, 2), (4, 2), (5, 2), (6, 2)])];
        let f = check(&l, &reads, &[], &Timeline::default(), Instant::now());
        assert_eq!(f.lost, [(1, format!("{}/0", COLD[0]))]);
        assert_eq!(f.excused, 1);
        assert_eq!(f.duplicates, 3);
        assert_eq!(kinds(&f), ["lost"]);
        assert!(f.violations[0].text.contains("r-1"), "{:?}", f.violations);
    }

    #[test]
    fn gaps_strangers_and_moves_are_violations() {
        let mut l = ledger(&[(HOT, Kind::Hot, 0, 0, 0)]);
        l.attempt(COLD[1], Kind::Cold, 0, 1);
        let mut r = read(HOT, 0, 0, 5, &[(1, 0), (2, 7), (3, 1)]);
        r.entries.push((4, Err("not a torture body".into())));
        r.gaps.push((0, 1));
        let f = check(&l, &[r], &[], &Timeline::default(), Instant::now());
        let mut k = kinds(&f);
        k.sort();
        assert_eq!(k, ["gap", "misplaced", "moved", "never-sent", "never-sent"]);
        assert!(f.lost.is_empty());
    }

    #[test]
    fn due_delays_and_give_backs_must_be_delivered() {
        let t0 = Instant::now() - Duration::from_secs(60);
        let mut timeline = Timeline::default();
        timeline.up(t0);
        let mut l = ledger(&[
            (COLD[0], Kind::Delayed, 1, 0, 0),
            (COLD[0], Kind::Delayed, 2, 0, 0),
        ]);
        for s in &mut l.sent {
            s.ack.as_mut().unwrap().at = t0;
        }
        l.gave_back.insert(0, GiveBack { at: t0, level: 3 });
        let reads = [
            read(SCHEDULE_TOPIC, 0, 0, 1, &[(0, 0)]),
            read(SCHEDULE_TOPIC, 1, 0, 1, &[(0, 1)]),
            read(COLD[0], 0, 0, 1, &[(0, 0)]),
            read(RETRY_TOPIC, 0, 0, 0, &[]),
        ];
        let f = check(&l, &reads, &[], &timeline, Instant::now());
        assert_eq!((f.delayed_due, f.delayed_delivered), (2, 1));
        assert_eq!((f.retries_due, f.retries_delivered), (1, 0));
        let mut k = kinds(&f);
        k.sort();
        assert_eq!(k, ["delay-not-delivered", "retry-not-delivered"]);
        // Not due while the broker was down.
        let mut down = Timeline::default();
        down.up(t0);
        down.down(t0 + Duration::from_secs(1));
        let f = check(&l, &reads, &[], &down, Instant::now());
        assert_eq!((f.delayed_due, f.retries_due), (0, 0));
    }

    #[test]
    fn committed_offsets_stay_within_what_was_processed() {
        let mut l = ledger(&[]);
        l.processed
            .entry((RETRY_TOPIC.to_owned(), 0))
            .or_default()
            .extend([0, 1, 3]);
        let reads = [read(RETRY_TOPIC, 0, 0, 4, &[])];
        let at = |o| Committed {
            topic: RETRY_TOPIC.into(),
            queue_id: 0,
            offset: Some(o),
        };
        let now = Instant::now();
        let t = Timeline::default();
        assert!(check(&l, &reads, &[at(2)], &t, now).violations.is_empty());
        assert_eq!(
            kinds(&check(&l, &reads, &[at(4)], &t, now)),
            ["offset-ahead"]
        );
        assert_eq!(
            kinds(&check(&l, &reads, &[at(5)], &t, now)),
            ["offset-past-end", "offset-ahead"]
        );
    }
}
