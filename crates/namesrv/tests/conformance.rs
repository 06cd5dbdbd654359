//! Spec §8 items 39-62, over real sockets with our client.

mod support;

use rmq_namesrv::route::model::{DataVersion, TopicConfig};
use rmq_namesrv::route::register_body::encode_compressed;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::headers::broker::RegisterBrokerRequestHeader;
use rmq_protocol::{MqVersion, RemotingCommand};
use std::time::Duration;
use support::{call, client, register_body, register_request, start};

const FAQ: &str = "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.";

fn route_req(topic: &str, version: i32) -> RemotingCommand {
    let mut r = RemotingCommand::request(rc::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", topic);
    r.version = version;
    r
}

fn body(r: &RemotingCommand) -> String {
    String::from_utf8(r.body.to_vec()).unwrap()
}

#[tokio::test]
async fn routes_registration_and_json_styles() {
    let (ns, _d) = start(|_| {}).await;
    let a = ns.local_addr().to_string();
    let c = client();
    // 39: unknown topic.
    let r = call(&c, &a, route_req("Nope", 479)).await;
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
    assert_eq!(
        r.remark_str(),
        Some(&*format!(
            "No topic route info in name server for the topic: Nope{FAQ}"
        ))
    );
    assert!(r.body.is_empty() && r.ext_fields.is_none());
    // 46: a first registration with exactly one topic fails.
    let single = register_body(&["Only"], 1);
    let r = call(
        &c,
        &a,
        register_request("C", "broker-a", 0, "10.0.0.1:10911", &single),
    )
    .await;
    assert_eq!(
        (r.code, r.remark_str()),
        (1, Some("register broker failed"))
    );
    // 42: master registration.
    let full = register_body(&["TopicTest", "Other"], 1);
    let r = call(
        &c,
        &a,
        register_request("C", "broker-a", 0, "10.0.0.1:10911", &full),
    )
    .await;
    assert_eq!(r.code, 0);
    assert!(r.ext_fields.as_ref().is_some_and(|e| e.is_empty()) && r.body.is_empty());
    // 43: slave gets the live master's addresses.
    let r = call(
        &c,
        &a,
        register_request("C", "broker-a", 1, "10.0.0.2:10911", &full),
    )
    .await;
    assert_eq!(r.ext("masterAddr"), Some("10.0.0.1:10911"));
    assert_eq!(r.ext("haServerAddr"), Some("10.0.0.1:10911-ha"));
    // 47 + 40 + 41: route JSON, standard vs default.
    let std_json = r#"{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"C","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
    let r = call(&c, &a, route_req("TopicTest", MqVersion::V4_9_4)).await;
    assert_eq!(body(&r), std_json);
    // Our client writes its configured version on every request, as Java's does.
    let old = rmq_remoting::RemotingClient::new(rmq_remoting::ClientConfig {
        version: 317,
        ..Default::default()
    });
    let r = call(&old, &a, route_req("TopicTest", 317)).await;
    assert_eq!(
        body(&r),
        std_json.replace(r#""0":"#, "0:").replace(r#""1":"#, "1:")
    );
    let r = call(
        &old,
        &a,
        route_req("TopicTest", 317).with_ext("acceptStandardJsonOnly", "true"),
    )
    .await;
    assert_eq!(body(&r), std_json);
    // 41: non-ASCII names escaped in standard JSON.
    let full2 = register_body(&["TopicTest", "X"], 1);
    call(
        &c,
        &a,
        register_request("C", "bröker/é", 10, "10.0.0.9:1", &full2),
    )
    .await;
    let r = call(&c, &a, route_req("X", 479)).await;
    assert!(
        body(&r).contains(r#""brokerName":"br\u00F6ker\/\u00E9""#),
        "{}",
        body(&r)
    );
    // 57: cluster info with unquoted keys.
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert!(body(&r).starts_with(r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"C","enableActingMaster":false}"#), "{}", body(&r));
    assert!(
        body(&r).ends_with(r#""clusterAddrTable":{"C":["broker-a","bröker/é"]}}"#),
        "{}",
        body(&r)
    );
    // 58 / 59: topic lists.
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    )
    .await;
    assert_eq!(body(&r), r#"{"topicList":["Other","TopicTest","X"]}"#);
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_TOPICS_BY_CLUSTER).with_ext("cluster", "nope"),
    )
    .await;
    assert_eq!((r.code, body(&r).as_str()), (0, r#"{"topicList":[]}"#));
    // 53: wipe / add write perm.
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::WIPE_WRITE_PERM_OF_BROKER).with_ext("brokerName", "broker-a"),
    )
    .await;
    assert_eq!(r.ext("wipeTopicCount"), Some("2"));
    let r = call(&c, &a, route_req("TopicTest", 479)).await;
    assert!(body(&r).contains(r#""perm":4"#));
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::ADD_WRITE_PERM_OF_BROKER).with_ext("brokerName", "broker-a"),
    )
    .await;
    assert_eq!(r.ext("addTopicCount"), Some("2"));
    assert!(body(&call(&c, &a, route_req("TopicTest", 479)).await).contains(r#""perm":6"#));
    // 61: delete a topic from one cluster only.
    call(
        &c,
        &a,
        register_request(
            "C2",
            "broker-z",
            0,
            "10.0.1.1:1",
            &register_body(&["TopicTest", "Z"], 1),
        ),
    )
    .await;
    call(
        &c,
        &a,
        RemotingCommand::request(rc::DELETE_TOPIC_IN_NAMESRV)
            .with_ext("topic", "TopicTest")
            .with_ext("clusterName", "C2"),
    )
    .await;
    let r = call(&c, &a, route_req("TopicTest", 479)).await;
    assert!(body(&r).contains("broker-a") && !body(&r).contains("broker-z"));
    // 54: unregister removes the group and its only topics.
    let un = RemotingCommand::request(rc::UNREGISTER_BROKER)
        .with_ext("brokerName", "broker-z")
        .with_ext("brokerAddr", "10.0.1.1:1")
        .with_ext("clusterName", "C2")
        .with_ext("brokerId", "0");
    assert_eq!(call(&c, &a, un).await.code, 0);
    assert_eq!(
        call(&c, &a, route_req("Z", 479)).await.code,
        response::TOPIC_NOT_EXIST
    );
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert!(!body(&r).contains("broker-z") && !body(&r).contains("\"C2\""));
    ns.shutdown_now();
}

#[tokio::test]
async fn crc_compression_and_data_versions() {
    let (ns, _d) = start(|_| {}).await;
    let a = ns.local_addr().to_string();
    let c = client();
    // 44: wrong crc refused, right crc accepted.
    let full = register_body(&["A", "B"], 1);
    let mut bad = register_request("C", "b", 0, "10.0.0.1:1", &full);
    bad.ext_fields_mut().insert("bodyCrc32", "12345");
    assert_eq!(
        call(&c, &a, bad).await.remark_str(),
        Some("crc32 not match")
    );
    assert_eq!(
        call(&c, &a, register_request("C", "b", 0, "10.0.0.1:1", &full))
            .await
            .code,
        0
    );
    // 45: the compressed layout registers the same topics.
    let topics: Vec<TopicConfig> = ["A", "B", "Zipped"]
        .iter()
        .map(|t| TopicConfig {
            topic_name: (*t).into(),
            read_queue_nums: 8,
            write_queue_nums: 8,
            perm: 6,
            topic_sys_flag: 0,
        })
        .collect();
    let dv = DataVersion {
        counter: 2,
        state_version: 0,
        timestamp: 5,
    };
    let zbody = encode_compressed(&dv, &topics, &[]);
    let header = RegisterBrokerRequestHeader {
        broker_name: "z".into(),
        broker_addr: "10.0.0.5:1".into(),
        cluster_name: "C".into(),
        ha_server_addr: String::new(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: Some(true),
        body_crc32: Some((crc32fast::hash(&zbody) & 0x7FFF_FFFF) as i32),
    };
    let req = RemotingCommand::request_with_header(rc::REGISTER_BROKER, &header).with_body(zbody);
    assert_eq!(call(&c, &a, req).await.code, 0);
    let r = call(&c, &a, route_req("Zipped", 479)).await;
    assert!(
        body(&r).contains(r#""brokerName":"z","perm":6,"readQueueNums":8"#),
        "{}",
        body(&r)
    );
    // 52: data version query.
    let q = |dv: &str| {
        RemotingCommand::request(rc::QUERY_DATA_VERSION)
            .with_ext("brokerName", "z")
            .with_ext("brokerAddr", "10.0.0.5:1")
            .with_ext("clusterName", "C")
            .with_ext("brokerId", "0")
            .with_body(dv.to_owned())
    };
    let same = r#"{"counter":2,"stateVersion":0,"timestamp":5}"#;
    let r = call(&c, &a, q(same)).await;
    assert_eq!((r.ext("changed"), body(&r).as_str()), (Some("false"), same));
    let r = call(&c, &a, q(r#"{"counter":3,"timestamp":5}"#)).await;
    assert_eq!(r.ext("changed"), Some("true"));
    // 904 heartbeat and 901 member group.
    let hb = RemotingCommand::request(rc::BROKER_HEARTBEAT)
        .with_ext("clusterName", "C")
        .with_ext("brokerAddr", "10.0.0.5:1")
        .with_ext("brokerName", "z");
    assert_eq!(call(&c, &a, hb).await.code, 0);
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_BROKER_MEMBER_GROUP)
            .with_ext("clusterName", "C")
            .with_ext("brokerName", "z"),
    )
    .await;
    assert_eq!(
        body(&r),
        r#"{"brokerMemberGroup":{"brokerAddrs":{0:"10.0.0.5:1"},"brokerName":"z","cluster":"C"}}"#
    );
    // Unsupported code (5.x).
    let r = call(&c, &a, RemotingCommand::request(999)).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (3, Some(" request type 999 not supported"))
    );
    ns.shutdown_now();
}

#[tokio::test]
async fn kv_config_and_namesrv_config() {
    let (ns, dir) = start(|_| {}).await;
    let a = ns.local_addr().to_string();
    let c = client();
    let kv = |code, ns: &str, k: Option<&str>, v: Option<&str>| {
        let mut r = RemotingCommand::request(code).with_ext("namespace", ns);
        if let Some(k) = k {
            r = r.with_ext("key", k);
        }
        if let Some(v) = v {
            r = r.with_ext("value", v);
        }
        r
    };
    // 51, 49, 50.
    let r = call(&c, &a, kv(rc::PUT_KV_CONFIG, "ns", None, Some("v"))).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (1, Some("namespace or key is null"))
    );
    let r = call(&c, &a, kv(rc::GET_KV_CONFIG, "ns", Some("k"), None)).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (22, Some("No config item, Namespace: ns Key: k"))
    );
    assert!(r.ext_fields.as_ref().is_some_and(|e| e.is_empty()));
    let r = call(&c, &a, kv(rc::GET_KVLIST_BY_NAMESPACE, "ns", None, None)).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (22, Some("No config item, Namespace: ns"))
    );
    call(&c, &a, kv(rc::PUT_KV_CONFIG, "ns", Some("k"), Some("v"))).await;
    assert_eq!(
        call(&c, &a, kv(rc::GET_KV_CONFIG, "ns", Some("k"), None))
            .await
            .ext("value"),
        Some("v")
    );
    assert_eq!(
        body(&call(&c, &a, kv(rc::GET_KVLIST_BY_NAMESPACE, "ns", None, None)).await),
        r#"{"table":{"k":"v"}}"#
    );
    // 48: ORDER_TOPIC_CONFIG comes back on registration.
    call(
        &c,
        &a,
        kv(
            rc::PUT_KV_CONFIG,
            "ORDER_TOPIC_CONFIG",
            Some("T"),
            Some("broker-a:4"),
        ),
    )
    .await;
    let r = call(
        &c,
        &a,
        register_request(
            "C",
            "broker-a",
            0,
            "10.0.0.1:1",
            &register_body(&["T", "U"], 1),
        ),
    )
    .await;
    assert_eq!(body(&r), r#"{"table":{"T":"broker-a:4"}}"#);
    // Persisted in Java's format.
    let file = std::fs::read_to_string(dir.path().join("kvConfig.json")).unwrap();
    assert_eq!(
        file,
        r#"{"configTable":{"ORDER_TOPIC_CONFIG":{"T":"broker-a:4"},"ns":{"k":"v"}}}"#
    );
    // 60: black list; then a permitted update shows in GET_NAMESRV_CONFIG.
    let up =
        |text: &str| RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG).with_body(text.to_owned());
    let r = call(&c, &a, up("kvConfigPath=x")).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (16, Some("Can not update config in black list."))
    );
    assert_eq!(call(&c, &a, up("enableAllTopicList=false")).await.code, 0);
    let r = call(&c, &a, RemotingCommand::request(rc::GET_NAMESRV_CONFIG)).await;
    assert!(body(&r).contains("enableAllTopicList=false\n"));
    // 58 (disabled).
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    )
    .await;
    assert_eq!((r.code, r.remark_str()), (1, Some("disable")));
    ns.shutdown_now();
}

#[tokio::test]
async fn brokers_leave_on_close_and_on_expiry() {
    let (ns, _d) = start(|c| c.scan_not_active_broker_interval = 100).await;
    let a = ns.local_addr().to_string();
    let observer = client();
    // 55: the broker's connection closes -> removed at once.
    let broker = client();
    call(
        &broker,
        &a,
        register_request("C", "b1", 0, "10.0.0.1:1", &register_body(&["T1", "T2"], 1)),
    )
    .await;
    assert_eq!(call(&observer, &a, route_req("T1", 479)).await.code, 0);
    broker.shutdown();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while call(&observer, &a, route_req("T1", 479)).await.code == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker not removed on close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 56: a broker silent past its heartbeatTimeoutMillis is removed by the scan.
    let quiet = client();
    let mut req = register_request("C", "b2", 0, "10.0.0.2:1", &register_body(&["T3", "T4"], 1));
    req.ext_fields_mut().insert("heartbeatTimeoutMillis", "300");
    call(&quiet, &a, req).await;
    assert_eq!(call(&observer, &a, route_req("T3", 479)).await.code, 0);
    let start = tokio::time::Instant::now();
    while call(&observer, &a, route_req("T3", 479)).await.code == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "broker not expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(ns.route().live_count(), 0);
    ns.shutdown_now();
}

#[tokio::test]
async fn acting_master_takes_the_lowest_id_when_the_master_leaves() {
    let (ns, _d) = start(|c| c.support_acting_master = true).await;
    let a = ns.local_addr().to_string();
    let observer = client();
    let body = register_body(&["T1", "T2"], 1);
    let acting = |id: i64, addr: &str| {
        let mut r = register_request("C", "b1", id, addr, &body);
        r.ext_fields_mut().insert("enableActingMaster", "true");
        r
    };
    let (master, slave1, slave2) = (client(), client(), client());
    call(&master, &a, acting(0, "10.0.0.1:1")).await;
    call(&slave1, &a, acting(1, "10.0.0.2:1")).await;
    call(&slave2, &a, acting(2, "10.0.0.3:1")).await;
    let route = body_of(&call(&observer, &a, route_req("T1", 479)).await);
    assert!(
        route.contains(r#""brokerAddrs":{"0":"10.0.0.1:1","1":"10.0.0.2:1","2":"10.0.0.3:1"}"#),
        "{route}"
    );
    // The master's connection closes: the group loses write permission and the lowest-id slave
    // is shown as master.
    master.shutdown();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let route = loop {
        let r = body_of(&call(&observer, &a, route_req("T1", 479)).await);
        if !r.contains("10.0.0.1:1") {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "master never left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        route.contains(r#""brokerAddrs":{"0":"10.0.0.2:1","2":"10.0.0.3:1"}"#)
            && route.contains(r#""perm":4"#),
        "{route}"
    );
    // With the setting off, routes show the group as it is.
    let up =
        RemotingCommand::request(rc::UPDATE_NAMESRV_CONFIG).with_body("supportActingMaster=false");
    assert_eq!(call(&observer, &a, up).await.code, 0);
    let route = body_of(&call(&observer, &a, route_req("T1", 479)).await);
    assert!(
        route.contains(r#""brokerAddrs":{"1":"10.0.0.2:1","2":"10.0.0.3:1"}"#),
        "{route}"
    );
    drop((slave1, slave2));
    ns.shutdown_now();
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<RemotingCommand>) -> RemotingCommand {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("notified in time")
        .unwrap()
}

/// A stand-in broker address: accepts connections and passes on every frame it reads.
async fn frame_sink() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<RemotingCommand>,
) {
    use tokio_util::codec::FramedRead;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                use futures_util::StreamExt;
                let mut frames = FramedRead::new(sock, rmq_protocol::RemotingCodec::default());
                while let Some(Ok(cmd)) = frames.next().await {
                    let _ = tx.send(cmd);
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn min_broker_id_changes_are_notified() {
    let (ns, _d) = start(|c| c.notify_min_broker_id_changed = true).await;
    let a = ns.local_addr().to_string();
    let body = register_body(&["T1", "T2"], 1);
    let (addr1, mut seen1) = frame_sink().await;
    let (addr2, mut seen2) = frame_sink().await;
    let acting = |id: i64, addr: &str| {
        let mut r = register_request("C", "b1", id, addr, &body);
        r.ext_fields_mut().insert("enableActingMaster", "true");
        r
    };
    // Broker 2 first (no change: Java compares with 0 for an empty group), then broker 1 below
    // it: broker 2 is told that 1 is now the lowest.
    let (b1, b2) = (client(), client());
    call(&b2, &a, acting(2, &addr2)).await;
    call(&b1, &a, acting(1, &addr1)).await;
    let n = next(&mut seen2).await;
    assert_eq!(
        (n.code, n.is_oneway()),
        (rc::NOTIFY_MIN_BROKER_ID_CHANGE, true)
    );
    assert_eq!(n.ext("minBrokerId"), Some("1"));
    assert_eq!(n.ext("minBrokerAddr"), Some(addr1.as_str()));
    assert_eq!(n.ext("haBrokerAddr"), Some(format!("{addr1}-ha").as_str()));
    assert_eq!(n.ext("offlineBrokerAddr"), None);
    // Broker 1's connection closes: the rest of the group hears who left and who is lowest now.
    b1.shutdown();
    let n = next(&mut seen2).await;
    assert_eq!(n.ext("minBrokerId"), Some("2"));
    assert_eq!(n.ext("minBrokerAddr"), Some(addr2.as_str()));
    assert_eq!(n.ext("offlineBrokerAddr"), Some(addr1.as_str()));
    // Broker 1 itself was never told anything.
    assert!(seen1.try_recv().is_err());
    drop(b2);
    ns.shutdown_now();
}

fn body_of(r: &RemotingCommand) -> String {
    assert_eq!(r.code, 0, "{:?}", r.remark_str());
    body(r)
}

#[tokio::test]
async fn zone_mode_and_oneway_register() {
    let (ns, _d) = start(|_| {}).await;
    let a = ns.local_addr().to_string();
    let c = client();
    for (name, zone, addr) in [("bz1", "z1", "10.0.0.1:1"), ("bz2", "z2", "10.0.0.2:1")] {
        let mut r = register_request("C", name, 0, addr, &register_body(&["Zt", "Other"], 1));
        r.ext_fields_mut().insert("__ZONE_NAME", zone);
        call(&c, &a, r).await;
    }
    // 62: zone mode keeps the zone's brokers, unquoted keys even for version >= 401.
    let r = call(
        &c,
        &a,
        route_req("Zt", 479)
            .with_ext("__ZONE_MODE", "true")
            .with_ext("__ZONE_NAME", "Z1"),
    )
    .await;
    let b = body(&r);
    assert!(
        b.contains("bz1") && !b.contains("bz2") && b.contains(r#"{0:"10.0.0.1:1"}"#),
        "{b}"
    );
    assert!(b.contains(r#""zoneName":"z1""#));
    // 22: oneway REGISTER_BROKER is processed, never answered.
    let conn = c.connection(&a).await.unwrap();
    conn.invoke_oneway(
        register_request(
            "C",
            "bow",
            0,
            "10.0.0.3:1",
            &register_body(&["Ow", "Ow2"], 1),
        ),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while call(&c, &a, route_req("Ow", 479)).await.code != 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(conn.pending_requests(), 0);
    ns.shutdown_now();
}

/// SYSTEM_ERROR (1) with a remark that names `what`.
fn assert_system_error_naming(r: &RemotingCommand, what: &str) {
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(
        r.remark_str().unwrap_or("").contains(what),
        "{:?} should name {what}",
        r.remark_str()
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let (ns, _d) = start(|_| {}).await;
    let a = ns.local_addr().to_string();
    let c = client();
    // A register body that is not JSON (right CRC): SYSTEM_ERROR naming the problem.
    let r = call(
        &c,
        &a,
        register_request("C", "b", 0, "10.0.0.1:1", "{not json"),
    )
    .await;
    assert_system_error_naming(&r, "register body");
    // A compressed flag on a plain body: the inflate error is named.
    let mut req = register_request("C", "b", 0, "10.0.0.1:1", &register_body(&["A", "B"], 1));
    req.ext_fields_mut().insert("compressed", "true");
    let r = call(&c, &a, req).await;
    assert_system_error_naming(&r, "compressed");
    // A header field of the wrong type: the field is named.
    let mut req = register_request("C", "b", 0, "10.0.0.1:1", &register_body(&["A", "B"], 1));
    req.ext_fields_mut().insert("brokerId", "zero");
    let r = call(&c, &a, req).await;
    assert_system_error_naming(&r, "brokerId");
    // A missing required field.
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::UNREGISTER_BROKER).with_ext("brokerName", "b"),
    )
    .await;
    assert_system_error_naming(&r, "brokerAddr");
    // Nothing was registered by any of it, and the server still answers.
    let r = call(
        &c,
        &a,
        RemotingCommand::request(rc::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert_eq!(body(&r), r#"{"brokerAddrTable":{},"clusterAddrTable":{}}"#);
    ns.shutdown_now();
}
