//! Request handling, one function per request code (spec §7.3-7.5).

use crate::fastjson::Style;
use crate::kv::ORDER_TOPIC_CONFIG;
use crate::route::model::{self, DataVersion, QueueData};
use crate::route::register_body::{self, RegisterBody};
use crate::route::{unit_filter, RegisterOutcome, Registration};
/// Kept at its old path: the handlers' shared state now lives in [`crate::state`].
pub use crate::state::State;
use async_trait::async_trait;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::broker::*;
use rmq_protocol::headers::kv::*;
use rmq_protocol::headers::route::*;
use rmq_protocol::{ExtFields, MqVersion, RemotingCommand};
use rmq_remoting::{ProcessorError, RequestContext, RequestProcessor};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// FAQ link appended to TOPIC_NOT_EXIST remarks (5.x).
const FAQ_URL: &str = "https://rocketmq.apache.org/docs/bestPractice/06FAQ";

/// The NameServer's processor: registered for 105 (on the client-request executor) and as the
/// default processor (on the default executor) for everything else.
pub struct NamesrvProcessor(pub Arc<State>);

fn ok() -> RemotingCommand {
    RemotingCommand::response(response::SUCCESS, None)
}

/// A success whose Java response has a header class: `"extFields":{}` even when empty.
fn ok_with_header() -> RemotingCommand {
    let mut r = ok();
    r.ext_fields = Some(ExtFields::new());
    r
}

fn fail(code: i32, remark: &str) -> RemotingCommand {
    RemotingCommand::response(code, Some(remark))
}

#[async_trait]
impl RequestProcessor for NamesrvProcessor {
    async fn process(
        &self,
        ctx: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let started = Instant::now();
        let code = req.code;
        let resp = self.handle(ctx, req).await;
        let answered = match &resp {
            Ok(r) => r.code,
            Err(e) => e.code,
        };
        self.0
            .metrics
            .rpc(code, answered, started.elapsed().as_secs_f64() * 1000.0);
        resp.map(Some)
    }
}

impl NamesrvProcessor {
    async fn handle(
        &self,
        ctx: &RequestContext,
        req: RemotingCommand,
    ) -> Result<RemotingCommand, ProcessorError> {
        let s = &*self.0;
        let resp = match req.code {
            // These write files (with fsync): on the blocking pool, never a runtime thread.
            rc::PUT_KV_CONFIG | rc::DELETE_KV_CONFIG | rc::UPDATE_NAMESRV_CONFIG => {
                let state = self.0.clone();
                let code = req.code;
                tokio::task::spawn_blocking(move || match code {
                    rc::PUT_KV_CONFIG => put_kv(&state, &req),
                    rc::DELETE_KV_CONFIG => delete_kv(&state, &req),
                    _ => Ok(update_config(&state, &req)),
                })
                .await
                .map_err(|e| ProcessorError::new(format!("request code {code} failed: {e}")))??
            }
            rc::GET_KV_CONFIG => get_kv(s, &req)?,
            rc::GET_KVLIST_BY_NAMESPACE => kv_list(s, &req)?,
            rc::GET_NAMESRV_CONFIG => ok().with_body(s.config().to_properties_text()),
            rc::REGISTER_BROKER
            | rc::UNREGISTER_BROKER
            | rc::BROKER_HEARTBEAT
            | rc::QUERY_DATA_VERSION
            | rc::GET_BROKER_MEMBER_GROUP => broker_request(s, ctx, &req)?,
            _ => topic_request(s, &req)?,
        };
        Ok(resp)
    }
}

/// A TopicList answer, or `1 disable` when the list is switched off in the configuration.
fn topic_list(enabled: bool, topics: impl FnOnce() -> Vec<String>) -> RemotingCommand {
    if !enabled {
        return fail(response::SYSTEM_ERROR, "disable");
    }
    let topics = topics();
    ok().with_body(model::write_topic_list(
        None,
        topics.iter().map(String::as_str),
    ))
}

/// The requests brokers send: registration, unregistration, heartbeat, data version, member group.
fn broker_request(
    s: &State,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    Ok(match req.code {
        rc::REGISTER_BROKER => register_broker(s, ctx, req)?,
        rc::UNREGISTER_BROKER => {
            let h: UnRegisterBrokerRequestHeader = req.decode_header()?;
            s.route
                .unregister(&h.cluster_name, &h.broker_addr, &h.broker_name, h.broker_id);
            ok()
        }
        rc::BROKER_HEARTBEAT => {
            let h: BrokerHeartbeatRequestHeader = req.decode_header()?;
            s.route.heartbeat(&h.cluster_name, &h.broker_addr);
            ok()
        }
        rc::QUERY_DATA_VERSION => query_data_version(s, req)?,
        rc::GET_BROKER_MEMBER_GROUP => {
            let h: GetBrokerMemberGroupRequestHeader = req.decode_header()?;
            let addrs = s.route.member_group(&h.broker_name);
            let mut w = crate::fastjson::Writer::new(Style::Default);
            w.raw("{");
            w.key("brokerMemberGroup");
            w.raw("{");
            model::write_group_fields(&mut w, &addrs, &h.broker_name, &h.cluster_name);
            w.raw("}}");
            ok().with_body(w.finish())
        }
        other => fail(
            response::REQUEST_CODE_NOT_SUPPORTED,
            &response::not_supported_remark(other),
        ),
    })
}

/// Routes and topic lists (clients, admin tools), write permissions and topic registration.
fn topic_request(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    Ok(match req.code {
        rc::GET_ROUTEINFO_BY_TOPIC => route_by_topic(s, req),
        rc::GET_BROKER_CLUSTER_INFO => ok().with_body(s.route.cluster_info_json()),
        rc::WIPE_WRITE_PERM_OF_BROKER | rc::ADD_WRITE_PERM_OF_BROKER => {
            let name = req
                .ext("brokerName")
                .ok_or_else(|| ProcessorError::new("missing brokerName"))?;
            let wipe = req.code == rc::WIPE_WRITE_PERM_OF_BROKER;
            let n = s.route.update_write_perm(name, wipe);
            tracing::info!(broker = name, topics = n, wipe, "write permission changed");
            let mut r = ok_with_header();
            let count = i32::try_from(n).unwrap_or(i32::MAX);
            if wipe {
                r.set_header(&WipeWritePermOfBrokerResponseHeader {
                    wipe_topic_count: count,
                });
            } else {
                r.set_header(&AddWritePermOfBrokerResponseHeader {
                    add_topic_count: count,
                });
            }
            r
        }
        rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
            let enabled = s.config().enable_all_topic_list;
            topic_list(enabled, || s.route.all_topics())
        }
        rc::DELETE_TOPIC_IN_NAMESRV => {
            let h: DeleteTopicFromNamesrvRequestHeader = req.decode_header()?;
            s.route.delete_topic(&h.topic, h.cluster_name.as_deref());
            ok()
        }
        rc::REGISTER_TOPIC_IN_NAMESRV => register_topic(s, req)?,
        rc::GET_TOPICS_BY_CLUSTER => {
            let h: GetTopicsByClusterRequestHeader = req.decode_header()?;
            let enabled = s.config().enable_topic_list;
            topic_list(enabled, || s.route.topics_by_cluster(&h.cluster))
        }
        rc::GET_SYSTEM_TOPIC_LIST_FROM_NS => {
            let (topics, addr) = s.route.system_topics();
            ok().with_body(model::write_topic_list(
                addr.as_deref(),
                topics.iter().map(String::as_str),
            ))
        }
        rc::GET_UNIT_TOPIC_LIST
        | rc::GET_HAS_UNIT_SUB_TOPIC_LIST
        | rc::GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST => {
            let enabled = s.config().enable_topic_list;
            topic_list(enabled, || s.route.topics_by_sysflag(unit_filter(req.code)))
        }
        other => fail(
            response::REQUEST_CODE_NOT_SUPPORTED,
            &response::not_supported_remark(other),
        ),
    })
}

fn put_kv(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let (Some(ns), Some(key)) = (req.ext("namespace"), req.ext("key")) else {
        return Ok(fail(response::SYSTEM_ERROR, "namespace or key is null"));
    };
    let value = req.ext("value").unwrap_or_default();
    s.kv.put(ns, key, value).map_err(ProcessorError::new)?;
    tracing::info!(namespace = ns, key, "kv config put");
    Ok(ok())
}

fn get_kv(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let h: KvConfigKeyRequestHeader = req.decode_header()?;
    Ok(match s.kv.get(&h.namespace, &h.key) {
        Some(v) => {
            let mut r = ok_with_header();
            r.set_header(&GetKvConfigResponseHeader { value: Some(v) });
            r
        }
        None => {
            let mut r = fail(
                response::QUERY_NOT_FOUND,
                &format!("No config item, Namespace: {} Key: {}", h.namespace, h.key),
            );
            r.ext_fields = Some(ExtFields::new());
            r
        }
    })
}

fn delete_kv(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let h: KvConfigKeyRequestHeader = req.decode_header()?;
    s.kv.delete(&h.namespace, &h.key)
        .map_err(ProcessorError::new)?;
    tracing::info!(namespace = %h.namespace, key = %h.key, "kv config deleted");
    Ok(ok())
}

fn kv_list(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let h: GetKvListByNamespaceRequestHeader = req.decode_header()?;
    Ok(match s.kv.list(&h.namespace) {
        Some(m) => ok().with_body(model::write_kv_table(
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )),
        None => fail(
            response::QUERY_NOT_FOUND,
            &format!("No config item, Namespace: {}", h.namespace),
        ),
    })
}

fn register_broker(
    s: &State,
    ctx: &RequestContext,
    req: &RemotingCommand,
) -> Result<RemotingCommand, ProcessorError> {
    let h: RegisterBrokerRequestHeader = req.decode_header()?;
    let crc = h.body_crc32.unwrap_or(0);
    if crc != 0 {
        let actual = (crc32fast::hash(&req.body) & 0x7FFF_FFFF) as i32;
        if actual != crc {
            tracing::warn!(broker = %h.broker_name, addr = %h.broker_addr, "register body crc32 mismatch");
            return Ok(fail(response::SYSTEM_ERROR, "crc32 not match"));
        }
    }
    let body: RegisterBody = if h.compressed.unwrap_or(false) {
        register_body::decode_compressed(&req.body, req.version)
    } else {
        register_body::decode_json(&req.body, req.version < MqVersion::V3_0_11)
    }
    .map_err(ProcessorError::new)?;
    let outcome = s.route.register(Registration {
        cluster: &h.cluster_name,
        broker_addr: &h.broker_addr,
        broker_name: &h.broker_name,
        broker_id: h.broker_id,
        ha_server_addr: &h.ha_server_addr,
        zone_name: req.ext("__ZONE_NAME"),
        timeout: h
            .heartbeat_timeout_millis
            .filter(|t| *t > 0)
            .map(|t| Duration::from_millis(t as u64)),
        enable_acting_master: h.enable_acting_master,
        body,
        channel: Some(ctx.connection.clone()),
    });
    let result = match outcome {
        RegisterOutcome::Registered(r) => r,
        RegisterOutcome::Ignored => return Ok(ok_with_header()),
        RegisterOutcome::Failed => {
            return Ok(fail(response::SYSTEM_ERROR, "register broker failed"))
        }
    };
    let mut resp = ok_with_header();
    resp.set_header(&RegisterBrokerResponseHeader {
        ha_server_addr: result.ha_server_addr,
        master_addr: result.master_addr,
    });
    if s.config().return_order_topic_config_to_broker {
        if let Some(table) = s.kv.list(ORDER_TOPIC_CONFIG) {
            resp.body = model::write_kv_table(table.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
    }
    Ok(resp)
}

fn query_data_version(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let h: QueryDataVersionRequestHeader = req.decode_header()?;
    let dv: DataVersion = if req.body.is_empty() {
        DataVersion::default()
    } else {
        serde_json::from_slice(&req.body).map_err(ProcessorError::new)?
    };
    let (changed, stored) = s
        .route
        .query_data_version(&h.cluster_name, &h.broker_addr, &dv);
    let mut resp = ok_with_header();
    resp.set_header(&QueryDataVersionResponseHeader {
        changed: Some(changed),
    });
    if let Some(stored) = stored {
        resp.body = stored.to_json();
    }
    Ok(resp)
}

/// The JSON style of a route answer, and the zone filter: with `__ZONE_MODE` and a
/// `__ZONE_NAME` (Java's ZoneRouteRPCHook) only brokers of that zone (or without a master) stay
/// and the default style is written; otherwise standard JSON for V4_9_4+ clients or
/// `acceptStandardJsonOnly`.
fn route_style(req: &RemotingCommand, route: &mut crate::route::Route) -> Style {
    let zone_mode = req
        .ext("__ZONE_MODE")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let zone = req
        .ext("__ZONE_NAME")
        .map(str::trim)
        .filter(|z| !z.is_empty());
    if let (true, Some(zone)) = (zone_mode, zone) {
        route.brokers.retain(|b| {
            !b.broker_addrs.contains_key(&model::MASTER_ID)
                || b.zone_name
                    .as_deref()
                    .is_some_and(|z| z.eq_ignore_ascii_case(zone))
        });
        let kept: Vec<String> = route
            .brokers
            .iter()
            .map(|b| b.broker_name.clone())
            .collect();
        route.queues.retain(|q| kept.contains(&q.broker_name));
        let addrs: Vec<&String> = route
            .brokers
            .iter()
            .flat_map(|b| b.broker_addrs.values())
            .collect();
        route.filters.retain(|a, _| addrs.contains(&a));
        return Style::Default;
    }
    let standard = req.version >= MqVersion::V4_9_4
        || req
            .ext("acceptStandardJsonOnly")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if standard {
        Style::Standard
    } else {
        Style::Default
    }
}

fn route_by_topic(s: &State, req: &RemotingCommand) -> RemotingCommand {
    let (wait, wait_secs, order_message_enable, support_acting_master) = {
        let c = s.config();
        (
            c.need_wait_for_service,
            c.wait_seconds_for_service,
            c.order_message_enable,
            c.support_acting_master,
        )
    };
    if wait && s.started.elapsed() < Duration::from_secs(wait_secs) {
        return fail(response::SYSTEM_ERROR, "name server not ready");
    }
    let topic = req.ext("topic");
    let not_found = || {
        fail(
            response::TOPIC_NOT_EXIST,
            &format!(
                "No topic route info in name server for the topic: {}\nSee {FAQ_URL} for further details.",
                topic.unwrap_or("null")
            ),
        )
    };
    let Some(mut route) = topic.and_then(|t| s.route.pickup_route(t)) else {
        return not_found();
    };
    if support_acting_master {
        route.apply_acting_master(topic.unwrap_or_default());
    }
    let order_conf = if order_message_enable {
        topic.and_then(|t| s.kv.get(ORDER_TOPIC_CONFIG, t))
    } else {
        None
    };
    let style = route_style(req, &mut route);
    ok().with_body(model::write_route(
        style,
        &route.brokers,
        &route.filters,
        order_conf.as_deref(),
        &route.queues,
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct TopicRouteJson {
    queue_datas: Vec<QueueDataJson>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct QueueDataJson {
    broker_name: String,
    read_queue_nums: i32,
    write_queue_nums: i32,
    perm: i32,
    topic_sys_flag: i32,
}

fn register_topic(s: &State, req: &RemotingCommand) -> Result<RemotingCommand, ProcessorError> {
    let h: RegisterTopicRequestHeader = req.decode_header()?;
    if !req.body.is_empty() {
        // Java clients may send fastjson's unquoted Long keys in brokerAddrs; only queueDatas is
        // used, so a body serde cannot read is treated as registering nothing.
        if let Ok(body) = serde_json::from_slice::<TopicRouteJson>(&req.body) {
            let queues = body
                .queue_datas
                .into_iter()
                .map(|q| QueueData {
                    broker_name: q.broker_name,
                    read_queue_nums: q.read_queue_nums,
                    write_queue_nums: q.write_queue_nums,
                    perm: q.perm,
                    topic_sys_flag: q.topic_sys_flag,
                })
                .collect();
            s.route.register_topic(&h.topic, queues);
        }
    }
    Ok(ok())
}

fn update_config(s: &State, req: &RemotingCommand) -> RemotingCommand {
    if req.body.is_empty() {
        return ok();
    }
    let Ok(text) = std::str::from_utf8(&req.body) else {
        return fail(response::SYSTEM_ERROR, "string2Properties error");
    };
    let Ok(props) = crate::config::parse_properties(text) else {
        return fail(response::SYSTEM_ERROR, "string2Properties error");
    };
    // Updates take turns from the change to the end of the file write, so the file is written in
    // the order the changes were made; the config lock itself is not held across the write.
    // Poisoning: neither lock is held across anything that can leave a half-made change (the
    // config is replaced whole), so a poisoned one is taken as is.
    let _turn = s
        .persisting_config
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut config = s.config.write().unwrap_or_else(|p| p.into_inner());
    if props.iter().any(|(k, _)| config.is_blacklisted(k)) {
        return fail(
            response::NO_PERMISSION,
            "Can not update config in black list.",
        );
    }
    let mut next = config.clone();
    for (k, v) in &props {
        if let Err(e) = next.set(k, v) {
            return fail(response::SYSTEM_ERROR, &e);
        }
    }
    *config = next;
    let path = config.config_store_path.clone();
    let text = config.to_properties_text();
    drop(config);
    if let Err(e) = crate::persist::write_atomic(std::path::Path::new(&path), text.as_bytes()) {
        tracing::warn!(path, error = %e, "cannot persist namesrv config");
    }
    tracing::info!(keys = props.len(), "namesrv config updated");
    ok()
}
