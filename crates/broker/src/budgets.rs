//! What one client may make the broker create and keep, past what the remoting layer already
//! bounds (bytes in flight per connection and per client, queued replies, requests in flight,
//! connections per client): topics and subscription groups auto-created per minute, and the
//! groups and subscriptions its heartbeats may register. Past a budget the client gets
//! SYSTEM_BUSY with a remark naming the limit; other clients are unaffected.
//!
//! A *client* is a source IP address (the PROXY header's when a trusted proxy sent one, see
//! `rmq_remoting::ConnectionHandle::client_ip`): opening more connections buys a client no
//! more. A connection whose peer is no IP address counts as a client of its own.

use rmq_remoting::ConnectionHandle;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who a budget is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// A source IP address: all its connections together.
    Ip(IpAddr),
    /// A connection whose peer is no IP address (never the case over TCP).
    Connection(u64),
}

impl Client {
    /// The client `conn` belongs to.
    pub fn of(conn: &ConnectionHandle) -> Client {
        conn.client_ip()
            .map_or(Client::Connection(conn.id()), Client::Ip)
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Ip(ip) => write!(f, "{ip}"),
            Client::Connection(id) => write!(f, "connection {id}"),
        }
    }
}

/// What a creation budget counts.
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

/// One client's current minute.
struct Window {
    started: Instant,
    topics: usize,
    groups: usize,
}

/// Auto-creations per client per minute.
#[derive(Default)]
pub struct CreationBudgets {
    windows: Mutex<HashMap<Client, Window>>,
}

const MINUTE: Duration = Duration::from_secs(60);
/// Past this many clients' windows, those older than a minute are dropped (they would start
/// again anyway): the table stays the size of the clients of the last minute.
const WINDOWS_BEFORE_PRUNE: usize = 1024;

impl CreationBudgets {
    /// Takes one creation of `what` for `conn`'s client if its minute allows `limit`;
    /// otherwise the refusal's remark.
    pub fn take(
        &self,
        conn: &ConnectionHandle,
        what: Creation,
        limit: usize,
    ) -> Result<(), String> {
        self.take_at(Client::of(conn), what, limit, Instant::now())
    }

    fn take_at(
        &self,
        client: Client,
        what: Creation,
        limit: usize,
        now: Instant,
    ) -> Result<(), String> {
        let mut m = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= WINDOWS_BEFORE_PRUNE && !m.contains_key(&client) {
            m.retain(|_, w| now.duration_since(w.started) < MINUTE);
        }
        let w = m.entry(client).or_insert(Window {
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
                "[AUTO_CREATE] this client ({client}) created {limit} {} in the last minute ({}); try again later",
                what.name(),
                what.setting()
            ));
        }
        *n += 1;
        Ok(())
    }
}

/// What heartbeats may register: per heartbeat, and per client over its connections' last
/// accepted heartbeats.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatLimits {
    /// maxHeartbeatGroups.
    pub groups: usize,
    /// maxHeartbeatSubscriptions.
    pub subscriptions: usize,
    /// maxHeartbeatGroupsPerClient.
    pub groups_per_client: usize,
    /// maxHeartbeatSubscriptionsPerClient.
    pub subscriptions_per_client: usize,
}

/// Groups and subscriptions registered by one connection's last accepted heartbeat.
#[derive(Default, Clone, Copy)]
struct Load {
    groups: usize,
    subscriptions: usize,
}

/// What each client's connections registered, to hold a client to its totals: a client that
/// sends its heartbeat on many connections registers each one's groups anew.
#[derive(Default)]
pub struct HeartbeatLoads {
    inner: Mutex<Loads>,
}

#[derive(Default)]
struct Loads {
    by_connection: HashMap<u64, (Client, Load)>,
    /// Per client: its connections' loads summed, and how many connections have one.
    by_client: HashMap<Client, (Load, usize)>,
}

impl HeartbeatLoads {
    /// Admits a heartbeat of `groups` groups and `subscriptions` subscriptions on `conn`
    /// (replacing what that connection registered before), or the refusal's remark.
    pub fn admit(
        &self,
        conn: &ConnectionHandle,
        groups: usize,
        subscriptions: usize,
        limits: HeartbeatLimits,
    ) -> Result<(), String> {
        self.admit_for(
            conn.id(),
            Client::of(conn),
            Load {
                groups,
                subscriptions,
            },
            limits,
        )
    }

    fn admit_for(
        &self,
        conn: u64,
        client: Client,
        load: Load,
        limits: HeartbeatLimits,
    ) -> Result<(), String> {
        if let Some(r) = heartbeat_refusal(
            load.groups,
            load.subscriptions,
            limits.groups,
            limits.subscriptions,
        ) {
            return Err(r);
        }
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before = m
            .by_connection
            .get(&conn)
            .map(|(_, l)| *l)
            .unwrap_or_default();
        let (total, connections) = m.by_client.get(&client).copied().unwrap_or_default();
        let connections = connections + usize::from(!m.by_connection.contains_key(&conn));
        let groups = total.groups - before.groups + load.groups;
        let subscriptions = total.subscriptions - before.subscriptions + load.subscriptions;
        if groups > limits.groups_per_client {
            return Err(format!(
                "[HEARTBEAT] this client ({client}) would register {groups} groups over its connections, {} at most (maxHeartbeatGroupsPerClient)",
                limits.groups_per_client
            ));
        }
        if subscriptions > limits.subscriptions_per_client {
            return Err(format!(
                "[HEARTBEAT] this client ({client}) would register {subscriptions} subscriptions over its connections, {} at most (maxHeartbeatSubscriptionsPerClient)",
                limits.subscriptions_per_client
            ));
        }
        m.by_connection.insert(conn, (client, load));
        m.by_client.insert(
            client,
            (
                Load {
                    groups,
                    subscriptions,
                },
                connections,
            ),
        );
        Ok(())
    }

    /// Groups `client`'s connections have registered (`None`: it has none registered).
    pub fn groups_of(&self, client: Client) -> Option<usize> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.by_client.get(&client).map(|(l, _)| l.groups)
    }

    /// A connection closed: what it registered no longer counts.
    pub fn forget(&self, conn: u64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some((client, load)) = m.by_connection.remove(&conn) else {
            return;
        };
        if let Some((t, connections)) = m.by_client.get_mut(&client) {
            t.groups -= load.groups;
            t.subscriptions -= load.subscriptions;
            *connections -= 1;
            if *connections == 0 {
                m.by_client.remove(&client);
            }
        }
    }
}

/// The refusal of a heartbeat that registers more than one heartbeat may: `None` when within
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
    fn each_client_has_its_own_minute() {
        let b = CreationBudgets::default();
        let (one, two) = (
            Client::Ip([10, 0, 0, 1].into()),
            Client::Ip([10, 0, 0, 2].into()),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take_at(one, Creation::Topic, 3, t0).unwrap();
        }
        let e = b.take_at(one, Creation::Topic, 3, t0).unwrap_err();
        assert!(
            e.contains("maxAutoCreatedTopicsPerMinute") && e.contains("10.0.0.1"),
            "{e}"
        );
        // Groups count apart; another client is unaffected.
        b.take_at(one, Creation::Group, 3, t0).unwrap();
        b.take_at(two, Creation::Topic, 3, t0).unwrap();
        // A minute later the window starts again.
        b.take_at(one, Creation::Topic, 3, t0 + MINUTE).unwrap();
    }

    #[test]
    fn windows_older_than_a_minute_are_pruned() {
        let b = CreationBudgets::default();
        let t0 = Instant::now();
        for i in 0..WINDOWS_BEFORE_PRUNE as u64 {
            b.take_at(Client::Connection(i), Creation::Topic, 1, t0)
                .unwrap();
        }
        b.take_at(
            Client::Connection(u64::MAX),
            Creation::Topic,
            1,
            t0 + MINUTE,
        )
        .unwrap();
        assert_eq!(b.windows.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_clients_heartbeats_count_over_its_connections() {
        let loads = HeartbeatLoads::default();
        let limits = HeartbeatLimits {
            groups: 10,
            subscriptions: 100,
            groups_per_client: 15,
            subscriptions_per_client: 1000,
        };
        let (a, b) = (
            Client::Ip([10, 0, 0, 1].into()),
            Client::Ip([10, 0, 0, 2].into()),
        );
        let load = |groups| Load {
            groups,
            subscriptions: groups,
        };
        loads.admit_for(1, a, load(10), limits).unwrap();
        // A repeat on the same connection replaces its load...
        loads.admit_for(1, a, load(10), limits).unwrap();
        // ...another connection of the client adds to it...
        let e = loads.admit_for(2, a, load(6), limits).unwrap_err();
        assert!(e.contains("maxHeartbeatGroupsPerClient"), "{e}");
        loads.admit_for(2, a, load(5), limits).unwrap();
        // ...another client is unaffected, and a closed connection no longer counts.
        loads.admit_for(3, b, load(10), limits).unwrap();
        loads.forget(1);
        loads.admit_for(4, a, load(10), limits).unwrap();
        loads.forget(2);
        loads.forget(4);
        assert!(!loads.inner.lock().unwrap().by_client.contains_key(&a));
        // The per-heartbeat limits still apply.
        let e = loads.admit_for(5, a, load(11), limits).unwrap_err();
        assert!(e.contains("(maxHeartbeatGroups)"), "{e}");
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
