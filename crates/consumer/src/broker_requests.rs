//! Every request the consumer sends a broker that is still built from string keys
//! (`RemotingCommand::request(code).with_ext(..)`), in one place: the header names are Java's
//! field names, and this is the one file to change when they become typed headers. (PULL_MESSAGE
//! already has its typed header, in [`crate::pull`]; HEART_BEAT and UNREGISTER_CLIENT are typed
//! calls of rmq-model.)

use crate::MessageQueue;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;

/// GET_MAX_OFFSET (committed): the queue's end, for lag and CONSUME_FROM_LAST_OFFSET.
pub(crate) fn get_max_offset(mq: &MessageQueue) -> RemotingCommand {
    RemotingCommand::request(request::GET_MAX_OFFSET)
        .with_ext("topic", mq.topic.clone())
        .with_ext("queueId", mq.queue_id.to_string())
        .with_ext("committed", "true")
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the first offset stored at or after `timestamp` (ms), for
/// CONSUME_FROM_TIMESTAMP.
pub(crate) fn search_offset_by_timestamp(mq: &MessageQueue, timestamp: i64) -> RemotingCommand {
    RemotingCommand::request(request::SEARCH_OFFSET_BY_TIMESTAMP)
        .with_ext("topic", mq.topic.clone())
        .with_ext("queueId", mq.queue_id.to_string())
        .with_ext("timestamp", timestamp.to_string())
}

/// GET_CONSUMER_LIST_BY_GROUP: the group's members, which the rebalance divides queues among.
pub(crate) fn get_consumer_list(group: &str) -> RemotingCommand {
    RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP)
        .with_ext("consumerGroup", group.to_owned())
}

/// QUERY_CONSUMER_OFFSET: the group's committed offset of a queue.
pub(crate) fn query_consumer_offset(group: &str, mq: &MessageQueue) -> RemotingCommand {
    RemotingCommand::request(request::QUERY_CONSUMER_OFFSET)
        .with_ext("consumerGroup", group.to_owned())
        .with_ext("topic", mq.topic.clone())
        .with_ext("queueId", mq.queue_id.to_string())
}

/// UPDATE_CONSUMER_OFFSET: commits a queue's offset (sent oneway).
pub(crate) fn update_consumer_offset(
    group: &str,
    mq: &MessageQueue,
    offset: i64,
) -> RemotingCommand {
    RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET)
        .with_ext("consumerGroup", group.to_owned())
        .with_ext("topic", mq.topic.clone())
        .with_ext("queueId", mq.queue_id.to_string())
        .with_ext("commitOffset", offset.to_string())
        .with_ext("bname", mq.broker_name.clone())
}

/// CONSUMER_SEND_MSG_BACK: gives a message back for redelivery (delay level 0: the broker
/// picks 3 + reconsumeTimes, and the DLQ after `max_reconsume_times`).
pub(crate) fn consumer_send_msg_back(
    group: &str,
    m: &crate::MessageExt,
    max_reconsume_times: i32,
) -> RemotingCommand {
    RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK)
        .with_ext("offset", m.commit_log_offset.to_string())
        .with_ext("group", group.to_owned())
        .with_ext("delayLevel", "0")
        .with_ext("originMsgId", m.msg_id().to_owned())
        .with_ext("originTopic", m.topic.clone())
        .with_ext("unitMode", "false")
        .with_ext("maxReconsumeTimes", max_reconsume_times.to_string())
        .with_ext("bname", m.broker_name.clone())
}

/// LOCK_BATCH_MQ or UNLOCK_BATCH_MQ (`code`) of one broker group's `queues`, Java's body.
pub(crate) fn lock_batch(
    code: i32,
    client_id: &str,
    group: &str,
    queues: &[&MessageQueue],
) -> RemotingCommand {
    let body = serde_json::json!({
        "clientId": client_id,
        "consumerGroup": group,
        "mqSet": queues,
        "onlyThisBroker": false,
    });
    RemotingCommand::request(code).with_body(serde_json::to_vec(&body).unwrap_or_default())
}
