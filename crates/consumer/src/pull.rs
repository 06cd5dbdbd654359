//! One pull task per owned queue (spec §4.6): its start offset, long-polling PULL_MESSAGE (or
//! LITE_PULL_MESSAGE), flow control (pulls pause while the queue's cache is full, nothing is
//! dropped), the message budget (`max_messages`), records that do not decode, the broker's
//! suggested slave, and the hand-over of what was pulled: to `poll` (lite pull), the queue's
//! orderly task, or concurrent consumption.

use crate::commit_offset::CommitOffset;
use crate::message::{decode_records, Decoded, MessageExt};
use crate::orderly::OrderlyTx;
use crate::process_queue::ProcessQueue;
use crate::state::ConsumerState;
use crate::{concurrent, subscription, MessageQueue};
use rmq_model::heartbeat::SubscriptionData;
use rmq_protocol::codes::{request, response};
use rmq_protocol::headers::pull::PullMessageRequestHeader;
use rmq_protocol::RemotingCommand;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Pulls again from a record that does not decode before it is skipped (the last of them asks
/// for that record alone).
const UNDECODABLE_RETRIES: u32 = 3;
/// The pause before pulling again from a record that did not decode (Java's
/// pullTimeDelayMillsWhenException).
const UNDECODABLE_PAUSE: Duration = Duration::from_secs(1);
/// The pause before a new queue's first pull (Java's, after a rebalance).
const FIRST_PULL_DELAY: Duration = Duration::from_millis(500);
/// The pause after a failed or refused pull, or while the queue has no known broker.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The pause while flow control holds the queue's pulls.
const FLOW_CONTROL_PAUSE: Duration = Duration::from_millis(50);

/// PullSysFlag bits.
const FLAG_COMMIT_OFFSET: i32 = 0x1;
const FLAG_SUSPEND: i32 = 0x2;
const FLAG_SUBSCRIPTION: i32 = 0x4;
const FLAG_LITE_PULL_MESSAGE: i32 = 0x10;

/// One queue's pulls until it is given away or the consumer stops.
pub(crate) async fn pull_queue(
    state: Arc<ConsumerState>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
    commit_offset: Arc<CommitOffset>,
    orderly: Option<OrderlyTx>,
    seek_notify: Arc<Notify>,
) {
    // Java starts a new queue's pulls 500 ms after the rebalance; the start offset is read
    // after that pause here, so a previous owner's final commit (sent when it gave the queue
    // up in its own rebalance) is usually in, and its last messages are not seen twice.
    tokio::time::sleep(FIRST_PULL_DELAY).await;
    let next = loop {
        if pq.is_dropped() || state.is_stopping() {
            return;
        }
        match state.initial_offset(&mq).await {
            Some(o) => break o,
            None => tokio::time::sleep(RETRY_PAUSE).await,
        }
    };
    commit_offset.advance(next);
    tracing::debug!(queue = ?mq, start = next, "pulling");
    let Some(sub) = state.subscription(&mq.topic) else {
        return;
    };
    let mut puller = QueuePuller {
        state,
        mq,
        pq,
        commit_offset,
        orderly,
        seek_notify,
        sub,
        next,
        suggested_broker: 0,
        undecodable: None,
    };
    puller.run().await;
}

/// One queue's pull task and where it is.
struct QueuePuller {
    state: Arc<ConsumerState>,
    mq: MessageQueue,
    pq: Arc<ProcessQueue>,
    commit_offset: Arc<CommitOffset>,
    /// Orderly: the queue's consumption task.
    orderly: Option<OrderlyTx>,
    seek_notify: Arc<Notify>,
    sub: SubscriptionData,
    /// The queue offset the next pull asks from.
    next: i64,
    /// The broker id the last answer suggested (suggestWhichBrokerId; 0: the master).
    suggested_broker: i64,
    /// A record that did not decode: its queue offset and the pulls that failed on it.
    undecodable: Option<(i64, u32)>,
}

impl QueuePuller {
    async fn run(&mut self) {
        loop {
            if self.pq.is_dropped() || self.state.is_stopping() {
                return;
            }
            if let Some(to) = self.state.seeks.take(&self.mq) {
                self.next = to;
                self.pq.clear();
                self.commit_offset.set(to);
            }
            if self.cache_full() {
                // Flow control: the listener is behind; never drop, wait.
                tokio::time::sleep(FLOW_CONTROL_PAUSE).await;
                continue;
            }
            // suggestWhichBrokerId: a broker may send a lagging consumer to a slave (Java's
            // slaveReadEnable); offsets are committed to masters only.
            let Some((addr, to_master)) = self
                .state
                .addr_of(&self.mq.broker_name, self.suggested_broker)
            else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            let req = self.request(to_master);
            // Lite pull: the seek generation this pull belongs to, taken before it is sent (a
            // pull answered after a seek carries messages from before it).
            let generation = self.state.seeks.generation(&self.mq);
            let timeout = self.state.config.suspend_timeout + Duration::from_secs(15);
            let call = self.state.client.invoke_sync(&addr, req, timeout);
            let answered = tokio::select! {
                r = call => r,
                // A seek: this pull (perhaps held for 20 s) no longer matters.
                _ = self.seek_notify.notified() => continue,
            };
            let r = match answered {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(queue = ?self.mq, error = %e, "pull failed");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            if self.on_answer(r, generation).await.is_break() {
                return;
            }
        }
    }

    /// Flow control: the queue's cache holds `pull_threshold_for_queue` messages or
    /// `pull_threshold_size_for_queue` body bytes.
    fn cache_full(&self) -> bool {
        let (count, bytes) = self.pq.size();
        count > self.state.config.pull_threshold_for_queue
            || bytes > self.state.config.pull_threshold_size_for_queue
    }

    /// The next PULL_MESSAGE (LITE_PULL_MESSAGE for lite pull, which never commits); it
    /// carries the offset to commit when it goes to the master.
    fn request(&self, to_master: bool) -> RemotingCommand {
        let config = &self.state.config;
        let lite = self.state.delivery.poll_tx().is_some();
        let commit = if to_master {
            self.commit_offset.raw()
        } else {
            -1
        };
        let mut sys_flag = FLAG_SUSPEND | FLAG_SUBSCRIPTION;
        if lite {
            sys_flag |= FLAG_LITE_PULL_MESSAGE;
        } else if commit > 0 && !config.broadcasting {
            sys_flag |= FLAG_COMMIT_OFFSET;
        }
        let sub_version = if lite {
            0
        } else {
            self.state
                .subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&self.mq.topic)
                .map_or(0, |s| s.sub_version)
        };
        let h = PullMessageRequestHeader {
            consumer_group: config.group.clone(),
            topic: self.mq.topic.clone(),
            queue_id: self.mq.queue_id,
            queue_offset: self.next,
            // The last try at a record that does not decode asks for it alone: the answer's
            // next offset is then the one right after it.
            max_msg_nums: match self.undecodable {
                Some((_, tries)) if tries >= UNDECODABLE_RETRIES => 1,
                _ => config.pull_batch_size,
            },
            sys_flag,
            commit_offset: commit.max(0),
            suspend_timeout_millis: config.suspend_timeout.as_millis() as i64,
            subscription: Some(self.sub.sub_string.clone()),
            sub_version,
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
            request_source: None,
            proxy_froward_client_id: None,
        };
        let code = if lite {
            request::LITE_PULL_MESSAGE
        } else {
            request::PULL_MESSAGE
        };
        RemotingCommand::request_with_header(code, &h)
    }

    /// Follows a pull's answer; `Break` when this queue's pulls end.
    async fn on_answer(&mut self, r: RemotingCommand, generation: u64) -> ControlFlow<()> {
        let next_begin = r.ext("nextBeginOffset").and_then(|o| o.parse::<i64>().ok());
        self.suggested_broker = r
            .ext("suggestWhichBrokerId")
            .and_then(|o| o.parse::<i64>().ok())
            .unwrap_or(0);
        match r.code {
            response::SUCCESS => {
                let decoded = decode_records(&r.body, &self.mq.broker_name);
                let pause = self.move_past(&decoded, next_begin);
                self.hand_over(decoded.msgs, generation).await?;
                if pause {
                    tokio::time::sleep(UNDECODABLE_PAUSE).await;
                }
            }
            response::PULL_NOT_FOUND | response::PULL_RETRY_IMMEDIATELY => {
                if let Some(n) = next_begin {
                    self.next = n;
                    if self.pq.size().0 == 0 {
                        self.commit_offset.advance(n);
                    }
                }
            }
            response::PULL_OFFSET_MOVED => {
                if let Some(n) = next_begin {
                    tracing::warn!(queue = ?self.mq, from = self.next, to = n, "offset moved");
                    self.next = n;
                    self.commit_offset.set(n);
                    self.state.commit(&self.mq, n).await;
                }
            }
            code => {
                tracing::debug!(queue = ?self.mq, code, remark = ?r.remark, "pull refused");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        ControlFlow::Continue(())
    }

    /// Moves the next pull's offset past a found answer: to `next_begin` when every record
    /// decoded; else to the record that did not, never past it (a few more tries, then that
    /// one record alone is skipped, loudly). `true` when the next pull should wait.
    fn move_past(&mut self, decoded: &Decoded, next_begin: Option<i64>) -> bool {
        let Some(e) = &decoded.undecodable else {
            self.undecodable = None;
            if let Some(n) = next_begin {
                self.next = n;
            }
            return false;
        };
        let mq = &self.mq;
        let at = decoded
            .msgs
            .last()
            .map_or(self.next, |m| m.queue_offset + 1);
        let tries = match self.undecodable {
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
            self.next = to;
            self.undecodable = None;
            false
        } else {
            tracing::error!(
                topic = %mq.topic, broker = %mq.broker_name, queue = mq.queue_id,
                offset = at, tries, error = %e,
                "a pulled record does not decode: pulling again from it"
            );
            self.next = at;
            self.undecodable = Some((at, tries));
            true
        }
    }

    /// Hands the pulled messages the subscription matches over (as many as the message
    /// budget allows): to `poll`, the orderly task, or concurrent consumption. `Break` when
    /// this queue's pulls end (the budget spent, `poll`'s side gone).
    async fn hand_over(&self, pulled: Vec<MessageExt>, generation: u64) -> ControlFlow<()> {
        let mut msgs: Vec<MessageExt> = pulled
            .into_iter()
            .filter(|m| subscription::matches(&self.sub, m.tags()))
            .collect();
        // A message budget (`max_messages`): what is past it is neither delivered nor
        // kept, and this queue's pulls end (its committed offset stops right after the
        // last message delivered).
        let spent = self.state.take_budget(msgs.len());
        let exhausted = spent < msgs.len();
        msgs.truncate(spent);
        if !msgs.is_empty() {
            self.pq.put(&msgs);
            if let Some(tx) = self.state.delivery.poll_tx() {
                if tx.send((self.mq.clone(), generation, msgs)).await.is_err() {
                    return ControlFlow::Break(());
                }
            } else if let Some(tx) = &self.orderly {
                let _ = tx.send(msgs);
            } else {
                for batch in msgs.chunks(self.state.config.consume_batch_max_size) {
                    concurrent::submit(
                        self.state.clone(),
                        self.pq.clone(),
                        self.commit_offset.clone(),
                        batch.to_vec(),
                    );
                }
            }
        }
        if exhausted {
            tracing::debug!(queue = ?self.mq, "message budget spent: pulls end");
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl ConsumerState {
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
}
