//! Registration with the NameServers (spec §3.1): REGISTER_BROKER with every topic at start and
//! periodically, with only the changed topic when one is created or changed (Java 5's
//! `registerIncrementBrokerData`: creating N topics costs N small registrations, not N full
//! ones); UNREGISTER_BROKER at shutdown. Each NameServer is asked in parallel with its own
//! timeout, so a dead one delays nothing.

use crate::config::BrokerConfig;
use crate::topics::TopicManager;
use crate::BrokerState;
use rmq_model::call::{RegisterBroker, UnregisterBroker};
use rmq_model::Caller;
use rmq_protocol::headers::broker::{RegisterBrokerRequestHeader, UnRegisterBrokerRequestHeader};
use rmq_protocol::LanguageCode;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::time::Duration;

/// The broker's client to its NameServers.
pub struct Registrar {
    client: RemotingClient,
    /// Serialises registrations so an older body never lands after a newer one.
    turn: tokio::sync::Mutex<()>,
}

impl Registrar {
    /// A client speaking as a Java broker does.
    pub fn new(_config: &BrokerConfig) -> Registrar {
        Registrar {
            client: RemotingClient::new(ClientConfig {
                language: LanguageCode::JAVA,
                ..Default::default()
            }),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    fn header(c: &BrokerConfig) -> RegisterBrokerRequestHeader {
        RegisterBrokerRequestHeader {
            broker_name: c.broker_name.clone(),
            broker_addr: c.broker_addr(),
            cluster_name: c.broker_cluster_name.clone(),
            ha_server_addr: c.ha_server_addr(),
            broker_id: c.broker_id,
            heartbeat_timeout_millis: None,
            enable_acting_master: Some(false),
            compressed: Some(false),
            body_crc32: None,
        }
    }

    /// The RegisterBrokerBody JSON: every topic (system ones included) and the data version.
    pub fn body(topics: &TopicManager, broker_perm: i32) -> Vec<u8> {
        let (version, list) = topics.snapshot(broker_perm);
        Self::body_of(&version, &list)
    }

    fn body_of(
        version: &rmq_model::route::DataVersion,
        list: &[crate::topics::TopicConfig],
    ) -> Vec<u8> {
        let body = serde_json::json!({
            "filterServerList": [],
            "topicConfigSerializeWrapper": TopicManager::wrapper_json(version, list),
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// Registers with every NameServer (failures are logged; the next period retries).
    pub async fn register_all(&self, s: &BrokerState) {
        self.register(s, None).await
    }

    /// Registers only `topics` (with the current data version) with every NameServer. A
    /// NameServer adds the queues of listed topics and keeps the others (Java's default
    /// `deleteTopicWithBrokerRegistration=false`); the next full registration covers a
    /// failure.
    pub async fn register_topics(&self, s: &BrokerState, topics: &[&str]) {
        self.register(s, Some(topics)).await
    }

    async fn register(&self, s: &BrokerState, only: Option<&[&str]>) {
        let (addrs, header, timeout, perm) = {
            let c = s.config();
            (
                c.namesrv_addrs(),
                Self::header(&c),
                Duration::from_millis(c.register_broker_timeout_mills.clamp(100, 24_000)),
                c.broker_permission,
            )
        };
        if addrs.is_empty() {
            return;
        }
        let _turn = self.turn.lock().await;
        let body = match only {
            None => Self::body(&s.topics, perm),
            Some(names) => {
                let (version, list) = s.topics.snapshot_of(names, perm);
                Self::body_of(&version, &list)
            }
        };
        let req = RegisterBroker::new(header, body);
        let calls = addrs.iter().map(|addr| {
            let req = &req;
            async move {
                if let Err(e) = self.client.call(addr, req, timeout).await {
                    tracing::warn!(namesrv = %addr, error = %e, "REGISTER_BROKER failed");
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }

    /// Unregisters from every NameServer (graceful shutdown).
    pub async fn unregister_all(&self, s: &BrokerState) {
        let (addrs, header) = {
            let c = s.config();
            (
                c.namesrv_addrs(),
                UnRegisterBrokerRequestHeader {
                    broker_name: c.broker_name.clone(),
                    broker_addr: c.broker_addr(),
                    cluster_name: c.broker_cluster_name.clone(),
                    broker_id: c.broker_id,
                },
            )
        };
        let req = UnregisterBroker { header };
        let calls = addrs.iter().map(|addr| {
            let req = &req;
            async move {
                if let Err(e) = self.client.call(addr, req, Duration::from_secs(3)).await {
                    tracing::warn!(namesrv = %addr, error = %e, "UNREGISTER_BROKER failed");
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }
}
