//! Inbound request dispatch (spec §3.1): processor lookup, flow control, hooks, the reply.

use crate::connection::{ConnectionHandle, RequestBytes, RequestSink};
use crate::hook::{HookError, RpcHook};
use crate::processor::{Admission, ProcessorRegistry, Registered, RequestContext};
use futures_util::FutureExt;
use rmq_protocol::codes::response;
use rmq_protocol::{LanguageCode, MqVersion, RemotingCommand};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// Server-wide shutdown state seen by every connection's dispatcher.
#[derive(Default)]
pub(crate) struct ShutdownState {
    pub(crate) going_away: AtomicBool,
    /// Set when a graceful shutdown starts waiting for the requests in flight: requests that
    /// arrive from then on are answered SYSTEM_BUSY without being processed, so nothing is
    /// done (a message stored) whose answer the closing connections could lose.
    draining: AtomicBool,
    inflight: AtomicUsize,
    drained: Notify,
}

impl ShutdownState {
    pub(crate) fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    /// Stops processing new requests (see `draining`), then waits until no request is being
    /// processed.
    pub(crate) async fn drain(&self) {
        // SeqCst with the request side's increment-then-check: a request either counts as in
        // flight before this, and is waited for, or sees the flag and is refused.
        self.draining.store(true, Ordering::SeqCst);
        self.wait_drained().await;
    }

    /// Waits until no request is being processed.
    pub(crate) async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            if self.inflight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a request as in flight until dropped (after its reply was queued).
struct InflightGuard(Arc<ShutdownState>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// What a connection needs to answer requests: processors, hooks, identity, shutdown state.
pub(crate) struct Dispatcher {
    pub(crate) registry: Arc<ProcessorRegistry>,
    pub(crate) hooks: Arc<[Arc<dyn RpcHook>]>,
    pub(crate) language: LanguageCode,
    pub(crate) version: i32,
    pub(crate) shutdown: Arc<ShutdownState>,
}

/// Everything a request carries to its reply.
struct Reply {
    conn: ConnectionHandle,
    opaque: i32,
    oneway: bool,
    serialize_type: rmq_protocol::SerializeType,
    language: LanguageCode,
    version: i32,
}

impl Reply {
    /// Writes the response unless the request was oneway (5.x: oneway requests are never answered).
    async fn send(&self, resp: Option<RemotingCommand>) {
        let Some(mut resp) = resp else { return };
        if self.oneway {
            return;
        }
        resp.opaque = self.opaque;
        resp.mark_response();
        // Mirror the request's header type: third-party clients cannot read ROCKETMQ headers.
        resp.serialize_type = self.serialize_type;
        resp.language = self.language;
        resp.version = self.version;
        if let Err(e) = self.conn.send(resp).await {
            tracing::debug!(peer = self.conn.peer(), opaque = self.opaque, error = %e, "reply not written");
        }
    }

    async fn error(&self, code: i32, remark: &str) {
        self.send(Some(RemotingCommand::response(code, Some(remark))))
            .await
    }
}

impl RequestSink for Dispatcher {
    /// Handles one request. Returns once the request is either answered or handed to its executor.
    /// `permit` (the connection's in-flight slot) is held until the reply is queued; `bytes` (the
    /// request's share of the byte budgets) and the executor slot only until it is processed, so
    /// that a reply waiting for room in a slow peer's write queue holds nothing other
    /// connections need.
    async fn dispatch(
        self: &Arc<Self>,
        request: RemotingCommand,
        conn: &ConnectionHandle,
        permit: OwnedSemaphorePermit,
        bytes: RequestBytes,
    ) {
        let reply = Reply {
            conn: conn.clone(),
            opaque: request.opaque,
            oneway: request.is_oneway(),
            serialize_type: request.serialize_type,
            language: self.language,
            version: self.version,
        };
        let Some(entry) = self.registry.lookup(request.code) else {
            reply
                .error(
                    response::REQUEST_CODE_NOT_SUPPORTED,
                    &response::not_supported_remark(request.code),
                )
                .await;
            return;
        };
        if self.shutdown.going_away.load(Ordering::Acquire) && request.version > MqVersion::V5_3_1 {
            reply
                .error(response::GO_AWAY, response::GO_AWAY_REMARK)
                .await;
            return;
        }
        if entry.processor.reject_request() {
            reply
                .error(response::SYSTEM_BUSY, response::REJECT_REQUEST_REMARK)
                .await;
            return;
        }
        let Some(admission) = entry.try_admit() else {
            reply
                .error(response::SYSTEM_BUSY, response::OVERLOAD_REMARK)
                .await;
            return;
        };
        self.shutdown.inflight.fetch_add(1, Ordering::SeqCst);
        let inflight = InflightGuard(self.shutdown.clone());
        if self.shutdown.draining.load(Ordering::SeqCst) {
            reply
                .error(
                    response::SYSTEM_BUSY,
                    "[SHUTTING_DOWN] the server is stopping; the request was not processed",
                )
                .await;
            drop((inflight, admission, bytes, permit));
            return;
        }
        let admitted = Admitted {
            admission,
            bytes,
            inflight,
            permit,
        };
        if entry.executor.config.inline {
            self.run_inline(entry, conn, request, reply, admitted).await;
        } else {
            self.spawn_run(entry, conn, request, reply, admitted).await;
        }
    }
}

/// What an admitted request holds, given back in two steps: the executor admission and the
/// request's bytes once it is processed, the in-flight counts once its reply is queued.
struct Admitted {
    admission: Admission,
    bytes: RequestBytes,
    inflight: InflightGuard,
    permit: OwnedSemaphorePermit,
}

impl Dispatcher {
    /// Processes a request of an inline executor straight in the read loop: no task, and the
    /// request is not moved into one.
    async fn run_inline(
        &self,
        entry: &Registered,
        conn: &ConnectionHandle,
        request: RemotingCommand,
        reply: Reply,
        admitted: Admitted,
    ) {
        let ctx = RequestContext {
            peer: conn.peer_shared(),
            connection: conn.clone(),
            held: Arc::new(std::sync::Mutex::new(None)),
            until_replied: Arc::default(),
        };
        let resp = self.run_caught(entry, &ctx, request).await;
        drop((admitted.admission, admitted.bytes));
        reply.send(resp).await;
        drop((ctx, admitted.inflight, admitted.permit));
    }

    /// Processes a request on a task of its own, once its executor has a slot for it (on the
    /// blocking pool for a blocking executor).
    ///
    /// The task's future is polled once here first: most requests (a send under ASYNC_FLUSH, a
    /// pull that finds messages) finish without waiting on anything, and then need no task at
    /// all (a spawn was 6 % of a broker's CPU at 65k sends/s). One that waits (an executor
    /// slot, the store's lock, a group commit, a held pull, room in the write queue) returns
    /// `Pending` and goes on as a task from where it stopped, so the connection's next
    /// requests are read meanwhile as before.
    async fn spawn_run(
        self: &Arc<Self>,
        entry: &Arc<Registered>,
        conn: &ConnectionHandle,
        request: RemotingCommand,
        reply: Reply,
        admitted: Admitted,
    ) {
        let this = self.clone();
        let entry = entry.clone();
        let conn = conn.clone();
        let config = entry.executor.config;
        let mut task = Box::pin(async move {
            // A request still waiting for a slot when its connection closes is dropped: nobody
            // can read its answer, and a closed client's backlog must not take the slots and
            // the executor's bound from live ones. Oneway requests have no answer to read and
            // run anyway (a client may send one and close at once).
            let waiting_for_slot = entry.executor.slots().acquire_owned();
            let slot = tokio::select! {
                slot = waiting_for_slot => slot.expect("executor semaphore never closed"),
                _ = conn.closed(), if !reply.oneway => {
                    drop(admitted);
                    return;
                }
            };
            // The slot, the admission and the byte budget go with the context: a processor
            // that parks (waits on an event) gives them back early.
            let ctx = RequestContext {
                peer: conn.peer_shared(),
                connection: conn,
                held: Arc::new(std::sync::Mutex::new(Some(Box::new((
                    slot,
                    admitted.admission,
                    admitted.bytes,
                ))))),
                until_replied: Arc::default(),
            };
            let resp = if config.blocking {
                this.run_blocking(entry, ctx.clone(), request).await
            } else {
                this.run_caught(&entry, &ctx, request).await
            };
            ctx.park();
            reply.send(resp).await;
            // What the processor kept until its reply was queued goes now.
            drop((ctx, admitted.inflight, admitted.permit));
        });
        // Whatever the first poll registered to be woken by wakes this connection's read task
        // spuriously at worst: the spawned task's own first poll registers again.
        let first = std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await;
        if first.is_pending() {
            tokio::spawn(task);
        }
    }

    /// Runs a request on the blocking pool. The caller holds the executor slot already, so the
    /// pool only ever holds requests that run, never ones waiting for a slot.
    async fn run_blocking(
        self: Arc<Self>,
        entry: Arc<Registered>,
        ctx: RequestContext,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let handle = tokio::runtime::Handle::current();
        let code = request.code;
        let ran = tokio::task::spawn_blocking(move || {
            handle.block_on(async move { self.run_caught(&entry, &ctx, request).await })
        })
        .await;
        ran.unwrap_or_else(|e| Some(panicked_reply(code, &e.to_string())))
    }

    /// [`Dispatcher::run`] with panics caught: a panicking processor or hook fails its request
    /// with SYSTEM_ERROR naming the request code, never the connection or the process (Java
    /// answers a processor's exception the same way).
    async fn run_caught(
        &self,
        entry: &Registered,
        ctx: &RequestContext,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let code = request.code;
        match std::panic::AssertUnwindSafe(self.run(entry, ctx, request))
            .catch_unwind()
            .await
        {
            Ok(resp) => resp,
            Err(panic) => {
                let msg = crate::panic_message(&*panic);
                tracing::error!(peer = %ctx.peer, code, panic = %msg, "request processor panicked");
                Some(panicked_reply(code, &msg))
            }
        }
    }

    /// Hooks around the processor, with Java 5.x semantics: a failing before-hook skips the
    /// processor, after-hooks still run, then the failure is answered with SYSTEM_ERROR; an abort
    /// answers its own code and message at once; a processor error is SYSTEM_ERROR.
    async fn run(
        &self,
        entry: &Registered,
        ctx: &RequestContext,
        mut request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let peer = &*ctx.peer;
        let mut failure: Option<String> = None;
        for hook in self.hooks.iter() {
            match hook.before_request(peer, &mut request) {
                Ok(()) => {}
                Err(HookError::Abort { code, message }) => {
                    return Some(RemotingCommand::response(code, Some(&message)))
                }
                Err(HookError::Failed(msg)) => {
                    failure = Some(msg);
                    break;
                }
            }
        }
        // The request is needed after processing only by after-hooks; clone it only then.
        let kept = (!self.hooks.is_empty()).then(|| request.clone());
        let mut resp = match failure {
            Some(_) => Some(RemotingCommand::response(response::SYSTEM_ERROR, None)),
            None => match entry.processor.process(ctx, request).await {
                Ok(r) => r,
                Err(e) => {
                    let remark = if e.message.is_empty() {
                        "processor failed".to_owned()
                    } else {
                        e.message
                    };
                    return Some(RemotingCommand::response(e.code, Some(&remark)));
                }
            },
        };
        if let (Some(kept), Some(r)) = (&kept, resp.as_mut()) {
            for hook in self.hooks.iter() {
                match hook.after_response(peer, kept, r) {
                    Ok(()) => {}
                    Err(HookError::Abort { code, message }) => {
                        return Some(RemotingCommand::response(code, Some(&message)))
                    }
                    Err(HookError::Failed(msg)) => failure = Some(msg),
                }
            }
        }
        if let Some(msg) = failure {
            let remark = if msg.is_empty() {
                "rpc hook failed".to_owned()
            } else {
                msg
            };
            return Some(RemotingCommand::response(
                response::SYSTEM_ERROR,
                Some(&remark),
            ));
        }
        resp
    }
}

/// SYSTEM_ERROR for a request whose processing panicked.
fn panicked_reply(code: i32, msg: &str) -> RemotingCommand {
    RemotingCommand::response(
        response::SYSTEM_ERROR,
        Some(&format!("processing request code {code} panicked: {msg}")),
    )
}
