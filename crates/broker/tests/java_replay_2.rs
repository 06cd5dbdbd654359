//! Replays of set 2 (`../shared/vectors/broker-java-2/`): Java's low-level pull API through
//! every pull outcome and the queue-offset queries, and mqadmin's broker commands.

mod support;

use std::time::Duration;
use support::capture::{capture, ext, without_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_api_through_every_outcome() {
    let cap = capture("broker-java-2");
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let producer = support::client();
    let consumer = support::client();
    // conn 15: three sends to queue 0 of PullCap2 (auto-created), heartbeat between.
    for seq in [220u64, 221, 224, 226, 228] {
        let ours = support::call(&producer, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        for k in ["queueId", "queueOffset", "transactionId", "IS_SUB_CHANGE"] {
            assert_eq!(ext(&ours, k), ext(java, k), "seq {seq} {k}");
        }
    }
    // conn 16: heartbeat, min/max offset, earliest time, then pulls: FOUND x3, 19, 21, 21, 20.
    for seq in [231u64, 230, 233, 235, 241, 243, 245, 247, 249] {
        let ours = support::call(&consumer, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        let keys = |c: &rmq_protocol::RemotingCommand| {
            let mut k: Vec<String> = c
                .ext_fields
                .iter()
                .flat_map(|e| e.iter().map(|(k, _)| k.to_string()))
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys(&ours), keys(java), "seq {seq} header fields");
        if seq != 235 {
            // Everything but the earliest store time is the same number.
            assert_eq!(ours.ext_fields, java.ext_fields, "seq {seq}");
        }
        if seq == 241 {
            let (o, j) = (support::records(&ours.body), support::records(&java.body));
            assert_eq!(o.len(), 3);
            for (o, j) in o.iter().zip(&j) {
                assert_eq!(
                    (&o.properties, &o.body),
                    (&j.properties, &j.body),
                    "seq 241"
                );
            }
        }
    }
    // 251: a long-polling pull at the max offset, answered by the send 254.
    let held = {
        let (c, a, req) = (consumer.clone(), addr.clone(), cap.req(251));
        tokio::spawn(async move { c.invoke_sync(&a, req, Duration::from_secs(30)).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sa.broker().state().notifier.held() == 0 {
        assert!(std::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(support::call(&producer, &addr, cap.req(254)).await.code, 0);
    let ours = held.await.unwrap().unwrap();
    let java = cap.java_answer(251);
    assert_eq!((ours.code, &ours.remark), (java.code, &java.remark));
    assert_eq!(ours.ext_fields, java.ext_fields);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqadmin_broker_commands() {
    let cap = capture("broker-java-2");
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    // updateTopic, then the retry consumer's offset queries on the new, empty topic: 22.
    for seq in [1u64, 10, 12] {
        let ours = support::call(&c, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        assert_eq!(ours.ext_fields, java.ext_fields, "seq {seq}");
    }
    // A keyed send, then queryMsgByKey and queryMsgById find its record.
    assert_eq!(support::call(&c, &addr, cap.req(26)).await.code, 0);
    let ours = support::call(&c, &addr, cap.req(188)).await;
    let java = cap.java_answer(188);
    assert_eq!((ours.code, &ours.remark), (java.code, &java.remark));
    let keys = |c: &rmq_protocol::RemotingCommand| {
        let mut k: Vec<String> = c
            .ext_fields
            .iter()
            .flat_map(|e| e.iter().map(|(k, _)| k.to_string()))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(java));
    let (o, j) = (support::records(&ours.body), support::records(&java.body));
    assert_eq!(
        (o.len(), &o[0].properties, &o[0].body),
        (1, &j[0].properties, &j[0].body)
    );
    let ours = support::call(&c, &addr, cap.req(210)).await;
    let java = cap.java_answer(210);
    assert_eq!(
        (ours.code, &ours.remark, ours.ext_fields.is_none()),
        (java.code, &java.remark, true)
    );
    assert_eq!(
        support::records(&ours.body)[0].properties,
        support::records(&java.body)[0].properties
    );
    // brokerStatus: every key Java's table has (values differ: clocks and counters).
    let ours = support::call(&c, &addr, cap.req(198)).await;
    let java = cap.java_answer(198);
    assert_eq!(ours.code, java.code);
    let table = |c: &rmq_protocol::RemotingCommand| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
        let mut k: Vec<String> = v["table"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| {
                !k.starts_with("commitLogDiskRatio_") && !k.starts_with("scheduleMessageOffset_")
            })
            .cloned()
            .collect();
        k.sort();
        k
    };
    let ours_keys = table(&ours);
    let missing: Vec<String> = table(java)
        .into_iter()
        .filter(|k| !ours_keys.contains(k))
        .collect();
    assert!(missing.is_empty(), "runtime info keys missing: {missing:?}");
    // updateSubGroup, getBrokerConfig, deleteTopic.
    for seq in [200u64, 202, 265] {
        let ours = support::call(&c, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        assert_eq!(keys(&ours), keys(java), "seq {seq} header fields");
    }
    assert!(sa.broker().state().groups.get("CG_admin2").is_some());
}

/// The offsetMsgId in ORIGIN_MESSAGE_ID names the broker's port: zero it.
fn normalise(props: &str) -> String {
    rmq_model::message::decode_properties(props)
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "ORIGIN_MESSAGE_ID" && v.len() == 32 {
                format!("{}00000000{}", &v[..8], &v[16..])
            } else {
                v
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn give_backs_build_the_retry_records_java_delivers_and_orderly_locks_answer_as_java() {
    let cap = capture("broker-java-2");
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    // updateTopic, the retry consumer's heartbeat (creates %RETRY%CG_retry2), three sends at
    // Java's offsets 0, 272, 544, then the three give-backs of those offsets.
    assert_eq!(support::call(&c, &addr, cap.req(1)).await.code, 0);
    assert_eq!(support::call(&c, &addr, cap.req(3)).await.code, 0);
    for seq in [26u64, 30, 33] {
        let ours = support::call(&c, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            without_port(&ext(&ours, "msgId").unwrap()),
            without_port(&ext(java, "msgId").unwrap()),
            "seq {seq}"
        );
    }
    for seq in [44u64, 45, 46] {
        let ours = support::call(&c, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark, &ours.ext_fields),
            (java.code, &java.remark, &java.ext_fields),
            "seq {seq}"
        );
    }
    // They wait at level 3 (10 s); Java delivered them to %RETRY%CG_retry2 (077) with the
    // properties they were scheduled with: ours are those, key for key, in the same order.
    let scheduled = sa
        .broker()
        .state()
        .store
        .run(|st| {
            st.get_message("SCHEDULE_TOPIC_XXXX", 2, 0, 32, 1 << 20, None)
                .unwrap()
        })
        .await
        .unwrap();
    let ours: Vec<_> = scheduled
        .records
        .iter()
        .flat_map(|(_, b)| support::records(b))
        .collect();
    let java = support::records(&cap.frames[&77].body);
    assert_eq!(ours.len(), 3);
    for j in &java {
        let o = ours
            .iter()
            .find(|o| o.body == j.body)
            .unwrap_or_else(|| panic!("no retry record for {:?}", j.body));
        assert_eq!(normalise(&o.properties), normalise(&j.properties));
        assert_eq!(
            (o.reconsume_times, o.flag, o.born_timestamp),
            (j.reconsume_times, j.flag, j.born_timestamp)
        );
    }

    // The orderly consumer: heartbeat, five LOCK_BATCH_MQ, UNLOCK_BATCH_MQ; bodies as Java's.
    let orderly = support::client();
    for seq in [132u64, 139, 143, 145, 149, 155, 179] {
        let ours = support::call(&orderly, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        assert_eq!(ours.body, java.body, "seq {seq} body");
    }
    // After the unlock another client may take the queues at once.
    let state = sa.broker().state();
    let mq = rmq_broker::clients::MessageQueue {
        broker_name: "broker-a".into(),
        queue_id: 1,
        topic: "CapTopic2".into(),
    };
    assert_eq!(
        state
            .clients
            .lock("CG_orderly2", "other", std::slice::from_ref(&mq)),
        vec![mq]
    );
}

/// The entries of a fastjson map keyed by MessageQueue objects, by (topic, queue id).
fn mq_entries(body: &[u8]) -> std::collections::BTreeMap<(String, i64), serde_json::Value> {
    rmq_model::route::parse_mq_map(body)
        .into_iter()
        .map(|(mq, v)| ((mq.topic, i64::from(mq.queue_id)), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_progress_topic_status_and_connections_as_mqadmin_reads_them() {
    let cap = capture("broker-java-2");
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    assert_eq!(support::call(&c, &addr, cap.req(1)).await.code, 0);
    let consumer = support::client();
    assert_eq!(support::call(&consumer, &addr, cap.req(3)).await.code, 0);
    for seq in [26u64, 30, 33] {
        assert_eq!(support::call(&c, &addr, cap.req(seq)).await.code, 0);
    }
    // The consumer consumed and committed each of the three queues' message.
    for q in 0..3 {
        let commit = rmq_protocol::RemotingCommand::request(
            rmq_protocol::codes::request::UPDATE_CONSUMER_OFFSET,
        )
        .with_ext("consumerGroup", "CG_retry2")
        .with_ext("topic", "CapTopic2")
        .with_ext("queueId", q.to_string())
        .with_ext("commitOffset", "1");
        assert_eq!(support::call(&consumer, &addr, commit).await.code, 0);
    }
    // consumerProgress (208): the CapTopic2 rows are Java's.
    let ours = support::call(&c, &addr, cap.req(98)).await;
    let java = cap.java_answer(98);
    assert_eq!((ours.code, &ours.remark), (java.code, &java.remark));
    let (o, j) = (mq_entries(&ours.body), mq_entries(&java.body));
    for q in 0..4 {
        let k = ("CapTopic2".to_owned(), q);
        for f in ["brokerOffset", "consumerOffset"] {
            assert_eq!(o[&k][f], j[&k][f], "queue {q} {f}");
        }
        assert_eq!(
            o[&k]["lastTimestamp"].as_i64() > Some(0),
            j[&k]["lastTimestamp"].as_i64() > Some(0),
            "queue {q}"
        );
    }
    assert!(String::from_utf8_lossy(&ours.body).starts_with("{\"consumeTps\":"));
    // topicStatus (202): min/max per queue as Java's.
    let ours = support::call(&c, &addr, cap.req(194)).await;
    let java = cap.java_answer(194);
    let (o, j) = (mq_entries(&ours.body), mq_entries(&java.body));
    assert_eq!(o.keys().collect::<Vec<_>>(), j.keys().collect::<Vec<_>>());
    for (k, jv) in &j {
        assert_eq!(
            (&o[k]["minOffset"], &o[k]["maxOffset"]),
            (&jv["minOffset"], &jv["maxOffset"]),
            "{k:?}"
        );
    }
    // consumerConnection (203) while the consumer is online.
    let ours = support::call(&c, &addr, cap.req(91)).await;
    let java = cap.java_answer(91);
    assert_eq!(ours.code, java.code);
    let (o, j): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&ours.body).unwrap(),
        serde_json::from_slice(&java.body).unwrap(),
    );
    for f in ["consumeFromWhere", "consumeType", "messageModel"] {
        assert_eq!(o[f], j[f], "{f}");
    }
    let conn = &o["connectionSet"][0];
    let jconn = &j["connectionSet"][0];
    for f in ["clientId", "language", "version"] {
        assert_eq!(conn[f], jconn[f], "{f}");
    }
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&o["subscriptionTable"]), keys(&j["subscriptionTable"]));
    assert_eq!(o["subscriptionTable"]["CapTopic2"]["subString"], "*");
}
