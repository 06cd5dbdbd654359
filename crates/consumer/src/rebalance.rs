//! The rebalance (spec §4.4): every `rebalance_interval`, at once on
//! NOTIFY_CONSUMER_IDS_CHANGED, and soon after a refused lock or a busy queue. Each subscribed
//! topic's readable queues are divided among the group's members by the `allocate` strategy
//! (every queue in BROADCASTING, the assigned ones in lite pull's `assign`); queues that leave
//! are given up (their offset committed), new ones are taken (a pull task started).

use crate::process_queue::ProcessQueue;
use crate::state::{ConsumerState, OwnedQueue, RPC_TIMEOUT};
use crate::{broker_requests, orderly, pull, MessageQueue};
use async_trait::async_trait;
use rmq_model::TopicRouteData;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext, RequestProcessor};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Wakes the rebalance loop on NOTIFY_CONSUMER_IDS_CHANGED.
pub(crate) struct OnNotify(pub(crate) Arc<Notify>);

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

/// A topic's readable queues in a route, sorted (what every member divides the same way).
fn readable_queues(route: &TopicRouteData, topic: &str) -> Vec<MessageQueue> {
    let mut all: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| q.perm & 4 != 0)
        .flat_map(|q| {
            (0..q.read_queue_nums).map(move |i| MessageQueue {
                topic: topic.to_owned(),
                broker_name: q.broker_name.clone(),
                queue_id: i,
            })
        })
        .collect();
    all.sort();
    all
}

impl ConsumerState {
    /// One rebalance round over every subscribed topic (spec §4.4); a change bumps the
    /// subscriptions' subVersion and heartbeats before the pulls carry it.
    pub(crate) async fn rebalance(self: &Arc<Self>) {
        if self.is_stopping() {
            return;
        }
        let topics = self.topics();
        let unrouted = {
            let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            topics.iter().any(|t| !routes.contains_key(t))
        };
        if unrouted {
            self.refresh_routes().await;
        }
        let mut changed = false;
        for topic in topics {
            let Some(mine) = self.my_share(&topic).await else {
                continue;
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

    /// The queues of `topic` this member should own; `None` when that is not known now (no
    /// route, no master, the member list unreadable).
    async fn my_share(&self, topic: &str) -> Option<Vec<MessageQueue>> {
        let route = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()?;
        let all = readable_queues(&route, topic);
        let addr = route
            .broker_datas
            .first()
            .and_then(|b| b.broker_addrs.get(&0).cloned())?;
        if let Some(assigned) = self.delivery.assigned() {
            return Some(
                assigned
                    .iter()
                    .filter(|q| q.topic == topic)
                    .cloned()
                    .collect(),
            );
        }
        if self.config.broadcasting {
            return Some(all);
        }
        let mut members = self.members(&addr).await?;
        members.sort();
        Some(
            self.config
                .allocate
                .allocate(&self.client_id, &all, &members),
        )
    }

    /// The group's members, as a broker knows them (GET_CONSUMER_LIST_BY_GROUP).
    async fn members(&self, addr: &str) -> Option<Vec<String>> {
        let req = broker_requests::get_consumer_list(&self.config.group);
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

    /// Drops queues of `topic` no longer ours (committing their offsets first), takes new
    /// ones; `true` when the owned set changed.
    async fn update_owned(self: &Arc<Self>, topic: &str, mine: Vec<MessageQueue>) -> bool {
        let mut changed = false;
        // Queues no longer ours, and orderly queues given away earlier whose listener call was
        // still running then (they stayed, dropped, and are given up now if it has returned).
        let gone: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .owned()
            .iter()
            .filter(|(q, o)| q.topic == topic && (!mine.contains(q) || o.pq.is_dropped()))
            .map(|(q, o)| {
                o.pq.drop_queue();
                o.pull.abort();
                (q.clone(), o.pq.clone())
            })
            .collect();
        for (mq, pq) in gone {
            changed |= self.give_up(mq, pq, &mine).await;
        }
        for mq in mine {
            changed |= self.take(mq).await;
        }
        changed
    }

    /// Gives up a queue already stopped: waits for the listener calls running on it, commits
    /// its offset, unlocks it (orderly). `false` when it stays for now (orderly, the listener
    /// still at work on it).
    async fn give_up(
        &self,
        mq: MessageQueue,
        pq: Arc<ProcessQueue>,
        mine: &[MessageQueue],
    ) -> bool {
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
                    return false;
                }
            }
        } else {
            None
        };
        let Some(o) = self.owned().remove(&mq) else {
            return false;
        };
        // Messages already handed to the listener finish first (up to 10 s), so the
        // committed offset covers them and the new owner does not see them again; those
        // not yet started are left for it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while o.pq.consuming() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(off) = o.commit_offset.known() {
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
        true
    }

    /// Takes a queue not owned yet (orderly: once its broker lock is granted) and starts its
    /// pull task (and orderly consumption task); `false` when not taken.
    async fn take(self: &Arc<Self>, mq: MessageQueue) -> bool {
        if self.owned().contains_key(&mq) {
            return false;
        }
        let pq = Arc::new(ProcessQueue::named(mq.clone()));
        if self.config.orderly {
            if !self.lock(std::slice::from_ref(&mq)).await.contains(&mq) {
                // Another member still holds it: try again soon.
                self.rebalance_soon(Duration::from_millis(500));
                return false;
            }
            pq.set_locked(true);
        }
        let commit_offset = Arc::new(crate::commit_offset::CommitOffset::unknown());
        let (tx, orderly) = if self.config.orderly {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let task = tokio::spawn(orderly::consume_in_order(
                self.clone(),
                mq.clone(),
                pq.clone(),
                commit_offset.clone(),
                rx,
            ));
            (Some(tx), Some(task))
        } else {
            (None, None)
        };
        let seek_notify = Arc::new(Notify::new());
        let pull = tokio::spawn(pull::pull_queue(
            self.clone(),
            mq.clone(),
            pq.clone(),
            commit_offset.clone(),
            tx,
            seek_notify.clone(),
        ));
        self.owned().insert(
            mq.clone(),
            OwnedQueue {
                pq,
                commit_offset,
                pull,
                orderly,
                seek_notify,
            },
        );
        tracing::info!(queue = ?mq, "queue taken");
        true
    }

    /// Runs a rebalance `after` from now (a lock refused, a queue still busy), unless one is
    /// already due: rounds that keep asking do not multiply the timers.
    pub(crate) fn rebalance_soon(&self, after: Duration) {
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
}
