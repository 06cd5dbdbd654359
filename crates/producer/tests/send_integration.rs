//! The producer against stand-in brokers built on our runtime (they record what they receive and
//! answer like a broker) behind our NameServer: modes, heartbeats, retries onto another broker,
//! latency fault avoidance, selectors, the TBW102 fall-back, and refusals before any I/O.

use async_trait::async_trait;
use rmq_namesrv::NameServer;
use rmq_producer::message::decode_properties;
use rmq_producer::{Message, MessageQueue, Producer, ProducerConfig, ProducerError, SendStatus};
use rmq_protocol::codes::request;
use rmq_protocol::headers::send::SendMessageRequestHeaderV2;
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a stand-in broker answers sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Ok,
    FlushDiskTimeout,
    Busy,
    Illegal,
    Slow(u64),
}

struct Broker {
    name: &'static str,
    seen: Mutex<Vec<RemotingCommand>>,
    answer: Mutex<Answer>,
    offset: AtomicU64,
}

#[async_trait]
impl RequestProcessor for Broker {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.seen.lock().unwrap().push(req.clone());
        if req.code != request::SEND_MESSAGE_V2 && req.code != request::SEND_BATCH_MESSAGE {
            return Ok(Some(RemotingCommand::response(0, None)));
        }
        let answer = *self.answer.lock().unwrap();
        match answer {
            Answer::Busy => {
                return Ok(Some(RemotingCommand::response(
                    2,
                    Some("[REJECTREQUEST]system busy"),
                )))
            }
            Answer::Illegal => {
                return Ok(Some(RemotingCommand::response(13, Some("message illegal"))))
            }
            Answer::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Answer::Ok | Answer::FlushDiskTimeout => {}
        }
        let h: SendMessageRequestHeaderV2 = req.decode_header()?;
        let uniq = decode_properties(h.i.as_deref().unwrap_or(""))
            .into_iter()
            .find(|(k, _)| k == "UNIQ_KEY")
            .map(|(_, v)| v)
            .unwrap_or_default();
        let off = self.offset.fetch_add(1, Ordering::SeqCst);
        let code = if answer == Answer::FlushDiskTimeout {
            10
        } else {
            0
        };
        Ok(Some(
            RemotingCommand::response(code, None)
                .with_ext("msgId", format!("7F000001000051C3{off:016X}"))
                .with_ext("queueId", h.e.to_string())
                .with_ext("queueOffset", off.to_string())
                .with_ext("transactionId", uniq)
                .with_ext("MSG_REGION", "DefaultRegion")
                .with_ext("TRACE_ON", "true"),
        ))
    }
}

impl Broker {
    /// A stand-in named `name` that stores every send.
    fn new(name: &'static str) -> Arc<Broker> {
        Arc::new(Broker {
            name,
            seen: Mutex::default(),
            answer: Mutex::new(Answer::Ok),
            offset: AtomicU64::new(0),
        })
    }

    fn sends(&self) -> Vec<SendMessageRequestHeaderV2> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.code == request::SEND_MESSAGE_V2)
            .map(|r| r.decode_header().unwrap())
            .collect()
    }

    fn codes(&self) -> Vec<i32> {
        self.seen.lock().unwrap().iter().map(|r| r.code).collect()
    }
}

struct Cluster {
    ns: NameServer,
    brokers: Vec<(Arc<Broker>, RemotingServer)>,
    _registrars: Vec<RemotingClient>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn broker(&self, i: usize) -> &Broker {
        &self.brokers[i].0
    }

    fn config(&self) -> ProducerConfig {
        let mut c = ProducerConfig::new("PG_test", &[]);
        c.namesrv_addrs = vec![self.ns.local_addr().to_string()];
        c.instance_name = Some("it".into());
        c
    }
}

/// Our NameServer and two stand-in brokers (broker-a, broker-b) serving `topics` and TBW102.
async fn cluster(topics: &[&str]) -> Cluster {
    let (ns, dir) = rmq_testkit::namesrv().await;
    let mut registrars = Vec::new();
    let mut brokers = Vec::new();
    for name in ["broker-a", "broker-b"] {
        let b = Broker::new(name);
        let mut reg = ProcessorRegistry::new();
        reg.register_default(b.clone(), ExecutorConfig::new(16, 10_000));
        let server = rmq_testkit::serve(reg).await;
        // A first registration of a single topic is refused (5.x rule), as a real broker never
        // has fewer than its system topics.
        let mut served: Vec<&str> = topics.to_vec();
        served.extend(["TBW102", "SELF_TEST_TOPIC"]);
        registrars.push(
            rmq_testkit::register_broker(
                &ns.local_addr().to_string(),
                "C",
                name,
                &server.local_addr().to_string(),
                &served,
            )
            .await,
        );
        brokers.push((b, server));
    }
    Cluster {
        ns,
        brokers,
        _registrars: registrars,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_async_oneway_with_heartbeat_and_unregister() {
    let c = cluster(&["Orders"]).await;
    let p = Producer::start(c.config()).await.unwrap();
    let r = p
        .send(
            Message::new("Orders", "hello")
                .with_tags("TagA")
                .with_keys(&["k1"]),
        )
        .await
        .unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    assert_eq!(r.transaction_id.as_deref(), Some(r.msg_id.as_str()));
    let fut = p.send_async(Message::new("Orders", "async"));
    let (tx, rx) = tokio::sync::oneshot::channel();
    p.send_async_callback(Message::new("Orders", "callback"), move |r| {
        let _ = tx.send(r);
    });
    assert_eq!(fut.await.unwrap().status, SendStatus::SendOk);
    assert_eq!(rx.await.unwrap().unwrap().status, SendStatus::SendOk);
    p.send_oneway(Message::new("Orders", "oneway"))
        .await
        .unwrap();
    // Oneway has no answer: wait until a broker has it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while c.broker(0).sends().len() + c.broker(1).sends().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "oneway never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all: Vec<SendMessageRequestHeaderV2> = c
        .broker(0)
        .sends()
        .into_iter()
        .chain(c.broker(1).sends())
        .collect();
    for h in &all {
        assert_eq!(
            (h.a.as_str(), h.b.as_str(), h.c.as_str(), h.d),
            ("PG_test", "Orders", "TBW102", 4)
        );
        assert!(h.e < 4 && h.m == Some(false) && h.k == Some(false));
        let props = decode_properties(h.i.as_deref().unwrap());
        assert!(props.iter().any(|(k, v)| k == "WAIT" && v == "true"));
        assert!(props.iter().any(|(k, _)| k == "UNIQ_KEY"));
    }
    // Every broker written to got a heartbeat (sent beside the first send, as Java does on
    // connect); shutdown unregisters both groups.
    p.shutdown().await;
    for i in 0..2 {
        let codes = c.broker(i).codes();
        if codes.contains(&request::SEND_MESSAGE_V2) {
            assert!(
                codes.contains(&request::HEART_BEAT),
                "{}: {codes:?}",
                c.broker(i).name
            );
            let unreg = codes
                .iter()
                .filter(|&&x| x == request::UNREGISTER_CLIENT)
                .count();
            assert_eq!(unreg, 2, "{codes:?}");
        }
    }
    assert!(matches!(
        p.send(Message::new("Orders", "late")).await,
        Err(ProducerError::Shutdown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_sends_retry_on_another_broker() {
    let c = cluster(&["Orders"]).await;
    *c.broker(0).answer.lock().unwrap() = Answer::Busy;
    let p = Producer::start(c.config()).await.unwrap();
    for i in 0..10 {
        let r = p
            .send(Message::new("Orders", format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(r.queue.broker_name, "broker-b");
    }
    assert_eq!(c.broker(1).sends().len(), 10);
    assert!(
        !c.broker(0).sends().is_empty(),
        "round robin never tried broker-a"
    );
    // A code outside Java's retry list is returned at once, naming the broker and its remark.
    *c.broker(0).answer.lock().unwrap() = Answer::Illegal;
    *c.broker(1).answer.lock().unwrap() = Answer::Illegal;
    let before = c.broker(0).sends().len() + c.broker(1).sends().len();
    let e = p.send(Message::new("Orders", "x")).await.unwrap_err();
    assert!(matches!(e, ProducerError::Broker { code: 13, .. }), "{e}");
    assert!(e.to_string().contains("message illegal"));
    assert_eq!(
        c.broker(0).sends().len() + c.broker(1).sends().len(),
        before + 1
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_stored_ok_is_returned_or_retried_as_configured() {
    let c = cluster(&["Orders"]).await;
    for i in 0..2 {
        *c.broker(i).answer.lock().unwrap() = Answer::FlushDiskTimeout;
    }
    let p = Producer::start(c.config()).await.unwrap();
    // Default: a FLUSH_DISK_TIMEOUT result is the answer, no retry.
    let r = p.send(Message::new("Orders", "x")).await.unwrap();
    assert_eq!(r.status, SendStatus::FlushDiskTimeout);
    assert_eq!(c.broker(0).sends().len() + c.broker(1).sends().len(), 1);
    // retryAnotherBrokerWhenNotStoreOK: every attempt is used, the last result comes back.
    let mut cfg = c.config();
    cfg.retry_another_broker_when_not_store_ok = true;
    let q = Producer::start(cfg).await.unwrap();
    let r = q.send(Message::new("Orders", "y")).await.unwrap();
    assert_eq!(r.status, SendStatus::FlushDiskTimeout);
    assert_eq!(c.broker(0).sends().len() + c.broker(1).sends().len(), 1 + 3);
    // A broker that stores OK ends the retries.
    *c.broker(1).answer.lock().unwrap() = Answer::Ok;
    let r = q.send(Message::new("Orders", "z")).await.unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    p.shutdown().await;
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_fault_avoidance_steers_away_from_a_slow_broker() {
    let c = cluster(&["Orders"]).await;
    *c.broker(0).answer.lock().unwrap() = Answer::Slow(600);
    let mut cfg = c.config();
    cfg.send_latency_fault_enable = true;
    let p = Producer::start(cfg).await.unwrap();
    for i in 0..12 {
        p.send(Message::new("Orders", format!("m{i}")))
            .await
            .unwrap();
    }
    // One slow send (>= 550 ms) puts broker-a out for 2 s: at most one send reached it.
    assert!(
        c.broker(0).sends().len() <= 1,
        "{} sends hit the slow broker",
        c.broker(0).sends().len()
    );
    assert!(c.broker(1).sends().len() >= 11);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sends_retry_when_a_broker_is_down() {
    let c = cluster(&["Orders"]).await;
    c.brokers[0].1.shutdown_now();
    let p = Producer::start(c.config()).await.unwrap();
    let futs: Vec<_> = (0..8)
        .map(|i| p.send_async(Message::new("Orders", format!("m{i}"))))
        .collect();
    for f in futs {
        assert_eq!(f.await.unwrap().queue.broker_name, "broker-b");
    }
    // Oneway never retries: a oneway to the dead broker fails and is not resent elsewhere.
    let before = c.broker(1).sends().len();
    let mut failed = 0;
    for _ in 0..8 {
        if p.send_oneway(Message::new("Orders", "ow")).await.is_err() {
            failed += 1;
        }
    }
    // Every oneway that left arrives (waited for, bounded)...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.broker(1).sends().len() - before < 8 - failed {
        assert!(tokio::time::Instant::now() < deadline, "oneways lost");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...and none twice: a sync send behind them on the same connection is the only one more.
    p.send(Message::new("Orders", "sync")).await.unwrap();
    assert_eq!(c.broker(1).sends().len() - before, 8 - failed + 1);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_keeps_a_key_on_one_queue() {
    let c = cluster(&["Orders"]).await;
    let p = Producer::start(c.config()).await.unwrap();
    let by_key = |qs: &[MessageQueue], m: &Message| {
        let key = m.property("KEYS").unwrap_or("");
        key.bytes().map(usize::from).sum::<usize>() % qs.len()
    };
    let mut placed = std::collections::HashMap::new();
    for i in 0..20 {
        let key = format!("order-{}", i % 3);
        let r = p
            .send_with_selector(
                Message::new("Orders", "x").with_keys(&[key.as_str()]),
                &by_key,
            )
            .await
            .unwrap();
        let q = (r.queue.broker_name.clone(), r.queue.queue_id);
        assert_eq!(placed.entry(key).or_insert_with(|| q.clone()), &q);
    }
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_topics_go_through_tbw102_and_bad_messages_never_leave() {
    let c = cluster(&[]).await;
    let p = Producer::start(c.config()).await.unwrap();
    let r = p.send(Message::new("BrandNew", "first")).await.unwrap();
    assert!(r.queue.queue_id < 4);
    let sent: Vec<_> = c
        .broker(0)
        .sends()
        .into_iter()
        .chain(c.broker(1).sends())
        .collect();
    assert_eq!(
        (sent[0].b.as_str(), sent[0].c.as_str()),
        ("BrandNew", "TBW102")
    );
    let count = AtomicI32::new(0);
    for bad in [
        Message::new("BrandNew", vec![0u8; 4 * 1024 * 1024 + 1]),
        Message::new("bad topic", "x"),
        Message::new("BrandNew", ""),
    ] {
        let e = p.send(bad).await.unwrap_err();
        assert!(matches!(e, ProducerError::InvalidMessage(_)), "{e}");
        count.fetch_add(1, Ordering::SeqCst);
    }
    assert_eq!(
        c.broker(0).sends().len() + c.broker(1).sends().len(),
        1,
        "nothing else was sent"
    );
    assert!(
        Producer::start(ProducerConfig::new("bad group!", &["127.0.0.1:9876"]))
            .await
            .is_err()
    );
    p.shutdown().await;
}

/// One message of a batch body: flag, body, properties.
type InnerMessage = (i32, bytes::Bytes, Vec<(String, String)>);

/// The messages of a SEND_BATCH_MESSAGE body, per producer spec §12.
fn parse_batch(mut b: bytes::Bytes) -> Vec<InnerMessage> {
    use bytes::Buf;
    let mut out = Vec::new();
    while b.has_remaining() {
        let total = b.get_i32() as usize;
        let (magic, crc, flag) = (b.get_i32(), b.get_i32(), b.get_i32());
        assert_eq!((magic, crc), (0, 0));
        let len = b.get_i32() as usize;
        let body = b.split_to(len);
        let plen = b.get_i16() as usize;
        let props = String::from_utf8(b.split_to(plen).to_vec()).unwrap();
        assert_eq!(total, 22 + len + plen, "totalSize counts every field");
        out.push((flag, body, decode_properties(&props)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_send_carries_every_message_and_java_rules_refuse_the_rest() {
    let c = cluster(&["Orders"]).await;
    let p = Producer::start(c.config()).await.unwrap();
    let r = p
        .send_batch(vec![
            Message::new("Orders", "one").with_tags("A"),
            Message::new("Orders", "two").with_flag(7),
            Message::new("Orders", vec![b'x'; 8192]).with_keys(&["k3"]),
        ])
        .await
        .unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    let ids: Vec<&str> = r.msg_id.split(',').collect();
    assert_eq!(ids.len(), 3);

    let sent: Vec<RemotingCommand> = (0..2)
        .flat_map(|i| c.broker(i).seen.lock().unwrap().clone())
        .filter(|r| r.code == request::SEND_BATCH_MESSAGE)
        .collect();
    assert_eq!(sent.len(), 1, "one request for the whole batch");
    let h: SendMessageRequestHeaderV2 = sent[0].decode_header().unwrap();
    assert_eq!((h.b.as_str(), h.f, h.h, h.m), ("Orders", 0, 0, Some(true)));
    // The envelope's own UNIQ_KEY comes back as transactionId.
    let envelope = decode_properties(h.i.as_deref().unwrap());
    let uniq = |props: &[(String, String)]| {
        props
            .iter()
            .find(|(k, _)| k == "UNIQ_KEY")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(uniq(&envelope), r.transaction_id);
    assert!(envelope.contains(&("WAIT".into(), "true".into())));
    let inner = parse_batch(sent[0].body.clone());
    assert_eq!(inner.len(), 3);
    for (i, (flag, body, props)) in inner.iter().enumerate() {
        assert_eq!(
            uniq(props).as_deref(),
            Some(ids[i]),
            "message {i} keeps its id"
        );
        assert_eq!(*flag, [0, 7, 0][i]);
        assert_eq!(body.len(), [3, 3, 8192][i], "never compressed");
    }
    assert!(inner[0].2.contains(&("TAGS".into(), "A".into())));

    // The async form sends the same kind of request.
    let r = p
        .send_batch_async(vec![
            Message::new("Orders", "x"),
            Message::new("Orders", "y"),
        ])
        .await
        .unwrap();
    assert_eq!(r.msg_id.split(',').count(), 2);
    let sent: Vec<RemotingCommand> = (0..2)
        .flat_map(|i| c.broker(i).seen.lock().unwrap().clone())
        .filter(|r| r.code == request::SEND_BATCH_MESSAGE)
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        parse_batch(sent[1].body.clone()).len() + parse_batch(sent[0].body.clone()).len(),
        5
    );

    // Refused before any I/O, with Java's reasons.
    let before = sent.len();
    for (batch, why) in [
        (vec![], "empty"),
        (
            vec![Message::new("Orders", "a"), Message::new("Other", "b")],
            "one topic",
        ),
        (
            vec![Message::new("Orders", "a").with_delay_level(3)],
            "TimeDelayLevel",
        ),
        (
            vec![
                Message::new("Orders", "a"),
                Message::new("Orders", "b").with_wait_store_msg_ok(false),
            ],
            "waitStoreMsgOK",
        ),
        (vec![Message::new("%RETRY%G", "a")], "retry"),
        (
            vec![
                Message::new("Orders", vec![0u8; 3 << 20]),
                Message::new("Orders", vec![0u8; 2 << 20]),
            ],
            "batch body",
        ),
    ] {
        match p.send_batch(batch).await {
            Err(ProducerError::InvalidMessage(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    let after = (0..2)
        .flat_map(|i| c.broker(i).seen.lock().unwrap().clone())
        .filter(|r| r.code == request::SEND_BATCH_MESSAGE)
        .count();
    assert_eq!(after, before);
    p.shutdown().await;
}

/// A broker that leaves every route is forgotten at the next heartbeat round (Java's
/// cleanOfflineBroker): no more heartbeats to it, and shutdown does not unregister there. Before,
/// the set of heartbeated brokers only ever grew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_that_leave_the_routes_are_forgotten() {
    let mut c = cluster(&["Orders"]).await;
    let mut config = c.config();
    config.poll_namesrv_interval = Duration::from_millis(100);
    config.heartbeat_interval = Duration::from_millis(100);
    let p = Producer::start(config).await.unwrap();
    // Sends round-robin over both brokers: both get heartbeats.
    for _ in 0..8 {
        p.send(Message::new("Orders", "x")).await.unwrap();
    }
    let beats = |b: &Broker| {
        b.codes()
            .iter()
            .filter(|&&x| x == request::HEART_BEAT)
            .count()
    };
    assert!(beats(c.broker(0)) > 0 && beats(c.broker(1)) > 0);
    // broker-b's registration connection closes: the NameServer drops it from the route.
    c._registrars.remove(1).shutdown();
    // Wait (bounded) until heartbeats to broker-b stop while broker-a's go on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut quiet_rounds = 0;
    let mut last_b = beats(c.broker(1));
    let mut last_a = beats(c.broker(0));
    while quiet_rounds < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heartbeats to the departed broker never stopped"
        );
        // One heartbeat round to broker-a is the clock.
        while beats(c.broker(0)) == last_a {
            assert!(tokio::time::Instant::now() < deadline, "no heartbeat round");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        last_a = beats(c.broker(0));
        let b = beats(c.broker(1));
        quiet_rounds = if b == last_b { quiet_rounds + 1 } else { 0 };
        last_b = b;
    }
    p.shutdown().await;
    let unreg = |b: &Broker| {
        b.codes()
            .iter()
            .filter(|&&x| x == request::UNREGISTER_CLIENT)
            .count()
    };
    assert_eq!(unreg(c.broker(0)), 2, "still in the route: unregistered");
    assert_eq!(unreg(c.broker(1)), 0, "left the route: forgotten");
}

/// Counts connections a listener accepts, closing each at once: a broker that is down (its
/// address still in the route) as far as a producer can tell, where every dial shows.
async fn dead_broker() -> (String, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let dials = Arc::new(AtomicU64::new(0));
    let counted = dials.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (addr, dials, task)
}

/// A broker that is down but still in the route is isolated after its first failure and only
/// probed in the background (1 s, 2 s, 4 s...): over 5 s of sending, fewer than 10 dials reach
/// it, and every message lands once on the live broker. Before, every send picked it in turn and
/// dialled it (about 100 dials a second in the same run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_is_isolated_and_probed_not_redialled_per_send() {
    let (ns, _dir) = rmq_testkit::namesrv().await;
    let ns_addr = ns.local_addr().to_string();
    let (dead_addr, dials, dead_task) = dead_broker().await;
    let _dead_reg =
        rmq_testkit::register_broker(&ns_addr, "C", "broker-a", &dead_addr, &["Orders", "TBW102"])
            .await;
    let live = Broker::new("broker-b");
    let mut reg = ProcessorRegistry::new();
    reg.register_default(live.clone(), ExecutorConfig::new(16, 10_000));
    let live_server = rmq_testkit::serve(reg).await;
    let _live_reg = rmq_testkit::register_broker(
        &ns_addr,
        "C",
        "broker-b",
        &live_server.local_addr().to_string(),
        &["Orders", "TBW102"],
    )
    .await;
    let mut config = ProducerConfig::new("PG_iso", &[ns_addr.as_str()]);
    config.instance_name = Some("iso".into());
    let p = Producer::start(config).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(5) {
        let r = p.send(Message::new("Orders", format!("m{sent}"))).await;
        assert_eq!(r.unwrap().queue.broker_name, "broker-b");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let dialled = dials.load(Ordering::SeqCst);
    assert!(
        dialled < 10,
        "{dialled} dials to the dead broker in 5 s ({sent} sends)"
    );
    assert!(sent > 100, "the sends went on: {sent}");
    assert_eq!(live.sends().len() as u64, sent, "every message once");
    p.shutdown().await;
    dead_task.abort();
    ns.shutdown_now();
}

/// A broker shutting down gracefully answers GO_AWAY: the producer sends that message to another
/// broker and sends nothing more to the draining one, opening no new connection to it. Before, it
/// resent there on a fresh connection and kept choosing it until the route refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_broker_gets_no_new_sends_and_no_new_connections() {
    struct Connects(AtomicU64);
    impl ChannelEventListener for Connects {
        fn on_event(&self, e: ChannelEvent) {
            if matches!(e, ChannelEvent::Connect(_)) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let (ns, _dir) = rmq_testkit::namesrv().await;
    let ns_addr = ns.local_addr().to_string();
    let mut brokers = Vec::new();
    let mut registrars = Vec::new();
    let connects = Arc::new(Connects(AtomicU64::new(0)));
    for name in ["broker-a", "broker-b"] {
        let b = Broker::new(name);
        let mut reg = ProcessorRegistry::new();
        reg.register_default(b.clone(), ExecutorConfig::new(16, 10_000));
        let mut builder = ServerBuilder::new(ServerConfig {
            listen_addr: "127.0.0.1:0".into(),
            shutdown_grace: Duration::from_secs(20),
            ..Default::default()
        })
        .registry(reg);
        if name == "broker-a" {
            builder = builder.event_listener(connects.clone());
        }
        let server = Arc::new(builder.bind().await.unwrap());
        registrars.push(
            rmq_testkit::register_broker(
                &ns_addr,
                "C",
                name,
                &server.local_addr().to_string(),
                &["Orders", "TBW102"],
            )
            .await,
        );
        brokers.push((b, server));
    }
    let mut config = ProducerConfig::new("PG_drain", &[ns_addr.as_str()]);
    config.instance_name = Some("drain".into());
    let p = Producer::start(config).await.unwrap();
    for i in 0..20 {
        p.send(Message::new("Orders", format!("warm{i}")))
            .await
            .unwrap();
    }
    assert!(!brokers[0].0.sends().is_empty(), "broker-a was in use");
    let before_a = brokers[0].0.sends().len();
    let before_b = brokers[1].0.sends().len();
    let connects_before = connects.0.load(Ordering::SeqCst);
    // broker-a starts a graceful shutdown: GO_AWAY to every new request for 20 s.
    let a = brokers[0].1.clone();
    let stopping = tokio::spawn(async move { a.shutdown().await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !brokers[0].1.is_shutting_down() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    const N: usize = 200;
    for i in 0..N {
        let r = p
            .send(Message::new("Orders", format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(r.queue.broker_name, "broker-b");
    }
    let futs: Vec<_> = (0..50)
        .map(|i| p.send_async(Message::new("Orders", format!("a{i}"))))
        .collect();
    for f in futs {
        assert_eq!(f.await.unwrap().queue.broker_name, "broker-b");
    }
    assert_eq!(
        brokers[0].0.sends().len(),
        before_a,
        "nothing stored on the draining broker"
    );
    assert_eq!(
        brokers[1].0.sends().len() - before_b,
        N + 50,
        "every message once"
    );
    assert_eq!(
        connects.0.load(Ordering::SeqCst),
        connects_before,
        "no new connection to the draining broker"
    );
    p.shutdown().await;
    stopping.abort();
    brokers[0].1.shutdown_now();
    brokers[1].1.shutdown_now();
    ns.shutdown_now();
}
