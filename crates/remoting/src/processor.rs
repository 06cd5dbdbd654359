//! Processor registry: request code -> processor + the executor that runs it.

use crate::connection::ConnectionHandle;
use async_trait::async_trait;
use rmq_protocol::RemotingCommand;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What a processor sees besides the request.
#[derive(Clone)]
pub struct RequestContext {
    /// Remote address "ip:port".
    pub peer: Arc<str>,
    /// The connection the request came on; a processor may invoke the peer back through it.
    pub connection: ConnectionHandle,
    /// What the request holds of its executor while it runs (see [`RequestContext::park`]).
    pub(crate) held: Arc<std::sync::Mutex<Option<Box<dyn Send>>>>,
    /// What the processor keeps until its reply is queued (see
    /// [`RequestContext::hold_until_replied`]).
    pub(crate) until_replied: Arc<std::sync::Mutex<Vec<Box<dyn Send>>>>,
}

impl RequestContext {
    /// Gives back what the request holds of its executor (its slot, its place in the
    /// executor's bound, its share of the request byte budgets) while it waits for an event,
    /// not for work: a long-polling pull parks until its queue grows (Java's
    /// PullRequestHoldService does the same by returning and answering later). Parked
    /// requests then never crowd out live ones. The connection's own in-flight limit still
    /// counts it, so one connection cannot park more than that. Idempotent.
    pub fn park(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(held);
    }

    /// Keeps `guard` (a permit of a budget) until the reply is queued on the connection, not
    /// just until the processor returns: a budget of replies being built *or waiting for room
    /// in a slow reader's write queue* (the broker's pull answers) then bounds their bytes.
    pub fn hold_until_replied(&self, guard: impl Send + 'static) {
        self.until_replied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(guard));
    }

    /// Whether [`RequestContext::park`] was called.
    pub fn is_parked(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

/// Why a processor failed: the peer gets `code` (SYSTEM_ERROR, 1, unless the processor chose
/// another) with the message as remark.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProcessorError {
    /// The response code the peer gets.
    pub code: i32,
    /// The remark.
    pub message: String,
}

impl ProcessorError {
    /// SYSTEM_ERROR with a message from anything printable.
    pub fn new(msg: impl std::fmt::Display) -> Self {
        ProcessorError {
            code: rmq_protocol::codes::response::SYSTEM_ERROR,
            message: msg.to_string(),
        }
    }

    /// A refusal with its own response code (e.g. TOPIC_NOT_EXIST, NO_PERMISSION).
    pub fn with_code(code: i32, msg: impl std::fmt::Display) -> Self {
        ProcessorError {
            code,
            message: msg.to_string(),
        }
    }
}

impl From<rmq_protocol::ProtocolError> for ProcessorError {
    fn from(e: rmq_protocol::ProtocolError) -> Self {
        ProcessorError::new(e)
    }
}

/// Handles requests of the codes it is registered for.
///
/// Return `Ok(Some(response))` to answer (the runtime sets opaque, the response flag and the
/// serialize type), `Ok(None)` to send nothing, `Err` for SYSTEM_ERROR. Oneway requests are never
/// answered whatever this returns.
#[async_trait]
pub trait RequestProcessor: Send + Sync + 'static {
    /// Processes one request.
    async fn process(
        &self,
        ctx: &RequestContext,
        request: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError>;

    /// `true` makes the runtime answer `[REJECTREQUEST]` without running the processor (flow control).
    fn reject_request(&self) -> bool {
        false
    }
}

/// How a processor's requests are run.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorConfig {
    /// Requests processed at once.
    pub concurrency: usize,
    /// Requests allowed to wait for a slot; more get `[OVERLOAD]`.
    pub queue_capacity: usize,
    /// Run on tokio's blocking pool: for CPU-heavy or blocking processors.
    pub blocking: bool,
    /// Run inside the connection's read loop, with no task spawn: for processors that are cheap
    /// and never wait (echo, in-memory lookups). Requests of one connection then run one at a time.
    pub inline: bool,
}

impl ExecutorConfig {
    /// A bounded executor of `concurrency` slots and `queue_capacity` waiting requests.
    pub fn new(concurrency: usize, queue_capacity: usize) -> Self {
        ExecutorConfig {
            concurrency: concurrency.max(1),
            queue_capacity,
            blocking: false,
            inline: false,
        }
    }

    /// Same, on the blocking pool.
    pub fn blocking(concurrency: usize, queue_capacity: usize) -> Self {
        ExecutorConfig {
            blocking: true,
            ..Self::new(concurrency, queue_capacity)
        }
    }

    /// Runs requests in the read loop (see the `inline` field).
    pub fn inline() -> Self {
        // No queue to bound: each connection runs its own requests one after another, and the
        // connection's in-flight limit is the bound.
        ExecutorConfig {
            inline: true,
            ..Self::new(1, usize::MAX / 2)
        }
    }
}

/// A bounded executor: `concurrency` permits, plus a count of admitted requests checked against
/// `concurrency + queue_capacity` (the Java ThreadPoolExecutor with a bounded queue).
pub(crate) struct Executor {
    pub(crate) config: ExecutorConfig,
    slots: Arc<Semaphore>,
    admitted: AtomicUsize,
}

/// Proof that a request was admitted; frees its place when dropped.
pub(crate) struct Admission {
    entry: Arc<Registered>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.entry.executor.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Executor {
    fn new(config: ExecutorConfig) -> Self {
        Executor {
            config,
            slots: Arc::new(Semaphore::new(config.concurrency)),
            admitted: AtomicUsize::new(0),
        }
    }

    pub(crate) fn slots(&self) -> Arc<Semaphore> {
        self.slots.clone()
    }
}

/// One registered processor and its executor.
pub(crate) struct Registered {
    pub(crate) processor: Arc<dyn RequestProcessor>,
    pub(crate) executor: Executor,
}

impl Registered {
    /// Admits a request unless running + waiting requests are at the executor's bound.
    pub(crate) fn try_admit(self: &Arc<Self>) -> Option<Admission> {
        let ex = &self.executor;
        let limit = ex
            .config
            .concurrency
            .saturating_add(ex.config.queue_capacity);
        let mut cur = ex.admitted.load(Ordering::Acquire);
        loop {
            if cur >= limit {
                return None;
            }
            match ex.admitted.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Admission {
                        entry: self.clone(),
                    })
                }
                Err(now) => cur = now,
            }
        }
    }
}

/// Maps request codes to processors; unregistered codes go to the default processor, or get
/// REQUEST_CODE_NOT_SUPPORTED if there is none. Built before the server or client starts.
#[derive(Default)]
pub struct ProcessorRegistry {
    table: HashMap<i32, Arc<Registered>>,
    default: Option<Arc<Registered>>,
}

impl ProcessorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `processor` for `code` with its own executor.
    pub fn register(
        &mut self,
        code: i32,
        processor: Arc<dyn RequestProcessor>,
        executor: ExecutorConfig,
    ) -> &mut Self {
        self.table.insert(
            code,
            Arc::new(Registered {
                processor,
                executor: Executor::new(executor),
            }),
        );
        self
    }

    /// Registers `processor` for several codes sharing one executor (like Java's shared pools).
    pub fn register_many(
        &mut self,
        codes: &[i32],
        processor: Arc<dyn RequestProcessor>,
        executor: ExecutorConfig,
    ) -> &mut Self {
        let entry = Arc::new(Registered {
            processor,
            executor: Executor::new(executor),
        });
        for code in codes {
            self.table.insert(*code, entry.clone());
        }
        self
    }

    /// Sets the processor for codes nobody registered.
    pub fn register_default(
        &mut self,
        processor: Arc<dyn RequestProcessor>,
        executor: ExecutorConfig,
    ) -> &mut Self {
        self.default = Some(Arc::new(Registered {
            processor,
            executor: Executor::new(executor),
        }));
        self
    }

    pub(crate) fn lookup(&self, code: i32) -> Option<&Arc<Registered>> {
        self.table.get(&code).or(self.default.as_ref())
    }
}

/// What both builders collect besides their config: processors, hooks (in registration order, the
/// same hook object once) and an optional channel-event listener.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) registry: ProcessorRegistry,
    pub(crate) hooks: Vec<Arc<dyn crate::hook::RpcHook>>,
    pub(crate) listener: Option<Arc<dyn crate::event::ChannelEventListener>>,
}

impl Handlers {
    pub(crate) fn add_hook(&mut self, hook: Arc<dyn crate::hook::RpcHook>) {
        if !self.hooks.iter().any(|h| Arc::ptr_eq(h, &hook)) {
            self.hooks.push(hook);
        }
    }
}
