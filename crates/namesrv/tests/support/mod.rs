//! Shared helpers: a NameServer on 127.0.0.1:0 with a temporary KV file, and broker stand-ins.
#![allow(dead_code)]

use rmq_namesrv::config::NamesrvConfig;
use rmq_namesrv::NameServer;
use rmq_protocol::codes::request;
use rmq_protocol::headers::broker::RegisterBrokerRequestHeader;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::path::PathBuf;
use std::time::Duration;

/// `../shared/vectors` (or `$RMQ_SHARED_DIR/vectors`).
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

/// A NameServer on an ephemeral port; the temp dir holds its kvConfig.json.
pub async fn start(tweak: impl FnOnce(&mut NamesrvConfig)) -> (NameServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = NamesrvConfig {
        listen_port: 0,
        bind_address: "127.0.0.1".into(),
        kv_config_path: dir.path().join("kvConfig.json").display().to_string(),
        config_store_path: dir.path().join("namesrv.properties").display().to_string(),
        ..Default::default()
    };
    tweak(&mut c);
    (NameServer::start(c).await.unwrap(), dir)
}

pub fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

pub async fn call(client: &RemotingClient, addr: &str, req: RemotingCommand) -> RemotingCommand {
    client
        .invoke_sync(addr, req, Duration::from_secs(3))
        .await
        .unwrap()
}

/// A 5.x-style RegisterBrokerBody with the given topics (4 queues each, perm 6).
pub fn register_body(topics: &[&str], counter: i64) -> String {
    let table: Vec<String> = topics
        .iter()
        .map(|t| {
            format!(
                r#""{t}":{{"attributes":{{}},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"{t}","topicSysFlag":0,"writeQueueNums":4}}"#
            )
        })
        .collect();
    format!(
        r#"{{"filterServerList":[],"topicConfigSerializeWrapper":{{"dataVersion":{{"counter":{counter},"stateVersion":0,"timestamp":1700000000000}},"mappingDataVersion":{{"counter":0,"stateVersion":0,"timestamp":1700000000000}},"topicConfigTable":{{{}}},"topicQueueMappingDetailMap":{{}},"topicQueueMappingInfoMap":{{}}}}}}"#,
        table.join(",")
    )
}

/// A REGISTER_BROKER request like a 5.x broker's (crc set, compressed=false).
pub fn register_request(
    cluster: &str,
    name: &str,
    id: i64,
    addr: &str,
    body: &str,
) -> RemotingCommand {
    let header = RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: cluster.into(),
        ha_server_addr: format!("{addr}-ha"),
        broker_id: id,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: Some(false),
        body_crc32: Some((crc32fast::hash(body.as_bytes()) & 0x7FFF_FFFF) as i32),
    };
    RemotingCommand::request_with_header(request::REGISTER_BROKER, &header)
        .with_body(body.to_owned())
}
