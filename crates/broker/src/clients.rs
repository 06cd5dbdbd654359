//! Who is connected (Java's `ConsumerManager`, `ProducerManager`, `RebalanceLockManager`,
//! spec §2.6, §2.7): consumer groups with their channels and subscriptions, producer groups,
//! and the orderly-consumption queue locks. Plain tables: the processors decide what to send.

use rmq_model::heartbeat::{ConsumerData, SubscriptionData};
use rmq_remoting::ConnectionHandle;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One client connection of a group.
#[derive(Clone)]
pub struct ClientChannel {
    /// `ip@instance`.
    pub client_id: String,
    /// The client's language (JAVA, CPP, GO, ...).
    pub language: String,
    /// The client's version code.
    pub version: i32,
    /// Its last heartbeat.
    pub last_update: Instant,
    /// The connection (NOTIFY_CONSUMER_IDS_CHANGED goes through it).
    pub conn: ConnectionHandle,
}

/// A consumer group as its heartbeats describe it.
#[derive(Clone, Default)]
pub struct ConsumerGroup {
    /// Connections by connection id.
    pub channels: BTreeMap<u64, ClientChannel>,
    /// Subscriptions by topic.
    pub subscriptions: BTreeMap<String, SubscriptionData>,
    /// CONSUME_PASSIVELY (push), CONSUME_ACTIVELY (pull) or CONSUME_POP.
    pub consume_type: String,
    /// CLUSTERING or BROADCASTING.
    pub message_model: String,
    /// CONSUME_FROM_LAST_OFFSET, ...
    pub consume_from_where: String,
    /// The last V2 heartbeat fingerprint (0 = V1).
    pub fingerprint: i32,
}

pub use rmq_model::MessageQueue;

/// How long an orderly lock lives without renewal (`rocketmq.broker.rebalance.lockMaxLiveTime`).
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

/// Per group, each locked queue's holder and last renewal.
type LockTable = HashMap<String, HashMap<MessageQueue, (String, Instant)>>;

/// The broker's client tables.
#[derive(Default)]
pub struct ClientManager {
    consumers: Mutex<HashMap<String, ConsumerGroup>>,
    producers: Mutex<HashMap<String, BTreeMap<u64, ClientChannel>>>,
    locks: Mutex<LockTable>,
}

impl ClientManager {
    fn consumers(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConsumerGroup>> {
        self.consumers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn producers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<u64, ClientChannel>>> {
        self.producers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a consumer heartbeat (`ConsumerManager.registerConsumer`): `true` when the
    /// group's membership or subscribed topics changed (then its members are told).
    /// `without_sub` (V2 heartbeats) leaves the subscriptions untouched.
    pub fn register_consumer(
        &self,
        data: &ConsumerData,
        channel: ClientChannel,
        fingerprint: i32,
        without_sub: bool,
    ) -> bool {
        let mut c = self.consumers();
        let g = c.entry(data.group_name.clone()).or_default();
        g.consume_type = data.consume_type.clone();
        g.message_model = data.message_model.clone();
        g.consume_from_where = data.consume_from_where.clone();
        g.fingerprint = fingerprint;
        let id = channel.conn.id();
        let mut changed = !g.channels.contains_key(&id);
        g.channels.insert(id, channel);
        if !without_sub {
            for s in &data.subscription_data_set {
                match g.subscriptions.get(&s.topic) {
                    None => {
                        changed = true;
                        g.subscriptions.insert(s.topic.clone(), s.clone());
                    }
                    Some(old) if old.sub_version < s.sub_version => {
                        g.subscriptions.insert(s.topic.clone(), s.clone());
                    }
                    _ => {}
                }
            }
            let before = g.subscriptions.len();
            g.subscriptions
                .retain(|t, _| data.subscription_data_set.iter().any(|s| &s.topic == t));
            changed |= g.subscriptions.len() != before;
        }
        changed
    }

    /// The fingerprint last recorded for a group (V2 heartbeats).
    pub fn fingerprint(&self, group: &str) -> Option<i32> {
        self.consumers().get(group).map(|g| g.fingerprint)
    }

    /// Registers a producer heartbeat.
    pub fn register_producer(&self, group: &str, channel: ClientChannel) {
        self.producers()
            .entry(group.to_owned())
            .or_default()
            .insert(channel.conn.id(), channel);
    }

    /// Removes a connection from a consumer group: `true` if it was a member.
    pub fn unregister_consumer(&self, group: &str, conn_id: u64) -> bool {
        let mut c = self.consumers();
        let Some(g) = c.get_mut(group) else {
            return false;
        };
        let removed = g.channels.remove(&conn_id).is_some();
        if g.channels.is_empty() {
            c.remove(group);
        }
        removed
    }

    /// Removes a connection from a producer group.
    pub fn unregister_producer(&self, group: &str, conn_id: u64) {
        let mut p = self.producers();
        if let Some(g) = p.get_mut(group) {
            g.remove(&conn_id);
            if g.is_empty() {
                p.remove(group);
            }
        }
    }

    /// A connection closed: removed from every group; the consumer groups it left.
    pub fn channel_closed(&self, conn_id: u64) -> Vec<String> {
        let mut left = Vec::new();
        let mut c = self.consumers();
        c.retain(|name, g| {
            if g.channels.remove(&conn_id).is_some() {
                left.push(name.clone());
            }
            !g.channels.is_empty()
        });
        drop(c);
        let mut p = self.producers();
        p.retain(|_, g| {
            g.remove(&conn_id);
            !g.is_empty()
        });
        left
    }

    /// Drops channels silent for longer than `timeout` (closing them); the consumer groups
    /// that lost a member.
    pub fn expire(&self, timeout: Duration) -> Vec<String> {
        let mut expired = Vec::new();
        for g in self.consumers().values() {
            for ch in g.channels.values() {
                if ch.last_update.elapsed() > timeout {
                    expired.push(ch.conn.clone());
                }
            }
        }
        for g in self.producers().values() {
            for ch in g.values() {
                if ch.last_update.elapsed() > timeout {
                    expired.push(ch.conn.clone());
                }
            }
        }
        let mut left = Vec::new();
        for conn in expired {
            tracing::info!(peer = conn.peer(), "client channel expired (no heartbeat)");
            left.extend(self.channel_closed(conn.id()));
            conn.close();
        }
        left.sort();
        left.dedup();
        left
    }

    /// A group as registered.
    pub fn consumer_group(&self, group: &str) -> Option<ConsumerGroup> {
        self.consumers().get(group).cloned()
    }

    /// The client ids of a group's members.
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.consumers()
            .get(group)
            .map(|g| g.channels.values().map(|c| c.client_id.clone()).collect())
            .unwrap_or_default()
    }

    /// Every online consumer group.
    pub fn consumer_groups(&self) -> Vec<String> {
        let mut v: Vec<String> = self.consumers().keys().cloned().collect();
        v.sort();
        v
    }

    /// A producer group's channels.
    pub fn producer_group(&self, group: &str) -> Vec<ClientChannel> {
        self.producers()
            .get(group)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Counts of (consumer, producer) connections, for runtime info.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.consumers().values().map(|g| g.channels.len()).sum(),
            self.producers().values().map(|g| g.len()).sum(),
        )
    }

    /// LOCK_BATCH_MQ: the queues now held by `client_id` (renewed, new, or taken over from an
    /// expired holder).
    pub fn lock(&self, group: &str, client_id: &str, mqs: &[MessageQueue]) -> Vec<MessageQueue> {
        let mut l = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        let table = l.entry(group.to_owned()).or_default();
        let now = Instant::now();
        let mut ok = Vec::new();
        for mq in mqs {
            match table.get_mut(mq) {
                Some((holder, at)) if holder == client_id || at.elapsed() > LOCK_MAX_LIVE => {
                    *holder = client_id.to_owned();
                    *at = now;
                    ok.push(mq.clone());
                }
                Some(_) => {}
                None => {
                    table.insert(mq.clone(), (client_id.to_owned(), now));
                    ok.push(mq.clone());
                }
            }
        }
        ok
    }

    /// UNLOCK_BATCH_MQ: releases the queues `client_id` holds.
    pub fn unlock(&self, group: &str, client_id: &str, mqs: &[MessageQueue]) {
        let mut l = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(table) = l.get_mut(group) {
            for mq in mqs {
                if table.get(mq).is_some_and(|(h, _)| h == client_id) {
                    table.remove(mq);
                }
            }
        }
    }

    /// Whether a group holds any unexpired orderly lock (its retries then go to the DLQ).
    pub fn has_live_lock(&self, group: &str) -> bool {
        let l = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        l.get(group)
            .is_some_and(|t| t.values().any(|(_, at)| at.elapsed() <= LOCK_MAX_LIVE))
    }
}
