//! # rmq-model
//!
//! One model of what RocketMQ's roles say to each other, shared by every server and client of
//! rmq: the bodies ([`route`]: routes, cluster info, topic lists, KV tables, written the way
//! fastjson writes them and read whatever style a Java, C++, Go or Node peer wrote), and typed
//! request/response pairs ([`call`]) so that a caller writes
//! `client.call(addr, &GetRouteInfo::new("T"), timeout)` and gets a `TopicRouteData` or a
//! [`CallError`] with the refusal's code and remark, never a raw code and string keys.
//! [`NamesrvClient`] puts the NameServer requests behind one client with the fail-over logic.
//!
//! Where a new request type goes: its header in `rmq_protocol::headers` (`custom_header!`), its
//! body type here (a module per role's data, `Deserialize` plus an `encode` where bytes are
//! compared), and a `Call` tying the code, header and body together: NameServer requests in
//! [`call`], broker administration in [`admin_call`], what consumers ask a broker in
//! [`client_call`]. The server decodes the same header type.

pub mod admin_call;
pub mod call;
pub mod client_call;
pub mod fastjson;
pub mod group;
pub mod heartbeat;
pub mod message;
pub mod msg_id;
pub mod namesrv_client;
pub mod register;
pub mod route;

/// This host's IPv4 address as Java's UtilAll.getIP would report it: the address of the
/// interface that routes outward (found with an unconnected UDP socket: no packet is sent),
/// or 127.0.0.1.
pub fn local_ip() -> std::net::Ipv4Addr {
    use std::net::{IpAddr, Ipv4Addr, UdpSocket};
    static IP: std::sync::OnceLock<Ipv4Addr> = std::sync::OnceLock::new();
    *IP.get_or_init(|| {
        UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect("192.0.2.1:9")?;
                s.local_addr()
            })
            .ok()
            .and_then(|a| match a.ip() {
                IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4),
                _ => None,
            })
            .unwrap_or(Ipv4Addr::LOCALHOST)
    })
}

pub use call::{Call, CallError, Caller};
pub use namesrv_client::NamesrvClient;
pub use route::{
    BrokerData, ClusterInfo, KvTable, MessageQueue, QueueData, TopicList, TopicRouteData,
};

/// A body that does not decode as the type it should be.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad {what} body: {reason}")]
pub struct ModelError {
    /// The Java type name of the body.
    pub what: &'static str,
    /// The parser's complaint.
    pub reason: String,
}

/// Decodes fastjson output of either style (bare Long keys are quoted first) into `T`.
pub(crate) fn decode_lenient<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &'static str,
) -> Result<T, ModelError> {
    let value = rmq_protocol::lenient_json::parse(body).map_err(|e| ModelError {
        what,
        reason: e.to_string(),
    })?;
    serde_json::from_value(value).map_err(|e| ModelError {
        what,
        reason: e.to_string(),
    })
}
