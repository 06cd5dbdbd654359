//! Routes: which brokers serve a topic and with how many queues (spec §7.2, §7.5, §7.6). The
//! NameServer writes these records the way fastjson does; clients (producer, admin CLI, and the
//! coming consumer) decode them with [`TopicRouteData::decode`], which reads both of fastjson's
//! outputs (unquoted Long keys, and the standard form).

use crate::fastjson::{Style, Writer};
use crate::ModelError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Permission bits of a queue.
pub mod perm {
    /// Readable.
    pub const READ: i32 = 4;
    /// Writable.
    pub const WRITE: i32 = 2;
}

/// Topic sysflag bits.
pub mod sysflag {
    /// A unit topic.
    pub const UNIT: i32 = 1;
    /// A unit-subscription topic.
    pub const UNIT_SUB: i32 = 2;
}

/// The master's broker id.
pub const MASTER_ID: i64 = 0;

/// One queue of a topic on one broker group (`MessageQueue`). Its JSON is fastjson's
/// (`{"brokerName":..,"queueId":..,"topic":..}`); it orders as Java's `compareTo`: topic, then
/// broker name, then queue id (rebalancing sorts by it, so every member sees the same list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    /// Broker group.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
    /// Topic.
    pub topic: String,
}

impl Ord for MessageQueue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.topic, &self.broker_name, self.queue_id).cmp(&(
            &other.topic,
            &other.broker_name,
            other.queue_id,
        ))
    }
}

impl PartialOrd for MessageQueue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Reads a fastjson map keyed by MessageQueue objects (`{{"brokerName":..,"queueId":..,
/// "topic":..}:VALUE,..}`): not JSON, but what Java writes for consume stats, topic stats,
/// reset offsets and offset files, and what every RocketMQ client parses. Values are flat
/// objects or numbers. Entries that do not parse end the walk (those before are kept).
pub fn parse_mq_map(body: &[u8]) -> Vec<(MessageQueue, serde_json::Value)> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(i) = rest.find("{\"brokerName\"") {
        rest = &rest[i..];
        let Some(key_end) = rest.find('}').map(|e| e + 1) else {
            break;
        };
        let Ok(mq) = serde_json::from_str::<MessageQueue>(&rest[..key_end]) else {
            break;
        };
        let after = rest[key_end..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start();
        let value_end = if after.starts_with('{') {
            after.find('}').map(|e| e + 1)
        } else {
            Some(after.find([',', '}']).unwrap_or(after.len()))
        };
        let Some(value_end) = value_end else { break };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(after[..value_end].trim()) else {
            break;
        };
        out.push((mq, value));
        rest = &after[value_end..];
    }
    out
}

/// Writes such a map (`{{mq}:value,..}`) from already-encoded JSON values.
pub fn write_mq_map<'a, V: AsRef<str>>(
    entries: impl IntoIterator<Item = (&'a MessageQueue, V)>,
) -> String {
    let mut out = String::from("{");
    for (i, (mq, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(mq).unwrap_or_default());
        out.push(':');
        out.push_str(value.as_ref());
    }
    out.push('}');
    out
}

/// One broker's queues of a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    /// Broker group name.
    pub broker_name: String,
    /// Readable queues.
    pub read_queue_nums: i32,
    /// Writable queues.
    pub write_queue_nums: i32,
    /// READ | WRITE bits.
    pub perm: i32,
    /// UNIT / UNIT_SUB bits.
    pub topic_sys_flag: i32,
}

impl QueueData {
    /// Writes `{"brokerName":..,"perm":..,"readQueueNums":..,"topicSysFlag":..,"writeQueueNums":..}`.
    pub fn write(&self, w: &mut Writer) {
        w.raw("{");
        w.key("brokerName");
        w.str(&self.broker_name);
        w.raw(",");
        w.key("perm");
        w.int(self.perm as i64);
        w.raw(",");
        w.key("readQueueNums");
        w.int(self.read_queue_nums as i64);
        w.raw(",");
        w.key("topicSysFlag");
        w.int(self.topic_sys_flag as i64);
        w.raw(",");
        w.key("writeQueueNums");
        w.int(self.write_queue_nums as i64);
        w.raw("}");
    }
}

/// A broker group: its cluster and the address of each member by broker id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    /// Cluster name.
    pub cluster: String,
    /// Broker group name.
    pub broker_name: String,
    /// Broker id (0 = master) -> "ip:port".
    pub broker_addrs: BTreeMap<i64, String>,
    /// Zone (from the broker's `__ZONE_NAME` ext field), if any.
    pub zone_name: Option<String>,
    /// Whether the group runs with acting master enabled.
    pub enable_acting_master: bool,
}

impl BrokerData {
    /// Writes the BrokerData object (`zoneName` only when set).
    pub fn write(&self, w: &mut Writer) {
        w.raw("{");
        write_group_fields(w, &self.broker_addrs, &self.broker_name, &self.cluster);
        w.raw(",");
        w.key("enableActingMaster");
        w.bool(self.enable_acting_master);
        if let Some(z) = &self.zone_name {
            w.raw(",");
            w.key("zoneName");
            w.str(z);
        }
        w.raw("}");
    }
}

/// `"brokerAddrs":{..},"brokerName":..,"cluster":..`: the fields BrokerData and the
/// GET_BROKER_MEMBER_GROUP body share, in fastjson's (alphabetical) order.
pub fn write_group_fields(
    w: &mut Writer,
    addrs: &BTreeMap<i64, String>,
    name: &str,
    cluster: &str,
) {
    w.key("brokerAddrs");
    w.long_map(addrs.iter().map(|(k, v)| (*k, v.as_str())));
    w.raw(",");
    w.key("brokerName");
    w.str(name);
    w.raw(",");
    w.key("cluster");
    w.str(cluster);
}

/// A broker's data version: registrations carry it, QUERY_DATA_VERSION compares it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    /// Change counter.
    pub counter: i64,
    /// State version (5.x; absent from 4.9 brokers = 0).
    pub state_version: i64,
    /// Millisecond timestamp.
    pub timestamp: i64,
}

impl DataVersion {
    /// `{"counter":..,"stateVersion":..,"timestamp":..}`.
    pub fn to_json(&self) -> bytes::Bytes {
        let mut w = Writer::new(Style::Default);
        w.raw("{");
        w.key("counter");
        w.int(self.counter);
        w.raw(",");
        w.key("stateVersion");
        w.int(self.state_version);
        w.raw(",");
        w.key("timestamp");
        w.int(self.timestamp);
        w.raw("}");
        w.finish()
    }
}

/// A topic as a broker registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name.
    pub topic_name: String,
    /// Readable queues.
    pub read_queue_nums: i32,
    /// Writable queues.
    pub write_queue_nums: i32,
    /// Permission bits.
    pub perm: i32,
    /// UNIT bits.
    pub topic_sys_flag: i32,
}

/// Writes a TopicRouteData body (spec §7.5): brokerDatas, filterServerTable, orderTopicConf,
/// queueDatas, in that (alphabetical) order.
pub fn write_route(
    style: Style,
    brokers: &[BrokerData],
    filters: &BTreeMap<String, Vec<String>>,
    order_topic_conf: Option<&str>,
    queues: &[QueueData],
) -> bytes::Bytes {
    let mut w = Writer::new(style);
    w.raw("{");
    w.key("brokerDatas");
    w.raw("[");
    for (i, b) in brokers.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        b.write(&mut w);
    }
    w.raw("],");
    w.key("filterServerTable");
    w.raw("{");
    for (i, (addr, list)) in filters.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.key(addr);
        w.str_array(list.iter().map(String::as_str));
    }
    w.raw("},");
    if let Some(conf) = order_topic_conf {
        w.key("orderTopicConf");
        w.str(conf);
        w.raw(",");
    }
    w.key("queueDatas");
    w.raw("[");
    for (i, q) in queues.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        q.write(&mut w);
    }
    w.raw("]}");
    w.finish()
}

/// `{"brokerAddr":..,"topicList":[..]}` (brokerAddr only when set).
pub fn write_topic_list<'a>(
    broker_addr: Option<&str>,
    topics: impl Iterator<Item = &'a str>,
) -> bytes::Bytes {
    let mut w = Writer::new(Style::Default);
    w.raw("{");
    if let Some(a) = broker_addr {
        w.key("brokerAddr");
        w.str(a);
        w.raw(",");
    }
    w.key("topicList");
    w.str_array(topics);
    w.raw("}");
    w.finish()
}

/// `{"table":{..}}`.
pub fn write_kv_table<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> bytes::Bytes {
    let mut w = Writer::new(Style::Default);
    w.raw("{");
    w.key("table");
    w.str_map(entries);
    w.raw("}");
    w.finish()
}

/// A topic's route (TopicRouteData), as GET_ROUTEINFO_BY_TOPIC answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    /// The broker groups serving the topic.
    pub broker_datas: Vec<BrokerData>,
    /// Each broker group's queues of the topic.
    pub queue_datas: Vec<QueueData>,
    /// Filter servers by broker address (empty in 5.x).
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// "brokerA:4;brokerB:4" for ordered topics (the KV config's ORDER_TOPIC_CONFIG).
    pub order_topic_conf: Option<String>,
}

impl TopicRouteData {
    /// Decodes a route body in either of fastjson's outputs (Long keys quoted or not), any key
    /// order, unknown fields ignored, missing ones defaulted: what Java, C++, Go and Node
    /// NameServers write.
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "TopicRouteData")
    }

    /// Writes the body as the NameServer does (spec §7.5).
    pub fn encode(&self, style: Style) -> bytes::Bytes {
        write_route(
            style,
            &self.broker_datas,
            &self.filter_server_table,
            self.order_topic_conf.as_deref(),
            &self.queue_datas,
        )
    }

    /// The master's address of `broker_name`, if the route has one.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.broker_addrs.get(&MASTER_ID))
            .map(String::as_str)
    }
}

/// The NameServer's view of every cluster (ClusterInfo), as GET_BROKER_CLUSTER_INFO answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// Broker groups by name.
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Broker group names by cluster.
    pub cluster_addr_table: BTreeMap<String, Vec<String>>,
}

impl ClusterInfo {
    /// Decodes the body (fastjson's default output: Long keys unquoted).
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "ClusterInfo")
    }

    /// Writes the body as the NameServer does.
    pub fn encode(&self) -> bytes::Bytes {
        write_cluster_info(
            &self.broker_addr_table,
            self.cluster_addr_table
                .iter()
                .map(|(c, names)| (c.as_str(), names.iter().map(String::as_str))),
        )
    }
}

/// Writes a ClusterInfo body from the tables as they are held (the NameServer's route tables
/// keep sets, [`ClusterInfo`] vectors): `{"brokerAddrTable":{..},"clusterAddrTable":{..}}`.
pub fn write_cluster_info<'a, N>(
    brokers: &BTreeMap<String, BrokerData>,
    clusters: impl Iterator<Item = (&'a str, N)>,
) -> bytes::Bytes
where
    N: Iterator<Item = &'a str>,
{
    let mut w = Writer::new(Style::Default);
    w.raw("{");
    w.key("brokerAddrTable");
    w.raw("{");
    for (i, (name, bd)) in brokers.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.key(name);
        bd.write(&mut w);
    }
    w.raw("},");
    w.key("clusterAddrTable");
    w.raw("{");
    for (i, (cluster, names)) in clusters.enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.key(cluster);
        w.str_array(names);
    }
    w.raw("}}");
    w.finish()
}

/// A topic list (TopicList), as the topic-list requests answer it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    /// Topic names.
    pub topic_list: Vec<String>,
    /// Set by GET_SYSTEM_TOPIC_LIST_FROM_NS: a broker address.
    pub broker_addr: Option<String>,
}

impl TopicList {
    /// Decodes the body.
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "TopicList")
    }

    /// Writes the body as the NameServer does.
    pub fn encode(&self) -> bytes::Bytes {
        write_topic_list(
            self.broker_addr.as_deref(),
            self.topic_list.iter().map(String::as_str),
        )
    }
}

/// A KV namespace's entries (KVTable), as GET_KVLIST_BY_NAMESPACE answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KvTable {
    /// Key -> value.
    pub table: BTreeMap<String, String>,
}

impl KvTable {
    /// Decodes the body.
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "KVTable")
    }

    /// Writes the body as the NameServer does.
    pub fn encode(&self) -> bytes::Bytes {
        write_kv_table(self.table.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    #[test]
    fn message_queue_keyed_maps_both_ways() {
        let mq = |q| MessageQueue {
            broker_name: "b".into(),
            queue_id: q,
            topic: "T".into(),
        };
        let (a, b) = (mq(0), mq(1));
        let text = write_mq_map([(&a, "12"), (&b, r#"{"maxOffset":3}"#)]);
        assert_eq!(
            text,
            r#"{{"brokerName":"b","queueId":0,"topic":"T"}:12,{"brokerName":"b","queueId":1,"topic":"T"}:{"maxOffset":3}}"#
        );
        let parsed = parse_mq_map(format!(r#"{{"offsetTable":{text},"x":1}}"#).as_bytes());
        assert_eq!(parsed.len(), 2);
        assert_eq!((&parsed[0].0, &parsed[0].1), (&a, &serde_json::json!(12)));
        assert_eq!(parsed[1].1["maxOffset"], 3);
        assert!(
            parse_mq_map(br#"{{"brokerName":1}:2}"#).is_empty(),
            "a bad key ends the walk"
        );
    }

    #[test]
    fn routes_decode_from_both_fastjson_styles_and_round_trip() {
        let old = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
        let r = TopicRouteData::decode(old).unwrap();
        assert_eq!(r.master_addr("broker-a"), Some("127.0.0.1:10911"));
        assert_eq!(r.broker_datas[0].broker_addrs[&1], "127.0.0.1:10921");
        assert_eq!(r.queue_datas[0].write_queue_nums, 4);
        assert_eq!(&r.encode(Style::Default)[..], &old[..]);
        let standard = r.encode(Style::Standard);
        assert!(standard.starts_with(br#"{"brokerDatas":[{"brokerAddrs":{"0":"#));
        assert_eq!(TopicRouteData::decode(&standard).unwrap(), r);
        // Unknown fields, any order, missing fields.
        let odd = br#"{"queueDatas":[{"writeQueueNums":8,"brokerName":"b","x":[1]}],"zz":null}"#;
        let r = TopicRouteData::decode(odd).unwrap();
        assert_eq!(
            (r.queue_datas[0].write_queue_nums, r.queue_datas[0].perm),
            (8, 0)
        );
        assert!(TopicRouteData::decode(b"{not json").is_err());
    }

    #[test]
    fn cluster_info_topic_lists_and_kv_tables_round_trip() {
        let body = br#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"C","enableActingMaster":false}},"clusterAddrTable":{"C":["broker-a"]}}"#;
        let c = ClusterInfo::decode(body).unwrap();
        assert_eq!(c.cluster_addr_table["C"], ["broker-a"]);
        assert_eq!(&c.encode()[..], &body[..]);
        let t = TopicList::decode(br#"{"topicList":["A","B"]}"#).unwrap();
        assert_eq!(t.topic_list, ["A", "B"]);
        assert_eq!(&t.encode()[..], br#"{"topicList":["A","B"]}"#);
        let kv = KvTable::decode(br#"{"table":{"k":"v"}}"#).unwrap();
        assert_eq!(&kv.encode()[..], br#"{"table":{"k":"v"}}"#);
    }
}
