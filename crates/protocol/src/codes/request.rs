//! `RequestCode`: what a request asks for.

macro_rules! code_table {
    ($( $(#[$m:meta])* $name:ident = $val:expr ),* $(,)?) => {
        $( $(#[$m])* pub const $name: i32 = $val; )*
        /// The Java constant name of a known code, for logs and CLI output.
        pub fn name(code: i32) -> Option<&'static str> {
            match code {
                $( $val => Some(stringify!($name)), )*
                _ => None,
            }
        }
    };
}

code_table! {
    /// Broker: store one message (long field names).
    SEND_MESSAGE = 10,
    /// Broker: pull messages.
    PULL_MESSAGE = 11,
    /// Broker: query messages by key.
    QUERY_MESSAGE = 12,
    /// Broker: query an index.
    QUERY_BROKER_OFFSET = 13,
    /// Broker: read a consumer offset.
    QUERY_CONSUMER_OFFSET = 14,
    /// Broker: commit a consumer offset.
    UPDATE_CONSUMER_OFFSET = 15,
    /// Broker: create or update a topic.
    UPDATE_AND_CREATE_TOPIC = 17,
    /// Broker: all topic configs.
    GET_ALL_TOPIC_CONFIG = 21,
    /// Broker: runtime statistics as a KV table (brokerVersionDesc, ...): mqadmin clusterList.
    GET_BROKER_RUNTIME_INFO = 28,
    /// Broker: change its configuration (properties body).
    UPDATE_BROKER_CONFIG = 25,
    /// Broker: its configuration as properties text.
    GET_BROKER_CONFIG = 26,
    /// Broker: a queue's offset by store time.
    SEARCH_OFFSET_BY_TIMESTAMP = 29,
    /// Broker: store time of a queue's first message.
    GET_EARLIEST_MSG_STORETIME = 32,
    /// Broker: every consumer offset (consumerOffset.json's body).
    GET_ALL_CONSUMER_OFFSET = 43,
    /// Broker: every delay-level offset (delayOffset.json's body).
    GET_ALL_DELAY_OFFSET = 45,
    /// Broker: check a consumer's subscription before start (non-TAG filters).
    CHECK_CLIENT_CONFIG = 46,
    /// Broker: every subscription group config.
    GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201,
    /// Broker: per-queue min/max offsets of a topic.
    GET_TOPIC_STATS_INFO = 202,
    /// Broker: the connections of a consumer group.
    GET_CONSUMER_CONNECTION_LIST = 203,
    /// Broker: the connections of a producer group.
    GET_PRODUCER_CONNECTION_LIST = 204,
    /// Broker: delete a subscription group.
    DELETE_SUBSCRIPTIONGROUP = 207,
    /// Broker: a consumer group's progress per queue.
    GET_CONSUME_STATS = 208,
    /// Broker: delete a topic.
    DELETE_TOPIC_IN_BROKER = 215,
    /// Broker to client: move a group's offsets (body: the new offset per queue).
    RESET_CONSUMER_CLIENT_OFFSET = 220,
    /// Broker: reset a group's offsets of a topic to a time.
    INVOKE_BROKER_TO_RESET_OFFSET = 222,
    /// Broker: one topic's config.
    GET_TOPIC_CONFIG = 351,
    /// Broker: max offset of a queue.
    GET_MAX_OFFSET = 30,
    /// Broker: min offset of a queue.
    GET_MIN_OFFSET = 31,
    /// Broker: view a message by offset id.
    VIEW_MESSAGE_BY_ID = 33,
    /// Broker: client heartbeat (producer/consumer data).
    HEART_BEAT = 34,
    /// Broker: client leaves.
    UNREGISTER_CLIENT = 35,
    /// Broker: consumer sends a message back for retry.
    CONSUMER_SEND_MSG_BACK = 36,
    /// Broker: commit/rollback a transaction.
    END_TRANSACTION = 37,
    /// Broker: consumer ids of a group.
    GET_CONSUMER_LIST_BY_GROUP = 38,
    /// Broker -> producer: check a transaction's state.
    CHECK_TRANSACTION_STATE = 39,
    /// Broker -> consumer: group membership changed.
    NOTIFY_CONSUMER_IDS_CHANGED = 40,
    /// Broker: lock queues for ordered consumption.
    LOCK_BATCH_MQ = 41,
    /// Broker: unlock queues.
    UNLOCK_BATCH_MQ = 42,
    /// 4.9 ACL admin.
    UPDATE_AND_CREATE_ACL_CONFIG = 50,
    /// 4.9 ACL admin.
    DELETE_ACL_CONFIG = 51,
    /// 4.9 ACL admin.
    GET_BROKER_CLUSTER_ACL_INFO = 52,
    /// 4.9 ACL admin.
    UPDATE_GLOBAL_WHITE_ADDRS_CONFIG = 53,
    /// NameServer: store a KV config item.
    PUT_KV_CONFIG = 100,
    /// NameServer: read a KV config item.
    GET_KV_CONFIG = 101,
    /// NameServer: delete a KV config item.
    DELETE_KV_CONFIG = 102,
    /// NameServer: broker registration.
    REGISTER_BROKER = 103,
    /// NameServer: broker leaves.
    UNREGISTER_BROKER = 104,
    /// NameServer: route of a topic.
    GET_ROUTEINFO_BY_TOPIC = 105,
    /// NameServer: clusters and brokers.
    GET_BROKER_CLUSTER_INFO = 106,
    /// Broker: create a subscription group.
    UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
    /// Broker -> client: consumer running info.
    GET_CONSUMER_RUNNING_INFO = 307,
    /// NameServer: remove the write permission of a broker's queues.
    WIPE_WRITE_PERM_OF_BROKER = 205,
    /// NameServer: all topics.
    GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206,
    /// NameServer: delete a topic's route.
    DELETE_TOPIC_IN_NAMESRV = 216,
    /// NameServer (5.x): register a topic route.
    REGISTER_TOPIC_IN_NAMESRV = 217,
    /// NameServer: all KV items of a namespace.
    GET_KVLIST_BY_NAMESPACE = 219,
    /// NameServer: topics of a cluster.
    GET_TOPICS_BY_CLUSTER = 224,
    /// NameServer: system topics (cluster and broker names).
    GET_SYSTEM_TOPIC_LIST_FROM_NS = 304,
    /// Broker: store one message (short V2 field names).
    SEND_MESSAGE_V2 = 310,
    /// NameServer: unit topics.
    GET_UNIT_TOPIC_LIST = 311,
    /// NameServer: topics with unit subscriptions.
    GET_HAS_UNIT_SUB_TOPIC_LIST = 312,
    /// NameServer: non-unit topics with unit subscriptions.
    GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST = 313,
    /// NameServer: update its configuration (properties body).
    UPDATE_NAMESRV_CONFIG = 318,
    /// NameServer: read its configuration.
    GET_NAMESRV_CONFIG = 319,
    /// Broker: store a batch of messages.
    SEND_BATCH_MESSAGE = 320,
    /// NameServer: has the broker's topic data changed?
    QUERY_DATA_VERSION = 322,
    /// Broker: request/reply reply (long names).
    SEND_REPLY_MESSAGE = 324,
    /// Broker: request/reply reply (V2 names).
    SEND_REPLY_MESSAGE_V2 = 325,
    /// NameServer: restore the write permission of a broker's queues.
    ADD_WRITE_PERM_OF_BROKER = 327,
    /// Broker: lite pull.
    LITE_PULL_MESSAGE = 361,
    /// NameServer (5.x): members of a broker group.
    GET_BROKER_MEMBER_GROUP = 901,
    /// NameServer (5.x): lightweight broker heartbeat.
    BROKER_HEARTBEAT = 904,
    /// NameServer -> broker (5.x): min broker id changed.
    NOTIFY_MIN_BROKER_ID_CHANGE = 905,
    /// Broker (5.x): pop messages; JSON only (does not fit an i16).
    POP_MESSAGE = 200050,
    /// Broker (5.x): ack a popped message.
    ACK_MESSAGE = 200051,
    /// Broker (5.x): peek messages.
    PEEK_MESSAGE = 200052,
    /// Broker (5.x): change invisible time.
    CHANGE_MESSAGE_INVISIBLETIME = 200053,
    /// Broker (5.x): pop notification.
    NOTIFICATION = 200054,
    /// Broker (5.x): polling info.
    POLLING_INFO = 200055,
    /// Broker (5.x): pop rollback.
    POP_ROLLBACK = 200056,
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::name(105), Some("GET_ROUTEINFO_BY_TOPIC"));
        assert_eq!(super::name(310), Some("SEND_MESSAGE_V2"));
        assert_eq!(super::name(9999), None);
    }
}
