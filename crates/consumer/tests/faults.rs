//! The push consumer when things go wrong, against our broker over real sockets, faults
//! injected with client hooks: a batch whose give-back fails half way, an orderly queue
//! rebalanced away while its listener is still at work, and pull answers with a corrupted
//! record in the middle.

mod support;

use rmq_consumer::{listener, ConsumeResult, MessageExt, MessageQueue, PushConsumer};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{HookError, RpcHook};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{config, Cluster};

/// Fails the `nth` (from 0) CONSUMER_SEND_MSG_BACK its client sends, as an unreachable broker
/// would.
struct FailNthSendBack {
    nth: usize,
    seen: AtomicUsize,
}

impl RpcHook for FailNthSendBack {
    fn before_request(&self, _: &str, req: &mut RemotingCommand) -> Result<(), HookError> {
        if req.code == request::CONSUMER_SEND_MSG_BACK
            && self.seen.fetch_add(1, Ordering::SeqCst) == self.nth
        {
            return Err(HookError::Failed("injected: the give-back fails".into()));
        }
        Ok(())
    }
}

/// One listener call: (body, reconsumeTimes) of each message.
type Batch = Vec<(String, i32)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_give_back_half_fails_still_lets_the_offset_move() {
    let c = Cluster::start().await;
    c.create_topic("Half", 1).await;
    c.send("Half", ["h0", "h1"].map(String::from).into_iter())
        .await;
    c.wait_stored("Half", 0, 2).await;
    let mut cfg = config(&c, "CG_half", "h");
    // One pull of both, one listener call with both.
    cfg.consume_batch_max_size = 2;
    cfg.rpc_hooks.push(Arc::new(FailNthSendBack {
        nth: 1,
        seen: AtomicUsize::new(0),
    }));
    let calls: Arc<Mutex<Vec<Batch>>> = Arc::default();
    let log = calls.clone();
    let consumer = PushConsumer::start(
        cfg,
        &[("Half", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let log = log.clone();
            async move {
                let mut g = log.lock().unwrap();
                g.push(
                    msgs.iter()
                        .map(|m| {
                            (
                                String::from_utf8_lossy(&m.body).into_owned(),
                                m.reconsume_times,
                            )
                        })
                        .collect(),
                );
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
    // h0 went back to the broker and returns through the retry topic; h1's give-back failed:
    // it is consumed again locally 5 s later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<(String, i32)> = calls.lock().unwrap().concat();
        if seen.len() >= 4 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls[0],
        [("h0".to_owned(), 0), ("h1".to_owned(), 0)],
        "one call with both"
    );
    let mut again: Vec<(String, i32)> = calls[1..].concat();
    again.sort();
    assert_eq!(again, [("h0".to_owned(), 1), ("h1".to_owned(), 1)]);
    // Both done with: the queue's committed offset moves past both.
    c.wait_committed("CG_half", "Half", 0, 2, Duration::from_secs(10))
        .await;
    consumer.shutdown().await;
}

/// (member, queue offset, "enter" or "leave").
type Call = (String, i64, &'static str);

/// What the orderly members' listeners share with the test.
#[derive(Clone)]
struct Watch {
    /// Listener calls: (member, queue offset, entering or leaving).
    calls: Arc<Mutex<Vec<Call>>>,
    /// Listener calls running now, over both members.
    running: Arc<AtomicUsize>,
    /// Two calls ran at once.
    overlapped: Arc<AtomicBool>,
    /// Member "z" stops in x0 until the test opens this.
    gate: Arc<tokio::sync::Semaphore>,
    /// (member, queue offset) as each call starts.
    entered: tokio::sync::mpsc::UnboundedSender<(String, i64)>,
}

/// An orderly member `name` of CG_held on `Held`, reporting to `watch`.
async fn orderly_member(c: &Cluster, name: &str, watch: Watch) -> PushConsumer {
    let mut cfg = config(c, "CG_held", name);
    cfg.orderly = true;
    let who = name.to_owned();
    PushConsumer::start(
        cfg,
        &[("Held", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let (w, who) = (watch.clone(), who.clone());
            async move {
                let offset = msgs[0].queue_offset;
                if w.running.fetch_add(1, Ordering::SeqCst) > 0 {
                    w.overlapped.store(true, Ordering::SeqCst);
                }
                w.calls.lock().unwrap().push((who.clone(), offset, "enter"));
                let _ = w.entered.send((who.clone(), offset));
                if who == "z" && offset == 0 {
                    w.gate.acquire().await.unwrap().forget();
                }
                w.calls.lock().unwrap().push((who, offset, "leave"));
                w.running.fetch_sub(1, Ordering::SeqCst);
                ConsumeResult::Success
            }
        }),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderly_queue_rebalanced_away_stays_locked_until_its_listener_returns() {
    let c = Cluster::start().await;
    c.create_topic("Held", 1).await;
    c.send("Held", ["x0", "x1"].map(String::from).into_iter())
        .await;
    c.wait_stored("Held", 0, 2).await;
    let held = MessageQueue {
        topic: "Held".into(),
        broker_name: "broker-a".into(),
        queue_id: 0,
    };
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let watch = Watch {
        calls: Arc::default(),
        running: Arc::default(),
        overlapped: Arc::default(),
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
        entered: entered_tx,
    };
    let (calls, gate, overlapped) = (
        watch.calls.clone(),
        watch.gate.clone(),
        watch.overlapped.clone(),
    );
    // "z" alone: it owns and locks the queue, and its listener stops in x0.
    let z = orderly_member(&c, "z", watch.clone()).await;
    let first = tokio::time::timeout(Duration::from_secs(20), entered.recv())
        .await
        .expect("z consumes x0");
    assert_eq!(first, Some(("z".to_owned(), 0)));
    let retry_of = |q: &[MessageQueue]| q.iter().any(|q| q.topic == "%RETRY%CG_held");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !retry_of(&z.owned_queues()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "z owns the retry queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // "a" joins and sorts first: Java's allocation gives it both queues (Held's and the retry
    // topic's). z gives the retry queue up at once (nothing runs on it), then comes to Held.
    let a = orderly_member(&c, "a", watch.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while retry_of(&z.owned_queues()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "z's rebalance gives the retry queue to a"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While z's listener is still in x0, a gets no lock on Held and consumes nothing there: 12 s,
    // past the 10 s after which a rebalance used to unlock a busy queue anyway.
    let window = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < window {
        assert!(
            !a.owned_queues().contains(&held),
            "a locked Held while z's listener still runs on it: {:?}",
            calls.lock().unwrap()
        );
        assert!(entered.try_recv().is_err(), "{:?}", calls.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.add_permits(1);
    // Once it returns, z gives the queue up (x0's offset committed) and a goes on from x1.
    let next = tokio::time::timeout(Duration::from_secs(20), entered.recv())
        .await
        .expect("a consumes x1 once z let go");
    assert_eq!(
        next,
        Some(("a".to_owned(), 1)),
        "{:?}",
        calls.lock().unwrap()
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls[..3],
        [
            ("z".to_owned(), 0, "enter"),
            ("z".to_owned(), 0, "leave"),
            ("a".to_owned(), 1, "enter")
        ],
        "one listener at a time on the queue"
    );
    assert!(!overlapped.load(Ordering::SeqCst));
    a.shutdown().await;
    z.shutdown().await;
}

/// Breaks the record at queue offset `offset` (its magic code) in pull answers of `topic`, the
/// first `times` times an answer holds it; counts the answers that held it.
struct CorruptPull {
    topic: &'static str,
    offset: i64,
    times: usize,
    seen: AtomicUsize,
}

impl RpcHook for CorruptPull {
    fn before_request(&self, _: &str, _: &mut RemotingCommand) -> Result<(), HookError> {
        Ok(())
    }

    fn after_response(
        &self,
        _: &str,
        req: &RemotingCommand,
        resp: &mut RemotingCommand,
    ) -> Result<(), HookError> {
        if req.code != request::PULL_MESSAGE
            || resp.code != 0
            || req.ext("topic") != Some(self.topic)
        {
            return Ok(());
        }
        let mut body = resp.body.to_vec();
        let mut at = 0;
        // TOTALSIZE at 0, MAGICCODE at 4, QUEUEOFFSET at 20 of each record.
        while at + 28 <= body.len() {
            let total = u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
            let queue_offset = i64::from_be_bytes(body[at + 20..at + 28].try_into().unwrap());
            if queue_offset == self.offset {
                if self.seen.fetch_add(1, Ordering::SeqCst) < self.times {
                    body[at + 4..at + 8].copy_from_slice(&[0; 4]);
                    resp.body = body.into();
                }
                return Ok(());
            }
            if total == 0 {
                break;
            }
            at += total;
        }
        Ok(())
    }
}

/// Consumes `Torn` (10 messages t0..t9 on one queue) with `hook`: each body's deliveries, once
/// `expected` bodies arrived and the offset was committed past them all.
async fn consume_torn(hook: Arc<CorruptPull>, expected: usize) -> HashMap<String, usize> {
    let c = Cluster::start().await;
    c.create_topic("Torn", 1).await;
    c.send("Torn", (0..10).map(|i| format!("t{i}"))).await;
    c.wait_stored("Torn", 0, 10).await;
    let mut cfg = config(&c, "CG_torn", "t");
    cfg.rpc_hooks.push(hook);
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let s = seen.clone();
    let consumer = PushConsumer::start(
        cfg,
        &[("Torn", "*")],
        listener(move |msgs: Vec<MessageExt>| {
            let s = s.clone();
            async move {
                for m in msgs {
                    *s.lock()
                        .unwrap()
                        .entry(String::from_utf8_lossy(&m.body).into_owned())
                        .or_default() += 1;
                }
                ConsumeResult::Success
            }
        }),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivered {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.wait_committed("CG_torn", "Torn", 0, 10, Duration::from_secs(10))
        .await;
    consumer.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_corrupted_once_mid_answer_loses_nothing() {
    let hook = Arc::new(CorruptPull {
        topic: "Torn",
        offset: 4,
        times: 1,
        seen: AtomicUsize::new(0),
    });
    let seen = consume_torn(hook.clone(), 10).await;
    assert!(
        hook.seen.load(Ordering::SeqCst) >= 2,
        "corrupted, then pulled again"
    );
    for i in 0..10 {
        assert_eq!(seen.get(&format!("t{i}")), Some(&1), "t{i} once: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_never_decodes_is_skipped_alone_after_a_few_pulls() {
    let hook = Arc::new(CorruptPull {
        topic: "Torn",
        offset: 4,
        times: usize::MAX,
        seen: AtomicUsize::new(0),
    });
    let seen = consume_torn(hook.clone(), 9).await;
    for i in (0..10).filter(|i| *i != 4) {
        assert_eq!(seen.get(&format!("t{i}")), Some(&1), "t{i} once: {seen:?}");
    }
    assert_eq!(seen.get("t4"), None, "t4 never decoded");
    assert_eq!(
        hook.seen.load(Ordering::SeqCst),
        4,
        "the first answer and three pulls again from t4, then it is skipped"
    );
}
