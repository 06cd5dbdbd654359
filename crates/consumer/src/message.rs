//! A consumed message (Java's `MessageExt`, spec §4.7): decoded from a pull answer's records
//! (rmq-message's record codec: the same bytes the broker stored), its body inflated when the
//! producer compressed it, with the offsetMsgId and the queue it came from.

use bytes::Bytes;
use rmq_message::record::{self, Found};
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

/// Why a record of a pull answer did not become a message.
#[derive(Debug, thiserror::Error)]
pub enum Undecodable {
    /// The record's layout is broken (magic, a length, the size formula).
    #[error("record at byte {at} of the answer does not decode: {source}")]
    Record {
        /// Where it starts in the answer's body.
        at: usize,
        /// What is wrong with it.
        source: record::RecordError,
    },
    /// An end-of-file BLANK record, which a pull answer never holds.
    #[error("record at byte {at} of the answer is an end-of-file BLANK")]
    Blank {
        /// Where it starts in the answer's body.
        at: usize,
    },
    /// The record decodes but its compressed body does not inflate (or inflates past 64 MiB).
    #[error("compressed body of the message at queue offset {queue_offset} does not inflate")]
    Inflate {
        /// The message's queue offset.
        queue_offset: i64,
        /// The record's size (where the next one starts).
        size: usize,
    },
}

/// Gives messages redelivered through the group's retry topic (`retry_topic`) their original
/// topic back (property RETRY_TOPIC), as Java's listener sees them.
pub(crate) fn restore_retry_topics(batch: &mut [MessageExt], retry_topic: &str) {
    for m in batch.iter_mut() {
        if m.topic == retry_topic {
            if let Some(t) = m.property("RETRY_TOPIC").map(str::to_owned) {
                m.topic = t;
            }
        }
    }
}

/// A pull answer's body decoded record by record, up to the first record that did not decode.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The messages before that record (every message when there is none).
    pub msgs: Vec<MessageExt>,
    /// The first record that did not decode; the records after it were not read.
    pub undecodable: Option<Undecodable>,
}

/// Decodes a pull answer's body for `broker_name`'s queue, stopping at the first record that
/// does not decode: the consumer pulls again from there instead of passing messages it never
/// delivered.
pub fn decode_records(body: &Bytes, broker_name: &str) -> Decoded {
    let mut out = Decoded::default();
    let mut at = 0;
    while at < body.len() {
        match decode_one(body, at, broker_name) {
            Ok((m, size)) => {
                out.msgs.push(m);
                at += size;
            }
            Err(e) => {
                out.undecodable = Some(e);
                break;
            }
        }
    }
    out
}

/// Decodes a pull answer's body for `broker_name`'s queue (what an admin command shows): stops
/// at the first record that does not decode (as Java's decoder does), keeping those before it;
/// a body that does not inflate is logged and its message left out.
pub fn decode_body(body: &Bytes, broker_name: &str) -> Vec<MessageExt> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        match decode_one(body, at, broker_name) {
            Ok((m, size)) => {
                out.push(m);
                at += size;
            }
            Err(Undecodable::Inflate { queue_offset, size }) => {
                tracing::warn!(queue_offset, "compressed body does not inflate: skipped");
                at += size;
            }
            Err(_) => break,
        }
    }
    out
}

/// The message whose record starts at byte `at` of `body`, and the record's size.
fn decode_one(
    body: &Bytes,
    at: usize,
    broker_name: &str,
) -> Result<(MessageExt, usize), Undecodable> {
    let (r, size) = match record::decode(&body.slice(at..), false) {
        Ok(Found::Message(r, size)) => (r, size),
        Ok(Found::Blank) => return Err(Undecodable::Blank { at }),
        Err(source) => return Err(Undecodable::Record { at, source }),
    };
    let mut sys_flag = r.sys_flag;
    let mut payload = r.body.clone();
    if sys_flag & COMPRESSED != 0 {
        let mut inflated = Vec::new();
        let ok = flate2::read::ZlibDecoder::new(&r.body[..])
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut inflated)
            .is_ok();
        if !ok || inflated.len() as u64 > MAX_INFLATED {
            return Err(Undecodable::Inflate {
                queue_offset: r.queue_offset,
                size,
            });
        }
        payload = Bytes::from(inflated);
        sys_flag &= !COMPRESSED;
    }
    let properties = rmq_model::message::decode_properties(&r.properties);
    let m = MessageExt {
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
        offset_msg_id: rmq_message::msg_id::offset_msg_id(r.store_host, r.physical_offset),
        sys_flag,
    };
    Ok((m, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(queue_offset: i64, sys_flag: i32, body: &[u8]) -> Vec<u8> {
        let host: std::net::SocketAddr = "127.0.0.1:10911".parse().unwrap();
        let r = record::Record {
            queue_id: 0,
            flag: 0,
            queue_offset,
            physical_offset: queue_offset * 1000,
            sys_flag,
            born_timestamp: 1,
            born_host: host,
            store_timestamp: 2,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::copy_from_slice(body),
            topic: "T".into(),
            properties: String::new(),
        };
        let mut out = bytes::BytesMut::new();
        r.encode(&mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn decoding_stops_at_the_first_record_that_does_not_decode() {
        let mut broken = record(1, 0, b"b");
        broken[4..8].copy_from_slice(&[0; 4]);
        let first = record(0, 0, b"a");
        let body = Bytes::from([first.clone(), broken, record(2, 0, b"c")].concat());
        let d = decode_records(&body, "b");
        assert_eq!(d.msgs.len(), 1, "the record before it is kept");
        assert_eq!(&d.msgs[0].body[..], b"a");
        assert!(
            matches!(d.undecodable, Some(Undecodable::Record { at, .. }) if at == first.len()),
            "{:?}",
            d.undecodable
        );
        // The admin's reading is unchanged: what came before.
        assert_eq!(decode_body(&body, "b").len(), 1);
    }

    #[test]
    fn a_body_that_does_not_inflate_stops_the_consumer_and_is_left_out_by_the_admin() {
        let body = Bytes::from(
            [
                record(0, 0, b"a"),
                record(1, COMPRESSED, b"not zlib"),
                record(2, 0, b"c"),
            ]
            .concat(),
        );
        let d = decode_records(&body, "b");
        assert_eq!(d.msgs.len(), 1);
        assert!(matches!(
            d.undecodable,
            Some(Undecodable::Inflate {
                queue_offset: 1,
                ..
            })
        ));
        let all: Vec<i64> = decode_body(&body, "b")
            .iter()
            .map(|m| m.queue_offset)
            .collect();
        assert_eq!(all, [0, 2]);
    }
}
