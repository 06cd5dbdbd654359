//! Prometheus metrics (`metricsExporterType=PROM`, `metricsPromExporterHost:Port`), named as the
//! Java 5.x broker's OpenTelemetry metrics where one exists, so existing Grafana dashboards
//! work: messages and bytes in and out per topic and group, request latency per request and
//! response code, connections, consumer lag, held pulls, store size and disk usage. Counters
//! move on the request path (atomics, no lock held across I/O); gauges are read at scrape time.
//! Encoded by the `prometheus-client` crate, served by axum at `/metrics`.

use crate::BrokerState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

/// Labels of per-topic counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Topic.
    pub topic: String,
}

/// Labels of per-topic, per-group series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub consumer_group: String,
}

pub use rmq_http::RpcLabels;

/// Every series the broker exports.
pub struct Metrics {
    registry: std::sync::Mutex<Registry>,
    /// rocketmq_messages_in_total.
    pub messages_in: Family<TopicLabels, Counter>,
    /// rocketmq_throughput_in_total (bytes of bodies).
    pub throughput_in: Family<TopicLabels, Counter>,
    /// rocketmq_messages_out_total.
    pub messages_out: Family<GroupLabels, Counter>,
    /// rocketmq_throughput_out_total.
    pub throughput_out: Family<GroupLabels, Counter>,
    /// rocketmq_rpc_latency, rocketmq_connections, rocketmq_network_{in,out}_bytes.
    pub server: rmq_http::ServerMetrics,
    pull_holds: Gauge,
    consumer_lag: Family<GroupLabels, Gauge>,
    storage_size: Gauge,
    disk_ratio: Gauge<f64, AtomicU64>,
    flush_latency: Family<FlushLabels, Gauge<f64, AtomicU64>>,
}

/// Labels of the flush latency gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlushLabels {
    /// `group_commit` (SYNC_FLUSH acknowledgements wait for it) or `periodic`.
    pub kind: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let m = Metrics {
            registry: std::sync::Mutex::new(Registry::default()),
            messages_in: Family::default(),
            throughput_in: Family::default(),
            messages_out: Family::default(),
            throughput_out: Family::default(),
            server: rmq_http::ServerMetrics::default(),
            pull_holds: Gauge::default(),
            consumer_lag: Family::default(),
            storage_size: Gauge::default(),
            disk_ratio: Gauge::default(),
            flush_latency: Family::default(),
        };
        r.register(
            "rocketmq_messages_in",
            "Messages stored",
            m.messages_in.clone(),
        );
        r.register(
            "rocketmq_throughput_in",
            "Bytes of message bodies stored",
            m.throughput_in.clone(),
        );
        r.register(
            "rocketmq_messages_out",
            "Messages returned by pulls",
            m.messages_out.clone(),
        );
        r.register(
            "rocketmq_throughput_out",
            "Bytes of records returned by pulls",
            m.throughput_out.clone(),
        );
        m.server.register(&mut r, "rocketmq", "client");
        r.register(
            "rocketmq_pull_long_polling_holds",
            "Pulls held until a message arrives",
            m.pull_holds.clone(),
        );
        r.register(
            "rocketmq_consumer_lag_messages",
            "Messages stored and not yet committed by a group",
            m.consumer_lag.clone(),
        );
        r.register(
            "rocketmq_storage_size",
            "Bytes of commit log held",
            m.storage_size.clone(),
        );
        r.register(
            "rocketmq_storage_disk_ratio",
            "Used fraction of the store's filesystem",
            m.disk_ratio.clone(),
        );
        r.register(
            "rocketmq_storage_flush_latency_ms",
            "How long the last flush took",
            m.flush_latency.clone(),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        m
    }
}

impl Metrics {
    /// A stored message.
    pub fn message_in(&self, topic: &str, bytes: usize) {
        let l = TopicLabels {
            topic: topic.to_owned(),
        };
        self.messages_in.get_or_create(&l).inc();
        self.throughput_in.get_or_create(&l).inc_by(bytes as u64);
    }

    /// Messages a pull returned.
    pub fn messages_out(&self, topic: &str, group: &str, count: usize, bytes: usize) {
        let l = GroupLabels {
            topic: topic.to_owned(),
            consumer_group: group.to_owned(),
        };
        self.messages_out.get_or_create(&l).inc_by(count as u64);
        self.throughput_out.get_or_create(&l).inc_by(bytes as u64);
    }

    /// One handled request.
    pub fn rpc(&self, request_code: i32, response_code: i32, millis: f64) {
        self.server.rpc(request_code, response_code, millis);
    }
}

/// Sets the scrape-time gauges and encodes everything.
async fn render(state: &Arc<BrokerState>, server: &rmq_remoting::RemotingServer) -> String {
    let m = &state.metrics;
    m.server.observe(server);
    m.pull_holds.set(state.notifier.held() as i64);
    let root = state.config().store_root();
    if let Ok(r) = rmq_store::store::disk_used_ratio(&root) {
        m.disk_ratio.set(r);
    }
    let (start, end) = state.store.run(|st| st.log_range()).await.unwrap_or((0, 0));
    m.storage_size.set((end - start) as i64);
    let l = state.store.flush_latency();
    for (kind, micros) in [
        ("group_commit", &l.group_commit_micros),
        ("periodic", &l.periodic_micros),
    ] {
        m.flush_latency
            .get_or_create(&FlushLabels { kind: kind.into() })
            .set(micros.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0);
    }
    // Lag per (topic, group) with committed offsets.
    let committed = state.offsets.all();
    let lags = state
        .store
        .run(move |st| {
            committed
                .into_iter()
                .map(|((topic, group), queues)| {
                    let lag: i64 = queues
                        .iter()
                        .map(|(q, o)| (st.max_offset(&topic, *q) as i64 - o).max(0))
                        .sum();
                    (topic, group, lag)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    for (topic, group, lag) in lags {
        m.consumer_lag
            .get_or_create(&GroupLabels {
                topic,
                consumer_group: group,
            })
            .set(lag);
    }
    let registry = m.registry.lock().unwrap_or_else(|p| p.into_inner());
    rmq_http::encode(&registry)
}

/// The broker's metrics as a source for an endpoint (see [`rmq_http::metrics_router`]): empty
/// once the broker is gone.
pub fn source(
    state: Weak<BrokerState>,
    server: Weak<rmq_remoting::RemotingServer>,
) -> rmq_http::MetricsSource {
    Arc::new(move || {
        let (state, server) = (state.clone(), server.clone());
        Box::pin(async move {
            match (state.upgrade(), server.upgrade()) {
                (Some(s), Some(server)) => render(&s, &server).await,
                _ => String::new(),
            }
        })
    })
}
