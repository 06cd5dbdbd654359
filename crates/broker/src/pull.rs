//! PULL_MESSAGE / LITE_PULL_MESSAGE (spec §2.3): the checks in Java's order, the read with the
//! consume-queue tag filter, the status-to-code mapping with next/min/max offsets, the commit
//! offset piggy-back, and long polling (a pull that finds nothing waits for its queue).

use crate::processor::{fail, FAQ_URL};
use crate::topics::PERM_READ;
use crate::BrokerState;
use bytes::BytesMut;
use rmq_model::heartbeat::SubscriptionData;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
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
    let (broker_ip, broker_perm, lite_enabled, max_count, max_bytes) = {
        let c = s.config();
        (
            c.broker_ip1.clone(),
            c.broker_permission,
            c.lite_pull_message_enable,
            c.max_transfer_count_on_message_in_memory,
            c.max_transfer_bytes_on_message_in_memory,
        )
    };
    let forbidden = |ty: i32, remark: String| {
        let mut r = fail(response::NO_PERMISSION, remark);
        r = r.with_ext("forbiddenType", ty.to_string());
        Ok(r)
    };
    if broker_perm & PERM_READ == 0 {
        return forbidden(
            1,
            format!("the broker[{broker_ip}] pulling message is forbidden"),
        );
    }
    if req.code == rc::LITE_PULL_MESSAGE && !lite_enabled {
        return forbidden(
            1,
            format!("the broker[{broker_ip}] for lite pull consumer is forbidden"),
        );
    }
    let group = &h.consumer_group;
    let found = match s.group_for(&ctx.connection, group) {
        Ok(found) => found,
        Err(remark) => return Ok(fail(response::SYSTEM_BUSY, remark)),
    };
    let Some((gc, created)) = found else {
        return Ok(fail(
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
        return forbidden(2, format!("subscription group no permission, {group}"));
    }
    let Some(tc) = s.topics.get(&h.topic) else {
        return Ok(fail(
            response::TOPIC_NOT_EXIST,
            format!(
                "topic[{}] not exist, apply first please! \nSee {FAQ_URL} for further details.",
                h.topic
            ),
        ));
    };
    if !tc.readable() {
        return forbidden(
            3,
            format!("the topic[{}] pulling message is forbidden", h.topic),
        );
    }
    if h.queue_id < 0 || h.queue_id >= tc.read_queue_nums {
        return Ok(fail(
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[/{}]",
                h.queue_id, h.topic, tc.read_queue_nums, ctx.peer
            ),
        ));
    }
    let codes = if h.sys_flag & flag::SUBSCRIPTION != 0 {
        let ty = h.expression_type.as_deref().unwrap_or("TAG");
        if !ty.eq_ignore_ascii_case("TAG") {
            return Ok(fail(
                response::SYSTEM_ERROR,
                format!("The broker does not support consumer to filter message by {ty}"),
            ));
        }
        tag_codes(h.subscription.as_deref().unwrap_or("*"))
    } else {
        let Some(cg) = s.clients.consumer_group(group) else {
            return Ok(fail(
                response::SUBSCRIPTION_NOT_EXIST,
                format!("the consumer's group info not exist\nSee {FAQ_URL} for further details."),
            ));
        };
        if cg.message_model.eq_ignore_ascii_case("BROADCASTING") && !gc.consume_broadcast_enable {
            return forbidden(
                4,
                format!("the consumer group[{group}] can not consume by broadcast way"),
            );
        }
        let Some(sub) = cg.subscriptions.get(&h.topic) else {
            return Ok(fail(
                response::SUBSCRIPTION_NOT_EXIST,
                format!(
                    "the consumer's subscription not exist\nSee {FAQ_URL} for further details."
                ),
            ));
        };
        if sub.sub_version < h.sub_version {
            return Ok(fail(
                response::SUBSCRIPTION_NOT_LATEST,
                "the consumer's subscription not latest",
            ));
        }
        if !sub.expression_type.is_empty() && !sub.expression_type.eq_ignore_ascii_case("TAG") {
            return Ok(fail(
                response::SYSTEM_ERROR,
                format!(
                    "The broker does not support consumer to filter message by {}",
                    sub.expression_type
                ),
            ));
        }
        codes_of(sub)
    };
    if h.sys_flag & flag::COMMIT_OFFSET != 0 {
        s.offsets
            .commit(group, &h.topic, h.queue_id, h.commit_offset);
    }
    let max_msgs = (h.max_msg_nums.max(1) as usize).min(max_count.max(1));
    let offset = h.queue_offset.max(0) as u64;
    // Each read holds a turn of the connection's pull answers; the answer's turn is kept
    // until it is queued (see PULL_ANSWERS_PER_CONNECTION).
    let read = |codes: Option<Vec<i64>>| {
        let topic = h.topic.clone();
        let queue_id = h.queue_id;
        async move {
            let Some(answer_turn) = s.answer_turn(ctx).await else {
                return Err(ProcessorError::new("the connection closed"));
            };
            let _turn = s.store_turn(&ctx.connection).await;
            s.store
                .run(move |st| {
                    st.get_message(
                        &topic,
                        queue_id,
                        offset,
                        max_msgs,
                        max_bytes,
                        codes.as_deref(),
                    )
                })
                .await
                .map_err(|e| ProcessorError::new(e.to_string()))?
                .map_err(|e| ProcessorError::new(e.to_string()))
                .map(|r| (r, answer_turn))
        }
    };
    let suspend = h.sys_flag & flag::SUSPEND != 0;
    let hold = hold_time(s, h.suspend_timeout_millis);
    let deadline = tokio::time::Instant::now() + hold;
    let (mut result, mut turn) = read(codes.clone()).await?;
    let not_found = |r: &GetMessage| code_of(r.status, h.queue_offset) == response::PULL_NOT_FOUND;
    if suspend && not_found(&result) && !hold.is_zero() {
        // Held: answered when the queue grows past the offset, at the deadline, or dropped
        // when the connection closes. Parked meanwhile: the pull gives its executor slot back
        // and counts only against its connection's budget (Java's PullRequestHoldService).
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
                return Ok(fail(
                    response::SYSTEM_BUSY,
                    held_pulls_refusal(over, client),
                ))
            }
        };
        ctx.park();
        // Nothing to answer yet: a held pull keeps no answer turn while it waits.
        drop(turn);
        let notify = s.notifier.listen(&h.topic, h.queue_id);
        loop {
            let arrived = notify.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let closed = s.notifier.closed();
            tokio::pin!(closed);
            closed.as_mut().enable();
            let (again, again_turn) = read(codes.clone()).await?;
            result = again;
            if !not_found(&result) || s.notifier.is_closing() {
                turn = again_turn;
                break;
            }
            drop(again_turn);
            let waited = tokio::select! {
                _ = &mut arrived => Wake::Arrived,
                _ = &mut closed => Wake::Stop,
                _ = tokio::time::sleep_until(deadline) => Wake::Stop,
                _ = ctx.connection.closed() => Wake::Gone,
            };
            match waited {
                Wake::Arrived => {}
                Wake::Stop => {
                    (result, turn) = read(codes.clone()).await?;
                    break;
                }
                // Nobody to answer: the pull ends here, freeing what it held.
                Wake::Gone => {
                    return Ok(answer(
                        s,
                        &h,
                        (tc.topic_sys_flag, gc.group_sys_flag),
                        result,
                    ))
                }
            }
        }
    }
    ctx.hold_until_replied(turn);
    Ok(answer(
        s,
        &h,
        (tc.topic_sys_flag, gc.group_sys_flag),
        result,
    ))
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
