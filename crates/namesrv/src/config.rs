//! NamesrvConfig + the NettyServerConfig keys a NameServer exposes, under their Java property
//! names, so a namesrv.properties file written for the Java NameServer works here unchanged.
//!
//! Sources, later wins: embedded defaults, a properties file (`-c`), `RMQ_NAMESRV_<NAME>`
//! environment variables (the property name upper-cased, e.g. `RMQ_NAMESRV_LISTENPORT`), then
//! command-line `--set name=value`.

fn home() -> String {
    std::env::var("HOME").unwrap_or_else(|_| ".".into())
}

rmq_config::settings! {
    /// The NameServer's settings (spec §7.1), Java property names in the field docs.
    pub struct NamesrvConfig (env = "RMQ_NAMESRV_") {
    /// listenPort: TCP port (Java default 9876).
    listen_port: u16 = "listenPort", 9876;
    /// bindAddress: address to bind. rmq defaults to 127.0.0.1 (Java: 0.0.0.0); set 0.0.0.0 to
    /// serve other hosts.
    bind_address: String = "bindAddress", "127.0.0.1".into();
    /// rocketmqHome: informational here (Java requires ROCKETMQ_HOME).
    rocketmq_home: String = "rocketmqHome", std::env::var("ROCKETMQ_HOME").unwrap_or_default();
    /// kvConfigPath: where KV config is persisted.
    kv_config_path: String = "kvConfigPath", format!("{}/namesrv/kvConfig.json", home());
    /// configStorePath: where UPDATE_NAMESRV_CONFIG persists the configuration.
    config_store_path: String = "configStorePath", format!("{}/namesrv/namesrv.properties", home());
    /// productEnvName.
    product_env_name: String = "productEnvName", "center".into();
    /// clusterTest (not supported: accepted and reported only).
    cluster_test: bool = "clusterTest", false;
    /// supportActingMaster: in routes, show a broker group that lost its master (and runs with
    /// enableActingMaster, its queues no longer writable) with its lowest-id broker as master.
    support_acting_master: bool = "supportActingMaster", false;
    /// notifyMinBrokerIdChanged: tell a group's brokers (oneway NOTIFY_MIN_BROKER_ID_CHANGE,
    /// 300 ms) when its lowest broker id changes.
    notify_min_broker_id_changed: bool = "notifyMinBrokerIdChanged", false;
    /// orderMessageEnable: add orderTopicConf from KV to routes.
    order_message_enable: bool = "orderMessageEnable", false;
    /// returnOrderTopicConfigToBroker: answer registrations with the ORDER_TOPIC_CONFIG KV table.
    return_order_topic_config_to_broker: bool = "returnOrderTopicConfigToBroker", true;
    /// clientRequestThreadPoolNums: concurrent route lookups.
    client_request_thread_pool_nums: usize = "clientRequestThreadPoolNums", 8;
    /// clientRequestThreadPoolQueueCapacity: queued route lookups before [OVERLOAD].
    client_request_thread_pool_queue_capacity: usize = "clientRequestThreadPoolQueueCapacity", 50000;
    /// defaultThreadPoolNums: concurrent other requests.
    default_thread_pool_nums: usize = "defaultThreadPoolNums", 16;
    /// defaultThreadPoolQueueCapacity: queued other requests before [OVERLOAD].
    default_thread_pool_queue_capacity: usize = "defaultThreadPoolQueueCapacity", 10000;
    /// scanNotActiveBrokerInterval: ms between liveness scans.
    scan_not_active_broker_interval: u64 = "scanNotActiveBrokerInterval", 5000;
    /// enableAllTopicList: serve GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    enable_all_topic_list: bool = "enableAllTopicList", true;
    /// enableTopicList: serve the by-cluster and unit topic lists.
    enable_topic_list: bool = "enableTopicList", true;
    /// deleteTopicWithBrokerRegistration: drop a broker's topics its registration omits.
    delete_topic_with_broker_registration: bool = "deleteTopicWithBrokerRegistration", false;
    /// needWaitForService: answer routes "not ready" for waitSecondsForService after start.
    need_wait_for_service: bool = "needWaitForService", false;
    /// waitSecondsForService.
    wait_seconds_for_service: u64 = "waitSecondsForService", 45;
    /// serverChannelMaxIdleTimeSeconds: idle connections are closed after this.
    server_channel_max_idle_time_seconds: u64 = "serverChannelMaxIdleTimeSeconds", 120;
    /// configBlackList: properties UPDATE_NAMESRV_CONFIG may not change.
    config_black_list: String = "configBlackList", "configBlackList;configStorePath;kvConfigPath".into();
    }
}

impl NamesrvConfig {
    /// Whether UPDATE_NAMESRV_CONFIG may change `name` (rocketmqHome never may).
    pub fn is_blacklisted(&self, name: &str) -> bool {
        name == "rocketmqHome" || self.config_black_list.split(';').any(|b| b.trim() == name)
    }
}

/// Parses Java properties text (comments, `=`/`:`/space separators, escapes, continuations).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    rmq_config::parse_sorted(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_env_and_blacklist() {
        let mut c = NamesrvConfig::default();
        let applied = c
            .apply_properties(
                "# comment\nlistenPort=9877\nunknownKey = x\norderMessageEnable:true\n",
            )
            .unwrap();
        assert_eq!(applied, vec!["listenPort", "orderMessageEnable"]);
        assert_eq!(c.listen_port, 9877);
        assert!(c.order_message_enable);
        assert!(c.apply_properties("listenPort=notanumber").is_err());
        c.apply_env(
            [(
                "RMQ_NAMESRV_SCANNOTACTIVEBROKERINTERVAL".to_owned(),
                "100".to_owned(),
            )]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.scan_not_active_broker_interval, 100);
        assert!(c.is_blacklisted("kvConfigPath") && c.is_blacklisted("rocketmqHome"));
        assert!(!c.is_blacklisted("listenPort"));
        assert!(c.to_properties_text().contains("listenPort=9877\n"));
    }
}
