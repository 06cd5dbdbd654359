//! The push consumer against our broker over real sockets: a group splitting queues without
//! overlap, every message once, members joining and leaving, offsets resuming after a restart,
//! and give-backs seen with reconsumeTimes 0, 1, 2.

mod support;

use rmq_consumer::{listener, ConsumeFrom, ConsumeResult, MessageExt, PushConsumer};
use rmq_producer::message::Message;
use rmq_producer::{Producer, ProducerConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{config, Cluster};

type Seen = Arc<Mutex<HashMap<String, Vec<(String, i32)>>>>;

async fn recording(c: &Cluster, group: &str, name: &str, topic: &str, seen: Seen) -> PushConsumer {
    let who = name.to_owned();
    PushConsumer::start(
        config(c, group, name),
        &[(topic, "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let (seen, who) = (seen.clone(), who.clone());
            async move {
                for m in msgs {
                    let body = String::from_utf8_lossy(&m.body).into_owned();
                    seen.lock()
                        .unwrap()
                        .entry(body)
                        .or_default()
                        .push((who.clone(), m.reconsume_times));
                }
                ConsumeResult::Success
            }
        }),
    )
    .await
    .unwrap()
}

async fn wait_for(seen: &Seen, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {} of {n}",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_splits_queues_and_consumes_each_message_once() {
    let c = Cluster::start().await;
    c.create_topic("Split", 8).await;
    let seen: Seen = Arc::default();
    let a = recording(&c, "CG_split", "a", "Split", seen.clone()).await;
    let b = recording(&c, "CG_split", "b", "Split", seen.clone()).await;
    // Both see both members (NOTIFY_CONSUMER_IDS_CHANGED, then a rebalance).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (qa, qb) = (a.owned_queues(), b.owned_queues());
        let split: Vec<_> = qa
            .iter()
            .chain(&qb)
            .filter(|q| q.topic == "Split")
            .collect();
        if split.len() == 8 && qa.iter().all(|q| !qb.contains(q)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no clean split: {qa:?} / {qb:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.send("Split", (0..400).map(|i| format!("m{i}"))).await;
    wait_for(&seen, 400).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().unwrap().clone();
    let dups: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(dups.is_empty(), "consumed twice: {dups:?}");
    let by_a = seen.values().filter(|v| v[0].0 == "a").count();
    assert!(
        by_a > 0 && by_a < 400,
        "both members consumed ({by_a} by a)"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_a_fourth_joins_one_leaves_every_message_once_then_offsets_resume() {
    let c = Cluster::start().await;
    c.create_topic("Churn", 8).await;
    let seen: Seen = Arc::default();
    let a = recording(&c, "CG_churn", "a", "Churn", seen.clone()).await;
    let b = recording(&c, "CG_churn", "b", "Churn", seen.clone()).await;
    let cc = recording(&c, "CG_churn", "c", "Churn", seen.clone()).await;
    // Traffic all along: 600 messages, about 2 ms apart.
    let producer = Producer::start(ProducerConfig::new("PG_churn", &[&c.ns()]))
        .await
        .unwrap();
    let sender = {
        let p = producer.clone();
        tokio::spawn(async move {
            for i in 0..600 {
                p.send(Message::new("Churn", format!("m{i}").into_bytes()))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    wait_for(&seen, 150).await;
    let d = recording(&c, "CG_churn", "d", "Churn", seen.clone()).await;
    wait_for(&seen, 350).await;
    a.shutdown().await;
    sender.await.unwrap();
    wait_for(&seen, 600).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    {
        let s = seen.lock().unwrap();
        let dups: Vec<_> = s.iter().filter(|(_, v)| v.len() > 1).collect();
        assert!(
            dups.is_empty(),
            "consumed twice during the rebalances: {dups:?}"
        );
        let by: std::collections::BTreeSet<&str> = s.values().map(|v| v[0].0.as_str()).collect();
        assert!(by.contains("d"), "the newcomer took queues: {by:?}");
    }
    // A clean restart of the whole group: only new messages, none of the old ones again.
    for m in [b, cc, d] {
        m.shutdown().await;
    }
    let before = seen.lock().unwrap().values().map(Vec::len).sum::<usize>();
    for i in 600..700 {
        producer
            .send(Message::new("Churn", format!("m{i}").into_bytes()))
            .await
            .unwrap();
    }
    producer.shutdown().await;
    let e = recording(&c, "CG_churn", "e", "Churn", seen.clone()).await;
    wait_for(&seen, 700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = seen.lock().unwrap().clone();
    let redelivered: usize = s.values().map(Vec::len).sum::<usize>() - before - 100;
    assert_eq!(
        redelivered, 0,
        "after a clean shutdown nothing is delivered twice"
    );
    for i in 0..700 {
        assert!(s.contains_key(&format!("m{i}")), "m{i} lost");
    }
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failed_twice_is_seen_three_times() {
    let c = Cluster::start().await;
    c.create_topic("Flaky", 2).await;
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let consumer = PushConsumer::start(
        config(&c, "CG_flaky", "f"),
        &[("Flaky", "TagA")],
        listener(move |msgs: Vec<MessageExt>| {
            let seen = s2.clone();
            async move {
                let m = &msgs[0];
                let body = String::from_utf8_lossy(&m.body).into_owned();
                let mut g = seen.lock().unwrap();
                let tries = g.entry(body).or_default();
                tries.push((m.topic.clone(), m.reconsume_times));
                if tries.len() < 3 {
                    ConsumeResult::ReconsumeLater
                } else {
                    ConsumeResult::Success
                }
            }
        }),
    )
    .await
    .unwrap();
    c.send("Flaky", std::iter::once("fragile".to_owned())).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if seen
            .lock()
            .unwrap()
            .get("fragile")
            .is_some_and(|v| v.len() >= 3)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seen {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tries = seen.lock().unwrap()["fragile"].clone();
    assert_eq!(
        tries,
        [("Flaky".to_owned(), 0), ("Flaky".to_owned(), 1), ("Flaky".to_owned(), 2)],
        "the original topic restored from RETRY_TOPIC, reconsumeTimes counting up, no fourth delivery"
    );
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_listener_keeps_the_cache_bounded() {
    let c = Cluster::start().await;
    c.create_topic("Backlog", 1).await;
    c.send("Backlog", (0..1500).map(|i| format!("{i:01024}")))
        .await;
    let mut cfg = config(&c, "CG_slow", "slow");
    cfg.pull_threshold_for_queue = 100;
    cfg.consume_concurrency = 2;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let d = done.clone();
    let consumer = PushConsumer::start(
        cfg,
        &[("Backlog", "*")],
        listener(move |_msgs: Vec<MessageExt>| {
            let d = d.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                d.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ConsumeResult::Success
            }
        }),
    )
    .await
    .unwrap();
    let mut most = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 1500 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {}",
            done.load(std::sync::atomic::Ordering::SeqCst)
        );
        most = most.max(consumer.cached().0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The threshold plus at most one pull of 32 (a pull already under way when it was hit).
    assert!(most <= 100 + 32, "cached up to {most}");
    assert!(
        most > 32,
        "the cache did fill ({most}): the listener was the bottleneck"
    );
    consumer.shutdown().await;
}

type Order = Arc<Mutex<Vec<(String, i32, i64, i32)>>>;

async fn orderly(c: &Cluster, name: &str, log: Order, suspend_first: bool) -> PushConsumer {
    let mut cfg = config(c, "CG_orderly", name);
    cfg.orderly = true;
    cfg.suspend_current_queue_time = Duration::from_millis(100);
    let who = name.to_owned();
    let suspended = Arc::new(std::sync::atomic::AtomicBool::new(!suspend_first));
    PushConsumer::start(
        cfg,
        &[("Ordered", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let (log, who, suspended) = (log.clone(), who.clone(), suspended.clone());
            async move {
                let m = &msgs[0];
                log.lock()
                    .unwrap()
                    .push((who, m.queue_id, m.queue_offset, m.reconsume_times));
                if !suspended.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return ConsumeResult::SuspendCurrentQueueAMoment;
                }
                // A little work, so a rebalance finds messages in flight.
                tokio::time::sleep(Duration::from_millis(1)).await;
                ConsumeResult::Success
            }
        }),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_queues_are_consumed_in_offset_order_across_a_rebalance() {
    let c = Cluster::start().await;
    c.create_topic("Ordered", 4).await;
    let log: Order = Arc::default();
    let a = orderly(&c, "a", log.clone(), true).await;
    let producer = Producer::start(ProducerConfig::new("PG_ord", &[&c.ns()]))
        .await
        .unwrap();
    let mut b = None;
    for i in 0..400 {
        producer
            .send(Message::new("Ordered", format!("o{i}").into_bytes()))
            .await
            .unwrap();
        if i == 150 {
            // A second member joins mid-stream: queues move between locks.
            b = Some(orderly(&c, "b", log.clone(), false).await);
        }
    }
    producer.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: std::collections::HashSet<(i32, i64)> = log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, q, o, _)| (*q, *o))
            .collect();
        if done.len() >= 400 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {} of 400",
            done.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log.lock().unwrap().clone();
    // Per queue, offsets strictly increase, except the one suspended message offered again.
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut retried = 0;
    for (_, q, o, times) in &log {
        let prev = last.insert(*q, *o);
        if *times > 0 {
            retried += 1;
            assert_eq!(
                prev,
                Some(*o),
                "a suspended message comes back before anything after it"
            );
            continue;
        }
        if let Some(p) = prev {
            assert!(*o > p, "queue {q}: offset {o} after {p}");
        }
    }
    assert_eq!(retried, 1, "the suspended message was offered again once");
    let members: std::collections::BTreeSet<&str> = log.iter().map(|(w, ..)| w.as_str()).collect();
    assert_eq!(members.len(), 2, "both members consumed: {members:?}");
    a.shutdown().await;
    if let Some(b) = b {
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasting_members_each_get_everything_and_resume_from_their_file() {
    let c = Cluster::start().await;
    c.create_topic("Cast", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str, seen: Seen| {
        let mut cfg = config(&c, "CG_cast", name);
        cfg.broadcasting = true;
        cfg.offset_store_dir = dir.path().to_owned();
        let who = name.to_owned();
        PushConsumer::start(
            cfg,
            &[("Cast", "*")],
            listener(move |msgs: Vec<MessageExt>| {
                let (seen, who) = (seen.clone(), who.clone());
                async move {
                    for m in msgs {
                        let body = String::from_utf8_lossy(&m.body).into_owned();
                        seen.lock()
                            .unwrap()
                            .entry(body)
                            .or_default()
                            .push((who.clone(), m.reconsume_times));
                    }
                    ConsumeResult::Success
                }
            }),
        )
    };
    let (sa, sb): (Seen, Seen) = (Arc::default(), Arc::default());
    let a = start("a", sa.clone()).await.unwrap();
    let b = start("b", sb.clone()).await.unwrap();
    c.send("Cast", (0..100).map(|i| format!("c{i}"))).await;
    wait_for(&sa, 100).await;
    wait_for(&sb, 100).await;
    a.shutdown().await;
    b.shutdown().await;
    let client_dir = format!("{}@a", rmq_model::local_ip());
    assert!(dir
        .path()
        .join(client_dir)
        .join("CG_cast")
        .join("offsets.json")
        .is_file());
    // a comes back: it resumes from its own file, so only the new messages arrive.
    c.send("Cast", (100..120).map(|i| format!("c{i}"))).await;
    let again: Seen = Arc::default();
    let a2 = start("a", again.clone()).await.unwrap();
    wait_for(&again, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = again.lock().unwrap().clone();
    assert_eq!(got.len(), 20, "{:?}", got.keys().collect::<Vec<_>>());
    assert!(got.keys().all(|k| k[1..].parse::<u32>().unwrap() >= 100));
    a2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_pull_polls_commits_seeks_and_streams() {
    use futures_util::StreamExt;
    use rmq_consumer::{LitePullConsumer, MessageQueue};
    let c = Cluster::start().await;
    c.create_topic("Lite", 2).await;
    c.send("Lite", (0..100).map(|i| format!("l{i}"))).await;
    // Subscribed: rebalanced, polled until everything came, committed.
    let lite = LitePullConsumer::subscribe(config(&c, "CG_lite", "lite"), &[("Lite", "*")])
        .await
        .unwrap();
    let mut got = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "polled {}",
            got.len()
        );
        for m in lite.poll(Duration::from_millis(500)).await {
            assert!(
                got.insert(String::from_utf8_lossy(&m.body).into_owned()),
                "polled twice"
            );
        }
    }
    assert_eq!(lite.assignment().len(), 2);
    lite.commit().await;
    let state = c.sa.broker.state().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let committed: i64 = (0..2)
            .map(|q| state.offsets.query("CG_lite", "Lite", q).unwrap_or(0))
            .sum();
        if committed == 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "committed {committed}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lite.shutdown().await;

    // Assigned: one queue, read, seek back to 0, read the same again, as a stream.
    let q0 = MessageQueue {
        broker_name: "broker-a".into(),
        queue_id: 0,
        topic: "Lite".into(),
    };
    let mut cfg = config(&c, "CG_lite_assign", "assign");
    cfg.consume_from = ConsumeFrom::FirstOffset;
    let lite = LitePullConsumer::assign(cfg, vec![q0.clone()])
        .await
        .unwrap();
    let first: Vec<i64> = lite
        .stream()
        .take(10)
        .map(|m| m.queue_offset)
        .collect()
        .await;
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    lite.seek(&q0, 0);
    let again: Vec<i64> = lite
        .stream()
        .take(5)
        .map(|m| m.queue_offset)
        .collect()
        .await;
    assert_eq!(again, (0..5).collect::<Vec<_>>(), "after seek(0)");
    lite.shutdown().await;
}

/// A listener that always fails, recording each delivery's reconsumeTimes.
fn always_failing(log: Arc<Mutex<Vec<i32>>>) -> Arc<dyn rmq_consumer::MessageListener> {
    listener(move |msgs: Vec<MessageExt>| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(msgs[0].reconsume_times);
            ConsumeResult::ReconsumeLater
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_ends_in_the_dlq() {
    let c = Cluster::start().await;
    c.create_topic("Doomed", 1).await;
    let log: Arc<Mutex<Vec<i32>>> = Arc::default();
    let mut cfg = config(&c, "CG_doomed", "d");
    cfg.max_reconsume_times = 2;
    let consumer = PushConsumer::start(cfg, &[("Doomed", "*")], always_failing(log.clone()))
        .await
        .unwrap();
    c.send("Doomed", std::iter::once("never".to_owned())).await;
    let state = c.sa.broker.state().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dlq = state
            .store
            .run(|st| st.max_offset("%DLQ%CG_doomed", 0))
            .await
            .unwrap();
        if dlq == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries so far {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Delivered with reconsumeTimes 0, 1, 2; the third give-back (2 >= 2) went to the DLQ.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_give_back_is_consumed_again_locally() {
    let c = Cluster::start().await;
    c.create_topic("Local", 1).await;
    c.send("Local", std::iter::once("again".to_owned())).await;
    // A read-only broker refuses give-backs (16): the consumer retries the message itself.
    let admin = rmq_remoting::RemotingClient::new(Default::default());
    let ro =
        rmq_protocol::RemotingCommand::request(rmq_protocol::codes::request::UPDATE_BROKER_CONFIG)
            .with_body("brokerPermission=4\n");
    assert_eq!(
        admin
            .invoke_sync(
                &c.sa.broker.local_addr().to_string(),
                ro,
                Duration::from_secs(5)
            )
            .await
            .unwrap()
            .code,
        0
    );
    let log: Arc<Mutex<Vec<i32>>> = Arc::default();
    let l = log.clone();
    let consumer = PushConsumer::start(
        config(&c, "CG_local", "l"),
        &[("Local", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let l = l.clone();
            async move {
                let mut g = l.lock().unwrap();
                g.push(msgs[0].reconsume_times);
                if g.len() == 1 {
                    ConsumeResult::ReconsumeLater
                } else {
                    ConsumeResult::Success
                }
            }
        }),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while log.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*log.lock().unwrap(), [0, 1]);
    // Consumed at last: the offset moves past it.
    consumer.shutdown().await;
    let state = c.sa.broker.state().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.offsets.query("CG_local", "Local", 0) != Some(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            state.offsets.query("CG_local", "Local", 0)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
