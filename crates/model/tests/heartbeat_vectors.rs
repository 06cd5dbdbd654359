//! HeartbeatData against the Java client's own heartbeats (../shared/vectors/broker-java):
//! decoded field by field and re-encoded byte for byte.

use rmq_model::heartbeat::HeartbeatData;
use std::path::PathBuf;

fn body(name: &str) -> Vec<u8> {
    let dir = match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    };
    let frame = std::fs::read(dir.join("broker-java").join(name)).expect("vector present");
    let header_len = (u32::from_be_bytes(frame[4..8].try_into().unwrap()) & 0xFF_FFFF) as usize;
    frame[8 + header_len..].to_vec()
}

#[test]
fn a_java_producer_heartbeat_round_trips_byte_for_byte() {
    let raw = body("002_req_c34.bin");
    let h = HeartbeatData::decode(&raw).unwrap();
    assert_eq!(h.client_id, "127.0.0.1@capinst");
    assert_eq!(h.producer_data_set.len(), 2);
    assert!(h.consumer_data_set.is_empty());
    assert_eq!(h.encode(), raw);
}

#[test]
fn a_java_push_consumer_heartbeat_round_trips_byte_for_byte() {
    let raw = body("038_req_c34.bin");
    let h = HeartbeatData::decode(&raw).unwrap();
    let c = &h.consumer_data_set[0];
    assert_eq!(c.group_name, "CG_peer_smoke_run1795256024545");
    assert_eq!(c.consume_type, "CONSUME_PASSIVELY");
    assert!(!c.is_broadcasting());
    let sub = &c.subscription_data_set[1];
    assert_eq!(sub.topic, "PullCaptureTopic");
    assert_eq!(sub.code_set, [-1909056598]);
    assert_eq!(sub.tags_set, ["run1795256024545"]);
    assert_eq!(sub.sub_version, 1795256025329);
    assert_eq!(h.encode(), raw);
}

#[test]
fn go_clients_message_model_and_unknown_fields_are_read() {
    let h = HeartbeatData::decode(
        br#"{"clientID":"x","consumerDataSet":[{"groupName":"g","messageModel":"BroadCasting","extra":1}],"more":true}"#,
    )
    .unwrap();
    assert!(h.consumer_data_set[0].is_broadcasting());
}
