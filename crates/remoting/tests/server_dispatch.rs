//! Server behaviour over real sockets: replies, flow control, hooks, idle, events, shutdown.

mod support;

use async_trait::async_trait;
use rmq_protocol::codes::response;
use rmq_protocol::{RemotingCommand, SerializeType};
use rmq_remoting::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const T: Duration = Duration::from_secs(5);

/// Polls `cond` every few milliseconds until it holds or 5 s pass; its final value.
async fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cond()
}

#[tokio::test]
async fn replies_carry_request_opaque_flag_and_serialize_type() {
    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let mut raw = Raw::connect(server.local_addr()).await;
    for t in [SerializeType::Json, SerializeType::RocketMq] {
        let req = RemotingCommand::request(1)
            .with_body("ping")
            .with_ext("k", "v")
            .with_serialize_type(t);
        assert!(!req.is_response());
        raw.send(&req).await;
        let resp = raw.recv(T).await.expect("reply");
        assert_eq!(resp.opaque, req.opaque);
        assert!(resp.is_response());
        assert_eq!(
            resp.serialize_type, t,
            "reply mirrors the request's header type"
        );
        assert_eq!(&resp.body[..], b"ping");
        assert_eq!(resp.ext("k"), Some("v"));
        assert_eq!(resp.version, 479, "server's own version, not the request's");
    }
    server.shutdown_now();
}

#[tokio::test]
async fn unknown_code_gets_3_and_oneway_gets_nothing() {
    let (reg, echo) = echo_registry();
    let server = start(reg).await;
    let mut raw = Raw::connect(server.local_addr()).await;
    let req = RemotingCommand::request(999);
    raw.send(&req).await;
    let resp = raw.recv(T).await.unwrap();
    assert_eq!(resp.code, response::REQUEST_CODE_NOT_SUPPORTED);
    assert_eq!(
        resp.remark.as_deref(),
        Some(" request type 999 not supported")
    );
    // Oneway with an unknown code, and oneway with a known code: processed, never answered.
    raw.send(&RemotingCommand::oneway(999)).await;
    raw.send(&RemotingCommand::oneway(1).with_body("x")).await;
    assert!(raw.recv(Duration::from_millis(300)).await.is_none());
    assert_eq!(echo.seen.load(Ordering::SeqCst), 1);
    server.shutdown_now();
}

struct Rejecting;

#[async_trait]
impl RequestProcessor for Rejecting {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        unreachable!("rejected requests never reach the processor")
    }
    fn reject_request(&self) -> bool {
        true
    }
}

struct Failing;

#[async_trait]
impl RequestProcessor for Failing {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        if req.body.as_ref() == b"no such topic" {
            return Err(ProcessorError::with_code(
                response::TOPIC_NOT_EXIST,
                "topic[T] not exist",
            ));
        }
        Err(ProcessorError::new("disk on fire"))
    }
}

#[tokio::test]
async fn reject_overload_and_processor_error_replies() {
    let mut reg = ProcessorRegistry::new();
    reg.register(2, Arc::new(Rejecting), ExecutorConfig::new(1, 1));
    reg.register(
        3,
        Arc::new(Slow(Duration::from_millis(400))),
        ExecutorConfig::new(1, 0),
    );
    reg.register(4, Arc::new(Failing), ExecutorConfig::new(1, 1));
    let server = start(reg).await;
    let client = RemotingClient::new(ClientConfig::default());
    let addr = server.local_addr().to_string();

    let r = client
        .invoke_sync(&addr, RemotingCommand::request(2), T)
        .await
        .unwrap();
    assert_eq!(
        (r.code, r.remark.as_deref()),
        (
            2,
            Some("[REJECTREQUEST]system busy, start flow control for a while")
        )
    );

    // One slot, no queue: the first occupies it, the second is refused.
    let first = client.invoke_async(&addr, RemotingCommand::request(3), T);
    let first = tokio::spawn(first);
    assert!(eventually(|| server.inflight_requests() == 1).await);
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(3), T)
        .await
        .unwrap();
    assert_eq!(
        (r.code, r.remark.as_deref()),
        (
            2,
            Some("[OVERLOAD]system busy, start flow control for a while")
        )
    );
    assert_eq!(
        first.await.unwrap().unwrap().remark.as_deref(),
        Some("slow")
    );

    let r = client
        .invoke_sync(&addr, RemotingCommand::request(4), T)
        .await
        .unwrap();
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert_eq!(r.remark.as_deref(), Some("disk on fire"));
    // A processor error with its own code is answered with that code.
    let r = client
        .invoke_sync(
            &addr,
            RemotingCommand::request(4).with_body("no such topic"),
            T,
        )
        .await
        .unwrap();
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
    assert_eq!(r.remark.as_deref(), Some("topic[T] not exist"));
    server.shutdown_now();
}

struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    before: Option<HookError>,
}

impl RpcHook for Recorder {
    fn before_request(&self, peer: &str, request: &mut RemotingCommand) -> Result<(), HookError> {
        assert!(peer.starts_with("127.0.0.1:"), "hooks see the peer address");
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:before", self.name));
        request.ext_fields_mut().insert("seen_by", self.name);
        match &self.before {
            Some(e) if request.code == 5 || request.code == 6 => Err(e.clone()),
            _ => Ok(()),
        }
    }
    fn after_response(
        &self,
        _: &str,
        _: &RemotingCommand,
        response: &mut RemotingCommand,
    ) -> Result<(), HookError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:after", self.name));
        response
            .ext_fields_mut()
            .insert(format!("after_{}", self.name), "1");
        Ok(())
    }
}

#[tokio::test]
async fn hooks_run_in_order_and_can_abort_or_fail() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut reg, echo) = echo_registry();
    reg.register(5, echo.clone(), ExecutorConfig::new(1, 10));
    reg.register(6, echo.clone(), ExecutorConfig::new(1, 10));
    let first = Arc::new(Recorder {
        name: "a",
        log: log.clone(),
        before: None,
    });
    let second: Arc<dyn RpcHook> = Arc::new(Recorder {
        name: "b",
        log: log.clone(),
        before: Some(HookError::Abort {
            code: 16,
            message: "x".into(),
        }),
    });
    let server = ServerBuilder::new(local_config())
        .registry(reg)
        .hook(first.clone())
        .hook(first.clone()) // the same hook twice is ignored
        .hook(second)
        .bind()
        .await
        .unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    let addr = server.local_addr().to_string();

    let r = client
        .invoke_sync(&addr, RemotingCommand::request(1), T)
        .await
        .unwrap();
    assert_eq!(r.code, 0);
    assert_eq!(
        r.ext("seen_by"),
        Some("b"),
        "both before-hooks ran, in order, before the processor"
    );
    assert_eq!(r.ext("after_a"), Some("1"));
    assert_eq!(
        *log.lock().unwrap(),
        ["a:before", "b:before", "a:after", "b:after"]
    );

    log.lock().unwrap().clear();
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(5), T)
        .await
        .unwrap();
    assert_eq!(
        (r.code, r.remark.as_deref()),
        (16, Some("x")),
        "AbortProcessException semantics"
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["a:before", "b:before"],
        "abort skips processor and after-hooks"
    );
    assert_eq!(echo.seen.load(Ordering::SeqCst), 1);
    server.shutdown_now();

    // A hook that fails (not abort): SYSTEM_ERROR with its text, processor skipped, after-hooks run.
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut reg, echo) = echo_registry();
    reg.register(6, echo.clone(), ExecutorConfig::new(1, 10));
    let failing: Arc<dyn RpcHook> = Arc::new(Recorder {
        name: "f",
        log: log.clone(),
        before: Some(HookError::Failed("no acl".into())),
    });
    let server = ServerBuilder::new(local_config())
        .registry(reg)
        .hook(failing)
        .bind()
        .await
        .unwrap();
    let r = client
        .invoke_sync(
            &server.local_addr().to_string(),
            RemotingCommand::request(6),
            T,
        )
        .await
        .unwrap();
    assert_eq!((r.code, r.remark.as_deref()), (1, Some("no acl")));
    assert_eq!(
        echo.seen.load(Ordering::SeqCst),
        0,
        "processor side effects absent"
    );
    assert_eq!(*log.lock().unwrap(), ["f:before", "f:after"]);
    server.shutdown_now();
}

struct Events(Mutex<Vec<ChannelEvent>>);

impl ChannelEventListener for Events {
    fn on_event(&self, event: ChannelEvent) {
        self.0.lock().unwrap().push(event);
    }
}

#[tokio::test]
async fn idle_connections_close_and_events_are_delivered() {
    let events = Arc::new(Events(Mutex::new(Vec::new())));
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(300),
        ..local_config()
    };
    let (reg, _) = echo_registry();
    let server = ServerBuilder::new(config)
        .registry(reg)
        .event_listener(events.clone())
        .bind()
        .await
        .unwrap();
    let mut raw = Raw::connect(server.local_addr()).await;
    let started = std::time::Instant::now();
    assert!(
        raw.closed_within(Duration::from_secs(3)).await,
        "idle connection closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(eventually(|| events.0.lock().unwrap().len() >= 3).await);
    let seen = events.0.lock().unwrap().clone();
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e {
            ChannelEvent::Connect(_) => "connect",
            ChannelEvent::Idle(_) => "idle",
            ChannelEvent::Close(_) => "close",
            ChannelEvent::Exception(..) => "exception",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["connect", "idle", "close"]);

    // A malformed frame: Exception + Close for that connection only.
    let mut good = Raw::connect(server.local_addr()).await;
    let mut bad = Raw::connect(server.local_addr()).await;
    tokio::io::AsyncWriteExt::write_all(&mut bad.stream, &[0xFF, 0xFF, 0xFF, 0xFF])
        .await
        .unwrap();
    assert!(bad.closed_within(T).await);
    let req = RemotingCommand::request(1).with_body("still here");
    good.send(&req).await;
    assert_eq!(&good.recv(T).await.unwrap().body[..], b"still here");
    assert!(
        eventually(|| events.0.lock().unwrap().iter().any(
            |e| matches!(e, ChannelEvent::Exception(_, why) if why.contains("negative frame length"))
        ))
        .await
    );
    server.shutdown_now();
}

#[tokio::test]
async fn response_with_unknown_opaque_is_dropped_and_connection_kept() {
    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let mut raw = Raw::connect(server.local_addr()).await;
    let mut stray = RemotingCommand::response(0, None);
    stray.opaque = 123_456;
    raw.send(&stray).await;
    let req = RemotingCommand::request(1).with_body("after");
    raw.send(&req).await;
    let resp = raw.recv(T).await.expect("connection still served");
    assert_eq!(resp.opaque, req.opaque);
    server.shutdown_now();
}

#[tokio::test]
async fn pipelined_requests_from_a_slow_reader_all_get_replies() {
    // Small queues so back-pressure, not buffering, is what carries the load.
    let config = ServerConfig {
        write_queue_frames: 16,
        max_inflight_per_connection: 32,
        ..local_config()
    };
    let (reg, echo) = echo_registry();
    let server = ServerBuilder::new(config)
        .registry(reg)
        .bind()
        .await
        .unwrap();
    let raw = Raw::connect(server.local_addr()).await;
    let (mut rd, mut wr) = raw.stream.into_split();
    // 16 KiB replies, so that what the kernel's socket buffers can hold is a few hundred of
    // them at most and the bound below means something.
    const N: usize = 2_000;
    let body = vec![7u8; 16 * 1024];
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        for i in 0..N {
            let mut req = RemotingCommand::request(1).with_body(body.clone());
            req.opaque = i as i32;
            batch.extend(rmq_protocol::frame::encode_to_vec(&req).unwrap());
            if batch.len() > 256 * 1024 {
                tokio::io::AsyncWriteExt::write_all(&mut wr, &batch)
                    .await
                    .unwrap();
                batch.clear();
            }
        }
        tokio::io::AsyncWriteExt::write_all(&mut wr, &batch)
            .await
            .unwrap();
        wr
    });
    // Read nothing: the server must stop reading instead of queueing without bound. Wait until
    // it has stopped (the count holds still for 300 ms), then bound what it took in: 32 in
    // flight, 16 queued frames (64 KiB of them), and what the kernel's socket buffers hold in
    // both directions (8 MiB allowed: 512 replies).
    let mut processed_while_stalled = echo.seen.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut still_for = 0;
    while still_for < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = echo.seen.load(Ordering::SeqCst);
        still_for = if now == processed_while_stalled {
            still_for + 1
        } else {
            0
        };
        processed_while_stalled = now;
    }
    let bound = 32 + 16 + (8 << 20) / (16 * 1024);
    assert!(
        processed_while_stalled <= bound,
        "server kept reading a client that does not read: {processed_while_stalled} processed, bound {bound}"
    );
    let mut buf = bytes::BytesMut::new();
    let mut codec = rmq_protocol::RemotingCodec::default();
    let mut seen = vec![false; N];
    let mut got = 0;
    while got < N {
        use tokio_util::codec::Decoder;
        while let Some(resp) = codec.decode(&mut buf).unwrap() {
            let i = resp.opaque as usize;
            assert!(!seen[i], "duplicate reply {i}");
            seen[i] = true;
            got += 1;
        }
        if got == N {
            break;
        }
        let n = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::io::AsyncReadExt::read_buf(&mut rd, &mut buf),
        )
        .await
        .expect("replies keep coming")
        .unwrap();
        assert!(n > 0, "connection must stay open");
    }
    let _wr = writer.await.unwrap();
    assert_eq!(echo.seen.load(Ordering::SeqCst), N);
    server.shutdown_now();
}

#[tokio::test]
async fn graceful_shutdown_sends_go_away_to_new_clients_and_answers_accepted_requests() {
    let config = ServerConfig {
        shutdown_grace: Duration::from_millis(600),
        ..local_config()
    };
    let mut reg = ProcessorRegistry::new();
    reg.register(1, Echo::new(), ExecutorConfig::new(4, 100));
    reg.register(
        3,
        Arc::new(Slow(Duration::from_millis(300))),
        ExecutorConfig::new(4, 100),
    );
    let server = Arc::new(
        ServerBuilder::new(config)
            .registry(reg)
            .bind()
            .await
            .unwrap(),
    );
    let mut raw = Raw::connect(server.local_addr()).await;
    // Accepted before shutdown: must be answered.
    let slow = RemotingCommand::request(3);
    raw.send(&slow).await;
    assert!(eventually(|| server.inflight_requests() == 1).await);
    let done = Arc::new(AtomicBool::new(false));
    let (s, d) = (server.clone(), done.clone());
    let shutdown = tokio::spawn(async move {
        s.shutdown().await;
        d.store(true, Ordering::SeqCst);
    });
    assert!(eventually(|| server.is_shutting_down()).await);
    let mut newer = RemotingCommand::request(1);
    newer.version = 477;
    raw.send(&newer).await;
    let mut older = RemotingCommand::request(1).with_body("served");
    older.version = 475;
    raw.send(&older).await;
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(raw.recv(T).await.expect("every request answered"));
    }
    let by = |op: i32| replies.iter().find(|r| r.opaque == op).unwrap().clone();
    assert_eq!(
        (by(newer.opaque).code, by(newer.opaque).remark.as_deref()),
        (1500, Some("please go away"))
    );
    assert_eq!(
        (by(older.opaque).code, &by(older.opaque).body[..]),
        (0, &b"served"[..])
    );
    assert_eq!(by(slow.opaque).remark.as_deref(), Some("slow"));
    // New connections are no longer accepted... and after the grace period everything closes.
    assert!(raw.closed_within(T).await);
    shutdown.await.unwrap();
    assert!(done.load(Ordering::SeqCst));
    assert!(
        tokio::net::TcpStream::connect(server.local_addr())
            .await
            .is_err()
            || server.connection_count() == 0
    );
}

#[tokio::test]
async fn blocking_executor_runs_processors_on_the_blocking_pool() {
    struct Cpu(AtomicUsize);
    #[async_trait]
    impl RequestProcessor for Cpu {
        async fn process(
            &self,
            _: &RequestContext,
            _: RemotingCommand,
        ) -> Result<Option<RemotingCommand>, ProcessorError> {
            std::thread::sleep(Duration::from_millis(20)); // blocking work is fine here
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Some(RemotingCommand::response(0, None)))
        }
    }
    let cpu = Arc::new(Cpu(AtomicUsize::new(0)));
    let mut reg = ProcessorRegistry::new();
    reg.register(7, cpu.clone(), ExecutorConfig::blocking(2, 100));
    let server = start(reg).await;
    let client = RemotingClient::new(ClientConfig::default());
    let addr = server.local_addr().to_string();
    let calls: Vec<_> = (0..8)
        .map(|_| client.invoke_async(&addr, RemotingCommand::request(7), T))
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().code, 0);
    }
    assert_eq!(cpu.0.load(Ordering::SeqCst), 8);
    server.shutdown_now();
}

/// Answers once `open` is notified: a request that waits on something.
struct Gate {
    open: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl RequestProcessor for Gate {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.open.notified().await;
        Ok(Some(RemotingCommand::response(0, Some("gate"))))
    }
}

/// A request is first run in the connection's read task and goes on as a task of its own only
/// once it waits: one that waits must not hold up the requests behind it on its connection,
/// and it still gets its answer when it is woken in its own task.
#[tokio::test]
async fn a_waiting_request_does_not_hold_up_the_next_on_its_connection() {
    let (mut reg, echo) = echo_registry();
    let open = Arc::new(tokio::sync::Notify::new());
    reg.register(
        2,
        Arc::new(Gate { open: open.clone() }),
        ExecutorConfig::new(8, 100_000),
    );
    let server = start(reg).await;
    let mut raw = Raw::connect(server.local_addr()).await;
    let gated = RemotingCommand::request(2);
    raw.send(&gated).await;
    for i in 0..3 {
        let req = RemotingCommand::request(1).with_body(format!("after {i}"));
        raw.send(&req).await;
        let resp = raw
            .recv(T)
            .await
            .expect("the echo behind the waiting request");
        assert_eq!(resp.opaque, req.opaque);
        assert_eq!(&resp.body[..], format!("after {i}").as_bytes());
    }
    assert_eq!(echo.seen.load(Ordering::SeqCst), 3);
    open.notify_one();
    let resp = raw.recv(T).await.expect("the gated request's answer");
    assert_eq!(resp.opaque, gated.opaque);
    assert_eq!(resp.remark.as_deref(), Some("gate"));
    server.shutdown_now();
}
