//! Client behaviour over real sockets: the three invoke styles, exactly-once completion, timeouts,
//! connection death, permits, server-pushed requests and NameServer fail-over.

mod support;

use async_trait::async_trait;
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncReadExt;

const T: Duration = Duration::from_secs(10);

/// Polls `cond` every few milliseconds until it holds or 5 s pass; its final value.
async fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cond()
}

#[tokio::test]
async fn sync_async_callback_and_oneway() {
    let (reg, echo) = echo_registry();
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());

    let r = client
        .invoke_sync(&addr, RemotingCommand::request(1).with_body("a"), T)
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"a");
    let r = client
        .invoke_async(&addr, RemotingCommand::request(1).with_body("b"), T)
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"b");
    let (tx, rx) = tokio::sync::oneshot::channel();
    client.invoke_async_callback(
        &addr,
        RemotingCommand::request(1).with_body("c"),
        T,
        move |r| {
            let _ = tx.send(r);
        },
    );
    assert_eq!(&rx.await.unwrap().unwrap().body[..], b"c");
    client
        .invoke_oneway(&addr, RemotingCommand::request(1).with_body("d"), T)
        .await
        .unwrap();
    let deadline = Instant::now() + T;
    while echo.seen.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(echo.seen.load(Ordering::SeqCst), 4, "oneway processed");
    // One connection for all of it.
    assert_eq!(server.connection_count(), 1);
    server.shutdown_now();
}

#[tokio::test]
async fn ten_thousand_concurrent_async_requests_on_one_connection() {
    let (reg, echo) = echo_registry();
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let calls: Vec<_> = (0..10_000u32)
        .map(|i| {
            let fut = client.invoke_async(
                &addr,
                RemotingCommand::request(1).with_body(i.to_be_bytes().to_vec()),
                T,
            );
            tokio::spawn(async move { (i, fut.await) })
        })
        .collect();
    for c in calls {
        let (i, r) = c.await.unwrap();
        assert_eq!(
            &r.unwrap().body[..],
            &i.to_be_bytes(),
            "each reply matched to its own request"
        );
    }
    assert_eq!(echo.seen.load(Ordering::SeqCst), 10_000);
    assert_eq!(server.connection_count(), 1);
    assert_eq!(
        client.connection(&addr).await.unwrap().pending_requests(),
        0,
        "no entry left behind"
    );
    server.shutdown_now();
}

#[tokio::test]
async fn a_timed_out_request_leaves_no_entry() {
    let mut reg = ProcessorRegistry::new();
    reg.register(
        3,
        Arc::new(Slow(Duration::from_millis(1500))),
        ExecutorConfig::new(4, 10),
    );
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let conn = client.connection(&addr).await.unwrap();
    let started = Instant::now();
    let err = conn
        .invoke(RemotingCommand::request(3), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, RemotingError::Timeout { .. }), "{err}");
    let took = started.elapsed();
    // Not before the timeout, and well before the answer (1.5 s) a missed timer would wait for.
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_millis(1000),
        "timeout, took {took:?}"
    );
    assert_eq!(conn.pending_requests(), 0);
    // The late reply arrives during the next call (issued at once, answered after it), finds
    // nobody, and is dropped; the connection still works.
    let r = conn.invoke(RemotingCommand::request(3), T).await.unwrap();
    assert_eq!(r.remark.as_deref(), Some("slow"));
    assert!(!conn.is_closed());

    // Through the client, a sync timeout closes the socket (clientCloseSocketIfTimeout).
    let err = client
        .invoke_sync(
            &addr,
            RemotingCommand::request(3),
            Duration::from_millis(150),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RemotingError::Timeout { .. }));
    assert!(
        eventually(|| conn.is_closed()).await,
        "closed after a sync timeout"
    );
    server.shutdown_now();
}

#[tokio::test]
async fn server_killed_mid_flight_fails_every_pending_request_within_100ms() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<Instant>();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        // Read the requests, never answer, then die.
        let mut buf = vec![0u8; 1 << 20];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            if n == 0 {
                break;
            }
        }
        let at = Instant::now();
        drop(sock);
        let _ = killed_tx.send(at);
    });
    let client = RemotingClient::new(ClientConfig::default());
    let calls: Vec<_> = (0..500)
        .map(|_| {
            tokio::spawn(client.invoke_async(
                &addr,
                RemotingCommand::request(1),
                Duration::from_secs(30),
            ))
        })
        .collect();
    let mut results = Vec::new();
    for c in calls {
        results.push((c.await.unwrap(), Instant::now()));
    }
    let killed_at = killed_rx.await.unwrap();
    for (r, at) in results {
        let e = r.unwrap_err();
        assert!(matches!(e, RemotingError::Closed { .. }), "{e}");
        // At once, not at the 30 s timeout (the bound leaves room for a loaded machine).
        assert!(
            at.duration_since(killed_at) < Duration::from_secs(2),
            "failed {:?} after the kill",
            at.duration_since(killed_at)
        );
    }
}

#[tokio::test]
async fn connect_errors_and_redial_after_death() {
    let client = RemotingClient::new(ClientConfig {
        connect_timeout: Duration::from_millis(500),
        ..Default::default()
    });
    let closed_port = closed_port();
    let e = client
        .invoke_sync(&closed_port, RemotingCommand::request(1), T)
        .await
        .unwrap_err();
    assert!(
        matches!(e, RemotingError::Connect { ref addr, .. } if *addr == closed_port),
        "{e}"
    );

    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let first = client.connection(&addr).await.unwrap();
    first.close();
    assert!(eventually(|| first.is_closed()).await);
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(1).with_body("again"), T)
        .await
        .unwrap();
    assert_eq!(
        &r.body[..],
        b"again",
        "dead connection evicted and re-dialled"
    );
    server.shutdown_now();
}

#[tokio::test]
async fn permits_give_the_java_errors() {
    let mut reg = ProcessorRegistry::new();
    reg.register(
        3,
        Arc::new(Slow(Duration::from_millis(400))),
        ExecutorConfig::new(4, 10),
    );
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig {
        async_permits: 1,
        ..Default::default()
    });
    let conn = client.connection(&addr).await.unwrap();
    let held = tokio::spawn(client.invoke_async(&addr, RemotingCommand::request(3), T));
    // The permit is taken once the request is pending.
    assert!(eventually(|| conn.pending_requests() == 1).await);
    let e = client
        .invoke_async(&addr, RemotingCommand::request(3), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "invokeAsyncImpl invoke too fast");
    let e = client
        .invoke_async(
            &addr,
            RemotingCommand::request(3),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RemotingError::PermitTimeout(ref m) if m.starts_with("invokeAsyncImpl tryAcquire semaphore timeout, 50ms")),
        "{e}"
    );
    held.await.unwrap().unwrap();
    // The permit came back.
    client
        .invoke_async(&addr, RemotingCommand::request(3), T)
        .await
        .unwrap();
    server.shutdown_now();
}

/// Client-side processor for a request the server pushes (brokers do this to producers/consumers).
struct Notified;

#[async_trait]
impl RequestProcessor for Notified {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        Ok(Some(
            RemotingCommand::response(0, Some("client got it")).with_body(req.body),
        ))
    }
}

/// Server-side processor that calls the client back on the same connection.
struct CallsBack;

#[async_trait]
impl RequestProcessor for CallsBack {
    async fn process(
        &self,
        ctx: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let push =
            RemotingCommand::request(rmq_protocol::codes::request::NOTIFY_CONSUMER_IDS_CHANGED)
                .with_body("ids");
        let answer = ctx
            .connection
            .invoke(push, T)
            .await
            .map_err(ProcessorError::new)?;
        Ok(Some(RemotingCommand::response(0, answer.remark.as_deref())))
    }
}

struct ClientHook;

impl RpcHook for ClientHook {
    fn before_request(&self, _: &str, request: &mut RemotingCommand) -> Result<(), HookError> {
        request.ext_fields_mut().insert("signed", "yes");
        Ok(())
    }
    fn after_response(
        &self,
        _: &str,
        request: &RemotingCommand,
        response: &mut RemotingCommand,
    ) -> Result<(), HookError> {
        // Proves the hook was handed the request as sent (signed by `before_request`).
        let seen = request.ext("signed").unwrap_or("no request").to_owned();
        response.ext_fields_mut().insert("client_after", seen);
        Ok(())
    }
}

#[tokio::test]
async fn client_serves_pushed_requests_and_runs_its_hooks() {
    let mut reg = ProcessorRegistry::new();
    reg.register(50, Arc::new(CallsBack), ExecutorConfig::new(2, 10));
    reg.register(1, Echo::new(), ExecutorConfig::new(2, 10));
    let server = start(reg).await;
    let addr = server.local_addr().to_string();

    let mut client_reg = ProcessorRegistry::new();
    client_reg.register(
        rmq_protocol::codes::request::NOTIFY_CONSUMER_IDS_CHANGED,
        Arc::new(Notified),
        ExecutorConfig::new(1, 10),
    );
    let client = ClientBuilder::new(ClientConfig::default())
        .registry(client_reg)
        .hook(Arc::new(ClientHook))
        .build();
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(50), T)
        .await
        .unwrap();
    assert_eq!(r.remark.as_deref(), Some("client got it"));
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(1), T)
        .await
        .unwrap();
    assert_eq!(
        r.ext("signed"),
        Some("yes"),
        "before hook changed the request on the wire"
    );
    assert_eq!(r.ext("client_after"), Some("yes"));
    // The callback path hands the hooks the request too (the writer gives it back once written).
    let (tx, rx) = tokio::sync::oneshot::channel();
    client.invoke_async_callback(&addr, RemotingCommand::request(1), T, move |r| {
        let _ = tx.send(r);
    });
    let r = rx.await.unwrap().unwrap();
    assert_eq!(r.ext("client_after"), Some("yes"));
    server.shutdown_now();
}

#[tokio::test]
async fn namesrv_selection_fails_over_to_a_live_address() {
    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let live = server.local_addr().to_string();
    let dead = closed_port();
    let client = RemotingClient::new(ClientConfig {
        connect_timeout: Duration::from_millis(500),
        ..Default::default()
    });
    assert!(matches!(
        client.invoke_namesrv(RemotingCommand::request(1), T).await,
        Err(RemotingError::NoNamesrv)
    ));
    client.update_namesrv_addresses(&[dead.clone(), live.clone()]);
    for _ in 0..5 {
        let r = client
            .invoke_namesrv(RemotingCommand::request(1).with_body("ns"), T)
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"ns");
    }
    let (chosen, _) = client.namesrv_connection().await.unwrap();
    assert_eq!(chosen, live, "sticky on the address that works");

    // A scan (Java's scanAvailableNameSrv) finds out which are reachable, and fail-over uses
    // that: with the chosen one gone, the next connection goes to a reachable address first.
    let (reg2, _) = echo_registry();
    let second = start(reg2).await;
    let live2 = second.local_addr().to_string();
    client.update_namesrv_addresses(&[dead.clone(), live.clone(), live2.clone()]);
    assert_eq!(
        client.available_namesrv_addresses().len(),
        3,
        "all, before a scan"
    );
    let mut reachable = client.scan_namesrv().await;
    reachable.sort();
    let mut expect = vec![live.clone(), live2.clone()];
    expect.sort();
    assert_eq!(reachable, expect);
    assert!(!client.available_namesrv_addresses().contains(&dead));
    server.shutdown_now();
    // The scan dials anew only once the old connection is known dead.
    let conn = client.connection(&live).await;
    if let Ok(c) = conn {
        assert!(eventually(|| c.is_closed()).await);
    }
    assert_eq!(client.scan_namesrv().await, vec![live2.clone()]);
    let (chosen, _) = client.namesrv_connection().await.unwrap();
    assert_eq!(chosen, live2, "the one address the scan reached");
    second.shutdown_now();
}

/// Collects callback outcomes with the instant each arrived.
type Outcomes = Arc<std::sync::Mutex<Vec<(Result<RemotingCommand, RemotingError>, Instant)>>>;

fn collector(outcomes: &Outcomes) -> impl FnOnce(Result<RemotingCommand, RemotingError>) + Send {
    let outcomes = outcomes.clone();
    move |r| outcomes.lock().unwrap().push((r, Instant::now()))
}

/// Sends `n` echo requests with numbered bodies through callbacks and checks that every
/// callback ran exactly once, each with the echo of its own request.
async fn echo_numbered_once_each(client: &RemotingClient, addr: &str, n: u32) {
    let outcomes: Outcomes = Default::default();
    for i in 0..n {
        let req = RemotingCommand::request(1).with_body(i.to_be_bytes().to_vec());
        let sink = collector(&outcomes);
        client.invoke_async_callback(addr, req, T, move |r| {
            let matched = matches!(&r, Ok(resp) if resp.body[..] == i.to_be_bytes());
            sink(if matched {
                r
            } else {
                Err(RemotingError::NoNamesrv)
            });
        });
    }
    wait_for(&outcomes, n as usize).await;
    // Late duplicates would show up here: a round trip on the same connection after the last
    // reply flushes anything still on its way.
    client
        .invoke_sync(addr, RemotingCommand::request(1), T)
        .await
        .unwrap();
    let got = outcomes.lock().unwrap();
    assert_eq!(got.len(), n as usize, "every callback ran exactly once");
    assert!(got.iter().all(|(r, _)| r.is_ok()), "each got its own reply");
}

async fn wait_for(outcomes: &Outcomes, n: usize) {
    let deadline = Instant::now() + T;
    while outcomes.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn callbacks_complete_once_with_reply_timeout_or_death() {
    let (mut reg, _) = echo_registry();
    reg.register(
        3,
        Arc::new(Slow(Duration::from_secs(5))),
        ExecutorConfig::new(64, 1000),
    );
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig {
        async_permits: 64,
        ..Default::default()
    });
    client.connection(&addr).await.unwrap();

    // Replies: 2,000 callbacks through 64 permits (the rest take the waiting path), each
    // answered once with its own body.
    echo_numbered_once_each(&client, &addr, 2_000).await;
    let outcomes: Outcomes = Default::default();

    // Timeouts: nobody answers within 200 ms; the expiry scan fails them soon after, and the
    // permits come back (the next 64 requests go out at once).
    let sent = Instant::now();
    for _ in 0..64 {
        let req = RemotingCommand::request(3);
        client.invoke_async_callback(&addr, req, Duration::from_millis(200), collector(&outcomes));
    }
    wait_for(&outcomes, 64).await;
    let got = std::mem::take(&mut *outcomes.lock().unwrap());
    assert_eq!(got.len(), 64);
    for (r, at) in &got {
        assert!(matches!(r, Err(RemotingError::Timeout { .. })), "{r:?}");
        let took = at.duration_since(sent);
        // Not before the timeout, and long before the 5 s answer a missed expiry would wait for.
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(3_000),
            "timed out after {took:?}"
        );
    }

    // Death: requests pending for 30 s fail as soon as the server goes away.
    let client = RemotingClient::new(ClientConfig::default());
    client.connection(&addr).await.unwrap();
    for _ in 0..100 {
        let req = RemotingCommand::request(3);
        client.invoke_async_callback(&addr, req, Duration::from_secs(30), collector(&outcomes));
    }
    let conn = client.connection(&addr).await.unwrap();
    assert!(eventually(|| conn.pending_requests() == 100).await);
    let killed = Instant::now();
    server.shutdown_now();
    wait_for(&outcomes, 100).await;
    let got = std::mem::take(&mut *outcomes.lock().unwrap());
    assert_eq!(got.len(), 100);
    for (r, at) in &got {
        assert!(r.is_err());
        assert!(
            at.duration_since(killed) < Duration::from_secs(2),
            "failed late"
        );
    }
}

/// Answers GO_AWAY to the first `go_away` requests it sees, then serves; counts connections.
struct GoAway {
    go_away: std::sync::atomic::AtomicUsize,
    peers: std::sync::Mutex<std::collections::HashSet<String>>,
}

#[async_trait]
impl RequestProcessor for GoAway {
    async fn process(
        &self,
        ctx: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.peers.lock().unwrap().insert(ctx.peer.to_string());
        let left = self.go_away.load(Ordering::SeqCst);
        if left > 0 {
            self.go_away.store(left - 1, Ordering::SeqCst);
            return Ok(Some(RemotingCommand::response(
                1500,
                Some("please go away"),
            )));
        }
        Ok(Some(RemotingCommand::response(0, None).with_body(req.body)))
    }
}

#[tokio::test]
async fn go_away_resends_once_on_a_new_connection() {
    let processor = Arc::new(GoAway {
        go_away: 1.into(),
        peers: Default::default(),
    });
    let mut reg = ProcessorRegistry::new();
    reg.register(1, processor.clone(), ExecutorConfig::new(4, 100));
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());

    // Future path: the GO_AWAY is invisible to the caller; the resend went on a second connection.
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(1).with_body("a"), T)
        .await
        .unwrap();
    assert_eq!((r.code, &r.body[..]), (0, &b"a"[..]));
    assert_eq!(processor.peers.lock().unwrap().len(), 2, "re-dialled");

    // Callback path, same behaviour.
    processor.go_away.store(1, Ordering::SeqCst);
    let (tx, rx) = tokio::sync::oneshot::channel();
    client.invoke_async_callback(
        &addr,
        RemotingCommand::request(1).with_body("b"),
        T,
        move |r| {
            let _ = tx.send(r);
        },
    );
    let r = rx.await.unwrap().unwrap();
    assert_eq!((r.code, &r.body[..]), (0, &b"b"[..]));
    assert_eq!(processor.peers.lock().unwrap().len(), 3);

    // Twice in a row: an error, as in Java.
    processor.go_away.store(2, Ordering::SeqCst);
    let err = client
        .invoke_sync(&addr, RemotingCommand::request(1), T)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("GO_AWAY twice"), "{err}");

    // Switched off, the caller sees the 1500 answer itself.
    let plain = RemotingClient::new(ClientConfig {
        reconnect_for_go_away: false,
        ..Default::default()
    });
    processor.go_away.store(1, Ordering::SeqCst);
    let r = plain
        .invoke_sync(&addr, RemotingCommand::request(1), T)
        .await
        .unwrap();
    assert_eq!(r.code, 1500);
    server.shutdown_now();
}

#[tokio::test]
async fn callbacks_survive_a_full_write_queue() {
    let (reg, _) = echo_registry();
    let server = start(reg).await;
    let addr = server.local_addr().to_string();
    // Four queued frames at most: most of these requests find the queue full and wait for room
    // on a task of their own, bounded by their deadline.
    let client = RemotingClient::new(ClientConfig {
        write_queue_frames: 4,
        ..Default::default()
    });
    client.connection(&addr).await.unwrap();
    echo_numbered_once_each(&client, &addr, 3_000).await;
    server.shutdown_now();
}
