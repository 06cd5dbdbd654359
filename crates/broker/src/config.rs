//! BrokerConfig + the MessageStoreConfig and NettyServerConfig keys a broker reads, under their
//! Java property names (spec §3.2), so a `broker.conf` written for the Java broker works here.
//!
//! Sources, later wins: embedded defaults, a properties file (`-c`), `RMQ_BROKER_<NAME>`
//! environment variables (name upper-cased, e.g. `RMQ_BROKER_LISTENPORT`), then `--set
//! name=value` and the named flags. Unknown names in a file are ignored, as Java ignores them.

use std::path::PathBuf;

fn home() -> String {
    std::env::var("HOME").unwrap_or_else(|_| ".".into())
}

/// Java's default brokerName: the local host name, else `DEFAULT_BROKER`.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "DEFAULT_BROKER".into())
}

rmq_config::settings! {
    /// The broker's settings (spec §3.2), Java property names in the field docs.
    pub struct BrokerConfig (env = "RMQ_BROKER_") {
        /// brokerClusterName.
        broker_cluster_name: String = "brokerClusterName", "DefaultCluster".into();
        /// brokerName: the broker group (Java: the host name).
        broker_name: String = "brokerName", host_name();
        /// brokerId: 0 = master (the only role this broker has).
        broker_id: i64 = "brokerId", 0;
        /// listenPort: the port clients and mqadmin use.
        listen_port: u16 = "listenPort", 10911;
        /// bindAddress: address to bind. rmq defaults to 127.0.0.1 (Java: 0.0.0.0).
        bind_address: String = "bindAddress", "127.0.0.1".into();
        /// brokerIP1: the address registered with the NameServers and written into every
        /// msgId. rmq defaults to 127.0.0.1 (Java: the first non-loopback address).
        broker_ip1: String = "brokerIP1", "127.0.0.1".into();
        /// brokerIP2: HA address (informational: no slaves).
        broker_ip2: String = "brokerIP2", String::new();
        /// haListenPort: 0 = listenPort + 1 (registered only).
        ha_listen_port: u16 = "haListenPort", 0;
        /// namesrvAddr: `host:port;host:port`.
        namesrv_addr: String = "namesrvAddr", String::new();
        /// storePathRootDir.
        store_path_root_dir: String = "storePathRootDir", format!("{}/store", home());
        /// autoCreateTopicEnable: create TBW102 and topics on first send.
        auto_create_topic_enable: bool = "autoCreateTopicEnable", true;
        /// defaultTopicQueueNums: TBW102's queues.
        default_topic_queue_nums: i32 = "defaultTopicQueueNums", 8;
        /// autoCreateSubscriptionGroup: groups created on first use.
        auto_create_subscription_group: bool = "autoCreateSubscriptionGroup", true;
        /// brokerPermission: 6 = read + write.
        broker_permission: i32 = "brokerPermission", 6;
        /// brokerRole: ASYNC_MASTER or SYNC_MASTER (SLAVE is not supported).
        broker_role: String = "brokerRole", "ASYNC_MASTER".into();
        /// flushDiskType: ASYNC_FLUSH or SYNC_FLUSH.
        flush_disk_type: String = "flushDiskType", "ASYNC_FLUSH".into();
        /// mappedFileSizeCommitLog (also read under the 3.x name mapedFileSizeCommitLog).
        mapped_file_size_commit_log: u64 = "mappedFileSizeCommitLog" | "mapedFileSizeCommitLog", 1 << 30;
        /// mappedFileSizeConsumeQueue (bytes; a multiple of 20).
        mapped_file_size_consume_queue: u64 = "mappedFileSizeConsumeQueue" | "mapedFileSizeConsumeQueue", 6_000_000;
        /// maxMessageSize: largest body.
        max_message_size: usize = "maxMessageSize", 4 * 1024 * 1024;
        /// fileReservedTime: hours a commit-log segment is kept.
        file_reserved_time: u64 = "fileReservedTime", 72;
        /// deleteWhen: `;`-separated hours at which expired segments are deleted.
        delete_when: String = "deleteWhen", "04".into();
        /// diskMaxUsedSpaceRatio: percent of disk use above which expired segments go at once.
        disk_max_used_space_ratio: u32 = "diskMaxUsedSpaceRatio", 75;
        /// flushIntervalCommitLog: ms between ASYNC_FLUSH flushes.
        flush_interval_commit_log: u64 = "flushIntervalCommitLog", 500;
        /// syncFlushTimeout: ms a SYNC_FLUSH send waits for its fsync.
        sync_flush_timeout: u64 = "syncFlushTimeout", 5000;
        /// enabledAppendPropCRC: end each record's properties with a CRC of the whole record
        /// (`__CRC32#`), so recovery also catches damage outside the body. Off by default, as
        /// in Java: records are then byte-identical to a Java broker's.
        enabled_append_prop_crc: bool = "enabledAppendPropCRC", false;
        /// messageIndexEnable: the key index (QUERY_MESSAGE).
        message_index_enable: bool = "messageIndexEnable", true;
        /// maxHashSlotNum: index slots per index file.
        max_hash_slot_num: u32 = "maxHashSlotNum", 5_000_000;
        /// maxIndexNum: entries per index file.
        max_index_num: u32 = "maxIndexNum", 20_000_000;
        /// defaultQueryMaxNum: hits of a unique-key query.
        default_query_max_num: usize = "defaultQueryMaxNum", 32;
        /// messageDelayLevel: the delay of each level.
        message_delay_level: String = "messageDelayLevel", rmq_store::store::DEFAULT_DELAY_LEVELS.into();
        /// flushConsumerOffsetInterval: ms between consumerOffset.json writes.
        flush_consumer_offset_interval: u64 = "flushConsumerOffsetInterval", 5000;
        /// flushDelayOffsetInterval: ms between delayOffset.json writes.
        flush_delay_offset_interval: u64 = "flushDelayOffsetInterval", 10000;
        /// longPollingEnable: hold pulls that find nothing up to their suspend timeout.
        long_polling_enable: bool = "longPollingEnable", true;
        /// shortPollingTimeMills: the hold without long polling.
        short_polling_time_mills: u64 = "shortPollingTimeMills", 1000;
        /// longPollingMaxHoldMillis (rmq's own): a held pull waits at most this long, whatever
        /// its suspendTimeoutMillis asks (Java's clients ask 15 s or 20 s; the cap keeps a
        /// client from parking pulls for ever).
        long_polling_max_hold_millis: u64 = "longPollingMaxHoldMillis", 30000;
        /// maxHeldPullsPerConnection (rmq's own): long-polling pulls one connection may have
        /// held at once; past it a pull that finds nothing is refused with SYSTEM_BUSY (a
        /// Java client retries 3 s later). A push consumer holds one per queue it owns.
        max_held_pulls_per_connection: usize = "maxHeldPullsPerConnection", 2048;
        /// maxHeldPullsPerClient (rmq's own): long-polling pulls one client (a source IP, all
        /// its connections together) may have held at once; past it SYSTEM_BUSY as above.
        max_held_pulls_per_client: usize = "maxHeldPullsPerClient", 16384;
        /// maxAutoCreatedTopicsPerMinute (rmq's own): topics one client's sends (all its
        /// connections together) may auto-create in a minute; past it SYSTEM_BUSY naming it.
        max_auto_created_topics_per_minute: usize = "maxAutoCreatedTopicsPerMinute", 6000;
        /// maxAutoCreatedGroupsPerMinute (rmq's own): subscription groups one client may
        /// auto-create in a minute (pulls, heartbeats, give-backs, retry sends).
        max_auto_created_groups_per_minute: usize = "maxAutoCreatedGroupsPerMinute", 1000;
        /// maxHeartbeatGroups (rmq's own): consumer and producer groups one heartbeat may
        /// register.
        max_heartbeat_groups: usize = "maxHeartbeatGroups", 1000;
        /// maxHeartbeatSubscriptions (rmq's own): subscriptions one heartbeat may register.
        max_heartbeat_subscriptions: usize = "maxHeartbeatSubscriptions", 10000;
        /// maxHeartbeatGroupsPerClient (rmq's own): groups one client's connections may have
        /// registered together (each connection's last heartbeat counts).
        max_heartbeat_groups_per_client: usize = "maxHeartbeatGroupsPerClient", 10000;
        /// maxHeartbeatSubscriptionsPerClient (rmq's own): subscriptions likewise.
        max_heartbeat_subscriptions_per_client: usize = "maxHeartbeatSubscriptionsPerClient", 100_000;
        /// maxConnectionsPerClient (rmq's own): connections one client (source IP) may hold;
        /// more are closed at accept (0 = no limit). Raise it behind a NAT or gateway.
        max_connections_per_client: usize = "maxConnectionsPerClient", 1000;
        /// maxRequestBytesPerClient (rmq's own): bytes of one client's requests being
        /// processed at once, over its connections; past it that client is not read until
        /// some finish (back-pressure; 0 = no limit).
        max_request_bytes_per_client: usize = "maxRequestBytesPerClient", 64 * 1024 * 1024;
        /// maxTransferBytesOnMessageInMemory: bytes a pull answer carries at most.
        max_transfer_bytes_on_message_in_memory: usize = "maxTransferBytesOnMessageInMemory", 262_144;
        /// maxTransferCountOnMessageInMemory: messages a pull answer carries at most.
        max_transfer_count_on_message_in_memory: usize = "maxTransferCountOnMessageInMemory", 32;
        /// notifyConsumerIdsChangedEnable: NOTIFY_CONSUMER_IDS_CHANGED on membership changes.
        notify_consumer_ids_changed_enable: bool = "notifyConsumerIdsChangedEnable", true;
        /// regionId: MSG_REGION of send answers.
        region_id: String = "regionId", "DefaultRegion".into();
        /// traceOn: TRACE_ON of send answers.
        trace_on: bool = "traceOn", true;
        /// registerNameServerPeriod: ms between registrations (clamped to 10..60 s).
        register_name_server_period: u64 = "registerNameServerPeriod", 30_000;
        /// registerBrokerTimeoutMills.
        register_broker_timeout_mills: u64 = "registerBrokerTimeoutMills", 24_000;
        /// channelExpiredTimeout: ms after which a silent client is dropped.
        channel_expired_timeout: u64 = "channelExpiredTimeout", 120_000;
        /// clusterTopicEnable: the cluster-name topic is routable.
        cluster_topic_enable: bool = "clusterTopicEnable", true;
        /// brokerTopicEnable: the broker-name topic is routable.
        broker_topic_enable: bool = "brokerTopicEnable", true;
        /// traceTopicEnable: create msgTraceTopicName.
        trace_topic_enable: bool = "traceTopicEnable", false;
        /// msgTraceTopicName.
        msg_trace_topic_name: String = "msgTraceTopicName", "RMQ_SYS_TRACE_TOPIC".into();
        /// timerWheelEnable: create rmq_sys_wheel_timer (the timer itself is not implemented).
        timer_wheel_enable: bool = "timerWheelEnable", true;
        /// rejectTransactionMessage.
        reject_transaction_message: bool = "rejectTransactionMessage", false;
        /// litePullMessageEnable: serve LITE_PULL_MESSAGE.
        lite_pull_message_enable: bool = "litePullMessageEnable", true;
        /// validateSystemTopicWhenUpdateTopic.
        validate_system_topic_when_update_topic: bool = "validateSystemTopicWhenUpdateTopic", true;
        /// startAcceptSendRequestTimeStamp: sends before this time (ms) are refused.
        start_accept_send_request_time_stamp: i64 = "startAcceptSendRequestTimeStamp", 0;
        /// serverChannelMaxIdleTimeSeconds: idle connections are closed after this.
        server_channel_max_idle_time_seconds: u64 = "serverChannelMaxIdleTimeSeconds", 120;
        /// enableShutdownGracefully: on stop, answer new requests of 5.3.1+ clients with
        /// GO_AWAY for shutdownWaitTimeSeconds first (Java's default: off).
        enable_shutdown_gracefully: bool = "enableShutdownGracefully", false;
        /// shutdownWaitTimeSeconds.
        shutdown_wait_time_seconds: u64 = "shutdownWaitTimeSeconds", 30;
        /// metricsExporterType: PROM serves Prometheus text metrics; DISABLE (default) does not.
        metrics_exporter_type: String = "metricsExporterType", "DISABLE".into();
        /// metricsPromExporterHost: the metrics listener's address (default 127.0.0.1).
        metrics_prom_exporter_host: String = "metricsPromExporterHost", "127.0.0.1".into();
        /// metricsPromExporterPort: the metrics listener's port (Java's default 5557).
        metrics_prom_exporter_port: u16 = "metricsPromExporterPort", 5557;
        /// sendMessageThreadPoolNums: sends processed at once.
        send_message_thread_pool_nums: usize = "sendMessageThreadPoolNums", 64;
        /// sendThreadPoolQueueCapacity.
        send_thread_pool_queue_capacity: usize = "sendThreadPoolQueueCapacity", 10_000;
        /// pullThreadPoolQueueCapacity: pulls (held ones included) waiting for a slot.
        pull_thread_pool_queue_capacity: usize = "pullThreadPoolQueueCapacity", 100_000;
        /// rocketmqHome: informational.
        rocketmq_home: String = "rocketmqHome", std::env::var("ROCKETMQ_HOME").unwrap_or_default();
        /// configBlackList: properties UPDATE_BROKER_CONFIG may not change.
        config_black_list: String = "configBlackList", "configBlackList;brokerConfigPath".into();
        /// brokerConfigPath: the file UPDATE_BROKER_CONFIG rewrites (the `-c` file).
        broker_config_path: String = "brokerConfigPath", String::new();
    }
}

impl BrokerConfig {
    /// `brokerIP1:listenPort`: the address clients are told.
    pub fn broker_addr(&self) -> String {
        format!("{}:{}", self.broker_ip1, self.listen_port)
    }

    /// `brokerIP2:haListenPort` (registered; no HA service runs).
    pub fn ha_server_addr(&self) -> String {
        let ip = if self.broker_ip2.is_empty() {
            &self.broker_ip1
        } else {
            &self.broker_ip2
        };
        let port = match self.ha_listen_port {
            0 => self.listen_port.wrapping_add(1),
            p => p,
        };
        format!("{ip}:{port}")
    }

    /// The NameServer addresses, `;`-separated in `namesrvAddr`.
    pub fn namesrv_addrs(&self) -> Vec<String> {
        self.namesrv_addr
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// SYNC_FLUSH?
    pub fn sync_flush(&self) -> bool {
        self.flush_disk_type.eq_ignore_ascii_case("SYNC_FLUSH")
    }

    /// The store root.
    pub fn store_root(&self) -> PathBuf {
        PathBuf::from(&self.store_path_root_dir)
    }

    /// Whether UPDATE_BROKER_CONFIG may change `name`.
    pub fn is_blacklisted(&self, name: &str) -> bool {
        name == "rocketmqHome"
            || name == "brokerConfigPath"
            || self.config_black_list.split(';').any(|b| b.trim() == name)
    }

    /// Checks what Java checks at start: a role this broker has, a known flush type, delay
    /// levels that parse.
    pub fn validate(&self) -> Result<(), String> {
        match self.broker_role.as_str() {
            "ASYNC_MASTER" | "SYNC_MASTER" => {}
            "SLAVE" => {
                return Err(
                    "brokerRole=SLAVE: rmq brokers run as masters only (no HA replication yet)"
                        .into(),
                )
            }
            r => {
                return Err(format!(
                    "brokerRole={r}: expected ASYNC_MASTER or SYNC_MASTER"
                ))
            }
        }
        if self.broker_id != 0 {
            return Err(format!(
                "brokerId={}: a master has brokerId 0",
                self.broker_id
            ));
        }
        if !self.flush_disk_type.eq_ignore_ascii_case("ASYNC_FLUSH") && !self.sync_flush() {
            return Err(format!(
                "flushDiskType={}: expected ASYNC_FLUSH or SYNC_FLUSH",
                self.flush_disk_type
            ));
        }
        if rmq_store::store::parse_delay_levels(&self.message_delay_level)
            .is_none_or(|levels| levels.is_empty())
        {
            return Err(format!(
                "messageDelayLevel={:?}: levels are numbers with s, m, h or d",
                self.message_delay_level
            ));
        }
        if !self.mapped_file_size_consume_queue.is_multiple_of(20)
            || self.mapped_file_size_consume_queue == 0
        {
            return Err("mappedFileSizeConsumeQueue must be a positive multiple of 20".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_names_aliases_env_and_checks() {
        let mut c = BrokerConfig::default();
        c.apply_properties("brokerName=broker-a\nmapedFileSizeCommitLog=65536\nnoSuchKey=1\nflushDiskType=SYNC_FLUSH\n")
            .unwrap();
        assert_eq!(c.broker_name, "broker-a");
        assert_eq!(c.mapped_file_size_commit_log, 65536);
        assert!(c.sync_flush());
        c.apply_env([("RMQ_BROKER_LISTENPORT".to_owned(), "10921".to_owned())].into_iter())
            .unwrap();
        assert_eq!(c.broker_addr(), "127.0.0.1:10921");
        assert_eq!(c.ha_server_addr(), "127.0.0.1:10922");
        assert!(c.validate().is_ok());
        let mut no_levels = c.clone();
        no_levels.message_delay_level = " ".into();
        assert!(no_levels.validate().is_err(), "at least one delay level");
        c.broker_role = "SLAVE".into();
        assert!(c.validate().unwrap_err().contains("masters only"));
        assert!(c.set("listenPort", "x").is_err());
        assert!(c
            .to_properties_text()
            .contains("mappedFileSizeCommitLog=65536\n"));
    }
}
