//! Load drivers: our `RemotingClient`, and a neutral pipelined client that speaks frames straight
//! over a socket (it uses only the sans-IO codec, none of the runtime), so a server can be measured
//! under a client that is not ours and the raw baseline under exactly the same client.

use crate::echo::{CODE_ECHO, CODE_ONEWAY, CODE_STATS};
use crate::report::{new_histogram, Report};
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use rmq_protocol::{next_opaque, RemotingCodec, RemotingCommand, SerializeType};
use rmq_remoting::{ClientConfig, RemotingClient, RemotingError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder};

/// Frames the neutral client coalesces into one write at most.
const WRITE_BATCH: usize = 64;

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One request at a time per connection, each awaited.
    Sync,
    /// `inflight` requests outstanding per connection.
    Async,
    /// Code 2 with the oneway flag, as fast as the connection takes them.
    Oneway,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::Oneway => "oneway",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(Mode::Sync),
            "async" => Ok(Mode::Async),
            "oneway" => Ok(Mode::Oneway),
            other => Err(format!("unknown mode {other:?} (sync, async, oneway)")),
        }
    }
}

/// Which client drives the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// rmq-remoting's `RemotingClient` (invoke_sync / invoke_async / invoke_oneway).
    Ours,
    /// A pipelined frame writer/reader over a plain socket.
    Neutral,
}

/// One load run's parameters.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// "host:port" of the server.
    pub addr: String,
    /// How requests are issued.
    pub mode: Mode,
    /// Body bytes per request.
    pub body: usize,
    /// Connections.
    pub conns: usize,
    /// Requests in flight per connection (async; oneway: concurrent senders for our client).
    pub inflight: usize,
    /// Measured window.
    pub duration: Duration,
    /// Unmeasured run before the window.
    pub warmup: Duration,
    /// Header encoding of the requests.
    pub serialize: SerializeType,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Request code instead of the convention's 1 (or 2 for oneway): e.g. 105 against a NameServer.
    pub code: Option<i32>,
    /// Ext fields instead of the default two (e.g. `topic=TopicTest` for code 105).
    pub ext: Option<Vec<(String, String)>>,
    /// Dial with TLS (our client only; the neutral client speaks plaintext).
    pub tls: Option<rmq_remoting::ClientTlsConfig>,
    /// Around oneway runs, ask the server for its counters ([`CODE_STATS`]) to check that it
    /// received everything. Off for servers that would count the question as traffic (raw TCP).
    pub query_stats: bool,
}

impl LoadSpec {
    /// "json" or "rocketmq".
    pub fn serialize_name(&self) -> &'static str {
        match self.serialize {
            SerializeType::Json => "json",
            SerializeType::RocketMq => "rocketmq",
        }
    }

    /// The request every operation sends (a fresh opaque is set per send): the mode's code, two
    /// small ext fields (like a typical routing header) and a body of `body` bytes.
    pub fn template(&self) -> RemotingCommand {
        let code = self.code.unwrap_or(if self.mode == Mode::Oneway {
            CODE_ONEWAY
        } else {
            CODE_ECHO
        });
        let mut cmd = RemotingCommand::request(code)
            .with_body(Bytes::from(vec![b'x'; self.body]))
            .with_serialize_type(self.serialize);
        match &self.ext {
            Some(ext) => {
                for (k, v) in ext {
                    cmd = cmd.with_ext(k.clone(), v.clone());
                }
            }
            None => cmd = cmd.with_ext("topic", "BenchTopic").with_ext("queueId", "0"),
        }
        if self.mode == Mode::Oneway {
            cmd.mark_oneway();
        }
        cmd
    }

    fn per_conn_window(&self) -> usize {
        match self.mode {
            Mode::Sync => 1,
            Mode::Async | Mode::Oneway => self.inflight.max(1),
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Could not connect.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Target.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Our client could not connect.
    #[error(transparent)]
    Remoting(#[from] RemotingError),
}

/// What one worker (or neutral connection) measured.
struct Tally {
    hist: Histogram<u64>,
    ops: u64,
    sent: u64,
    errors: u64,
    unanswered: u64,
    last: Instant,
}

impl Tally {
    fn new(start: Instant) -> Self {
        Tally {
            hist: new_histogram(),
            ops: 0,
            sent: 0,
            errors: 0,
            unanswered: 0,
            last: start,
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.hist.add(&other.hist);
        self.ops += other.ops;
        self.sent += other.sent;
        self.errors += other.errors;
        self.unanswered += other.unanswered;
        self.last = self.last.max(other.last);
    }
}

/// Measurement window shared by all workers of a run.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    end: Instant,
}

impl Window {
    /// Warm-up from `start`, then the measured duration.
    fn starting(start: Instant, spec: &LoadSpec) -> Self {
        Window {
            from: start + spec.warmup,
            end: start + spec.warmup + spec.duration,
        }
    }
}

/// Runs `spec` with `driver`. `progress` counts every completed operation (warm-up included) for
/// a live display. The run stops by itself after warm-up + duration (+ at most `timeout` to
/// collect the last answers).
pub async fn run(
    target: &str,
    spec: &LoadSpec,
    driver: Driver,
    progress: Arc<AtomicU64>,
) -> Result<Report, LoadError> {
    let before = if spec.mode == Mode::Oneway && spec.query_stats {
        query_stats(&spec.addr).await
    } else {
        None
    };
    let start = Instant::now();
    let total = match driver {
        Driver::Ours => run_ours(spec, progress).await?,
        Driver::Neutral => run_neutral(spec, progress).await?,
    };
    let window_start = start + spec.warmup;
    let secs = total
        .last
        .saturating_duration_since(window_start)
        .as_secs_f64()
        .max(spec.duration.as_secs_f64() * 0.5);
    let mut report = Report::new(
        target,
        spec,
        total.ops,
        secs,
        &total.hist,
        total.errors,
        total.unanswered,
    );
    report.sent = total.sent;
    if let Some(before) = before {
        // Wait (bounded) for the server to drain what was sent, then read its count.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let after = query_stats(&spec.addr).await;
            let got = after.map(|a| a.oneway.saturating_sub(before.oneway));
            if got.is_none() || got >= Some(total.sent) || Instant::now() >= deadline {
                report.server_received = got;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(report)
}

async fn run_ours(spec: &LoadSpec, progress: Arc<AtomicU64>) -> Result<Tally, LoadError> {
    let config = ClientConfig {
        async_permits: (spec.per_conn_window() * spec.conns).max(65535),
        tls: spec.tls.clone(),
        ..Default::default()
    };
    let mut clients = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        // One client per connection: a client keeps one connection per address.
        let client = RemotingClient::new(config.clone());
        client.connection(&spec.addr).await?;
        clients.push(client);
    }
    let start = Instant::now();
    let window = Window::starting(start, spec);
    let template = spec.template();
    let mut set = JoinSet::new();
    for client in &clients {
        let target = Arc::new(ChainTarget {
            client: client.clone(),
            addr: spec.addr.clone(),
            template: template.clone(),
            timeout: spec.timeout,
        });
        for _ in 0..spec.per_conn_window() {
            if spec.mode == Mode::Async {
                // Callback chains: each response's callback records it and sends the next
                // request, as a Java application on `invokeAsync` does; no task per request.
                let (done, finished) = tokio::sync::oneshot::channel();
                Chain::start(Box::new(Chain {
                    target: target.clone(),
                    rec: Recorder::new(window, progress.clone()),
                    done,
                }));
                let give_up = window.end + spec.timeout + Duration::from_secs(2);
                set.spawn(async move {
                    match tokio::time::timeout_at(give_up, finished).await {
                        Ok(Ok(tally)) => tally,
                        // Cannot happen while every request completes exactly once; count it.
                        _ => {
                            let mut lost = Tally::new(window.from);
                            lost.unanswered = 1;
                            lost
                        }
                    }
                });
                continue;
            }
            set.spawn(ours_worker(
                client.clone(),
                spec.clone(),
                template.clone(),
                window,
                progress.clone(),
            ));
        }
    }
    let total = merge_all(start, set).await;
    for c in &clients {
        c.shutdown();
    }
    Ok(total)
}

async fn ours_worker(
    client: RemotingClient,
    spec: LoadSpec,
    template: RemotingCommand,
    window: Window,
    progress: Arc<AtomicU64>,
) -> Tally {
    let mut rec = Recorder::new(window, progress);
    while rec.begin < window.end {
        let mut req = template.clone();
        req.opaque = next_opaque();
        let ok = match spec.mode {
            Mode::Oneway => client
                .invoke_oneway(&spec.addr, req, spec.timeout)
                .await
                .is_ok(),
            Mode::Sync => {
                matches!(client.invoke_sync(&spec.addr, req, spec.timeout).await, Ok(r) if r.code == 0)
            }
            Mode::Async => {
                matches!(client.invoke_async(&spec.addr, req, spec.timeout).await, Ok(r) if r.code == 0)
            }
        };
        rec.record(ok);
    }
    rec.finish()
}

/// One sequence of operations' bookkeeping: one clock read per operation (its end is the next
/// one's start) and the shared progress counter touched every 64 operations, so the load
/// generator's own cost stays small next to what it measures.
struct Recorder {
    tally: Tally,
    window: Window,
    progress: Arc<AtomicU64>,
    unreported: u64,
    /// When the current operation started.
    begin: Instant,
}

impl Recorder {
    fn new(window: Window, progress: Arc<AtomicU64>) -> Self {
        Recorder {
            tally: Tally::new(window.from),
            window,
            progress,
            unreported: 0,
            begin: Instant::now(),
        }
    }

    /// Counts the operation that started at `self.begin` and ends now; the next one starts now.
    fn record(&mut self, ok: bool) {
        let done = Instant::now();
        let t = &mut self.tally;
        t.sent += 1;
        self.unreported += 1;
        if self.unreported == 64 {
            self.progress.fetch_add(64, Ordering::Relaxed);
            self.unreported = 0;
        }
        if self.begin >= self.window.from {
            if ok {
                t.ops += 1;
                let _ = t.hist.record((done - self.begin).as_nanos().max(1) as u64);
            } else {
                t.errors += 1;
            }
            t.last = done;
        }
        self.begin = done;
    }

    fn finish(self) -> Tally {
        self.progress.fetch_add(self.unreported, Ordering::Relaxed);
        self.tally
    }
}

/// One chain of requests in flight through [`RemotingClient::invoke_async_callback`]: always
/// exactly one outstanding, the next sent from the previous one's callback.
struct Chain {
    target: Arc<ChainTarget>,
    rec: Recorder,
    done: tokio::sync::oneshot::Sender<Tally>,
}

/// What every chain of a connection sends, and where (shared: one reference count per request
/// instead of copying the address).
struct ChainTarget {
    client: RemotingClient,
    addr: String,
    template: RemotingCommand,
    timeout: Duration,
}

impl Chain {
    /// Sends the chain's next request; its callback carries the chain on.
    fn start(chain: Box<Chain>) {
        let target = chain.target.clone();
        let mut req = target.template.clone();
        req.opaque = next_opaque();
        let (client, addr, timeout) = (&target.client, &target.addr, target.timeout);
        client.invoke_async_callback(addr, req, timeout, move |outcome| chain.answered(outcome));
    }

    /// Records one outcome, then sends the next request or, once the window has closed, hands
    /// the tally over.
    fn answered(mut self: Box<Self>, outcome: Result<RemotingCommand, RemotingError>) {
        let ok = matches!(&outcome, Ok(r) if r.code == 0);
        self.rec.record(ok);
        if self.rec.begin >= self.rec.window.end {
            let _ = self.done.send(self.rec.finish());
        } else if ok {
            Chain::start(self);
        } else {
            // An error may have been delivered before `invoke_async_callback` returned: go on
            // from a task so that a dead connection cannot recurse or spin this callback.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Chain::start(self)
            });
        }
    }
}

async fn run_neutral(spec: &LoadSpec, progress: Arc<AtomicU64>) -> Result<Tally, LoadError> {
    if spec.tls.is_some() {
        return Err(LoadError::Connect {
            addr: spec.addr.clone(),
            source: std::io::Error::other(
                "the neutral client speaks plaintext only; drop --neutral for TLS",
            ),
        });
    }
    let mut streams = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        let stream = TcpStream::connect(&spec.addr)
            .await
            .map_err(|source| LoadError::Connect {
                addr: spec.addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        streams.push(stream);
    }
    let start = Instant::now();
    let window = Window::starting(start, spec);
    let template = spec.template();
    let mut set = JoinSet::new();
    for stream in streams {
        set.spawn(neutral_conn(
            stream,
            spec.clone(),
            template.clone(),
            window,
            progress.clone(),
        ));
    }
    Ok(merge_all(start, set).await)
}

/// Waits for every worker and adds up what they measured.
async fn merge_all(start: Instant, mut set: JoinSet<Tally>) -> Tally {
    let mut total = Tally::new(start);
    while let Some(t) = set.join_next().await {
        if let Ok(t) = t {
            total.merge(t);
        }
    }
    total
}

/// One neutral connection: a writer keeps `window` requests outstanding (coalescing up to
/// [`WRITE_BATCH`] frames per write), a reader matches answers by opaque.
async fn neutral_conn(
    stream: TcpStream,
    spec: LoadSpec,
    template: RemotingCommand,
    window: Window,
    progress: Arc<AtomicU64>,
) -> Tally {
    let (rd, wr) = stream.into_split();
    let shared = NeutralShared {
        slots: Arc::new(Semaphore::new(spec.per_conn_window())),
        pending: Arc::default(),
        writer_done: Arc::new(AtomicBool::new(false)),
        progress,
    };
    let writer = tokio::spawn(neutral_write(
        wr,
        spec.mode == Mode::Oneway,
        template,
        window,
        shared.clone(),
    ));
    let mut t = if spec.mode == Mode::Oneway {
        Tally::new(window.from)
    } else {
        neutral_read(rd, &spec, window, &shared).await
    };
    let wt = writer.await.unwrap_or_else(|_| Tally::new(window.from));
    t.merge(wt);
    t.unanswered = shared
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len() as u64;
    t
}

/// What a neutral connection's writer and reader share: the in-flight window, the send instant
/// of each pending opaque, whether the writer is done, and the progress counter.
#[derive(Clone)]
struct NeutralShared {
    slots: Arc<Semaphore>,
    pending: Arc<Mutex<HashMap<i32, Instant>>>,
    writer_done: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
}

/// The neutral client's writer: frames from `template` with fresh opaques, as many as the window
/// allows, written in batches until the window ends.
async fn neutral_write(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    oneway: bool,
    template: RemotingCommand,
    window: Window,
    shared: NeutralShared,
) -> Tally {
    let NeutralShared {
        slots,
        pending,
        writer_done: done,
        progress,
    } = shared;
    let mut t = Tally::new(window.from);
    let mut codec = RemotingCodec::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut opaque: i32 = 0;
    loop {
        let mut n = if oneway {
            WRITE_BATCH
        } else {
            match tokio::time::timeout_at(window.end, slots.acquire()).await {
                Ok(Ok(p)) => {
                    p.forget();
                    1
                }
                _ => break,
            }
        };
        while !oneway && n < WRITE_BATCH {
            match slots.try_acquire() {
                Ok(p) => {
                    p.forget();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        let begin = Instant::now();
        if begin >= window.end {
            break;
        }
        {
            let mut map = pending.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..n {
                opaque = opaque.wrapping_add(1);
                let mut cmd = template.clone();
                cmd.opaque = opaque;
                if codec.encode(&cmd, &mut buf).is_err() {
                    continue;
                }
                if !oneway {
                    map.insert(opaque, begin);
                }
            }
        }
        if wr.write_all(&buf.split()).await.is_err() {
            t.errors += n as u64;
            break;
        }
        t.sent += n as u64;
        if oneway {
            let done = Instant::now();
            progress.fetch_add(n as u64, Ordering::Relaxed);
            if begin >= window.from {
                t.ops += n as u64;
                let per = ((done - begin).as_nanos() as u64 / n as u64).max(1);
                let _ = t.hist.record_n(per, n as u64);
                t.last = done;
            }
        }
    }
    done.store(true, Ordering::Release);
    t
}

/// The neutral client's reader: matches responses to pending opaques and records latencies.
async fn neutral_read(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    spec: &LoadSpec,
    window: Window,
    shared: &NeutralShared,
) -> Tally {
    let NeutralShared {
        slots,
        pending,
        writer_done,
        progress,
    } = shared;
    let mut t = Tally::new(window.from);
    let mut codec = RemotingCodec::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let give_up = window.end + spec.timeout;
    'read: loop {
        if writer_done.load(Ordering::Acquire)
            && pending.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
        {
            break;
        }
        // Re-check the writer at least every 50 ms once the window is over.
        let wake = if Instant::now() >= window.end {
            (Instant::now() + Duration::from_millis(50)).min(give_up)
        } else {
            window.end
        };
        if Instant::now() >= give_up {
            break;
        }
        let n = match tokio::time::timeout_at(wake, rd.read_buf(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        let _ = n;
        let done = Instant::now();
        let mut answered = 0;
        loop {
            let cmd = match codec.decode(&mut buf) {
                Ok(Some(cmd)) => cmd,
                Ok(None) => break,
                Err(_) => break 'read,
            };
            let sent_at = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&cmd.opaque);
            let Some(begin) = sent_at else { continue };
            answered += 1;
            if begin >= window.from {
                if cmd.is_response() && cmd.code != 0 {
                    t.errors += 1;
                } else {
                    t.ops += 1;
                    let _ = t.hist.record((done - begin).as_nanos().max(1) as u64);
                }
                t.last = done;
            }
        }
        progress.fetch_add(answered, Ordering::Relaxed);
        slots.add_permits(answered as usize);
    }
    t
}

/// The bench server's counters, from a [`CODE_STATS`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// Echo requests answered.
    pub echoed: u64,
    /// Oneway requests received.
    pub oneway: u64,
    /// Open connections.
    pub connections: u64,
}

/// Asks `addr` for its counters; `None` if it does not implement [`CODE_STATS`] (a Java server).
pub async fn query_stats(addr: &str) -> Option<ServerStats> {
    let client = RemotingClient::new(ClientConfig::default());
    let resp = client
        .invoke_sync(
            addr,
            RemotingCommand::request(CODE_STATS),
            Duration::from_secs(2),
        )
        .await;
    client.shutdown();
    let resp = resp.ok().filter(|r| r.code == 0)?;
    let field = |k: &str| resp.ext(k).and_then(|v| v.parse::<u64>().ok());
    Some(ServerStats {
        echoed: field("echoed")?,
        oneway: field("oneway")?,
        connections: field("connections")?,
    })
}
