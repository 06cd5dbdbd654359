//! Long polling, delay levels, redelivery and the dead-letter queue, over real sockets.

mod support;

use rmq_protocol::codes::{request, response};
use rmq_protocol::RemotingCommand;
use std::time::{Duration, Instant};

/// Waits until the broker holds `n` pulls.
async fn wait_held(sa: &support::Standalone, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sa.broker().state().notifier.held() != n {
        assert!(Instant::now() < deadline, "pull never held");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_pulls_answer_within_milliseconds_of_the_send_and_expire_at_their_timeout() {
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let producer = support::client();
    let consumer = support::client();
    support::create_topic(&producer, &addr, "LongPoll", 1).await;
    let mut latencies = Vec::new();
    for i in 0..100i64 {
        let pull = {
            let (c, a) = (consumer.clone(), addr.clone());
            let req = support::pull_request("CG_lp", "LongPoll", 0, i, 10_000);
            tokio::spawn(async move { c.invoke_sync(&a, req, Duration::from_secs(15)).await })
        };
        wait_held(&sa, 1).await;
        let started = Instant::now();
        let sent = support::call(
            &producer,
            &addr,
            support::send_request("LongPoll", 0, &format!("m{i}"), &[]),
        )
        .await;
        assert_eq!(sent.code, 0);
        let answer = pull.await.unwrap().unwrap();
        latencies.push(started.elapsed());
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
        let got = support::records(&answer.body);
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].body[..], format!("m{i}").as_bytes());
        assert_eq!(answer.ext("nextBeginOffset"), Some(&*(i + 1).to_string()));
    }
    latencies.sort();
    let median = latencies[50];
    eprintln!(
        "held pull answered after the send: median {median:?}, max {:?}",
        latencies[99]
    );
    assert!(median < Duration::from_millis(10), "median {median:?}");

    // Nothing arrives: answered PULL_NOT_FOUND at the timeout, not before, not much after.
    let started = Instant::now();
    let answer = support::call(
        &consumer,
        &addr,
        support::pull_request("CG_lp", "LongPoll", 0, 100, 400),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(answer.code, response::PULL_NOT_FOUND);
    assert_eq!(answer.remark_str(), Some("OFFSET_OVERFLOW_ONE"));
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );

    // Offsets out of range are answered at once, with where to go.
    let moved = support::call(
        &consumer,
        &addr,
        support::pull_request("CG_lp", "LongPoll", 0, 500, 10_000),
    )
    .await;
    assert_eq!(moved.code, response::PULL_OFFSET_MOVED);
    assert_eq!(moved.ext("nextBeginOffset"), Some("100"));

    // A stop answers held pulls at once instead of waiting out their timeout.
    let pull = {
        let (c, a) = (consumer.clone(), addr.clone());
        let req = support::pull_request("CG_lp", "LongPoll", 0, 100, 30_000);
        tokio::spawn(async move { c.invoke_sync(&a, req, Duration::from_secs(40)).await })
    };
    wait_held(&sa, 1).await;
    let mut sa = sa;
    let started = Instant::now();
    sa.stop_broker().await;
    let answer = tokio::time::timeout(Duration::from_secs(5), pull)
        .await
        .expect("answered at stop")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    if let Ok(a) = answer {
        assert_eq!(a.code, response::PULL_NOT_FOUND);
    }
}

/// The newest record of a schedule queue (where a send-back with that level went).
async fn newest_scheduled(sa: &support::Standalone, level: i32) -> rmq_store::record::Record {
    sa.broker()
        .state()
        .store
        .run(move |st| {
            let q = level - 1;
            let max = st.max_offset("SCHEDULE_TOPIC_XXXX", q);
            let got = st
                .get_message("SCHEDULE_TOPIC_XXXX", q, max - 1, 1, 1 << 20, None)
                .unwrap();
            support::records(&got.records[0].1).remove(0)
        })
        .await
        .unwrap()
}

fn send_back(offset: i64, group: &str, delay_level: i32) -> RemotingCommand {
    RemotingCommand::request(request::CONSUMER_SEND_MSG_BACK)
        .with_ext("offset", offset.to_string())
        .with_ext("group", group.to_owned())
        .with_ext("delayLevel", delay_level.to_string())
        .with_ext("originMsgId", "x")
        .with_ext("originTopic", "Retry")
        .with_ext("unitMode", "false")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_arrive_after_their_level_and_the_seventeenth_give_back_goes_to_the_dlq() {
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "Retry", 1).await;

    // Delay level 1 (1 s): invisible at first, delivered to its topic after about a second.
    let sent_at = Instant::now();
    let r = support::call(
        &c,
        &addr,
        support::send_request("Retry", 0, "later", &[("DELAY", "1")]),
    )
    .await;
    assert_eq!(r.code, 0);
    assert_eq!(r.ext("queueId"), Some("0"));
    let first = support::call(
        &c,
        &addr,
        support::pull_request("CG_r", "Retry", 0, 0, 5_000),
    )
    .await;
    let arrived = sent_at.elapsed();
    assert_eq!(first.code, 0, "{:?}", first.remark);
    assert!(
        arrived >= Duration::from_millis(900) && arrived < Duration::from_millis(2500),
        "delay level 1 took {arrived:?}"
    );
    let delivered = support::records(&first.body).remove(0);
    assert_eq!(&delivered.body[..], b"later");
    assert_eq!(
        rmq_store::record::property(&delivered.properties, "REAL_TOPIC"),
        Some("Retry")
    );
    eprintln!("delay level 1 delivered after {arrived:?}");

    // Give it back again and again: levels 3, 4, ... 18 (clamped), then the DLQ.
    let mut offset = delivered.physical_offset;
    for times in 0..16 {
        let r = support::call(&c, &addr, send_back(offset, "CG_r", 0)).await;
        assert_eq!((r.code, r.remark_str()), (0, None), "give-back {times}");
        let level = (3 + times).min(18);
        let retry = newest_scheduled(&sa, level).await;
        assert_eq!(retry.reconsume_times, times + 1);
        assert_eq!(
            rmq_store::record::property(&retry.properties, "REAL_TOPIC"),
            Some("%RETRY%CG_r")
        );
        assert_eq!(
            rmq_store::record::property(&retry.properties, "RETRY_TOPIC"),
            Some("Retry")
        );
        offset = retry.physical_offset;
    }
    let r = support::call(&c, &addr, send_back(offset, "CG_r", 0)).await;
    assert_eq!(r.code, 0);
    let dlq = support::call(
        &c,
        &addr,
        support::pull_request("CG_dlq", "%DLQ%CG_r", 0, 0, 0),
    )
    .await;
    assert_eq!(dlq.code, 0, "{:?}", dlq.remark);
    let dead = support::records(&dlq.body).remove(0);
    assert_eq!(&dead.body[..], b"later");
    assert_eq!(dead.reconsume_times, 17);
    assert!(sa.broker().state().topics.get("%DLQ%CG_r").is_some());

    // A give-back with delay level 1 comes back on the retry topic after about a second.
    let started = Instant::now();
    let r = support::call(&c, &addr, send_back(delivered.physical_offset, "CG_r", 1)).await;
    assert_eq!(r.code, 0);
    let retried = support::call(
        &c,
        &addr,
        support::pull_request("CG_r", "%RETRY%CG_r", 0, 0, 5_000),
    )
    .await;
    assert_eq!(retried.code, 0, "{:?}", retried.remark);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let again = support::records(&retried.body).remove(0);
    assert_eq!(again.reconsume_times, delivered.reconsume_times + 1);
    assert_eq!(&again.body[..], b"later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_survives_a_restart_and_is_delivered_once() {
    let mut sa = support::Standalone::start(|_| {}).await;
    let c = support::client();
    support::create_topic(&c, &sa.broker_addr(), "Later", 1).await;
    let r = support::call(
        &c,
        &sa.broker_addr(),
        support::send_request("Later", 0, "across", &[("DELAY", "2")]),
    )
    .await;
    assert_eq!(r.code, 0);
    // Stop before it is due (level 2 = 5 s), start again on the same store.
    sa.stop_broker().await;
    sa.start_broker().await;
    let addr = sa.broker_addr();
    let got = support::call(
        &c,
        &addr,
        support::pull_request("CG_later", "Later", 0, 0, 10_000),
    )
    .await;
    assert_eq!(got.code, 0, "{:?}", got.remark);
    assert_eq!(&support::records(&got.body)[0].body[..], b"across");
    // Once: nothing more arrives (the level's offset moved on and was kept).
    let next = support::call(
        &c,
        &addr,
        support::pull_request("CG_later", "Later", 0, 1, 1_500),
    )
    .await;
    assert_eq!(next.code, response::PULL_NOT_FOUND);
    assert_eq!(sa.broker().state().delay_offsets.get(2), 1);
}

/// Issue 27, item 3: `delayOffset.json` was not corrected against the schedule queues at
/// start (Java's `correctDelayOffset`). After a crash a level's saved offset can be past its
/// queue's end; the delayed messages then written at the offsets it re-uses were skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_offset_past_its_queue_is_corrected_at_start() {
    let mut sa = support::Standalone::start(|_| {}).await;
    sa.stop_broker().await;
    // Level 1's queue is empty, its saved offset says 50.
    let config = sa.dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("delayOffset.json"), r#"{"offsetTable":{1:50}}"#).unwrap();
    sa.start_broker().await;
    assert_eq!(sa.broker().state().delay_offsets.get(1), 0, "not corrected");
    let c = support::client();
    let addr = sa.broker_addr();
    support::create_topic(&c, &addr, "Soon", 1).await;
    let r = support::call(
        &c,
        &addr,
        support::send_request("Soon", 0, "due in a second", &[("DELAY", "1")]),
    )
    .await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let got = support::call(
        &c,
        &addr,
        support::pull_request("CG_soon", "Soon", 0, 0, 10_000),
    )
    .await;
    assert_eq!(
        got.code, 0,
        "the delayed message never came: {:?}",
        got.remark
    );
    assert_eq!(&support::records(&got.body)[0].body[..], b"due in a second");
}
