//! Broker administration headers: what mqadmin (and `rmq admin`) sends to a broker about
//! topics, subscription groups, connections, statistics, offsets reset and the broker's own
//! configuration. Field names are Java 5.3.3's (they are the ext keys). Fields Java marks
//! `@CFNotNull` and the broker cannot do without are `required`; the rest are `optional`, so a
//! broker decoding them is as lenient as rmq's was before the types (a missing `order` reads as
//! false), while a client fills them as Java's tools do.

crate::custom_header! {
    /// UPDATE_AND_CREATE_TOPIC (17) request (`CreateTopicRequestHeader`).
    pub struct CreateTopicRequestHeader {
        /// Topic to create or update.
        topic: required String = "topic",
        /// Template topic: required by Java, unused; mqadmin sends TBW102.
        default_topic: optional String = "defaultTopic",
        /// Read queues.
        read_queue_nums: required i32 = "readQueueNums",
        /// Write queues.
        write_queue_nums: required i32 = "writeQueueNums",
        /// Permission bits (6 = read + write).
        perm: required i32 = "perm",
        /// SINGLE_TAG or MULTI_TAG (absent: SINGLE_TAG).
        topic_filter_type: optional String = "topicFilterType",
        /// Topic sys flag (absent: 0).
        topic_sys_flag: optional i32 = "topicSysFlag",
        /// Ordered topic.
        order: optional bool = "order",
        /// `+key=value,-key` attribute changes.
        attributes: optional String = "attributes",
        /// Force the update (5.x; unused by rmq).
        force: optional bool = "force",
        /// Logical (static) topic (`TopicRequestHeader`).
        lo: optional bool = "lo",
    }
}

crate::custom_header! {
    /// DELETE_TOPIC_IN_BROKER (215) request (`DeleteTopicRequestHeader`).
    pub struct DeleteTopicRequestHeader {
        /// Topic to delete.
        topic: required String = "topic",
    }
}

crate::custom_header! {
    /// GET_TOPIC_CONFIG (351) request (`GetTopicConfigRequestHeader`).
    pub struct GetTopicConfigRequestHeader {
        /// Topic whose config is wanted.
        topic: required String = "topic",
        /// Logical (static) topic: Java adds the mapping detail.
        lo: optional bool = "lo",
    }
}

crate::custom_header! {
    /// GET_TOPIC_STATS_INFO (202) request (`GetTopicStatsInfoRequestHeader`).
    pub struct GetTopicStatsInfoRequestHeader {
        /// Topic.
        topic: required String = "topic",
    }
}

crate::custom_header! {
    /// DELETE_SUBSCRIPTIONGROUP (207) request (`DeleteSubscriptionGroupRequestHeader`).
    pub struct DeleteSubscriptionGroupRequestHeader {
        /// Group to delete.
        group_name: required String = "groupName",
        /// Also drop the group's consumer offsets (Java's primitive, always sent).
        clean_offset: optional bool = "cleanOffset",
    }
}

crate::custom_header! {
    /// GET_PRODUCER_CONNECTION_LIST (204) request (`GetProducerConnectionListRequestHeader`).
    pub struct GetProducerConnectionListRequestHeader {
        /// Producer group.
        producer_group: required String = "producerGroup",
    }
}

crate::custom_header! {
    /// GET_CONSUMER_CONNECTION_LIST (203) request (`GetConsumerConnectionListRequestHeader`).
    pub struct GetConsumerConnectionListRequestHeader {
        /// Consumer group.
        consumer_group: required String = "consumerGroup",
    }
}

crate::custom_header! {
    /// GET_CONSUME_STATS (208) request (`GetConsumeStatsRequestHeader`).
    pub struct GetConsumeStatsRequestHeader {
        /// Consumer group.
        consumer_group: required String = "consumerGroup",
        /// One topic (absent: every topic the group has offsets of).
        topic: optional String = "topic",
        /// `;`-separated topics; wins over `topic`.
        topic_list: optional String = "topicList",
    }
}

crate::custom_header! {
    /// INVOKE_BROKER_TO_RESET_OFFSET (222) request, and the RESET_CONSUMER_CLIENT_OFFSET (220)
    /// the broker then sends each online member (`ResetOffsetRequestHeader`).
    pub struct ResetOffsetRequestHeader {
        /// Topic.
        topic: required String = "topic",
        /// Consumer group.
        group: required String = "group",
        /// One queue (Java's primitive, -1 = all; rmq resets all queues).
        queue_id: optional i32 = "queueId",
        /// An explicit offset (unused by rmq).
        offset: optional i64 = "offset",
        /// Store time to move to; -1 = the end.
        timestamp: required i64 = "timestamp",
        /// Move even when the target is ahead of the committed offset (absent: true).
        is_force: optional bool = "isForce",
    }
}

crate::custom_header! {
    /// GET_BROKER_CONFIG (26) response (`GetBrokerConfigResponseHeader`).
    pub struct GetBrokerConfigResponseHeader {
        /// DataVersion JSON of the configuration.
        version: required String = "version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom_header::CommandCustomHeader;
    use crate::ExtFields;

    #[test]
    fn create_topic_writes_mqadmin_fields_in_java_field_order() {
        let h = CreateTopicRequestHeader {
            topic: "T".into(),
            default_topic: Some("TBW102".into()),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_filter_type: Some("SINGLE_TAG".into()),
            topic_sys_flag: Some(0),
            order: Some(false),
            ..Default::default()
        };
        let mut ext = ExtFields::new();
        h.write_to(&mut ext);
        let keys: Vec<_> = ext.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "topic",
                "defaultTopic",
                "readQueueNums",
                "writeQueueNums",
                "perm",
                "topicFilterType",
                "topicSysFlag",
                "order"
            ]
        );
        assert_eq!(ext.get("order"), Some("false"));
        assert_eq!(CreateTopicRequestHeader::read_from(&ext).unwrap(), h);
    }
}
