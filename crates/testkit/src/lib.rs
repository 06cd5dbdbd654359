//! Test helpers for the crates that sit on the NameServer (producer, CLI): a NameServer on
//! 127.0.0.1:0 with its files in a temporary directory, brokers registered the way a 5.x
//! broker registers, and third-party clients installed on first use ([`e2e`]).
//!
//! The end-to-end tests with those clients live in this crate's `tests/` (they need the runtime
//! and the NameServer both).

use rmq_model::call::RegisterBroker;
use rmq_model::Caller;
use rmq_namesrv::config::NamesrvConfig;
use rmq_namesrv::NameServer;
use rmq_protocol::headers::broker::RegisterBrokerRequestHeader;
use rmq_remoting::{
    ClientConfig, ProcessorRegistry, RemotingClient, RemotingServer, ServerBuilder, ServerConfig,
};
use std::time::Duration;

pub mod e2e;
pub mod flood;
pub mod java_format;
pub mod process;
pub mod requests;

/// A NameServer on an ephemeral port; keep the directory alive as long as the server.
pub async fn namesrv() -> (NameServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ns = NameServer::start(NamesrvConfig {
        listen_port: 0,
        kv_config_path: dir.path().join("kv.json").display().to_string(),
        config_store_path: dir.path().join("ns.properties").display().to_string(),
        ..Default::default()
    })
    .await
    .expect("NameServer starts");
    (ns, dir)
}

/// A RegisterBrokerBody listing `topics` (4 read/write queues each, perm 6).
pub fn register_body(topics: &[&str]) -> String {
    let table: Vec<String> = topics
        .iter()
        .map(|t| {
            format!(r#""{t}":{{"perm":6,"readQueueNums":4,"topicName":"{t}","topicSysFlag":0,"writeQueueNums":4}}"#)
        })
        .collect();
    format!(
        r#"{{"filterServerList":[],"topicConfigSerializeWrapper":{{"dataVersion":{{"counter":1,"stateVersion":0,"timestamp":1}},"topicConfigTable":{{{}}}}}}}"#,
        table.join(",")
    )
}

/// Registers master `name` at `broker_addr` in cluster `cluster` serving `topics`, and returns
/// the client that did it: keep it alive, a broker whose connection closes is removed.
pub async fn register_broker(
    ns_addr: &str,
    cluster: &str,
    name: &str,
    broker_addr: &str,
    topics: &[&str],
) -> RemotingClient {
    let header = RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: broker_addr.into(),
        cluster_name: cluster.into(),
        ha_server_addr: String::new(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: Some(false),
        body_crc32: None,
    };
    let client = RemotingClient::new(ClientConfig::default());
    let registration = RegisterBroker::new(header, register_body(topics));
    if let Err(e) = client
        .call(ns_addr, &registration, Duration::from_secs(3))
        .await
    {
        panic!("registration refused: {e}");
    }
    client
}

/// A server on 127.0.0.1:0 answering with `registry` (a stand-in broker).
pub async fn serve(registry: ProcessorRegistry) -> RemotingServer {
    ServerBuilder::new(ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .registry(registry)
    .bind()
    .await
    .expect("stand-in server binds")
}

/// A NameServer and a broker on 127.0.0.1:0 with their files in temp dirs (what `rmq
/// standalone` runs), for the tests of the crates on top of the broker (consumer, CLI).
pub struct Standalone {
    /// The NameServer.
    pub ns: NameServer,
    /// The broker (registered with `ns`).
    pub broker: rmq_broker::Broker,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Standalone {
    /// Starts both: broker-a of DefaultCluster with small store files; `tune` adjusts the
    /// broker's settings first.
    pub async fn start(tune: impl FnOnce(&mut rmq_broker::config::BrokerConfig)) -> Standalone {
        let (ns, ns_dir) = namesrv().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = rmq_broker::config::BrokerConfig {
            broker_name: "broker-a".into(),
            listen_port: 0,
            namesrv_addr: ns.local_addr().to_string(),
            store_path_root_dir: dir.path().display().to_string(),
            mapped_file_size_commit_log: 8 << 20,
            max_hash_slot_num: 1000,
            max_index_num: 4000,
            ..Default::default()
        };
        tune(&mut config);
        let broker = rmq_broker::Broker::start(config)
            .await
            .expect("broker starts");
        Standalone {
            ns,
            broker,
            _dirs: (dir, ns_dir),
        }
    }

    /// The NameServer's address.
    pub fn ns_addr(&self) -> String {
        self.ns.local_addr().to_string()
    }

    /// The broker's address.
    pub fn broker_addr(&self) -> String {
        self.broker.local_addr().to_string()
    }

    /// UPDATE_AND_CREATE_TOPIC with `queues` read and write queues, as mqadmin updateTopic.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        let req = rmq_protocol::RemotingCommand::request(
            rmq_protocol::codes::request::UPDATE_AND_CREATE_TOPIC,
        )
        .with_ext("topic", topic.to_owned())
        .with_ext("defaultTopic", "TBW102")
        .with_ext("readQueueNums", queues.to_string())
        .with_ext("writeQueueNums", queues.to_string())
        .with_ext("perm", "6")
        .with_ext("topicFilterType", "SINGLE_TAG");
        let r = RemotingClient::new(ClientConfig::default())
            .invoke_sync(&self.broker_addr(), req, Duration::from_secs(5))
            .await
            .expect("broker answers");
        assert_eq!(r.code, 0, "create topic {topic}: {:?}", r.remark);
    }
}
