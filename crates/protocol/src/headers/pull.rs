//! PULL_MESSAGE (11) headers.

crate::custom_header! {
    /// PULL_MESSAGE request header (Java fast-encoder order).
    pub struct PullMessageRequestHeader {
        /// Consumer group.
        consumer_group: required String = "consumerGroup",
        /// Topic.
        topic: required String = "topic",
        /// Queue.
        queue_id: required i32 = "queueId",
        /// Offset to pull from.
        queue_offset: required i64 = "queueOffset",
        /// Max messages.
        max_msg_nums: required i32 = "maxMsgNums",
        /// PullSysFlag bits.
        sys_flag: required i32 = "sysFlag",
        /// Offset to commit alongside.
        commit_offset: required i64 = "commitOffset",
        /// Long-poll suspension.
        suspend_timeout_millis: required i64 = "suspendTimeoutMillis",
        /// Subscription expression.
        subscription: optional String = "subscription",
        /// Subscription version.
        sub_version: required i64 = "subVersion",
        /// TAG or SQL92.
        expression_type: optional String = "expressionType",
        /// Max bytes.
        max_msg_bytes: optional i32 = "maxMsgBytes",
        /// Request source (proxy).
        request_source: optional i32 = "requestSource",
        /// Proxy's client id (sic, Java spelling).
        proxy_froward_client_id: optional String = "proxyFrowardClientId",
    }
}

impl PullMessageRequestHeader {
    /// A pull of up to 32 messages from `queue_offset` of `group` that carries its subscription
    /// (`tags`, a TAG expression: PullSysFlag 0x4, so no heartbeat is needed), not held,
    /// committing nothing: what tools, benches and tests that read a queue send. Struct update
    /// syntax changes the rest (a suspension, another batch size).
    pub fn subscribed(
        group: &str,
        topic: &str,
        queue_id: i32,
        queue_offset: i64,
        tags: &str,
    ) -> Self {
        PullMessageRequestHeader {
            consumer_group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id,
            queue_offset,
            max_msg_nums: 32,
            sys_flag: 0x4,
            subscription: Some(tags.to_owned()),
            expression_type: Some("TAG".to_owned()),
            ..Default::default()
        }
    }
}

crate::custom_header! {
    /// PULL_MESSAGE response header (Java fast-encoder order).
    pub struct PullMessageResponseHeader {
        /// Broker the consumer should pull from next.
        suggest_which_broker_id: required i64 = "suggestWhichBrokerId",
        /// Next offset.
        next_begin_offset: required i64 = "nextBeginOffset",
        /// Queue min offset.
        min_offset: required i64 = "minOffset",
        /// Queue max offset.
        max_offset: required i64 = "maxOffset",
        /// Offset delta (5.x).
        offset_delta: optional i64 = "offsetDelta",
        /// Topic sys flag.
        topic_sys_flag: optional i32 = "topicSysFlag",
        /// Group sys flag.
        group_sys_flag: optional i32 = "groupSysFlag",
        /// Forbidden type.
        forbidden_type: optional i32 = "forbiddenType",
    }
}

crate::custom_header! {
    /// A refused PULL_MESSAGE's header (NO_PERMISSION): Java's response header with only
    /// `forbiddenType` set, its other fields null and so absent on the wire.
    pub struct PullForbiddenResponseHeader {
        /// 1 broker, 2 group, 3 topic, 4 broadcast (Java's `ForbiddenType`).
        forbidden_type: required i32 = "forbiddenType",
    }
}
