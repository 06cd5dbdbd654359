//! What a flush mode's run adds up to: the counts of its summary line, the violations it
//! found (each counted once however many checks see it again), and how the line and its JSON
//! form are printed.

use super::checks::{id_text, Findings, Violation};
use std::collections::{BTreeMap, HashSet};

/// Violations printed in full, of each kind (the counts are always exact).
const SHOWN: usize = 4;

/// One flush mode's totals.
#[derive(Debug, Default)]
pub struct ModeReport {
    /// `ASYNC_FLUSH` or `SYNC_FLUSH`.
    pub flush: &'static str,
    /// The run's id in every body (seed and mode).
    pub run: String,
    /// Kill/restart cycles done.
    pub cycles: u32,
    /// SIGKILLs of a serving broker.
    pub kills: u32,
    /// SIGKILLs of a broker still starting (recovery).
    pub recovery_kills: u32,
    /// Messages sent.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Sends that failed (no acknowledgement, not counted).
    pub failed: u64,
    /// Answers that do not count as acknowledged (SYNC_FLUSH, not SEND_OK).
    pub not_ok: u64,
    /// Distinct acknowledged messages found missing.
    pub lost: u64,
    /// Acknowledged messages excused at the last check (below their queue's min offset).
    pub excused: u64,
    /// Most extra copies one check saw.
    pub duplicates: u64,
    /// Those copies by queue.
    pub duplicates_by_queue: BTreeMap<String, u64>,
    /// Delayed messages due at the last check.
    pub delayed_due: u64,
    /// Of them, delivered to their real queue.
    pub delayed_delivered: u64,
    /// Give-backs acknowledged.
    pub gave_back: u64,
    /// Give-backs due at the last check.
    pub retries_due: u64,
    /// Of them, delivered to the retry topic.
    pub retries_delivered: u64,
    /// Messages read back at the last check.
    pub read: u64,
    /// Checks done (one after each restart, one at the end).
    pub checks: u32,
    /// `rmq store verify` runs.
    pub verify_runs: u32,
    /// Distinct violations.
    pub violations: u64,
    /// Distinct violations by kind.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Distinct lost messages by the queue they were acknowledged in.
    pub lost_by_queue: BTreeMap<String, u64>,
    /// The first few, as printed.
    pub shown: Vec<String>,
    /// Seconds the mode took.
    pub secs: f64,
    seen: HashSet<String>,
    lost_ids: HashSet<u64>,
}

impl ModeReport {
    /// An empty report for a mode.
    pub fn new(flush: &'static str, run: String) -> ModeReport {
        ModeReport {
            flush,
            run,
            ..ModeReport::default()
        }
    }

    /// Counts a violation once, however many checks find it.
    pub fn violation(&mut self, cycle: u32, v: Violation) {
        if self.seen.insert(v.key) {
            self.violations += 1;
            let of_kind = self.kinds.entry(v.kind).or_default();
            *of_kind += 1;
            if *of_kind <= SHOWN as u64 {
                self.shown
                    .push(format!("cycle {cycle}: {}: {}", v.kind, v.text));
            }
        }
    }

    /// A violation found outside the checks (a broker that did not start, store verify).
    pub fn problem(&mut self, cycle: u32, kind: &'static str, text: String) {
        self.violation(
            cycle,
            Violation {
                kind,
                key: format!("{kind} {text}"),
                text,
            },
        );
    }

    /// Takes in a check's findings.
    pub fn findings(&mut self, cycle: u32, f: Findings) {
        self.checks += 1;
        for (counter, queue) in f.lost {
            if self.lost_ids.insert(counter) {
                *self.lost_by_queue.entry(queue).or_default() += 1;
            }
        }
        self.lost = self.lost_ids.len() as u64;
        self.excused = f.excused;
        if f.duplicates >= self.duplicates {
            self.duplicates = f.duplicates;
            self.duplicates_by_queue = f.duplicates_by_queue;
        }
        self.delayed_due = f.delayed_due;
        self.delayed_delivered = f.delayed_delivered;
        self.retries_due = f.retries_due;
        self.retries_delivered = f.retries_delivered;
        self.read = f.read;
        for v in f.violations {
            self.violation(cycle, v);
        }
    }

    /// Whether the mode passed.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.violations == 0
    }

    /// The summary line.
    pub fn line(&self) -> String {
        format!(
            "torture flush={} cycles={} kills={} recovery_kills={} sent={} acknowledged={} lost={} excused={} duplicates={} delayed_due={} delayed_delivered={} gave_back={} retries_due={} retries_delivered={} read={} checks={} store_verify_runs={} violations={} secs={:.1} {}",
            self.flush,
            self.cycles,
            self.kills,
            self.recovery_kills,
            self.sent,
            self.acked,
            self.lost,
            self.excused,
            self.duplicates,
            self.delayed_due,
            self.delayed_delivered,
            self.gave_back,
            self.retries_due,
            self.retries_delivered,
            self.read,
            self.checks,
            self.verify_runs,
            self.violations,
            self.secs,
            if self.ok() { "OK" } else { "FAILED" }
        )
    }

    /// Violations by kind and losses by queue, for the lines under a failed summary.
    pub fn breakdown(&self) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let mut s = kinds.join(", ");
        if !self.lost_by_queue.is_empty() {
            let queues: Vec<String> = self
                .lost_by_queue
                .iter()
                .map(|(q, n)| format!("{q} {n}"))
                .collect();
            s.push_str(&format!("; lost by queue: {}", queues.join(", ")));
        }
        s
    }

    /// The summary as JSON (one object per mode).
    pub fn json(&self, seed: u64) -> serde_json::Value {
        let mut lost: Vec<u64> = self.lost_ids.iter().copied().collect();
        lost.sort_unstable();
        lost.truncate(SHOWN);
        serde_json::json!({
            "flush": self.flush, "seed": seed, "run": self.run, "cycles": self.cycles,
            "kills": self.kills, "recoveryKills": self.recovery_kills, "sent": self.sent,
            "acknowledged": self.acked, "failed": self.failed, "notOk": self.not_ok,
            "lost": self.lost, "excused": self.excused, "duplicates": self.duplicates,
            "duplicatesByQueue": self.duplicates_by_queue,
            "delayedDue": self.delayed_due, "delayedDelivered": self.delayed_delivered,
            "gaveBack": self.gave_back, "retriesDue": self.retries_due,
            "retriesDelivered": self.retries_delivered, "read": self.read,
            "checks": self.checks, "storeVerifyRuns": self.verify_runs,
            "violations": self.violations, "violationsByKind": self.kinds,
            "lostByQueue": self.lost_by_queue, "firstViolations": self.shown,
            "firstLost": lost.iter().map(|c| id_text(&self.run, *c)).collect::<Vec<_>>(),
            "secs": self.secs, "ok": self.ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_seen_again_counts_once() {
        let mut r = ModeReport::new("ASYNC_FLUSH", "x".into());
        let v = Violation {
            kind: "lost",
            key: "lost 3".into(),
            text: "message x-3 is missing".into(),
        };
        let f = || Findings {
            lost: vec![(3, "T/0".into())],
            violations: vec![v.clone()],
            ..Findings::default()
        };
        r.findings(1, f());
        r.findings(2, f());
        assert_eq!((r.lost, r.violations, r.checks), (1, 1, 2));
        assert!(!r.ok());
        assert!(r.line().contains(" lost=1 "), "{}", r.line());
        assert_eq!(r.shown, ["cycle 1: lost: message x-3 is missing"]);
        assert_eq!(r.breakdown(), "lost 1; lost by queue: T/0 1");
    }
}
