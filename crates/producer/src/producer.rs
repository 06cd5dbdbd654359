//! The producer: route cache, queue selection, sends with Java's retry rules, heartbeats.

use crate::error::ProducerError;
use crate::fault::FaultTable;
use crate::health::{BrokerHealth, IsolationPolicy, ProbeNeeded};
use crate::message::Message;
use crate::result::{SendResult, SendStatus};
use crate::route::{MessageQueue, TopicPublishInfo};
use crate::validate::{self, check_group, check_message};
use crate::wire::{self, Prepared, Target, CLIENT_INNER_PRODUCER, DEFAULT_TOPIC};
use rmq_model::call::GetRouteInfo;
use rmq_model::{CallError, Caller, NamesrvClient};
use rmq_protocol::codes::response;
use rmq_remoting::{ClientBuilder, ClientConfig, RemotingClient, RpcHook};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Producer settings, with the Java defaults.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Producer group.
    pub group: String,
    /// NameServer addresses "host:port".
    pub namesrv_addrs: Vec<String>,
    /// instanceName (default: `pid#nanos`, as Java does for "DEFAULT").
    pub instance_name: Option<String>,
    /// sendMsgTimeout: the whole sync send, retries included (3000 ms).
    pub send_timeout: Duration,
    /// retryTimesWhenSendFailed (2: three attempts).
    pub retry_times_when_send_failed: u32,
    /// retryTimesWhenSendAsyncFailed (2).
    pub retry_times_when_send_async_failed: u32,
    /// compressMsgBodyOverHowmuch (4096 bytes).
    pub compress_over: usize,
    /// Compression level (5).
    pub compress_level: u32,
    /// sendLatencyFaultEnable: avoid brokers that were slow or failed (false).
    pub send_latency_fault_enable: bool,
    /// retryAnotherBrokerWhenNotStoreOK (false).
    pub retry_another_broker_when_not_store_ok: bool,
    /// pollNameServerInterval: route refresh (30 s).
    pub poll_namesrv_interval: Duration,
    /// heartbeatBrokerInterval (30 s).
    pub heartbeat_interval: Duration,
    /// Avoid brokers that refused a dial or dropped the connection (back-off, background probe)
    /// and brokers that answered GO_AWAY (until they are back): see [`crate::health`]. On by
    /// default; Java has no such rule and keeps choosing a dead broker until the route refresh.
    pub isolate_unreachable_brokers: bool,
    /// Back-off and drain settings for the rule above.
    pub isolation: IsolationPolicy,
    /// The remoting client's settings (TLS, timeouts, permits...).
    pub client: ClientConfig,
    /// RPC hooks every request goes through (Java's `new DefaultMQProducer(group, rpcHook)`),
    /// e.g. `rmq_acl::AclClientHook` for a cluster with ACL.
    pub rpc_hooks: RpcHooks,
}

/// The producer's RPC hooks (a list, shown by count in Debug output: hooks may hold secrets).
#[derive(Clone, Default)]
pub struct RpcHooks(pub Vec<Arc<dyn RpcHook>>);

impl std::fmt::Debug for RpcHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RpcHooks({} hooks)", self.0.len())
    }
}

impl ProducerConfig {
    /// Defaults for `group` and these NameServers.
    pub fn new(group: &str, namesrv_addrs: &[&str]) -> Self {
        ProducerConfig {
            group: group.to_owned(),
            namesrv_addrs: namesrv_addrs.iter().map(|s| (*s).to_owned()).collect(),
            instance_name: None,
            send_timeout: Duration::from_millis(3000),
            retry_times_when_send_failed: 2,
            retry_times_when_send_async_failed: 2,
            compress_over: 4096,
            compress_level: 5,
            send_latency_fault_enable: false,
            retry_another_broker_when_not_store_ok: false,
            poll_namesrv_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(30),
            isolate_unreachable_brokers: true,
            isolation: IsolationPolicy::default(),
            client: ClientConfig::default(),
            rpc_hooks: RpcHooks::default(),
        }
    }
}

/// Picks the queue for a message (ordered messages: the same key, the same queue).
pub trait QueueSelector: Send + Sync {
    /// An index into `queues`.
    fn select(&self, queues: &[MessageQueue], msg: &Message) -> usize;
}

impl<F: Fn(&[MessageQueue], &Message) -> usize + Send + Sync> QueueSelector for F {
    fn select(&self, queues: &[MessageQueue], msg: &Message) -> usize {
        self(queues, msg)
    }
}

/// How one attempt is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Wait,
    Oneway,
}

struct Inner {
    config: ProducerConfig,
    client: RemotingClient,
    /// The NameServers, through the shared typed client (routes).
    namesrv: NamesrvClient,
    client_id: String,
    routes: RwLock<HashMap<String, Arc<TopicPublishInfo>>>,
    faults: FaultTable,
    /// Broker addresses isolated (unreachable) or draining (GO_AWAY).
    health: Arc<BrokerHealth>,
    /// Broker addresses that got a heartbeat (and get UNREGISTER_CLIENT at shutdown).
    heartbeated: Mutex<HashSet<String>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
}

/// A started producer. Cheap to clone; every clone shares routes and connections.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Checks the settings and starts the route refresh and heartbeat timers.
    pub async fn start(config: ProducerConfig) -> Result<Producer, ProducerError> {
        check_group(&config.group)?;
        if config.namesrv_addrs.is_empty() {
            return Err(ProducerError::Config("no NameServer address".into()));
        }
        let instance = config.instance_name.clone().unwrap_or_else(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{}#{nanos}", std::process::id())
        });
        let health = Arc::new(BrokerHealth::new(config.isolation));
        let mut client_config = config.client.clone();
        if config.isolate_unreachable_brokers {
            // A GO_AWAY comes back to the send loop (code 1500, retried on another broker)
            // instead of being resent on a new connection to the broker that is leaving.
            client_config.reconnect_for_go_away = false;
        }
        let mut builder = config
            .rpc_hooks
            .0
            .iter()
            .fold(ClientBuilder::new(client_config), |b, h| b.hook(h.clone()));
        if config.isolate_unreachable_brokers {
            let h = health.clone();
            builder = builder.go_away_listener(Arc::new(move |addr: &str| h.going_away(addr)));
        }
        let client = builder.build();
        client.update_namesrv_addresses(&config.namesrv_addrs);
        let namesrv = NamesrvClient::new(client.clone(), config.send_timeout);
        let inner = Arc::new(Inner {
            namesrv,
            client_id: format!("{}@{instance}", crate::local_ip()),
            config,
            client,
            routes: RwLock::default(),
            faults: FaultTable::default(),
            health,
            heartbeated: Mutex::default(),
            tasks: Mutex::default(),
            closed: AtomicBool::new(false),
        });
        let producer = Producer { inner };
        producer.spawn_timers();
        Ok(producer)
    }

    /// `ip@instanceName`, as brokers see this client.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    fn spawn_timers(&self) {
        let c = &self.inner.config;
        let refresh = self.every(c.poll_namesrv_interval, |p| async move {
            let topics: Vec<String> = p
                .inner
                .routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect();
            for t in topics {
                if let Err(e) = p.fetch_route(&t).await {
                    tracing::debug!(topic = %t, error = %e, "route refresh failed");
                }
            }
            let present = p.route_masters();
            p.inner
                .health
                .routes_refreshed(&|addr| present.contains(addr));
        });
        let heartbeat = self.every(c.heartbeat_interval, |p| async move {
            let masters = p.route_masters();
            // Brokers no route names any more are forgotten (Java's cleanOfflineBroker), so the
            // set does not grow with every broker ever seen.
            p.inner
                .heartbeated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|a| masters.contains(a));
            for addr in masters {
                p.heartbeat(&addr).await;
            }
        });
        // Java's scanAvailableNameSrv: every connect timeout, dial each NameServer so that
        // fail-over goes to one that answered.
        let scan = self.every(c.client.connect_timeout, |p| async move {
            p.inner.client.scan_namesrv().await;
        });
        // Poisoning (every lock of the producer): the critical sections are single insertions,
        // removals or whole-value replacements of a set or map, which a panic cannot leave
        // half-done; a poisoned lock is taken as is.
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.push(refresh);
        tasks.push(heartbeat);
        tasks.push(scan);
    }

    /// The master addresses of every cached route.
    fn route_masters(&self) -> HashSet<String> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|r| r.masters.values().cloned())
            .collect()
    }

    /// Runs `job` every `period` (first after one period) for as long as the producer exists;
    /// the task holds only a weak reference, so dropping every `Producer` ends it.
    fn every<F, Fut>(&self, period: Duration, job: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Producer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                job(Producer { inner }).await;
            }
        })
    }

    async fn heartbeat(&self, addr: &str) {
        let data = wire::heartbeat_data(
            &self.inner.client_id,
            &[&self.inner.config.group, CLIENT_INNER_PRODUCER],
        );
        match self
            .inner
            .client
            .call(addr, &data, Duration::from_secs(3))
            .await
        {
            Ok(()) => {}
            Err(e @ CallError::Refused { .. }) => {
                tracing::warn!(addr, error = %e, "heartbeat refused")
            }
            Err(e) => tracing::debug!(addr, error = %e, "heartbeat failed"),
        }
        self.inner
            .heartbeated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.to_owned());
    }

    /// Heartbeats a broker the first time this producer talks to it (Java: when the channel
    /// connects, beside the first send rather than before it, so a slow broker does not eat the
    /// send's timeout twice).
    fn ensure_heartbeat(&self, addr: &str) {
        let first = {
            let mut done = self
                .inner
                .heartbeated
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Looked up first: the address is copied once per broker, not once per send.
            !done.contains(addr) && done.insert(addr.to_owned())
        };
        if first {
            let (this, addr) = (self.clone(), addr.to_owned());
            tokio::spawn(async move { this.heartbeat(&addr).await });
        }
    }

    /// The topic's publish info: cached, or looked up (TBW102 fall-back for unknown topics).
    pub async fn publish_info(&self, topic: &str) -> Result<Arc<TopicPublishInfo>, ProducerError> {
        if let Some(info) = self
            .inner
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .filter(|i| i.is_usable())
        {
            return Ok(info.clone());
        }
        self.fetch_route(topic).await
    }

    async fn fetch_route(&self, topic: &str) -> Result<Arc<TopicPublishInfo>, ProducerError> {
        let (addr, route) = self.inner.namesrv.read(&GetRouteInfo::new(topic)).await;
        let info = match route {
            Ok(route) => TopicPublishInfo::from_route(topic, &route, None),
            Err(e) if e.refused_code() == Some(response::TOPIC_NOT_EXIST) => {
                // A new topic: write through TBW102's brokers, which create it (autoCreateTopicEnable).
                let (_, def) = self
                    .inner
                    .namesrv
                    .read(&GetRouteInfo::new(DEFAULT_TOPIC))
                    .await;
                let Ok(def) = def else {
                    return Err(ProducerError::NoRoute(topic.to_owned()));
                };
                TopicPublishInfo::from_route(
                    topic,
                    &def,
                    Some(wire::DEFAULT_TOPIC_QUEUE_NUMS as i64),
                )
            }
            Err(e) => return Err(namesrv_error(&addr, e)),
        };
        if !info.is_usable() {
            return Err(ProducerError::NoRoute(topic.to_owned()));
        }
        let info = Arc::new(info);
        self.inner
            .routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_owned(), info.clone());
        Ok(info)
    }

    fn check_open(&self) -> Result<(), ProducerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ProducerError::Shutdown);
        }
        Ok(())
    }

    fn prepare(&self, msg: &mut Message) -> Result<Prepared, ProducerError> {
        self.check_open()?;
        check_message(msg)?;
        let c = &self.inner.config;
        Ok(wire::prepare(msg, c.compress_over, c.compress_level, false))
    }

    fn select<'a>(
        &self,
        info: &'a TopicPublishInfo,
        last: Option<&str>,
    ) -> Option<&'a MessageQueue> {
        let latency = self.inner.config.send_latency_fault_enable;
        let health = &self.inner.health;
        if !latency && health.all_usable() {
            // Nothing to avoid: Java's plain round robin.
            return info.select(last);
        }
        let faults = &self.inner.faults;
        info.select_available(last, &|broker: &str| {
            let healthy = info
                .masters
                .get(broker)
                .is_none_or(|addr| health.is_usable(addr));
            healthy && (!latency || faults.is_available(broker))
        })
    }

    /// Records a transport failure against `addr`: it is isolated, and a probe task dials it
    /// when its back-off ends, until one connects (then it is usable again).
    fn unreachable(&self, addr: &str) {
        if !self.inner.config.isolate_unreachable_brokers {
            return;
        }
        if self.inner.health.failed(addr) != ProbeNeeded::Start {
            return;
        }
        tracing::info!(
            addr,
            "broker unreachable: isolated, probing in the background"
        );
        let weak = Arc::downgrade(&self.inner);
        let addr = addr.to_owned();
        tokio::spawn(async move {
            loop {
                let Some(at) = weak.upgrade().and_then(|i| i.health.probe_at(&addr)) else {
                    return;
                };
                tokio::time::sleep_until(at.into()).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let connected = inner.client.connection(&addr).await.is_ok();
                inner.health.probed(&addr, connected);
                if connected {
                    tracing::info!(addr, "broker reachable again");
                    return;
                }
            }
        });
    }

    /// One attempt to one queue. `Ok(None)` for oneway.
    async fn attempt(
        &self,
        info: &TopicPublishInfo,
        mq: &MessageQueue,
        msg: &Message,
        p: &Prepared,
        timeout: Duration,
        mode: Mode,
    ) -> Result<Option<SendResult>, ProducerError> {
        let addr: &str = info.masters.get(&mq.broker_name).ok_or_else(|| {
            ProducerError::NoRoute(format!("no master for broker {}", mq.broker_name))
        })?;
        self.ensure_heartbeat(addr);
        let req = wire::send_request(
            &Target {
                group: &self.inner.config.group,
                topic: &msg.topic,
                broker_name: &mq.broker_name,
                queue_id: mq.queue_id,
                born_timestamp: now_ms(),
            },
            msg.flag,
            p,
            p.batch,
        );
        let started = Instant::now();
        let outcome = match mode {
            Mode::Oneway => self
                .inner
                .client
                .invoke_oneway(addr, req, timeout)
                .await
                .map(|()| None)
                .map_err(ProducerError::from),
            Mode::Wait => match self.inner.client.invoke_sync(addr, req, timeout).await {
                Ok(resp) if SendStatus::from_code(resp.code).is_some() => {
                    SendResult::from_response(&resp, &p.unique_id, mq)
                        .map(Some)
                        .map_err(|e| ProducerError::Broker {
                            code: resp.code,
                            remark: format!("unreadable response header: {e}"),
                            broker_addr: addr.to_owned(),
                        })
                }
                Ok(resp) => Err(ProducerError::Broker {
                    code: resp.code,
                    remark: resp.remark_str().unwrap_or("").to_owned(),
                    broker_addr: addr.to_owned(),
                }),
                Err(e) => Err(e.into()),
            },
        };
        let failed = matches!(outcome, Err(ProducerError::Remoting(_)));
        self.inner
            .faults
            .update(&mq.broker_name, started.elapsed(), failed);
        if let Err(ProducerError::Remoting(e)) = &outcome {
            if e.is_unreachable() {
                self.unreachable(addr);
            }
        }
        outcome
    }

    /// Sends and waits for the broker: up to 1 + retryTimesWhenSendFailed attempts within
    /// sendMsgTimeout, each on another broker than the one before.
    pub async fn send(&self, mut msg: Message) -> Result<SendResult, ProducerError> {
        let p = self.prepare(&mut msg)?;
        self.send_waited(&msg, &p, false).await
    }

    /// Sends `messages` as one SEND_BATCH_MESSAGE (Java `send(Collection<Message>)`): they must
    /// share a topic and waitStoreMsgOK and carry no delay level; the batch is never compressed
    /// and its encoded body must fit the 4 MiB limit. Retried like [`Producer::send`]; the
    /// result's `msg_id` lists the messages' ids, comma-separated, in order.
    pub async fn send_batch(&self, messages: Vec<Message>) -> Result<SendResult, ProducerError> {
        let (envelope, p) = self.prepare_batch(messages)?;
        self.send_waited(&envelope, &p, false).await
    }

    /// Java's batch checks, then the envelope (flag 0, as Java's MessageBatch) and its wire form.
    fn prepare_batch(
        &self,
        mut messages: Vec<Message>,
    ) -> Result<(Message, Prepared), ProducerError> {
        self.check_open()?;
        validate::check_batch(&messages)?;
        let p = wire::prepare_batch(&mut messages);
        if p.body.len() > validate::MAX_MESSAGE_SIZE {
            return Err(ProducerError::InvalidMessage(format!(
                "the batch body is {} bytes, over the maximum of {}",
                p.body.len(),
                validate::MAX_MESSAGE_SIZE
            )));
        }
        let envelope = Message::new(messages[0].topic.clone(), p.body.clone());
        Ok((envelope, p))
    }

    /// The retry loop of a waited send, for a single message or a batch envelope: Java's sync
    /// rules (retryTimesWhenSendFailed, broker retry codes, retryAnotherBrokerWhenNotStoreOK) or,
    /// with `async_rules`, its async ones (retryTimesWhenSendAsyncFailed, transport failures
    /// only). Each attempt goes to another broker than the one before, within sendMsgTimeout.
    async fn send_waited(
        &self,
        msg: &Message,
        p: &Prepared,
        async_rules: bool,
    ) -> Result<SendResult, ProducerError> {
        let info = self.publish_info(&msg.topic).await?;
        let c = &self.inner.config;
        let (retries, not_ok_elsewhere) = match async_rules {
            false => (
                c.retry_times_when_send_failed,
                c.retry_another_broker_when_not_store_ok,
            ),
            true => (c.retry_times_when_send_async_failed, false),
        };
        let retryable = |e: &ProducerError| match async_rules {
            false => e.is_retryable(),
            // Transport failures, and a broker that is shutting down (GO_AWAY reaches the send
            // loop when the client does not resend it itself).
            true => matches!(
                e,
                ProducerError::Remoting(_)
                    | ProducerError::Broker {
                        code: response::GO_AWAY,
                        ..
                    }
            ),
        };
        let deadline = Instant::now() + c.send_timeout;
        let mut last_broker: Option<String> = None;
        let mut last_err = None;
        // With retryAnotherBrokerWhenNotStoreOK, the last not-stored-OK result is the answer if
        // no other broker does better.
        let mut not_ok = None;
        for _ in 0..=retries {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(mq) = self.select(&info, last_broker.as_deref()).cloned() else {
                return Err(ProducerError::NoRoute(msg.topic.clone()));
            };
            match self.attempt(&info, &mq, msg, p, left, Mode::Wait).await {
                Ok(Some(r)) if r.status != SendStatus::SendOk && not_ok_elsewhere => {
                    tracing::debug!(status = ?r.status, "not stored OK, trying another broker");
                    last_broker = Some(mq.broker_name.clone());
                    not_ok = Some(r);
                }
                Ok(Some(r)) => return Ok(r),
                Ok(None) => unreachable!("a waited send always has a result"),
                Err(e) if retryable(&e) => {
                    tracing::warn!(broker = %mq.broker_name, error = %e, "send failed, retrying on another broker");
                    last_broker = Some(mq.broker_name.clone());
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match (not_ok, last_err) {
            (Some(r), _) => Ok(r),
            (None, Some(e)) => Err(e),
            (None, None) => Err(ProducerError::Timeout(c.send_timeout.as_millis() as u64)),
        }
    }

    /// Sends to the queue `selector` picks (ordered messages). One attempt, as in Java.
    pub async fn send_with_selector(
        &self,
        mut msg: Message,
        selector: &dyn QueueSelector,
    ) -> Result<SendResult, ProducerError> {
        let p = self.prepare(&mut msg)?;
        let info = self.publish_info(&msg.topic).await?;
        let i = selector.select(&info.queues, &msg);
        let mq = info.queues.get(i).cloned().ok_or_else(|| {
            ProducerError::InvalidMessage(format!(
                "the selector chose queue {i} of {}",
                info.queues.len()
            ))
        })?;
        match self
            .attempt(
                &info,
                &mq,
                &msg,
                &p,
                self.inner.config.send_timeout,
                Mode::Wait,
            )
            .await?
        {
            Some(r) => Ok(r),
            None => Err(ProducerError::NoRoute(msg.topic)),
        }
    }

    /// Async send as a `'static` future: retries (retryTimesWhenSendAsyncFailed) on transport
    /// failures only; a broker's error answer is returned at once.
    pub fn send_async(
        &self,
        msg: Message,
    ) -> impl Future<Output = Result<SendResult, ProducerError>> + Send + 'static {
        let this = self.clone();
        async move {
            let mut msg = msg;
            let p = this.prepare(&mut msg)?;
            this.send_waited(&msg, &p, true).await
        }
    }

    /// Async batch send: [`Producer::send_batch`]'s checks and envelope, with
    /// [`Producer::send_async`]'s retries (transport failures only), as a `'static` future.
    pub fn send_batch_async(
        &self,
        messages: Vec<Message>,
    ) -> impl Future<Output = Result<SendResult, ProducerError>> + Send + 'static {
        let this = self.clone();
        async move {
            let (envelope, p) = this.prepare_batch(messages)?;
            this.send_waited(&envelope, &p, true).await
        }
    }

    /// Callback form of [`Producer::send_async`]: `callback` runs exactly once, on a tokio task.
    pub fn send_async_callback<F>(&self, msg: Message, callback: F)
    where
        F: FnOnce(Result<SendResult, ProducerError>) + Send + 'static,
    {
        let fut = self.send_async(msg);
        tokio::spawn(async move { callback(fut.await) });
    }

    /// Oneway send: written once, never answered, never retried.
    pub async fn send_oneway(&self, mut msg: Message) -> Result<(), ProducerError> {
        let p = self.prepare(&mut msg)?;
        let info = self.publish_info(&msg.topic).await?;
        let mq = self
            .select(&info, None)
            .cloned()
            .ok_or_else(|| ProducerError::NoRoute(msg.topic.clone()))?;
        self.attempt(
            &info,
            &mq,
            &msg,
            &p,
            self.inner.config.send_timeout,
            Mode::Oneway,
        )
        .await
        .map(|_| ())
    }

    /// Stops the timers, unregisters the group (and CLIENT_INNER_PRODUCER) from every broker it
    /// heartbeated, and closes the connections. Later sends fail with `Shutdown`.
    pub async fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for t in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
        let brokers: Vec<String> = self
            .inner
            .heartbeated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        for addr in brokers {
            for group in [self.inner.config.group.as_str(), CLIENT_INNER_PRODUCER] {
                let req = wire::unregister(&self.inner.client_id, group);
                if let Err(e) = self
                    .inner
                    .client
                    .call(&addr, &req, Duration::from_secs(3))
                    .await
                {
                    tracing::debug!(addr, group, error = %e, "unregister failed");
                }
            }
        }
        self.inner.client.shutdown();
    }
}

/// A NameServer's failure to give a route, as the producer reports it.
fn namesrv_error(addr: &str, e: CallError) -> ProducerError {
    match e {
        CallError::Remoting(e) => ProducerError::Remoting(e),
        CallError::Refused { code, remark } => ProducerError::Broker {
            code,
            remark,
            broker_addr: format!("NameServer {addr}"),
        },
        other => ProducerError::Broker {
            code: response::SYSTEM_ERROR,
            remark: other.to_string(),
            broker_addr: format!("NameServer {addr}"),
        },
    }
}
