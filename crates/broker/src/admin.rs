//! Queries and admin requests (spec §2.5, §2.9): what mqadmin and the dashboards ask. Codes
//! this broker does not implement get Java's REQUEST_CODE_NOT_SUPPORTED answer.

use crate::clients::MessageQueue;
use crate::groups::GroupConfig;
use crate::reply::{fail, ok, ok_with_header, required, required_num};
use crate::topics::{self, TopicConfig, TopicManager};
use crate::BrokerState;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ProcessorError, RequestContext};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Everything not handled by the send, pull and client processors.
pub async fn admin(
    s: &Arc<BrokerState>,
    _ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    Ok(match req.code {
        rc::VIEW_MESSAGE_BY_ID => view_message(s, req).await?,
        rc::QUERY_MESSAGE => query_message(s, req).await?,
        rc::UPDATE_AND_CREATE_TOPIC => update_topic(s, req).await?,
        rc::DELETE_TOPIC_IN_BROKER => delete_topic(s, req).await?,
        rc::GET_ALL_TOPIC_CONFIG => {
            let (v, list) = s.topics.snapshot(6);
            let body = TopicManager::wrapper_json(&v, &list);
            ok_with_header().with_body(serde_json::to_vec(&body).unwrap_or_default())
        }
        rc::GET_TOPIC_CONFIG => {
            let topic = required(req, "topic")?;
            match s.topics.get(topic) {
                Some(tc) => ok().with_body(serde_json::to_vec(&tc).unwrap_or_default()),
                None => fail(
                    response::TOPIC_NOT_EXIST,
                    format!("No topic in this broker. topic: {topic}"),
                ),
            }
        }
        rc::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => {
            let g: GroupConfig = serde_json::from_slice(&req.body)
                .map_err(|e| ProcessorError::new(format!("bad SubscriptionGroupConfig: {e}")))?;
            if g.group_name.is_empty() {
                return Ok(fail(response::SYSTEM_ERROR, "groupName is empty"));
            }
            s.groups.update(g);
            s.persist_groups().await;
            ok()
        }
        rc::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => ok().with_body(s.groups.to_json()),
        rc::DELETE_SUBSCRIPTIONGROUP => {
            let group = required(req, "groupName")?.to_owned();
            s.groups.delete(&group);
            if req.ext("cleanOffset").is_some_and(|v| v == "true") {
                s.offsets.remove_group(&group);
            }
            s.persist_groups().await;
            ok()
        }
        rc::GET_BROKER_RUNTIME_INFO => runtime_info(s).await,
        rc::GET_CONSUMER_CONNECTION_LIST => consumer_connections(s, req)?,
        rc::GET_PRODUCER_CONNECTION_LIST => {
            let group = required(req, "producerGroup")?;
            let set: Vec<serde_json::Value> = s
                .clients
                .producer_group(group)
                .into_iter()
                .map(|c| serde_json::json!({"clientAddr": c.conn.peer(), "clientId": c.client_id, "language": c.language, "version": c.version}))
                .collect();
            if set.is_empty() {
                fail(
                    response::SYSTEM_ERROR,
                    format!("the producer group[{group}] not exist"),
                )
            } else {
                ok().with_body(
                    serde_json::to_vec(&serde_json::json!({"connectionSet": set}))
                        .unwrap_or_default(),
                )
            }
        }
        rc::GET_CONSUME_STATS => consume_stats(s, req).await?,
        rc::GET_TOPIC_STATS_INFO => topic_stats(s, req).await?,
        rc::GET_BROKER_CONFIG => {
            let c = s.config();
            let version =
                serde_json::json!({"counter": 0, "stateVersion": 0, "timestamp": s.boot_ms});
            ok_with_header()
                .with_ext("version", version.to_string())
                .with_body(c.to_properties_text())
        }
        rc::UPDATE_BROKER_CONFIG => update_config(s, req).await,
        rc::GET_ALL_CONSUMER_OFFSET => ok().with_body(s.offsets.to_json()),
        rc::INVOKE_BROKER_TO_RESET_OFFSET => reset_offset(s, req).await?,
        rc::GET_ALL_DELAY_OFFSET => ok().with_body(s.delay_offsets.to_json()),
        code => RemotingCommand::response(
            response::REQUEST_CODE_NOT_SUPPORTED,
            Some(&format!(" request type {code} not supported")),
        ),
    })
}

/// VIEW_MESSAGE_BY_ID (33): the record at a physical offset.
async fn view_message(
    s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let offset: i64 = required_num(req, "offset")?;
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
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let topic = required(req, "topic")?.to_owned();
    let key = required(req, "key")?.to_owned();
    let mut max: usize = required_num(req, "maxNum")?;
    let begin: i64 = required_num(req, "beginTimestamp")?;
    let end: i64 = required_num(req, "endTimestamp")?;
    if req.ext("_UNIQUE_KEY_QUERY") == Some("true") {
        max = s.config().default_query_max_num;
    }
    let hits = s
        .store
        .run(move |st| st.query_by_key(&topic, &key, max, begin, end))
        .await
        .map_err(ProcessorError::new)?
        .map_err(ProcessorError::new)?;
    let with_index = |r: RemotingCommand| {
        r.with_ext(
            "indexLastUpdateTimestamp",
            hits.index_last_update_timestamp.to_string(),
        )
        .with_ext(
            "indexLastUpdatePhyoffset",
            hits.index_last_update_phy_offset.to_string(),
        )
    };
    if hits.records.is_empty() {
        return Ok(with_index(fail(
            response::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        )));
    }
    let body: Vec<u8> = hits
        .records
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect();
    Ok(with_index(ok()).with_body(body))
}

/// UPDATE_AND_CREATE_TOPIC (17).
async fn update_topic(
    s: &Arc<BrokerState>,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let topic = required(req, "topic")?.to_owned();
    if let Err(remark) = topics::validate_topic(&topic) {
        return Ok(fail(response::INVALID_PARAMETER, remark));
    }
    if s.topics.is_system(&topic) && s.config().validate_system_topic_when_update_topic {
        return Ok(fail(
            response::INVALID_PARAMETER,
            format!("The topic[{topic}] is conflict with system topic."),
        ));
    }
    let filter = req
        .ext("topicFilterType")
        .unwrap_or("SINGLE_TAG")
        .to_owned();
    if filter != "SINGLE_TAG" && filter != "MULTI_TAG" {
        return Ok(fail(
            response::SYSTEM_ERROR,
            format!("topicFilterType {filter} is not SINGLE_TAG or MULTI_TAG"),
        ));
    }
    let mut tc = TopicConfig {
        topic_name: topic.clone(),
        read_queue_nums: required_num(req, "readQueueNums")?,
        write_queue_nums: required_num(req, "writeQueueNums")?,
        perm: required_num(req, "perm")?,
        topic_filter_type: filter,
        topic_sys_flag: req
            .ext("topicSysFlag")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        order: req.ext("order").is_some_and(|v| v == "true"),
        attributes: s
            .topics
            .get(&topic)
            .map(|t| t.attributes)
            .unwrap_or_default(),
    };
    if let Some(attrs) = req.ext("attributes").filter(|a| !a.is_empty()) {
        for item in attrs.split(',') {
            let item = item.trim();
            if let Some(k) = item.strip_prefix('-') {
                tc.attributes.remove(k);
            } else if let Some((k, v)) = item.trim_start_matches('+').split_once('=') {
                if k == "message.type" && v == "MIXED" {
                    return Ok(fail(
                        response::INVALID_PARAMETER,
                        "MIXED message type is not supported.",
                    ));
                }
                tc.attributes.insert(k.to_owned(), v.to_owned());
            } else {
                return Ok(fail(
                    response::SYSTEM_ERROR,
                    format!("attributes format error: {attrs}"),
                ));
            }
        }
    }
    if tc.read_queue_nums <= 0
        || tc.write_queue_nums <= 0
        || tc.read_queue_nums > 1024
        || tc.write_queue_nums > 1024
    {
        return Ok(fail(
            response::INVALID_PARAMETER,
            "queue nums must be within 1..1024",
        ));
    }
    let name = tc.topic_name.clone();
    if s.topics.update(tc) {
        s.topic_changed(&name).await;
    }
    // Java never resets the remark of this success.
    Ok(RemotingCommand::response(
        response::SUCCESS,
        Some("not set any response code"),
    ))
}

/// DELETE_TOPIC_IN_BROKER (215).
async fn delete_topic(
    s: &Arc<BrokerState>,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let topic = required(req, "topic")?.to_owned();
    if let Err(remark) = topics::validate_topic(&topic) {
        return Ok(fail(response::INVALID_PARAMETER, remark));
    }
    if s.topics.is_system(&topic) {
        return Ok(fail(
            response::INVALID_PARAMETER,
            format!("The topic[{topic}] is conflict with system topic."),
        ));
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
    Ok(ok())
}

/// Java's `UtilAll.humanReadableByteCount(bytes, false)`: `12.35 GiB`.
fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let exp = ((bytes as f64).ln() / 1024f64.ln()) as i32;
    let unit = ["K", "M", "G", "T", "P", "E"][(exp as usize - 1).min(5)];
    format!("{:.2} {unit}iB", bytes as f64 / 1024f64.powi(exp))
}

/// `[ D days, H hours, M minutes, S seconds ]`.
fn runtime_text(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    format!(
        "[ {} days, {} hours, {} minutes, {} seconds ]",
        secs / 86400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// GET_BROKER_RUNTIME_INFO (28): the keys mqadmin clusterList and brokerStatus read.
async fn runtime_info(s: &BrokerState) -> RemotingCommand {
    let root = s.config().store_root();
    let ((log_start, log_end), write_failure) = s
        .store
        .run(|st| (st.log_range(), st.write_failure().map(str::to_owned)))
        .await
        .unwrap_or(((0, 0), Some("the store is shut down".into())));
    let disk = rmq_store::store::disk_used_ratio(&root).unwrap_or(-1.0);
    let capacity = match rmq_store::store::disk_space(&root) {
        Ok((total, free)) => format!(
            "Total : {}, Free : {}.",
            human_bytes(total),
            human_bytes(free)
        ),
        Err(_) => "Total : -1, Free : -1.".into(),
    };
    let (put_tps, get_tps) = s.stats.tps();
    let put_total = s.stats.put_messages.load(Ordering::Relaxed);
    let get_total = s.stats.got_messages.load(Ordering::Relaxed);
    let put_bytes = s.stats.put_bytes.load(Ordering::Relaxed);
    let now = crate::now_ms();
    let mut t: Vec<(String, String)> = vec![
        ("bootTimestamp".into(), s.boot_ms.to_string()),
        ("runtime".into(), runtime_text(now - s.boot_ms)),
        ("brokerActive".into(), "true".into()),
        ("brokerVersionDesc".into(), "V5_3_3".into()),
        (
            "brokerVersion".into(),
            rmq_protocol::MqVersion::CURRENT.to_string(),
        ),
        ("putTps".into(), put_tps),
        ("getTransferredTps".into(), get_tps.clone()),
        ("getTotalTps".into(), get_tps.clone()),
        ("getFoundTps".into(), get_tps),
        ("getMissTps".into(), "0.0 0.0 0.0".into()),
        ("putMessageTimesTotal".into(), put_total.to_string()),
        ("putMessageSizeTotal".into(), put_bytes.to_string()),
        (
            "putMessageFailedTimes".into(),
            s.stats.put_failures.load(Ordering::Relaxed).to_string(),
        ),
        (
            "putMessageAverageSize".into(),
            format!("{:.1}", put_bytes as f64 / put_total.max(1) as f64),
        ),
        (
            "putMessageEntireTimeMax".into(),
            (s.stats.put_max_micros.load(Ordering::Relaxed) / 1000).to_string(),
        ),
        ("getMessageEntireTimeMax".into(), "0".into()),
        ("msgPutTotalTodayNow".into(), put_total.to_string()),
        ("msgGetTotalTodayNow".into(), get_total.to_string()),
        ("msgPutTotalTodayMorning".into(), "0".into()),
        ("msgGetTotalTodayMorning".into(), "0".into()),
        ("msgPutTotalYesterdayMorning".into(), "0".into()),
        ("msgGetTotalYesterdayMorning".into(), "0".into()),
        ("commitLogDiskRatio".into(), format!("{disk:.2}")),
        (
            format!("commitLogDiskRatio_{}", root.join("commitlog").display()),
            format!("{disk:.2}"),
        ),
        ("consumeQueueDiskRatio".into(), format!("{disk:.2}")),
        // rmq's own: a failed fsync makes the store refuse writes until a restart.
        (
            "storeWritable".into(),
            write_failure.is_none().to_string(),
        ),
        (
            "storeWriteFailure".into(),
            write_failure.unwrap_or_default(),
        ),
        ("commitLogMinOffset".into(), log_start.to_string()),
        ("commitLogMaxOffset".into(), log_end.to_string()),
        ("dispatchBehindBytes".into(), "0".into()),
        ("dispatchMaxBuffer".into(), "0".into()),
        ("putMessageDistributeTime".into(), "[<=0ms]:0 [0~10ms]:0 [10~50ms]:0 [50~100ms]:0 [100~200ms]:0 [200~500ms]:0 [500ms~1s]:0 [1~2s]:0 [2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:0 [10s~]:0 ".into()),
        ("putLatency99".into(), "0.0".into()),
        ("putLatency999".into(), "0.0".into()),
        ("commitLogDirCapacity".into(), capacity),
        ("pageCacheLockTimeMills".into(), "0".into()),
        ("earliestMessageTimeStamp".into(), s.boot_ms.to_string()),
        (
            "startAcceptSendRequestTimeStamp".into(),
            s.config().start_accept_send_request_time_stamp.to_string(),
        ),
        (
            "remainTransientStoreBufferNumbs".into(),
            i32::MAX.to_string(),
        ),
        ("remainHowManyDataToFlush".into(), "0 B".into()),
        ("timerReadBehind".into(), "0".into()),
        ("timerOffsetBehind".into(), "0".into()),
        ("timerCongestNum".into(), "0".into()),
        ("timerEnqueueTps".into(), "0.0".into()),
        ("timerDequeueTps".into(), "0.0".into()),
    ];
    for key in ["send", "pull", "litePull", "query", "ack"] {
        t.push((format!("{key}ThreadPoolQueueSize"), "0".into()));
        t.push((format!("{key}ThreadPoolQueueCapacity"), "10000".into()));
        t.push((format!("{key}ThreadPoolQueueHeadWaitTimeMills"), "0".into()));
    }
    t.push(("EndTransactionQueueSize".into(), "0".into()));
    t.push((
        "EndTransactionThreadPoolQueueCapacity".into(),
        "100000".into(),
    ));
    // One trip to the store thread for every level.
    let levels = s.delay_offsets.all();
    let rows = s
        .store
        .run(move |st| {
            levels
                .into_iter()
                .map(|(level, offset)| {
                    (
                        level,
                        offset,
                        st.max_offset(rmq_store::store::SCHEDULE_TOPIC, level - 1),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    for (level, offset, max) in rows {
        t.push((
            format!("scheduleMessageOffset_{level}"),
            format!("{offset},{max}"),
        ));
    }
    let table: serde_json::Map<String, serde_json::Value> = t
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    ok().with_body(serde_json::to_vec(&serde_json::json!({ "table": table })).unwrap_or_default())
}

/// GET_CONSUMER_CONNECTION_LIST (203).
fn consumer_connections(
    s: &BrokerState,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let group = required(req, "consumerGroup")?;
    let Some(g) = s.clients.consumer_group(group) else {
        return Ok(fail(
            response::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{group}] not online"),
        ));
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
    Ok(ok().with_body(serde_json::to_vec(&body).unwrap_or_default()))
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
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let group = required(req, "consumerGroup")?.to_owned();
    let broker = s.config().broker_name.clone();
    let mut topics: Vec<String> = if let Some(list) = req.ext("topicList").filter(|l| !l.is_empty())
    {
        list.split(';').map(str::to_owned).collect()
    } else if let Some(t) = req.ext("topic").filter(|t| !t.is_empty()) {
        vec![t.to_owned()]
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
        // One trip to the store thread per topic: max offsets and last consumed store times.
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
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let topic = required(req, "topic")?.to_owned();
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
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let topic = required(req, "topic")?.to_owned();
    let group = required(req, "group")?.to_owned();
    let timestamp: i64 = required_num(req, "timestamp")?;
    let force = req.ext("isForce").is_none_or(|f| f == "true");
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
            let cmd = RemotingCommand::request(rc::RESET_CONSUMER_CLIENT_OFFSET)
                .with_ext("topic", topic.clone())
                .with_ext("group", group.clone())
                .with_ext("timestamp", timestamp.to_string())
                .with_ext("isForce", force.to_string())
                .with_body(table.clone());
            let _ = ch
                .conn
                .invoke_oneway(cmd, std::time::Duration::from_millis(100))
                .await;
        }
    }
    Ok(ok().with_body(table))
}
