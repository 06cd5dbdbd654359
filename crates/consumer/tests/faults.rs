//! The push consumer when things go wrong, against our broker over real sockets, faults
//! injected with client hooks: a batch whose give-back fails half way, an orderly queue
//! rebalanced away while its listener is still at work, and pull answers with a corrupted
//! record in the middle.

mod support;

use rmq_consumer::{listener, ConsumeResult, MessageExt, PushConsumer};
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{HookError, RpcHook};
use std::sync::atomic::{AtomicUsize, Ordering};
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
