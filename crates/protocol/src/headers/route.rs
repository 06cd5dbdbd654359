//! Route lookups and topic administration at the NameServer.

crate::custom_header! {
    /// GET_ROUTEINFO_BY_TOPIC (105) request.
    pub struct GetRouteInfoRequestHeader {
        /// Topic whose route is wanted.
        topic: required String = "topic",
        /// `true` forces standard (quoted-key) JSON for clients older than 4.9.4.
        accept_standard_json_only: optional bool = "acceptStandardJsonOnly",
    }
}

crate::custom_header! {
    /// DELETE_TOPIC_IN_NAMESRV (216) request.
    pub struct DeleteTopicFromNamesrvRequestHeader {
        /// Topic to delete.
        topic: required String = "topic",
        /// When set, only this cluster's queues of the topic are removed.
        cluster_name: optional String = "clusterName",
    }
}

crate::custom_header! {
    /// REGISTER_TOPIC_IN_NAMESRV (217) request; the body is TopicRouteData JSON.
    pub struct RegisterTopicRequestHeader {
        /// Topic to register.
        topic: required String = "topic",
    }
}

crate::custom_header! {
    /// GET_TOPICS_BY_CLUSTER (224) request.
    pub struct GetTopicsByClusterRequestHeader {
        /// Cluster name.
        cluster: required String = "cluster",
    }
}
