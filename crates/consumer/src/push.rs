//! The push consumer (Java's DefaultMQPushConsumer, spec §4.2-4.11): starting one, what it
//! shows (owned queues, cache, lag), and its shutdown. The lite pull consumer starts the same
//! way with a different `Delivery` (`state.rs`).
//!
//! Tasks: a rebalance loop (every 20 s and at once on NOTIFY_CONSUMER_IDS_CHANGED), a route
//! and heartbeat loop (30 s), an offset persister (5 s), orderly lock renewal (20 s), one pull
//! task per owned queue (long polling, flow control), and consumption tasks bounded by a
//! semaphore; each lives in its own module (`rebalance`, `routes`, `offset_store`, `orderly`,
//! `pull`, `concurrent`).

use crate::config::{ConsumerConfig, ConsumerError};
use crate::listener::MessageListener;
use crate::local_offsets::LocalOffsets;
use crate::queue_seeks::Seeks;
use crate::rebalance::OnNotify;
use crate::seek::OnReset;
use crate::state::{ConsumerState, Delivery, OwnedQueue, RPC_TIMEOUT};
use crate::{broker_requests, subscription, MessageQueue};
use rmq_model::heartbeat::{SubscriptionData, UnregisterClient};
use rmq_model::{Call, NamesrvClient};
use rmq_protocol::codes::request;
use rmq_remoting::{ClientBuilder, ExecutorConfig, ProcessorRegistry, RemotingClient};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

/// A running push consumer.
pub struct PushConsumer {
    state: Arc<ConsumerState>,
    tasks: Vec<JoinHandle<()>>,
}

impl PushConsumer {
    /// Subscribes `topics` (topic, tag expression), starts the group's work and returns once
    /// the first rebalance ran.
    pub async fn start(
        config: ConsumerConfig,
        topics: &[(&str, &str)],
        listener: Arc<dyn MessageListener>,
    ) -> Result<PushConsumer, ConsumerError> {
        Self::start_with(config, topics, Delivery::Listener(listener)).await
    }

    /// Starts a consumer that delivers as `delivery` says (a listener, or `poll`).
    pub(crate) async fn start_with(
        config: ConsumerConfig,
        topics: &[(&str, &str)],
        delivery: Delivery,
    ) -> Result<PushConsumer, ConsumerError> {
        config.check(topics)?;
        let rebalance_now = Arc::new(Notify::new());
        let reset_cell = Arc::new(OnceLock::new());
        let client = remoting_client(&config, &rebalance_now, &reset_cell);
        let namesrv = NamesrvClient::new(client.clone(), RPC_TIMEOUT);
        let client_id = format!("{}@{}", rmq_model::local_ip(), instance_name(&config));
        let subs = subscriptions(&config, topics, &delivery);
        let broadcast_offsets = config.broadcasting.then(|| {
            Arc::new(LocalOffsets::load(
                &config.offset_store_dir,
                &client_id,
                &config.group,
            ))
        });
        let state = Arc::new(ConsumerState {
            consume_slots: Arc::new(Semaphore::new(config.consume_concurrency)),
            budget: config.max_messages.map(AtomicU64::new),
            config,
            client_id,
            client,
            namesrv,
            subscriptions: Mutex::new(subs),
            routes: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashMap::new()),
            delivery,
            rebalance_now,
            rebalance_due: Arc::new(AtomicBool::new(false)),
            stopping: AtomicBool::new(false),
            broadcast_offsets,
            seeks: Seeks::default(),
        });
        let _ = reset_cell.set(Arc::downgrade(&state));
        state.refresh_routes().await;
        state.heartbeat().await;
        // The first heartbeat makes the broker create the group's retry topic: route it too.
        state.refresh_routes().await;
        state.rebalance().await;
        let tasks = spawn_background_tasks(&state);
        Ok(PushConsumer { state, tasks })
    }

    /// The client id this consumer is known by.
    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    /// The queues this consumer owns now, sorted.
    pub fn owned_queues(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = self.state.owned().keys().cloned().collect();
        v.sort();
        v
    }

    /// Messages and body bytes pulled and not yet consumed, over every owned queue (what flow
    /// control bounds: per queue, `pull_threshold_for_queue` plus one pull).
    pub fn cached(&self) -> (usize, usize) {
        self.state.owned().values().fold((0, 0), |(n, b), o| {
            let (n2, b2) = o.pq.size();
            (n + n2, b + b2)
        })
    }

    /// Messages stored but not yet consumed, over every owned queue: each queue's max offset
    /// (GET_MAX_OFFSET) minus its offset to commit.
    pub async fn lag(&self) -> u64 {
        let owned: Vec<(MessageQueue, i64)> = self
            .state
            .owned()
            .iter()
            .map(|(k, v)| (k.clone(), v.commit_offset.raw()))
            .collect();
        let mut lag = 0u64;
        for (mq, commit_offset) in owned {
            let Some(addr) = self.state.master_of(&mq.broker_name) else {
                continue;
            };
            let req = broker_requests::get_max_offset(&mq);
            if let Ok(r) = self.state.client.invoke_sync(&addr, req, RPC_TIMEOUT).await {
                let max: i64 = r.ext("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
                lag += (max - commit_offset.max(0)).max(0) as u64;
            }
        }
        lag
    }

    /// Rebalances now (tests; NOTIFY_CONSUMER_IDS_CHANGED does it by itself).
    pub async fn rebalance(&self) {
        self.state.rebalance().await;
    }

    /// Stops: pulls end, in-flight consumption finishes (up to 30 s), offsets are committed,
    /// the group is left (UNREGISTER_CLIENT to every broker).
    pub async fn shutdown(self) {
        let state = self.state;
        state.stopping.store(true, Ordering::SeqCst);
        state.rebalance_now.notify_one();
        for t in &self.tasks {
            t.abort();
        }
        let owned: Vec<OwnedQueue> = state.owned().drain().map(|(_, o)| o).collect();
        for o in &owned {
            o.pull.abort();
            o.pq.drop_queue();
        }
        let n = state.config.consume_concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(30), state.consume_slots.acquire_many(n))
            .await;
        // Commit what was consumed, once in-flight consumption ended.
        for (mq, offset) in commit_offsets(&owned) {
            state.commit(&mq, offset).await;
        }
        state.persist_local().await;
        for o in &owned {
            if let Some(t) = &o.orderly {
                t.abort();
            }
        }
        if state.config.orderly {
            let queues: Vec<MessageQueue> = owned.iter().filter_map(|o| o.pq.name()).collect();
            state.unlock(&queues, false).await;
        }
        for addr in state.broker_addrs() {
            let req = UnregisterClient {
                client_id: state.client_id.clone(),
                producer_group: None,
                consumer_group: Some(state.config.group.clone()),
            };
            let _ = state
                .client
                .invoke_sync(&addr, req.command(), RPC_TIMEOUT)
                .await;
        }
        state.client.shutdown();
    }

    /// The shared state (lite pull's `poll`, `seek`, `commit`).
    pub(crate) fn state(&self) -> &Arc<ConsumerState> {
        &self.state
    }
}

/// The (queue, offset to commit) pairs of the given-up queues whose offset is known.
fn commit_offsets(owned: &[OwnedQueue]) -> Vec<(MessageQueue, i64)> {
    owned
        .iter()
        .filter_map(|o| Some((o.pq.name()?, o.commit_offset.known()?)))
        .collect()
}

/// The remoting client, answering the broker's NOTIFY_CONSUMER_IDS_CHANGED (a rebalance now)
/// and RESET_CONSUMER_CLIENT_OFFSET (seeks, once `reset_cell` holds the state).
fn remoting_client(
    config: &ConsumerConfig,
    rebalance_now: &Arc<Notify>,
    reset_cell: &Arc<OnceLock<Weak<ConsumerState>>>,
) -> RemotingClient {
    let mut reg = ProcessorRegistry::new();
    reg.register(
        request::NOTIFY_CONSUMER_IDS_CHANGED,
        Arc::new(OnNotify(rebalance_now.clone())),
        ExecutorConfig::new(1, 64),
    );
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
    client
}

/// The instance name in the client id: the configured one, "DEFAULT" in broadcasting (Java's:
/// the offsets file outlives the process), else `<pid>#<nanos>`.
fn instance_name(config: &ConsumerConfig) -> String {
    config.instance_name.clone().unwrap_or_else(|| {
        if config.broadcasting {
            return "DEFAULT".into();
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}#{nanos}", std::process::id())
    })
}

/// The subscriptions of `topics`, plus the group's `%RETRY%group` for a clustering push
/// consumer (where its given-back messages come back).
fn subscriptions(
    config: &ConsumerConfig,
    topics: &[(&str, &str)],
    delivery: &Delivery,
) -> BTreeMap<String, SubscriptionData> {
    let mut subs = BTreeMap::new();
    for (topic, expr) in topics {
        subs.insert((*topic).to_owned(), subscription::build(topic, expr));
    }
    if !config.broadcasting && delivery.poll_tx().is_none() {
        let retry = format!("%RETRY%{}", config.group);
        subs.insert(retry.clone(), subscription::build(&retry, "*"));
    }
    subs
}

/// Runs `round` every `period`, the first one a period from now.
fn every<F, Fut>(period: Duration, round: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut t = tokio::time::interval(period);
        t.tick().await;
        loop {
            t.tick().await;
            round().await;
        }
    })
}

/// The rebalance loop, routes and heartbeats, the offset persister and (orderly) lock renewal.
fn spawn_background_tasks(state: &Arc<ConsumerState>) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let s = state.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let _ =
                tokio::time::timeout(s.config.rebalance_interval, s.rebalance_now.notified()).await;
            if s.is_stopping() {
                return;
            }
            s.rebalance().await;
        }
    }));
    let s = state.clone();
    tasks.push(every(state.config.heartbeat_interval, move || {
        let s = s.clone();
        async move {
            s.refresh_routes().await;
            s.heartbeat().await;
        }
    }));
    let s = state.clone();
    tasks.push(every(state.config.persist_interval, move || {
        let s = s.clone();
        async move { s.persist_all().await }
    }));
    if state.config.orderly {
        let s = state.clone();
        tasks.push(every(state.config.lock_interval, move || {
            let s = s.clone();
            async move { s.lock_all().await }
        }));
    }
    tasks
}
