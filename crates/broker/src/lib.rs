//! # rmq-broker
//!
//! A RocketMQ 5.x broker (master) on rmq-remoting and rmq-store: Java, C++, Go and Node.js
//! producers and consumers and Java's mqadmin talk to it as to a Java broker
//! (`../shared/docs/broker-spec.md` §2, §3).
//!
//! The store ([`rmq_store::service::StoreService`]) runs on its own thread; this crate holds
//! the broker's tables and wires them to requests:
//! - [`config`]: settings under Java's property names;
//! - [`topics`], [`groups`], [`offsets`]: topic and group configs and consumer and delay
//!   offsets, in Java's JSON files;
//! - [`clients`]: connected producers and consumers, orderly locks;
//! - [`send`], [`pull`], [`manage`], [`admin`]: request handling, one module per processor of
//!   the Java broker; [`long_poll`] holds pulls until a message arrives;
//! - [`schedule`]: delay levels (SCHEDULE_TOPIC_XXXX) and their delivery;
//! - [`register`]: registration with the NameServers.

pub mod admin;
pub mod budgets;
pub mod clients;
pub mod config;
pub mod groups;
pub mod json_file;
pub mod long_poll;
pub mod manage;
pub mod metrics;
pub mod offsets;
pub mod processor;
pub mod pull;
pub mod register;
pub mod reply;
pub mod schedule;
pub mod send;
pub mod shares;
pub mod stats;
pub mod topics;

use config::BrokerConfig;
use rmq_protocol::{LanguageCode, MqVersion, RemotingCommand};
use rmq_remoting::{ProcessorRegistry, RemotingServer, ServerBuilder, ServerConfig};
use rmq_store::service::StoreService;
use rmq_store::store::{Retention, StoreConfig};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Brings each delay level's saved offset inside its schedule queue (Java's
/// `correctDelayOffset`), and saves the file if one moved.
async fn correct_delay_offsets(
    store: &StoreService,
    offsets: &offsets::DelayOffsets,
    levels: usize,
) {
    let bounds = store
        .run(move |st| {
            (1..=levels as i32)
                .map(|l| {
                    let q = l - 1;
                    (
                        l,
                        st.min_offset(rmq_store::store::SCHEDULE_TOPIC, q),
                        st.max_offset(rmq_store::store::SCHEDULE_TOPIC, q),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    let moved = offsets.correct(&bounds);
    for (level, from, to) in &moved {
        tracing::error!(
            level,
            from,
            to,
            "delayOffset.json: a level's offset was outside its schedule queue; corrected"
        );
    }
    if !moved.is_empty() {
        if let Err(e) = offsets.persist() {
            tracing::warn!(error = %e, "delayOffset.json could not be saved");
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting Java would refuse too.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The store would not open (locked by another process, unreadable, ...).
    #[error(transparent)]
    Store(#[from] rmq_store::store::StoreError),
    /// A config file (topics.json, ...) that neither it nor its backup parses.
    #[error(transparent)]
    ConfigFile(#[from] json_file::ConfigFileError),
    /// Could not listen.
    #[error(transparent)]
    Remoting(#[from] rmq_remoting::RemotingError),
}

/// Everything the request handlers and background tasks share.
pub struct BrokerState {
    /// Live settings (UPDATE_BROKER_CONFIG changes some).
    pub config: RwLock<BrokerConfig>,
    /// The message store.
    pub store: StoreService,
    /// Topics.
    pub topics: topics::TopicManager,
    /// Subscription groups.
    pub groups: groups::GroupManager,
    /// Consumer offsets.
    pub offsets: offsets::ConsumerOffsets,
    /// Delay-level offsets.
    pub delay_offsets: offsets::DelayOffsets,
    /// Connected clients.
    pub clients: clients::ClientManager,
    /// Held pulls.
    pub notifier: long_poll::PullNotifier,
    /// Counters.
    pub stats: stats::Stats,
    /// Prometheus series.
    pub metrics: metrics::Metrics,
    /// `brokerIP1:listenPort` as a socket address: the store host of every record.
    pub store_host: SocketAddr,
    /// Delay of each level (ms).
    pub delay_levels_ms: Vec<i64>,
    /// Start time (ms).
    pub boot_ms: i64,
    /// Registration with the NameServers.
    pub registrar: register::Registrar,
    /// Auto-creations per client per minute.
    pub creations: budgets::CreationBudgets,
    /// What each client's heartbeats registered, over its connections.
    pub heartbeat_loads: budgets::HeartbeatLoads,
    /// Per connection and per client, its share of the store (see
    /// [`STORE_SHARE`]).
    store_shares: shares::Shares,
    /// Per connection and per client, its pull answers being built or waiting to be queued
    /// (see [`PULL_ANSWERS_PER_CONNECTION`]).
    answer_shares: shares::Shares,
}

pub use shares::{
    PULL_ANSWERS_PER_CLIENT, PULL_ANSWERS_PER_CONNECTION, STORE_SHARE, STORE_SHARE_PER_CLIENT,
};

impl BrokerState {
    /// Waits for a turn of the connection's and its client's share of the store queue
    /// (released when dropped).
    pub async fn store_turn(&self, conn: &rmq_remoting::ConnectionHandle) -> shares::Turn {
        self.store_shares.turn(conn).await
    }

    /// Waits for a turn of the connection's pull answers (released when dropped: keep it until
    /// the answer is queued, `RequestContext::hold_until_replied`). A pull that has to wait
    /// parks first: it waits on its own reader, not on work, and holds no executor slot
    /// meanwhile. `None` when the connection closes while it waits.
    pub async fn answer_turn(&self, ctx: &rmq_remoting::RequestContext) -> Option<shares::Turn> {
        if let Some(turn) = self.answer_shares.try_turn(&ctx.connection) {
            return Some(turn);
        }
        ctx.park();
        tokio::select! {
            turn = self.answer_shares.turn(&ctx.connection) => Some(turn),
            _ = ctx.connection.closed() => None,
        }
    }

    /// A connection closed: forget its shares.
    pub fn connection_closed(&self, conn: u64) {
        self.store_shares.forget(conn);
        self.answer_shares.forget(conn);
        self.heartbeat_loads.forget(conn);
    }

    /// Admits a heartbeat registering `groups` groups and `subscriptions` subscriptions on
    /// `conn` within `maxHeartbeatGroups`/`maxHeartbeatSubscriptions` and its client's totals
    /// (`...PerClient`), or the refusal's remark.
    pub fn admit_heartbeat(
        &self,
        conn: &rmq_remoting::ConnectionHandle,
        groups: usize,
        subscriptions: usize,
    ) -> Result<(), String> {
        let limits = {
            let c = self.config();
            budgets::HeartbeatLimits {
                groups: c.max_heartbeat_groups,
                subscriptions: c.max_heartbeat_subscriptions,
                groups_per_client: c.max_heartbeat_groups_per_client,
                subscriptions_per_client: c.max_heartbeat_subscriptions_per_client,
            }
        };
        self.heartbeat_loads
            .admit(conn, groups, subscriptions, limits)
    }

    /// A subscription group, auto-created when missing (and allowed) within the
    /// `maxAutoCreatedGroupsPerMinute` of `conn`'s client: `Ok(None)` when it does not exist
    /// and cannot be created, `Err` with the refusal's remark past the budget.
    pub fn group_for(
        &self,
        conn: &rmq_remoting::ConnectionHandle,
        group: &str,
    ) -> Result<Option<(groups::GroupConfig, bool)>, String> {
        if let Some(gc) = self.groups.get(group) {
            return Ok(Some((gc, false)));
        }
        let limit = self.config().max_auto_created_groups_per_minute;
        self.creations.take(conn, budgets::Creation::Group, limit)?;
        Ok(self.groups.find_or_create(group))
    }

    /// The live settings (read under their lock; request paths read a field or two).
    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, BrokerConfig> {
        self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs blocking file work (config persistence) off the runtime's threads.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&BrokerState) -> T + Send + 'static,
    ) -> Option<T> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&s)).await.ok()
    }

    /// Writes topics.json (off the runtime), logging a failure.
    pub async fn persist_topics(self: &Arc<Self>) {
        if let Some(Err(e)) = self.blocking(|s| s.topics.persist()).await {
            tracing::error!(error = %e, "topics.json not written");
        }
    }

    /// Writes subscriptionGroup.json (off the runtime), logging a failure.
    pub async fn persist_groups(self: &Arc<Self>) {
        if let Some(Err(e)) = self.blocking(|s| s.groups.persist()).await {
            tracing::error!(error = %e, "subscriptionGroup.json not written");
        }
    }

    /// A topic was created or changed: persist it and register that topic at once (Java's
    /// `registerIncrementBrokerData`).
    pub async fn topic_changed(self: &Arc<Self>, topic: &str) {
        self.persist_topics().await;
        self.registrar.register_topics(self, &[topic]).await;
    }

    /// Tells every member of `group` that its membership changed (oneway
    /// NOTIFY_CONSUMER_IDS_CHANGED, 10 ms write timeout each, as Java), unless the group or
    /// the broker turned it off or it consumes by broadcasting.
    pub fn notify_consumer_ids_changed(&self, group: &str) {
        if !self.config().notify_consumer_ids_changed_enable {
            return;
        }
        if self
            .groups
            .get(group)
            .is_some_and(|g| !g.notify_consumer_ids_changed_enable)
        {
            return;
        }
        let Some(g) = self.clients.consumer_group(group) else {
            return;
        };
        if g.message_model.eq_ignore_ascii_case("BROADCASTING") {
            return;
        }
        for ch in g.channels.into_values() {
            let cmd = RemotingCommand::request_with_header(
                rmq_protocol::codes::request::NOTIFY_CONSUMER_IDS_CHANGED,
                &rmq_protocol::headers::client::NotifyConsumerIdsChangedRequestHeader {
                    consumer_group: group.to_owned(),
                },
            );
            tokio::spawn(async move {
                if let Err(e) = ch.conn.invoke_oneway(cmd, Duration::from_millis(10)).await {
                    tracing::debug!(peer = ch.conn.peer(), error = %e, "NOTIFY_CONSUMER_IDS_CHANGED not sent");
                }
            });
        }
    }
}

/// What a broker runs with besides its settings.
#[derive(Default, Clone)]
pub struct BrokerOptions {
    /// A server hook run before every request (ACL verification: `rmq_acl::AclServerHook`).
    pub hook: Option<Arc<dyn rmq_remoting::RpcHook>>,
    /// TLS for the listener (modes, certificates, client auth, rotation).
    pub tls: Option<rmq_remoting::ServerTlsConfig>,
    /// More metrics served on the broker's `/metrics` after its own (`rmq standalone` adds its
    /// NameServer's), when `metricsExporterType=PROM`.
    pub extra_metrics: Vec<rmq_http::MetricsSource>,
}

/// A running broker.
pub struct Broker {
    server: Arc<RemotingServer>,
    metrics_addr: Option<SocketAddr>,
    state: Arc<BrokerState>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Broker {
    /// Opens the store (recovering it if the last stop was not clean), loads the config
    /// files, listens on `bindAddress:listenPort`, registers with the NameServers and starts
    /// the background work (registration, offset persistence, delayed delivery, expiry).
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        Self::start_with(config, BrokerOptions::default()).await
    }

    /// Same, with a request hook (ACL) and TLS.
    pub async fn start_with(
        mut config: BrokerConfig,
        options: BrokerOptions,
    ) -> Result<Broker, StartError> {
        config.validate().map_err(StartError::Config)?;
        let delay_levels_ms = rmq_store::store::parse_delay_levels(&config.message_delay_level)
            .ok_or_else(|| StartError::Config("messageDelayLevel".into()))?;
        let store = open_store(&mut config, &delay_levels_ms).await?;
        let root = config.store_root();
        let topics = topics::TopicManager::load(&config)?;
        let groups = groups::GroupManager::load(&root, config.auto_create_subscription_group)?;
        let offsets = offsets::ConsumerOffsets::load(&root)?;
        let delay_offsets = offsets::DelayOffsets::load(&root)?;
        correct_delay_offsets(&store, &delay_offsets, delay_levels_ms.len()).await;

        let mut registry = ProcessorRegistry::new();
        let server_config = server_config(&config, options.tls);
        // The processor needs the state, the state needs the bound port: a cell filled below.
        let cell: Arc<std::sync::OnceLock<Arc<BrokerState>>> = Arc::new(std::sync::OnceLock::new());
        let processor = Arc::new(processor::BrokerProcessor(cell.clone()));
        processor::register(&mut registry, processor, &config);
        let listener = Arc::new(processor::LateListener(cell.clone()));
        let mut builder = ServerBuilder::new(server_config)
            .registry(registry)
            .event_listener(listener);
        if let Some(hook) = options.hook {
            builder = builder.hook(hook);
        }
        let server = Arc::new(builder.bind().await?);
        if config.listen_port == 0 {
            config.listen_port = server.local_addr().port();
        }
        let store_host = store_host(&config)?;
        let registrar = register::Registrar::new(&config);
        let state = Arc::new(BrokerState {
            config: RwLock::new(config),
            store,
            topics,
            groups,
            offsets,
            delay_offsets,
            clients: clients::ClientManager::default(),
            notifier: long_poll::PullNotifier::default(),
            stats: stats::Stats::default(),
            metrics: metrics::Metrics::default(),
            store_host,
            delay_levels_ms,
            boot_ms: now_ms(),
            registrar,
            creations: Default::default(),
            heartbeat_loads: Default::default(),
            store_shares: shares::Shares::new(STORE_SHARE, STORE_SHARE_PER_CLIENT),
            answer_shares: shares::Shares::new(
                PULL_ANSWERS_PER_CONNECTION,
                PULL_ANSWERS_PER_CLIENT,
            ),
        });
        let _ = cell.set(state.clone());
        state.persist_topics().await;
        state.persist_groups().await;
        state.registrar.register_all(&state).await;
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = background(&state, stop_rx.clone());
        let metrics = serve_metrics(&state, &server, &options.extra_metrics, stop_rx).await?;
        let metrics_addr = metrics.map(|(addr, task)| {
            tasks.push(task);
            addr
        });
        tracing::info!(addr = %server.local_addr(), broker = %state.config().broker_name, "broker started");
        Ok(Broker {
            server,
            metrics_addr,
            state,
            stop,
            tasks,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where `/metrics` is served, when `metricsExporterType=PROM`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Client connections open right now.
    pub fn connection_count(&self) -> usize {
        self.server.connection_count()
    }

    /// The shared state (tests and embedding).
    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Graceful stop: held pulls answered, UNREGISTER_BROKER to every NameServer, GO_AWAY and
    /// in-flight requests drained, offsets written, the store flushed and closed cleanly.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.state.notifier.close();
        self.state.registrar.unregister_all(&self.state).await;
        self.server.shutdown().await;
        for t in &self.tasks {
            t.abort();
        }
        persist_offsets(&self.state).await;
        self.state.store.close().await;
        tracing::info!("broker stopped");
    }
}

async fn persist_offsets(state: &Arc<BrokerState>) {
    if let Some(Err(e)) = state.blocking(|s| s.offsets.persist()).await {
        tracing::error!(error = %e, "consumerOffset.json not written");
    }
    if let Some(Err(e)) = state.blocking(|s| s.delay_offsets.persist()).await {
        tracing::error!(error = %e, "delayOffset.json not written");
    }
}

/// Spawns a loop running `tick` every `every` until the stop signal.
fn every<F, Fut>(
    stop: &watch::Receiver<bool>,
    first: Duration,
    every: Duration,
    mut tick: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut stop = stop.clone();
    tokio::spawn(async move {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = t.tick() => tick().await,
                _ = stop.changed() => return,
            }
        }
    })
}

fn background(
    state: &Arc<BrokerState>,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let c = state.config().clone();
    let mut tasks = Vec::new();
    let period = Duration::from_millis(c.register_name_server_period.clamp(10_000, 60_000));
    let s = state.clone();
    tasks.push(every(&stop, Duration::from_secs(10), period, move || {
        let s = s.clone();
        async move { s.registrar.register_all(&s).await }
    }));
    let s = state.clone();
    tasks.push(every(
        &stop,
        Duration::from_secs(10),
        Duration::from_millis(c.flush_consumer_offset_interval.max(100)),
        move || {
            let s = s.clone();
            async move {
                if let Some(Err(e)) = s.blocking(|s| s.offsets.persist()).await {
                    tracing::error!(error = %e, "consumerOffset.json not written");
                }
            }
        },
    ));
    let s = state.clone();
    tasks.push(every(
        &stop,
        Duration::from_secs(10),
        Duration::from_millis(c.flush_delay_offset_interval.max(100)),
        move || {
            let s = s.clone();
            async move {
                if let Some(Err(e)) = s.blocking(|s| s.delay_offsets.persist()).await {
                    tracing::error!(error = %e, "delayOffset.json not written");
                }
            }
        },
    ));
    let s = state.clone();
    let expiry = Duration::from_millis(c.channel_expired_timeout);
    // Java scans every 10 s; a shorter timeout is scanned for at half its length.
    let scan = (expiry / 2).clamp(Duration::from_millis(50), Duration::from_secs(10));
    tasks.push(every(&stop, scan, scan, move || {
        let s = s.clone();
        async move {
            for group in s.clients.expire(expiry) {
                s.notify_consumer_ids_changed(&group);
            }
        }
    }));
    let s = state.clone();
    tasks.push(every(
        &stop,
        Duration::from_secs(1),
        Duration::from_secs(1),
        move || {
            let s = s.clone();
            async move { s.stats.sample() }
        },
    ));
    tasks.push(schedule::start(state.clone(), stop));
    tasks
}

/// Opens the store (off the runtime: recovery reads files) with the broker's settings, and
/// takes the file sizes a Java store already has into `config`.
async fn open_store(
    config: &mut BrokerConfig,
    delay_levels_ms: &[i64],
) -> Result<StoreService, StartError> {
    let mut store_config = StoreConfig::new(config.store_root());
    store_config.commit_log_segment_size = config.mapped_file_size_commit_log;
    store_config.consume_queue_file_size = config.mapped_file_size_consume_queue;
    store_config.sync_flush = config.sync_flush();
    store_config.message_index = config.message_index_enable;
    store_config.whole_record_crc = config.enabled_append_prop_crc;
    store_config.index_slot_num = config.max_hash_slot_num;
    store_config.index_num = config.max_index_num;
    store_config.delay_levels_ms = delay_levels_ms.to_vec();
    store_config.retention = Retention {
        file_reserved: Duration::from_secs(config.file_reserved_time * 3600),
        delete_when: rmq_store::store::parse_delete_when(&config.delete_when),
        disk_max_used_ratio: f64::from(config.disk_max_used_space_ratio.clamp(10, 95)) / 100.0,
        ..Retention::default()
    };
    let flush_every = Duration::from_millis(config.flush_interval_commit_log.max(1));
    let store = tokio::task::spawn_blocking(move || StoreService::start(store_config, flush_every))
        .await
        .map_err(|e| StartError::Config(format!("store open panicked: {e}")))??;
    // A Java broker's files keep their sizes (the store took them): say so in the config.
    if let Ok((segment, queue_file)) = store.run(|st| st.file_sizes()).await {
        config.mapped_file_size_commit_log = segment;
        config.mapped_file_size_consume_queue = queue_file;
    }
    Ok(store)
}

/// `brokerIP1:listenPort` as a socket address: the store host of every record.
fn store_host(config: &BrokerConfig) -> Result<SocketAddr, StartError> {
    config.broker_addr().parse().map_err(|_| {
        StartError::Config(format!(
            "brokerIP1 {:?} is not an IP address",
            config.broker_ip1
        ))
    })
}

/// The remoting server's settings from the broker's (port 0 in tests: bind first, then
/// advertise the port we got).
fn server_config(
    config: &BrokerConfig,
    tls: Option<rmq_remoting::ServerTlsConfig>,
) -> ServerConfig {
    ServerConfig {
        listen_addr: format!("{}:{}", config.bind_address, config.listen_port),
        idle_timeout: Duration::from_secs(config.server_channel_max_idle_time_seconds.max(1)),
        language: LanguageCode::JAVA,
        version: MqVersion::CURRENT,
        shutdown_grace: if config.enable_shutdown_gracefully {
            Duration::from_secs(config.shutdown_wait_time_seconds)
        } else {
            Duration::ZERO
        },
        tls,
        max_connections_per_client: config.max_connections_per_client,
        max_request_bytes_per_client: config.max_request_bytes_per_client,
        ..Default::default()
    }
}

/// Serves `/metrics` when `metricsExporterType=PROM`: its address and task, until `stop`.
async fn serve_metrics(
    state: &Arc<BrokerState>,
    server: &Arc<RemotingServer>,
    extra: &[rmq_http::MetricsSource],
    mut stop: watch::Receiver<bool>,
) -> Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>, StartError> {
    let (prom, host, port) = {
        let c = state.config();
        (
            c.metrics_exporter_type.eq_ignore_ascii_case("PROM"),
            c.metrics_prom_exporter_host.clone(),
            c.metrics_prom_exporter_port,
        )
    };
    if !prom {
        return Ok(None);
    }
    let mut sources = vec![metrics::source(
        Arc::downgrade(state),
        Arc::downgrade(server),
    )];
    sources.extend(extra.iter().cloned());
    let (addr, task) = rmq_http::serve(
        &format!("{host}:{port}"),
        rmq_http::metrics_router(sources),
        async move {
            let _ = stop.changed().await;
        },
    )
    .await
    .map_err(|e| StartError::Config(format!("metrics on {host}:{port}: {e}")))?;
    tracing::info!(%addr, "metrics served at /metrics");
    Ok(Some((addr, task)))
}
