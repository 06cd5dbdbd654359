//! RouteInfoManager (spec §7.2-7.8): topics, brokers, clusters and live brokers behind one lock.

pub mod model;
pub mod register_body;

use model::{perm, sysflag, BrokerData, DataVersion, QueueData, TopicConfig, MASTER_ID};
use rmq_remoting::ConnectionHandle;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Default per-broker heartbeat timeout (Java DEFAULT_BROKER_CHANNEL_EXPIRED_TIME).
pub const DEFAULT_BROKER_TIMEOUT: Duration = Duration::from_millis(120_000);

/// A registered broker's liveness record.
pub struct BrokerLive {
    last_update: Instant,
    timeout: Duration,
    data_version: DataVersion,
    ha_server_addr: String,
    channel: Option<ConnectionHandle>,
}

/// Live-table key: (cluster, broker address).
type LiveKey = (String, String);

#[derive(Default)]
struct Tables {
    topic_queue: BTreeMap<String, BTreeMap<String, QueueData>>,
    broker_addr: BTreeMap<String, BrokerData>,
    cluster_addr: BTreeMap<String, BTreeSet<String>>,
    live: HashMap<LiveKey, BrokerLive>,
    filter: HashMap<LiveKey, Vec<String>>,
}

/// A REGISTER_BROKER request, decoded.
pub struct Registration<'a> {
    /// Cluster name.
    pub cluster: &'a str,
    /// Broker address "ip:port".
    pub broker_addr: &'a str,
    /// Broker group name.
    pub broker_name: &'a str,
    /// Broker id (0 = master).
    pub broker_id: i64,
    /// HA address.
    pub ha_server_addr: &'a str,
    /// `__ZONE_NAME` ext field.
    pub zone_name: Option<&'a str>,
    /// heartbeatTimeoutMillis header (None: 120 s).
    pub timeout: Option<Duration>,
    /// enableActingMaster header (None: an old-version broker).
    pub enable_acting_master: Option<bool>,
    /// The body.
    pub body: register_body::RegisterBody,
    /// The broker's connection (closed when it expires).
    pub channel: Option<ConnectionHandle>,
}

/// What a successful registration answers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RegisterResult {
    /// The live master's HA address (slaves only).
    pub ha_server_addr: Option<String>,
    /// The live master's address (slaves only).
    pub master_addr: Option<String>,
}

/// Why a registration was not applied.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// Applied.
    Registered(RegisterResult),
    /// A newer broker holds the id (stateVersion rule): answered 0 with nothing.
    Ignored,
    /// Single-topic registration before the first full one: answered 1.
    Failed,
}

/// A route lookup's result.
pub struct Route {
    /// Broker groups serving the topic (sorted by name).
    pub brokers: Vec<BrokerData>,
    /// Queues per broker (sorted by broker name).
    pub queues: Vec<QueueData>,
    /// Filter servers per broker address.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// Topics of the broker member-group sync (`TopicValidator.SYNC_BROKER_MEMBER_GROUP_PREFIX`):
/// their routes are never rewritten for an acting master.
const SYNC_BROKER_MEMBER_GROUP_PREFIX: &str = "rmq_sys_SYNC_BROKER_MEMBER_";

impl Route {
    /// supportActingMaster (5.x `pickupTopicRouteData`): a broker group with no master (id 0)
    /// that enabled acting master and whose queues of this topic are not writable (the
    /// NameServer wiped the write permission when its master left) is shown with its lowest-id
    /// broker re-keyed as 0, so clients that read from masters still reach it.
    pub fn apply_acting_master(&mut self, topic: &str) {
        if topic.starts_with(SYNC_BROKER_MEMBER_GROUP_PREFIX) {
            return;
        }
        for bd in &mut self.brokers {
            if bd.broker_addrs.is_empty()
                || bd.broker_addrs.contains_key(&model::MASTER_ID)
                || !bd.enable_acting_master
            {
                continue;
            }
            let read_only = self
                .queues
                .iter()
                .find(|q| q.broker_name == bd.broker_name)
                .is_some_and(|q| q.perm & perm::WRITE == 0);
            if read_only {
                if let Some((_, addr)) = bd.broker_addrs.pop_first() {
                    bd.broker_addrs.insert(model::MASTER_ID, addr);
                }
            }
        }
    }
}

/// A broker group whose lowest broker id changed: what NOTIFY_MIN_BROKER_ID_CHANGE (905) tells
/// its brokers (Java's notifyMinBrokerIdChanged, for acting-master groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinBrokerIdChange {
    /// The group's brokers after the change.
    pub broker_addrs: BTreeMap<i64, String>,
    /// The broker that left (an unregistration), or `None` (a registration).
    pub offline_broker_addr: Option<String>,
    /// The registering broker's HA address (registrations only).
    pub ha_broker_addr: Option<String>,
}

impl MinBrokerIdChange {
    /// Java's chooseBrokerAddrsToNotify: every broker of the group after a departure (or when it
    /// is alone), else every broker but the new lowest one.
    pub fn targets(&self) -> Vec<String> {
        let min = self.broker_addrs.keys().next().copied();
        self.broker_addrs
            .iter()
            .filter(|(id, _)| {
                self.offline_broker_addr.is_some()
                    || self.broker_addrs.len() == 1
                    || Some(**id) != min
            })
            .map(|(_, addr)| addr.clone())
            .collect()
    }

    /// The oneway request: ext `minBrokerId`, `minBrokerAddr`, and `offlineBrokerAddr` /
    /// `haBrokerAddr` when set (null header fields are not sent, as in Java).
    pub fn request(&self) -> rmq_protocol::RemotingCommand {
        use rmq_protocol::headers::broker::NotifyMinBrokerIdChangeRequestHeader;
        let min = self.broker_addrs.iter().next();
        let header = NotifyMinBrokerIdChangeRequestHeader {
            min_broker_id: min.map(|(id, _)| *id),
            min_broker_addr: min.map(|(_, addr)| addr.clone()),
            offline_broker_addr: self.offline_broker_addr.clone(),
            ha_broker_addr: self.ha_broker_addr.clone(),
        };
        let mut cmd = rmq_protocol::RemotingCommand::request_with_header(
            rmq_protocol::codes::request::NOTIFY_MIN_BROKER_ID_CHANGE,
            &header,
        );
        cmd.mark_oneway();
        cmd
    }
}

/// Called with each [`MinBrokerIdChange`], outside the table lock.
type MinBrokerIdNotifier = Box<dyn Fn(MinBrokerIdChange) + Send + Sync>;

/// The route tables. One RW lock, as in Java: lookups share it, changes take it alone.
#[derive(Default)]
pub struct RouteInfoManager {
    tables: RwLock<Tables>,
    /// Remove a broker's topics that its full registration no longer lists.
    pub delete_topic_with_broker_registration: bool,
    /// Told about lowest-id changes (the NameServer sends the notifications).
    notifier: std::sync::OnceLock<MinBrokerIdNotifier>,
}

impl RouteInfoManager {
    /// Empty tables.
    pub fn new(delete_topic_with_broker_registration: bool) -> Self {
        RouteInfoManager {
            tables: RwLock::default(),
            delete_topic_with_broker_registration,
            notifier: std::sync::OnceLock::new(),
        }
    }

    /// Sets what is told about lowest-id changes (once; later calls are ignored).
    pub fn on_min_broker_id_change(
        &self,
        notify: impl Fn(MinBrokerIdChange) + Send + Sync + 'static,
    ) {
        let _ = self.notifier.set(Box::new(notify));
    }

    fn notify(&self, changes: impl IntoIterator<Item = MinBrokerIdChange>) {
        if let Some(n) = self.notifier.get() {
            changes.into_iter().for_each(n);
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| {
            self.poisoned();
            p.into_inner()
        })
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|p| {
            self.poisoned();
            p.into_inner()
        })
    }

    /// Poisoning: a panic in the middle of a registration can leave one broker's entries partly
    /// updated. Refusing every route lookup from then on would take the whole NameServer down
    /// for one broker's sake, so the tables keep being served (Java's maps, which have no
    /// poisoning, behave the same after an exception mid-update), the event is logged once, and
    /// that broker's next registration (every 30 s) rewrites its entries whole.
    #[cold]
    fn poisoned(&self) {
        tracing::error!("route tables were being updated by a panicking thread; serving them as left, the broker's next registration repairs them");
        self.tables.clear_poison();
    }

    /// REGISTER_BROKER, the 5.x algorithm of spec §7.4.
    pub fn register(&self, r: Registration<'_>) -> RegisterOutcome {
        let (outcome, change) = {
            let mut t = self.write();
            self.register_locked(&mut t, r)
        };
        self.notify(change);
        outcome
    }

    fn register_locked(
        &self,
        t: &mut Tables,
        r: Registration<'_>,
    ) -> (RegisterOutcome, Option<MinBrokerIdChange>) {
        t.cluster_addr
            .entry(r.cluster.to_owned())
            .or_default()
            .insert(r.broker_name.to_owned());
        let mut register_first = !t.broker_addr.contains_key(r.broker_name);
        let bd = t
            .broker_addr
            .entry(r.broker_name.to_owned())
            .or_insert_with(|| BrokerData {
                cluster: r.cluster.to_owned(),
                broker_name: r.broker_name.to_owned(),
                broker_addrs: BTreeMap::new(),
                zone_name: None,
                enable_acting_master: false,
            });
        bd.enable_acting_master = r.enable_acting_master.unwrap_or(false);
        if let Some(z) = r.zone_name {
            bd.zone_name = Some(z.to_owned());
        }
        // A broker below the group's lowest id (Java compares with 0 for an empty group).
        let min_id_changed = r.broker_id < bd.broker_addrs.keys().next().copied().unwrap_or(0);
        // Slave -> master switch: the address leaves its old id.
        bd.broker_addrs
            .retain(|id, addr| !(addr == r.broker_addr && *id != r.broker_id));
        if let Some(refused) = Self::refusal(bd, &t.live, &r) {
            if matches!(refused, RegisterOutcome::Ignored) {
                t.live
                    .remove(&(r.cluster.to_owned(), r.broker_addr.to_owned()));
            }
            return (refused, None);
        }
        let old = bd
            .broker_addrs
            .insert(r.broker_id, r.broker_addr.to_owned());
        register_first |= old.is_none();
        let old_version_broker = r.enable_acting_master.is_none();
        let min_id = bd.broker_addrs.keys().next().copied();
        let is_prime_slave =
            !old_version_broker && r.broker_id > MASTER_ID && Some(r.broker_id) == min_id;
        let acting = bd.enable_acting_master;
        if r.broker_id == MASTER_ID || is_prime_slave {
            // A prime slave of an acting-master group serves reads only.
            let read_only = is_prime_slave && acting;
            self.update_topic_queues(t, &r, register_first, read_only);
        }
        tracing::info!(
            cluster = r.cluster,
            broker = r.broker_name,
            id = r.broker_id,
            addr = r.broker_addr,
            topics = r.body.topics.len(),
            first = register_first,
            "broker registered"
        );
        let result = if r.broker_id == MASTER_ID {
            RegisterResult::default()
        } else {
            Self::master_of(t, &r)
        };
        let change = min_id_changed
            .then(|| t.broker_addr.get(r.broker_name))
            .flatten()
            .map(|bd| MinBrokerIdChange {
                broker_addrs: bd.broker_addrs.clone(),
                offline_broker_addr: None,
                ha_broker_addr: Some(r.ha_server_addr.to_owned()),
            });
        Self::record_live(t, r);
        (RegisterOutcome::Registered(result), change)
    }

    /// Why a registration is not taken: a newer broker (higher stateVersion) holds this id at
    /// another address (Ignored), or a first registration lists a single topic (Failed).
    fn refusal(
        bd: &BrokerData,
        live: &HashMap<LiveKey, BrokerLive>,
        r: &Registration<'_>,
    ) -> Option<RegisterOutcome> {
        if let Some(old_addr) = bd.broker_addrs.get(&r.broker_id) {
            if old_addr != r.broker_addr {
                let key = (r.cluster.to_owned(), old_addr.clone());
                if let Some(old) = live.get(&key) {
                    if old.data_version.state_version > r.body.data_version.state_version {
                        return Some(RegisterOutcome::Ignored);
                    }
                }
            }
        }
        if !bd.broker_addrs.contains_key(&r.broker_id) && r.body.topics.len() == 1 {
            tracing::warn!(
                broker = r.broker_name,
                addr = r.broker_addr,
                "single-topic registration before the broker registered"
            );
            return Some(RegisterOutcome::Failed);
        }
        None
    }

    /// Writes the registering broker's queues of each topic it lists (all of them on its first
    /// registration or a new data version, else only topics that lack it), read-only for a
    /// prime slave of an acting-master group; with deleteTopicWithBrokerRegistration, a master's
    /// queues of topics it no longer lists go.
    fn update_topic_queues(
        &self,
        t: &mut Tables,
        r: &Registration<'_>,
        register_first: bool,
        read_only: bool,
    ) {
        let live_key = (r.cluster.to_owned(), r.broker_addr.to_owned());
        let changed = t
            .live
            .get(&live_key)
            .is_none_or(|l| l.data_version != r.body.data_version);
        for tc in &r.body.topics {
            let lacks = t
                .topic_queue
                .get(&tc.topic_name)
                .is_none_or(|m| !m.contains_key(r.broker_name));
            if register_first || changed || lacks {
                let mut qd = queue_data(r.broker_name, tc);
                if read_only {
                    qd.perm &= !perm::WRITE;
                }
                t.topic_queue
                    .entry(tc.topic_name.clone())
                    .or_default()
                    .insert(r.broker_name.to_owned(), qd);
            }
        }
        if self.delete_topic_with_broker_registration && r.broker_id == MASTER_ID {
            let listed: BTreeSet<&str> = r
                .body
                .topics
                .iter()
                .map(|t| t.topic_name.as_str())
                .collect();
            t.topic_queue.retain(|topic, m| {
                if !listed.contains(topic.as_str()) {
                    m.remove(r.broker_name);
                }
                !m.is_empty()
            });
        }
    }

    /// What a slave is told: its group's master and the master's HA address, when both known.
    fn master_of(t: &Tables, r: &Registration<'_>) -> RegisterResult {
        let mut result = RegisterResult::default();
        let master = t
            .broker_addr
            .get(r.broker_name)
            .and_then(|b| b.broker_addrs.get(&MASTER_ID).cloned());
        if let Some(master) = master {
            if let Some(l) = t.live.get(&(r.cluster.to_owned(), master.clone())) {
                result.ha_server_addr = Some(l.ha_server_addr.clone());
                result.master_addr = Some(master);
            }
        }
        result
    }

    /// Records the broker as live (its data version, HA address, connection) and its filter
    /// servers.
    fn record_live(t: &mut Tables, r: Registration<'_>) {
        let live_key = (r.cluster.to_owned(), r.broker_addr.to_owned());
        t.live.insert(
            live_key.clone(),
            BrokerLive {
                last_update: Instant::now(),
                timeout: r.timeout.unwrap_or(DEFAULT_BROKER_TIMEOUT),
                data_version: r.body.data_version,
                ha_server_addr: r.ha_server_addr.to_owned(),
                channel: r.channel,
            },
        );
        match r.body.filter_server_list {
            Some(list) if list.is_empty() => {
                t.filter.remove(&live_key);
            }
            Some(list) => {
                t.filter.insert(live_key, list);
            }
            None => {}
        }
    }

    /// UNREGISTER_BROKER (and expiry, and a closed channel): spec §7.8's unregister effect.
    pub fn unregister(&self, cluster: &str, addr: &str, broker_name: &str, broker_id: i64) {
        let change = {
            let mut t = self.write();
            Self::unregister_locked(&mut t, cluster, addr, broker_name, broker_id)
        };
        self.notify(change);
    }

    /// Removes one broker; a lowest-id change of an acting-master group that still has brokers
    /// is returned for notification.
    fn unregister_locked(
        t: &mut Tables,
        cluster: &str,
        addr: &str,
        broker_name: &str,
        broker_id: i64,
    ) -> Option<MinBrokerIdChange> {
        let key = (cluster.to_owned(), addr.to_owned());
        t.live.remove(&key);
        t.filter.remove(&key);
        let mut remove_name = false;
        let mut change = None;
        if let Some(bd) = t.broker_addr.get_mut(broker_name) {
            let was_min = bd.broker_addrs.keys().next() == Some(&broker_id);
            bd.broker_addrs.retain(|_, a| a != addr);
            if bd.broker_addrs.is_empty() {
                remove_name = true;
            } else {
                if was_min && bd.enable_acting_master {
                    change = Some(MinBrokerIdChange {
                        broker_addrs: bd.broker_addrs.clone(),
                        offline_broker_addr: Some(addr.to_owned()),
                        ha_broker_addr: None,
                    });
                }
                if bd.enable_acting_master && !bd.broker_addrs.contains_key(&MASTER_ID) {
                    for m in t.topic_queue.values_mut() {
                        if let Some(q) = m.get_mut(broker_name) {
                            q.perm &= !perm::WRITE;
                        }
                    }
                }
            }
        }
        if remove_name {
            t.broker_addr.remove(broker_name);
            if let Some(set) = t.cluster_addr.get_mut(cluster) {
                set.remove(broker_name);
                if set.is_empty() {
                    t.cluster_addr.remove(cluster);
                }
            }
            t.topic_queue.retain(|_, m| {
                m.remove(broker_name);
                !m.is_empty()
            });
        }
        tracing::info!(
            cluster,
            broker = broker_name,
            id = broker_id,
            addr,
            removed_group = remove_name,
            "broker unregistered"
        );
        change
    }

    /// Unregisters every broker whose registration came on connection `connection_id` (it
    /// closed). Keyed by the connection's id, not its address: a client that claims a broker's
    /// address (a PROXY header) and then closes must not unregister that broker.
    pub fn on_channel_destroy(&self, connection_id: u64, peer: &str) {
        let mut changes = Vec::new();
        {
            let mut t = self.write();
            let gone: Vec<LiveKey> = t
                .live
                .iter()
                .filter(|(_, l)| l.channel.as_ref().is_some_and(|c| c.id() == connection_id))
                .map(|(k, _)| k.clone())
                .collect();
            for (cluster, addr) in gone {
                tracing::info!(%peer, broker_addr = %addr, "broker channel closed");
                let found = Self::lookup_name_id(&t, &addr);
                let (name, id) = found.unwrap_or_default();
                changes.extend(Self::unregister_locked(&mut t, &cluster, &addr, &name, id));
            }
        }
        self.notify(changes);
    }

    fn lookup_name_id(t: &Tables, addr: &str) -> Option<(String, i64)> {
        t.broker_addr.values().find_map(|bd| {
            bd.broker_addrs
                .iter()
                .find(|(_, a)| *a == addr)
                .map(|(id, _)| (bd.broker_name.clone(), *id))
        })
    }

    /// The periodic scan: brokers silent for longer than their timeout are closed and removed.
    /// Returns how many expired.
    pub fn scan_not_active(&self) -> usize {
        let now = Instant::now();
        let mut changes = Vec::new();
        let expired = {
            let mut t = self.write();
            let expired: Vec<(LiveKey, Option<ConnectionHandle>)> = t
                .live
                .iter()
                .filter(|(_, l)| now.duration_since(l.last_update) > l.timeout)
                .map(|(k, l)| (k.clone(), l.channel.clone()))
                .collect();
            for ((cluster, addr), channel) in &expired {
                tracing::warn!(%cluster, broker_addr = %addr, "broker expired: no heartbeat within its timeout");
                if let Some(c) = channel {
                    c.close();
                }
                let (name, id) = Self::lookup_name_id(&t, addr).unwrap_or_default();
                changes.extend(Self::unregister_locked(&mut t, cluster, addr, &name, id));
            }
            expired.len()
        };
        self.notify(changes);
        expired
    }

    /// QUERY_DATA_VERSION: whether `dv` differs from the stored one (or nothing is stored); always
    /// refreshes the broker's timestamp. Returns (changed, stored version).
    pub fn query_data_version(
        &self,
        cluster: &str,
        addr: &str,
        dv: &DataVersion,
    ) -> (bool, Option<DataVersion>) {
        let mut t = self.write();
        match t.live.get_mut(&(cluster.to_owned(), addr.to_owned())) {
            Some(l) => {
                l.last_update = Instant::now();
                (l.data_version != *dv, Some(l.data_version))
            }
            None => (true, None),
        }
    }

    /// BROKER_HEARTBEAT: refresh the broker's timestamp if it is registered.
    pub fn heartbeat(&self, cluster: &str, addr: &str) -> bool {
        let mut t = self.write();
        match t.live.get_mut(&(cluster.to_owned(), addr.to_owned())) {
            Some(l) => {
                l.last_update = Instant::now();
                true
            }
            None => false,
        }
    }

    /// GET_ROUTEINFO_BY_TOPIC step 2: the route, if the topic has queues and known brokers.
    pub fn pickup_route(&self, topic: &str) -> Option<Route> {
        let t = self.read();
        let queues_map = t.topic_queue.get(topic)?;
        let queues: Vec<QueueData> = queues_map.values().cloned().collect();
        let brokers: Vec<BrokerData> = queues_map
            .keys()
            .filter_map(|name| t.broker_addr.get(name).cloned())
            .collect();
        if queues.is_empty() || brokers.is_empty() {
            return None;
        }
        let mut filters = BTreeMap::new();
        if !t.filter.is_empty() {
            for b in &brokers {
                for addr in b.broker_addrs.values() {
                    if let Some(list) = t.filter.get(&(b.cluster.clone(), addr.clone())) {
                        filters.insert(addr.clone(), list.clone());
                    }
                }
            }
        }
        Some(Route {
            brokers,
            queues,
            filters,
        })
    }

    /// GET_BROKER_CLUSTER_INFO body: `{"brokerAddrTable":{..},"clusterAddrTable":{..}}`.
    pub fn cluster_info_json(&self) -> bytes::Bytes {
        let t = self.read();
        model::write_cluster_info(
            &t.broker_addr,
            t.cluster_addr
                .iter()
                .map(|(c, names)| (c.as_str(), names.iter().map(String::as_str))),
        )
    }

    /// Every topic name.
    pub fn all_topics(&self) -> Vec<String> {
        self.read().topic_queue.keys().cloned().collect()
    }

    /// Topics with queues on any broker of `cluster` (unknown cluster: none).
    pub fn topics_by_cluster(&self, cluster: &str) -> Vec<String> {
        let t = self.read();
        let Some(names) = t.cluster_addr.get(cluster) else {
            return Vec::new();
        };
        t.topic_queue
            .iter()
            .filter(|(_, m)| m.keys().any(|b| names.contains(b)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Cluster names and broker names, and one broker address (GET_SYSTEM_TOPIC_LIST_FROM_NS).
    pub fn system_topics(&self) -> (Vec<String>, Option<String>) {
        let t = self.read();
        let mut list: Vec<String> = Vec::new();
        let mut addr = None;
        for (cluster, names) in &t.cluster_addr {
            list.push(cluster.clone());
            list.extend(names.iter().cloned());
        }
        if let Some(bd) = t.broker_addr.values().next() {
            addr = bd.broker_addrs.values().next().cloned();
        }
        (list, addr)
    }

    /// Topics whose first queue's sysflag passes `keep` (the unit topic lists).
    pub fn topics_by_sysflag(&self, keep: impl Fn(i32) -> bool) -> Vec<String> {
        self.read()
            .topic_queue
            .iter()
            .filter(|(_, m)| m.values().next().is_some_and(|q| keep(q.topic_sys_flag)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// WIPE_WRITE_PERM_OF_BROKER (`wipe`) or ADD_WRITE_PERM_OF_BROKER: returns topics touched.
    pub fn update_write_perm(&self, broker_name: &str, wipe: bool) -> usize {
        let mut t = self.write();
        let mut n = 0;
        for m in t.topic_queue.values_mut() {
            if let Some(q) = m.get_mut(broker_name) {
                q.perm = if wipe {
                    q.perm & !perm::WRITE
                } else {
                    perm::READ | perm::WRITE
                };
                n += 1;
            }
        }
        n
    }

    /// DELETE_TOPIC_IN_NAMESRV: from one cluster's brokers, or everywhere.
    pub fn delete_topic(&self, topic: &str, cluster: Option<&str>) {
        let mut t = self.write();
        let t = &mut *t;
        match cluster.filter(|c| !c.is_empty()) {
            Some(c) => {
                let names = t.cluster_addr.get(c).cloned().unwrap_or_default();
                if let Some(m) = t.topic_queue.get_mut(topic) {
                    m.retain(|b, _| !names.contains(b));
                    if m.is_empty() {
                        t.topic_queue.remove(topic);
                    }
                }
            }
            None => {
                t.topic_queue.remove(topic);
            }
        }
    }

    /// REGISTER_TOPIC_IN_NAMESRV: applied only if every broker is known.
    pub fn register_topic(&self, topic: &str, queues: Vec<QueueData>) {
        let mut t = self.write();
        if queues.is_empty()
            || !queues
                .iter()
                .all(|q| t.broker_addr.contains_key(&q.broker_name))
        {
            return;
        }
        let m = t.topic_queue.entry(topic.to_owned()).or_default();
        for q in queues {
            m.insert(q.broker_name.clone(), q);
        }
    }

    /// GET_BROKER_MEMBER_GROUP: the group's addresses (empty if unknown).
    pub fn member_group(&self, broker_name: &str) -> BTreeMap<i64, String> {
        self.read()
            .broker_addr
            .get(broker_name)
            .map(|b| b.broker_addrs.clone())
            .unwrap_or_default()
    }

    /// Live brokers (for logs, metrics and tests).
    pub fn live_count(&self) -> usize {
        self.read().live.len()
    }

    /// Topics with a route (metrics).
    pub fn topic_count(&self) -> usize {
        self.read().topic_queue.len()
    }
}

fn queue_data(broker_name: &str, tc: &TopicConfig) -> QueueData {
    QueueData {
        broker_name: broker_name.to_owned(),
        read_queue_nums: tc.read_queue_nums,
        write_queue_nums: tc.write_queue_nums,
        perm: tc.perm,
        topic_sys_flag: tc.topic_sys_flag,
    }
}

/// Unit-topic filters for codes 311/312/313.
pub fn unit_filter(code: i32) -> impl Fn(i32) -> bool {
    move |flag| match code {
        311 => flag & sysflag::UNIT != 0,
        312 => flag & sysflag::UNIT_SUB != 0,
        _ => flag & sysflag::UNIT_SUB != 0 && flag & sysflag::UNIT == 0,
    }
}

#[cfg(test)]
mod acting_master_tests {
    use super::*;

    fn route(acting: bool, perm: i32) -> Route {
        Route {
            brokers: vec![BrokerData {
                cluster: "C".into(),
                broker_name: "b".into(),
                broker_addrs: [(2, "s2".to_owned()), (1, "s1".to_owned())].into(),
                zone_name: None,
                enable_acting_master: acting,
            }],
            queues: vec![QueueData {
                broker_name: "b".into(),
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm,
                topic_sys_flag: 0,
            }],
            filters: BTreeMap::new(),
        }
    }

    fn addrs(r: &Route) -> Vec<(i64, &str)> {
        r.brokers[0]
            .broker_addrs
            .iter()
            .map(|(id, a)| (*id, a.as_str()))
            .collect()
    }

    #[test]
    fn only_read_only_masterless_acting_groups_are_rewritten() {
        let mut r = route(true, perm::READ);
        r.apply_acting_master("T");
        assert_eq!(addrs(&r), vec![(0, "s1"), (2, "s2")]);
        // Still writable, acting master off, or a member-group sync topic: untouched.
        for (mut r, topic) in [
            (route(true, perm::READ | perm::WRITE), "T"),
            (route(false, perm::READ), "T"),
            (route(true, perm::READ), "rmq_sys_SYNC_BROKER_MEMBER_b"),
        ] {
            r.apply_acting_master(topic);
            assert_eq!(addrs(&r), vec![(1, "s1"), (2, "s2")], "{topic}");
        }
    }
}
