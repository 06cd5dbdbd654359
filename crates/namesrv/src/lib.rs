//! # rmq-namesrv
//!
//! A RocketMQ 5.x NameServer on rmq-remoting: Java brokers register with it, Java, C++, Go and
//! JavaScript clients read routes from it, byte-for-byte as from the Java NameServer (spec §7).
//! Route tables live in [`route`], KV config in [`kv`], settings in [`config`], request handling
//! in [`processor`]; bodies are written by [`fastjson`] exactly as Java writes them.

pub mod config;
pub mod fastjson;
pub mod kv;
pub mod metrics;
pub use rmq_config::persist;
pub mod processor;
pub mod route;
pub mod state;

use config::NamesrvConfig;
use processor::NamesrvProcessor;
use rmq_protocol::codes::request;
use rmq_protocol::{LanguageCode, MqVersion};
use rmq_remoting::{
    ChannelEvent, ChannelEventListener, ExecutorConfig, ProcessorRegistry, RemotingServer,
    ServerBuilder, ServerConfig,
};
use state::State;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Why the NameServer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// KV config file unreadable or corrupt.
    #[error(transparent)]
    Kv(#[from] kv::KvError),
    /// Could not listen.
    #[error(transparent)]
    Remoting(#[from] rmq_remoting::RemotingError),
}

/// Unregisters brokers whose connection closes, at once (spec §7.8).
struct BrokerChannels(Arc<State>);

impl ChannelEventListener for BrokerChannels {
    fn on_event(&self, event: ChannelEvent) {
        match event {
            ChannelEvent::Close(c) | ChannelEvent::Exception(c, _) | ChannelEvent::Idle(c) => {
                self.0.route.on_channel_destroy(c.id, &c.peer)
            }
            _ => {}
        }
    }
}

/// A running NameServer.
pub struct NameServer {
    server: Arc<RemotingServer>,
    state: Arc<State>,
    scanner: tokio::task::JoinHandle<()>,
    metrics: std::sync::Mutex<Option<(SocketAddr, tokio::task::JoinHandle<()>)>>,
    /// Tells the metrics endpoint to stop.
    stop: tokio::sync::watch::Sender<bool>,
}

impl NameServer {
    /// Loads the KV config, binds `bindAddress:listenPort` and starts the liveness scan.
    pub async fn start(config: NamesrvConfig) -> Result<NameServer, StartError> {
        Self::start_with_tls(config, None).await
    }

    /// Same, serving TLS as `tls` says (modes, certificates, client auth).
    pub async fn start_with_tls(
        config: NamesrvConfig,
        tls: Option<rmq_remoting::ServerTlsConfig>,
    ) -> Result<NameServer, StartError> {
        let kv_path =
            (!config.kv_config_path.is_empty()).then(|| PathBuf::from(&config.kv_config_path));
        let kv = kv::KvConfigManager::load(kv_path)?;
        let state = Arc::new(State {
            route: route::RouteInfoManager::new(config.delete_topic_with_broker_registration),
            kv,
            config: RwLock::new(config.clone()),
            persisting_config: std::sync::Mutex::new(()),
            started: Instant::now(),
            metrics: metrics::NamesrvMetrics::default(),
        });
        notify_min_broker_id_changes(&state);
        let processor = Arc::new(NamesrvProcessor(state.clone()));
        let mut registry = ProcessorRegistry::new();
        registry.register(
            request::GET_ROUTEINFO_BY_TOPIC,
            processor.clone(),
            ExecutorConfig::new(
                config.client_request_thread_pool_nums,
                config.client_request_thread_pool_queue_capacity,
            ),
        );
        registry.register_default(
            processor,
            ExecutorConfig::new(
                config.default_thread_pool_nums,
                config.default_thread_pool_queue_capacity,
            ),
        );
        let server_config = ServerConfig {
            listen_addr: format!("{}:{}", config.bind_address, config.listen_port),
            idle_timeout: Duration::from_secs(config.server_channel_max_idle_time_seconds.max(1)),
            // Answer as the Java NameServer does, so responses are byte-identical (spec §10).
            language: LanguageCode::JAVA,
            version: MqVersion::CURRENT,
            tls,
            ..Default::default()
        };
        let server = Arc::new(
            ServerBuilder::new(server_config)
                .registry(registry)
                .event_listener(Arc::new(BrokerChannels(state.clone())))
                .bind()
                .await?,
        );
        let interval = Duration::from_millis(config.scan_not_active_broker_interval.max(10));
        let scan_state = state.clone();
        let scanner = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                tick.tick().await;
                scan_state.route.scan_not_active();
            }
        });
        tracing::info!(addr = %server.local_addr(), "name server started");
        Ok(NameServer {
            server,
            state,
            scanner,
            metrics: Default::default(),
            stop: tokio::sync::watch::channel(false).0,
        })
    }

    /// The NameServer's Prometheus metrics as a source (`rmq standalone` serves it on the
    /// broker's endpoint).
    pub fn metrics_source(&self) -> rmq_http::MetricsSource {
        state::metrics_source(Arc::downgrade(&self.state), Arc::downgrade(&self.server))
    }

    /// Serves `/metrics` on `addr` (`rmq namesrv --metrics`) until shutdown; returns the bound
    /// address.
    pub async fn serve_metrics(&self, addr: &str) -> std::io::Result<SocketAddr> {
        let mut stop = self.stop.subscribe();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let (bound, task) = rmq_http::serve(
            addr,
            rmq_http::metrics_router(vec![self.metrics_source()]),
            stopped,
        )
        .await?;
        tracing::info!(addr = %bound, "name server metrics served at /metrics");
        *self.metrics.lock().unwrap_or_else(|p| p.into_inner()) = Some((bound, task));
        Ok(bound)
    }

    /// Where `/metrics` is served, if [`NameServer::serve_metrics`] was called.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(a, _)| *a)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The route tables (for embedding and tests).
    pub fn route(&self) -> &route::RouteInfoManager {
        &self.state.route
    }

    /// Graceful shutdown: GO_AWAY window, in-flight requests drained, connections closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let metrics = self
            .metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((_, task)) = metrics {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.scanner.abort();
        self.server.shutdown().await;
    }

    /// Immediate shutdown.
    pub fn shutdown_now(&self) {
        let _ = self.stop.send(true);
        self.scanner.abort();
        self.server.shutdown_now();
    }
}

/// notifyMinBrokerIdChanged: when the route tables see a group's lowest broker id change and the
/// setting is on, tell the chosen brokers with a oneway NOTIFY_MIN_BROKER_ID_CHANGE (300 ms
/// each, as Java), from a task of its own so no table lock or request waits for it. The NameServer
/// dials brokers at their registered addresses with a client of its own (language JAVA, as
/// Java's NameServer).
fn notify_min_broker_id_changes(state: &Arc<State>) {
    let client = rmq_remoting::RemotingClient::new(rmq_remoting::ClientConfig {
        language: LanguageCode::JAVA,
        ..Default::default()
    });
    let weak = Arc::downgrade(state);
    state.route.on_min_broker_id_change(move |change| {
        let Some(state) = weak.upgrade() else { return };
        if !state.config().notify_min_broker_id_changed {
            return;
        }
        let client = client.clone();
        tokio::spawn(async move {
            let targets = change.targets();
            tracing::info!(?change.broker_addrs, ?targets, "min broker id changed, notifying");
            for addr in targets {
                let mut req = change.request();
                req.opaque = rmq_protocol::next_opaque();
                if let Err(e) = client
                    .invoke_oneway(&addr, req, Duration::from_millis(300))
                    .await
                {
                    tracing::warn!(%addr, error = %e, "NOTIFY_MIN_BROKER_ID_CHANGE not sent");
                }
            }
        });
    });
}
