//! Client-side checks before any I/O (producer spec §6), with Java's rules and limits.

use crate::error::ProducerError;
use crate::message::{keys, Message};

/// Largest body accepted (maxMessageSize, 4 MiB), checked before compression.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Longest topic name.
pub const MAX_TOPIC_LENGTH: usize = 127;
/// Longest producer group name.
pub const MAX_GROUP_LENGTH: usize = 255;
/// Topics clients may not send to.
const NOT_ALLOWED_SEND: &[&str] = &[
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];

fn legal_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

/// Topic rules: not blank, at most 127 characters of `[%|a-zA-Z0-9_-]`, not a system topic
/// clients may not write.
pub fn check_topic(topic: &str) -> Result<(), ProducerError> {
    let bad = |why: String| Err(ProducerError::InvalidMessage(why));
    if topic.trim().is_empty() {
        return bad("the topic is blank".into());
    }
    if topic.len() > MAX_TOPIC_LENGTH {
        return bad(format!(
            "the topic is longer than {MAX_TOPIC_LENGTH} characters"
        ));
    }
    if !legal_chars(topic) {
        return bad(format!(
            "the topic {topic:?} contains characters other than ^[%|a-zA-Z0-9_-]+$"
        ));
    }
    if NOT_ALLOWED_SEND.contains(&topic) {
        return bad(format!(
            "sending to the system topic {topic} is not allowed"
        ));
    }
    Ok(())
}

/// Group rules: not blank, at most 255 characters of the same set.
pub fn check_group(group: &str) -> Result<(), ProducerError> {
    if group.trim().is_empty() || group.len() > MAX_GROUP_LENGTH || !legal_chars(group) {
        return Err(ProducerError::Config(format!(
            "invalid producer group {group:?}: 1-{MAX_GROUP_LENGTH} characters of [%|a-zA-Z0-9_-]"
        )));
    }
    Ok(())
}

/// Message rules: a valid topic, a non-empty body of at most 4 MiB.
pub fn check_message(msg: &Message) -> Result<(), ProducerError> {
    check_topic(&msg.topic)?;
    if msg.body.is_empty() {
        return Err(ProducerError::InvalidMessage(
            "the message body is empty".into(),
        ));
    }
    if msg.body.len() > MAX_MESSAGE_SIZE {
        return Err(ProducerError::InvalidMessage(format!(
            "the message body is {} bytes, over the maximum of {MAX_MESSAGE_SIZE}",
            msg.body.len()
        )));
    }
    Ok(())
}

/// Java's batch rules (`MessageBatch.generateFromList` and the checks around it): at least one
/// message, each valid on its own, one topic, not a retry topic, no delay level, one
/// waitStoreMsgOK for all.
pub fn check_batch(messages: &[Message]) -> Result<(), ProducerError> {
    let bad = |why: &str| Err(ProducerError::InvalidMessage(why.into()));
    let Some(first) = messages.first() else {
        return bad("the batch is empty");
    };
    for m in messages {
        check_message(m)?;
        if m.topic != first.topic {
            return bad("the messages of a batch must share one topic");
        }
        if m.topic.starts_with("%RETRY%") {
            return bad("retry group topics are not supported for batching");
        }
        if m.property(keys::DELAY).is_some() {
            return bad("TimeDelayLevel is not supported for batching");
        }
        if m.property(keys::WAIT) != first.property(keys::WAIT) {
            return bad("waitStoreMsgOK must be the same for every message of a batch");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_rules() {
        assert!(check_topic("Topic_A-1%x|y").is_ok());
        for bad in [
            "",
            " ",
            "a b",
            "tópico",
            "SCHEDULE_TOPIC_XXXX",
            &"t".repeat(128),
        ] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
        assert!(check_message(&Message::new("T", "")).is_err());
        assert!(check_message(&Message::new("T", vec![0u8; MAX_MESSAGE_SIZE + 1])).is_err());
        assert!(check_message(&Message::new("T", vec![0u8; MAX_MESSAGE_SIZE])).is_ok());
        assert!(check_group("PG").is_ok() && check_group("").is_err());
    }
}
