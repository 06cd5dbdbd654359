//! The broker-side admin commands as subprocesses against `rmq standalone` (the binary), with
//! traffic: tables and JSON; and the broker's metrics moving with `rmq send`.

mod support;

use rmq_consumer::{
    listener, ConsumeFrom, ConsumeResult, ConsumerConfig, MessageExt, PushConsumer,
};
use rmq_producer::message::Message;
use rmq_producer::{Producer, ProducerConfig};
use rmq_testkit::process::{free_ports, StandaloneProcess};
use std::path::Path;
use std::time::Duration;
use support::{get, rmq_n, series};

/// `rmq standalone` as broker-a with small store files, its store in the returned directory.
async fn start_standalone(extra: &[&str]) -> (StandaloneProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--set",
        "brokerName=broker-a",
        "--set",
        "mappedFileSizeCommitLog=8388608",
        "--set",
        "maxHashSlotNum=1000",
        "--set",
        "maxIndexNum=4000",
    ];
    args.extend_from_slice(extra);
    let p = StandaloneProcess::start(
        Path::new(env!("CARGO_BIN_EXE_rmq")),
        &dir.path().join("store"),
        free_ports(),
        &args,
    )
    .await;
    (p, dir)
}

/// One of the broker's JSON config files (Java's layout: `<store>/config/<name>`).
fn config_file(dir: &tempfile::TempDir, name: &str) -> serde_json::Value {
    let text = std::fs::read(dir.path().join("store").join("config").join(name)).unwrap();
    rmq_protocol::lenient_json::parse(&text).unwrap()
}

async fn stop(sa: StandaloneProcess) {
    let status = sa.sigterm_and_wait().await;
    assert!(status.success(), "{status:?}");
}

async fn json(ns: &str, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = rmq_n(ns, &a).await;
    assert_eq!(code, 0, "rmq {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("rmq {args:?}: {e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_admin_commands_with_traffic() {
    let (sa, dir) = start_standalone(&[]).await;
    let ns_addr = sa.ns.clone();
    let broker_addr = sa.broker.clone();

    // update-topic: table, then JSON (idempotent).
    let (code, out, err) = rmq_n(
        &ns_addr,
        &[
            "update-topic",
            "-t",
            "Adm",
            "-c",
            "DefaultCluster",
            "-r",
            "4",
            "-w",
            "4",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("BROKER") && out.contains("broker-a") && out.contains("OK"),
        "{out}"
    );
    let v = json(
        &ns_addr,
        &[
            "updateTopic",
            "-t",
            "Adm",
            "-b",
            &broker_addr,
            "-r",
            "4",
            "-w",
            "4",
        ],
    )
    .await;
    assert_eq!(v["brokers"][0]["ok"], true);
    let (code, _, err) = rmq_n(&ns_addr, &["update-topic", "-t", "Adm"]).await;
    assert_eq!(code, 2, "needs -c or -b: {err}");

    // Traffic: 10 keyed messages.
    let producer = Producer::start(ProducerConfig::new("PG_adm", &[&ns_addr]))
        .await
        .unwrap();
    let mut offset_ids = Vec::new();
    for i in 0..10 {
        let r = producer
            .send(
                Message::new("Adm", format!("body-{i}").into_bytes()).with_keys(&[format!("k{i}")]),
            )
            .await
            .unwrap();
        offset_ids.push(r.offset_msg_id);
    }
    producer.shutdown().await;

    // topic-status.
    let v = json(&ns_addr, &["topic-status", "-t", "Adm"]).await;
    let queues = v["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 4);
    assert_eq!(
        queues
            .iter()
            .map(|q| q["maxOffset"].as_i64().unwrap())
            .sum::<i64>(),
        10
    );
    let (_, table, _) = rmq_n(&ns_addr, &["topicStatus", "-t", "Adm"]).await;
    assert!(table.contains("MAX_OFFSET"), "{table}");

    // A consumer group consumes everything: progress reaches no lag, the connection shows.
    let mut cfg = ConsumerConfig::new("CG_adm", &[&ns_addr]);
    cfg.consume_from = ConsumeFrom::FirstOffset;
    cfg.persist_interval = Duration::from_millis(200);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let consumer = PushConsumer::start(
        cfg,
        &[("Adm", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            counter.fetch_add(msgs.len(), std::sync::atomic::Ordering::SeqCst);
            async { ConsumeResult::Success }
        }),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = json(&ns_addr, &["consumer-progress", "-g", "CG_adm"]).await;
        let adm: Vec<&serde_json::Value> = v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["topic"] == "Adm")
            .collect();
        if adm.len() == 4 && v["totalDiff"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, table, _) = rmq_n(&ns_addr, &["consumerProgress"]).await;
    assert!(
        table.contains("CG_adm") && table.contains("Diff Total"),
        "{table}"
    );
    let v = json(&ns_addr, &["consumer-connection", "-g", "CG_adm"]).await;
    assert_eq!(v["connectionSet"][0]["clientId"], consumer.client_id());
    assert!(v["subscriptionTable"]["Adm"].is_object());
    // reset-offset to the beginning: the online member is told and consumes everything again.
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 10);
    let v = json(
        &ns_addr,
        &["reset-offset", "-g", "CG_adm", "-t", "Adm", "-s", "0"],
    )
    .await;
    assert_eq!(v["queues"].as_array().unwrap().len(), 4);
    assert!(
        v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["offset"] == 0),
        "{v}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {} after the reset",
            seen.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.shutdown().await;

    // broker-status and broker-config.
    let v = json(&ns_addr, &["broker-status"]).await;
    assert_eq!(v[0]["table"]["brokerVersionDesc"], "V5_3_3");
    let v = json(
        &ns_addr,
        &[
            "broker-config",
            "update",
            "-b",
            &broker_addr,
            "longPollingEnable",
            "true",
        ],
    )
    .await;
    assert_eq!(v[0]["ok"], true);
    let v = json(&ns_addr, &["broker-config", "get", "-b", &broker_addr]).await;
    assert_eq!(v[0]["config"]["longPollingEnable"], "true");
    let (code, _, err) = rmq_n(
        &ns_addr,
        &[
            "broker-config",
            "update",
            "-b",
            &broker_addr,
            "brokerConfigPath",
            "/x",
        ],
    )
    .await;
    assert_eq!(code, 1, "the blacklist is refused: {err}");
    assert!(err.contains("black list"), "{err}");

    // query-msg by key, by offsetMsgId (with the body written out), by queue offset.
    let v = json(&ns_addr, &["query-msg", "--key", "k3", "--topic", "Adm"]).await;
    assert_eq!(v[0]["body"], "body-3");
    let out_dir = tempfile::tempdir().unwrap();
    let out_file = out_dir.path().join("body.bin");
    let v = json(
        &ns_addr,
        &[
            "queryMsg",
            "--id",
            &offset_ids[5],
            "--body-out",
            out_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(v[0]["keys"], "k5");
    assert_eq!(std::fs::read(&out_file).unwrap(), b"body-5");
    let q: i64 = v[0]["queueId"].as_str().unwrap().parse().unwrap();
    let o = v[0]["queueOffset"].as_str().unwrap().to_owned();
    let v = json(
        &ns_addr,
        &[
            "query-msg",
            "--topic",
            "Adm",
            "--queue",
            &q.to_string(),
            "--offset",
            &o,
        ],
    )
    .await;
    assert_eq!(v[0]["body"], "body-5");
    let (code, table, _) = rmq_n(&ns_addr, &["query-msg", "--key", "k7", "--topic", "Adm"]).await;
    assert_eq!(code, 0);
    assert!(
        table.contains("property KEYS") && table.contains("body-7"),
        "{table}"
    );
    let (code, _, _) = rmq_n(
        &ns_addr,
        &["query-msg", "--key", "nothing", "--topic", "Adm"],
    )
    .await;
    assert_eq!(code, 4, "not found");

    // Groups.
    let v = json(
        &ns_addr,
        &[
            "update-sub-group",
            "-g",
            "CG_new",
            "-c",
            "DefaultCluster",
            "-r",
            "3",
        ],
    )
    .await;
    assert_eq!(v[0]["ok"], true);
    assert_eq!(
        config_file(&dir, "subscriptionGroup.json")["subscriptionGroupTable"]["CG_new"]
            ["retryMaxTimes"],
        3
    );
    let v = json(
        &ns_addr,
        &["deleteSubGroup", "-g", "CG_new", "-b", &broker_addr],
    )
    .await;
    assert_eq!(v[0]["ok"], true);
    assert!(
        config_file(&dir, "subscriptionGroup.json")["subscriptionGroupTable"]["CG_new"].is_null()
    );
    stop(sa).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topic_reaches_the_brokers_and_the_namesrv() {
    let (sa, dir) = start_standalone(&[]).await;
    let ns_addr = sa.ns.clone();
    let (code, _, err) = rmq_n(
        &ns_addr,
        &[
            "update-topic",
            "-t",
            "Gone",
            "-c",
            "DefaultCluster",
            "-r",
            "2",
            "-w",
            "2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(config_file(&dir, "topics.json")["topicConfigTable"]["Gone"].is_object());
    let (code, out, err) = rmq_n(
        &ns_addr,
        &["delete-topic", "Gone", "--cluster", "DefaultCluster"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("broker broker-a"), "{out}");
    assert!(
        config_file(&dir, "topics.json")["topicConfigTable"]["Gone"].is_null(),
        "deleted on the broker"
    );
    let (code, _, _) = rmq_n(&ns_addr, &["route", "Gone"]).await;
    assert_eq!(code, 4, "and from the NameServer's routes");
    stop(sa).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_rmq_send() {
    let (sa, _dir) = start_standalone(&["--metrics", "127.0.0.1:0"]).await;
    let ns_addr = sa.ns.clone();
    let metrics = sa.announced["metrics"].as_str();
    let (status, before) = get(metrics, "/metrics").await;
    assert!(
        status.starts_with("HTTP/1.") && status.contains("200"),
        "{status}"
    );
    let in_before = series(&before, "rocketmq_messages_in_total{topic=\"Metr\"}");
    let (code, _, err) = rmq_n(
        &ns_addr,
        &["send", "--topic", "Metr", "--body", "m", "--count", "50"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (_, after) = get(metrics, "/metrics").await;
    assert_eq!(
        series(&after, "rocketmq_messages_in_total{topic=\"Metr\"}") - in_before,
        50.0,
        "{after}"
    );
    assert_eq!(
        series(&after, "rocketmq_throughput_in_total{topic=\"Metr\"}"),
        50.0
    );
    assert!(
        series(
            &after,
            "rocketmq_rpc_latency_count{request_code=\"310\",response_code=\"0\"}"
        ) >= 50.0,
        "{after}"
    );
    assert!(after.contains("rocketmq_connections "), "{after}");
    assert!(after.contains("rocketmq_storage_disk_ratio"), "{after}");
    assert!(
        after.contains("rocketmq_storage_flush_latency_ms{kind=\"periodic\"}"),
        "{after}"
    );
    // A group that consumed some of them shows its lag.
    let commit = rmq_protocol::RemotingCommand::request(rmq_protocol::codes::request::PULL_MESSAGE)
        .with_ext("consumerGroup", "CG_metr")
        .with_ext("topic", "Metr")
        .with_ext("queueId", "0")
        .with_ext("queueOffset", "0")
        .with_ext("maxMsgNums", "32")
        .with_ext("sysFlag", "5")
        .with_ext("commitOffset", "0")
        .with_ext("suspendTimeoutMillis", "0")
        .with_ext("subscription", "*")
        .with_ext("subVersion", "0");
    let c = rmq_remoting::RemotingClient::new(Default::default());
    let r = c
        .invoke_sync(&sa.broker, commit, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, 0);
    let (_, after) = get(metrics, "/metrics").await;
    let status = json(&ns_addr, &["topic-status", "-t", "Metr"]).await;
    let q0 = status["queues"][0]["maxOffset"].as_f64().unwrap();
    assert_eq!(status["queues"][0]["queueId"], 0);
    assert_eq!(
        series(
            &after,
            "rocketmq_consumer_lag_messages{topic=\"Metr\",consumer_group=\"CG_metr\"}"
        ),
        q0,
        "{after}"
    );
    assert!(
        series(
            &after,
            "rocketmq_messages_out_total{topic=\"Metr\",consumer_group=\"CG_metr\"}"
        ) > 0.0
    );
    stop(sa).await;
}
