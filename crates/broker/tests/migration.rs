//! Drop-in migration, both ways, with Java's formats read and written by a module of the
//! testkit that knows only the spec (`rmq_testkit::java_format`), never rmq-store's code:
//!
//! - A directory laid out as a Java 5.3.3 broker leaves it (64 KiB commit-log segments and
//!   1,280-byte consume-queue files, both unlike rmq's configured sizes; the three records a real
//!   Java broker stored, from ../shared/vectors; config JSON with fastjson's unquoted keys; a
//!   delayed message due; timer-wheel files with nothing waiting) opens with rmq's broker, after
//!   a clean stop and after a crash with a torn record: every message, offset, topic and group
//!   carries over, the delayed message fires, sends continue where Java stopped.
//! - What rmq's broker leaves after a clean stop is read back by that Java-format reader: every
//!   record where Java looks, every consume-queue entry, the offsets, the checkpoint, the index.
//! - Data of a Java feature rmq does not implement stops the start, naming file and setting.

mod support;

use rmq_broker::config::BrokerConfig;
use rmq_broker::Broker;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_testkit::java_format::{self as jf, Next};
use std::path::Path;
use std::time::Duration;

use rmq_testkit::java_format::layout::{
    body_of, build_java_store, write_queue, JavaStore, CQ_FILE, SCHEDULE, SEG,
};

async fn start_on(root: &Path, ns: &str) -> Result<Broker, rmq_broker::StartError> {
    Broker::start(BrokerConfig {
        broker_name: "broker-a".into(),
        listen_port: 0,
        namesrv_addr: ns.to_owned(),
        store_path_root_dir: root.display().to_string(),
        // Index files are new here (the Java store had none): small ones.
        max_hash_slot_num: 1000,
        max_index_num: 4000,
        ..BrokerConfig::default()
    })
    .await
}

/// Every record of a queue from `from`, pulled in batches.
async fn pull_all(
    c: &rmq_remoting::RemotingClient,
    addr: &str,
    topic: &str,
    queue: i32,
    from: i64,
) -> Vec<rmq_store::record::Record> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = support::call(
            c,
            addr,
            support::pull_request("CG_reader", topic, queue, offset, 0),
        )
        .await;
        if r.code != 0 {
            return out;
        }
        let batch = support::records(&r.body);
        if batch.is_empty() {
            return out;
        }
        offset = batch.last().unwrap().queue_offset + 1;
        out.extend(batch);
    }
}

async fn check_java_store_served(root: &Path, built: &JavaStore, crash: bool) {
    let (ns, _ns_dir) = rmq_testkit::namesrv().await;
    let broker = start_on(root, &ns.local_addr().to_string())
        .await
        .expect("rmq opens the Java broker's directory");
    let addr = broker.local_addr().to_string();
    {
        let c = broker.state().config();
        assert_eq!(
            c.mapped_file_size_commit_log, SEG as u64,
            "segment size from the files"
        );
        assert_eq!(c.mapped_file_size_consume_queue, CQ_FILE as u64);
    }
    let c = support::client();

    // Every message, in order, at Java's queue offsets.
    let q0 = pull_all(&c, &addr, "JavaT", 0, 0).await;
    assert_eq!(
        q0.len(),
        100,
        "crash={crash}: the torn record is not served"
    );
    for (i, r) in q0.iter().enumerate() {
        assert_eq!(r.queue_offset, i as i64);
        assert_eq!(&r.body[..], &body_of(i)[..]);
        assert_eq!(r.physical_offset, built.offsets[i]);
    }
    // The real Java records, byte for byte.
    for (at, raw) in &built.java {
        let Next::Record(j) = jf::decode(raw) else {
            panic!()
        };
        let got = pull_all(&c, &addr, "PullCaptureTopic", j.queue_id, 0).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].physical_offset, *at);
        assert_eq!(
            got[0].to_bytes().unwrap(),
            &raw[..],
            "served as Java stored it"
        );
    }
    // Consumer offsets and groups carried over.
    for (q, want) in [(0, "42"), (1, "7")] {
        let r = support::call(
            &c,
            &addr,
            RemotingCommand::request(request::QUERY_CONSUMER_OFFSET)
                .with_ext("consumerGroup", "CG_java")
                .with_ext("topic", "JavaT")
                .with_ext("queueId", q.to_string()),
        )
        .await;
        assert_eq!(r.code, 0);
        assert_eq!(r.ext("offset"), Some(want));
    }
    assert_eq!(
        broker
            .state()
            .groups
            .get("CG_java")
            .unwrap()
            .retry_max_times,
        5
    );
    assert!(broker.state().topics.get("PullCaptureTopic").is_some());
    // By offsetMsgId and by key (rmq indexed the Java records at open).
    let r = support::call(
        &c,
        &addr,
        RemotingCommand::request(request::VIEW_MESSAGE_BY_ID)
            .with_ext("offset", built.offsets[5].to_string()),
    )
    .await;
    assert_eq!(r.code, 0);
    assert_eq!(&support::records(&r.body)[0].body[..], &body_of(5)[..]);
    let r = support::call(
        &c,
        &addr,
        RemotingCommand::request(request::QUERY_MESSAGE)
            .with_ext("topic", "JavaT")
            .with_ext("key", "k7")
            .with_ext("maxNum", "32")
            .with_ext("beginTimestamp", "0")
            .with_ext("endTimestamp", i64::MAX.to_string()),
    )
    .await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert!(support::records(&r.body)
        .iter()
        .any(|m| m.physical_offset == built.offsets[7]));
    // The delayed message fires into JavaT queue 1 after Java's 30.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let fired = loop {
        let got = pull_all(&c, &addr, "JavaT", 1, 30).await;
        if !got.is_empty() {
            break got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delayed message fired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(&fired[0].body[..], b"delayed");
    assert_eq!(fired[0].queue_offset, 30);
    // Sends continue where Java stopped.
    let r = support::call(&c, &addr, support::send_request("JavaT", 0, "after", &[])).await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(r.ext("queueOffset"), Some("100"));
    let msg_id = r.ext("msgId").unwrap();
    let phys = i64::from_str_radix(&msg_id[msg_id.len() - 16..], 16).unwrap();
    assert!(
        phys >= built.end,
        "after Java's records ({phys} >= {})",
        built.end
    );
    broker.shutdown().await;
    ns.shutdown_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_brokers_directory_opens_after_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_java_store(dir.path(), false);
    check_java_store_served(dir.path(), &built, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_brokers_directory_opens_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_java_store(dir.path(), true);
    check_java_store_served(dir.path(), &built, true).await;
}

/// rmq writes, stops; a reader that knows only Java's formats finds everything where Java looks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_rmq_leaves_is_where_java_looks() {
    let mut sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "RoundT", 4).await;
    for i in 0..40 {
        let key = format!("rt-{i}");
        let r = support::call(
            &c,
            &addr,
            support::send_request(
                "RoundT",
                i % 4,
                &format!("round-{i}"),
                &[("KEYS", &key), ("TAGS", "TagB")],
            ),
        )
        .await;
        assert_eq!(r.code, 0, "{:?}", r.remark);
    }
    // A delayed message (level 3, 10 s: still waiting at the stop).
    let r = support::call(
        &c,
        &addr,
        support::send_request("RoundT", 0, "later", &[("DELAY", "3")]),
    )
    .await;
    assert_eq!(r.code, 0);
    // A group's committed offsets (its first pull creates the group).
    let r = support::call(&c, &addr, support::pull_request("CG_rt", "RoundT", 0, 0, 0)).await;
    assert_eq!(r.code, 0);
    for q in 0..4 {
        let r = support::call(
            &c,
            &addr,
            RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET)
                .with_ext("consumerGroup", "CG_rt")
                .with_ext("topic", "RoundT")
                .with_ext("queueId", q.to_string())
                .with_ext("commitOffset", (q + 1).to_string()),
        )
        .await;
        assert_eq!(r.code, 0);
    }
    sa.stop_broker().await;
    let root = sa.dir.path();

    assert!(
        !root.join("abort").exists(),
        "a clean stop removes the abort marker"
    );
    let (records, end) = jf::walk_commit_log(root);
    assert_eq!(records.len(), 41, "40 + the delayed one");
    assert_eq!(end, records.iter().map(|r| r.size as i64).sum::<i64>());
    for q in 0..4 {
        let entries = jf::read_consume_queue(root, "RoundT", q);
        assert_eq!(entries.len(), 10, "queue {q}");
        for (i, (phys, size, tags)) in entries.iter().enumerate() {
            let r = records
                .iter()
                .find(|r| r.physical_offset == *phys)
                .expect("entry points at a record");
            assert_eq!(
                (r.size as i32, r.topic.as_str(), r.queue_id, r.queue_offset),
                (*size, "RoundT", q, i as i64)
            );
            assert_eq!(*tags, i64::from(jf::java_hash("TagB")));
        }
    }
    let delayed = jf::read_consume_queue(root, SCHEDULE, 2);
    assert_eq!(delayed.len(), 1, "level 3 is queue 2");
    let r = records
        .iter()
        .find(|r| r.physical_offset == delayed[0].0)
        .unwrap();
    assert_eq!(r.property("REAL_TOPIC"), Some("RoundT"));
    assert_eq!(
        delayed[0].2,
        r.store_timestamp + 10_000,
        "tags code = delivery time"
    );
    // Offsets, topics, groups in Java's JSON.
    let offsets =
        jf::fastjson(&std::fs::read_to_string(root.join("config/consumerOffset.json")).unwrap());
    for q in 0..4 {
        assert_eq!(offsets["offsetTable"]["RoundT@CG_rt"][q.to_string()], q + 1);
    }
    let topics = jf::fastjson(&std::fs::read_to_string(root.join("config/topics.json")).unwrap());
    assert_eq!(topics["topicConfigTable"]["RoundT"]["writeQueueNums"], 4);
    // The checkpoint covers the last record, index included (a Java broker recovering from a
    // crash keeps index files that end before indexMsgTimestamp).
    let cp = std::fs::read(root.join("checkpoint")).unwrap();
    assert_eq!(cp.len(), 4096);
    let at = |o: usize| i64::from_be_bytes(cp[o..o + 8].try_into().unwrap());
    let last = records.iter().map(|r| r.store_timestamp).max().unwrap();
    assert!(
        at(0) >= last && at(8) >= last && at(16) >= last,
        "checkpoint {} {} {}",
        at(0),
        at(8),
        at(16)
    );
    // Java's index lookup finds each key's record.
    let slots = u64::from(sa.config.max_hash_slot_num);
    for i in [0, 17, 39] {
        let key = format!("rt-{i}");
        let found = jf::index_lookup(root, slots, "RoundT", &key);
        let want = records
            .iter()
            .find(|r| r.property("KEYS") == Some(key.as_str()))
            .unwrap();
        assert!(found.contains(&want.physical_offset), "{key}: {found:?}");
    }
    // And rmq opens it again, of course.
    sa.start_broker().await;
    let got = pull_all(&c, &sa.broker_addr(), "RoundT", 1, 0).await;
    assert_eq!(got.len(), 10);
    sa.stop_broker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_rmq_does_not_implement_stops_the_start_naming_file_and_setting() {
    let (ns, _ns_dir) = rmq_testkit::namesrv().await;
    let ns_addr = ns.local_addr().to_string();
    for (make, file, setting) in [
        (
            Box::new(|r: &Path| {
                std::fs::write(r.join("consumequeue").join("CURRENT"), "MANIFEST-000001\n").unwrap()
            }) as Box<dyn Fn(&Path)>,
            "consumequeue",
            "storeType=defaultRocksDB",
        ),
        (
            Box::new(|r: &Path| std::fs::create_dir_all(r.join("config").join("rdb")).unwrap()),
            "config/rdb",
            "configManagerVersion=v2",
        ),
        (
            Box::new(|r: &Path| {
                std::fs::create_dir_all(r.join("dledger-n0").join("data")).unwrap()
            }),
            "dledger-n0",
            "enableDLegerCommitLog=true",
        ),
        (
            Box::new(|r: &Path| {
                std::fs::write(r.join("config").join("tieredStoreMetadata.json"), "{}").unwrap()
            }),
            "tieredStoreMetadata.json",
            "TieredMessageStore",
        ),
        (
            Box::new(|r: &Path| {
                // A timer message the wheel has not taken in yet (timercheck says 0 taken).
                let rec = jf::encode(
                    "rmq_sys_wheel_timer",
                    0,
                    0,
                    0,
                    1,
                    10911,
                    b"t",
                    &[("TIMER_OUT_MS", "99999999999999")],
                );
                let mut seg = rec.clone();
                seg.resize(SEG, 0);
                let dir = r.join("commitlog");
                std::fs::remove_dir_all(&dir).unwrap();
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("{:020}", 0)), seg).unwrap();
                write_queue(
                    r,
                    "rmq_sys_wheel_timer",
                    0,
                    &[jf::cq_entry(0, rec.len() as i32, 0)],
                );
            }),
            "timerlog",
            "timerWheelEnable=true",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        build_java_store(dir.path(), false);
        make(dir.path());
        let before =
            std::fs::read(dir.path().join("commitlog").join(format!("{:020}", 0))).unwrap();
        let err = match start_on(dir.path(), &ns_addr).await {
            Ok(b) => {
                b.shutdown().await;
                panic!("started on a directory with {file}")
            }
            Err(e) => e.to_string(),
        };
        assert!(err.contains(file) && err.contains(setting), "{err}");
        assert!(!dir.path().join("abort").exists(), "nothing opened");
        assert_eq!(
            std::fs::read(dir.path().join("commitlog").join(format!("{:020}", 0))).unwrap(),
            before,
            "nothing changed"
        );
    }
    ns.shutdown_now();
}
