//! A consumed message (Java's `MessageExt`, spec §4.7): decoded from a pull answer's records
//! (the store's record codec: the same bytes the broker stored), its body inflated when the
//! producer compressed it, with the offsetMsgId and the queue it came from.

use bytes::Bytes;
use rmq_store::record::{self, Found};
use std::io::Read;

/// MessageSysFlag: the body is compressed (zlib unless the compression-type bits say else).
const COMPRESSED: i32 = 0x1;
/// Largest inflated body accepted from one record (a bomb is an error, not an allocation).
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// One message as a listener sees it.
#[derive(Debug, Clone)]
pub struct MessageExt {
    /// The topic (a retry message's original topic, restored from RETRY_TOPIC).
    pub topic: String,
    /// The broker group it was pulled from.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
    /// Offset in its queue.
    pub queue_offset: i64,
    /// Commit-log offset (what a give-back names).
    pub commit_log_offset: i64,
    /// The body, inflated.
    pub body: Bytes,
    /// Properties, in stored order.
    pub properties: Vec<(String, String)>,
    /// The producer's flag.
    pub flag: i32,
    /// Deliveries before this one.
    pub reconsume_times: i32,
    /// When the producer sent it (ms).
    pub born_timestamp: i64,
    /// When the broker stored it (ms).
    pub store_timestamp: i64,
    /// Store host + commit-log offset.
    pub offset_msg_id: String,
    /// System flags as stored.
    pub sys_flag: i32,
}

impl MessageExt {
    /// A property (the last of a repeated key, as Java's map keeps it).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The TAGS property.
    pub fn tags(&self) -> Option<&str> {
        self.property("TAGS")
    }

    /// The KEYS property.
    pub fn keys(&self) -> Option<&str> {
        self.property("KEYS")
    }

    /// The client id (UNIQ_KEY), else the offsetMsgId (Java's `getMsgId`).
    pub fn msg_id(&self) -> &str {
        self.property("UNIQ_KEY").unwrap_or(&self.offset_msg_id)
    }
}

/// Decodes a pull answer's body for `broker_name`'s queue; stops at the first record that
/// does not decode (as Java's decoder does), keeping those before it.
pub fn decode_body(body: &Bytes, broker_name: &str) -> Vec<MessageExt> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let Ok(Found::Message(r, size)) = record::decode(&body.slice(at..), false) else {
            break;
        };
        at += size;
        let mut sys_flag = r.sys_flag;
        let mut payload = r.body.clone();
        if sys_flag & COMPRESSED != 0 {
            let mut inflated = Vec::new();
            let ok = flate2::read::ZlibDecoder::new(&r.body[..])
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut inflated)
                .is_ok();
            if !ok || inflated.len() as u64 > MAX_INFLATED {
                tracing::warn!(
                    offset = r.physical_offset,
                    "compressed body does not inflate: skipped"
                );
                continue;
            }
            payload = Bytes::from(inflated);
            sys_flag &= !COMPRESSED;
        }
        let properties = rmq_model::message::decode_properties(&r.properties);
        out.push(MessageExt {
            topic: r.topic.clone(),
            broker_name: broker_name.to_owned(),
            queue_id: r.queue_id,
            queue_offset: r.queue_offset,
            commit_log_offset: r.physical_offset,
            body: payload,
            properties,
            flag: r.flag,
            reconsume_times: r.reconsume_times,
            born_timestamp: r.born_timestamp,
            store_timestamp: r.store_timestamp,
            offset_msg_id: rmq_store::msg_id::offset_msg_id(r.store_host, r.physical_offset),
            sys_flag,
        });
    }
    out
}
