//! Which brokers the producer should not pick right now, beyond Java's latency table:
//!
//! - **Isolated**: a dial to the broker was refused, or its connection dropped under a send. New
//!   sends avoid it for a back-off (1 s, doubling to 30 s) while one background probe per broker
//!   dials it when the back-off ends; the first probe that connects ends the isolation. So a
//!   dead broker costs a handful of dials, not one per send until the next route refresh.
//! - **Draining**: it answered GO_AWAY (a 5.x broker shutting down gracefully). New sends avoid
//!   it until a route refresh shows it gone and then back (it restarted and re-registered), or
//!   for at most `drain_hold` when it never left the routes, so no send opens a connection to a
//!   broker that is saying goodbye.
//!
//! When every broker of a topic is avoided, selection falls back to them anyway (a send may
//! still succeed; refusing would turn a partial outage into a total one). On by default,
//! independent of `send_latency_fault_enable`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Back-off settings.
#[derive(Debug, Clone, Copy)]
pub struct IsolationPolicy {
    /// First isolation period after a failure.
    pub initial_backoff: Duration,
    /// The period doubles on each failed probe, up to this.
    pub max_backoff: Duration,
    /// Longest a draining broker is avoided while it stays in the routes.
    pub drain_hold: Duration,
}

impl Default for IsolationPolicy {
    fn default() -> Self {
        IsolationPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            drain_hold: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Isolated {
        until: Instant,
        backoff: Duration,
        /// A probe task is running for it.
        probing: bool,
    },
    Draining {
        since: Instant,
        /// A route refresh has seen it absent since it started draining.
        seen_absent: bool,
    },
    /// A probe connected: usable, but a failure within twice the last back-off isolates it for
    /// twice as long (a broker that accepts connections and then drops them must not reset
    /// the back-off on every probe).
    Probation { until: Instant, backoff: Duration },
}

/// What [`BrokerHealth::failed`] asks the caller to do.
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeNeeded {
    /// Start a probe task for the broker (none runs yet).
    Start,
    /// A probe already runs, or nothing to do.
    No,
}

/// Per broker name: isolated or draining. Brokers not in the table are usable.
#[derive(Default)]
pub struct BrokerHealth {
    policy: IsolationPolicy,
    states: Mutex<HashMap<String, State>>,
}

impl BrokerHealth {
    /// A table with `policy`.
    pub fn new(policy: IsolationPolicy) -> Self {
        BrokerHealth {
            policy,
            states: Mutex::default(),
        }
    }

    /// The back-off policy in force.
    pub fn policy(&self) -> IsolationPolicy {
        self.policy
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        // Poisoning: single map operations, never half-done.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether new sends may go to `broker` now.
    pub fn is_usable(&self, broker: &str) -> bool {
        match self.states().get(broker) {
            None => true,
            Some(State::Isolated { until, .. }) => Instant::now() >= *until,
            Some(State::Draining { since, .. }) => since.elapsed() >= self.policy.drain_hold,
            Some(State::Probation { .. }) => true,
        }
    }

    /// True when no broker is avoided (the fast path: Java's plain round robin).
    pub fn all_usable(&self) -> bool {
        let mut states = self.states();
        let now = Instant::now();
        states.retain(|_, s| !matches!(s, State::Probation { until, .. } if now >= *until));
        states.is_empty()
    }

    /// A dial to `broker` was refused or its connection dropped: isolate it (or keep it
    /// isolated). Returns whether the caller should start a probe.
    pub fn failed(&self, broker: &str) -> ProbeNeeded {
        let mut states = self.states();
        match states.get_mut(broker) {
            Some(State::Isolated { probing: true, .. }) => ProbeNeeded::No,
            Some(State::Isolated {
                until,
                backoff,
                probing,
            }) => {
                *until = Instant::now() + *backoff;
                *probing = true;
                ProbeNeeded::Start
            }
            Some(State::Draining { .. }) => ProbeNeeded::No,
            Some(State::Probation { until, backoff }) => {
                let backoff = if Instant::now() < *until {
                    (*backoff * 2).min(self.policy.max_backoff)
                } else {
                    self.policy.initial_backoff
                };
                Self::isolate(&mut states, broker, backoff)
            }
            None => Self::isolate(&mut states, broker, self.policy.initial_backoff),
        }
    }

    /// Isolates `broker` for `backoff`, with a probe to start.
    fn isolate(
        states: &mut HashMap<String, State>,
        broker: &str,
        backoff: Duration,
    ) -> ProbeNeeded {
        states.insert(
            broker.to_owned(),
            State::Isolated {
                until: Instant::now() + backoff,
                backoff,
                probing: true,
            },
        );
        ProbeNeeded::Start
    }

    /// When the running probe of `broker` should dial next (`None`: it is no longer isolated,
    /// the probe ends).
    pub fn probe_at(&self, broker: &str) -> Option<Instant> {
        match self.states().get(broker) {
            Some(State::Isolated { until, .. }) => Some(*until),
            _ => None,
        }
    }

    /// A probe's outcome: connected ends the isolation; failed doubles the back-off.
    pub fn probed(&self, broker: &str, connected: bool) {
        let mut states = self.states();
        if connected {
            if let Some(State::Isolated { backoff, .. }) = states.get(broker) {
                let backoff = *backoff;
                states.insert(
                    broker.to_owned(),
                    State::Probation {
                        until: Instant::now() + backoff * 2,
                        backoff,
                    },
                );
            }
            return;
        }
        if let Some(State::Isolated { until, backoff, .. }) = states.get_mut(broker) {
            *backoff = (*backoff * 2).min(self.policy.max_backoff);
            *until = Instant::now() + *backoff;
        }
    }

    /// `broker` answered GO_AWAY: it is shutting down.
    pub fn going_away(&self, broker: &str) {
        let mut states = self.states();
        if !matches!(states.get(broker), Some(State::Draining { .. })) {
            tracing::info!(
                broker,
                "broker is shutting down (GO_AWAY): no new sends to it until it is back"
            );
            states.insert(
                broker.to_owned(),
                State::Draining {
                    since: Instant::now(),
                    seen_absent: false,
                },
            );
        }
    }

    /// A route refresh saw these brokers: draining ones that left and came back are usable
    /// again, those that left are marked so; expired drains are dropped.
    pub fn routes_refreshed(&self, present: &dyn Fn(&str) -> bool) {
        let hold = self.policy.drain_hold;
        self.states().retain(|name, state| match state {
            State::Draining { since, seen_absent } => {
                if !present(name) {
                    *seen_absent = true;
                    true
                } else {
                    !*seen_absent && since.elapsed() < hold
                }
            }
            State::Isolated { .. } => true,
            State::Probation { until, .. } => Instant::now() < *until,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> IsolationPolicy {
        IsolationPolicy {
            initial_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_millis(100),
            drain_hold: Duration::from_secs(60),
        }
    }

    #[test]
    fn isolation_backs_off_and_a_successful_probe_ends_it() {
        let h = BrokerHealth::new(quick());
        assert!(h.is_usable("a") && h.all_usable());
        assert_eq!(h.failed("a"), ProbeNeeded::Start);
        assert_eq!(h.failed("a"), ProbeNeeded::No, "one probe per broker");
        assert!(!h.is_usable("a") && h.is_usable("b"));
        let first = h.probe_at("a").unwrap();
        h.probed("a", false);
        let second = h.probe_at("a").unwrap();
        assert!(second > first, "backed off further");
        for _ in 0..5 {
            h.probed("a", false);
        }
        let capped = h.probe_at("a").unwrap() - Instant::now();
        assert!(capped <= Duration::from_millis(100), "{capped:?}");
        h.probed("a", true);
        assert!(h.is_usable("a") && h.probe_at("a").is_none());
        // On probation: failing again at once isolates it for longer than the first time.
        assert_eq!(h.failed("a"), ProbeNeeded::Start);
        let again = h.probe_at("a").unwrap() - Instant::now();
        assert!(again > Duration::from_millis(40), "{again:?}");
        h.probed("a", true);
        std::thread::sleep(Duration::from_millis(210));
        assert!(h.all_usable(), "probation over");
        assert_eq!(h.failed("a"), ProbeNeeded::Start);
        let fresh = h.probe_at("a").unwrap() - Instant::now();
        assert!(
            fresh <= Duration::from_millis(40),
            "back to the first back-off: {fresh:?}"
        );
    }

    #[test]
    fn draining_ends_when_the_broker_leaves_the_routes_and_comes_back() {
        let h = BrokerHealth::new(quick());
        h.going_away("a");
        assert!(!h.is_usable("a"));
        h.routes_refreshed(&|_| true);
        assert!(!h.is_usable("a"), "still listed: still draining");
        h.routes_refreshed(&|b| b != "a");
        assert!(!h.is_usable("a"), "gone");
        h.routes_refreshed(&|_| true);
        assert!(h.is_usable("a") && h.all_usable(), "back");
    }

    #[test]
    fn a_drain_that_never_leaves_the_routes_expires() {
        let h = BrokerHealth::new(IsolationPolicy {
            drain_hold: Duration::from_millis(20),
            ..quick()
        });
        h.going_away("a");
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.is_usable("a"));
        h.routes_refreshed(&|_| true);
        assert!(h.all_usable());
    }
}
