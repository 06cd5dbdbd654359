//! Messages looked up at a broker (by physical offset, by key) and given back for redelivery,
//! and the region fields every send answer carries. Field names are Java 5.3.3's.

crate::custom_header! {
    /// VIEW_MESSAGE_BY_ID (33) request (`ViewMessageRequestHeader`).
    pub struct ViewMessageRequestHeader {
        /// Topic (sent by mqadmin, ignored by the broker).
        topic: optional String = "topic",
        /// Commit-log (physical) offset of the record.
        offset: required i64 = "offset",
    }
}

crate::custom_header! {
    /// QUERY_MESSAGE (12) request (`QueryMessageRequestHeader`), plus the non-header ext field
    /// `_UNIQUE_KEY_QUERY` (MixAll.UNIQUE_MSG_QUERY_FLAG) Java adds for a query by UNIQ_KEY.
    pub struct QueryMessageRequestHeader {
        /// Topic.
        topic: required String = "topic",
        /// Key (KEYS property or UNIQ_KEY).
        key: required String = "key",
        /// At most this many records.
        max_num: required i32 = "maxNum",
        /// Earliest store time (ms).
        begin_timestamp: required i64 = "beginTimestamp",
        /// Latest store time (ms).
        end_timestamp: required i64 = "endTimestamp",
        /// `true`: a UNIQ_KEY query; the broker uses its own `defaultQueryMaxNum`.
        unique_key_query: optional bool = "_UNIQUE_KEY_QUERY",
    }
}

crate::custom_header! {
    /// QUERY_MESSAGE (12) response (`QueryMessageResponseHeader`), on hits and on
    /// QUERY_NOT_FOUND alike.
    pub struct QueryMessageResponseHeader {
        /// Store time of the index's last update.
        index_last_update_timestamp: required i64 = "indexLastUpdateTimestamp",
        /// Commit-log offset of the index's last update.
        index_last_update_phyoffset: required i64 = "indexLastUpdatePhyoffset",
    }
}

crate::custom_header! {
    /// CONSUMER_SEND_MSG_BACK (36) request (`ConsumerSendMsgBackRequestHeader`): a consumer
    /// gives a message back for redelivery through %RETRY%group (or %DLQ%group).
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit-log offset of the consumed record.
        offset: required i64 = "offset",
        /// Consumer group.
        group: required String = "group",
        /// Delay level; 0 = by reconsume times, < 0 = straight to the DLQ.
        delay_level: required i32 = "delayLevel",
        /// The message's msgId (UNIQ_KEY or offsetMsgId).
        origin_msg_id: optional String = "originMsgId",
        /// The message's topic.
        origin_topic: optional String = "originTopic",
        /// Unit mode (Java's primitive, always sent).
        unit_mode: optional bool = "unitMode",
        /// The group's max reconsume times as the client sees it.
        max_reconsume_times: optional i32 = "maxReconsumeTimes",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// The two ext fields every send answer carries from the checks on, after the
    /// SendMessageResponseHeader fields (Java's `preSend` adds them by hand).
    pub struct SendRegionResponseHeader {
        /// The broker's region id.
        msg_region: required String = "MSG_REGION",
        /// Whether tracing is on.
        trace_on: required bool = "TRACE_ON",
    }
}
