//! Runtime hardening, over real sockets: each test here failed on the main before the fix it
//! names (write stall, byte budgets, panics, timeouts, opaque theft, PROXY trust, the shutdown
//! race).

mod support;

use async_trait::async_trait;
use bytes::Bytes;
use rmq_protocol::codes::response;
use rmq_protocol::frame::encode_to_vec;
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn registry_with(code: i32, p: Arc<dyn RequestProcessor>, ex: ExecutorConfig) -> ProcessorRegistry {
    let mut reg = ProcessorRegistry::new();
    reg.register(code, p, ex);
    reg
}

async fn server_with(config: ServerConfig, reg: ProcessorRegistry) -> RemotingServer {
    ServerBuilder::new(config)
        .registry(reg)
        .bind()
        .await
        .unwrap()
}

// ---------------------------------------------------------------- write stall and idle

/// A peer that stops reading is closed after `write_stall_timeout`, with its replies pending; a
/// peer that reads slowly but steadily is not, and neither counts as idle while bytes move.
#[tokio::test]
async fn a_peer_that_accepts_no_bytes_is_closed_at_the_write_stall_timeout() {
    let (reg, _) = echo_registry();
    let config = ServerConfig {
        write_stall_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(800),
        ..local_config()
    };
    let server = server_with(config, reg).await;
    let addr = server.local_addr();
    let frame =
        encode_to_vec(&RemotingCommand::request(1).with_body(vec![1u8; 16 * 1024])).unwrap();
    // The non-reader: 2,000 echo requests of 16 KiB (32 MiB of replies, far beyond the socket
    // buffers) and never a read.
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    let writer = {
        let frame = frame.clone();
        let (_, mut w) = stuck.split();
        async move {
            for _ in 0..2_000 {
                if w.write_all(&frame).await.is_err() {
                    break;
                }
            }
        }
    };
    let started = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    // The server closes it: reading now finds the replies it did write, then EOF or a reset.
    let mut scratch = vec![0u8; 1 << 20];
    let closed = async {
        loop {
            match stuck.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    // Reading drains what the kernel holds, which can take the server's writer out of its
    // stall; so check the server's side: it must have dropped the connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connection_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.connection_count(), 0, "stalled connection closed");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "not before the stall timeout"
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;

    // The slow reader: the same load, read 64 KiB every 10 ms (about 6 MB/s, so the 32 MiB of
    // replies keep the server's output blocked throughout). Bytes keep moving, so it is neither
    // stalled (600 ms) nor idle (800 ms) over two seconds. (Much slower readers wake a blocked
    // writer only every few hundred milliseconds: the kernel reports room in big steps.)
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = slow.split();
    let frame2 = frame.clone();
    let end = Instant::now() + Duration::from_secs(2);
    let write_all = async move {
        for _ in 0..2_000 {
            match tokio::time::timeout_at(end.into(), w.write_all(&frame2)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    };
    let read_slowly = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while Instant::now() < end {
            match tokio::time::timeout(Duration::from_secs(1), r.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (total, false),
                Ok(Ok(n)) => total += n,
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (total, true)
    };
    let ((read, open), ()) = tokio::join!(read_slowly, write_all);
    let still_there = server.connection_count();
    assert!(open, "slow reader kept its connection ({read} bytes read)");
    assert!(read > 512 * 1024, "bytes kept moving: {read}");
    assert_eq!(still_there, 1, "the slow reader's connection is still open");
    server.shutdown_now();
}

// ---------------------------------------------------------------- memory in bytes

/// Takes a while to process, so requests pile up in memory if nothing bounds them.
struct SlowSmall(Duration, AtomicUsize);

#[async_trait]
impl RequestProcessor for SlowSmall {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        tokio::time::sleep(self.0).await;
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(Some(RemotingCommand::response(0, Some("done"))))
    }
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Eight connections pipelining 16 MiB requests: the server holds at most its server-wide
/// request budget (plus a stated slack) however much the clients push, and answers every request
/// once they read. Before the byte budgets, each connection read up to 4,096 frames ahead.
///
/// RSS is the whole process's: the measurement runs in a child process of its own, so the
/// other tests of this binary (run in parallel threads) do not count against the budget.
#[test]
#[cfg(target_os = "linux")]
fn pipelined_16_mib_frames_stay_within_the_byte_budget() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rss_child_pipelined_16_mib_frames",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RMQ_RSS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("RSS grew by"),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    eprintln!(
        "{}",
        stderr.lines().find(|l| l.contains("RSS grew by")).unwrap()
    );
}

/// The measurement, run only as the child of the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(target_os = "linux")]
async fn rss_child_pipelined_16_mib_frames() {
    if std::env::var_os("RMQ_RSS_CHILD").is_none() {
        return;
    }
    const CONNS: usize = 8;
    const PER_CONN: usize = 6;
    const BUDGET: usize = 64 << 20;
    const SLACK: usize = 96 << 20;
    let processor = Arc::new(SlowSmall(Duration::from_millis(100), AtomicUsize::new(0)));
    let config = ServerConfig {
        max_request_bytes_total: BUDGET,
        max_request_bytes_per_connection: 32 << 20,
        ..local_config()
    };
    let server = server_with(
        config,
        registry_with(1, processor.clone(), ExecutorConfig::new(16, 10_000)),
    )
    .await;
    let addr = server.local_addr();
    // One frame shared by every writer (the test's own memory stays put).
    let body = Bytes::from(vec![0x5Au8; 16 * 1024 * 1024 - 512]);
    let frame = Bytes::from(encode_to_vec(&RemotingCommand::request(1).with_body(body)).unwrap());
    let baseline = rss_bytes();
    let mut writers = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..CONNS {
        let s = TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = s.into_split();
        streams.push(r);
        let frame = frame.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..PER_CONN {
                w.write_all(&frame).await.unwrap();
            }
            w
        }));
    }
    // Sample RSS while the server works through the 768 MiB the clients push.
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while processor.1.load(Ordering::SeqCst) < CONNS * PER_CONN && Instant::now() < deadline {
        peak = peak.max(rss_bytes());
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Read the small replies as they come, as a client would.
        for r in &mut streams {
            let mut scratch = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(1), r.read(&mut scratch)).await;
        }
    }
    assert_eq!(
        processor.1.load(Ordering::SeqCst),
        CONNS * PER_CONN,
        "every request processed"
    );
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "RSS grew by {} MiB (budget {} MiB)",
        grew >> 20,
        BUDGET >> 20
    );
    assert!(
        grew <= BUDGET + SLACK,
        "RSS grew by {} MiB, budget {} MiB + slack {} MiB",
        grew >> 20,
        BUDGET >> 20,
        SLACK >> 20
    );
    for w in writers {
        let _ = w.await;
    }
    server.shutdown_now();
}

// ---------------------------------------------------------------- panics

struct Panics;

#[async_trait]
impl RequestProcessor for Panics {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        if req.body.as_ref() == b"boom" {
            panic!("processor exploded");
        }
        Ok(Some(RemotingCommand::response(0, None).with_body(req.body)))
    }
}

struct PanickingHook;

impl RpcHook for PanickingHook {
    fn before_request(&self, _: &str, req: &mut RemotingCommand) -> Result<(), HookError> {
        if req.code == 9 {
            panic!("hook exploded");
        }
        Ok(())
    }
}

/// A panicking processor (spawned, inline or blocking) or server hook fails its own request with
/// SYSTEM_ERROR naming the request code; the connection and the server carry on. Before, a
/// spawned processor's panic sent no reply at all, and an inline one killed the connection's
/// reader while it still looked open.
#[tokio::test]
async fn processor_and_hook_panics_fail_only_their_request() {
    let mut reg = ProcessorRegistry::new();
    reg.register(5, Arc::new(Panics), ExecutorConfig::new(2, 100));
    reg.register(6, Arc::new(Panics), ExecutorConfig::inline());
    reg.register(7, Arc::new(Panics), ExecutorConfig::blocking(2, 100));
    reg.register(9, Arc::new(Panics), ExecutorConfig::new(2, 100));
    let server = ServerBuilder::new(local_config())
        .registry(reg)
        .hook(Arc::new(PanickingHook))
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let call = |code: i32, body: &'static str| {
        let client = client.clone();
        let addr = addr.clone();
        async move {
            client
                .invoke_sync(
                    &addr,
                    RemotingCommand::request(code).with_body(body),
                    Duration::from_secs(3),
                )
                .await
                .expect("answered")
        }
    };
    for code in [5, 6, 7] {
        let r = call(code, "boom").await;
        assert_eq!(r.code, response::SYSTEM_ERROR, "code {code}");
        let remark = r.remark_str().unwrap_or_default().to_owned();
        assert!(
            remark.contains(&format!("request code {code}")) && remark.contains("exploded"),
            "{remark}"
        );
        // Same connection, next request: fine.
        assert_eq!(&call(code, "fine").await.body[..], b"fine");
    }
    let r = call(9, "x").await;
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(r.remark_str().unwrap_or_default().contains("hook exploded"));
    assert_eq!(&call(5, "after").await.body[..], b"after");
    assert_eq!(server.connection_count(), 1, "one connection all along");
    server.shutdown_now();
}

/// A callback that panics has had its outcome; the reader task it ran on carries on, so the other
/// requests on that connection complete, and the connection stays usable. Before, the panic
/// killed the reader: the connection looked open and its pending requests waited for nothing.
#[tokio::test]
async fn a_panicking_callback_fails_only_its_own_request() {
    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    // Dial first, so the callbacks take the reader-task path.
    client
        .invoke_sync(&addr, RemotingCommand::request(1), Duration::from_secs(3))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..20u32 {
        let tx = tx.clone();
        client.invoke_async_callback(
            &addr,
            RemotingCommand::request(1).with_body(i.to_string()),
            Duration::from_secs(3),
            move |r| {
                if i == 3 {
                    panic!("callback {i} exploded");
                }
                let _ = tx.send(r.map(|c| c.body));
            },
        );
    }
    drop(tx);
    let mut got = 0;
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
        r.expect("answered");
        got += 1;
    }
    assert_eq!(got, 19, "every other callback ran");
    let conn = client.connection(&addr).await.unwrap();
    assert!(!conn.is_closed());
    let r = client
        .invoke_sync(
            &addr,
            RemotingCommand::request(1).with_body("next"),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"next");
    server.shutdown_now();
}

// ---------------------------------------------------------------- timeouts

/// The invoke timeout bounds the whole call: a 200 ms invoke to a server that accepts TCP but
/// never finishes the TLS handshake returns in about 200 ms, not at the 3 s handshake limit.
#[tokio::test]
async fn the_invoke_timeout_bounds_a_slow_tls_handshake() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let client = RemotingClient::new(ClientConfig {
        tls: Some(ClientTlsConfig {
            trust_all: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let started = Instant::now();
    let r = client
        .invoke_sync(
            &addr,
            RemotingCommand::request(1),
            Duration::from_millis(200),
        )
        .await;
    let took = started.elapsed();
    assert!(r.is_err());
    assert!(
        took < Duration::from_millis(1500),
        "took {took:?}: the 3 s handshake limit, not the 200 ms timeout"
    );
    assert!(took >= Duration::from_millis(190), "took {took:?}");
    holder.abort();
}

/// Never answers code 2; answers code 1 after 400 ms.
struct HalfDeaf;

#[async_trait]
impl RequestProcessor for HalfDeaf {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        if req.code == 2 {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(Some(RemotingCommand::response(0, Some("late but fine"))))
    }
}

/// An async request that times out fails alone, as in Java: another request in flight on the
/// same connection still gets its answer. Before, the timeout closed the socket and failed it.
#[tokio::test]
async fn an_async_timeout_does_not_fail_the_other_requests_on_the_connection() {
    let mut reg = ProcessorRegistry::new();
    reg.register_many(&[1, 2], Arc::new(HalfDeaf), ExecutorConfig::new(4, 100));
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    client.connection(&addr).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    client.invoke_async_callback(
        &addr,
        RemotingCommand::request(1),
        Duration::from_secs(3),
        move |r| {
            let _ = tx.send(r);
        },
    );
    let (tx2, rx2) = tokio::sync::oneshot::channel();
    client.invoke_async_callback(
        &addr,
        RemotingCommand::request(2),
        Duration::from_millis(100),
        move |r| {
            let _ = tx2.send(r);
        },
    );
    let timed_out = tokio::time::timeout(Duration::from_secs(2), rx2)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(timed_out, Err(RemotingError::Timeout { .. })));
    let answered = tokio::time::timeout(Duration::from_secs(3), rx)
        .await
        .unwrap()
        .unwrap()
        .expect("the other request is answered");
    assert_eq!(answered.remark_str(), Some("late but fine"));
    // The future form too.
    let slow = client.invoke_async(&addr, RemotingCommand::request(1), Duration::from_secs(3));
    let deaf = client.invoke_async(
        &addr,
        RemotingCommand::request(2),
        Duration::from_millis(100),
    );
    let (slow, deaf) = tokio::join!(slow, deaf);
    assert!(deaf.is_err());
    assert_eq!(slow.unwrap().remark_str(), Some("late but fine"));
    server.shutdown_now();
}

// ---------------------------------------------------------------- opaque theft

/// A caller that picks an opaque already pending on the connection gets an error; the request
/// that owns it still gets its own response. Before, the second waiter replaced the first.
#[tokio::test]
async fn an_opaque_already_pending_is_refused() {
    let mut reg = ProcessorRegistry::new();
    reg.register(
        1,
        Arc::new(Slow(Duration::from_millis(200))),
        ExecutorConfig::new(4, 100),
    );
    let server = start(reg).await;
    let client = RemotingClient::new(ClientConfig::default());
    let conn = client
        .connection(&server.local_addr().to_string())
        .await
        .unwrap();
    let mut first = RemotingCommand::request(1);
    first.opaque = 4242;
    let mut second = RemotingCommand::request(1);
    second.opaque = 4242;
    let owner = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.invoke(first, Duration::from_secs(3)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while conn.pending_requests() == 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    let thief = conn.invoke(second, Duration::from_secs(3)).await;
    match thief {
        Err(RemotingError::SendRequest { reason, .. }) => {
            assert!(reason.contains("already pending"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let r = owner.await.unwrap().expect("the owner's response");
    assert_eq!(r.remark_str(), Some("slow"));
    server.shutdown_now();
}

// ---------------------------------------------------------------- PROXY trust

/// PROXY headers are read only from trusted sources: from anyone else a header is not believed
/// (it fails as a frame and closes that connection), so a client cannot claim another's address.
#[tokio::test]
async fn proxy_headers_from_untrusted_sources_are_not_believed() {
    let (reg, _) = echo_registry();
    let config = ServerConfig {
        proxy_protocol_trusted_sources: preamble::TrustedSource::parse_list("10.0.0.0/8").unwrap(),
        ..local_config()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    struct Events(tokio::sync::mpsc::UnboundedSender<ChannelEvent>);
    impl ChannelEventListener for Events {
        fn on_event(&self, e: ChannelEvent) {
            let _ = self.0.send(e);
        }
    }
    let server = ServerBuilder::new(config)
        .registry(reg)
        .event_listener(Arc::new(Events(tx)))
        .bind()
        .await
        .unwrap();
    let frame = encode_to_vec(&RemotingCommand::request(1).with_body("x")).unwrap();
    let mut raw = Raw::connect(server.local_addr()).await;
    raw.stream
        .write_all(
            &[
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 10911\r\n".as_ref(),
                &frame,
            ]
            .concat(),
        )
        .await
        .unwrap();
    assert!(raw.closed_within(Duration::from_secs(2)).await);
    let first = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        first.channel().peer.starts_with("127.0.0.1:"),
        "the socket's own address, not the claimed one: {first:?}"
    );
    // Plain frames from the same source are served as ever.
    let mut ok = Raw::connect(server.local_addr()).await;
    ok.send(&RemotingCommand::request(1).with_body("y")).await;
    assert_eq!(
        &ok.recv(Duration::from_secs(2)).await.unwrap().body[..],
        b"y"
    );
    server.shutdown_now();
}

// ---------------------------------------------------------------- shutdown race

/// A connection still in its PROXY header when shutdown closes every connection is closed as soon
/// as it finishes, never served. Before, it registered after the drain and lived on.
#[tokio::test]
async fn a_connection_finishing_its_handshake_after_shutdown_is_closed() {
    let (reg, echo) = echo_registry();
    let server = start(reg).await;
    let mut raw = Raw::connect(server.local_addr()).await;
    let proxy = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 10911\r\n";
    raw.stream.write_all(&proxy[..10]).await.unwrap();
    // Let the server take the partial header in.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown_now();
    raw.stream.write_all(&proxy[10..]).await.unwrap();
    raw.send(&RemotingCommand::request(1).with_body("late"))
        .await;
    assert!(
        raw.recv(Duration::from_secs(1)).await.is_none(),
        "no answer after shutdown"
    );
    assert!(raw.closed_within(Duration::from_secs(2)).await, "closed");
    assert_eq!(echo.seen.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------- tables that only grew

/// Dial locks leave the client's table once their dial is over, failed or not. Before, every
/// address ever dialled kept an entry.
#[tokio::test]
async fn dial_locks_do_not_outlive_their_dials() {
    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let client = RemotingClient::new(ClientConfig::default());
    for _ in 0..20 {
        let _ = client
            .invoke_sync(
                &closed_port(),
                RemotingCommand::request(1),
                Duration::from_secs(1),
            )
            .await;
    }
    client
        .invoke_sync(
            &server.local_addr().to_string(),
            RemotingCommand::request(1),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(client.dial_locks_in_use(), 0);
    server.shutdown_now();
}

// ---------------------------------------------------------------- one handshake deadline

/// `handshake_timeout` is one deadline for the PROXY header, the TLS handshake and the first
/// frame together. Before, the PROXY/TLS part and the first frame each had the whole timeout, so
/// a trickling client could hold a slot for twice as long.
#[tokio::test]
async fn the_handshake_timeout_covers_proxy_header_and_first_frame_together() {
    let (reg, echo) = echo_registry();
    let server = server_with(
        ServerConfig {
            handshake_timeout: Duration::from_millis(600),
            ..local_config()
        },
        reg,
    )
    .await;
    let mut raw = Raw::connect(server.local_addr()).await;
    // 400 ms to finish the PROXY header, 400 ms more for the first frame: 800 ms in all.
    raw.stream
        .write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 ")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    raw.stream.write_all(b"10911\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _ = raw
        .stream
        .write_all(&encode_to_vec(&RemotingCommand::request(1).with_body("late")).unwrap())
        .await;
    assert!(
        raw.recv(Duration::from_secs(1)).await.is_none(),
        "not served"
    );
    assert_eq!(echo.seen.load(Ordering::SeqCst), 0);
    // Within the deadline, all is well.
    let mut ok = Raw::connect(server.local_addr()).await;
    ok.stream
        .write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 10911\r\n")
        .await
        .unwrap();
    ok.send(&RemotingCommand::request(1).with_body("on time"))
        .await;
    assert_eq!(
        &ok.recv(Duration::from_secs(2)).await.unwrap().body[..],
        b"on time"
    );
    server.shutdown_now();
}

// ---------------------------------------------------------------- the blocking pool

/// Sleeps on the thread it runs on (a blocking processor).
struct Blocking;

#[async_trait]
impl RequestProcessor for Blocking {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        std::thread::sleep(Duration::from_millis(200));
        Ok(Some(RemotingCommand::response(0, None)))
    }
}

/// Requests waiting for a blocking executor's slot wait on the async side: the blocking pool
/// holds only the ones that run. Before, each queued request took a blocking thread to wait for
/// its slot, so ten queued requests on a one-slot executor filled a two-thread pool and
/// everything else needing it (file writes) waited seconds.
#[test]
fn queued_blocking_requests_do_not_occupy_the_blocking_pool() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = server_with(
            local_config(),
            registry_with(1, Arc::new(Blocking), ExecutorConfig::blocking(1, 100)),
        )
        .await;
        let client = RemotingClient::new(ClientConfig::default());
        let addr = server.local_addr().to_string();
        let calls: Vec<_> = (0..10)
            .map(|_| {
                tokio::spawn(client.invoke_async(
                    &addr,
                    RemotingCommand::request(1),
                    Duration::from_secs(10),
                ))
            })
            .collect();
        // Let the requests arrive and queue up behind the one that runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.inflight_requests() < 10 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(server.inflight_requests(), 10);
        // Other blocking work still gets a thread at once (well before the 2 s the queue takes).
        let started = Instant::now();
        let other = tokio::task::spawn_blocking(|| 42);
        let got = tokio::time::timeout(Duration::from_secs(1), other).await;
        assert!(
            matches!(got, Ok(Ok(42))),
            "the blocking pool was full of requests waiting for their slot"
        );
        assert!(started.elapsed() < Duration::from_millis(900));
        for c in calls {
            assert_eq!(c.await.unwrap().unwrap().code, 0);
        }
        server.shutdown_now();
    });
}
