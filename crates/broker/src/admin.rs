//! Queries and admin requests (spec §2.5, §2.9): what mqadmin and the dashboards ask. Codes
//! this broker does not implement get Java's REQUEST_CODE_NOT_SUPPORTED answer.

mod runtime;

use crate::clients::MessageQueue;
use crate::groups::GroupConfig;
use crate::reply::{fail, header, ok, ok_header, ok_with_header, refuse, Refusal};
use crate::topics::{self, TopicConfig, TopicManager};
use crate::BrokerState;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::admin::{
    CreateTopicRequestHeader, DeleteSubscriptionGroupRequestHeader, DeleteTopicRequestHeader,
    GetBrokerConfigResponseHeader, GetConsumeStatsRequestHeader,
    GetConsumerConnectionListRequestHeader, GetProducerConnectionListRequestHeader,
    GetTopicConfigRequestHeader, GetTopicStatsInfoRequestHeader, ResetOffsetRequestHeader,
};
use rmq_protocol::headers::message::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext};
use std::sync::Arc;

/// Everything not handled by the send, pull and client processors.
pub async fn admin(
    s: &Arc<BrokerState>,
    _ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    Ok(match req.code {
        rc::VIEW_MESSAGE_BY_ID => view_message(s, header(req)?).await?,
        rc::QUERY_MESSAGE => query_message(s, header(req)?).await?,
        rc::UPDATE_AND_CREATE_TOPIC => update_topic(s, header(req)?).await,
        rc::DELETE_TOPIC_IN_BROKER => delete_topic(s, header(req)?).await,
        rc::GET_ALL_TOPIC_CONFIG => {
            let (v, list) = s.topics.snapshot(6);
            let body = TopicManager::wrapper_json(&v, &list);
            ok_with_header().with_body(serde_json::to_vec(&body).unwrap_or_default())
        }
        rc::GET_TOPIC_CONFIG => topic_config(s, header(req)?),
        rc::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => update_group(s, req).await?,
        rc::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => ok().with_body(s.groups.to_json()),
        rc::DELETE_SUBSCRIPTIONGROUP => delete_group(s, header(req)?).await,
        rc::GET_BROKER_RUNTIME_INFO => runtime::runtime_info(s).await,
        rc::GET_CONSUMER_CONNECTION_LIST => consumer_connections(s, header(req)?),
        rc::GET_PRODUCER_CONNECTION_LIST => producer_connections(s, header(req)?),
        rc::GET_CONSUME_STATS => consume_stats(s, header(req)?).await?,
        rc::GET_TOPIC_STATS_INFO => topic_stats(s, header(req)?).await?,
        rc::GET_BROKER_CONFIG => {
            let c = s.config();
            let version =
                serde_json::json!({"counter": 0, "stateVersion": 0, "timestamp": s.boot_ms});
            ok_header(&GetBrokerConfigResponseHeader {
                version: version.to_string(),
            })
            .with_body(c.to_properties_text())
        }
        rc::UPDATE_BROKER_CONFIG => update_config(s, req).await,
        rc::GET_ALL_CONSUMER_OFFSET => ok().with_body(s.offsets.to_json()),
        rc::INVOKE_BROKER_TO_RESET_OFFSET => reset_offset(s, header(req)?).await?,
        rc::GET_ALL_DELAY_OFFSET => ok().with_body(s.delay_offsets.to_json()),
        code => RemotingCommand::response(
            response::REQUEST_CODE_NOT_SUPPORTED,
            Some(&format!(" request type {code} not supported")),
        ),
    })
}

/// GET_TOPIC_CONFIG (351): one topic's config.
fn topic_config(s: &BrokerState, h: GetTopicConfigRequestHeader) -> RemotingCommand {
    match s.topics.get(&h.topic) {
        Some(tc) => ok().with_body(serde_json::to_vec(&tc).unwrap_or_default()),
        None => fail(
            response::TOPIC_NOT_EXIST,
            format!("No topic in this broker. topic: {}", h.topic),
        ),
    }
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): the body is a SubscriptionGroupConfig.
async fn update_group(
    s: &Arc<BrokerState>,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let g: GroupConfig = serde_json::from_slice(&req.body)
        .map_err(|e| ProcessorError::new(format!("bad SubscriptionGroupConfig: {e}")))?;
    if g.group_name.is_empty() {
        return Ok(fail(response::SYSTEM_ERROR, "groupName is empty"));
    }
    s.groups.update(g);
    s.persist_groups().await;
    Ok(ok())
}

/// DELETE_SUBSCRIPTIONGROUP (207), with the group's offsets when `cleanOffset`.
async fn delete_group(
    s: &Arc<BrokerState>,
    h: DeleteSubscriptionGroupRequestHeader,
) -> RemotingCommand {
    s.groups.delete(&h.group_name);
    if h.clean_offset == Some(true) {
        s.offsets.remove_group(&h.group_name);
    }
    s.persist_groups().await;
    ok()
}

/// GET_PRODUCER_CONNECTION_LIST (204).
fn producer_connections(
    s: &BrokerState,
    h: GetProducerConnectionListRequestHeader,
) -> RemotingCommand {
    let group = h.producer_group;
    let set: Vec<serde_json::Value> = s
        .clients
        .producer_group(&group)
        .into_iter()
        .map(|c| serde_json::json!({"clientAddr": c.conn.peer(), "clientId": c.client_id, "language": c.language, "version": c.version}))
        .collect();
    if set.is_empty() {
        return fail(
            response::SYSTEM_ERROR,
            format!("the producer group[{group}] not exist"),
        );
    }
    ok().with_body(
        serde_json::to_vec(&serde_json::json!({"connectionSet": set})).unwrap_or_default(),
    )
}

/// VIEW_MESSAGE_BY_ID (33): the record at a physical offset.
async fn view_message(
    s: &BrokerState,
    h: ViewMessageRequestHeader,
) -> Result<RemotingCommand, ProcessorError> {
    let offset = h.offset;
    let found = if offset < 0 {
        None
    } else {
        s.store
            .run(move |st| st.record_at(offset as u64))
            .await
            .map_err(ProcessorError::new)?
            .ok()
            .flatten()
    };
    Ok(match found {
        Some(raw) => ok().with_body(raw),
        None => fail(
            response::SYSTEM_ERROR,
            format!("can not find message by the offset, {offset}"),
        ),
    })
}

/// QUERY_MESSAGE (12): records by key or unique key through the index.
async fn query_message(
    s: &BrokerState,
    h: QueryMessageRequestHeader,
) -> Result<RemotingCommand, ProcessorError> {
    let QueryMessageRequestHeader {
        topic,
        key,
        max_num,
        begin_timestamp: begin,
        end_timestamp: end,
        unique_key_query,
    } = h;
    let max = if unique_key_query == Some(true) {
        s.config().default_query_max_num
    } else {
        max_num.max(0) as usize
    };
    let hits = s
        .store
        .run(move |st| st.query_by_key(&topic, &key, max, begin, end))
        .await
        .map_err(ProcessorError::new)?
        .map_err(ProcessorError::new)?;
    let index = QueryMessageResponseHeader {
        index_last_update_timestamp: hits.index_last_update_timestamp,
        index_last_update_phyoffset: hits.index_last_update_phy_offset,
    };
    if hits.records.is_empty() {
        let mut r = fail(
            response::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        );
        r.set_header(&index);
        return Ok(r);
    }
    let body: Vec<u8> = hits
        .records
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect();
    let mut r = ok().with_body(body);
    r.set_header(&index);
    Ok(r)
}

/// UPDATE_AND_CREATE_TOPIC (17).
async fn update_topic(s: &Arc<BrokerState>, h: CreateTopicRequestHeader) -> RemotingCommand {
    let topic = h.topic.clone();
    if let Err(remark) = topics::validate_topic(&topic) {
        return fail(response::INVALID_PARAMETER, remark);
    }
    if s.topics.is_system(&topic) && s.config().validate_system_topic_when_update_topic {
        return fail(
            response::INVALID_PARAMETER,
            format!("The topic[{topic}] is conflict with system topic."),
        );
    }
    let filter = h
        .topic_filter_type
        .unwrap_or_else(|| "SINGLE_TAG".to_owned());
    if filter != "SINGLE_TAG" && filter != "MULTI_TAG" {
        return fail(
            response::SYSTEM_ERROR,
            format!("topicFilterType {filter} is not SINGLE_TAG or MULTI_TAG"),
        );
    }
    let mut tc = TopicConfig {
        topic_name: topic.clone(),
        read_queue_nums: h.read_queue_nums,
        write_queue_nums: h.write_queue_nums,
        perm: h.perm,
        topic_filter_type: filter,
        topic_sys_flag: h.topic_sys_flag.unwrap_or(0),
        order: h.order == Some(true),
        attributes: s
            .topics
            .get(&topic)
            .map(|t| t.attributes)
            .unwrap_or_default(),
    };
    if let Some(attrs) = h.attributes.filter(|a| !a.is_empty()) {
        if let Err(refusal) = apply_attributes(&mut tc, &attrs) {
            return *refusal;
        }
    }
    if tc.read_queue_nums <= 0
        || tc.write_queue_nums <= 0
        || tc.read_queue_nums > 1024
        || tc.write_queue_nums > 1024
    {
        return fail(
            response::INVALID_PARAMETER,
            "queue nums must be within 1..1024",
        );
    }
    if s.topics.update(tc) {
        s.topic_changed(&topic).await;
    }
    // Java never resets the remark of this success.
    RemotingCommand::response(response::SUCCESS, Some("not set any response code"))
}

/// Applies `+key=value,-key` attribute changes; `Err` is the refusal.
fn apply_attributes(tc: &mut TopicConfig, attrs: &str) -> Result<(), Refusal> {
    for item in attrs.split(',') {
        let item = item.trim();
        if let Some(k) = item.strip_prefix('-') {
            tc.attributes.remove(k);
        } else if let Some((k, v)) = item.trim_start_matches('+').split_once('=') {
            if k == "message.type" && v == "MIXED" {
                return Err(refuse(
                    response::INVALID_PARAMETER,
                    "MIXED message type is not supported.",
                ));
            }
            tc.attributes.insert(k.to_owned(), v.to_owned());
        } else {
            return Err(refuse(
                response::SYSTEM_ERROR,
                format!("attributes format error: {attrs}"),
            ));
        }
    }
    Ok(())
}

/// DELETE_TOPIC_IN_BROKER (215).
async fn delete_topic(s: &Arc<BrokerState>, h: DeleteTopicRequestHeader) -> RemotingCommand {
    let topic = h.topic;
    if let Err(remark) = topics::validate_topic(&topic) {
        return fail(response::INVALID_PARAMETER, remark);
    }
    if s.topics.is_system(&topic) {
        return fail(
            response::INVALID_PARAMETER,
            format!("The topic[{topic}] is conflict with system topic."),
        );
    }
    s.topics.delete(&topic);
    s.offsets.remove_topic(&topic);
    s.notifier.remove_topic(&topic);
    let t = topic.clone();
    match s.store.run(move |st| st.delete_topic(&t)).await {
        Ok(Err(e)) => tracing::error!(topic, error = %e, "consume queues not deleted"),
        Err(e) => tracing::error!(topic, error = %e, "consume queues not deleted"),
        Ok(Ok(_)) => {}
    }
    s.persist_topics().await;
    ok()
}

/// GET_CONSUMER_CONNECTION_LIST (203).
fn consumer_connections(
    s: &BrokerState,
    h: GetConsumerConnectionListRequestHeader,
) -> RemotingCommand {
    let group = h.consumer_group;
    let Some(g) = s.clients.consumer_group(&group) else {
        return fail(
            response::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{group}] not online"),
        );
    };
    let set: Vec<serde_json::Value> = g
        .channels
        .values()
        .map(|c| serde_json::json!({"clientAddr": c.conn.peer(), "clientId": c.client_id, "language": c.language, "version": c.version}))
        .collect();
    let body = serde_json::json!({
        "connectionSet": set,
        "consumeFromWhere": g.consume_from_where,
        "consumeType": g.consume_type,
        "messageModel": g.message_model,
        "subscriptionTable": g.subscriptions,
    });
    ok().with_body(serde_json::to_vec(&body).unwrap_or_default())
}

/// A queue of this broker.
fn mq(broker: &str, topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        broker_name: broker.to_owned(),
        queue_id,
        topic: topic.to_owned(),
    }
}

/// GET_CONSUME_STATS (208): per queue broker offset, consumer offset, pull offset.
async fn consume_stats(
    s: &BrokerState,
    h: GetConsumeStatsRequestHeader,
) -> Result<RemotingCommand, ProcessorError> {
    let group = h.consumer_group;
    let broker = s.config().broker_name.clone();
    let mut topics: Vec<String> = if let Some(list) = h.topic_list.filter(|l| !l.is_empty()) {
        list.split(';').map(str::to_owned).collect()
    } else if let Some(t) = h.topic.filter(|t| !t.is_empty()) {
        vec![t]
    } else {
        s.offsets.topics_of(&group)
    };
    if let Some(g) = s.clients.consumer_group(&group) {
        if !g.subscriptions.is_empty() {
            topics.retain(|t| g.subscriptions.contains_key(t));
        }
    }
    let mut entries = Vec::new();
    for topic in topics {
        let Some(tc) = s.topics.get(&topic) else {
            continue;
        };
        let consumed: Vec<(i32, i64)> = (0..tc.read_queue_nums)
            .map(|q| (q, s.offsets.query(&group, &topic, q).unwrap_or(-1).max(0)))
            .collect();
        // One store job per topic: max offsets and last consumed store times.
        let t = topic.clone();
        let rows = s
            .store
            .run(move |st| {
                consumed
                    .into_iter()
                    .map(|(q, consumer)| {
                        let last = if consumer > 0 {
                            st.store_time(&t, q, consumer as u64 - 1)
                                .ok()
                                .flatten()
                                .unwrap_or(0)
                        } else {
                            0
                        };
                        (q, consumer, st.max_offset(&t, q), last)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(ProcessorError::new)?;
        for (q, consumer, max, last) in rows {
            let pulled = s.offsets.pull_offset(&group, &topic, q).unwrap_or(0);
            entries.push((
                mq(&broker, &topic, q),
                format!(
                    "{{\"brokerOffset\":{max},\"consumerOffset\":{consumer},\"lastTimestamp\":{last},\"pullOffset\":{}}}",
                    consumer.max(pulled)
                ),
            ));
        }
    }
    let table = rmq_model::route::write_mq_map(entries.iter().map(|(k, v)| (k, v)));
    Ok(ok().with_body(format!("{{\"consumeTps\":0.0,\"offsetTable\":{table}}}")))
}

/// GET_TOPIC_STATS_INFO (202): per queue min/max offset and last update time.
async fn topic_stats(
    s: &BrokerState,
    h: GetTopicStatsInfoRequestHeader,
) -> Result<RemotingCommand, ProcessorError> {
    let topic = h.topic;
    let Some(tc) = s.topics.get(&topic) else {
        return Ok(fail(
            response::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist"),
        ));
    };
    let broker = s.config().broker_name.clone();
    let queues = tc.write_queue_nums.max(tc.read_queue_nums);
    let t = topic.clone();
    let rows = s
        .store
        .run(move |st| {
            (0..queues)
                .map(|q| {
                    let (min, max) = (st.min_offset(&t, q), st.max_offset(&t, q));
                    let last = if max > 0 {
                        st.store_time(&t, q, max - 1).ok().flatten().unwrap_or(0)
                    } else {
                        0
                    };
                    (q, min, max, last)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(ProcessorError::new)?;
    let entries: Vec<(MessageQueue, String)> = rows
        .into_iter()
        .map(|(q, min, max, last)| {
            (
                mq(&broker, &topic, q),
                format!(
                    "{{\"lastUpdateTimestamp\":{last},\"maxOffset\":{max},\"minOffset\":{min}}}"
                ),
            )
        })
        .collect();
    let table = rmq_model::route::write_mq_map(entries.iter().map(|(k, v)| (k, v)));
    let out = format!("{{\"offsetTable\":{table},\"topicPutTps\":0.0}}");
    Ok(ok().with_body(out))
}

/// UPDATE_BROKER_CONFIG (25): known, non-blacklisted keys applied to the live settings (those
/// read per request take effect at once; listen port, store path and the like at restart) and
/// written to the `-c` file when there is one.
async fn update_config(s: &Arc<BrokerState>, req: &RemotingCommand) -> RemotingCommand {
    if req.body.is_empty() {
        return ok();
    }
    let Ok(text) = std::str::from_utf8(&req.body) else {
        return fail(response::SYSTEM_ERROR, "string2Properties error");
    };
    let Ok(props) = rmq_config::parse_sorted(text) else {
        return fail(response::SYSTEM_ERROR, "string2Properties error");
    };
    let perm_before = s.config().broker_permission;
    let (path, text) = {
        let mut c = s.config.write().unwrap_or_else(|p| p.into_inner());
        if props.iter().any(|(k, _)| c.is_blacklisted(k)) {
            return fail(
                response::NO_PERMISSION,
                "Can not update config in black list.",
            );
        }
        let mut next = c.clone();
        for (k, v) in &props {
            if let Err(e) = next.set(k, v) {
                return fail(response::SYSTEM_ERROR, e);
            }
        }
        *c = next;
        (c.broker_config_path.clone(), c.to_properties_text())
    };
    if !path.is_empty() {
        let p = std::path::PathBuf::from(path);
        if let Some(Err(e)) = s
            .blocking(move |_| rmq_config::persist::write_atomic(&p, text.as_bytes()))
            .await
        {
            tracing::error!(error = %e, "broker config file not written");
        }
    }
    if s.config().broker_permission != perm_before {
        s.topics.bump_version();
        s.persist_topics().await;
        s.registrar.register_all(s).await;
    }
    ok()
}

/// INVOKE_BROKER_TO_RESET_OFFSET (222): a group's offsets of a topic moved to the first message
/// stored at or after `timestamp` (-1: the end), per queue, when `isForce` or when that is
/// behind the committed offset; the group's online members are told (oneway
/// RESET_CONSUMER_CLIENT_OFFSET with the new offsets) and move their pulls there. Answers the
/// offsets as Java's ResetOffsetBody (`{"offsetTable":{{mq}:offset}}`).
async fn reset_offset(
    s: &Arc<BrokerState>,
    h: ResetOffsetRequestHeader,
) -> Result<RemotingCommand, ProcessorError> {
    let (topic, group, timestamp) = (h.topic.clone(), h.group.clone(), h.timestamp);
    let force = h.is_force != Some(false);
    let Some(tc) = s.topics.get(&topic) else {
        return Ok(fail(
            response::TOPIC_NOT_EXIST,
            format!("[reset-offset] topic {topic} not exist"),
        ));
    };
    let broker = s.config().broker_name.clone();
    let t = topic.clone();
    let queues = tc.read_queue_nums;
    let targets = s
        .store
        .run(move |st| {
            (0..queues)
                .map(|q| {
                    let o = if timestamp < 0 {
                        st.max_offset(&t, q)
                    } else {
                        st.offset_by_time(&t, q, timestamp)
                            .unwrap_or_else(|_| st.min_offset(&t, q))
                    };
                    (q, o as i64)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(ProcessorError::new)?;
    let mut entries = Vec::new();
    for (q, target) in targets {
        let committed = s.offsets.query(&group, &topic, q);
        let new = if force || committed.is_none_or(|c| target < c) {
            s.offsets.commit(&group, &topic, q, target);
            target
        } else {
            committed.unwrap_or(target)
        };
        entries.push((mq(&broker, &topic, q), new.to_string()));
    }
    let table = format!(
        "{{\"offsetTable\":{}}}",
        rmq_model::route::write_mq_map(entries.iter().map(|(k, v)| (k, v)))
    );
    if let Some(g) = s.clients.consumer_group(&group) {
        for ch in g.channels.into_values() {
            let cmd = RemotingCommand::request_with_header(
                rc::RESET_CONSUMER_CLIENT_OFFSET,
                &ResetOffsetRequestHeader {
                    topic: topic.clone(),
                    group: group.clone(),
                    timestamp,
                    is_force: Some(force),
                    ..Default::default()
                },
            )
            .with_body(table.clone());
            let _ = ch
                .conn
                .invoke_oneway(cmd, std::time::Duration::from_millis(100))
                .await;
        }
    }
    Ok(ok().with_body(table))
}
