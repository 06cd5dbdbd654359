//! What every request handler shares, in a module of its own so that [`crate::processor`] and
//! [`crate::metrics`] both build on it without either depending on the other.

use crate::config::NamesrvConfig;
use crate::kv::KvConfigManager;
use crate::metrics::NamesrvMetrics;
use crate::route::RouteInfoManager;
use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;

/// Everything the handlers share.
pub struct State {
    /// Route tables.
    pub route: RouteInfoManager,
    /// KV config.
    pub kv: KvConfigManager,
    /// Live configuration (UPDATE_NAMESRV_CONFIG changes it).
    pub config: RwLock<NamesrvConfig>,
    /// Held by an UPDATE_NAMESRV_CONFIG from its change to the end of its file write.
    pub persisting_config: std::sync::Mutex<()>,
    /// Start time (needWaitForService).
    pub started: Instant,
    /// Request counts and latencies (served when the NameServer's metrics are on).
    pub metrics: NamesrvMetrics,
}

impl State {
    /// Reads the live configuration under its lock: request paths look at a flag or two, so
    /// nothing is cloned per request.
    pub(crate) fn config(&self) -> std::sync::RwLockReadGuard<'_, NamesrvConfig> {
        self.config.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The NameServer's metrics as a source for an endpoint: empty once the NameServer is gone.
/// Weak references, so an endpoint outliving the NameServer keeps neither alive.
pub(crate) fn metrics_source(
    state: Weak<State>,
    server: Weak<rmq_remoting::RemotingServer>,
) -> rmq_http::MetricsSource {
    Arc::new(move || {
        let text = match (state.upgrade(), server.upgrade()) {
            (Some(s), Some(server)) => s.metrics.render(&s.route, &server),
            _ => String::new(),
        };
        Box::pin(std::future::ready(text))
    })
}
