//! The push consumer (Java's DefaultMQPushConsumer, spec §4.2-4.11), concurrent consumption.
//!
//! Tasks: a rebalance loop (every 20 s and at once on NOTIFY_CONSUMER_IDS_CHANGED), a route
//! and heartbeat loop (30 s), an offset persister (5 s), one pull task per owned queue (long
//! polling, flow control), and consumption tasks bounded by a semaphore.

use crate::allocate::{Allocate, Averagely};
use crate::message::{decode_records, MessageExt};
use crate::process_queue::ProcessQueue;
use crate::{subscription, MessageQueue};
use async_trait::async_trait;
use rmq_model::call::GetRouteInfo;
use rmq_model::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData, UnregisterClient};
use rmq_model::{Call, NamesrvClient, TopicRouteData};
use rmq_protocol::codes::{request, response};
use rmq_protocol::headers::pull::PullMessageRequestHeader;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{
    ClientBuilder, ClientConfig, ExecutorConfig, ProcessorError, ProcessorRegistry, RemotingClient,
    RequestContext, RequestProcessor,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Where a group with no committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFrom {
    /// The queue's end (messages sent from now on).
    LastOffset,
    /// The queue's start.
    FirstOffset,
    /// The first message stored at or after this time (ms).
    Timestamp(i64),
}

impl ConsumeFrom {
    fn java_name(self) -> &'static str {
        match self {
            ConsumeFrom::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            ConsumeFrom::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
            ConsumeFrom::Timestamp(_) => "CONSUME_FROM_TIMESTAMP",
        }
    }
}

/// A listener's verdict on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    /// Consumed: its offset may be committed.
    Success,
    /// Deliver again later (CONSUMER_SEND_MSG_BACK, delay level 3 + reconsumeTimes).
    ReconsumeLater,
    /// Orderly: stop this queue for `suspend_current_queue_time`, then offer the same messages
    /// again (reconsumeTimes + 1); later messages of the queue wait. Concurrently: as
    /// ReconsumeLater.
    SuspendCurrentQueueAMoment,
}

/// What consumes the messages. A panic in it counts as [`ConsumeResult::ReconsumeLater`].
#[async_trait]
pub trait MessageListener: Send + Sync + 'static {
    /// Consumes a batch (`consume_batch_max_size` messages at most, one by default).
    async fn consume(&self, msgs: Vec<MessageExt>) -> ConsumeResult;
}

struct FnListener<F>(F);

#[async_trait]
impl<F, Fut> MessageListener for FnListener<F>
where
    F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ConsumeResult> + Send + 'static,
{
    async fn consume(&self, msgs: Vec<MessageExt>) -> ConsumeResult {
        (self.0)(msgs).await
    }
}

/// A listener from an async closure.
pub fn listener<F, Fut>(f: F) -> Arc<dyn MessageListener>
where
    F: Fn(Vec<MessageExt>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ConsumeResult> + Send + 'static,
{
    Arc::new(FnListener(f))
}

/// Settings, Java's defaults.
#[derive(Clone)]
pub struct ConsumerConfig {
    /// The consumer group.
    pub group: String,
    /// NameServer addresses.
    pub namesrv_addrs: Vec<String>,
    /// Where a group without offsets starts.
    pub consume_from: ConsumeFrom,
    /// Messages asked per pull (32).
    pub pull_batch_size: i32,
    /// Cached messages per queue before pulling pauses (1,000).
    pub pull_threshold_for_queue: usize,
    /// Cached body bytes per queue before pulling pauses (100 MiB).
    pub pull_threshold_size_for_queue: usize,
    /// Messages per listener call (1).
    pub consume_batch_max_size: usize,
    /// Listener calls at once (20, Java's consumeThreadMax).
    pub consume_concurrency: usize,
    /// Give-backs before the DLQ (16).
    pub max_reconsume_times: i32,
    /// Rebalance period (20 s).
    pub rebalance_interval: Duration,
    /// Offset commit period (5 s).
    pub persist_interval: Duration,
    /// Route refresh and heartbeat period (30 s).
    pub heartbeat_interval: Duration,
    /// How long the broker may hold a pull (15 s).
    pub suspend_timeout: Duration,
    /// The queue allocation strategy.
    pub allocate: Arc<dyn Allocate>,
    /// Instance name in the client id (`<pid>#<nanos>` when unset, as Java's clustering).
    pub instance_name: Option<String>,
    /// BROADCASTING: every member consumes every queue, offsets kept locally (no retries: a
    /// failed message is logged and passed).
    pub broadcasting: bool,
    /// Where BROADCASTING offsets are kept (Java: `~/.rocketmq_offsets`).
    pub offset_store_dir: std::path::PathBuf,
    /// Orderly consumption: each queue locked on its broker (LOCK_BATCH_MQ, renewed every
    /// `lock_interval`) and consumed one batch at a time, in offset order.
    pub orderly: bool,
    /// Orderly: how long SUSPEND_CURRENT_QUEUE_A_MOMENT pauses a queue (1 s).
    pub suspend_current_queue_time: Duration,
    /// Orderly: lock renewal period (20 s; the broker's lease is 60 s).
    pub lock_interval: Duration,
    /// At most this many messages are delivered (redeliveries count), then the pulls end
    /// (`rmq consume --count`). Messages pulled past it are neither delivered nor
    /// acknowledged: each queue's committed offset stops right after the last message
    /// delivered from it, where the group's next consumer starts. `None` (default): no limit.
    pub max_messages: Option<u64>,
    /// Transport settings.
    pub client: ClientConfig,
    /// Hooks run on every request (ACL signing: `rmq_acl::AclClientHook`).
    pub rpc_hooks: Vec<Arc<dyn rmq_remoting::RpcHook>>,
}

impl ConsumerConfig {
    /// Java's defaults for `group` over `namesrv_addrs`.
    pub fn new(group: &str, namesrv_addrs: &[&str]) -> Self {
        ConsumerConfig {
            group: group.to_owned(),
            namesrv_addrs: namesrv_addrs.iter().map(|s| (*s).to_owned()).collect(),
            consume_from: ConsumeFrom::LastOffset,
            pull_batch_size: 32,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue: 100 * 1024 * 1024,
            consume_batch_max_size: 1,
            consume_concurrency: 20,
            max_reconsume_times: 16,
            rebalance_interval: Duration::from_secs(20),
            persist_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(30),
            suspend_timeout: Duration::from_secs(15),
            allocate: Arc::new(Averagely),
            instance_name: None,
            broadcasting: false,
            offset_store_dir: std::path::PathBuf::from(
                std::env::var("HOME").unwrap_or_else(|_| ".".into()),
            )
            .join(".rocketmq_offsets"),
            orderly: false,
            suspend_current_queue_time: Duration::from_secs(1),
            lock_interval: Duration::from_secs(20),
            max_messages: None,
            client: ClientConfig::default(),
            rpc_hooks: Vec::new(),
        }
    }
}

/// Why the consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A setting out of range.
    #[error("bad consumer setting: {0}")]
    Config(String),
}

/// A queue this consumer owns.
struct Owned {
    pq: Arc<ProcessQueue>,
    /// The consumed offset (what is committed), -1 while unknown.
    offset: Arc<AtomicI64>,
    pull: tokio::task::JoinHandle<()>,
    /// Orderly: the queue's one consumption task.
    orderly: Option<tokio::task::JoinHandle<()>>,
    /// Lite pull: wakes the queue's pull task out of a held pull when the queue is sought.
    seek_notify: Arc<Notify>,
}

/// Orderly: pulled batches go to the queue's consumption task in order.
type OrderlyTx = tokio::sync::mpsc::UnboundedSender<Vec<MessageExt>>;

pub(crate) struct Inner {
    config: ConsumerConfig,
    client_id: String,
    client: RemotingClient,
    namesrv: NamesrvClient,
    subscriptions: Mutex<BTreeMap<String, SubscriptionData>>,
    routes: Mutex<HashMap<String, TopicRouteData>>,
    owned: Mutex<HashMap<MessageQueue, Owned>>,
    listener: Option<Arc<dyn MessageListener>>,
    consume_slots: Arc<Semaphore>,
    rebalance_now: Arc<Notify>,
    stopping: AtomicBool,
    /// BROADCASTING: this member's offsets.
    local: Option<Arc<crate::local_offsets::LocalOffsets>>,
    /// Lite pull: pulled batches go to `poll` through this bounded channel.
    pub(crate) lite: Option<tokio::sync::mpsc::Sender<LiteBatch>>,
    /// Lite pull: queues assigned by hand (no rebalance).
    assigned: Option<Vec<MessageQueue>>,
    /// Lite pull: seeks not yet applied by the queues' pull tasks, and each queue's seek count
    /// (batches pulled before the last seek are dropped by `poll`).
    pub(crate) seeks: Mutex<HashMap<MessageQueue, (i64, u64)>>,
    /// Messages still to deliver (`max_messages`), when limited.
    budget: Option<AtomicU64>,
    /// A rebalance is already due soon ([`Inner::rebalance_soon`]).
    rebalance_due: Arc<AtomicBool>,
}

/// Lite pull: a queue's pulled messages and the seek generation they were pulled in.
pub(crate) type LiteBatch = (MessageQueue, u64, Vec<MessageExt>);

/// How a consumer hands messages over.
pub(crate) enum Mode {
    /// A listener (push).
    Push(Arc<dyn MessageListener>),
    /// `poll` (lite pull), subscribed (rebalanced) or assigned queues.
    Lite {
        tx: tokio::sync::mpsc::Sender<LiteBatch>,
        assigned: Option<Vec<MessageQueue>>,
    },
}

/// Wakes the rebalance loop on NOTIFY_CONSUMER_IDS_CHANGED.
struct OnNotify(Arc<Notify>);

#[async_trait]
impl RequestProcessor for OnNotify {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.0.notify_one();
        Ok(None)
    }
}

/// Moves owned queues to the offsets a broker's RESET_CONSUMER_CLIENT_OFFSET names (an
/// operator's reset-offset): their pulls restart there, cached messages are dropped.
struct OnReset(Arc<std::sync::OnceLock<std::sync::Weak<Inner>>>);

#[async_trait]
impl RequestProcessor for OnReset {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let Some(inner) = self.0.get().and_then(std::sync::Weak::upgrade) else {
            return Ok(None);
        };
        for (mq, offset) in crate::local_offsets::parse(&req.body) {
            let owned = inner
                .owned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&mq);
            if owned {
                tracing::info!(queue = ?mq, offset, "offset reset by the broker");
                inner.seek(&mq, offset);
            }
        }
        Ok(None)
    }
}

/// A running push consumer.
pub struct PushConsumer {
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

const RPC_TIMEOUT: Duration = Duration::from_secs(5);

impl PushConsumer {
    /// Subscribes `topics` (topic, tag expression), starts the group's work and returns once
    /// the first rebalance ran.
    pub async fn start(
        config: ConsumerConfig,
        topics: &[(&str, &str)],
        listener: Arc<dyn MessageListener>,
    ) -> Result<PushConsumer, ConsumerError> {
        Self::start_mode(config, topics, Mode::Push(listener)).await
    }

    pub(crate) async fn start_mode(
        config: ConsumerConfig,
        topics: &[(&str, &str)],
        mode: Mode,
    ) -> Result<PushConsumer, ConsumerError> {
        let (listener, lite, assigned) = match mode {
            Mode::Push(l) => (Some(l), None, None),
            Mode::Lite { tx, assigned } => (None, Some(tx), assigned),
        };
        if config.group.is_empty() || config.namesrv_addrs.is_empty() || topics.is_empty() {
            return Err(ConsumerError::Config(
                "a group, NameServers and a topic are needed".into(),
            ));
        }
        if config.consume_concurrency == 0
            || config.consume_batch_max_size == 0
            || config.pull_batch_size <= 0
        {
            return Err(ConsumerError::Config(
                "concurrency, batch sizes must be positive".into(),
            ));
        }
        let rebalance_now = Arc::new(Notify::new());
        let mut reg = ProcessorRegistry::new();
        reg.register(
            request::NOTIFY_CONSUMER_IDS_CHANGED,
            Arc::new(OnNotify(rebalance_now.clone())),
            ExecutorConfig::new(1, 64),
        );
        let reset_cell = Arc::new(std::sync::OnceLock::new());
        reg.register(
            request::RESET_CONSUMER_CLIENT_OFFSET,
            Arc::new(OnReset(reset_cell.clone())),
            ExecutorConfig::new(1, 64),
        );
        let mut builder = ClientBuilder::new(config.client.clone()).registry(reg);
        for hook in &config.rpc_hooks {
            builder = builder.hook(hook.clone());
        }
        let client = builder.build();
        client.update_namesrv_addresses(&config.namesrv_addrs);
        let namesrv = NamesrvClient::new(client.clone(), RPC_TIMEOUT);
        let instance = config.instance_name.clone().unwrap_or_else(|| {
            if config.broadcasting {
                // Java keeps "DEFAULT" in broadcasting: the offsets file outlives the process.
                return "DEFAULT".into();
            }
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{}#{nanos}", std::process::id())
        });
        let client_id = format!("{}@{instance}", rmq_model::local_ip());
        let mut subs = BTreeMap::new();
        for (topic, expr) in topics {
            subs.insert((*topic).to_owned(), subscription::build(topic, expr));
        }
        if !config.broadcasting && lite.is_none() {
            let retry = format!("%RETRY%{}", config.group);
            subs.insert(retry.clone(), subscription::build(&retry, "*"));
        }
        let local = config.broadcasting.then(|| {
            Arc::new(crate::local_offsets::LocalOffsets::load(
                &config.offset_store_dir,
                &client_id,
                &config.group,
            ))
        });
        let config_budget = config.max_messages;
        let inner = Arc::new(Inner {
            consume_slots: Arc::new(Semaphore::new(config.consume_concurrency)),
            config,
            client_id,
            client,
            namesrv,
            subscriptions: Mutex::new(subs),
            routes: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashMap::new()),
            listener,
            rebalance_now,
            stopping: AtomicBool::new(false),
            local,
            lite,
            assigned,
            seeks: Mutex::new(HashMap::new()),
            budget: config_budget.map(AtomicU64::new),
            rebalance_due: Arc::new(AtomicBool::new(false)),
        });
        let _ = reset_cell.set(Arc::downgrade(&inner));
        inner.refresh_routes().await;
        inner.heartbeat().await;
        // The first heartbeat makes the broker create the group's retry topic: route it too.
        inner.refresh_routes().await;
        inner.rebalance().await;
        let mut tasks = Vec::new();
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let _ =
                    tokio::time::timeout(i.config.rebalance_interval, i.rebalance_now.notified())
                        .await;
                if i.stopping.load(Ordering::SeqCst) {
                    return;
                }
                i.rebalance().await;
            }
        }));
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = tokio::time::interval(i.config.heartbeat_interval);
            t.tick().await;
            loop {
                t.tick().await;
                i.refresh_routes().await;
                i.heartbeat().await;
            }
        }));
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = tokio::time::interval(i.config.persist_interval);
            t.tick().await;
            loop {
                t.tick().await;
                i.persist_all().await;
            }
        }));
        if inner.config.orderly {
            let i = inner.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = tokio::time::interval(i.config.lock_interval);
                t.tick().await;
                loop {
                    t.tick().await;
                    i.lock_all().await;
                }
            }));
        }
        Ok(PushConsumer { inner, tasks })
    }

    /// The client id this consumer is known by.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The queues this consumer owns now, sorted.
    pub fn owned_queues(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = self
            .inner
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Messages and body bytes pulled and not yet consumed, over every owned queue (what flow
    /// control bounds: per queue, `pull_threshold_for_queue` plus one pull).
    pub fn cached(&self) -> (usize, usize) {
        let owned = self.inner.owned.lock().unwrap_or_else(|p| p.into_inner());
        owned.values().fold((0, 0), |(n, b), o| {
            let (n2, b2) = o.pq.size();
            (n + n2, b + b2)
        })
    }

    /// Messages stored but not yet consumed, over every owned queue: each queue's max offset
    /// (GET_MAX_OFFSET) minus its consumed offset.
    pub async fn lag(&self) -> u64 {
        let owned: Vec<(MessageQueue, i64)> = {
            let o = self.inner.owned.lock().unwrap_or_else(|p| p.into_inner());
            o.iter()
                .map(|(k, v)| (k.clone(), v.offset.load(Ordering::SeqCst)))
                .collect()
        };
        let mut lag = 0u64;
        for (mq, consumed) in owned {
            let Some(addr) = self.inner.master_of(&mq.broker_name) else {
                continue;
            };
            let req = RemotingCommand::request(request::GET_MAX_OFFSET)
                .with_ext("topic", mq.topic.clone())
                .with_ext("queueId", mq.queue_id.to_string())
                .with_ext("committed", "true");
            if let Ok(r) = self.inner.client.invoke_sync(&addr, req, RPC_TIMEOUT).await {
                let max: i64 = r.ext("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
                lag += (max - consumed.max(0)).max(0) as u64;
            }
        }
        lag
    }

    /// Rebalances now (tests; NOTIFY_CONSUMER_IDS_CHANGED does it by itself).
    pub async fn rebalance(&self) {
        self.inner.rebalance().await;
    }

    /// Stops: pulls end, in-flight consumption finishes (up to 30 s), offsets are committed,
    /// the group is left (UNREGISTER_CLIENT to every broker).
    pub async fn shutdown(self) {
        let inner = self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.rebalance_now.notify_one();
        for t in &self.tasks {
            t.abort();
        }
        let owned: Vec<Owned> = inner
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, o)| o)
            .collect();
        for o in &owned {
            o.pull.abort();
            o.pq.drop_queue();
        }
        let n = inner.config.consume_concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(30), inner.consume_slots.acquire_many(n))
            .await;
        // Commit what was consumed, once in-flight consumption ended.
        for (mq, offset) in committed_offsets(&owned) {
            inner.commit(&mq, offset).await;
        }
        inner.persist_local().await;
        for o in &owned {
            if let Some(t) = &o.orderly {
                t.abort();
            }
        }
        if inner.config.orderly {
            let queues: Vec<MessageQueue> = owned.iter().filter_map(|o| o.pq.name()).collect();
            inner.unlock(&queues, false).await;
        }
        for addr in inner.broker_addrs() {
            let req = UnregisterClient {
                client_id: inner.client_id.clone(),
                producer_group: None,
                consumer_group: Some(inner.config.group.clone()),
            };
            let _ = inner
                .client
                .invoke_sync(&addr, req.command(), RPC_TIMEOUT)
                .await;
        }
        inner.client.shutdown();
    }
}

/// The (queue, offset) pairs of the given-up queues that have an offset.
fn committed_offsets(owned: &[Owned]) -> Vec<(MessageQueue, i64)> {
    owned
        .iter()
        .filter_map(|o| o.pq.name().map(|mq| (mq, o.offset.load(Ordering::SeqCst))))
        .filter(|(_, off)| *off >= 0)
        .collect()
}

impl Inner {
    fn master_of(&self, broker_name: &str) -> Option<String> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .values()
            .find_map(|r| r.master_addr(broker_name).map(str::to_owned))
    }

    /// The address of broker `id` of a group (a slave the broker suggested), else the master.
    fn addr_of(&self, broker_name: &str, id: i64) -> Option<(String, bool)> {
        if id != 0 {
            let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            let found = routes.values().find_map(|r| {
                r.broker_datas
                    .iter()
                    .find(|b| b.broker_name == broker_name)
                    .and_then(|b| b.broker_addrs.get(&id).cloned())
            });
            if let Some(a) = found {
                return Some((a, false));
            }
        }
        self.master_of(broker_name).map(|a| (a, true))
    }

    fn broker_addrs(&self) -> Vec<String> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<String> = routes
            .values()
            .flat_map(|r| {
                r.broker_datas
                    .iter()
                    .filter_map(|b| b.broker_addrs.get(&0).cloned())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    async fn refresh_routes(&self) {
        let topics: Vec<String> = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for topic in topics {
            match self.namesrv.read(&GetRouteInfo::new(topic.clone())).await.1 {
                Ok(route) => {
                    self.routes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(topic, route);
                }
                Err(e) => tracing::debug!(topic, error = %e, "no route"),
            }
        }
    }

    fn heartbeat_data(&self) -> HeartbeatData {
        let subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        HeartbeatData {
            client_id: self.client_id.clone(),
            consumer_data_set: vec![ConsumerData {
                consume_from_where: self.config.consume_from.java_name().into(),
                consume_type: if self.lite.is_some() {
                    "CONSUME_ACTIVELY"
                } else {
                    "CONSUME_PASSIVELY"
                }
                .into(),
                group_name: self.config.group.clone(),
                message_model: if self.config.broadcasting {
                    "BROADCASTING"
                } else {
                    "CLUSTERING"
                }
                .into(),
                subscription_data_set: subs.values().cloned().collect(),
                unit_mode: false,
            }],
            ..Default::default()
        }
    }

    async fn heartbeat(&self) {
        let hb = self.heartbeat_data();
        for addr in self.broker_addrs() {
            if let Err(e) = self
                .client
                .invoke_sync(&addr, hb.request(), RPC_TIMEOUT)
                .await
            {
                tracing::warn!(broker = %addr, error = %e, "heartbeat failed");
            }
        }
    }

    /// One rebalance round over every subscribed topic (spec §4.4).
    async fn rebalance(self: &Arc<Self>) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let topics: Vec<String> = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        let unrouted = {
            let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            topics.iter().any(|t| !routes.contains_key(t))
        };
        if unrouted {
            self.refresh_routes().await;
        }
        let mut changed = false;
        for topic in topics {
            let Some(route) = self
                .routes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&topic)
                .cloned()
            else {
                continue;
            };
            let mut all: Vec<MessageQueue> = route
                .queue_datas
                .iter()
                .filter(|q| q.perm & 4 != 0)
                .flat_map(|q| {
                    let t = topic.clone();
                    (0..q.read_queue_nums).map(move |i| MessageQueue {
                        topic: t.clone(),
                        broker_name: q.broker_name.clone(),
                        queue_id: i,
                    })
                })
                .collect();
            all.sort();
            let Some(addr) = route
                .broker_datas
                .first()
                .and_then(|b| b.broker_addrs.get(&0).cloned())
            else {
                continue;
            };
            let mine = if let Some(assigned) = &self.assigned {
                assigned
                    .iter()
                    .filter(|q| q.topic == topic)
                    .cloned()
                    .collect()
            } else if self.config.broadcasting {
                all
            } else {
                let Some(mut members) = self.members(&addr).await else {
                    continue;
                };
                members.sort();
                self.config
                    .allocate
                    .allocate(&self.client_id, &all, &members)
            };
            changed |= self.update_owned(&topic, mine).await;
        }
        if changed {
            let now = crate::now_ms();
            for s in self
                .subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values_mut()
            {
                s.sub_version = now;
            }
            self.heartbeat().await;
        }
    }

    async fn members(&self, addr: &str) -> Option<Vec<String>> {
        let req = RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP)
            .with_ext("consumerGroup", self.config.group.clone());
        let r = self.client.invoke_sync(addr, req, RPC_TIMEOUT).await.ok()?;
        if r.code != 0 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        Some(
            v["consumerIdList"]
                .as_array()?
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// Drops queues no longer ours (committing their offsets first), takes new ones.
    async fn update_owned(self: &Arc<Self>, topic: &str, mine: Vec<MessageQueue>) -> bool {
        let mut changed = false;
        // Queues no longer ours, and orderly queues given away earlier whose listener call was
        // still running then (they stayed, dropped, and are given up now if it has returned).
        let gone: Vec<(MessageQueue, Arc<ProcessQueue>)> = {
            let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
            owned
                .iter()
                .filter(|(q, o)| q.topic == topic && (!mine.contains(q) || o.pq.is_dropped()))
                .map(|(q, o)| {
                    o.pq.drop_queue();
                    o.pull.abort();
                    (q.clone(), o.pq.clone())
                })
                .collect()
        };
        for (mq, pq) in gone {
            // Orderly (Java's removeUnnecessaryMessageQueue): the queue is given up, and
            // unlocked on the broker, only once its consume lock is ours; while the listener
            // still runs on it, it stays (locked, renewed, nothing more dispatched) and the
            // next rebalance, a second from now, tries again. Otherwise a new owner would
            // consume the queue while our listener is still at work on it.
            let held = if self.config.orderly {
                match pq.try_lock_consume(Duration::from_millis(500)).await {
                    Some(held) => Some(held),
                    None => {
                        tracing::warn!(
                            queue = ?mq,
                            "given away while the listener runs on it: kept locked until it returns"
                        );
                        self.rebalance_soon(Duration::from_secs(1));
                        continue;
                    }
                }
            } else {
                None
            };
            let Some(o) = self
                .owned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&mq)
            else {
                continue;
            };
            changed = true;
            // Messages already handed to the listener finish first (up to 10 s), so the
            // committed offset covers them and the new owner does not see them again; those
            // not yet started are left for it.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while o.pq.consuming() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let off = o.offset.load(Ordering::SeqCst);
            if off >= 0 {
                self.commit(&mq, off).await;
            }
            if let Some(t) = &o.orderly {
                t.abort();
                // Back in our share (it left and returned while busy): it is locked again
                // below, not released in between.
                if !mine.contains(&mq) {
                    self.unlock(std::slice::from_ref(&mq), true).await;
                }
            }
            drop(held);
            tracing::info!(queue = ?mq, "queue given away");
        }
        for mq in mine {
            if self
                .owned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&mq)
            {
                continue;
            }
            let pq = Arc::new(ProcessQueue::named(mq.clone()));
            if self.config.orderly {
                if !self.lock(std::slice::from_ref(&mq)).await.contains(&mq) {
                    // Another member still holds it: try again soon.
                    self.rebalance_soon(Duration::from_millis(500));
                    continue;
                }
                pq.set_locked(true);
            }
            changed = true;
            let offset = Arc::new(AtomicI64::new(-1));
            let (tx, orderly) = if self.config.orderly {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let task = tokio::spawn(orderly_loop(
                    self.clone(),
                    mq.clone(),
                    pq.clone(),
                    offset.clone(),
                    rx,
                ));
                (Some(tx), Some(task))
            } else {
                (None, None)
            };
            let seek_notify = Arc::new(Notify::new());
            let pull = tokio::spawn(pull_loop(
                self.clone(),
                mq.clone(),
                pq.clone(),
                offset.clone(),
                tx,
                seek_notify.clone(),
            ));
            self.owned.lock().unwrap_or_else(|p| p.into_inner()).insert(
                mq.clone(),
                Owned {
                    pq,
                    offset,
                    pull,
                    orderly,
                    seek_notify,
                },
            );
            tracing::info!(queue = ?mq, "queue taken");
        }
        changed
    }

    /// Takes up to `n` messages from the budget (`max_messages`): how many may be delivered.
    fn take_budget(&self, n: usize) -> usize {
        let Some(budget) = &self.budget else {
            return n;
        };
        let before = budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                Some(left.saturating_sub(n as u64))
            })
            .unwrap_or(0);
        n.min(usize::try_from(before).unwrap_or(usize::MAX))
    }

    /// Runs a rebalance `after` from now (a lock refused, a queue still busy), unless one is
    /// already due: rounds that keep asking do not multiply the timers.
    fn rebalance_soon(&self, after: Duration) {
        if self.rebalance_due.swap(true, Ordering::SeqCst) {
            return;
        }
        let (again, due) = (self.rebalance_now.clone(), self.rebalance_due.clone());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            due.store(false, Ordering::SeqCst);
            again.notify_one();
        });
    }

    /// The offset to start a queue at (spec §4.5).
    async fn initial_offset(&self, mq: &MessageQueue) -> Option<i64> {
        let addr = self.master_of(&mq.broker_name)?;
        if let Some(local) = &self.local {
            if let Some(o) = local.get(mq) {
                return Some(o);
            }
            return self.offset_without_commit(&addr, mq).await;
        }
        let q = RemotingCommand::request(request::QUERY_CONSUMER_OFFSET)
            .with_ext("consumerGroup", self.config.group.clone())
            .with_ext("topic", mq.topic.clone())
            .with_ext("queueId", mq.queue_id.to_string());
        let r = self.client.invoke_sync(&addr, q, RPC_TIMEOUT).await.ok()?;
        if r.code == 0 {
            return r.ext("offset").and_then(|o| o.parse().ok());
        }
        if r.code != response::QUERY_NOT_FOUND {
            return None;
        }
        self.offset_without_commit(&addr, mq).await
    }

    /// Where a queue starts when the group has no offset for it (spec §4.5).
    async fn offset_without_commit(&self, addr: &str, mq: &MessageQueue) -> Option<i64> {
        let ask = |code: i32, extra: Option<(&'static str, String)>| {
            let mut c = RemotingCommand::request(code)
                .with_ext("topic", mq.topic.clone())
                .with_ext("queueId", mq.queue_id.to_string());
            if let Some((k, v)) = extra {
                c = c.with_ext(k, v);
            }
            c
        };
        let retry = mq.topic.starts_with("%RETRY%");
        let req = match self.config.consume_from {
            ConsumeFrom::FirstOffset => return Some(0),
            ConsumeFrom::LastOffset if retry => return Some(0),
            ConsumeFrom::LastOffset => {
                ask(request::GET_MAX_OFFSET, Some(("committed", "true".into())))
            }
            ConsumeFrom::Timestamp(_) if retry => {
                ask(request::GET_MAX_OFFSET, Some(("committed", "true".into())))
            }
            ConsumeFrom::Timestamp(t) => ask(
                request::SEARCH_OFFSET_BY_TIMESTAMP,
                Some(("timestamp", t.to_string())),
            ),
        };
        let r = self.client.invoke_sync(addr, req, RPC_TIMEOUT).await.ok()?;
        (r.code == 0)
            .then(|| r.ext("offset").and_then(|o| o.parse().ok()))
            .flatten()
    }

    /// UPDATE_CONSUMER_OFFSET, oneway, to the queue's master.
    async fn commit(&self, mq: &MessageQueue, offset: i64) {
        if let Some(local) = &self.local {
            local.set(mq, offset);
            return;
        }
        let Some(addr) = self.master_of(&mq.broker_name) else {
            return;
        };
        let req = RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET)
            .with_ext("consumerGroup", self.config.group.clone())
            .with_ext("topic", mq.topic.clone())
            .with_ext("queueId", mq.queue_id.to_string())
            .with_ext("commitOffset", offset.to_string())
            .with_ext("bname", mq.broker_name.clone());
        if let Err(e) = self.client.invoke_oneway(&addr, req, RPC_TIMEOUT).await {
            tracing::debug!(error = %e, "offset commit not sent");
        }
    }

    async fn persist_all(&self) {
        let offsets: Vec<(MessageQueue, i64)> = {
            let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
            owned
                .iter()
                .map(|(k, o)| (k.clone(), o.offset.load(Ordering::SeqCst)))
                .filter(|(_, o)| *o >= 0)
                .collect()
        };
        for (mq, off) in offsets {
            self.commit(&mq, off).await;
        }
        self.persist_local().await;
    }

    /// BROADCASTING: writes the offsets file, on the blocking pool.
    async fn persist_local(&self) {
        if let Some(local) = self.local.clone() {
            match tokio::task::spawn_blocking(move || local.persist()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "broadcasting offsets not written"),
                Err(e) => tracing::error!(error = %e, "broadcasting offsets not written"),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Gives a message back for redelivery; `false` if the broker refused or was unreachable.
    async fn send_back(&self, m: &MessageExt) -> bool {
        let Some(addr) = self.master_of(&m.broker_name) else {
            return false;
        };
        let req = RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK)
            .with_ext("offset", m.commit_log_offset.to_string())
            .with_ext("group", self.config.group.clone())
            .with_ext("delayLevel", "0")
            .with_ext("originMsgId", m.msg_id().to_owned())
            .with_ext("originTopic", m.topic.clone())
            .with_ext("unitMode", "false")
            .with_ext(
                "maxReconsumeTimes",
                self.config.max_reconsume_times.to_string(),
            )
            .with_ext("bname", m.broker_name.clone());
        matches!(self.client.invoke_sync(&addr, req, RPC_TIMEOUT).await, Ok(r) if r.code == 0)
    }
}

/// Pulls again from a record that does not decode before it is skipped (the last of them asks
/// for that record alone).
const UNDECODABLE_RETRIES: u32 = 3;
/// The pause before pulling again from a record that did not decode (Java's
/// pullTimeDelayMillsWhenException).
const UNDECODABLE_PAUSE: Duration = Duration::from_secs(1);

/// One queue's pulls until it is given away or the consumer stops.
async fn pull_loop(
    inner: Arc<Inner>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
    consumed: Arc<AtomicI64>,
    orderly: Option<OrderlyTx>,
    seek_notify: Arc<Notify>,
) {
    // Java starts a new queue's pulls 500 ms after the rebalance; the start offset is read
    // after that pause here, so a previous owner's final commit (sent when it gave the queue
    // up in its own rebalance) is usually in, and its last messages are not seen twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut next = loop {
        if pq.is_dropped() || inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        match inner.initial_offset(&mq).await {
            Some(o) => break o,
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    consumed.fetch_max(next, Ordering::SeqCst);
    tracing::debug!(queue = ?mq, start = next, "pulling");
    let sub = inner
        .subscriptions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&mq.topic)
        .cloned();
    let Some(sub) = sub else { return };
    let lite = inner.lite.clone();
    let mut suggested = 0i64;
    // A record that did not decode: its queue offset and the pulls that failed on it.
    let mut undecodable: Option<(i64, u32)> = None;
    loop {
        if pq.is_dropped() || inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        if let Some(to) = inner.take_seek(&mq) {
            next = to;
            pq.clear();
            consumed.store(to, Ordering::SeqCst);
        }
        let (count, bytes) = pq.size();
        if count > inner.config.pull_threshold_for_queue
            || bytes > inner.config.pull_threshold_size_for_queue
        {
            // Flow control: the listener is behind; never drop, wait.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        // suggestWhichBrokerId: a broker may send a lagging consumer to a slave (Java's
        // slaveReadEnable); offsets are committed to masters only.
        let Some((addr, to_master)) = inner.addr_of(&mq.broker_name, suggested) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let commit = if to_master {
            consumed.load(Ordering::SeqCst)
        } else {
            -1
        };
        let mut sys_flag = 0x2 | 0x4;
        if lite.is_some() {
            // FLAG_LITE_PULL_MESSAGE: sent as LITE_PULL_MESSAGE, never committing.
            sys_flag |= 0x10;
        } else if commit > 0 && !inner.config.broadcasting {
            sys_flag |= 0x1;
        }
        let sub_version = inner
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&mq.topic)
            .map_or(0, |s| s.sub_version);
        let h = PullMessageRequestHeader {
            consumer_group: inner.config.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: next,
            // The last try at a record that does not decode asks for it alone: the answer's
            // next offset is then the one right after it.
            max_msg_nums: match undecodable {
                Some((_, tries)) if tries >= UNDECODABLE_RETRIES => 1,
                _ => inner.config.pull_batch_size,
            },
            sys_flag,
            commit_offset: commit.max(0),
            suspend_timeout_millis: inner.config.suspend_timeout.as_millis() as i64,
            subscription: Some(sub.sub_string.clone()),
            sub_version,
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
            request_source: None,
            proxy_froward_client_id: None,
        };
        let mut h = h;
        let code = if lite.is_some() {
            h.sub_version = 0;
            request::LITE_PULL_MESSAGE
        } else {
            request::PULL_MESSAGE
        };
        let req = RemotingCommand::request_with_header(code, &h);
        // Lite pull: the seek generation this pull belongs to, taken before it is sent (a pull
        // answered after a seek carries messages from before it).
        let generation = inner.seek_generation(&mq);
        let timeout = inner.config.suspend_timeout + Duration::from_secs(15);
        let call = inner.client.invoke_sync(&addr, req, timeout);
        let answered = tokio::select! {
            r = call => Some(r),
            // A seek: this pull (perhaps held for 20 s) no longer matters.
            _ = seek_notify.notified() => None,
        };
        let Some(answered) = answered else {
            continue;
        };
        let r = match answered {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(queue = ?mq, error = %e, "pull failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let next_begin = r.ext("nextBeginOffset").and_then(|o| o.parse::<i64>().ok());
        suggested = r
            .ext("suggestWhichBrokerId")
            .and_then(|o| o.parse::<i64>().ok())
            .unwrap_or(0);
        match r.code {
            response::SUCCESS => {
                let decoded = decode_records(&r.body, &mq.broker_name);
                let pulled_from = next;
                let mut pause = false;
                match &decoded.undecodable {
                    None => {
                        undecodable = None;
                        if let Some(n) = next_begin {
                            next = n;
                        }
                    }
                    Some(e) => {
                        // What decoded is delivered; the next pull starts at the record that
                        // did not, never past it: a few more tries, then that one record alone
                        // is skipped, loudly.
                        let at = decoded
                            .msgs
                            .last()
                            .map_or(pulled_from, |m| m.queue_offset + 1);
                        let tries = match undecodable {
                            Some((o, t)) if o == at => t + 1,
                            _ => 1,
                        };
                        if tries > UNDECODABLE_RETRIES && decoded.msgs.is_empty() {
                            let to = next_begin.filter(|n| *n > at).unwrap_or(at + 1);
                            tracing::error!(
                                topic = %mq.topic, broker = %mq.broker_name, queue = mq.queue_id,
                                offset = at, next = to, tries, error = %e,
                                "a pulled record never decodes: that one message is skipped"
                            );
                            next = to;
                            undecodable = None;
                        } else {
                            tracing::error!(
                                topic = %mq.topic, broker = %mq.broker_name, queue = mq.queue_id,
                                offset = at, tries, error = %e,
                                "a pulled record does not decode: pulling again from it"
                            );
                            next = at;
                            undecodable = Some((at, tries));
                            pause = true;
                        }
                    }
                }
                let mut msgs: Vec<MessageExt> = decoded
                    .msgs
                    .into_iter()
                    .filter(|m| subscription::matches(&sub, m.tags()))
                    .collect();
                // A message budget (`max_messages`): what is past it is neither delivered nor
                // kept, and this queue's pulls end (its committed offset stops right after the
                // last message delivered).
                let spent = inner.take_budget(msgs.len());
                let exhausted = spent < msgs.len();
                msgs.truncate(spent);
                if !msgs.is_empty() {
                    pq.put(&msgs);
                    if let Some(tx) = &lite {
                        if tx.send((mq.clone(), generation, msgs)).await.is_err() {
                            return;
                        }
                    } else {
                        match &orderly {
                            Some(tx) => {
                                let _ = tx.send(msgs);
                            }
                            None => {
                                for batch in msgs.chunks(inner.config.consume_batch_max_size) {
                                    dispatch(
                                        inner.clone(),
                                        pq.clone(),
                                        consumed.clone(),
                                        batch.to_vec(),
                                    );
                                }
                            }
                        }
                    }
                }
                if exhausted {
                    tracing::debug!(queue = ?mq, "message budget spent: pulls end");
                    return;
                }
                if pause {
                    tokio::time::sleep(UNDECODABLE_PAUSE).await;
                }
            }
            response::PULL_NOT_FOUND | response::PULL_RETRY_IMMEDIATELY => {
                if let Some(n) = next_begin {
                    next = n;
                    if pq.size().0 == 0 {
                        consumed.fetch_max(n, Ordering::SeqCst);
                    }
                }
            }
            response::PULL_OFFSET_MOVED => {
                if let Some(n) = next_begin {
                    tracing::warn!(queue = ?mq, from = next, to = n, "offset moved");
                    next = n;
                    consumed.store(n, Ordering::SeqCst);
                    inner.commit(&mq, n).await;
                }
            }
            code => {
                tracing::debug!(queue = ?mq, code, remark = ?r.remark, "pull refused");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Runs the listener on a batch when a consumption slot is free; a failed batch is given back
/// (the messages the broker cannot take are consumed again locally 5 s later, as Java's
/// `submitConsumeRequestLater`, and stay in the cache until then); then the messages done with
/// leave the cache and the committed offset moves to the smallest message still in flight.
fn dispatch(
    inner: Arc<Inner>,
    pq: Arc<ProcessQueue>,
    consumed: Arc<AtomicI64>,
    mut batch: Vec<MessageExt>,
) {
    tokio::spawn(async move {
        let Ok(_slot) = inner.consume_slots.clone().acquire_owned().await else {
            return;
        };
        let Some(_consuming) = pq.begin_consume() else {
            return;
        };
        let retry_topic = format!("%RETRY%{}", inner.config.group);
        for m in batch.iter_mut() {
            if m.topic == retry_topic {
                if let Some(t) = m.property("RETRY_TOPIC").map(str::to_owned) {
                    m.topic = t;
                }
            }
        }
        let Some(listener) = inner.listener.clone() else {
            return;
        };
        let msgs = batch.clone();
        // A panicking listener fails its batch, never the consumer.
        let result = tokio::spawn(async move { listener.consume(msgs).await })
            .await
            .unwrap_or(ConsumeResult::ReconsumeLater);
        if result != ConsumeResult::Success && inner.config.broadcasting {
            tracing::warn!(
                msgs = batch.len(),
                "broadcasting: a failed message is not retried"
            );
        } else if result != ConsumeResult::Success {
            let mut local = Vec::new();
            for m in &batch {
                if !inner.send_back(m).await {
                    local.push(m.clone());
                }
            }
            if !local.is_empty() {
                // Those given back are done with (below); the others stay in the cache until
                // consumed: the commit waits for them.
                batch.retain(|m| !local.iter().any(|l| l.queue_offset == m.queue_offset));
                let (i, p, c) = (inner.clone(), pq.clone(), consumed.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    for m in &mut local {
                        m.reconsume_times += 1;
                    }
                    dispatch(i, p, c, local);
                });
            }
        }
        let offsets: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
        let next = pq.remove(&offsets);
        // Before the consuming guard drops: a queue being given away waits for this.
        consumed.fetch_max(next, Ordering::SeqCst);
    });
}

impl Inner {
    /// LOCK_BATCH_MQ for `queues` (one broker group each call's queues share): the ones now
    /// ours.
    async fn lock(&self, queues: &[MessageQueue]) -> Vec<MessageQueue> {
        let mut granted = Vec::new();
        for (addr, req) in self.lock_requests(request::LOCK_BATCH_MQ, queues) {
            let Ok(r) = self.client.invoke_sync(&addr, req, RPC_TIMEOUT).await else {
                continue;
            };
            if r.code != 0 {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if let Ok(ok) = serde_json::from_value::<Vec<MessageQueue>>(v["lockOKMQSet"].clone()) {
                granted.extend(ok);
            }
        }
        granted
    }

    /// UNLOCK_BATCH_MQ (oneway when a rebalance gives queues away, sync at shutdown).
    async fn unlock(&self, queues: &[MessageQueue], oneway: bool) {
        for (addr, req) in self.lock_requests(request::UNLOCK_BATCH_MQ, queues) {
            let _ = if oneway {
                self.client.invoke_oneway(&addr, req, RPC_TIMEOUT).await
            } else {
                self.client
                    .invoke_sync(&addr, req, RPC_TIMEOUT)
                    .await
                    .map(|_| ())
            };
        }
    }

    /// One LOCK/UNLOCK_BATCH_MQ request (`code`) per broker group of `queues`, with its
    /// master's address (groups without a known master are skipped).
    fn lock_requests(&self, code: i32, queues: &[MessageQueue]) -> Vec<(String, RemotingCommand)> {
        let mut by_broker: BTreeMap<&str, Vec<&MessageQueue>> = BTreeMap::new();
        for q in queues {
            by_broker.entry(&q.broker_name).or_default().push(q);
        }
        by_broker
            .into_iter()
            .filter_map(|(broker, mqs)| {
                let addr = self.master_of(broker)?;
                let body = serde_json::json!({
                    "clientId": self.client_id,
                    "consumerGroup": self.config.group,
                    "mqSet": mqs,
                    "onlyThisBroker": false,
                });
                let req = RemotingCommand::request(code)
                    .with_body(serde_json::to_vec(&body).unwrap_or_default());
                Some((addr, req))
            })
            .collect()
    }

    /// Renews the locks of every owned queue; a queue not granted stops until relocked.
    async fn lock_all(&self) {
        let owned: Vec<(MessageQueue, Arc<ProcessQueue>)> = {
            let o = self.owned.lock().unwrap_or_else(|p| p.into_inner());
            o.iter().map(|(k, v)| (k.clone(), v.pq.clone())).collect()
        };
        let queues: Vec<MessageQueue> = owned.iter().map(|(k, _)| k.clone()).collect();
        let granted = self.lock(&queues).await;
        for (mq, pq) in owned {
            pq.set_locked(granted.contains(&mq));
        }
    }
}

/// Orderly: one queue's messages, one batch at a time, in offset order. A batch the listener
/// suspends is offered again after `suspend_current_queue_time` with reconsumeTimes + 1, and
/// nothing after it runs meanwhile; while the broker's lock is not ours, nothing runs.
async fn orderly_loop(
    inner: Arc<Inner>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
    consumed: Arc<AtomicI64>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<MessageExt>>,
) {
    let retry_topic = format!("%RETRY%{}", inner.config.group);
    while let Some(pulled) = rx.recv().await {
        for chunk in pulled.chunks(inner.config.consume_batch_max_size) {
            let mut batch = chunk.to_vec();
            for m in batch.iter_mut() {
                if m.topic == retry_topic {
                    if let Some(t) = m.property("RETRY_TOPIC").map(str::to_owned) {
                        m.topic = t;
                    }
                }
            }
            loop {
                if inner.stopping.load(Ordering::SeqCst) || pq.is_dropped() {
                    return;
                }
                if !pq.is_locked() {
                    if inner.lock(std::slice::from_ref(&mq)).await.contains(&mq) {
                        pq.set_locked(true);
                    } else {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
                let Ok(_slot) = inner.consume_slots.clone().acquire_owned().await else {
                    return;
                };
                // Held while the listener runs: a rebalance that gives the queue away waits
                // for it before unlocking the queue on the broker.
                let held = pq.lock_consume().await;
                let Some(_consuming) = pq.begin_consume() else {
                    return;
                };
                let Some(listener) = inner.listener.clone() else {
                    return;
                };
                let msgs = batch.clone();
                let result = tokio::spawn(async move { listener.consume(msgs).await })
                    .await
                    .unwrap_or(ConsumeResult::SuspendCurrentQueueAMoment);
                if result == ConsumeResult::Success {
                    let offsets: Vec<i64> = batch.iter().map(|m| m.queue_offset).collect();
                    consumed.fetch_max(pq.remove(&offsets), Ordering::SeqCst);
                    break;
                }
                for m in batch.iter_mut() {
                    m.reconsume_times += 1;
                }
                drop(_consuming);
                drop(held);
                tokio::time::sleep(inner.config.suspend_current_queue_time).await;
            }
        }
    }
}

impl Inner {
    /// A seek waiting for `mq`'s pull task, taken.
    fn take_seek(&self, mq: &MessageQueue) -> Option<i64> {
        let mut s = self.seeks.lock().unwrap_or_else(|p| p.into_inner());
        let entry = s.get_mut(mq)?;
        if entry.0 < 0 {
            return None;
        }
        let to = entry.0;
        entry.0 = -1;
        Some(to)
    }

    /// How many seeks `mq` has seen.
    pub(crate) fn seek_generation(&self, mq: &MessageQueue) -> u64 {
        let s = self.seeks.lock().unwrap_or_else(|p| p.into_inner());
        s.get(mq).map_or(0, |e| e.1)
    }

    /// Lite pull: marks polled messages consumed (the offset to commit moves past them).
    pub(crate) fn mark_polled(&self, mq: &MessageQueue, offsets: &[i64]) {
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = owned.get(mq) {
            let next = o.pq.remove(offsets);
            o.offset.fetch_max(next, Ordering::SeqCst);
        }
    }

    /// Lite pull: the next pull of `mq` starts at `offset`; what was pulled before is dropped.
    pub(crate) fn seek(&self, mq: &MessageQueue, offset: i64) {
        let mut s = self.seeks.lock().unwrap_or_else(|p| p.into_inner());
        let e = s.entry(mq.clone()).or_insert((-1, 0));
        e.0 = offset;
        e.1 += 1;
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = owned.get(mq) {
            // Seeking back is allowed: the committed offset follows the seek.
            o.offset.store(offset, Ordering::SeqCst);
            o.seek_notify.notify_one();
        }
    }

    /// Commits every owned queue's offset now.
    pub(crate) async fn commit_now(&self) {
        self.persist_all().await;
    }
}

impl PushConsumer {
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}
