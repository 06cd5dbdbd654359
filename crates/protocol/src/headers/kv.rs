//! KV config headers (NameServer).

crate::custom_header! {
    /// PUT_KV_CONFIG (100) request.
    pub struct PutKvConfigRequestHeader {
        /// Namespace, e.g. ORDER_TOPIC_CONFIG.
        namespace: required String = "namespace",
        /// Key within the namespace.
        key: required String = "key",
        /// Value to store.
        value: required String = "value",
    }
}

crate::custom_header! {
    /// GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102) request.
    pub struct KvConfigKeyRequestHeader {
        /// Namespace.
        namespace: required String = "namespace",
        /// Key.
        key: required String = "key",
    }
}

crate::custom_header! {
    /// GET_KV_CONFIG (101) response.
    pub struct GetKvConfigResponseHeader {
        /// The stored value.
        value: optional String = "value",
    }
}

crate::custom_header! {
    /// GET_KVLIST_BY_NAMESPACE (219) request.
    pub struct GetKvListByNamespaceRequestHeader {
        /// Namespace to list.
        namespace: required String = "namespace",
    }
}
