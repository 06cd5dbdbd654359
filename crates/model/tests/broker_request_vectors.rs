//! The broker request and response headers against what Java 5.3.3 put on the wire
//! (../shared/vectors/broker-java and broker-java-2, `frames.jsonl`): every captured header of a
//! code we type decodes, and writes back exactly the ext fields Java sent (as a map: JSON
//! order is HashMap order). The Calls the admin CLI and consumers build are compared with
//! mqadmin's and the Java consumer's own requests.

use rmq_model::admin_call::{
    DeleteTopicInBroker, GetConsumeStats, GetConsumerConnectionList, GetTopicStatsInfo,
    QueryMessage,
};
use rmq_model::client_call::{GetConsumerListByGroup, QueryConsumerOffset};
use rmq_model::Call;
use rmq_protocol::custom_header::CommandCustomHeader;
use rmq_protocol::headers::{admin, client, message, offset, send};
use rmq_protocol::ExtFields;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Ext fields that are not header fields: `ReqT` comes from an RPC hook of the pull consumer.
const NOT_HEADER: &[&str] = &["ReqT"];

fn vectors() -> PathBuf {
    match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

/// One captured frame: (request code it is or answers, is response, ext fields).
struct Frame {
    code: i32,
    response: bool,
    ext: BTreeMap<String, String>,
}

fn frames(set: &str) -> Vec<Frame> {
    let text = std::fs::read_to_string(vectors().join(set).join("frames.jsonl"))
        .expect("captured frames present (set RMQ_SHARED_DIR)");
    let mut asked: BTreeMap<(i64, i64), i32> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        let Some(header) = f["header"].as_str() else {
            continue;
        };
        let h: Value = serde_json::from_str(header).unwrap();
        let key = (f["conn"].as_i64().unwrap(), h["opaque"].as_i64().unwrap());
        let response = f["is_response"].as_bool().unwrap();
        let code = if response {
            match asked.get(&key) {
                Some(c) => *c,
                None => continue,
            }
        } else {
            let c = h["code"].as_i64().unwrap() as i32;
            asked.insert(key, c);
            c
        };
        let ext = h["extFields"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !NOT_HEADER.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Frame {
            code,
            response,
            ext,
        });
    }
    out
}

fn ext_of(map: &BTreeMap<String, String>) -> ExtFields {
    let mut ext = ExtFields::new();
    for (k, v) in map {
        ext.insert(k.as_str(), v.as_str());
    }
    ext
}

fn as_map(ext: &ExtFields) -> BTreeMap<String, String> {
    ext.iter()
        .map(|(k, v)| (k.to_owned(), v.unwrap_or_default().to_owned()))
        .collect()
}

/// Decodes `map` as `H` and checks that writing it back gives the same fields.
fn round_trip<H: CommandCustomHeader + std::fmt::Debug>(map: &BTreeMap<String, String>) {
    let h = H::read_from(&ext_of(map))
        .unwrap_or_else(|e| panic!("{}: {e} in {map:?}", std::any::type_name::<H>()));
    let mut back = ExtFields::new();
    h.write_to(&mut back);
    assert_eq!(&as_map(&back), map, "{}", std::any::type_name::<H>());
}

/// Checks every request and response header of a code we type; returns the codes seen.
fn check_set(set: &str) -> Vec<(i32, bool)> {
    let mut seen = Vec::new();
    for f in frames(set) {
        let typed = match (f.code, f.response) {
            (17, false) => round_trip::<admin::CreateTopicRequestHeader>,
            (215, false) => round_trip::<admin::DeleteTopicRequestHeader>,
            (351, false) => round_trip::<admin::GetTopicConfigRequestHeader>,
            (202, false) => round_trip::<admin::GetTopicStatsInfoRequestHeader>,
            (203, false) => round_trip::<admin::GetConsumerConnectionListRequestHeader>,
            (208, false) => round_trip::<admin::GetConsumeStatsRequestHeader>,
            (26, true) => round_trip::<admin::GetBrokerConfigResponseHeader>,
            (33, false) => round_trip::<message::ViewMessageRequestHeader>,
            (12, false) => round_trip::<message::QueryMessageRequestHeader>,
            (12, true) => round_trip::<message::QueryMessageResponseHeader>,
            (36, false) => round_trip::<message::ConsumerSendMsgBackRequestHeader>,
            (34, true) => round_trip::<client::HeartbeatResponseHeader>,
            (35, false) => round_trip::<client::UnregisterClientRequestHeader>,
            (38, false) => round_trip::<client::GetConsumerListByGroupRequestHeader>,
            (40, false) => round_trip::<client::NotifyConsumerIdsChangedRequestHeader>,
            (41 | 42, false) => round_trip::<client::LockBatchMqRequestHeader>,
            (14, false) => round_trip::<offset::QueryConsumerOffsetRequestHeader>,
            (15, false) => round_trip::<offset::UpdateConsumerOffsetRequestHeader>,
            (30, false) => round_trip::<offset::GetMaxOffsetRequestHeader>,
            (31 | 32, false) => round_trip::<offset::GetMinOffsetRequestHeader>,
            (29, false) => round_trip::<offset::SearchOffsetRequestHeader>,
            (29..=31, true) => round_trip::<offset::OffsetResponseHeader>,
            (32, true) => round_trip::<offset::GetEarliestMsgStoretimeResponseHeader>,
            (310 | 320, true) => send_answer,
            (14, true) if !f.ext.is_empty() => {
                round_trip::<offset::QueryConsumerOffsetResponseHeader>
            }
            _ => continue,
        };
        typed(&f.ext);
        seen.push((f.code, f.response));
    }
    seen.sort();
    seen.dedup();
    seen
}

/// A send answer: SendMessageResponseHeader plus the region fields.
fn send_answer(map: &BTreeMap<String, String>) {
    let ext = ext_of(map);
    let h = send::SendMessageResponseHeader::read_from(&ext).unwrap();
    let region = message::SendRegionResponseHeader::read_from(&ext).unwrap();
    let mut back = ExtFields::new();
    h.write_to(&mut back);
    region.write_to(&mut back);
    assert_eq!(&as_map(&back), map);
}

#[test]
fn every_typed_broker_header_writes_back_what_java_sent() {
    let first = check_set("broker-java");
    let second = check_set("broker-java-2");
    // The codes each set holds, so a capture that stops matching is noticed.
    assert!(first.contains(&(14, true)) && first.contains(&(310, true)));
    for code in [17, 215, 351, 202, 203, 208, 33, 12, 36, 35, 38, 40, 41, 42] {
        assert!(second.contains(&(code, false)), "no request {code} checked");
    }
    for code in [14, 15, 30, 31, 32, 29] {
        assert!(second.contains(&(code, false)), "no request {code} checked");
    }
    for code in [26, 12, 34, 30, 31, 32, 29] {
        assert!(
            second.contains(&(code, true)),
            "no answer to {code} checked"
        );
    }
}

/// The ext fields of a Call's command, as a map.
fn call_ext<C: Call>(call: &C) -> BTreeMap<String, String> {
    call.command()
        .ext_fields
        .as_ref()
        .map(as_map)
        .unwrap_or_default()
}

/// The first captured request of `code` in broker-java-2.
fn java_request(code: i32) -> BTreeMap<String, String> {
    frames("broker-java-2")
        .into_iter()
        .find(|f| f.code == code && !f.response)
        .map(|f| f.ext)
        .unwrap_or_else(|| panic!("no request {code} captured"))
}

#[test]
fn admin_calls_send_what_mqadmin_sends() {
    assert_eq!(
        call_ext(&QueryMessage::new("CapTopic2", "rkey-1", false)),
        java_request(12)
    );
    assert_eq!(
        call_ext(&GetConsumeStats::new("CG_retry2")),
        java_request(208)
    );
    assert_eq!(
        call_ext(&GetConsumerConnectionList {
            group: "CG_retry2".into()
        }),
        java_request(203)
    );
    assert_eq!(
        call_ext(&GetTopicStatsInfo {
            topic: "CapTopic2".into()
        }),
        java_request(202)
    );
    assert_eq!(
        call_ext(&DeleteTopicInBroker {
            topic: "PullCap2".into()
        }),
        java_request(215)
    );
    // updateTopic: mqadmin also sends an empty `attributes` and `force=false`.
    let mut create = rmq_model::admin_call::CreateTopic::new("CapTopic2", 4, 4, 6);
    create.header.attributes = Some(String::new());
    create.header.force = Some(false);
    assert_eq!(call_ext(&create), java_request(17));
}

#[test]
fn consumer_calls_send_what_the_java_consumer_sends() {
    let members = GetConsumerListByGroup::new("CG_retry2");
    assert_eq!(call_ext(&members), java_request(38));
    let mut query = QueryConsumerOffset::new("CG_retry2", "CapTopic2", 1);
    query.header.bname = Some("broker-a".into());
    assert_eq!(call_ext(&query), java_request(14));
}
