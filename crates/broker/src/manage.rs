//! Client management and offsets (spec §2.4, §2.6, §2.7): heartbeats, group membership and
//! its notifications, consumer offsets, queue offset queries, orderly locks.

use crate::clients::ClientChannel;
use crate::reply::{fail, header, ok, ok_header, ok_with_header};
use crate::topics::{PERM_READ, PERM_WRITE, RETRY_PREFIX};
use crate::BrokerState;
use rmq_model::group::{ConsumerIdList, LockBatchBody, LockedQueues};
use rmq_model::heartbeat::HeartbeatData;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::client::{
    GetConsumerListByGroupRequestHeader, HeartbeatResponseHeader, UnregisterClientRequestHeader,
};
use rmq_protocol::headers::offset::{
    GetEarliestMsgStoretimeResponseHeader, GetMinOffsetRequestHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext};
use std::sync::Arc;
use std::time::Instant;

/// HEART_BEAT (34).
pub async fn heartbeat(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let hb = HeartbeatData::decode(&req.body).map_err(ProcessorError::new)?;
    let groups = hb.consumer_data_set.len() + hb.producer_data_set.len();
    let subscriptions = hb
        .consumer_data_set
        .iter()
        .map(|d| d.subscription_data_set.len())
        .sum();
    if let Err(remark) = s.admit_heartbeat(&ctx.connection, groups, subscriptions) {
        return Ok(fail(response::SYSTEM_BUSY, remark));
    }
    let channel = ClientChannel {
        client_id: hb.client_id.clone(),
        language: req.language.name().unwrap_or("OTHER").to_owned(),
        version: req.version,
        last_update: Instant::now(),
        conn: ctx.connection.clone(),
    };
    let mut sub_change = hb.heartbeat_fingerprint == 0;
    for data in &hb.consumer_data_set {
        let group = &data.group_name;
        if hb.heartbeat_fingerprint != 0
            && s.clients.fingerprint(group) != Some(hb.heartbeat_fingerprint)
        {
            sub_change = true;
        }
        let found = match s.group_for(&ctx.connection, group) {
            Ok(found) => found,
            Err(remark) => return Ok(fail(response::SYSTEM_BUSY, remark)),
        };
        let Some((gc, created)) = found else {
            continue;
        };
        if created {
            s.persist_groups().await;
        }
        let retry = format!("{RETRY_PREFIX}{group}");
        let (_, created) =
            s.topics
                .get_or_create(&retry, gc.retry_queue_nums.max(1), PERM_READ | PERM_WRITE);
        if created {
            s.topic_changed(&retry).await;
        }
        let changed = s.clients.register_consumer(
            data,
            channel.clone(),
            hb.heartbeat_fingerprint,
            hb.without_sub,
        );
        if changed {
            tracing::info!(group, client = hb.client_id, "consumer group changed");
            s.notify_consumer_ids_changed(group);
        }
    }
    for p in &hb.producer_data_set {
        s.clients.register_producer(&p.group_name, channel.clone());
    }
    let mut r = ok();
    r.set_header(&HeartbeatResponseHeader {
        is_support_heart_beat_v2: true,
        is_sub_change: sub_change,
    });
    Ok(r)
}

/// UNREGISTER_CLIENT (35): this connection leaves the named groups.
pub fn unregister_client(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: UnregisterClientRequestHeader = header(req)?;
    let id = ctx.connection.id();
    if let Some(g) = h.producer_group.filter(|g| !g.is_empty()) {
        s.clients.unregister_producer(&g, id);
    }
    if let Some(g) = h.consumer_group.filter(|g| !g.is_empty()) {
        if s.clients.unregister_consumer(&g, id) {
            s.notify_consumer_ids_changed(&g);
        }
    }
    Ok(ok_with_header())
}

/// GET_CONSUMER_LIST_BY_GROUP (38).
pub fn consumer_list(
    s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: GetConsumerListByGroupRequestHeader = header(req)?;
    let group = h.consumer_group;
    let ids = s.clients.consumer_ids(&group);
    if ids.is_empty() {
        return Ok(fail(
            response::SYSTEM_ERROR,
            format!("no consumer for this group, {group}"),
        ));
    }
    let body = ConsumerIdList {
        consumer_id_list: ids,
    };
    Ok(ok_with_header().with_body(body.encode()))
}

/// QUERY_CONSUMER_OFFSET (14).
pub async fn query_offset(
    s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: QueryConsumerOffsetRequestHeader = header(req)?;
    let (topic, queue_id) = (h.topic, h.queue_id);
    if let Some(offset) = s.offsets.query(&h.consumer_group, &topic, queue_id) {
        return Ok(ok_header(&QueryConsumerOffsetResponseHeader { offset }));
    }
    if h.set_zero_if_not_found == Some(false) {
        let mut r = fail(
            response::QUERY_NOT_FOUND,
            "Not found, do not set to zero, maybe this group boot first",
        );
        r.ext_fields = Some(Default::default());
        return Ok(r);
    }
    // Java answers 0 when the queue still starts at 0 and its first message is in memory; a
    // fresh group then consumes from the start, as with a Java broker.
    let t = topic.clone();
    let starts_at_zero = s
        .store
        .run(move |st| st.min_offset(&t, queue_id) == 0 && st.max_offset(&t, queue_id) > 0)
        .await
        .unwrap_or(false);
    if starts_at_zero {
        return Ok(ok_header(&QueryConsumerOffsetResponseHeader { offset: 0 }));
    }
    let mut r = fail(
        response::QUERY_NOT_FOUND,
        "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
    );
    r.ext_fields = Some(Default::default());
    Ok(r)
}

/// UPDATE_CONSUMER_OFFSET (15).
pub fn update_offset(
    s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: UpdateConsumerOffsetRequestHeader = header(req)?;
    let (group, topic) = (h.consumer_group.as_str(), h.topic.as_str());
    if s.groups.get(group).is_none() {
        return Ok(fail(
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("Group {group} not exist!"),
        ));
    }
    if s.topics.get(topic).is_none() {
        return Ok(fail(
            response::TOPIC_NOT_EXIST,
            format!("Topic {topic} not exist!"),
        ));
    }
    let Some(queue_id) = h.queue_id else {
        return Ok(fail(
            response::INVALID_PARAMETER,
            format!("QueueId is null, topic is {topic}"),
        ));
    };
    let Some(offset) = h.commit_offset else {
        return Ok(fail(
            response::INVALID_PARAMETER,
            format!("Offset is null, topic is {topic}"),
        ));
    };
    s.offsets.commit(group, topic, queue_id, offset);
    Ok(ok_with_header())
}

/// GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32),
/// SEARCH_OFFSET_BY_TIMESTAMP (29).
pub async fn queue_offsets(
    s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let code = req.code;
    let (topic, queue_id, timestamp, upper) = match code {
        rc::SEARCH_OFFSET_BY_TIMESTAMP => {
            let h: SearchOffsetRequestHeader = header(req)?;
            let upper = h
                .boundary_type
                .is_some_and(|b| b.trim().eq_ignore_ascii_case("UPPER"));
            (h.topic, h.queue_id, h.timestamp, upper)
        }
        rc::GET_MAX_OFFSET => {
            // `committed` changes nothing: rmq serves committed offsets only.
            let h: rmq_protocol::headers::offset::GetMaxOffsetRequestHeader = header(req)?;
            (h.topic, h.queue_id, 0, false)
        }
        _ => {
            let h: GetMinOffsetRequestHeader = header(req)?;
            (h.topic, h.queue_id, 0, false)
        }
    };
    let value = s
        .store
        .run(move |st| -> Result<i64, String> {
            Ok(match code {
                rc::GET_MAX_OFFSET => st.max_offset(&topic, queue_id) as i64,
                rc::GET_MIN_OFFSET => st.min_offset(&topic, queue_id) as i64,
                rc::GET_EARLIEST_MSG_STORETIME => {
                    let min = st.min_offset(&topic, queue_id);
                    let t = st
                        .store_time(&topic, queue_id, min)
                        .map_err(|e| e.to_string())?;
                    t.unwrap_or(-1)
                }
                _ => search_offset(st, &topic, queue_id, timestamp, upper)? as i64,
            })
        })
        .await
        .map_err(|e| ProcessorError::new(e.to_string()))?
        .map_err(ProcessorError::new)?;
    Ok(match code {
        rc::GET_EARLIEST_MSG_STORETIME => {
            ok_header(&GetEarliestMsgStoretimeResponseHeader { timestamp: value })
        }
        // Java's answer carries an empty remark here (capture broker-java-2 232), and only here.
        rc::GET_MIN_OFFSET => ok_header(&OffsetResponseHeader { offset: value }).with_remark(""),
        _ => ok_header(&OffsetResponseHeader { offset: value }),
    })
}

/// SEARCH_OFFSET_BY_TIMESTAMP, one store job: the first entry stored at or after the
/// time, or with `upper` the last at or before it.
fn search_offset(
    st: &rmq_store::store::MessageStore,
    topic: &str,
    queue_id: i32,
    timestamp: i64,
    upper: bool,
) -> Result<u64, String> {
    let mut o = st
        .offset_by_time(topic, queue_id, timestamp)
        .map_err(|e| e.to_string())?;
    if upper {
        let max = st.max_offset(topic, queue_id);
        while o < max {
            match st
                .store_time(topic, queue_id, o)
                .map_err(|e| e.to_string())?
            {
                Some(t) if t <= timestamp => o += 1,
                _ => break,
            }
        }
        o = o.saturating_sub(1).max(st.min_offset(topic, queue_id));
    }
    Ok(o)
}

/// LOCK_BATCH_MQ (41).
pub fn lock(s: &BrokerState, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let b = LockBatchBody::decode(&req.body).map_err(ProcessorError::new)?;
    let locked = s.clients.lock(&b.consumer_group, &b.client_id, &b.mq_set);
    let body = LockedQueues {
        lock_ok_mq_set: locked,
    };
    Ok(ok().with_body(body.encode()))
}

/// UNLOCK_BATCH_MQ (42).
pub fn unlock(s: &BrokerState, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let b = LockBatchBody::decode(&req.body).map_err(ProcessorError::new)?;
    s.clients.unlock(&b.consumer_group, &b.client_id, &b.mq_set);
    Ok(ok())
}

/// CHECK_CLIENT_CONFIG (46): TAG subscriptions pass; SQL92 is not supported.
pub fn check_client_config(
    _s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let ty = v["subscriptionData"]["expressionType"]
        .as_str()
        .unwrap_or("TAG");
    if ty.eq_ignore_ascii_case("TAG") {
        Ok(ok())
    } else {
        Ok(fail(
            response::SYSTEM_ERROR,
            format!("The broker does not support consumer to filter message by {ty}"),
        ))
    }
}
