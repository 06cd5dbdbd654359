//! PULL_MESSAGE / LITE_PULL_MESSAGE (spec §2.3): the checks in Java's order, the read with the
//! consume-queue tag filter, the status-to-code mapping with next/min/max offsets, the commit
//! offset piggy-back, and long polling (a pull that finds nothing waits for its queue).

use crate::reply::{fail, refuse, Refusal, FAQ_URL};
use crate::topics::PERM_READ;
use crate::BrokerState;
use bytes::BytesMut;
use rmq_model::heartbeat::SubscriptionData;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::pull::{
    PullForbiddenResponseHeader, PullMessageRequestHeader, PullMessageResponseHeader,
};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext};
use rmq_store::store::{GetMessage, GetStatus};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// PullSysFlag bits.
pub mod flag {
    /// Commit `commitOffset` with this pull.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// Hold the pull when nothing is there.
    pub const SUSPEND: i32 = 0x2;
    /// The subscription is in the header.
    pub const SUBSCRIPTION: i32 = 0x4;
}

/// Tags of a TAG expression (`A || B`), `None` for `*` (everything).
pub fn tag_codes(expression: &str) -> Option<Vec<i64>> {
    let e = expression.trim();
    if e.is_empty() || e == "*" {
        return None;
    }
    Some(
        e.split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| i64::from(rmq_model::message::java_string_hash(t)))
            .collect(),
    )
}

/// The subscription's codes, `None` for all (`*`).
fn codes_of(sub: &SubscriptionData) -> Option<Vec<i64>> {
    if sub.sub_string.trim() == "*" || sub.sub_string.trim().is_empty() {
        return None;
    }
    if sub.code_set.is_empty() {
        return tag_codes(&sub.sub_string);
    }
    Some(sub.code_set.iter().map(|c| i64::from(*c)).collect())
}

/// PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361).
pub async fn pull(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: PullMessageRequestHeader = req.decode_header()?;
    let checked = match check(s, ctx, req.code, &h).await {
        Ok(c) => c,
        Err(refusal) => return Ok(*refusal),
    };
    if h.sys_flag & flag::COMMIT_OFFSET != 0 {
        s.offsets
            .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    }
    let max_bytes = s.config().max_transfer_bytes_on_message_in_memory;
    let read = QueueRead {
        s,
        ctx,
        topic: &h.topic,
        queue_id: h.queue_id,
        offset: h.queue_offset.max(0) as u64,
        max_msgs: (h.max_msg_nums.max(1) as usize).min(checked.max_count),
        max_bytes,
        codes: checked.codes,
    };
    let suspend = h.sys_flag & flag::SUSPEND != 0;
    let hold = hold_time(s, h.suspend_timeout_millis);
    let (result, turn) = read.once().await?;
    let flags = (checked.topic_sys_flag, checked.group_sys_flag);
    if !(suspend && not_found(&result, &h) && !hold.is_zero()) {
        ctx.hold_until_replied(turn);
        return Ok(answer(s, &h, flags, result));
    }
    // Nothing to answer yet: a held pull keeps no answer turn (nor read) while it waits.
    drop((result, turn));
    match held(&read, &h, hold).await? {
        Held::Answer(result, turn) => {
            ctx.hold_until_replied(turn);
            Ok(answer(s, &h, flags, result))
        }
        Held::Refused(refusal) => Ok(*refusal),
        // Nobody to answer: the pull ends here, freeing what it held.
        Held::Gone(result) => Ok(answer(s, &h, flags, result)),
    }
}

/// What the checks found: the filter and what the answer carries.
struct Checked {
    codes: Option<Vec<i64>>,
    max_count: usize,
    topic_sys_flag: i32,
    group_sys_flag: i32,
}

/// A NO_PERMISSION refusal with Java's `forbiddenType`.
fn forbidden(ty: i32, remark: String) -> Refusal {
    let mut r = fail(response::NO_PERMISSION, remark);
    r.set_header(&PullForbiddenResponseHeader { forbidden_type: ty });
    Box::new(r)
}

/// The checks in Java's order: the broker's and the group's permissions, the topic and queue,
/// then the subscription (from the header or the group's heartbeat) as tag codes.
async fn check(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    code: i32,
    h: &PullMessageRequestHeader,
) -> Result<Checked, Refusal> {
    let (broker_ip, broker_perm, lite_enabled, max_count) = {
        let c = s.config();
        (
            c.broker_ip1.clone(),
            c.broker_permission,
            c.lite_pull_message_enable,
            c.max_transfer_count_on_message_in_memory,
        )
    };
    if broker_perm & PERM_READ == 0 {
        return Err(forbidden(
            1,
            format!("the broker[{broker_ip}] pulling message is forbidden"),
        ));
    }
    if code == rc::LITE_PULL_MESSAGE && !lite_enabled {
        return Err(forbidden(
            1,
            format!("the broker[{broker_ip}] for lite pull consumer is forbidden"),
        ));
    }
    let group = &h.consumer_group;
    let found = s
        .group_for(&ctx.connection, group)
        .map_err(|remark| refuse(response::SYSTEM_BUSY, remark))?;
    let Some((gc, created)) = found else {
        return Err(refuse(
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!(
                "subscription group [{group}] does not exist, \nSee {FAQ_URL} for further details."
            ),
        ));
    };
    if created {
        s.persist_groups().await;
    }
    if !gc.consume_enable {
        return Err(forbidden(
            2,
            format!("subscription group no permission, {group}"),
        ));
    }
    let Some(tc) = s.topics.get(&h.topic) else {
        return Err(refuse(
            response::TOPIC_NOT_EXIST,
            format!(
                "topic[{}] not exist, apply first please! \nSee {FAQ_URL} for further details.",
                h.topic
            ),
        ));
    };
    if !tc.readable() {
        return Err(forbidden(
            3,
            format!("the topic[{}] pulling message is forbidden", h.topic),
        ));
    }
    if h.queue_id < 0 || h.queue_id >= tc.read_queue_nums {
        return Err(refuse(
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[/{}]",
                h.queue_id, h.topic, tc.read_queue_nums, ctx.peer
            ),
        ));
    }
    Ok(Checked {
        codes: subscription_codes(s, h, gc.consume_broadcast_enable)?,
        max_count: max_count.max(1),
        topic_sys_flag: tc.topic_sys_flag,
        group_sys_flag: gc.group_sys_flag,
    })
}

/// The tag codes to filter by: the header's subscription when it carries one, else the one
/// the group's heartbeat registered.
fn subscription_codes(
    s: &BrokerState,
    h: &PullMessageRequestHeader,
    broadcast_enabled: bool,
) -> Result<Option<Vec<i64>>, Refusal> {
    let unsupported = |ty: &str| {
        refuse(
            response::SYSTEM_ERROR,
            format!("The broker does not support consumer to filter message by {ty}"),
        )
    };
    if h.sys_flag & flag::SUBSCRIPTION != 0 {
        let ty = h.expression_type.as_deref().unwrap_or("TAG");
        if !ty.eq_ignore_ascii_case("TAG") {
            return Err(unsupported(ty));
        }
        return Ok(tag_codes(h.subscription.as_deref().unwrap_or("*")));
    }
    let group = &h.consumer_group;
    let Some(cg) = s.clients.consumer_group(group) else {
        return Err(refuse(
            response::SUBSCRIPTION_NOT_EXIST,
            format!("the consumer's group info not exist\nSee {FAQ_URL} for further details."),
        ));
    };
    if cg.message_model.eq_ignore_ascii_case("BROADCASTING") && !broadcast_enabled {
        return Err(forbidden(
            4,
            format!("the consumer group[{group}] can not consume by broadcast way"),
        ));
    }
    let Some(sub) = cg.subscriptions.get(&h.topic) else {
        return Err(refuse(
            response::SUBSCRIPTION_NOT_EXIST,
            format!("the consumer's subscription not exist\nSee {FAQ_URL} for further details."),
        ));
    };
    if sub.sub_version < h.sub_version {
        return Err(refuse(
            response::SUBSCRIPTION_NOT_LATEST,
            "the consumer's subscription not latest",
        ));
    }
    if !sub.expression_type.is_empty() && !sub.expression_type.eq_ignore_ascii_case("TAG") {
        return Err(unsupported(&sub.expression_type));
    }
    Ok(codes_of(sub))
}

/// One queue read of a pull, repeated while it is held.
struct QueueRead<'a> {
    s: &'a Arc<BrokerState>,
    ctx: &'a RequestContext,
    topic: &'a str,
    queue_id: i32,
    offset: u64,
    max_msgs: usize,
    max_bytes: usize,
    codes: Option<Vec<i64>>,
}

impl QueueRead<'_> {
    /// Reads once, holding a turn of the connection's (and client's) pull answers, kept until
    /// the answer is queued (see PULL_ANSWERS_PER_CONNECTION), and a store turn while reading.
    async fn once(&self) -> Result<(GetMessage, crate::shares::Turn), ProcessorError> {
        let Some(answer_turn) = self.s.answer_turn(self.ctx).await else {
            return Err(ProcessorError::new("the connection closed"));
        };
        let _turn = self.s.store_turn(&self.ctx.connection).await;
        self.s
            .store
            .read(|st| {
                st.get_message(
                    self.topic,
                    self.queue_id,
                    self.offset,
                    self.max_msgs,
                    self.max_bytes,
                    self.codes.as_deref(),
                )
            })
            .await
            .map_err(|e| ProcessorError::new(e.to_string()))?
            .map_err(|e| ProcessorError::new(e.to_string()))
            .map(|r| (r, answer_turn))
    }
}

/// Whether a read found nothing to answer yet.
fn not_found(r: &GetMessage, h: &PullMessageRequestHeader) -> bool {
    code_of(r.status, h.queue_offset) == response::PULL_NOT_FOUND
}

/// How a held pull ended.
enum Held {
    /// Answer this read, with its turn.
    Answer(GetMessage, crate::shares::Turn),
    /// Over a held-pull budget.
    Refused(Refusal),
    /// Its connection closed: the last read, answered to nobody.
    Gone(GetMessage),
}

/// Long polling: answered when the queue grows past the offset, at the deadline, or dropped
/// when the connection closes. Parked meanwhile: the pull gives its executor slot back and
/// counts only against its connection's and client's budgets (Java's PullRequestHoldService).
async fn held(
    read: &QueueRead<'_>,
    h: &PullMessageRequestHeader,
    hold: Duration,
) -> Result<Held, ProcessorError> {
    let (s, ctx) = (read.s, read.ctx);
    let deadline = tokio::time::Instant::now() + hold;
    let (per_conn, per_client) = {
        let c = s.config();
        (c.max_held_pulls_per_connection, c.max_held_pulls_per_client)
    };
    let client = crate::budgets::Client::of(&ctx.connection);
    let _held = match s
        .notifier
        .hold(ctx.connection.id(), client, per_conn, per_client)
    {
        Ok(held) => held,
        Err(over) => {
            let refusal = fail(response::SYSTEM_BUSY, held_pulls_refusal(over, client));
            return Ok(Held::Refused(Box::new(refusal)));
        }
    };
    ctx.park();
    let notify = s
        .notifier
        .listen(&h.topic, h.queue_id, read.codes.as_deref());
    loop {
        let arrived = notify.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        let closed = s.notifier.closed();
        tokio::pin!(closed);
        closed.as_mut().enable();
        let (result, turn) = read.once().await?;
        if !not_found(&result, h) || s.notifier.is_closing() {
            return Ok(Held::Answer(result, turn));
        }
        drop(turn);
        let waited = tokio::select! {
            _ = &mut arrived => Wake::Arrived,
            _ = &mut closed => Wake::Stop,
            _ = tokio::time::sleep_until(deadline) => Wake::Stop,
            _ = ctx.connection.closed() => Wake::Gone,
        };
        match waited {
            Wake::Arrived => {}
            Wake::Stop => {
                let (result, turn) = read.once().await?;
                return Ok(Held::Answer(result, turn));
            }
            Wake::Gone => return Ok(Held::Gone(result)),
        }
    }
}

/// Why a held pull stopped waiting.
enum Wake {
    /// Its queue grew: read again.
    Arrived,
    /// The deadline or the broker's stop: answer what is there.
    Stop,
    /// Its connection closed.
    Gone,
}

/// How long a pull that finds nothing is held: its `suspendTimeoutMillis` with long polling,
/// capped at `longPollingMaxHoldMillis`; `shortPollingTimeMills` without.
fn hold_time(s: &BrokerState, suspend_timeout_millis: i64) -> Duration {
    let c = s.config();
    if c.long_polling_enable {
        Duration::from_millis(
            (suspend_timeout_millis.max(0) as u64).min(c.long_polling_max_hold_millis),
        )
    } else {
        Duration::from_millis(c.short_polling_time_mills)
    }
}

/// The response code of a read's status (spec §2.3.3).
fn code_of(status: GetStatus, requested: i64) -> i32 {
    match status {
        GetStatus::Found => response::SUCCESS,
        GetStatus::NoMatchedMessage | GetStatus::MessageWasRemoving => {
            response::PULL_RETRY_IMMEDIATELY
        }
        GetStatus::NoMessageInQueue if requested != 0 => response::PULL_OFFSET_MOVED,
        GetStatus::NoMessageInQueue | GetStatus::OffsetOverflowOne => response::PULL_NOT_FOUND,
        GetStatus::OffsetOverflowBadly | GetStatus::OffsetTooSmall => response::PULL_OFFSET_MOVED,
    }
}

/// The response of a read (spec §2.3.3).
fn answer(
    s: &BrokerState,
    h: &PullMessageRequestHeader,
    (topic_sys_flag, group_sys_flag): (i32, i32),
    r: GetMessage,
) -> RemotingCommand {
    let code = code_of(r.status, h.queue_offset);
    s.offsets.commit_pull(
        &h.consumer_group,
        &h.topic,
        h.queue_id,
        r.next_begin_offset as i64,
    );
    let header = PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: r.next_begin_offset as i64,
        min_offset: r.min_offset as i64,
        max_offset: r.max_offset as i64,
        offset_delta: None,
        topic_sys_flag: Some(topic_sys_flag),
        group_sys_flag: Some(group_sys_flag),
        forbidden_type: None,
    };
    let mut resp = RemotingCommand::response(code, Some(r.status.name()));
    resp.set_header(&header);
    if code == response::SUCCESS {
        s.stats.get_found.fetch_add(1, Ordering::Relaxed);
        s.stats
            .got_messages
            .fetch_add(r.records.len() as u64, Ordering::Relaxed);
        s.metrics
            .messages_out(&h.topic, &h.consumer_group, r.records.len(), r.bytes);
        let body = if r.records.len() == 1 {
            r.records
                .into_iter()
                .next()
                .map(|(_, b)| b)
                .unwrap_or_default()
        } else {
            let mut out = BytesMut::with_capacity(r.bytes);
            for (_, b) in &r.records {
                out.extend_from_slice(b);
            }
            out.freeze()
        };
        resp = resp.with_body(body);
    } else {
        s.stats.get_miss.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

/// The remark of a pull refused because its connection or client holds too many already.
fn held_pulls_refusal(over: crate::long_poll::OverHeld, client: crate::budgets::Client) -> String {
    use crate::long_poll::OverHeld;
    match over {
        OverHeld::Connection(max) => format!(
            "[HELD_PULLS] this connection already holds {max} long-polling pulls (maxHeldPullsPerConnection); try again later"
        ),
        OverHeld::Client(max) => format!(
            "[HELD_PULLS] this client ({client}) already holds {max} long-polling pulls over its connections (maxHeldPullsPerClient); try again later"
        ),
    }
}
