//! The broker-side admin commands (mqadmin's names, kebab-case, camelCase aliases): topics
//! (`update-topic`, `topic-status`), groups (`update-sub-group`, `delete-sub-group`,
//! `consumer-progress`, `consumer-connection`), brokers (`broker-status`, `broker-config`) and
//! messages (`query-msg`). Each asks the brokers the NameServers name, or the one given with
//! `-b`, and prints a table or, with `--json`, JSON.

use super::{print_json, Admin, Failure, Table};
use rmq_model::admin_call::{
    CreateTopic, DeleteSubscriptionGroup, GetAllConsumerOffset, GetBrokerConfig, GetConsumeStats,
    GetConsumerConnectionList, GetTopicStatsInfo, QueryMessage, ResetOffset, UpdateBrokerConfig,
    UpdateSubscriptionGroup, ViewMessageById,
};
use rmq_model::call::{GetBrokerRuntimeInfo, GetClusterInfo, GetRouteInfo};
use rmq_model::{Call, CallError};
use rmq_protocol::codes::request as rc;
use rmq_protocol::RemotingCommand;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

impl Admin {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.common.timeout.max(1))
    }

    /// Sends a typed request to a broker and decodes its answer; a refusal is a [`Failure`]
    /// naming the broker and the remark.
    pub async fn broker<C: Call + Sync>(&self, addr: &str, req: &C) -> Result<C::Output, Failure> {
        self.broker_answer(addr, req)
            .await
            .map_err(|e| self.failure(addr, C::CODE, e))
    }

    /// A typed request's outcome at a broker, for the callers that go on after a refusal.
    async fn broker_answer<C: Call + Sync>(
        &self,
        addr: &str,
        req: &C,
    ) -> Result<C::Output, CallError> {
        let resp = self
            .client
            .invoke_sync(addr, req.command(), self.timeout())
            .await?;
        C::output(resp)
    }

    /// (broker name, master address) of every broker group, or of a cluster's, or the one
    /// broker address given.
    async fn masters(
        &self,
        cluster: Option<&str>,
        broker: Option<&str>,
    ) -> Result<Vec<(String, String)>, Failure> {
        if let Some(addr) = broker {
            return Ok(vec![(addr.to_owned(), addr.to_owned())]);
        }
        let info = self.read(&GetClusterInfo).await?;
        let mut out = Vec::new();
        for (name, b) in &info.broker_addr_table {
            if let Some(c) = cluster {
                if !info
                    .cluster_addr_table
                    .get(c)
                    .is_some_and(|names| names.contains(name))
                {
                    continue;
                }
            }
            if let Some(addr) = b.broker_addrs.get(&0) {
                out.push((name.clone(), addr.clone()));
            }
        }
        if out.is_empty() {
            return Err(Failure {
                exit: super::exit::NOT_FOUND,
                message: match cluster {
                    Some(c) => format!("no master broker in cluster {c}"),
                    None => "no master broker registered".into(),
                },
            });
        }
        Ok(out)
    }

    /// (broker name, master address) of a cluster's brokers.
    pub async fn cluster_masters(&self, cluster: &str) -> Result<Vec<(String, String)>, Failure> {
        self.masters(Some(cluster), None).await
    }

    /// (broker name, master address) of the brokers serving `topic`.
    pub async fn serving_masters(&self, topic: &str) -> Result<Vec<(String, String)>, Failure> {
        self.topic_masters(topic).await
    }

    /// (broker name, master address) of the brokers serving `topic`.
    async fn topic_masters(&self, topic: &str) -> Result<Vec<(String, String)>, Failure> {
        let route = self.read(&GetRouteInfo::new(topic)).await?;
        Ok(route
            .broker_datas
            .iter()
            .filter_map(|b| {
                b.broker_addrs
                    .get(&0)
                    .map(|a| (b.broker_name.clone(), a.clone()))
            })
            .collect())
    }
}

/// A fastjson map keyed by MessageQueue objects, by (topic, queue id).
fn mq_map(body: &[u8]) -> BTreeMap<(String, i64), serde_json::Value> {
    rmq_model::route::parse_mq_map(body)
        .into_iter()
        .map(|(mq, v)| ((mq.topic, i64::from(mq.queue_id)), v))
        .collect()
}

/// A time in ms as `YYYY-MM-DD hh:mm:ss` (UTC); `-` for none.
pub fn ms_text(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let secs = ms / 1000;
    let days = secs.div_euclid(86_400);
    let (y, m, d) = rmq_model::msg_id::civil_from_days(days);
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// `update-topic`: UPDATE_AND_CREATE_TOPIC to every master of a cluster, or one broker.
#[allow(clippy::too_many_arguments)]
pub async fn update_topic(
    admin: Admin,
    topic: String,
    cluster: Option<String>,
    broker: Option<String>,
    read: i32,
    write: i32,
    perm: i32,
    order: bool,
    attributes: Option<String>,
) -> Result<ExitCode, Failure> {
    if cluster.is_none() && broker.is_none() {
        return Err(Failure::usage("give -c CLUSTER or -b BROKER_ADDR"));
    }
    let masters = admin.masters(cluster.as_deref(), broker.as_deref()).await?;
    let mut rows = Vec::new();
    for (name, addr) in masters {
        let mut create = CreateTopic::new(topic.clone(), read, write, perm);
        create.header.order = Some(order);
        create.header.attributes = attributes.clone();
        admin.broker(&addr, &create).await?;
        rows.push((name, addr));
    }
    if admin.common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, a)| serde_json::json!({"broker": n, "address": a, "ok": true}))
            .collect();
        print_json(
            &serde_json::json!({"topic": topic, "readQueueNums": read, "writeQueueNums": write, "perm": perm, "brokers": v}),
        );
    } else {
        let mut t = Table::new(&[
            "BROKER", "ADDRESS", "TOPIC", "READ", "WRITE", "PERM", "RESULT",
        ]);
        for (n, a) in rows {
            t.row(vec![
                n,
                a,
                topic.clone(),
                read.to_string(),
                write.to_string(),
                perm.to_string(),
                "OK".into(),
            ]);
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One queue of a topic on one broker: (broker name, queue id, min offset, max offset, last
/// update time in ms).
pub type QueueStatus = (String, i64, i64, i64, i64);

/// GET_TOPIC_STATS_INFO from every broker serving the topic, sorted by broker and queue.
pub async fn topic_queues(admin: &Admin, topic: &str) -> Result<Vec<QueueStatus>, Failure> {
    let mut rows = Vec::new();
    for (name, addr) in admin.topic_masters(topic).await? {
        let body = admin
            .broker(
                &addr,
                &GetTopicStatsInfo {
                    topic: topic.to_owned(),
                },
            )
            .await?;
        for ((_, q), v) in mq_map(&body) {
            rows.push((
                name.clone(),
                q,
                v["minOffset"].as_i64().unwrap_or(0),
                v["maxOffset"].as_i64().unwrap_or(0),
                v["lastUpdateTimestamp"].as_i64().unwrap_or(0),
            ));
        }
    }
    rows.sort();
    Ok(rows)
}

/// `topic-status`: GET_TOPIC_STATS_INFO from every broker serving the topic.
pub async fn topic_status(admin: Admin, topic: String) -> Result<ExitCode, Failure> {
    let rows = topic_queues(&admin, &topic).await?;
    if admin.common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(b, q, min, max, t)| serde_json::json!({"broker": b, "queueId": q, "minOffset": min, "maxOffset": max, "lastUpdateTimestamp": t}))
            .collect();
        print_json(&serde_json::json!({"topic": topic, "queues": v}));
    } else {
        let mut t = Table::new(&["BROKER", "QUEUE", "MIN_OFFSET", "MAX_OFFSET", "LAST_UPDATE"]);
        for (b, q, min, max, ts) in rows {
            t.row(vec![
                b,
                q.to_string(),
                min.to_string(),
                max.to_string(),
                ms_text(ts),
            ]);
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One queue of a group's progress: (group, topic, broker name, queue id, broker offset,
/// consumer offset, last consume time in ms).
pub type QueueProgress = (String, String, String, i64, i64, i64, i64);

/// GET_CONSUME_STATS of one group (every group the brokers hold offsets of, without one) from
/// every master: the queues, sorted, and the summed consume TPS.
pub async fn group_progress(
    admin: &Admin,
    group: Option<String>,
) -> Result<(Vec<QueueProgress>, f64), Failure> {
    let brokers = admin.masters(None, None).await?;
    let groups: Vec<String> = match group {
        Some(g) => vec![g],
        None => {
            let mut all = std::collections::BTreeSet::new();
            for (_, addr) in &brokers {
                let body = admin.broker(addr, &GetAllConsumerOffset).await?;
                let v = rmq_protocol::lenient_json::parse(&body).unwrap_or_default();
                if let Some(m) = v["offsetTable"].as_object() {
                    for k in m.keys() {
                        if let Some((_, g)) = k.rsplit_once('@') {
                            all.insert(g.to_owned());
                        }
                    }
                }
            }
            all.into_iter().collect()
        }
    };
    // (group, topic, broker, queue, broker offset, consumer offset, last time)
    let mut rows: Vec<QueueProgress> = Vec::new();
    let mut tps = 0.0;
    for g in &groups {
        for (name, addr) in &brokers {
            let body = admin.broker(addr, &GetConsumeStats::new(g.clone())).await?;
            let text = String::from_utf8_lossy(&body).into_owned();
            if let Some(t) = text
                .strip_prefix("{\"consumeTps\":")
                .and_then(|r| r.split(',').next())
                .and_then(|n| n.parse::<f64>().ok())
            {
                tps += t;
            }
            for ((topic, q), v) in mq_map(&body) {
                rows.push((
                    g.clone(),
                    topic,
                    name.clone(),
                    q,
                    v["brokerOffset"].as_i64().unwrap_or(0),
                    v["consumerOffset"].as_i64().unwrap_or(0),
                    v["lastTimestamp"].as_i64().unwrap_or(0),
                ));
            }
        }
    }
    rows.sort();
    Ok((rows, tps))
}

/// `consumer-progress [GROUP]`: GET_CONSUME_STATS per broker; every group without one.
pub async fn consumer_progress(admin: Admin, group: Option<String>) -> Result<ExitCode, Failure> {
    let (rows, tps) = group_progress(&admin, group).await?;
    let total_lag: i64 = rows.iter().map(|r| (r.4 - r.5).max(0)).sum();
    if admin.common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(g, t, b, q, bo, co, ts)| serde_json::json!({"group": g, "topic": t, "broker": b, "queueId": q, "brokerOffset": bo, "consumerOffset": co, "diff": (bo - co).max(0), "lastTimestamp": ts}))
            .collect();
        print_json(&serde_json::json!({"queues": v, "totalDiff": total_lag, "consumeTps": tps}));
    } else {
        let mut t = Table::new(&[
            "GROUP",
            "TOPIC",
            "BROKER",
            "QUEUE",
            "BROKER_OFFSET",
            "CONSUMER_OFFSET",
            "DIFF",
            "LAST_TIME",
        ]);
        for (g, tp, b, q, bo, co, ts) in rows {
            t.row(vec![
                g,
                tp,
                b,
                q.to_string(),
                bo.to_string(),
                co.to_string(),
                (bo - co).max(0).to_string(),
                ms_text(ts),
            ]);
        }
        print!("{t}");
        println!("Consume TPS: {tps:.2}\nDiff Total: {total_lag}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `consumer-connection GROUP`: GET_CONSUMER_CONNECTION_LIST, the first broker that knows it.
pub async fn consumer_connection(admin: Admin, group: String) -> Result<ExitCode, Failure> {
    let brokers = admin.masters(None, None).await?;
    let mut last = None;
    for (_, addr) in &brokers {
        match admin
            .broker(
                addr,
                &GetConsumerConnectionList {
                    group: group.clone(),
                },
            )
            .await
        {
            Ok(body) => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if admin.common.json {
                    print_json(&v);
                    return Ok(ExitCode::SUCCESS);
                }
                let mut t = Table::new(&["CLIENT_ID", "ADDRESS", "LANGUAGE", "VERSION"]);
                for c in v["connectionSet"].as_array().into_iter().flatten() {
                    t.row(vec![
                        c["clientId"].as_str().unwrap_or("").into(),
                        c["clientAddr"].as_str().unwrap_or("").into(),
                        c["language"].as_str().unwrap_or("").into(),
                        c["version"].to_string(),
                    ]);
                }
                let mut s = Table::new(&["TOPIC", "EXPRESSION"]);
                for (topic, sub) in v["subscriptionTable"].as_object().into_iter().flatten() {
                    s.row(vec![
                        topic.clone(),
                        sub["subString"].as_str().unwrap_or("").into(),
                    ]);
                }
                print!("{t}\n{s}");
                println!(
                    "ConsumeType: {}\nMessageModel: {}\nConsumeFromWhere: {}",
                    v["consumeType"].as_str().unwrap_or(""),
                    v["messageModel"].as_str().unwrap_or(""),
                    v["consumeFromWhere"].as_str().unwrap_or("")
                );
                return Ok(ExitCode::SUCCESS);
            }
            Err(f) => last = Some(f),
        }
    }
    Err(last.unwrap_or_else(|| Failure::usage("no broker")))
}

/// `broker-status [-b ADDR]`: GET_BROKER_RUNTIME_INFO as a key/value table.
pub async fn broker_status(admin: Admin, broker: Option<String>) -> Result<ExitCode, Failure> {
    let mut out = BTreeMap::new();
    for (name, addr) in admin.masters(None, broker.as_deref()).await? {
        let table = admin.broker(&addr, &GetBrokerRuntimeInfo).await?;
        let table: serde_json::Map<String, serde_json::Value> = table
            .table
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        out.insert((name, addr), serde_json::Value::Object(table));
    }
    if admin.common.json {
        let v: Vec<_> = out
            .iter()
            .map(|((n, a), t)| serde_json::json!({"broker": n, "address": a, "table": t}))
            .collect();
        print_json(&serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["BROKER", "KEY", "VALUE"]);
    for ((n, _), table) in out {
        let mut keys: Vec<(&String, &serde_json::Value)> =
            table.as_object().into_iter().flatten().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in keys {
            t.row(vec![n.clone(), k.clone(), v.as_str().unwrap_or("").into()]);
        }
    }
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `update-sub-group`: UPDATE_AND_CREATE_SUBSCRIPTIONGROUP to every master of a cluster, or one.
#[allow(clippy::too_many_arguments)]
pub async fn update_sub_group(
    admin: Admin,
    group: String,
    cluster: Option<String>,
    broker: Option<String>,
    retry_queue_nums: i32,
    retry_max_times: i32,
    consume_enable: bool,
    broadcast_enable: bool,
    orderly: bool,
) -> Result<ExitCode, Failure> {
    if cluster.is_none() && broker.is_none() {
        return Err(Failure::usage("give -c CLUSTER or -b BROKER_ADDR"));
    }
    let body = serde_json::json!({
        "groupName": group, "retryQueueNums": retry_queue_nums, "retryMaxTimes": retry_max_times,
        "consumeEnable": consume_enable, "consumeBroadcastEnable": broadcast_enable,
        "consumeMessageOrderly": orderly, "consumeFromMinEnable": true, "brokerId": 0,
        "whichBrokerWhenConsumeSlowly": 1, "notifyConsumerIdsChangedEnable": true,
    });
    let mut done = Vec::new();
    for (name, addr) in admin.masters(cluster.as_deref(), broker.as_deref()).await? {
        let update = UpdateSubscriptionGroup {
            config: serde_json::to_vec(&body).unwrap_or_default().into(),
        };
        admin.broker(&addr, &update).await?;
        done.push((name, addr));
    }
    report_brokers(&admin, &done, &format!("group {group} updated"));
    Ok(ExitCode::SUCCESS)
}

/// `delete-sub-group`: DELETE_SUBSCRIPTIONGROUP on every master of a cluster, or one.
pub async fn delete_sub_group(
    admin: Admin,
    group: String,
    cluster: Option<String>,
    broker: Option<String>,
    clean_offset: bool,
) -> Result<ExitCode, Failure> {
    if cluster.is_none() && broker.is_none() {
        return Err(Failure::usage("give -c CLUSTER or -b BROKER_ADDR"));
    }
    let mut done = Vec::new();
    for (name, addr) in admin.masters(cluster.as_deref(), broker.as_deref()).await? {
        let delete = DeleteSubscriptionGroup {
            group: group.clone(),
            clean_offset,
        };
        admin.broker(&addr, &delete).await?;
        done.push((name, addr));
    }
    report_brokers(&admin, &done, &format!("group {group} deleted"));
    Ok(ExitCode::SUCCESS)
}

fn report_brokers(admin: &Admin, done: &[(String, String)], what: &str) {
    if admin.common.json {
        let v: Vec<_> = done
            .iter()
            .map(
                |(n, a)| serde_json::json!({"broker": n, "address": a, "ok": true, "result": what}),
            )
            .collect();
        print_json(&serde_json::Value::Array(v));
    } else {
        let mut t = Table::new(&["BROKER", "ADDRESS", "RESULT"]);
        for (n, a) in done {
            t.row(vec![n.clone(), a.clone(), what.to_owned()]);
        }
        print!("{t}");
    }
}

/// `broker-config get|update`: GET_BROKER_CONFIG, or UPDATE_BROKER_CONFIG with `key=value`.
pub async fn broker_config(
    admin: Admin,
    broker: Option<String>,
    cluster: Option<String>,
    update: Option<(String, String)>,
) -> Result<ExitCode, Failure> {
    let masters = admin.masters(cluster.as_deref(), broker.as_deref()).await?;
    if let Some((k, v)) = update {
        let mut done = Vec::new();
        for (name, addr) in masters {
            let update = UpdateBrokerConfig {
                properties: format!("{k}={v}\n"),
            };
            admin.broker(&addr, &update).await?;
            done.push((name, addr));
        }
        report_brokers(&admin, &done, &format!("{k}={v}"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut all = Vec::new();
    for (name, addr) in masters {
        let text = admin.broker(&addr, &GetBrokerConfig).await?;
        let props = rmq_config::parse_sorted(&text).unwrap_or_default();
        all.push((name, addr, props));
    }
    if admin.common.json {
        let v: Vec<_> = all
            .iter()
            .map(|(n, a, p)| {
                let m: serde_json::Map<String, serde_json::Value> = p
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::json!({"broker": n, "address": a, "config": m})
            })
            .collect();
        print_json(&serde_json::Value::Array(v));
    } else {
        let mut t = Table::new(&["BROKER", "KEY", "VALUE"]);
        for (n, _, p) in all {
            for (k, v) in p {
                t.row(vec![n.clone(), k, v]);
            }
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `query-msg` looks for.
pub enum MsgQuery {
    /// An offsetMsgId (store host + commit-log offset), or a client id (UNIQ_KEY) with a topic.
    Id(String, Option<String>),
    /// A key (KEYS property) in a topic.
    Key(String, String),
    /// A queue position.
    Offset(String, i32, i64),
}

/// The messages a query finds (none: an empty list).
pub async fn find_messages(
    admin: &Admin,
    q: &MsgQuery,
) -> Result<Vec<rmq_consumer::MessageExt>, Failure> {
    let mut found = Vec::new();
    match q {
        MsgQuery::Id(id, topic) => {
            if let Some((host, offset)) = rmq_message::msg_id::decode_offset_msg_id(id) {
                let addr = host.to_string();
                let body = admin.broker(&addr, &ViewMessageById { offset }).await?;
                found.extend(rmq_consumer::message::decode_body(&body, &addr));
            } else {
                let Some(topic) = topic else {
                    return Err(Failure::usage(
                        "a client message id (UNIQ_KEY) needs --topic",
                    ));
                };
                found.extend(by_key(admin, topic, id, true).await?);
            }
        }
        MsgQuery::Key(topic, key) => found.extend(by_key(admin, topic, key, false).await?),
        MsgQuery::Offset(topic, queue, offset) => {
            let route = admin.read(&GetRouteInfo::new(topic.clone())).await?;
            for b in &route.broker_datas {
                let Some(addr) = b.broker_addrs.get(&0) else {
                    continue;
                };
                // One message, no suspension, subscription carried (sysFlag 4), no commit.
                let header = rmq_protocol::headers::pull::PullMessageRequestHeader {
                    consumer_group: "TOOLS_CONSUMER".into(),
                    topic: topic.clone(),
                    queue_id: *queue,
                    queue_offset: *offset,
                    max_msg_nums: 1,
                    sys_flag: 4,
                    commit_offset: 0,
                    suspend_timeout_millis: 0,
                    subscription: Some("*".into()),
                    sub_version: 0,
                    expression_type: None,
                    max_msg_bytes: None,
                    request_source: None,
                    proxy_froward_client_id: None,
                };
                let cmd = RemotingCommand::request_with_header(rc::PULL_MESSAGE, &header);
                if let Ok(r) = admin.client.invoke_sync(addr, cmd, admin.timeout()).await {
                    if r.code == 0 {
                        found.extend(
                            rmq_consumer::message::decode_body(&r.body, &b.broker_name)
                                .into_iter()
                                .filter(|m| m.queue_offset == *offset),
                        );
                    }
                }
            }
        }
    }
    Ok(found)
}

/// `query-msg`: headers, properties and body of the messages found.
pub async fn query_msg(
    admin: Admin,
    q: MsgQuery,
    body_out: Option<std::path::PathBuf>,
) -> Result<ExitCode, Failure> {
    let found = find_messages(&admin, &q).await?;
    let not_found = |what: String| Failure {
        exit: super::exit::NOT_FOUND,
        message: what,
    };
    if found.is_empty() {
        return Err(not_found("no message found".into()));
    }
    if let Some(path) = &body_out {
        std::fs::write(path, &found[0].body).map_err(|e| Failure {
            exit: super::exit::REFUSED,
            message: format!("{}: {e}", path.display()),
        })?;
    }
    if admin.common.json {
        let v: Vec<_> = found.iter().map(message_json).collect();
        print_json(&serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    for m in &found {
        let mut t = Table::new(&["FIELD", "VALUE"]);
        for (k, v) in message_fields(m) {
            t.row(vec![k.into(), v]);
        }
        for (k, v) in &m.properties {
            t.row(vec![format!("property {k}"), v.clone()]);
        }
        print!("{t}");
        println!("{}\n", body_text(&m.body));
    }
    Ok(ExitCode::SUCCESS)
}

/// QUERY_MESSAGE to every master serving `topic`; exact matches only.
async fn by_key(
    admin: &Admin,
    topic: &str,
    key: &str,
    unique: bool,
) -> Result<Vec<rmq_consumer::MessageExt>, Failure> {
    let mut out = Vec::new();
    for (name, addr) in admin.topic_masters(topic).await? {
        let query = QueryMessage::new(topic, key, unique);
        let Ok(body) = admin.broker_answer(&addr, &query).await else {
            continue;
        };
        out.extend(
            rmq_consumer::message::decode_body(&body, &name)
                .into_iter()
                .filter(|m| {
                    if unique {
                        m.property("UNIQ_KEY") == Some(key)
                    } else {
                        m.keys().is_some_and(|k| k.split(' ').any(|x| x == key))
                    }
                }),
        );
    }
    Ok(out)
}

/// The headers `query-msg` shows, in its order.
pub fn message_fields(m: &rmq_consumer::MessageExt) -> Vec<(&'static str, String)> {
    vec![
        ("topic", m.topic.clone()),
        ("broker", m.broker_name.clone()),
        ("queueId", m.queue_id.to_string()),
        ("queueOffset", m.queue_offset.to_string()),
        ("msgId", m.msg_id().to_owned()),
        ("offsetMsgId", m.offset_msg_id.clone()),
        ("tags", m.tags().unwrap_or("").to_owned()),
        ("keys", m.keys().unwrap_or("").to_owned()),
        ("bornTimestamp", ms_text(m.born_timestamp)),
        ("storeTimestamp", ms_text(m.store_timestamp)),
        ("reconsumeTimes", m.reconsume_times.to_string()),
        ("bodyLength", m.body.len().to_string()),
    ]
}

/// A message as `query-msg --json` prints it.
pub fn message_json(m: &rmq_consumer::MessageExt) -> serde_json::Value {
    let mut o: serde_json::Map<String, serde_json::Value> = message_fields(m)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
        .collect();
    let props: serde_json::Map<String, serde_json::Value> = m
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    o.insert("properties".into(), serde_json::Value::Object(props));
    o.insert("body".into(), serde_json::Value::String(body_text(&m.body)));
    serde_json::Value::Object(o)
}

/// The body as text when it is printable UTF-8, else hex.
pub fn body_text(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => s.to_owned(),
        _ => body.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// `reset-offset`: INVOKE_BROKER_TO_RESET_OFFSET on every broker serving the topic: the group's
/// offsets move to the first message stored at or after the time (-1: the end); online members
/// move their pulls there.
pub async fn reset_offset(
    admin: Admin,
    group: String,
    topic: String,
    timestamp: i64,
    force: bool,
) -> Result<ExitCode, Failure> {
    let mut rows = Vec::new();
    for (name, addr) in admin.topic_masters(&topic).await? {
        let reset = ResetOffset::new(topic.clone(), group.clone(), timestamp, force);
        let body = admin.broker(&addr, &reset).await?;
        for ((_, q), v) in mq_map(&body) {
            rows.push((name.clone(), q, v.as_i64().unwrap_or(0)));
        }
    }
    rows.sort();
    if admin.common.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(b, q, o)| serde_json::json!({"broker": b, "queueId": q, "offset": o}))
            .collect();
        print_json(&serde_json::json!({"group": group, "topic": topic, "queues": v}));
    } else {
        let mut t = Table::new(&["BROKER", "QUEUE", "OFFSET"]);
        for (b, q, o) in rows {
            t.row(vec![b, q.to_string(), o.to_string()]);
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}
