//! # rmq-http
//!
//! The HTTP side of rmq, in one place: the Prometheus `/metrics` endpoint the NameServer and the
//! broker expose (one endpoint can serve several sources, as `rmq standalone` does), the label
//! sets and histogram buckets both use, and the server loop the dashboard also runs on.
//!
//! Each connection is its own task (axum over hyper), so a client that opens connections and
//! sends nothing, or reads slowly, holds only its own task and socket: other scrapes and pages
//! are answered meanwhile (tested with a crowd of idle connections and a canary).

/// The axum the server runs (routers built elsewhere must come from the same version).
pub use axum;
use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::histogram::Histogram;
use std::net::SocketAddr;
use std::sync::Arc;

/// Labels of request-latency histograms: Java's `rocketmq_rpc_latency` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Request code.
    pub request_code: i32,
    /// Response code.
    pub response_code: i32,
}

/// A request-latency histogram in milliseconds, with the buckets Java's broker uses for
/// `rocketmq_rpc_latency` (1, 3, 5, 10, 50, 100, 1000 ms, plus 0.1 and 0.5 ms: rmq answers
/// most requests well under a millisecond).
pub fn rpc_histogram() -> Histogram {
    Histogram::new([0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 50.0, 100.0, 1000.0].into_iter())
}

/// What every rmq server exports about its own traffic, under a name prefix: request latency
/// by request and response code (its `_count` is the requests by code and result), open
/// connections, and bytes read and written. The broker registers it as `rocketmq` (Java's
/// names), the NameServer as `rocketmq_namesrv`.
pub struct ServerMetrics {
    rpc_latency: prometheus_client::metrics::family::Family<RpcLabels, Histogram>,
    connections: prometheus_client::metrics::gauge::Gauge,
    network_in: prometheus_client::metrics::counter::Counter,
    network_out: prometheus_client::metrics::counter::Counter,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            rpc_latency: prometheus_client::metrics::family::Family::new_with_constructor(
                rpc_histogram,
            ),
            connections: Default::default(),
            network_in: Default::default(),
            network_out: Default::default(),
        }
    }
}

impl ServerMetrics {
    /// Registers `<prefix>_rpc_latency`, `<prefix>_connections`, `<prefix>_network_in_bytes`
    /// and `<prefix>_network_out_bytes`; `whose` names the connections in the help texts.
    pub fn register(
        &self,
        registry: &mut prometheus_client::registry::Registry,
        prefix: &str,
        whose: &str,
    ) {
        registry.register(
            format!("{prefix}_rpc_latency"),
            "Request handling time in ms, by request and response code",
            self.rpc_latency.clone(),
        );
        registry.register(
            format!("{prefix}_connections"),
            format!("Open {whose} connections"),
            self.connections.clone(),
        );
        registry.register(
            format!("{prefix}_network_in_bytes"),
            format!("Bytes read from {whose} connections"),
            self.network_in.clone(),
        );
        registry.register(
            format!("{prefix}_network_out_bytes"),
            format!("Bytes written to {whose} connections"),
            self.network_out.clone(),
        );
    }

    /// One answered request.
    pub fn rpc(&self, request_code: i32, response_code: i32, millis: f64) {
        self.rpc_latency
            .get_or_create(&RpcLabels {
                request_code,
                response_code,
            })
            .observe(millis);
    }

    /// Reads the server's connections and byte totals, at scrape time (the totals are the
    /// server's own counters: the metric counters take their value).
    pub fn observe(&self, server: &rmq_remoting::RemotingServer) {
        use std::sync::atomic::Ordering;
        self.connections.set(server.connection_count() as i64);
        let (bytes_in, bytes_out) = server.traffic();
        self.network_in.inner().store(bytes_in, Ordering::Relaxed);
        self.network_out.inner().store(bytes_out, Ordering::Relaxed);
    }
}

/// One source of metrics text: encodes its registry (without the closing `# EOF`), reading
/// any scrape-time gauges first.
pub type MetricsSource = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// Encodes a registry's families, without `# EOF` (the endpoint appends it once).
pub fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut out, registry) {
        tracing::error!(error = %e, "metrics not encoded");
    }
    out
}

/// The `/metrics` route: every source's text, one after the other, then `# EOF`.
pub fn metrics_router(sources: Vec<MetricsSource>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let sources = sources.clone();
            async move {
                let mut out = String::new();
                for s in &sources {
                    out.push_str(&s().await);
                }
                let _ = prometheus_client::encoding::text::encode_eof(&mut out);
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    out,
                )
            }
        }),
    )
}

/// Binds `addr` and serves `router` until `stop` resolves; returns the bound address (port 0
/// picks one) and the server's task.
pub async fn serve(
    addr: &str,
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "http server failed");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn sources_are_joined_under_one_eof() {
        let a: MetricsSource = Arc::new(|| Box::pin(async { "# TYPE a gauge\na 1\n".to_owned() }));
        let b: MetricsSource = Arc::new(|| Box::pin(async { "# TYPE b gauge\nb 2\n".to_owned() }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, task) = serve("127.0.0.1:0", metrics_router(vec![a, b]), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        let body = get(addr, "/metrics").await;
        assert!(body.contains("a 1\n# TYPE b gauge\nb 2\n# EOF\n"), "{body}");
        assert_eq!(body.matches("# EOF").count(), 1);
        let _ = tx.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }

    /// A crowd of connections that send nothing (or half a request) does not keep a scrape
    /// from being answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_and_half_sent_connections_do_not_block_a_scrape() {
        let a: MetricsSource = Arc::new(|| Box::pin(async { "# TYPE a gauge\na 1\n".to_owned() }));
        let (addr, _task) = serve(
            "127.0.0.1:0",
            metrics_router(vec![a]),
            std::future::pending(),
        )
        .await
        .unwrap();
        let mut crowd = Vec::new();
        for i in 0..300 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .unwrap();
            }
            crowd.push(s);
        }
        let started = std::time::Instant::now();
        let body = tokio::time::timeout(std::time::Duration::from_secs(10), get(addr, "/metrics"))
            .await
            .expect("the canary scrape was answered");
        assert!(body.contains("a 1"), "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        drop(crowd);
    }

    /// A client that pipelines requests and never reads the answers fills its own socket,
    /// not the server: a canary on another connection is still answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_does_not_block_a_canary() {
        let big = "x".repeat(64 * 1024);
        let a: MetricsSource = Arc::new(move || {
            let big = big.clone();
            Box::pin(async move { format!("# TYPE a gauge\na 1\n# {big}\n") })
        });
        let (addr, _task) = serve(
            "127.0.0.1:0",
            metrics_router(vec![a]),
            std::future::pending(),
        )
        .await
        .unwrap();
        let mut hog = tokio::net::TcpStream::connect(addr).await.unwrap();
        let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(500);
        // Written from a task of its own: once the server stops reading it, this blocks, and
        // only this.
        let writer = tokio::spawn(async move {
            let _ = hog.write_all(requests.as_bytes()).await;
            hog
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let body = tokio::time::timeout(std::time::Duration::from_secs(10), get(addr, "/metrics"))
            .await
            .expect("the canary scrape was answered");
        assert!(body.contains("a 1"), "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        writer.abort();
    }
}
