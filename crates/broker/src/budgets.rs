//! What one connection may make the broker create and keep, past what the remoting layer
//! already bounds (bytes in flight, queued replies, requests in flight): topics and
//! subscription groups auto-created per minute, and the groups and subscriptions one heartbeat
//! may register. Past a budget the client gets SYSTEM_BUSY with a remark naming the limit;
//! other connections are unaffected (each connection has its own window).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// A topic auto-created by a send.
    Topic,
    /// A subscription group auto-created by a pull, a heartbeat or a give-back.
    Group,
}

impl Creation {
    /// The broker setting that bounds it.
    pub fn setting(self) -> &'static str {
        match self {
            Creation::Topic => "maxAutoCreatedTopicsPerMinute",
            Creation::Group => "maxAutoCreatedGroupsPerMinute",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Creation::Topic => "topics",
            Creation::Group => "subscription groups",
        }
    }
}

/// One connection's current minute.
struct Window {
    started: Instant,
    topics: usize,
    groups: usize,
}

/// Auto-creations per connection per minute.
#[derive(Default)]
pub struct CreationBudgets {
    windows: Mutex<HashMap<u64, Window>>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl CreationBudgets {
    /// Takes one creation of `what` for connection `conn` if its minute allows `limit`;
    /// otherwise the refusal's remark.
    pub fn take(&self, conn: u64, what: Creation, limit: usize) -> Result<(), String> {
        self.take_at(conn, what, limit, Instant::now())
    }

    fn take_at(&self, conn: u64, what: Creation, limit: usize, now: Instant) -> Result<(), String> {
        let mut m = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = m.entry(conn).or_insert(Window {
            started: now,
            topics: 0,
            groups: 0,
        });
        if now.duration_since(w.started) >= MINUTE {
            *w = Window {
                started: now,
                topics: 0,
                groups: 0,
            };
        }
        let n = match what {
            Creation::Topic => &mut w.topics,
            Creation::Group => &mut w.groups,
        };
        if *n >= limit {
            return Err(format!(
                "[AUTO_CREATE] this connection created {limit} {} in the last minute ({}); try again later",
                what.name(),
                what.setting()
            ));
        }
        *n += 1;
        Ok(())
    }

    /// A connection closed: forget its window.
    pub fn forget(&self, conn: u64) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&conn);
    }
}

/// The refusal of a heartbeat that registers more than a client may: `None` when within
/// `max_groups` groups (consumers and producers) and `max_subscriptions` subscriptions.
pub fn heartbeat_refusal(
    groups: usize,
    subscriptions: usize,
    max_groups: usize,
    max_subscriptions: usize,
) -> Option<String> {
    if groups > max_groups {
        return Some(format!(
            "[HEARTBEAT] a heartbeat may register {max_groups} groups, this one has {groups} (maxHeartbeatGroups)"
        ));
    }
    if subscriptions > max_subscriptions {
        return Some(format!(
            "[HEARTBEAT] a heartbeat may register {max_subscriptions} subscriptions, this one has {subscriptions} (maxHeartbeatSubscriptions)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_has_its_own_minute() {
        let b = CreationBudgets::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take_at(1, Creation::Topic, 3, t0).unwrap();
        }
        let e = b.take_at(1, Creation::Topic, 3, t0).unwrap_err();
        assert!(e.contains("maxAutoCreatedTopicsPerMinute"), "{e}");
        // Groups count apart; another connection is unaffected.
        b.take_at(1, Creation::Group, 3, t0).unwrap();
        b.take_at(2, Creation::Topic, 3, t0).unwrap();
        // A minute later the window starts again.
        b.take_at(1, Creation::Topic, 3, t0 + MINUTE).unwrap();
        b.forget(1);
        assert!(b.windows.lock().unwrap().get(&1).is_none());
    }

    #[test]
    fn heartbeats_past_their_budgets_are_refused() {
        assert_eq!(heartbeat_refusal(10, 100, 10, 100), None);
        assert!(heartbeat_refusal(11, 0, 10, 100)
            .unwrap()
            .contains("maxHeartbeatGroups"));
        assert!(heartbeat_refusal(1, 101, 10, 100)
            .unwrap()
            .contains("maxHeartbeatSubscriptions"));
    }
}
