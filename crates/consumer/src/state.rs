//! What every task of one consumer shares ([`ConsumerState`]): settings, the remoting client,
//! subscriptions and routes, the queues owned now, and how messages are handed over
//! ([`Delivery`]). The tasks' work lives beside it, one module per responsibility: rebalance,
//! pull, concurrent and orderly consumption, offset store, seeks, routes and heartbeats.

use crate::commit_offset::CommitOffset;
use crate::config::ConsumerConfig;
use crate::listener::MessageListener;
use crate::local_offsets::LocalOffsets;
use crate::process_queue::ProcessQueue;
use crate::queue_seeks::Seeks;
use crate::{MessageExt, MessageQueue};
use rmq_model::heartbeat::SubscriptionData;
use rmq_model::{NamesrvClient, TopicRouteData};
use rmq_remoting::RemotingClient;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};

/// The timeout of every request but pulls (which the broker may hold).
pub(crate) const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// A queue's pulled messages and the seek generation they were pulled in (`poll` drops those
/// pulled before the queue's last seek). Defined here, beside [`Delivery`] which carries it,
/// rather than in `lite`, so that `state` does not depend on `lite`.
pub(crate) type LiteBatch = (MessageQueue, u64, Vec<MessageExt>);

/// How a consumer hands messages over: the one difference between a push consumer and a lite
/// pull consumer once queues are owned and pulled.
pub(crate) enum Delivery {
    /// A listener is called (push: concurrently, or orderly with `ConsumerConfig::orderly`).
    Listener(Arc<dyn MessageListener>),
    /// Pulled batches wait in a bounded channel for `poll` (lite pull); `assigned`: queues
    /// given by hand (no rebalance), else the subscribed topics are rebalanced.
    Poll {
        tx: mpsc::Sender<LiteBatch>,
        assigned: Option<Vec<MessageQueue>>,
    },
}

impl Delivery {
    /// The listener, for a push consumer.
    pub(crate) fn listener(&self) -> Option<Arc<dyn MessageListener>> {
        match self {
            Delivery::Listener(l) => Some(l.clone()),
            Delivery::Poll { .. } => None,
        }
    }

    /// The channel `poll` reads, for a lite pull consumer.
    pub(crate) fn poll_tx(&self) -> Option<&mpsc::Sender<LiteBatch>> {
        match self {
            Delivery::Poll { tx, .. } => Some(tx),
            Delivery::Listener(_) => None,
        }
    }

    /// Queues assigned by hand (lite pull's `assign`): they replace the rebalance.
    pub(crate) fn assigned(&self) -> Option<&[MessageQueue]> {
        match self {
            Delivery::Poll {
                assigned: Some(a), ..
            } => Some(a),
            _ => None,
        }
    }
}

/// A queue this consumer owns: its cache, its offset to commit and the tasks working on it.
pub(crate) struct OwnedQueue {
    pub(crate) pq: Arc<ProcessQueue>,
    /// What the group commits for this queue: the first offset not yet consumed.
    pub(crate) commit_offset: Arc<CommitOffset>,
    /// The queue's pull task.
    pub(crate) pull: tokio::task::JoinHandle<()>,
    /// Orderly: the queue's one consumption task.
    pub(crate) orderly: Option<tokio::task::JoinHandle<()>>,
    /// Wakes the queue's pull task out of a held pull when the queue is sought.
    pub(crate) seek_notify: Arc<Notify>,
}

/// The state one consumer's tasks share (rebalance, heartbeat, persist, lock renewal, one
/// pull task per queue, consumption tasks).
pub(crate) struct ConsumerState {
    pub(crate) config: ConsumerConfig,
    pub(crate) client_id: String,
    pub(crate) client: RemotingClient,
    pub(crate) namesrv: NamesrvClient,
    /// Subscribed topics (and `%RETRY%group` in clustering push), by topic.
    pub(crate) subscriptions: Mutex<BTreeMap<String, SubscriptionData>>,
    /// The subscribed topics' routes, by topic.
    pub(crate) routes: Mutex<HashMap<String, TopicRouteData>>,
    pub(crate) owned: Mutex<HashMap<MessageQueue, OwnedQueue>>,
    pub(crate) delivery: Delivery,
    /// Listener calls at once (`consume_concurrency`).
    pub(crate) consume_slots: Arc<Semaphore>,
    /// Wakes the rebalance loop.
    pub(crate) rebalance_now: Arc<Notify>,
    /// A rebalance is already due soon (`rebalance_soon`).
    pub(crate) rebalance_due: Arc<AtomicBool>,
    pub(crate) stopping: AtomicBool,
    /// BROADCASTING: this member's offsets, kept in a local file instead of the broker.
    pub(crate) broadcast_offsets: Option<Arc<LocalOffsets>>,
    /// Restarts of queues at a given offset (lite pull's `seek`, a broker's offset reset).
    pub(crate) seeks: Seeks,
    /// Messages still to deliver (`max_messages`), when limited.
    pub(crate) budget: Option<AtomicU64>,
}

impl ConsumerState {
    /// Is the consumer shutting down?
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The owned queues (poisoning ignored: the map stays consistent under every lock holder).
    pub(crate) fn owned(&self) -> MutexGuard<'_, HashMap<MessageQueue, OwnedQueue>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every owned queue's offset to commit, where known.
    pub(crate) fn commit_offsets(&self) -> Vec<(MessageQueue, i64)> {
        self.owned()
            .iter()
            .filter_map(|(mq, o)| Some((mq.clone(), o.commit_offset.known()?)))
            .collect()
    }

    /// The subscribed topics.
    pub(crate) fn topics(&self) -> Vec<String> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// A topic's subscription.
    pub(crate) fn subscription(&self, topic: &str) -> Option<SubscriptionData> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
    }

    /// `%RETRY%<group>`: the group's retry topic.
    pub(crate) fn retry_topic(&self) -> String {
        format!("%RETRY%{}", self.config.group)
    }
}
