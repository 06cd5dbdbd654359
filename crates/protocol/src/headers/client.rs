//! Client management at a broker: heartbeat answer, unregistering, group membership and its
//! change notice, orderly locks. Field names are Java 5.3.3's; `bname` is the RPC field
//! (`RpcRequestHeader`) Java clients add to name the target broker, ignored by a broker.

crate::custom_header! {
    /// HEART_BEAT (34) response. Java has no header class here: its processor adds these two
    /// ext fields by hand; the body of the request is HeartbeatData.
    pub struct HeartbeatResponseHeader {
        /// Always `true`: this broker understands heartbeat V2 fingerprints.
        is_support_heart_beat_v2: required bool = "IS_SUPPORT_HEART_BEAT_V2",
        /// Whether the client must send its subscriptions again.
        is_sub_change: required bool = "IS_SUB_CHANGE",
    }
}

crate::custom_header! {
    /// UNREGISTER_CLIENT (35) request (`UnregisterClientRequestHeader`); the connection leaves
    /// the named groups.
    pub struct UnregisterClientRequestHeader {
        /// The client id (informational; Java marks it required, rmq reads it as optional).
        client_id: optional String = "clientID",
        /// Producer group left.
        producer_group: optional String = "producerGroup",
        /// Consumer group left.
        consumer_group: optional String = "consumerGroup",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// GET_CONSUMER_LIST_BY_GROUP (38) request (`GetConsumerListByGroupRequestHeader`); the
    /// answer's body is `{"consumerIdList":[...]}`.
    pub struct GetConsumerListByGroupRequestHeader {
        /// Consumer group.
        consumer_group: required String = "consumerGroup",
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}

crate::custom_header! {
    /// NOTIFY_CONSUMER_IDS_CHANGED (40), oneway from the broker to every member of a group
    /// whose membership changed (`NotifyConsumerIdsChangedRequestHeader`).
    pub struct NotifyConsumerIdsChangedRequestHeader {
        /// The group that changed.
        consumer_group: required String = "consumerGroup",
    }
}

crate::custom_header! {
    /// LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42) request (`LockBatchMqRequestHeader`,
    /// `UnlockBatchMqRequestHeader`): only the RPC fields; the queues are in the body.
    pub struct LockBatchMqRequestHeader {
        /// Target broker name (RPC field).
        bname: optional String = "bname",
    }
}
