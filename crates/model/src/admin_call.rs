//! Broker administration as typed [`Call`]s: what `rmq admin` (like mqadmin) asks a broker.
//! Each builds its request from the header in `rmq_protocol::headers::admin` (or
//! `::message`), the same type the broker decodes, so the keys cannot differ between the
//! two sides. Answers whose body is fastjson with object map keys (stats, offsets) are handed
//! over as bytes for [`crate::route::parse_mq_map`].

use crate::call::{call, response_header, Call, CallError};
use bytes::Bytes;
use rmq_protocol::codes::request;
use rmq_protocol::headers::admin::{
    CreateTopicRequestHeader, DeleteSubscriptionGroupRequestHeader, DeleteTopicRequestHeader,
    GetConsumeStatsRequestHeader, GetConsumerConnectionListRequestHeader,
    GetProducerConnectionListRequestHeader, GetTopicConfigRequestHeader,
    GetTopicStatsInfoRequestHeader, ResetOffsetRequestHeader,
};
use rmq_protocol::headers::message::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use rmq_protocol::RemotingCommand;

/// UPDATE_AND_CREATE_TOPIC (17): create or change a topic on one broker.
#[derive(Debug, Clone)]
pub struct CreateTopic {
    /// The header.
    pub header: CreateTopicRequestHeader,
}

impl CreateTopic {
    /// A topic as mqadmin `updateTopic` creates it: template TBW102, SINGLE_TAG, sys flag 0,
    /// not ordered; set `header.order` / `header.attributes` for more.
    pub fn new(topic: impl Into<String>, read: i32, write: i32, perm: i32) -> Self {
        CreateTopic {
            header: CreateTopicRequestHeader {
                topic: topic.into(),
                default_topic: Some("TBW102".into()),
                read_queue_nums: read,
                write_queue_nums: write,
                perm,
                topic_filter_type: Some("SINGLE_TAG".into()),
                topic_sys_flag: Some(0),
                order: Some(false),
                ..Default::default()
            },
        }
    }
}

call!(CreateTopic => request::UPDATE_AND_CREATE_TOPIC, (),
    |s| RemotingCommand::request_with_header(request::UPDATE_AND_CREATE_TOPIC, &s.header),
    |_r| Ok(()));

/// DELETE_TOPIC_IN_BROKER (215): a topic's config, offsets and queues on one broker.
#[derive(Debug, Clone)]
pub struct DeleteTopicInBroker {
    /// The topic.
    pub topic: String,
}

call!(DeleteTopicInBroker => request::DELETE_TOPIC_IN_BROKER, (),
    |s| RemotingCommand::request_with_header(
        request::DELETE_TOPIC_IN_BROKER,
        &DeleteTopicRequestHeader { topic: s.topic.clone() },
    ),
    |_r| Ok(()));

/// GET_TOPIC_CONFIG (351): one topic's TopicConfig JSON. Unknown: `Refused { code: 17 }`.
#[derive(Debug, Clone)]
pub struct GetTopicConfig {
    /// The topic.
    pub topic: String,
}

call!(GetTopicConfig => request::GET_TOPIC_CONFIG, Bytes,
    |s| RemotingCommand::request_with_header(
        request::GET_TOPIC_CONFIG,
        &GetTopicConfigRequestHeader { topic: s.topic.clone(), lo: None },
    ),
    |r| Ok(r.body));

/// GET_TOPIC_STATS_INFO (202): per queue min/max offset and last update time, as fastjson
/// (`{"offsetTable":{{mq}:{..}},..}`).
#[derive(Debug, Clone)]
pub struct GetTopicStatsInfo {
    /// The topic.
    pub topic: String,
}

call!(GetTopicStatsInfo => request::GET_TOPIC_STATS_INFO, Bytes,
    |s| RemotingCommand::request_with_header(
        request::GET_TOPIC_STATS_INFO,
        &GetTopicStatsInfoRequestHeader { topic: s.topic.clone() },
    ),
    |r| Ok(r.body));

/// GET_CONSUME_STATS (208): a group's per-queue progress, as fastjson
/// (`{"consumeTps":..,"offsetTable":{{mq}:{..}}}`).
#[derive(Debug, Clone)]
pub struct GetConsumeStats {
    /// The header (group, optional topic or topic list).
    pub header: GetConsumeStatsRequestHeader,
}

impl GetConsumeStats {
    /// Every topic of `group`.
    pub fn new(group: impl Into<String>) -> Self {
        GetConsumeStats {
            header: GetConsumeStatsRequestHeader {
                consumer_group: group.into(),
                ..Default::default()
            },
        }
    }
}

call!(GetConsumeStats => request::GET_CONSUME_STATS, Bytes,
    |s| RemotingCommand::request_with_header(request::GET_CONSUME_STATS, &s.header),
    |r| Ok(r.body));

/// GET_CONSUMER_CONNECTION_LIST (203): a group's ConsumerConnection JSON. Offline:
/// `Refused { code: 206 }`.
#[derive(Debug, Clone)]
pub struct GetConsumerConnectionList {
    /// The group.
    pub group: String,
}

call!(GetConsumerConnectionList => request::GET_CONSUMER_CONNECTION_LIST, Bytes,
    |s| RemotingCommand::request_with_header(
        request::GET_CONSUMER_CONNECTION_LIST,
        &GetConsumerConnectionListRequestHeader { consumer_group: s.group.clone() },
    ),
    |r| Ok(r.body));

/// GET_PRODUCER_CONNECTION_LIST (204): a producer group's ProducerConnection JSON.
#[derive(Debug, Clone)]
pub struct GetProducerConnectionList {
    /// The group.
    pub group: String,
}

call!(GetProducerConnectionList => request::GET_PRODUCER_CONNECTION_LIST, Bytes,
    |s| RemotingCommand::request_with_header(
        request::GET_PRODUCER_CONNECTION_LIST,
        &GetProducerConnectionListRequestHeader { producer_group: s.group.clone() },
    ),
    |r| Ok(r.body));

/// GET_ALL_CONSUMER_OFFSET (43): every committed offset (`{"offsetTable":{"topic@group":..}}`).
#[derive(Debug, Clone, Default)]
pub struct GetAllConsumerOffset;

call!(GetAllConsumerOffset => request::GET_ALL_CONSUMER_OFFSET, Bytes,
    |_s| RemotingCommand::request(request::GET_ALL_CONSUMER_OFFSET),
    |r| Ok(r.body));

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): a SubscriptionGroupConfig JSON body.
#[derive(Debug, Clone)]
pub struct UpdateSubscriptionGroup {
    /// The SubscriptionGroupConfig JSON.
    pub config: Bytes,
}

call!(UpdateSubscriptionGroup => request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, (),
    |s| RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
        .with_body(s.config.clone()),
    |_r| Ok(()));

/// DELETE_SUBSCRIPTIONGROUP (207).
#[derive(Debug, Clone)]
pub struct DeleteSubscriptionGroup {
    /// The group.
    pub group: String,
    /// Also drop its consumer offsets.
    pub clean_offset: bool,
}

call!(DeleteSubscriptionGroup => request::DELETE_SUBSCRIPTIONGROUP, (),
    |s| RemotingCommand::request_with_header(
        request::DELETE_SUBSCRIPTIONGROUP,
        &DeleteSubscriptionGroupRequestHeader {
            group_name: s.group.clone(),
            clean_offset: Some(s.clean_offset),
        },
    ),
    |_r| Ok(()));

/// GET_BROKER_CONFIG (26): the configuration as `key=value` lines.
#[derive(Debug, Clone, Default)]
pub struct GetBrokerConfig;

call!(GetBrokerConfig => request::GET_BROKER_CONFIG, String,
    |_s| RemotingCommand::request(request::GET_BROKER_CONFIG),
    |r| Ok(String::from_utf8_lossy(&r.body).into_owned()));

/// UPDATE_BROKER_CONFIG (25): `key=value` lines.
#[derive(Debug, Clone)]
pub struct UpdateBrokerConfig {
    /// Properties text.
    pub properties: String,
}

call!(UpdateBrokerConfig => request::UPDATE_BROKER_CONFIG, (),
    |s| RemotingCommand::request(request::UPDATE_BROKER_CONFIG).with_body(s.properties.clone()),
    |_r| Ok(()));

/// VIEW_MESSAGE_BY_ID (33): the stored record at a commit-log offset (its raw bytes).
#[derive(Debug, Clone)]
pub struct ViewMessageById {
    /// Commit-log offset (from an offsetMsgId).
    pub offset: i64,
}

call!(ViewMessageById => request::VIEW_MESSAGE_BY_ID, Bytes,
    |s| RemotingCommand::request_with_header(
        request::VIEW_MESSAGE_BY_ID,
        &ViewMessageRequestHeader { topic: None, offset: s.offset },
    ),
    |r| Ok(r.body));

/// QUERY_MESSAGE (12): the stored records whose key (or UNIQ_KEY) matches, concatenated. None:
/// `Refused { code: 22 }`.
#[derive(Debug, Clone)]
pub struct QueryMessage {
    /// The header.
    pub header: QueryMessageRequestHeader,
}

impl QueryMessage {
    /// Up to 64 records of `topic` with `key`, at any time, as mqadmin `queryMsgByKey` asks;
    /// `unique` looks up a UNIQ_KEY instead.
    pub fn new(topic: impl Into<String>, key: impl Into<String>, unique: bool) -> Self {
        QueryMessage {
            header: QueryMessageRequestHeader {
                topic: topic.into(),
                key: key.into(),
                max_num: 64,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
                unique_key_query: Some(unique),
            },
        }
    }
}

call!(QueryMessage => request::QUERY_MESSAGE, Bytes,
|s| RemotingCommand::request_with_header(request::QUERY_MESSAGE, &s.header),
|r| {
    response_header::<QueryMessageResponseHeader>(&r, "QueryMessageResponseHeader")?;
    Ok(r.body)
});

/// INVOKE_BROKER_TO_RESET_OFFSET (222): a group's offsets of a topic moved to a time; answers
/// the new offsets as ResetOffsetBody (`{"offsetTable":{{mq}:offset}}`).
#[derive(Debug, Clone)]
pub struct ResetOffset {
    /// The header.
    pub header: ResetOffsetRequestHeader,
}

impl ResetOffset {
    /// `group`'s offsets of `topic` to the first message stored at or after `timestamp` (-1:
    /// the end); `force` also moves offsets forward.
    pub fn new(
        topic: impl Into<String>,
        group: impl Into<String>,
        timestamp: i64,
        force: bool,
    ) -> Self {
        ResetOffset {
            header: ResetOffsetRequestHeader {
                topic: topic.into(),
                group: group.into(),
                timestamp,
                is_force: Some(force),
                ..Default::default()
            },
        }
    }
}

call!(ResetOffset => request::INVOKE_BROKER_TO_RESET_OFFSET, Bytes,
    |s| RemotingCommand::request_with_header(request::INVOKE_BROKER_TO_RESET_OFFSET, &s.header),
    |r| Ok(r.body));
