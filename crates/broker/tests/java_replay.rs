//! Replays of a real Java 5.3.3 producer and push consumer (`../shared/vectors/broker-java/`)
//! against our broker: every answer matches the Java broker's where it is deterministic
//! (codes, remarks, header fields, body layout), and the records our pulls return are the
//! records Java stored, byte for byte except the fields that name sockets and clocks.

mod support;

use support::capture::{capture, ext, without_port};

use rmq_store::record::{self, Found, Record};
use std::time::Duration;

fn decode(raw: &bytes::Bytes) -> Record {
    match record::decode(raw, true).expect("a valid record") {
        Found::Message(r, _) => *r,
        Found::Blank => panic!("blank"),
    }
}

fn stored(sa: &support::Standalone) -> u64 {
    sa.broker()
        .state()
        .stats
        .put_messages
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_producer_and_push_consumer_replayed() {
    let cap = capture("broker-java");
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let client = support::client();

    // Producer (conn 1): sync, keys, async, oneway, compressed, delayed, batch, WAIT=false.
    for seq in [1u64, 5, 7, 9, 10, 12, 14, 16] {
        let req = cap.req(seq);
        if req.is_oneway() {
            let before = stored(&sa);
            client
                .invoke_oneway(&addr, req, Duration::from_secs(5))
                .await
                .unwrap();
            // Nothing answers a oneway send: wait until it is stored, so the next send lands
            // after it in the log, as in Java's.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while stored(&sa) == before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "oneway send never stored"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            continue;
        }
        let ours = support::call(&client, &addr, req).await;
        let java = cap.java_answer(seq);
        assert_eq!(ours.code, java.code, "seq {seq}: {:?}", ours.remark);
        assert_eq!(ours.remark, java.remark, "seq {seq}");
        for k in [
            "queueId",
            "queueOffset",
            "transactionId",
            "TRACE_ON",
            "MSG_REGION",
        ] {
            assert_eq!(ext(&ours, k), ext(java, k), "seq {seq} field {k}");
        }
        // Same record sizes in the same order: the same commit-log offsets.
        assert_eq!(
            without_port(&ext(&ours, "msgId").unwrap()),
            without_port(&ext(java, "msgId").unwrap()),
            "seq {seq} msgId"
        );
        let mut ours_keys: Vec<_> = ours
            .ext_fields
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        let mut java_keys: Vec<_> = java
            .ext_fields
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        ours_keys.sort();
        java_keys.sort();
        assert_eq!(ours_keys, java_keys, "seq {seq} header fields");
    }

    // Producer heartbeat and unregister (conn 1).
    for seq in [2u64, 22] {
        let ours = support::call(&client, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        assert_eq!(ours.ext_fields, java.ext_fields, "seq {seq}");
    }

    // The push consumer (conns 2, 3): three sends, heartbeats, the group's members, offsets.
    let consumer = support::client();
    for seq in [26u64, 30, 32] {
        let ours = support::call(&client, &addr, cap.req(seq)).await;
        assert_eq!(ours.code, 0);
        assert_eq!(ext(&ours, "queueOffset"), Some("0".into()));
    }
    for seq in [38u64, 55, 41, 47, 49, 51, 53] {
        let ours = support::call(&consumer, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        assert_eq!(ours.ext_fields, java.ext_fields, "seq {seq}");
        assert_eq!(ours.body, java.body, "seq {seq} body");
    }

    // Pulls of queues 3, 1, 2 answer FOUND with the stored record; queue 0 (empty) is held.
    let held = {
        let (c, a, req) = (consumer.clone(), addr.clone(), cap.req(60));
        tokio::spawn(async move { c.invoke_sync(&a, req, Duration::from_secs(20)).await })
    };
    for seq in [57u64, 58, 59] {
        let ours = support::call(&consumer, &addr, cap.req(seq)).await;
        let java = cap.java_answer(seq);
        assert_eq!(
            (ours.code, &ours.remark),
            (java.code, &java.remark),
            "seq {seq}"
        );
        assert_eq!(ours.ext_fields, java.ext_fields, "seq {seq}");
        let (o, j) = (decode(&ours.body), decode(&java.body));
        assert_eq!(ours.body.len(), java.body.len(), "seq {seq}: record size");
        assert_eq!(
            o.properties, j.properties,
            "seq {seq}: properties as Java stores them"
        );
        assert_eq!(
            (
                o.topic.as_str(),
                o.queue_id,
                o.queue_offset,
                &o.body,
                o.flag,
                o.sys_flag,
                o.born_timestamp,
                o.reconsume_times
            ),
            (
                j.topic.as_str(),
                j.queue_id,
                j.queue_offset,
                &j.body,
                j.flag,
                j.sys_flag,
                j.born_timestamp,
                j.reconsume_times
            ),
            "seq {seq}"
        );
        // What differs: the sockets (ports), the store clock, and where the log put it.
        assert_eq!(o.born_host.ip(), j.born_host.ip());
        assert_eq!(o.store_host.ip(), j.store_host.ip());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "a pull of an empty queue is held");
    // A message for queue 0 answers the held pull at once.
    let mut send = cap.req(26);
    let mut h: rmq_protocol::headers::send::SendMessageRequestHeaderV2 =
        send.decode_header().unwrap();
    h.e = 0;
    send.set_header(&h);
    let started = std::time::Instant::now();
    assert_eq!(support::call(&client, &addr, send).await.code, 0);
    let answer = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("held pull answered")
        .unwrap()
        .unwrap();
    assert_eq!((answer.code, answer.remark_str()), (0, Some("FOUND")));
    assert!(started.elapsed() < Duration::from_secs(2));

    // UPDATE_CONSUMER_OFFSET (oneway in the capture).
    let mut commit = cap.req(67);
    commit.flag = 0;
    let ours = support::call(&consumer, &addr, commit).await;
    assert_eq!(ours.code, 0);
    let state = sa.broker().state();
    assert_eq!(
        state
            .offsets
            .query("CG_peer_smoke_run1795256024545", "PullCaptureTopic", 3),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codes_and_admin_answers_as_java() {
    let cap = capture("broker-java-2");
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let client = support::client();
    // 218: request code 99999 -> 3 with Java's remark (leading space).
    let ours = support::call(&client, &addr, cap.req(218)).await;
    let java = cap.java_answer(218);
    assert_eq!((ours.code, &ours.remark), (java.code, &java.remark));
    // 001: mqadmin updateTopic -> 0 with the remark Java never resets.
    let ours = support::call(&client, &addr, cap.req(1)).await;
    let java = cap.java_answer(1);
    assert_eq!((ours.code, &ours.remark), (java.code, &java.remark));
    assert_eq!(
        sa.broker()
            .state()
            .topics
            .get("CapTopic2")
            .unwrap()
            .read_queue_nums,
        4
    );
}
