//! Messages and their properties string (producer spec §3).

use bytes::Bytes;

/// Property keys the send path sets (MessageConst).
pub mod keys {
    /// Space-joined message keys.
    pub const KEYS: &str = "KEYS";
    /// The tag.
    pub const TAGS: &str = "TAGS";
    /// Wait for the store before answering ("true" by default).
    pub const WAIT: &str = "WAIT";
    /// Delay level.
    pub const DELAY: &str = "DELAY";
    /// The client-side unique message id.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// Transaction half message.
    pub const TRAN_MSG: &str = "TRAN_MSG";
}

/// Keys a user property may not take (Java Message.putUserProperty rejects them).
const RESERVED: &[&str] = &[
    "KEYS",
    "TAGS",
    "WAIT",
    "DELAY",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "TRAN_MSG",
    "PGROUP",
    "MIN_OFFSET",
    "MAX_OFFSET",
    "BUYER_ID",
    "ORIGIN_MESSAGE_ID",
    "TRANSFER_FLAG",
    "CORRECTION_FLAG",
    "MQ2_FLAG",
    "RECONSUME_TIME",
    "MSG_REGION",
    "TRACE_ON",
    "UNIQ_KEY",
    "MAX_RECONSUME_TIMES",
    "CONSUME_START_TIME",
    "TRAN_PREPARED_QUEUE_OFFSET",
    "TRANSACTION_CHECK_TIMES",
    "CHECK_IMMUNITY_TIME_IN_SECONDS",
    "SHARDING_KEY",
];

/// A message to send: topic, body, the user flag and properties in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Destination topic.
    pub topic: String,
    /// Payload (at most 4 MiB).
    pub body: Bytes,
    /// User flag (header `h`).
    pub flag: i32,
    /// Properties, in the order they were set (Java's order is a HashMap's, which no receiver
    /// may depend on).
    pub properties: Vec<(String, String)>,
}

impl Message {
    /// A message for `topic` with `body`.
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: Vec::new(),
        }
    }

    /// Sets a property, replacing an earlier value.
    pub fn set_property(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.properties.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.properties.push((key.to_owned(), value)),
        }
    }

    /// A property's value.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Builder: the tag.
    pub fn with_tags(mut self, tags: &str) -> Self {
        self.set_property(keys::TAGS, tags);
        self
    }

    /// Builder: the keys (joined by a single space, as Java does).
    pub fn with_keys<S: AsRef<str>>(mut self, keys: &[S]) -> Self {
        let joined: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.set_property(keys::KEYS, joined.join(" "));
        self
    }

    /// Builder: a user property; reserved names are refused.
    pub fn with_user_property(mut self, key: &str, value: &str) -> Result<Self, String> {
        if RESERVED.contains(&key) {
            return Err(format!("the property {key} is reserved for the system"));
        }
        self.set_property(key, value);
        Ok(self)
    }

    /// Builder: the delay level (1-18 on a default broker).
    pub fn with_delay_level(mut self, level: i32) -> Self {
        self.set_property(keys::DELAY, level.to_string());
        self
    }

    /// Builder: whether the broker answers only after storing (WAIT, default true).
    pub fn with_wait_store_msg_ok(mut self, wait: bool) -> Self {
        self.set_property(keys::WAIT, if wait { "true" } else { "false" });
        self
    }

    /// Builder: the user flag.
    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }
}

pub use rmq_model::message::{decode_properties, encode_properties};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_and_reserved_keys() {
        let m = Message::new("T", "b")
            .with_keys(&["k1", "k2"])
            .with_tags("TagA")
            .with_user_property("userProp", "v1")
            .unwrap();
        let s = encode_properties(&m.properties);
        assert_eq!(
            s,
            "KEYS\u{1}k1 k2\u{2}TAGS\u{1}TagA\u{2}userProp\u{1}v1\u{2}"
        );
        assert_eq!(decode_properties(&s), m.properties);
        assert_eq!(
            decode_properties("bad\u{2}a\u{1}b\u{2}"),
            vec![("a".into(), "b".into())]
        );
        assert!(Message::new("T", "b")
            .with_user_property("UNIQ_KEY", "x")
            .is_err());
    }
}
