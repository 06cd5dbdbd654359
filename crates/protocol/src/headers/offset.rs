//! Consumer offsets and queue positions at a broker: the committed offset of a group
//! (query/update), and a queue's max, min, earliest store time and offset by time. Field names
//! are Java 5.3.3's. `bname` is the RPC field (`RpcRequestHeader`) Java clients add to name the
//! broker the request is for; a broker ignores it.

crate::custom_header! {
    /// QUERY_CONSUMER_OFFSET (14) request (`QueryConsumerOffsetRequestHeader`).
    pub struct QueryConsumerOffsetRequestHeader {
        /// Consumer group.
        consumer_group: required String = "consumerGroup",
        /// Topic.
        topic: required String = "topic",
        /// Queue.
        queue_id: required i32 = "queueId",
        /// `false`: answer QUERY_NOT_FOUND instead of 0 for a queue still starting at 0.
        set_zero_if_not_found: optional bool = "setZeroIfNotFound",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// QUERY_CONSUMER_OFFSET (14) response (`QueryConsumerOffsetResponseHeader`).
    pub struct QueryConsumerOffsetResponseHeader {
        /// The committed offset.
        offset: required i64 = "offset",
    }
}

crate::custom_header! {
    /// UPDATE_CONSUMER_OFFSET (15) request (`UpdateConsumerOffsetRequestHeader`). `queueId` and
    /// `commitOffset` are optional here because the broker answers their absence with
    /// INVALID_PARAMETER (`QueueId is null, ...`), as Java's processor does, not with a decode error.
    pub struct UpdateConsumerOffsetRequestHeader {
        /// Consumer group.
        consumer_group: required String = "consumerGroup",
        /// Topic.
        topic: required String = "topic",
        /// Queue.
        queue_id: optional i32 = "queueId",
        /// Offset to commit.
        commit_offset: optional i64 = "commitOffset",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// GET_MAX_OFFSET (30) request (`GetMaxOffsetRequestHeader`).
    pub struct GetMaxOffsetRequestHeader {
        /// Topic.
        topic: required String = "topic",
        /// Queue.
        queue_id: required i32 = "queueId",
        /// Committed max only (Java's primitive, default true; rmq has no other).
        committed: optional bool = "committed",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// GET_MIN_OFFSET (31) request (`GetMinOffsetRequestHeader`); also the header of
    /// GET_EARLIEST_MSG_STORETIME (32, `GetEarliestMsgStoretimeRequestHeader`, same fields).
    pub struct GetMinOffsetRequestHeader {
        /// Topic.
        topic: required String = "topic",
        /// Queue.
        queue_id: required i32 = "queueId",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

/// GET_EARLIEST_MSG_STORETIME (32) request: the same fields as GET_MIN_OFFSET's.
pub type GetEarliestMsgStoretimeRequestHeader = GetMinOffsetRequestHeader;

crate::custom_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29) request (`SearchOffsetRequestHeader`).
    pub struct SearchOffsetRequestHeader {
        /// Topic.
        topic: required String = "topic",
        /// Queue.
        queue_id: required i32 = "queueId",
        /// Store time (ms).
        timestamp: required i64 = "timestamp",
        /// LOWER (first at or after) or UPPER (last at or before); absent: LOWER.
        boundary_type: optional String = "boundaryType",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// The answer of GET_MAX_OFFSET (30), GET_MIN_OFFSET (31) and SEARCH_OFFSET_BY_TIMESTAMP
    /// (29): Java's `GetMaxOffsetResponseHeader`, `GetMinOffsetResponseHeader` and
    /// `SearchOffsetResponseHeader` all have just this field.
    pub struct OffsetResponseHeader {
        /// The offset.
        offset: required i64 = "offset",
    }
}

crate::custom_header! {
    /// GET_EARLIEST_MSG_STORETIME (32) response (`GetEarliestMsgStoretimeResponseHeader`).
    pub struct GetEarliestMsgStoretimeResponseHeader {
        /// Store time (ms) of the queue's first message; -1 when none.
        timestamp: required i64 = "timestamp",
    }
}
