//! HEART_BEAT (34) bodies (spec §2.6.1): who a client is and which producer and consumer groups
//! it runs, with each consumer's subscriptions. Producers and consumers encode them; the broker
//! decodes them from any client (the Go client writes `"messageModel":"Clustering"`).
//!
//! Field order is fastjson's (alphabetical) and every field is always written, so serde's
//! derive writes the same bytes as Java for the names and tags clients use (ASCII); tested
//! against captures 002 (producer) and 038 (push consumer) byte for byte.

use crate::ModelError;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use serde::{Deserialize, Serialize};

/// A client's heartbeat (HeartbeatData).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeartbeatData {
    /// `ip@instanceName`.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Consumer groups this client runs.
    #[serde(rename = "consumerDataSet")]
    pub consumer_data_set: Vec<ConsumerData>,
    /// V2 heartbeats: a hash of the subscriptions (0 = V1).
    #[serde(rename = "heartbeatFingerprint")]
    pub heartbeat_fingerprint: i32,
    /// Producer groups this client runs.
    #[serde(rename = "producerDataSet")]
    pub producer_data_set: Vec<ProducerData>,
    /// V2: the subscriptions are unchanged and left out.
    #[serde(rename = "withoutSub")]
    pub without_sub: bool,
}

/// A producer group (ProducerData).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProducerData {
    /// The group.
    pub group_name: String,
}

/// A consumer group and its subscriptions (ConsumerData).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerData {
    /// CONSUME_FROM_LAST_OFFSET, CONSUME_FROM_FIRST_OFFSET, CONSUME_FROM_TIMESTAMP (or a
    /// deprecated name), as written.
    pub consume_from_where: String,
    /// CONSUME_ACTIVELY (pull), CONSUME_PASSIVELY (push) or CONSUME_POP.
    pub consume_type: String,
    /// The group.
    pub group_name: String,
    /// CLUSTERING or BROADCASTING (any case; see [`ConsumerData::is_broadcasting`]).
    pub message_model: String,
    /// One per subscribed topic (the retry topic included in clustering mode).
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode (unused in 5.x).
    pub unit_mode: bool,
}

impl ConsumerData {
    /// BROADCASTING in any case (the Go client writes `BroadCasting`); anything else, unknown
    /// values included, is clustering, as the spec says a broker should treat it.
    pub fn is_broadcasting(&self) -> bool {
        self.message_model.eq_ignore_ascii_case("BROADCASTING")
    }
}

/// One subscription (SubscriptionData).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscriptionData {
    /// Class filter mode (unused in 5.x).
    pub class_filter_mode: bool,
    /// Java `String.hashCode` of each tag.
    pub code_set: Vec<i32>,
    /// TAG or SQL92.
    pub expression_type: String,
    /// The expression as written (`*`, `TagA || TagB`, or SQL).
    pub sub_string: String,
    /// When the subscription was made (ms); a larger one replaces an older one.
    pub sub_version: i64,
    /// The tags of a TAG expression.
    pub tags_set: Vec<String>,
    /// The topic.
    pub topic: String,
}

impl HeartbeatData {
    /// Decodes a heartbeat body (any key order, unknown fields ignored).
    pub fn decode(body: &[u8]) -> Result<Self, ModelError> {
        crate::decode_lenient(body, "HeartbeatData")
    }

    /// The body, as Java writes it.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain data serializes")
    }

    /// HEART_BEAT (34): empty ext fields, this body.
    pub fn request(&self) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(request::HEART_BEAT).with_body(self.encode());
        cmd.ext_fields = Some(Default::default());
        cmd
    }
}

/// UNREGISTER_CLIENT (35): a client leaving a producer and/or consumer group.
#[derive(Debug, Clone, Default)]
pub struct UnregisterClient {
    /// `ip@instanceName`.
    pub client_id: String,
    /// The producer group it leaves, if any.
    pub producer_group: Option<String>,
    /// The consumer group it leaves, if any.
    pub consumer_group: Option<String>,
}

impl crate::Call for UnregisterClient {
    type Output = ();
    const CODE: i32 = request::UNREGISTER_CLIENT;

    fn command(&self) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(request::UNREGISTER_CLIENT)
            .with_ext("clientID", self.client_id.clone());
        if let Some(g) = &self.producer_group {
            cmd = cmd.with_ext("producerGroup", g.clone());
        }
        if let Some(g) = &self.consumer_group {
            cmd = cmd.with_ext("consumerGroup", g.clone());
        }
        cmd
    }

    fn output(resp: RemotingCommand) -> Result<(), crate::CallError> {
        crate::CallError::check(resp).map(|_| ())
    }
}

impl crate::Call for HeartbeatData {
    type Output = ();
    const CODE: i32 = request::HEART_BEAT;

    fn command(&self) -> RemotingCommand {
        self.request()
    }

    fn output(resp: RemotingCommand) -> Result<(), crate::CallError> {
        crate::CallError::check(resp).map(|_| ())
    }
}
