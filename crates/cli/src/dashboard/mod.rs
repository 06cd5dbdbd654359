//! `rmq dashboard` (and `rmq standalone --dashboard`): a few server-rendered pages over the
//! same admin client the CLI uses: clusters and brokers with versions and rates, topics with
//! queue offsets and message rates, consumer groups with lag, and a message lookup by id, key
//! or queue position.
//!
//! Plain HTML built here and one embedded stylesheet: no script, no build step, nothing fetched
//! from a network, and every page works with curl as well as in a browser. Each page asks the
//! cluster when it is loaded (bounded by the admin timeout per request); topic rates come from
//! the difference with the previous load of the same page.

mod html;

use crate::admin::brokers::{self, MsgQuery};
use crate::admin::{clusters, Admin, Failure};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, StreamExt};
use html::{esc, Page};
use rmq_http::axum;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const STYLE: &str = include_str!("style.css");

/// Topic stats fetched at once (one GET_TOPIC_STATS_INFO per topic and broker).
const TOPIC_FETCH_CONCURRENCY: usize = 8;

/// What the pages share: the admin session and the previous topic totals (for rates).
pub struct Dashboard {
    admin: Admin,
    /// Topic -> (when, sum of max offsets): the previous sample, for msgs/s.
    samples: Mutex<HashMap<String, (Instant, i64)>>,
}

impl Dashboard {
    /// A dashboard reading through `admin`.
    pub fn new(admin: Admin) -> Arc<Self> {
        Arc::new(Dashboard {
            admin,
            samples: Mutex::default(),
        })
    }

    /// The pages' routes.
    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/", get(overview))
            .route("/topics", get(topics))
            .route("/topic", get(topic))
            .route("/groups", get(groups))
            .route("/group", get(group))
            .route("/message", get(message))
            .route(
                "/assets/style.css",
                get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
            )
            .with_state(self)
    }

    fn page(&self, title: &str, active: &str) -> Page {
        Page::new(title, active, &self.admin.addrs.join(";"))
    }

    /// msgs/s for a topic whose max offsets sum to `total` now; the sample is renewed when the
    /// previous one is at least a second old.
    fn rate(&self, topic: &str, total: i64) -> Option<f64> {
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        match samples.get(topic).copied() {
            Some((then, before)) => {
                let secs = now.duration_since(then).as_secs_f64();
                let rate = (secs >= 0.2).then(|| (total - before).max(0) as f64 / secs);
                if secs >= 1.0 {
                    samples.insert(topic.to_owned(), (now, total));
                }
                rate
            }
            None => {
                samples.insert(topic.to_owned(), (now, total));
                None
            }
        }
    }
}

type Shared = State<Arc<Dashboard>>;

/// A failed cluster request, as a page: 404 for "not found", 502 otherwise.
fn failure_page(d: &Dashboard, title: &str, active: &str, f: Failure) -> Response {
    let status = if f.exit == crate::admin::exit::NOT_FOUND {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    let mut p = d.page(title, active);
    let _ = write!(p.body, "<p class=\"error\">{}</p>", esc(&f.message));
    (status, Html(p.finish())).into_response()
}

fn num(v: impl std::fmt::Display) -> String {
    format!("<td class=\"num\">{v}</td>")
}

/// `/`: clusters and brokers, with versions and the rates the brokers report.
async fn overview(State(d): Shared) -> Response {
    let members = match clusters::members_with_runtime(&d.admin).await {
        Ok(m) => m,
        Err(f) => return failure_page(&d, "Clusters", "/", f),
    };
    let mut p = d.page("Clusters and brokers", "/");
    p.body.push_str(
        "<table id=\"brokers\"><tr><th>Cluster</th><th>Broker</th><th>ID</th><th>Address</th>\
         <th>Version</th><th class=\"num\">Put TPS</th><th class=\"num\">Get TPS</th>\
         <th class=\"num\">Put today</th><th class=\"num\">Get today</th><th class=\"num\">Disk</th></tr>",
    );
    for ((cluster, name, id, addr), info) in &members {
        let (version, put, get, put_total, get_total, disk) = match info {
            Ok(t) => {
                let f = |k: &str| esc(t.get(k).map(String::as_str).unwrap_or("-"));
                // "putTps" holds the 10 s, 1 min and 10 min rates: the first is "now".
                let first =
                    |k: &str| esc(t.get(k).and_then(|v| v.split(' ').next()).unwrap_or("-"));
                (
                    f("brokerVersionDesc"),
                    first("putTps"),
                    first("getTransferredTps"),
                    f("msgPutTotalTodayNow"),
                    f("msgGetTotalTodayNow"),
                    f("commitLogDiskRatio"),
                )
            }
            Err(why) => {
                let why = format!("- ({})", esc(why));
                (
                    why,
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                )
            }
        };
        let _ = write!(
            p.body,
            "<tr><td>{}</td><td class=\"broker\">{}</td><td>{}</td><td>{}</td><td>{version}</td>{}{}{}{}{}</tr>",
            esc(cluster),
            esc(name),
            esc(id),
            esc(addr),
            num(put),
            num(get),
            num(put_total),
            num(get_total),
            num(disk),
        );
    }
    p.body.push_str("</table>");
    if members.is_empty() {
        p.body
            .push_str("<p class=\"muted\">No broker is registered with these NameServers.</p>");
    }
    Html(p.finish()).into_response()
}

/// Topics the pages hide unless asked (`?all=1`): retry and dead-letter topics, the brokers'
/// own system topics, and the cluster and broker names the NameServer lists as topics.
fn is_system_topic(t: &str, names: &[String]) -> bool {
    t.starts_with("%RETRY%")
        || t.starts_with("%DLQ%")
        || t.starts_with("RMQ_SYS_")
        || t.starts_with("rmq_sys_")
        || matches!(
            t,
            "TBW102"
                | "SCHEDULE_TOPIC_XXXX"
                | "OFFSET_MOVED_EVENT"
                | "SELF_TEST_TOPIC"
                | "BenchmarkTest"
                | "TRANS_CHECK_MAX_TIME_TOPIC"
        )
        || t.ends_with("_REPLY_TOPIC")
        || names.iter().any(|n| n == t)
}

#[derive(serde::Deserialize)]
struct TopicsQuery {
    all: Option<String>,
}

/// `/topics`: every topic with its queues, messages held, total stored and rate.
async fn topics(State(d): Shared, Query(q): Query<TopicsQuery>) -> Response {
    let show_all = q.all.as_deref().is_some_and(|v| v != "0");
    let list = match d.admin.read(&rmq_model::call::GetAllTopics).await {
        Ok(l) => l.topic_list,
        Err(f) => return failure_page(&d, "Topics", "/topics", f),
    };
    // Cluster and broker names appear in the topic list (Java's system topics of a cluster).
    let names: Vec<String> = match d.admin.read(&rmq_model::call::GetClusterInfo).await {
        Ok(info) => info
            .cluster_addr_table
            .keys()
            .chain(info.broker_addr_table.keys())
            .cloned()
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut wanted: Vec<String> = list
        .into_iter()
        .filter(|t| show_all || !is_system_topic(t, &names))
        .collect();
    wanted.sort();
    let admin = &d.admin;
    let stats: Vec<(String, Result<Vec<brokers::QueueStatus>, Failure>)> =
        stream::iter(wanted.into_iter().map(|t| async move {
            let r = brokers::topic_queues(admin, &t).await;
            (t, r)
        }))
        .buffered(TOPIC_FETCH_CONCURRENCY)
        .collect()
        .await;
    let mut p = d.page("Topics", "/topics");
    let _ = write!(
        p.body,
        "<p class=\"muted\">{} topics{}. <a href=\"/topics{}\">{}</a></p>",
        stats.len(),
        if show_all {
            ""
        } else {
            " (system topics hidden)"
        },
        if show_all { "" } else { "?all=1" },
        if show_all {
            "Hide system topics"
        } else {
            "Show system topics"
        },
    );
    p.body.push_str(
        "<table id=\"topics\"><tr><th>Topic</th><th class=\"num\">Queues</th><th class=\"num\">Messages held</th>\
         <th class=\"num\">Stored (max offsets)</th><th class=\"num\">Msgs/s</th><th>Last update</th></tr>",
    );
    for (t, r) in stats {
        match r {
            Ok(queues) => {
                let held: i64 = queues.iter().map(|q| (q.3 - q.2).max(0)).sum();
                let total: i64 = queues.iter().map(|q| q.3).sum();
                let last = queues.iter().map(|q| q.4).max().unwrap_or(0);
                let rate = d
                    .rate(&t, total)
                    .map(|r| format!("{r:.1}"))
                    .unwrap_or_else(|| "-".into());
                let _ = write!(
                    p.body,
                    "<tr><td class=\"topic\"><a href=\"/topic?name={}\">{}</a></td>{}{}{}{}<td>{}</td></tr>",
                    html::url(&t),
                    esc(&t),
                    num(queues.len()),
                    num(held),
                    num(total),
                    num(rate),
                    brokers::ms_text(last),
                );
            }
            Err(f) => {
                let _ = write!(
                    p.body,
                    "<tr><td class=\"topic\">{}</td><td colspan=\"5\" class=\"muted\">{}</td></tr>",
                    esc(&t),
                    esc(&f.message)
                );
            }
        }
    }
    p.body.push_str("</table>");
    Html(p.finish()).into_response()
}

#[derive(serde::Deserialize)]
struct NameQuery {
    name: String,
}

/// `/topic?name=T`: its queues on every broker.
async fn topic(State(d): Shared, Query(q): Query<NameQuery>) -> Response {
    let title = format!("Topic {}", q.name);
    let queues = match brokers::topic_queues(&d.admin, &q.name).await {
        Ok(r) => r,
        Err(f) => return failure_page(&d, &title, "/topics", f),
    };
    let mut p = d.page(&title, "/topics");
    p.body.push_str(
        "<table id=\"queues\"><tr><th>Broker</th><th class=\"num\">Queue</th><th class=\"num\">Min offset</th>\
         <th class=\"num\">Max offset</th><th>Last update</th><th></th></tr>",
    );
    for (broker, queue, min, max, last) in &queues {
        let _ = write!(
            p.body,
            "<tr><td>{}</td>{}{}{}<td>{}</td><td>{}</td></tr>",
            esc(broker),
            num(queue),
            num(min),
            num(max),
            brokers::ms_text(*last),
            if max > min {
                format!(
                    "<a href=\"/message?topic={}&queue={queue}&offset={}\">last message</a>",
                    html::url(&q.name),
                    max - 1
                )
            } else {
                String::new()
            },
        );
    }
    p.body.push_str("</table>");
    Html(p.finish()).into_response()
}

/// Per (group, topic): broker offsets, consumer offsets, lag, last consume time.
type GroupTotals = BTreeMap<(String, String), (i64, i64, i64, i64)>;

fn totals(rows: &[brokers::QueueProgress]) -> GroupTotals {
    let mut out: GroupTotals = BTreeMap::new();
    for (g, t, _, _, bo, co, ts) in rows {
        let e = out.entry((g.clone(), t.clone())).or_default();
        e.0 += bo;
        e.1 += co;
        e.2 += (bo - co).max(0);
        e.3 = e.3.max(*ts);
    }
    out
}

fn lag_cell(lag: i64) -> String {
    format!(
        "<td class=\"num lag{}\">{lag}</td>",
        if lag > 0 { " behind" } else { "" }
    )
}

/// `/groups`: every consumer group with its lag per topic.
async fn groups(State(d): Shared) -> Response {
    let (rows, tps) = match brokers::group_progress(&d.admin, None).await {
        Ok(r) => r,
        Err(f) => return failure_page(&d, "Consumer groups", "/groups", f),
    };
    let per_topic = totals(&rows);
    let mut p = d.page("Consumer groups", "/groups");
    let total_lag: i64 = per_topic.values().map(|v| v.2).sum();
    let _ = write!(
        p.body,
        "<p>Total lag <strong id=\"total-lag\">{total_lag}</strong> · consume TPS {tps:.2}</p>"
    );
    p.body.push_str(
        "<table id=\"groups\"><tr><th>Group</th><th>Topic</th><th class=\"num\">Broker offsets</th>\
         <th class=\"num\">Consumer offsets</th><th class=\"num\">Lag</th><th>Last consumed</th></tr>",
    );
    for ((g, t), (bo, co, lag, ts)) in &per_topic {
        let _ = write!(
            p.body,
            "<tr><td class=\"group\"><a href=\"/group?name={}\">{}</a></td><td>{}</td>{}{}{}<td>{}</td></tr>",
            html::url(g),
            esc(g),
            esc(t),
            num(bo),
            num(co),
            lag_cell(*lag),
            brokers::ms_text(*ts),
        );
    }
    p.body.push_str("</table>");
    if per_topic.is_empty() {
        p.body
            .push_str("<p class=\"muted\">No consumer group has committed an offset yet.</p>");
    }
    Html(p.finish()).into_response()
}

/// `/group?name=G`: the group's queues.
async fn group(State(d): Shared, Query(q): Query<NameQuery>) -> Response {
    let title = format!("Consumer group {}", q.name);
    let (rows, tps) = match brokers::group_progress(&d.admin, Some(q.name.clone())).await {
        Ok(r) => r,
        Err(f) => return failure_page(&d, &title, "/groups", f),
    };
    let mut p = d.page(&title, "/groups");
    let lag: i64 = rows.iter().map(|r| (r.4 - r.5).max(0)).sum();
    let _ = write!(
        p.body,
        "<p>Lag <strong id=\"total-lag\">{lag}</strong> · consume TPS {tps:.2}</p>"
    );
    p.body.push_str(
        "<table id=\"queues\"><tr><th>Topic</th><th>Broker</th><th class=\"num\">Queue</th>\
         <th class=\"num\">Broker offset</th><th class=\"num\">Consumer offset</th><th class=\"num\">Lag</th>\
         <th>Last consumed</th></tr>",
    );
    for (_, t, b, queue, bo, co, ts) in &rows {
        let _ = write!(
            p.body,
            "<tr><td>{}</td><td>{}</td>{}{}{}{}<td>{}</td></tr>",
            esc(t),
            esc(b),
            num(queue),
            num(bo),
            num(co),
            lag_cell((bo - co).max(0)),
            brokers::ms_text(*ts),
        );
    }
    p.body.push_str("</table>");
    Html(p.finish()).into_response()
}

#[derive(serde::Deserialize, Default)]
struct MessageQuery {
    topic: Option<String>,
    id: Option<String>,
    key: Option<String>,
    queue: Option<i32>,
    offset: Option<i64>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `/message`: a lookup form; with `id` (offsetMsgId, or a UNIQ_KEY with `topic`), `key` (with
/// `topic`) or `topic` + `queue` + `offset`, the messages found.
async fn message(State(d): Shared, Query(q): Query<MessageQuery>) -> Response {
    let (topic, id, key) = (nonempty(&q.topic), nonempty(&q.id), nonempty(&q.key));
    let mut p = d.page("Message lookup", "/message");
    let _ = write!(
        p.body,
        "<form method=\"get\" action=\"/message\">\
         <label>Topic<input name=\"topic\" value=\"{}\"></label>\
         <label>Message id (offsetMsgId or UNIQ_KEY)<input name=\"id\" value=\"{}\"></label>\
         <label>Key<input name=\"key\" value=\"{}\"></label>\
         <button type=\"submit\">Look up</button></form>",
        esc(topic.as_deref().unwrap_or("")),
        esc(id.as_deref().unwrap_or("")),
        esc(key.as_deref().unwrap_or("")),
    );
    let query = match (&id, &key, &topic, q.queue, q.offset) {
        (Some(id), _, t, _, _) => MsgQuery::Id(id.clone(), t.clone()),
        (None, Some(k), Some(t), _, _) => MsgQuery::Key(t.clone(), k.clone()),
        (None, None, Some(t), Some(queue), Some(offset)) => {
            MsgQuery::Offset(t.clone(), queue, offset)
        }
        (None, Some(_), None, _, _) => {
            p.body
                .push_str("<p class=\"error\">A key lookup needs the topic.</p>");
            return (StatusCode::BAD_REQUEST, Html(p.finish())).into_response();
        }
        _ => return Html(p.finish()).into_response(),
    };
    let found = match brokers::find_messages(&d.admin, &query).await {
        Ok(f) => f,
        Err(f) => {
            let _ = write!(p.body, "<p class=\"error\">{}</p>", esc(&f.message));
            let status = if f.exit == crate::admin::exit::USAGE {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            return (status, Html(p.finish())).into_response();
        }
    };
    if found.is_empty() {
        p.body
            .push_str("<p class=\"error\" id=\"not-found\">No message found.</p>");
        return (StatusCode::NOT_FOUND, Html(p.finish())).into_response();
    }
    let _ = write!(
        p.body,
        "<p class=\"muted\" id=\"found\">{}</p>",
        match found.len() {
            1 => "1 message found.".to_owned(),
            n => format!("{n} messages found (a key lookup returns at most 64 per broker)."),
        }
    );
    for m in &found {
        p.body.push_str("<h2>Message</h2><table class=\"message\">");
        for (k, v) in brokers::message_fields(m) {
            let _ = write!(p.body, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
        }
        for (k, v) in &m.properties {
            let _ = write!(
                p.body,
                "<tr><th>property {}</th><td>{}</td></tr>",
                esc(k),
                esc(v)
            );
        }
        let _ = write!(
            p.body,
            "</table><pre class=\"body\">{}</pre>",
            esc(&brokers::body_text(&m.body))
        );
    }
    Html(p.finish()).into_response()
}

/// Serves the dashboard on `listen` until `stop` resolves; returns the bound address.
pub async fn serve(
    admin: Admin,
    listen: &str,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    rmq_http::serve(listen, Dashboard::new(admin).router(), stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_topics_are_told_apart() {
        let names = vec!["DefaultCluster".to_owned(), "broker-a".to_owned()];
        for t in [
            "%RETRY%g",
            "%DLQ%g",
            "RMQ_SYS_TRACE_TOPIC",
            "TBW102",
            "SCHEDULE_TOPIC_XXXX",
            "DefaultCluster_REPLY_TOPIC",
            "DefaultCluster",
            "broker-a",
        ] {
            assert!(is_system_topic(t, &names), "{t}");
        }
        assert!(!is_system_topic("Orders", &names));
    }

    #[test]
    fn lag_cells_flag_groups_behind() {
        assert_eq!(lag_cell(0), "<td class=\"num lag\">0</td>");
        assert_eq!(lag_cell(7), "<td class=\"num lag behind\">7</td>");
    }
}
