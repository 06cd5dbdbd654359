//! The NameServer's Prometheus metrics: requests by code and result with their latency, open
//! connections, bytes read and written, live brokers and routed topics. The Java NameServer
//! exports none, so these carry a `rocketmq_namesrv_` prefix of their own; they never collide
//! with the broker's series when `rmq standalone` serves both on one endpoint.

use crate::route::RouteInfoManager;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every series the NameServer exports.
pub struct NamesrvMetrics {
    registry: std::sync::Mutex<Registry>,
    server: rmq_http::ServerMetrics,
    brokers: Gauge,
    topics: Gauge,
}

impl Default for NamesrvMetrics {
    fn default() -> Self {
        let m = NamesrvMetrics {
            registry: Default::default(),
            server: rmq_http::ServerMetrics::default(),
            brokers: Gauge::default(),
            topics: Gauge::default(),
        };
        let mut r = Registry::default();
        m.server.register(&mut r, "rocketmq_namesrv", "NameServer");
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
        self.server.rpc(request_code, response_code, millis);
    }

    /// Every series in the text exposition format, sampled now: the gauges are read from the
    /// route tables and the server at scrape time rather than kept up to date on every change.
    pub(crate) fn render(
        &self,
        route: &RouteInfoManager,
        server: &rmq_remoting::RemotingServer,
    ) -> String {
        self.server.observe(server);
        self.brokers.set(route.live_count() as i64);
        self.topics.set(route.topic_count() as i64);
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        rmq_http::encode(&registry)
    }
}
