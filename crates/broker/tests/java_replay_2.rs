//! Replays of set 2 (`../shared/vectors/broker-java-2/`): Java's low-level pull API through
//! every pull outcome and the queue-offset queries, and mqadmin's broker commands.

mod support;

use std::time::Duration;
use support::capture::{capture, ext};

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
