//! The NameServer's Prometheus metrics: requests by code and result with their latency, open
//! connections, bytes read and written, live brokers and routed topics. The Java NameServer
//! exports none, so these carry a `rocketmq_namesrv_` prefix of their own; they never collide
//! with the broker's series when `rmq standalone` serves both on one endpoint.

use crate::processor::State;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rmq_http::RpcLabels;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Every series the NameServer exports.
pub struct NamesrvMetrics {
    registry: std::sync::Mutex<Registry>,
    rpc_latency: Family<RpcLabels, Histogram>,
    connections: Gauge,
    network_in: Counter,
    network_out: Counter,
    brokers: Gauge,
    topics: Gauge,
}

impl Default for NamesrvMetrics {
    fn default() -> Self {
        let m = NamesrvMetrics {
            registry: Default::default(),
            rpc_latency: Family::new_with_constructor(rmq_http::rpc_histogram),
            connections: Gauge::default(),
            network_in: Counter::default(),
            network_out: Counter::default(),
            brokers: Gauge::default(),
            topics: Gauge::default(),
        };
        let mut r = Registry::default();
        r.register(
            "rocketmq_namesrv_rpc_latency",
            "NameServer request handling time in ms, by request and response code",
            m.rpc_latency.clone(),
        );
        r.register(
            "rocketmq_namesrv_connections",
            "Open connections to the NameServer (brokers, clients, admin tools)",
            m.connections.clone(),
        );
        r.register(
            "rocketmq_namesrv_network_in_bytes",
            "Bytes read from the NameServer's connections",
            m.network_in.clone(),
        );
        r.register(
            "rocketmq_namesrv_network_out_bytes",
            "Bytes written to the NameServer's connections",
            m.network_out.clone(),
        );
        r.register(
            "rocketmq_namesrv_live_brokers",
            "Brokers registered and not expired",
            m.brokers.clone(),
        );
        r.register(
            "rocketmq_namesrv_topics",
            "Topics with a route",
            m.topics.clone(),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        m
    }
}

impl NamesrvMetrics {
    /// One answered request.
    pub fn rpc(&self, request_code: i32, response_code: i32, millis: f64) {
        self.rpc_latency
            .get_or_create(&RpcLabels {
                request_code: request_code.to_string(),
                response_code: response_code.to_string(),
            })
            .observe(millis);
    }
}

fn render(state: &State, server: &rmq_remoting::RemotingServer) -> String {
    let m = &state.metrics;
    m.connections.set(server.connection_count() as i64);
    let (bytes_in, bytes_out) = server.traffic();
    // Totals the server keeps: the counters take their value at scrape time.
    m.network_in.inner().store(bytes_in, Ordering::Relaxed);
    m.network_out.inner().store(bytes_out, Ordering::Relaxed);
    m.brokers.set(state.route.live_count() as i64);
    m.topics.set(state.route.topic_count() as i64);
    let registry = m.registry.lock().unwrap_or_else(|p| p.into_inner());
    rmq_http::encode(&registry)
}

/// The NameServer's metrics as a source for an endpoint: empty once the NameServer is gone.
pub(crate) fn source(
    state: Weak<State>,
    server: Weak<rmq_remoting::RemotingServer>,
) -> rmq_http::MetricsSource {
    Arc::new(move || {
        let text = match (state.upgrade(), server.upgrade()) {
            (Some(s), Some(server)) => render(&s, &server),
            _ => String::new(),
        };
        Box::pin(std::future::ready(text))
    })
}
