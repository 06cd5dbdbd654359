//! Broker registration, liveness and permission headers (NameServer side).

crate::custom_header! {
    /// REGISTER_BROKER (103) request; the body is a RegisterBrokerBody.
    pub struct RegisterBrokerRequestHeader {
        /// Broker group name.
        broker_name: required String = "brokerName",
        /// "ip:port" clients connect to.
        broker_addr: required String = "brokerAddr",
        /// Cluster the broker belongs to.
        cluster_name: required String = "clusterName",
        /// HA address slaves replicate from.
        ha_server_addr: required String = "haServerAddr",
        /// 0 for the master.
        broker_id: required i64 = "brokerId",
        /// Per-broker expiry (5.x); absent means 120 s.
        heartbeat_timeout_millis: optional i64 = "heartbeatTimeoutMillis",
        /// 5.x acting-master support; absent marks an old broker.
        enable_acting_master: optional bool = "enableActingMaster",
        /// `true`: the body is the zlib layout, not JSON.
        compressed: optional bool = "compressed",
        /// CRC32 of the body masked with 0x7FFFFFFF; 0 or absent skips the check.
        body_crc32: optional i32 = "bodyCrc32",
    }
}

crate::custom_header! {
    /// REGISTER_BROKER (103) response: where a slave finds its master.
    pub struct RegisterBrokerResponseHeader {
        /// Master's HA address (slaves only).
        ha_server_addr: optional String = "haServerAddr",
        /// Master's address (slaves only).
        master_addr: optional String = "masterAddr",
    }
}

crate::custom_header! {
    /// UNREGISTER_BROKER (104) request.
    pub struct UnRegisterBrokerRequestHeader {
        /// Broker group name.
        broker_name: required String = "brokerName",
        /// Address being removed.
        broker_addr: required String = "brokerAddr",
        /// Cluster name.
        cluster_name: required String = "clusterName",
        /// Broker id.
        broker_id: required i64 = "brokerId",
    }
}

crate::custom_header! {
    /// QUERY_DATA_VERSION (322) request; the body is the broker's DataVersion JSON.
    pub struct QueryDataVersionRequestHeader {
        /// Broker group name.
        broker_name: required String = "brokerName",
        /// Broker address.
        broker_addr: required String = "brokerAddr",
        /// Cluster name.
        cluster_name: required String = "clusterName",
        /// Broker id.
        broker_id: required i64 = "brokerId",
    }
}

crate::custom_header! {
    /// QUERY_DATA_VERSION (322) response.
    pub struct QueryDataVersionResponseHeader {
        /// Whether the NameServer's copy differs from the broker's.
        changed: optional bool = "changed",
    }
}

crate::custom_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) request.
    pub struct WipeWritePermOfBrokerRequestHeader {
        /// Broker whose queues lose write permission.
        broker_name: required String = "brokerName",
    }
}

crate::custom_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) response.
    pub struct WipeWritePermOfBrokerResponseHeader {
        /// Number of topics changed.
        wipe_topic_count: required i32 = "wipeTopicCount",
    }
}

crate::custom_header! {
    /// ADD_WRITE_PERM_OF_BROKER (327) request.
    pub struct AddWritePermOfBrokerRequestHeader {
        /// Broker whose queues get write permission back.
        broker_name: required String = "brokerName",
    }
}

crate::custom_header! {
    /// ADD_WRITE_PERM_OF_BROKER (327) response.
    pub struct AddWritePermOfBrokerResponseHeader {
        /// Number of topics changed.
        add_topic_count: required i32 = "addTopicCount",
    }
}

crate::custom_header! {
    /// BROKER_HEARTBEAT (904) request (5.x).
    pub struct BrokerHeartbeatRequestHeader {
        /// Cluster name.
        cluster_name: required String = "clusterName",
        /// Broker address.
        broker_addr: required String = "brokerAddr",
        /// Broker group name.
        broker_name: required String = "brokerName",
        /// Broker id.
        broker_id: optional i64 = "brokerId",
        /// Controller epoch.
        epoch: optional i32 = "epoch",
        /// Max commit log offset.
        max_offset: optional i64 = "maxOffset",
        /// Confirmed offset.
        confirm_offset: optional i64 = "confirmOffset",
        /// Per-broker expiry.
        heartbeat_timeout_mills: optional i64 = "heartbeatTimeoutMills",
        /// Election priority.
        election_priority: optional i32 = "electionPriority",
    }
}

crate::custom_header! {
    /// GET_BROKER_MEMBER_GROUP (901) request (5.x).
    pub struct GetBrokerMemberGroupRequestHeader {
        /// Cluster name.
        cluster_name: required String = "clusterName",
        /// Broker group name.
        broker_name: required String = "brokerName",
    }
}

crate::custom_header! {
    /// NOTIFY_MIN_BROKER_ID_CHANGE (905) request, oneway from a NameServer to the brokers of an
    /// acting-master group (null fields are not sent, as in Java).
    pub struct NotifyMinBrokerIdChangeRequestHeader {
        /// The group's lowest broker id now.
        min_broker_id: optional i64 = "minBrokerId",
        /// That broker's address.
        min_broker_addr: optional String = "minBrokerAddr",
        /// The broker that went offline, if that is why.
        offline_broker_addr: optional String = "offlineBrokerAddr",
        /// The HA address of the registering broker, if that is why.
        ha_broker_addr: optional String = "haBrokerAddr",
    }
}
