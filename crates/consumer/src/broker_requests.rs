//! Every request the consumer sends a broker, built from rmq-model's typed [`Call`]s (the
//! same header types the broker decodes with), in one place. PULL_MESSAGE has its typed header
//! in [`crate::pull`]; HEART_BEAT and UNREGISTER_CLIENT are typed calls of rmq-model too.
//! Callers send the commands themselves (some oneway) and read the answers where they are used.

use crate::MessageQueue;
use rmq_model::call::Call;
use rmq_model::client_call::{
    ConsumerSendMsgBack, GetConsumerListByGroup, GetMaxOffset, LockBatchMq, QueryConsumerOffset,
    SearchOffset, UnlockBatchMq, UpdateConsumerOffset,
};
use rmq_model::group::LockBatchBody;
use rmq_protocol::codes::request;
use rmq_protocol::headers::message::ConsumerSendMsgBackRequestHeader;
use rmq_protocol::headers::offset::SearchOffsetRequestHeader;
use rmq_protocol::RemotingCommand;

/// GET_MAX_OFFSET (committed): the queue's end, for lag and CONSUME_FROM_LAST_OFFSET.
pub(crate) fn get_max_offset(mq: &MessageQueue) -> RemotingCommand {
    GetMaxOffset::new(mq.topic.clone(), mq.queue_id).command()
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the first offset stored at or after `timestamp` (ms), for
/// CONSUME_FROM_TIMESTAMP.
pub(crate) fn search_offset_by_timestamp(mq: &MessageQueue, timestamp: i64) -> RemotingCommand {
    SearchOffset {
        header: SearchOffsetRequestHeader {
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            timestamp,
            boundary_type: None,
            bname: None,
        },
    }
    .command()
}

/// GET_CONSUMER_LIST_BY_GROUP: the group's members, which the rebalance divides queues among.
pub(crate) fn get_consumer_list(group: &str) -> RemotingCommand {
    GetConsumerListByGroup::new(group).command()
}

/// QUERY_CONSUMER_OFFSET: the group's committed offset of a queue.
pub(crate) fn query_consumer_offset(group: &str, mq: &MessageQueue) -> RemotingCommand {
    QueryConsumerOffset::new(group, mq.topic.clone(), mq.queue_id).command()
}

/// UPDATE_CONSUMER_OFFSET: commits a queue's offset (sent oneway).
pub(crate) fn update_consumer_offset(
    group: &str,
    mq: &MessageQueue,
    offset: i64,
) -> RemotingCommand {
    let mut call = UpdateConsumerOffset::new(group, mq.topic.clone(), mq.queue_id, offset);
    call.header.bname = Some(mq.broker_name.clone());
    call.command()
}

/// CONSUMER_SEND_MSG_BACK: gives a message back for redelivery (delay level 0: the broker
/// picks 3 + reconsumeTimes, and the DLQ after `max_reconsume_times`).
pub(crate) fn consumer_send_msg_back(
    group: &str,
    m: &crate::MessageExt,
    max_reconsume_times: i32,
) -> RemotingCommand {
    ConsumerSendMsgBack {
        header: ConsumerSendMsgBackRequestHeader {
            offset: m.commit_log_offset,
            group: group.to_owned(),
            delay_level: 0,
            origin_msg_id: Some(m.msg_id().to_owned()),
            origin_topic: Some(m.topic.clone()),
            unit_mode: Some(false),
            max_reconsume_times: Some(max_reconsume_times),
            bname: Some(m.broker_name.clone()),
        },
    }
    .command()
}

/// LOCK_BATCH_MQ or UNLOCK_BATCH_MQ (`code`) of one broker group's `queues`.
pub(crate) fn lock_batch(
    code: i32,
    client_id: &str,
    group: &str,
    queues: &[&MessageQueue],
) -> RemotingCommand {
    let body = LockBatchBody {
        client_id: client_id.to_owned(),
        consumer_group: group.to_owned(),
        mq_set: queues.iter().map(|q| (*q).clone()).collect(),
        only_this_broker: false,
    };
    if code == request::UNLOCK_BATCH_MQ {
        UnlockBatchMq { body }.command()
    } else {
        LockBatchMq { body }.command()
    }
}
