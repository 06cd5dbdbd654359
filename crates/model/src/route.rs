//! The route tables' records and their JSON forms (spec §7.2, §7.6).

use crate::fastjson::{Style, Writer};
use serde::Deserialize;
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

/// One broker's queues of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
