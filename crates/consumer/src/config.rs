//! The consumer's settings ([`ConsumerConfig`], Java's defaults) and why a start is refused.

use crate::allocate::{Allocate, Averagely};
use rmq_remoting::ClientConfig;
use std::sync::Arc;
use std::time::Duration;

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
    /// The name Java's heartbeat carries (consumeFromWhere).
    pub(crate) fn java_name(self) -> &'static str {
        match self {
            ConsumeFrom::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            ConsumeFrom::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
            ConsumeFrom::Timestamp(_) => "CONSUME_FROM_TIMESTAMP",
        }
    }
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

impl ConsumerConfig {
    /// Refuses settings no consumer can run with: no group, NameServer or topic, or a zero
    /// concurrency or batch size (a consumer that could never deliver anything).
    pub(crate) fn check(&self, topics: &[(&str, &str)]) -> Result<(), ConsumerError> {
        if self.group.is_empty() || self.namesrv_addrs.is_empty() || topics.is_empty() {
            return Err(ConsumerError::Config(
                "a group, NameServers and a topic are needed".into(),
            ));
        }
        if self.consume_concurrency == 0
            || self.consume_batch_max_size == 0
            || self.pull_batch_size <= 0
        {
            return Err(ConsumerError::Config(
                "concurrency, batch sizes must be positive".into(),
            ));
        }
        Ok(())
    }
}
