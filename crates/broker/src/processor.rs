//! The broker's request table (spec §2.0): which codes run on which executor, and the
//! dispatch to the handler modules. Unknown codes get Java's REQUEST_CODE_NOT_SUPPORTED.

use crate::config::BrokerConfig;
use crate::reply::fail;
use crate::{admin, manage, pull, send, BrokerState};
use async_trait::async_trait;
use rmq_protocol::codes::{request as rc, response};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{
    ChannelEvent, ChannelEventListener, ExecutorConfig, ProcessorError, ProcessorRegistry,
    RequestContext, RequestProcessor,
};
use std::sync::{Arc, OnceLock};

/// The one processor of the broker; the state arrives once the server is bound.
pub struct BrokerProcessor(pub Arc<OnceLock<Arc<BrokerState>>>);

/// Channel events before the state exists are of no interest (no client registered yet).
pub struct LateListener(pub Arc<OnceLock<Arc<BrokerState>>>);

impl ChannelEventListener for LateListener {
    fn on_event(&self, event: ChannelEvent) {
        let Some(state) = self.0.get() else { return };
        match event {
            ChannelEvent::Close(c) | ChannelEvent::Exception(c, _) | ChannelEvent::Idle(c) => {
                state.connection_closed(c.id);
                for group in state.clients.channel_closed(c.id) {
                    state.notify_consumer_ids_changed(&group);
                }
            }
            _ => {}
        }
    }
}

/// Registers the executors. Sends and pulls are async all the way down (a held pull or a put
/// waiting for its fsync is a parked future, not a thread), so their executors are wide; what
/// bounds a client is the runtime's per-connection in-flight limit and the broker's share of
/// the store queue per connection (`STORE_SHARE`), never a slot other clients need.
pub fn register(registry: &mut ProcessorRegistry, p: Arc<BrokerProcessor>, c: &BrokerConfig) {
    registry.register_many(
        &[
            rc::SEND_MESSAGE,
            rc::SEND_MESSAGE_V2,
            rc::SEND_BATCH_MESSAGE,
            rc::CONSUMER_SEND_MSG_BACK,
        ],
        p.clone(),
        ExecutorConfig::new(
            c.send_message_thread_pool_nums,
            c.send_thread_pool_queue_capacity,
        ),
    );
    registry.register_many(
        &[rc::PULL_MESSAGE, rc::LITE_PULL_MESSAGE],
        p.clone(),
        ExecutorConfig::new(c.pull_thread_pool_queue_capacity.max(1), 1000),
    );
    registry.register_many(
        &[
            rc::HEART_BEAT,
            rc::UNREGISTER_CLIENT,
            rc::GET_CONSUMER_LIST_BY_GROUP,
            rc::QUERY_CONSUMER_OFFSET,
            rc::UPDATE_CONSUMER_OFFSET,
        ],
        p.clone(),
        ExecutorConfig::new(32, 50_000),
    );
    registry.register_default(p, ExecutorConfig::new(16, 10_000));
}

#[async_trait]
impl RequestProcessor for BrokerProcessor {
    async fn process(
        &self,
        ctx: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let Some(s) = self.0.get() else {
            return Ok(Some(fail(response::SYSTEM_BUSY, "broker starting")));
        };
        let started = std::time::Instant::now();
        let code = req.code;
        let resp = self.dispatch(s, ctx, req).await;
        let answered = match &resp {
            Ok(r) => r.code,
            Err(e) => e.code,
        };
        s.metrics
            .rpc(code, answered, started.elapsed().as_secs_f64() * 1000.0);
        resp.map(Some)
    }
}

impl BrokerProcessor {
    async fn dispatch(
        &self,
        s: &Arc<BrokerState>,
        ctx: &RequestContext,
        req: RemotingCommand,
    ) -> Result<RemotingCommand, ProcessorError> {
        let resp = match req.code {
            rc::SEND_MESSAGE | rc::SEND_MESSAGE_V2 | rc::SEND_BATCH_MESSAGE => {
                let _turn = s.store_turn(&ctx.connection).await;
                send::send(s, ctx, &req).await?
            }
            rc::CONSUMER_SEND_MSG_BACK => send::send_back(s, ctx, &req).await?,
            rc::PULL_MESSAGE | rc::LITE_PULL_MESSAGE => pull::pull(s, ctx, &req).await?,
            rc::HEART_BEAT => manage::heartbeat(s, ctx, &req).await?,
            rc::UNREGISTER_CLIENT => manage::unregister_client(s, ctx, &req)?,
            rc::GET_CONSUMER_LIST_BY_GROUP => manage::consumer_list(s, &req)?,
            rc::QUERY_CONSUMER_OFFSET => manage::query_offset(s, &req).await?,
            rc::UPDATE_CONSUMER_OFFSET => manage::update_offset(s, &req)?,
            rc::GET_MAX_OFFSET
            | rc::GET_MIN_OFFSET
            | rc::GET_EARLIEST_MSG_STORETIME
            | rc::SEARCH_OFFSET_BY_TIMESTAMP => manage::queue_offsets(s, &req).await?,
            rc::LOCK_BATCH_MQ => manage::lock(s, &req)?,
            rc::UNLOCK_BATCH_MQ => manage::unlock(s, &req)?,
            rc::CHECK_CLIENT_CONFIG => manage::check_client_config(s, &req)?,
            _ => admin::admin(s, ctx, &req).await?,
        };
        Ok(resp)
    }
}
