//! Per-client shares (issue 28): a client is its source IP, and all its connections together
//! get one connection cap and one byte budget for requests being processed, so opening more
//! connections buys a client nothing while another client is served as usual. 127.0.0.x
//! addresses stand for distinct clients (Linux routes all of 127/8 to loopback).

mod support;

use async_trait::async_trait;
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{local_config, Raw};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn server(config: ServerConfig, code: i32, p: Arc<dyn RequestProcessor>) -> RemotingServer {
    let mut reg = ProcessorRegistry::new();
    reg.register(code, p, ExecutorConfig::new(32, 10_000));
    ServerBuilder::new(config)
        .registry(reg)
        .bind()
        .await
        .unwrap()
}

async fn served(raw: &mut Raw) -> bool {
    raw.send(&RemotingCommand::request(1).with_body("ping"))
        .await;
    raw.recv(Duration::from_secs(2)).await.is_some()
}

#[tokio::test]
async fn a_clients_connections_share_one_connection_cap() {
    let (reg, _) = support::echo_registry();
    let s = ServerBuilder::new(ServerConfig {
        max_connections_per_client: 2,
        ..local_config()
    })
    .registry(reg)
    .bind()
    .await
    .unwrap();
    let addr = s.local_addr();
    let mut a1 = Raw::connect_from(ip("127.0.0.2"), addr).await;
    let mut a2 = Raw::connect_from(ip("127.0.0.2"), addr).await;
    assert!(served(&mut a1).await && served(&mut a2).await);
    // A third connection of the same client is closed, unanswered (loopback is a trusted
    // PROXY source here, so the client is known once its first bytes show no PROXY header;
    // from an untrusted source it is closed at accept)...
    let mut a3 = Raw::connect_from(ip("127.0.0.2"), addr).await;
    a3.send(&RemotingCommand::request(1).with_body("ping"))
        .await;
    assert!(a3.closed_within(Duration::from_secs(2)).await);
    // ...while another client connects as usual.
    let mut b = Raw::connect_from(ip("127.0.0.3"), addr).await;
    assert!(served(&mut b).await);
    assert_eq!(s.client_count(), 2);
    // From a source that is no trusted proxy the client is known at accept: closed at once,
    // before it says anything.
    let (reg, _) = support::echo_registry();
    let untrusted = ServerBuilder::new(ServerConfig {
        max_connections_per_client: 1,
        proxy_protocol: false,
        ..local_config()
    })
    .registry(reg)
    .bind()
    .await
    .unwrap();
    let mut first = Raw::connect_from(ip("127.0.0.4"), untrusted.local_addr()).await;
    assert!(served(&mut first).await);
    let mut second = Raw::connect_from(ip("127.0.0.4"), untrusted.local_addr()).await;
    assert!(second.closed_within(Duration::from_secs(2)).await);
    // A connection gone gives its place back.
    drop(a1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = Raw::connect_from(ip("127.0.0.2"), addr).await;
        if served(&mut again).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client's slot never came back"
        );
    }
}

/// Holds every request until the test opens the gate; records who entered.
struct Gate {
    entered: Mutex<Vec<String>>,
    open: tokio::sync::Semaphore,
}

#[async_trait]
impl RequestProcessor for Gate {
    async fn process(
        &self,
        ctx: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let who = ctx
            .connection
            .client_ip()
            .map(|i| i.to_string())
            .unwrap_or_default();
        self.entered.lock().unwrap().push(who);
        let _pass = self.open.acquire().await;
        Ok(Some(RemotingCommand::response(0, None)))
    }
}

impl Gate {
    fn entered_by(&self, who: &str) -> usize {
        self.entered
            .lock()
            .unwrap()
            .iter()
            .filter(|w| *w == who)
            .count()
    }
}

async fn until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_connections_share_one_request_byte_budget() {
    // Frames of ~100 KB: a client's 300,000-byte budget admits two at a time, whatever the
    // number of its connections (each connection's own budget, 4 MiB, would admit them all).
    const BODY: usize = 100_000;
    let gate = Arc::new(Gate {
        entered: Mutex::new(Vec::new()),
        open: tokio::sync::Semaphore::new(0),
    });
    let s = server(
        ServerConfig {
            max_request_bytes_per_client: 300_000,
            ..local_config()
        },
        7,
        gate.clone(),
    )
    .await;
    let addr = s.local_addr();
    let request = RemotingCommand::request(7).with_body(vec![0u8; BODY]);
    let mut greedy = Vec::new();
    for _ in 0..3 {
        let mut c = Raw::connect_from(ip("127.0.0.2"), addr).await;
        c.send(&request).await;
        c.send(&request).await;
        greedy.push(c);
    }
    assert!(
        until(Duration::from_secs(5), || gate.entered_by("127.0.0.2") == 2).await,
        "the client's first two requests are not processed"
    );
    // Another client is admitted while the first is at its budget...
    let mut canary = Raw::connect_from(ip("127.0.0.3"), addr).await;
    canary.send(&request).await;
    assert!(
        until(Duration::from_secs(5), || gate.entered_by("127.0.0.3") == 1).await,
        "the other client's request waits behind the first client's budget"
    );
    // ...and the first is still held to two (its other four wait unread).
    assert_eq!(gate.entered_by("127.0.0.2"), 2);
    // Opened, every request is processed and answered: back-pressure, nothing lost.
    gate.open.add_permits(1_000);
    for c in &mut greedy {
        for _ in 0..2 {
            let r = c.recv(Duration::from_secs(5)).await.expect("answered");
            assert_eq!(r.code, 0);
        }
    }
    assert!(canary.recv(Duration::from_secs(5)).await.is_some());
    assert_eq!(gate.entered_by("127.0.0.2"), 6);
}
