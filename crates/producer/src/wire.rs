//! The bytes of a send, exactly as a Java 5.x producer writes them: SEND_MESSAGE_V2 headers,
//! sysFlag and compression, batch bodies, HEART_BEAT and UNREGISTER_CLIENT (producer spec §2-12).

use crate::message::{encode_properties, keys, Message};
use crate::msg_id::new_unique_id;
use bytes::Bytes;
use rmq_model::heartbeat::{HeartbeatData, ProducerData, UnregisterClient};
use rmq_protocol::codes::request;
use rmq_protocol::headers::send::SendMessageRequestHeaderV2;
use rmq_protocol::RemotingCommand;
use std::io::Write;

/// MessageSysFlag bits.
pub mod sys_flag {
    /// The body is compressed.
    pub const COMPRESSED: i32 = 0x1;
    /// Transaction half message.
    pub const TRANSACTION_PREPARED: i32 = 0x4;
    /// Compression type zlib (5.x, bits 8-10).
    pub const COMPRESSION_ZLIB: i32 = 0x300;
}

/// The default topic brokers create new topics from.
pub const DEFAULT_TOPIC: &str = "TBW102";
/// Queues a topic auto-created from TBW102 gets.
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;
/// The client instance's internal producer group, always in heartbeats.
pub const CLIENT_INNER_PRODUCER: &str = "CLIENT_INNER_PRODUCER";

/// A message made ready to send: UNIQ_KEY and WAIT set, body maybe compressed.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The client message id (UNIQ_KEY).
    pub unique_id: String,
    /// Wire body.
    pub body: Bytes,
    /// MessageSysFlag.
    pub sys_flag: i32,
    /// Properties string.
    pub properties: String,
    /// A SEND_BATCH_MESSAGE envelope (code 320, header `m` = true) around a batch body.
    pub batch: bool,
}

/// Adds UNIQ_KEY (if absent) and WAIT=true (if absent), and compresses bodies of at least
/// `compress_over` bytes with zlib at `level` (Java: 4096 bytes, level 5) unless `batch`.
pub fn prepare(msg: &mut Message, compress_over: usize, level: u32, batch: bool) -> Prepared {
    let unique_id = match msg.property(keys::UNIQ_KEY) {
        Some(id) => id.to_owned(),
        None => {
            let id = new_unique_id();
            msg.set_property(keys::UNIQ_KEY, id.clone());
            id
        }
    };
    if msg.property(keys::WAIT).is_none() {
        msg.set_property(keys::WAIT, "true");
    }
    let mut sys_flag = 0;
    let mut body = msg.body.clone();
    if !batch && body.len() >= compress_over {
        if let Some(z) = zlib(&body, level) {
            body = z;
            sys_flag |= sys_flag::COMPRESSED | sys_flag::COMPRESSION_ZLIB;
        }
    }
    if msg.property(keys::TRAN_MSG) == Some("true") {
        sys_flag |= sys_flag::TRANSACTION_PREPARED;
    }
    Prepared {
        unique_id,
        body,
        sys_flag,
        properties: encode_properties(&msg.properties),
        batch: false,
    }
}

/// The envelope of a batch (Java `MessageBatch`): each message made ready as an inner message
/// (its own UNIQ_KEY and WAIT, never compressed) and laid out in the batch body; the envelope has
/// a UNIQ_KEY of its own (the broker answers it as `transactionId`) and the messages' WAIT.
/// `unique_id` is the inner ids joined by ',', Java's `SendResult.msgId` for a batch. The
/// messages must have passed `validate::check_batch`.
pub fn prepare_batch(messages: &mut [Message]) -> Prepared {
    let inner: Vec<(Prepared, i32)> = messages
        .iter_mut()
        .map(|m| (prepare(m, usize::MAX, 0, true), m.flag))
        .collect();
    let wait = messages
        .first()
        .and_then(|m| m.property(keys::WAIT))
        .unwrap_or("true")
        .to_owned();
    let envelope = [
        (keys::UNIQ_KEY.to_owned(), new_unique_id()),
        (keys::WAIT.to_owned(), wait),
    ];
    let unique_id = inner
        .iter()
        .map(|(p, _)| p.unique_id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let parts: Vec<(i32, Bytes, String)> = inner
        .into_iter()
        .map(|(p, flag)| (flag, p.body, p.properties))
        .collect();
    Prepared {
        unique_id,
        body: batch_body(&parts),
        sys_flag: 0,
        properties: encode_properties(&envelope),
        batch: true,
    }
}

fn zlib(data: &[u8], level: u32) -> Option<Bytes> {
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::new(level),
    );
    z.write_all(data).ok()?;
    z.finish().ok().map(Bytes::from)
}

/// Where and how a message goes.
pub struct Target<'a> {
    /// Producer group.
    pub group: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Broker name.
    pub broker_name: &'a str,
    /// Queue id.
    pub queue_id: i32,
    /// Born timestamp (ms).
    pub born_timestamp: i64,
}

/// SEND_MESSAGE_V2 (310), or SEND_BATCH_MESSAGE (320) with `batch`: the V2 header a..n.
pub fn send_request(t: &Target<'_>, flag: i32, p: &Prepared, batch: bool) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: t.group.to_owned(),
        b: t.topic.to_owned(),
        c: DEFAULT_TOPIC.to_owned(),
        d: DEFAULT_TOPIC_QUEUE_NUMS,
        e: t.queue_id,
        f: p.sys_flag,
        g: t.born_timestamp,
        h: flag,
        i: Some(p.properties.clone()),
        j: Some(0),
        k: Some(false),
        l: None,
        m: Some(batch),
        n: Some(t.broker_name.to_owned()),
    };
    let code = if batch {
        request::SEND_BATCH_MESSAGE
    } else {
        request::SEND_MESSAGE_V2
    };
    RemotingCommand::request_with_header(code, &header).with_body(p.body.clone())
}

pub use rmq_model::message::batch_body;

/// The heartbeat of a producer-only client (shared model: `rmq_model::heartbeat`).
pub fn heartbeat_data(client_id: &str, groups: &[&str]) -> HeartbeatData {
    HeartbeatData {
        client_id: client_id.to_owned(),
        producer_data_set: groups
            .iter()
            .map(|g| ProducerData {
                group_name: (*g).to_owned(),
            })
            .collect(),
        ..Default::default()
    }
}

/// HEART_BEAT (34) for a producer-only client: empty ext, HeartbeatData JSON body.
pub fn heartbeat_request(client_id: &str, groups: &[&str]) -> RemotingCommand {
    heartbeat_data(client_id, groups).request()
}

/// UNREGISTER_CLIENT (35) for one producer group.
pub fn unregister(client_id: &str, group: &str) -> UnregisterClient {
    UnregisterClient {
        client_id: client_id.to_owned(),
        producer_group: Some(group.to_owned()),
        consumer_group: None,
    }
}

/// The UNREGISTER_CLIENT command for one producer group.
pub fn unregister_request(client_id: &str, group: &str) -> RemotingCommand {
    rmq_model::Call::command(&unregister(client_id, group))
}
