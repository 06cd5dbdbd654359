//! SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE and CONSUMER_SEND_MSG_BACK (spec §2.1,
//! §2.2): the checks in Java's order with Java's codes and remarks, the stored record as a Java
//! broker builds it (properties in its order, retry/DLQ and delay rewriting), and the answer.

use crate::reply::{fail, header, ok, refuse, Refusal, FAQ_URL};
use crate::topics::{self, TopicConfig, DLQ_PREFIX, PERM_READ, PERM_WRITE, RETRY_PREFIX};
use crate::BrokerState;
use bytes::Bytes;
use rmq_model::message::{
    decode_batch, decode_properties, encode_properties, java_hash_map_order, property,
    property_pairs,
};
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::message::{ConsumerSendMsgBackRequestHeader, SendRegionResponseHeader};
use rmq_protocol::headers::send::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext};
use rmq_store::msg_id::offset_msg_id;
use rmq_store::record::Record;
use rmq_store::service::ServiceError;
use rmq_store::store::{PutResult, StoreError, SCHEDULE_TOPIC};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// MessageSysFlag: the topic is MULTI_TAG.
const MULTI_TAGS_FLAG: i32 = 0x2;
/// MessageSysFlag transaction type bits.
const TRANSACTION_MASK: i32 = 0xC;
/// TRANSACTION_PREPARED_TYPE.
const TRANSACTION_PREPARED: i32 = 0x4;
/// TRANSACTION_ROLLBACK_TYPE.
const TRANSACTION_ROLLBACK: i32 = 0xC;
/// Requests from clients at least this new may carry maxReconsumeTimes (Java gates on
/// V3_4_9; every 4.x and 5.x client is past it).
const MAX_RECONSUME_HEADER_VERSION: i32 = rmq_protocol::MqVersion::V4_0_0;

/// The peer as a socket address (the born host of what it sends).
pub fn peer_addr(ctx: &RequestContext) -> SocketAddr {
    ctx.peer
        .trim_start_matches('/')
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// A pseudo-random number for queue choice (Java: ThreadLocalRandom); uniformity is all
/// that matters.
fn random_u32() -> u32 {
    static SEED: AtomicU32 = AtomicU32::new(0x9E37_79B9);
    let mut x = SEED.fetch_add(0x6D2B_79F5, Ordering::Relaxed);
    x = (x ^ (x >> 15)).wrapping_mul(x | 1);
    x ^= x.wrapping_add((x ^ (x >> 7)).wrapping_mul(x | 61));
    x ^ (x >> 14)
}

/// The remark of MESSAGE_ILLEGAL.
fn illegal_remark(max_body: usize) -> String {
    format!("the message is illegal, maybe msg body or properties length not matched. msg body length limit {max_body}B, msg properties length limit 32KB.")
}

/// Every send answer from the checks on carries MSG_REGION and TRACE_ON (spec §2.1.1).
fn with_region(s: &BrokerState, mut r: RemotingCommand) -> RemotingCommand {
    let c = s.config();
    r.set_header(&SendRegionResponseHeader {
        msg_region: c.region_id.clone(),
        trace_on: c.trace_on,
    });
    r
}

/// The properties a Java broker stores for a send, and what the send path reads from them.
pub struct StoredProperties {
    /// The properties string: the producer's, with MSG_REGION, TRACE_ON, CLUSTER (and a
    /// UNIQ_KEY if none) added, POP_CK removed, in HashMap order.
    pub text: String,
    /// Its UNIQ_KEY.
    pub uniq_key: Option<String>,
    /// TRAN_MSG is `true`.
    pub transaction: bool,
    /// DELAY is a level above 0.
    pub delayed: bool,
}

/// [`StoredProperties`] of a send whose producer sent `producer`: the pairs are borrowed from
/// it and the config, ordered, and written once (no map, no string per key or value).
pub fn stored_properties(s: &BrokerState, producer: &str, add_uniq: bool) -> StoredProperties {
    let c = s.config();
    let new_uniq: String;
    let mut pairs: Vec<(&str, &str)> = property_pairs(producer)
        .filter(|(k, _)| *k != "POP_CK")
        .collect();
    pairs.push(("MSG_REGION", &c.region_id));
    pairs.push(("TRACE_ON", if c.trace_on { "true" } else { "false" }));
    pairs.push(("CLUSTER", &c.broker_cluster_name));
    if add_uniq && !pairs.iter().any(|(k, _)| *k == "UNIQ_KEY") {
        new_uniq = rmq_model::msg_id::new_unique_id();
        pairs.push(("UNIQ_KEY", &new_uniq));
    }
    let pairs = java_hash_map_order(pairs);
    let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    StoredProperties {
        text: encode_properties(&pairs),
        uniq_key: get("UNIQ_KEY").map(str::to_owned),
        transaction: get("TRAN_MSG") == Some("true"),
        delayed: get("DELAY")
            .and_then(|d| d.parse::<i64>().ok())
            .is_some_and(|d| d > 0),
    }
}

fn prop<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Java's put hook for delay levels (spec §1.17): a record with DELAY > 0 goes to
/// SCHEDULE_TOPIC_XXXX queue `level - 1`, remembering its topic and queue in REAL_TOPIC and
/// REAL_QID (the properties are rebuilt in HashMap order with them).
pub fn apply_delay(s: &BrokerState, record: &mut Record) {
    let tx = record.sys_flag & TRANSACTION_MASK;
    if tx == TRANSACTION_PREPARED || tx == TRANSACTION_ROLLBACK {
        return;
    }
    // Most records have no DELAY: looked up without decoding the rest.
    let Some(level) =
        property(&record.properties, "DELAY").and_then(|d| d.trim().parse::<i64>().ok())
    else {
        return;
    };
    if level <= 0 {
        return;
    }
    let mut pairs = decode_properties(&record.properties);
    let max = s.delay_levels_ms.len() as i64;
    let level = level.min(max);
    for (k, v) in pairs.iter_mut() {
        if k == "DELAY" {
            *v = level.to_string();
        }
    }
    pairs.push(("REAL_TOPIC".into(), record.topic.clone()));
    pairs.push(("REAL_QID".into(), record.queue_id.to_string()));
    record.properties = encode_properties(&java_hash_map_order(pairs));
    record.topic = SCHEDULE_TOPIC.to_owned();
    record.queue_id = (level - 1) as i32;
}

/// Stores records (one put, contiguous), counts them and wakes held pulls of their queues.
pub async fn put_records(
    s: &BrokerState,
    records: Vec<Record>,
) -> Result<Vec<PutResult>, ServiceError> {
    let started = Instant::now();
    let keys: Vec<(String, i32, usize)> = records
        .iter()
        .map(|r| (r.topic.clone(), r.queue_id, r.body.len()))
        .collect();
    let r = s.store.put_all(records).await;
    match &r {
        Ok(puts) => {
            let micros = started.elapsed().as_micros() as u64;
            for ((topic, q, len), put) in keys.iter().zip(puts) {
                s.stats.put(*len, micros);
                s.metrics.message_in(topic, *len);
                s.notifier.arrived(topic, *q, put.tags_code);
            }
        }
        Err(_) => {
            s.stats.put_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    r
}

/// A store failure as Java answers it (spec §2.1.5).
fn put_error(s: &BrokerState, e: &ServiceError) -> RemotingCommand {
    let max = s.config().max_message_size;
    match e {
        ServiceError::Store(inner) => match &**inner {
            StoreError::Log(rmq_store::commit_log::LogError::Record(_)) => {
                fail(response::MESSAGE_ILLEGAL, illegal_remark(max))
            }
            StoreError::DiskFull(_) => fail(
                response::SERVICE_NOT_AVAILABLE,
                "service not available now. It may be caused by one of the following reasons: the broker's disk is full [CL:  0.00 CQ:  0.00 INDEX:  0.00], messages are put to the slave, message store has been shut down, etc.",
            ),
            // Java's answer when its store is not writeable.
            StoreError::FlushFailed(why) => fail(
                response::SERVICE_NOT_AVAILABLE,
                format!("message store is not writeable, so putMessage is forbidden: a flush failed ({why}); restart the broker"),
            ),
            other => {
                tracing::error!(error = %other, "put failed");
                fail(response::SYSTEM_ERROR, format!("UNKNOWN_ERROR: {other}"))
            }
        },
        ServiceError::Stopped => fail(
            response::SERVICE_NOT_AVAILABLE,
            "service not available now. It may be caused by one of the following reasons: the broker's disk is full, messages are put to the slave, message store has been shut down, etc.",
        ),
        other => fail(response::SYSTEM_ERROR, format!("UNKNOWN_ERROR: {other}")),
    }
}

/// The broker settings a send reads, taken once.
struct SendLimits {
    max_body: usize,
}

/// SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320).
pub async fn send(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: SendMessageRequestHeader = if req.code == rc::SEND_MESSAGE {
        header(req)?
    } else {
        header::<SendMessageRequestHeaderV2>(req)?.into()
    };
    Ok(match store_send(s, ctx, req, &h).await {
        Ok(answer) => with_region(s, answer),
        Err(refusal) => with_region(s, *refusal),
    })
}

/// The checks, the records and the put of one send; `Err` is a refusal.
async fn store_send(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
    h: &SendMessageRequestHeader,
) -> Result<RemotingCommand, Refusal> {
    let limits = check_send(s, &h.topic)?;
    let tc = send_topic(s, ctx, h).await?;
    let queue_nums = tc.write_queue_nums.max(tc.read_queue_nums);
    if h.queue_id >= queue_nums {
        let described = s.topics.get(&h.topic).map(|t| t.java_string());
        return Err(refuse(
            response::INVALID_PARAMETER,
            format!(
                "request queueId[{}] is illegal, {} Producer: {}",
                h.queue_id,
                described.unwrap_or_default(),
                ctx.peer
            ),
        ));
    }
    let queue_id = if h.queue_id < 0 {
        (random_u32() % tc.write_queue_nums.max(1) as u32) as i32
    } else {
        h.queue_id
    };
    let batch = h.batch == Some(true);
    let mut sys_flag = h.sys_flag;
    if tc.multi_tag && !batch {
        sys_flag |= MULTI_TAGS_FLAG;
    }
    let base = Record {
        queue_id,
        flag: h.flag,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag,
        born_timestamp: h.born_timestamp,
        born_host: peer_addr(ctx),
        store_timestamp: crate::now_ms(),
        store_host: s.store_host,
        reconsume_times: h.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        body: Bytes::new(),
        topic: h.topic.clone(),
        properties: String::new(),
    };
    // The answer's transactionId is the stored UNIQ_KEY: a batch stores every item with the
    // envelope's properties last, so the envelope's wins.
    let (records, uniq) = if batch {
        batch_records(s, req, h, base, &limits)?
    } else {
        single_record(s, ctx, req, h, base, &limits).await?
    };
    if records
        .iter()
        .any(|r| r.properties.len() > i16::MAX as usize)
    {
        return Err(refuse(
            response::MESSAGE_ILLEGAL,
            illegal_remark(limits.max_body),
        ));
    }
    Ok(match put_records(s, records).await {
        Ok(results) => send_answer(s, &results, queue_id, uniq),
        Err(e) => put_error(s, &e),
    })
}

/// The broker-wide checks before the topic is looked at (spec §2.1.1).
fn check_send(s: &BrokerState, topic: &str) -> Result<SendLimits, Refusal> {
    let (start_accept, broker_perm, limits) = {
        let c = s.config();
        (
            c.start_accept_send_request_time_stamp,
            c.broker_permission,
            SendLimits {
                max_body: c.max_message_size,
            },
        )
    };
    if crate::now_ms() < start_accept {
        return Err(refuse(
            response::SYSTEM_ERROR,
            format!("broker unable to service, until {start_accept}"),
        ));
    }
    if broker_perm & PERM_WRITE == 0 && s.topics.get(topic).is_some_and(|t| t.order) {
        return Err(refuse(
            response::NO_PERMISSION,
            format!(
                "the broker[{}] sending message is forbidden",
                s.config().broker_ip1
            ),
        ));
    }
    if let Err(remark) = topics::validate_topic(topic) {
        return Err(refuse(response::INVALID_PARAMETER, remark));
    }
    if topics::is_not_allowed_send_topic(topic) {
        return Err(refuse(
            response::NO_PERMISSION,
            format!("Sending message to topic[{topic}] is forbidden."),
        ));
    }
    Ok(limits)
}

/// What a send reads of its topic's config (read in place: no copy of the config per send).
struct SendTopic {
    write_queue_nums: i32,
    read_queue_nums: i32,
    /// `topicFilterType` is MULTI_TAG.
    multi_tag: bool,
}

impl SendTopic {
    fn of(tc: &TopicConfig) -> Self {
        SendTopic {
            write_queue_nums: tc.write_queue_nums,
            read_queue_nums: tc.read_queue_nums,
            multi_tag: tc.topic_filter_type == "MULTI_TAG",
        }
    }
}

/// The topic's config, auto-created (within the client's creation budget) when the rules
/// allow (spec §2.1.2).
async fn send_topic(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    h: &SendMessageRequestHeader,
) -> Result<SendTopic, Refusal> {
    let topic = &h.topic;
    if let Some(tc) = s.topics.with(topic, SendTopic::of) {
        return Ok(tc);
    }
    let (limit, auto_create) = {
        let c = s.config();
        (
            c.max_auto_created_topics_per_minute,
            c.auto_create_topic_enable,
        )
    };
    if let Err(remark) = s
        .creations
        .take(&ctx.connection, crate::budgets::Creation::Topic, limit)
    {
        return Err(refuse(response::SYSTEM_BUSY, remark));
    }
    let created = if topic.starts_with(RETRY_PREFIX) {
        Some(s.topics.get_or_create(topic, 1, PERM_READ | PERM_WRITE))
    } else {
        s.topics.create_on_send(
            topic,
            &h.default_topic,
            h.default_topic_queue_nums,
            auto_create,
        )
    };
    let Some((tc, was_created)) = created else {
        return Err(refuse(
            response::TOPIC_NOT_EXIST,
            format!(
                "topic[{topic}] not exist, apply first please!\nSee {FAQ_URL} for further details."
            ),
        ));
    };
    if was_created {
        tracing::info!(topic, queues = tc.write_queue_nums, "topic auto-created");
        s.topic_changed(topic).await;
    }
    Ok(SendTopic::of(&tc))
}

/// The records of a SEND_BATCH_MESSAGE: every item with the envelope's properties last, and
/// the envelope's UNIQ_KEY.
fn batch_records(
    s: &BrokerState,
    req: &RemotingCommand,
    h: &SendMessageRequestHeader,
    base: Record,
    limits: &SendLimits,
) -> Result<(Vec<Record>, Option<String>), Refusal> {
    let illegal = || refuse(response::MESSAGE_ILLEGAL, illegal_remark(limits.max_body));
    if h.topic.starts_with(RETRY_PREFIX) {
        return Err(refuse(
            response::MESSAGE_ILLEGAL,
            format!("batch request does not support retry group {}", h.topic),
        ));
    }
    if req.body.len() > limits.max_body {
        return Err(refuse(response::SYSTEM_ERROR, "message body size exceeded"));
    }
    let env = stored_properties(s, h.properties.as_deref().unwrap_or(""), false);
    let envelope = env.text;
    if env.delayed || base.sys_flag & TRANSACTION_MASK != 0 {
        return Err(illegal());
    }
    let items = match decode_batch(req.body.clone()) {
        Ok(items) if !items.is_empty() => items,
        _ => return Err(illegal()),
    };
    let records = items
        .into_iter()
        .map(|item| {
            let mut props = item.properties;
            if !props.is_empty() && !props.ends_with('\u{2}') {
                props.push('\u{2}');
            }
            props.push_str(&envelope);
            Record {
                flag: item.flag,
                body: item.body,
                properties: props,
                ..base.clone()
            }
        })
        .collect::<Vec<_>>();
    Ok((records, env.uniq_key))
}

/// The record of a single send: stored properties, the %RETRY% rule and the delay hook.
async fn single_record(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
    h: &SendMessageRequestHeader,
    base: Record,
    limits: &SendLimits,
) -> Result<(Vec<Record>, Option<String>), Refusal> {
    if req.body.len() > limits.max_body {
        return Err(refuse(
            response::MESSAGE_ILLEGAL,
            illegal_remark(limits.max_body),
        ));
    }
    let stored = stored_properties(s, h.properties.as_deref().unwrap_or(""), true);
    if stored.transaction && s.config().reject_transaction_message {
        return Err(refuse(
            response::NO_PERMISSION,
            format!(
                "the broker[{}] sending transaction message is forbidden",
                s.config().broker_ip1
            ),
        ));
    }
    let uniq = stored.uniq_key;
    let mut r = Record {
        body: req.body.clone(),
        properties: stored.text,
        ..base
    };
    if h.topic.starts_with(RETRY_PREFIX) {
        if let Some(resp) = retry_or_dlq(s, &ctx.connection, h, req.version, &mut r).await {
            return Err(Box::new(resp));
        }
    }
    apply_delay(s, &mut r);
    Ok((vec![r], uniq))
}

/// SUCCESS with the SendMessageResponseHeader of what was stored.
fn send_answer(
    s: &BrokerState,
    results: &[PutResult],
    queue_id: i32,
    uniq: Option<String>,
) -> RemotingCommand {
    let msg_id = match results {
        [one] => offset_msg_id(s.store_host, one.physical_offset as i64),
        _ => results
            .iter()
            .map(|p| offset_msg_id(s.store_host, p.physical_offset as i64))
            .collect::<Vec<_>>()
            .join(","),
    };
    let header = SendMessageResponseHeader {
        msg_id,
        queue_id,
        queue_offset: results.first().map_or(0, |p| p.queue_offset as i64),
        transaction_id: uniq,
        batch_uniq_id: None,
        recall_handle: None,
    };
    let mut resp = ok();
    resp.set_header(&header);
    resp
}

/// The %RETRY% rule of a single send (spec §2.1.3): past maxReconsumeTimes, or while the group
/// holds an orderly lock, the message goes to %DLQ%group. `Some(answer)` refuses the send.
async fn retry_or_dlq(
    s: &Arc<BrokerState>,
    conn: &rmq_remoting::ConnectionHandle,
    h: &SendMessageRequestHeader,
    version: i32,
    r: &mut Record,
) -> Option<RemotingCommand> {
    let group = h.topic[RETRY_PREFIX.len()..].to_owned();
    let found = match s.group_for(conn, &group) {
        Ok(found) => found,
        Err(remark) => return Some(fail(response::SYSTEM_BUSY, remark)),
    };
    let Some((gc, created)) = found else {
        return Some(fail(
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group not exist, {group} \nSee {FAQ_URL} for further details."),
        ));
    };
    if created {
        s.persist_groups().await;
    }
    let mut max = gc.retry_max_times;
    if version >= MAX_RECONSUME_HEADER_VERSION {
        if let Some(l) = h.max_reconsume_times {
            max = l;
        }
    }
    let times = h.reconsume_times.unwrap_or(0);
    if times > max || s.clients.has_live_lock(&group) {
        let dlq = format!("{DLQ_PREFIX}{group}");
        let (_, created) = s.topics.get_or_create(&dlq, 1, PERM_READ | PERM_WRITE);
        if created {
            s.topic_changed(&dlq).await;
        }
        let mut pairs = decode_properties(&r.properties);
        pairs.push(("DELAY".into(), "-1".into()));
        r.properties = encode_properties(&java_hash_map_order(pairs));
        r.topic = dlq;
        r.queue_id = 0;
    }
    None
}

/// CONSUMER_SEND_MSG_BACK (36): a consumer gives a message back for redelivery (spec §2.2).
pub async fn send_back(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: ConsumerSendMsgBackRequestHeader = header(req)?;
    Ok(match give_back(s, ctx, &h, req.version).await {
        Ok(answer) => answer,
        Err(refusal) => *refusal,
    })
}

/// The steps of a give-back in Java's order; `Err` is a refusal.
async fn give_back(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    h: &ConsumerSendMsgBackRequestHeader,
    version: i32,
) -> Result<RemotingCommand, Refusal> {
    let gc = send_back_group(s, ctx, &h.group).await?;
    if gc.retry_queue_nums <= 0 {
        return Ok(ok());
    }
    let retry_topic = format!("{RETRY_PREFIX}{}", h.group);
    let (rtc, created) =
        s.topics
            .get_or_create(&retry_topic, gc.retry_queue_nums, PERM_READ | PERM_WRITE);
    if created {
        s.topic_changed(&retry_topic).await;
    }
    if rtc.perm & PERM_WRITE == 0 {
        return Err(refuse(
            response::NO_PERMISSION,
            format!("the topic[{retry_topic}] sending message is forbidden"),
        ));
    }
    let Some(orig) = original_record(s, h.offset).await else {
        return Err(refuse(
            response::SYSTEM_ERROR,
            format!("look message by offset failed, {}", h.offset),
        ));
    };
    let mut max = gc.retry_max_times;
    if version >= MAX_RECONSUME_HEADER_VERSION {
        if let Some(m) = h.max_reconsume_times {
            max = m;
        }
    }
    let (topic, queue_id, delay) = if orig.reconsume_times >= max || h.delay_level < 0 {
        let dlq = format!("{DLQ_PREFIX}{}", h.group);
        let (_, created) = s.topics.get_or_create(&dlq, 1, PERM_READ | PERM_WRITE);
        if created {
            s.topic_changed(&dlq).await;
        }
        (dlq, 0, 0)
    } else {
        let level = match h.delay_level {
            0 => 3 + orig.reconsume_times,
            l => l,
        };
        let queue = (random_u32() % gc.retry_queue_nums.max(1) as u32) as i32;
        (retry_topic, queue, level)
    };
    let mut r = redelivery(s, orig, topic, queue_id, delay);
    apply_delay(s, &mut r);
    Ok(match put_records(s, vec![r]).await {
        Ok(_) => ok(),
        Err(e) => fail(response::SYSTEM_ERROR, format!("{e}")),
    })
}

/// The give-back's group (auto-created when allowed) once the broker takes writes.
async fn send_back_group(
    s: &Arc<BrokerState>,
    ctx: &RequestContext,
    group: &str,
) -> Result<crate::groups::GroupConfig, Refusal> {
    let (broker_ip, broker_perm) = {
        let c = s.config();
        (c.broker_ip1.clone(), c.broker_permission)
    };
    let found = s
        .group_for(&ctx.connection, group)
        .map_err(|remark| refuse(response::SYSTEM_BUSY, remark))?;
    let Some((gc, created)) = found else {
        return Err(refuse(
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group not exist, {group} \nSee {FAQ_URL} for further details."),
        ));
    };
    if created {
        s.persist_groups().await;
    }
    if broker_perm & PERM_WRITE == 0 {
        return Err(refuse(
            response::NO_PERMISSION,
            format!("the broker[{broker_ip}] sending message is forbidden"),
        ));
    }
    Ok(gc)
}

/// The stored message at a commit-log offset, if one is there.
async fn original_record(s: &BrokerState, offset: i64) -> Option<Record> {
    s.store
        .run(move |st| st.record_at(offset.max(0) as u64))
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten()
        .and_then(|raw| match rmq_store::record::decode(&raw, false) {
            Ok(rmq_store::record::Found::Message(r, _)) => Some(*r),
            _ => None,
        })
}

/// The new record of a give-back: the original's body, flags and born fields, one more
/// reconsume, RETRY_TOPIC / WAIT / DELAY / ORIGIN_MESSAGE_ID set as Java does.
fn redelivery(s: &BrokerState, orig: Record, topic: String, queue_id: i32, delay: i32) -> Record {
    let mut pairs = decode_properties(&orig.properties);
    if prop(&pairs, "RETRY_TOPIC").is_none() {
        pairs.push(("RETRY_TOPIC".into(), orig.topic.clone()));
    }
    pairs.push(("WAIT".into(), "false".into()));
    pairs.push(("DELAY".into(), delay.to_string()));
    if prop(&pairs, "ORIGIN_MESSAGE_ID").is_none() {
        pairs.push((
            "ORIGIN_MESSAGE_ID".into(),
            offset_msg_id(orig.store_host, orig.physical_offset),
        ));
    }
    // Keep the first position of a repeated key, its last value (Java's map put).
    Record {
        queue_id,
        flag: orig.flag,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: orig.sys_flag,
        born_timestamp: orig.born_timestamp,
        born_host: orig.born_host,
        store_timestamp: crate::now_ms(),
        store_host: s.store_host,
        reconsume_times: orig.reconsume_times + 1,
        prepared_transaction_offset: 0,
        body: orig.body,
        topic,
        properties: encode_properties(&java_hash_map_order(pairs)),
    }
}
