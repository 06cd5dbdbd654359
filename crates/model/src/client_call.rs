//! What a consumer asks a broker, as typed [`Call`]s: group membership, committed offsets,
//! queue positions, giving a message back, orderly locks. The headers are the ones in
//! `rmq_protocol::headers::{client, offset, message}`, decoded by the broker with the same
//! types. Requests a client sends oneway (UPDATE_CONSUMER_OFFSET, usually UNLOCK_BATCH_MQ)
//! are Calls too: take [`Call::command`] and mark it oneway.

use crate::call::{call, response_header, Call, CallError};
use crate::group::{ConsumerIdList, LockBatchBody, LockedQueues};
use crate::route::MessageQueue;
use rmq_protocol::codes::request;
use rmq_protocol::headers::client::{
    GetConsumerListByGroupRequestHeader, LockBatchMqRequestHeader,
};
use rmq_protocol::headers::message::ConsumerSendMsgBackRequestHeader;
use rmq_protocol::headers::offset::{
    GetEarliestMsgStoretimeResponseHeader, GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader,
    OffsetResponseHeader, QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use rmq_protocol::RemotingCommand;

/// GET_CONSUMER_LIST_BY_GROUP (38): the client ids of a group's members.
#[derive(Debug, Clone)]
pub struct GetConsumerListByGroup {
    /// The header.
    pub header: GetConsumerListByGroupRequestHeader,
}

impl GetConsumerListByGroup {
    /// The members of `group`.
    pub fn new(group: impl Into<String>) -> Self {
        GetConsumerListByGroup {
            header: GetConsumerListByGroupRequestHeader {
                consumer_group: group.into(),
                bname: None,
            },
        }
    }
}

call!(GetConsumerListByGroup => request::GET_CONSUMER_LIST_BY_GROUP, Vec<String>,
    |s| RemotingCommand::request_with_header(request::GET_CONSUMER_LIST_BY_GROUP, &s.header),
    |r| Ok(ConsumerIdList::decode(&r.body)?.consumer_id_list));

/// QUERY_CONSUMER_OFFSET (14): a group's committed offset of a queue. None committed:
/// `Refused { code: 22 }`.
#[derive(Debug, Clone)]
pub struct QueryConsumerOffset {
    /// The header.
    pub header: QueryConsumerOffsetRequestHeader,
}

impl QueryConsumerOffset {
    /// `group`'s committed offset of `topic`/`queue_id`.
    pub fn new(group: impl Into<String>, topic: impl Into<String>, queue_id: i32) -> Self {
        QueryConsumerOffset {
            header: QueryConsumerOffsetRequestHeader {
                consumer_group: group.into(),
                topic: topic.into(),
                queue_id,
                ..Default::default()
            },
        }
    }
}

call!(QueryConsumerOffset => request::QUERY_CONSUMER_OFFSET, i64,
    |s| RemotingCommand::request_with_header(request::QUERY_CONSUMER_OFFSET, &s.header),
    |r| Ok(response_header::<QueryConsumerOffsetResponseHeader>(&r, "QueryConsumerOffsetResponseHeader")?.offset));

/// UPDATE_CONSUMER_OFFSET (15): commits a group's offset of a queue (Java clients send it
/// oneway).
#[derive(Debug, Clone)]
pub struct UpdateConsumerOffset {
    /// The header.
    pub header: UpdateConsumerOffsetRequestHeader,
}

impl UpdateConsumerOffset {
    /// Commit `offset` for `group` on `topic`/`queue_id`.
    pub fn new(
        group: impl Into<String>,
        topic: impl Into<String>,
        queue_id: i32,
        offset: i64,
    ) -> Self {
        UpdateConsumerOffset {
            header: UpdateConsumerOffsetRequestHeader {
                consumer_group: group.into(),
                topic: topic.into(),
                queue_id: Some(queue_id),
                commit_offset: Some(offset),
                bname: None,
            },
        }
    }
}

call!(UpdateConsumerOffset => request::UPDATE_CONSUMER_OFFSET, (),
    |s| RemotingCommand::request_with_header(request::UPDATE_CONSUMER_OFFSET, &s.header),
    |_r| Ok(()));

/// GET_MAX_OFFSET (30): a queue's max (next) offset.
#[derive(Debug, Clone)]
pub struct GetMaxOffset {
    /// The header.
    pub header: GetMaxOffsetRequestHeader,
}

impl GetMaxOffset {
    /// `topic`/`queue_id`'s committed max offset (Java's default `committed=true`).
    pub fn new(topic: impl Into<String>, queue_id: i32) -> Self {
        GetMaxOffset {
            header: GetMaxOffsetRequestHeader {
                topic: topic.into(),
                queue_id,
                committed: Some(true),
                bname: None,
            },
        }
    }
}

call!(GetMaxOffset => request::GET_MAX_OFFSET, i64,
    |s| RemotingCommand::request_with_header(request::GET_MAX_OFFSET, &s.header),
    |r| Ok(response_header::<OffsetResponseHeader>(&r, "GetMaxOffsetResponseHeader")?.offset));

/// GET_MIN_OFFSET (31): a queue's min offset.
#[derive(Debug, Clone)]
pub struct GetMinOffset {
    /// The header.
    pub header: GetMinOffsetRequestHeader,
}

impl GetMinOffset {
    /// `topic`/`queue_id`'s min offset.
    pub fn new(topic: impl Into<String>, queue_id: i32) -> Self {
        GetMinOffset {
            header: GetMinOffsetRequestHeader {
                topic: topic.into(),
                queue_id,
                bname: None,
            },
        }
    }
}

call!(GetMinOffset => request::GET_MIN_OFFSET, i64,
    |s| RemotingCommand::request_with_header(request::GET_MIN_OFFSET, &s.header),
    |r| Ok(response_header::<OffsetResponseHeader>(&r, "GetMinOffsetResponseHeader")?.offset));

/// GET_EARLIEST_MSG_STORETIME (32): store time of a queue's first message (-1: none).
#[derive(Debug, Clone)]
pub struct GetEarliestMsgStoretime {
    /// The header.
    pub header: GetMinOffsetRequestHeader,
}

call!(GetEarliestMsgStoretime => request::GET_EARLIEST_MSG_STORETIME, i64,
    |s| RemotingCommand::request_with_header(request::GET_EARLIEST_MSG_STORETIME, &s.header),
    |r| Ok(response_header::<GetEarliestMsgStoretimeResponseHeader>(
        &r, "GetEarliestMsgStoretimeResponseHeader")?.timestamp));

/// SEARCH_OFFSET_BY_TIMESTAMP (29): the offset of the first message stored at or after a
/// time (`boundaryType` UPPER: the last at or before).
#[derive(Debug, Clone)]
pub struct SearchOffset {
    /// The header.
    pub header: SearchOffsetRequestHeader,
}

call!(SearchOffset => request::SEARCH_OFFSET_BY_TIMESTAMP, i64,
    |s| RemotingCommand::request_with_header(request::SEARCH_OFFSET_BY_TIMESTAMP, &s.header),
    |r| Ok(response_header::<OffsetResponseHeader>(&r, "SearchOffsetResponseHeader")?.offset));

/// CONSUMER_SEND_MSG_BACK (36): a consumed message given back for redelivery.
#[derive(Debug, Clone)]
pub struct ConsumerSendMsgBack {
    /// The header.
    pub header: ConsumerSendMsgBackRequestHeader,
}

call!(ConsumerSendMsgBack => request::CONSUMER_SEND_MSG_BACK, (),
    |s| RemotingCommand::request_with_header(request::CONSUMER_SEND_MSG_BACK, &s.header),
    |_r| Ok(()));

/// LOCK_BATCH_MQ (41): locks queues for an orderly consumer; answers those now owned.
#[derive(Debug, Clone)]
pub struct LockBatchMq {
    /// The queues and their would-be owner.
    pub body: LockBatchBody,
}

call!(LockBatchMq => request::LOCK_BATCH_MQ, Vec<MessageQueue>,
    |s| RemotingCommand::request_with_header(
        request::LOCK_BATCH_MQ,
        &LockBatchMqRequestHeader { bname: None },
    )
    .with_body(s.body.encode()),
    |r| Ok(LockedQueues::decode(&r.body)?.lock_ok_mq_set));

/// UNLOCK_BATCH_MQ (42): releases an orderly consumer's queues.
#[derive(Debug, Clone)]
pub struct UnlockBatchMq {
    /// The queues and their owner.
    pub body: LockBatchBody,
}

call!(UnlockBatchMq => request::UNLOCK_BATCH_MQ, (),
    |s| RemotingCommand::request_with_header(
        request::UNLOCK_BATCH_MQ,
        &LockBatchMqRequestHeader { bname: None },
    )
    .with_body(s.body.encode()),
    |_r| Ok(()));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_to_their_outputs() {
        let mut resp = RemotingCommand::response(0, None);
        resp.set_header(&QueryConsumerOffsetResponseHeader { offset: 7 });
        assert_eq!(QueryConsumerOffset::output(resp).unwrap(), 7);
        let refused = RemotingCommand::response(22, Some("Not found"));
        let e = QueryConsumerOffset::output(refused).unwrap_err();
        assert_eq!(e.refused_code(), Some(22));
        let no_offset = RemotingCommand::response(0, None);
        assert!(matches!(
            GetMaxOffset::output(no_offset),
            Err(CallError::Decode(_))
        ));
        let list =
            RemotingCommand::response(0, None).with_body(&br#"{"consumerIdList":["a"]}"#[..]);
        assert_eq!(GetConsumerListByGroup::output(list).unwrap(), ["a"]);
    }
}
