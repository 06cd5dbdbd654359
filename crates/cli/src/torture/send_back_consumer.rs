//! The send-back consumer: an in-process push consumer (rmq-consumer) of the retry-source
//! topic whose listener fails every fourth message once (RECONSUME_LATER), so it goes back
//! through CONSUMER_SEND_MSG_BACK -> SCHEDULE_TOPIC_XXXX -> `%RETRY%group`. The listener
//! records every queue offset it returns from (committed offsets may never pass them), and a
//! client hook records each give-back the broker acknowledged.

use super::ledger::{parse_body, GiveBack, Shared};
use super::topics::{GROUP, RETRY_SOURCE, RETRY_TOPIC};
use rmq_consumer::{listener, ConsumeFrom, ConsumeResult, ConsumerConfig, PushConsumer};
use rmq_protocol::codes::request as rc;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{HookError, RpcHook};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records the give-backs the broker acknowledged (CONSUMER_SEND_MSG_BACK answered 0).
struct GiveBackHook(Shared);

impl RpcHook for GiveBackHook {
    fn before_request(&self, _: &str, _: &mut RemotingCommand) -> Result<(), HookError> {
        Ok(())
    }

    fn after_response(
        &self,
        _: &str,
        request: &RemotingCommand,
        response: &mut RemotingCommand,
    ) -> Result<(), HookError> {
        if request.code != rc::CONSUMER_SEND_MSG_BACK || response.code != 0 {
            return Ok(());
        }
        let Some(id) = request.ext("originMsgId") else {
            return Ok(());
        };
        let mut l = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&(counter, times)) = l.uniq.get(id) {
            // The broker redelivers at level 3 + reconsume times.
            let level = (3 + times).clamp(1, 18) as u8;
            l.gave_back.entry(counter).or_insert(GiveBack {
                at: Instant::now(),
                level,
            });
        }
        Ok(())
    }
}

/// Starts the consumer of the retry-source topic (and its retry topic) on `namesrv`.
pub async fn start(namesrv: &str, ledger: &Shared) -> Result<PushConsumer, String> {
    let mut config = ConsumerConfig::new(GROUP, &[namesrv]);
    config.consume_from = ConsumeFrom::FirstOffset;
    config.persist_interval = Duration::from_secs(1);
    config.suspend_timeout = Duration::from_secs(5);
    config.rpc_hooks = vec![Arc::new(GiveBackHook(ledger.clone()))];
    let run = ledger.lock().unwrap_or_else(|p| p.into_inner()).run.clone();
    let ledger = ledger.clone();
    let l = listener(move |msgs| {
        let ledger = ledger.clone();
        let run = run.clone();
        async move {
            let mut result = ConsumeResult::Success;
            let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
            for m in &msgs {
                // Pulled from the retry topic: the consumer restored the original topic name
                // and kept RETRY_TOPIC; the queue and offset are the retry topic's.
                let pulled_from = if m.property("RETRY_TOPIC").is_some() {
                    RETRY_TOPIC
                } else {
                    RETRY_SOURCE
                };
                l.processed
                    .entry((pulled_from.to_owned(), m.queue_id))
                    .or_default()
                    .insert(m.queue_offset);
                let Ok(counter) = parse_body(&run, &m.body) else {
                    continue;
                };
                l.uniq
                    .insert(m.msg_id().to_owned(), (counter, m.reconsume_times));
                if counter % 4 == 0 && l.failed_once.insert(counter) {
                    result = ConsumeResult::ReconsumeLater;
                }
            }
            result
        }
    });
    PushConsumer::start(config, &[(RETRY_SOURCE, "*")], l)
        .await
        .map_err(|e| format!("send-back consumer: {e}"))
}
