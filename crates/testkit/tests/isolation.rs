//! One bad client must never hurt another: a client pipelining 100,000 requests without reading
//! a single reply, and a canary on its own connection whose answers must stay quick, against the
//! NameServer and the bench echo server.
//!
//! Before the fix, a reply waiting for room in the flooder's write queue held its executor slot:
//! the NameServer's eight route slots filled with the flooder's replies and the canary got no
//! answer at all.

use rmq_protocol::codes::request;
use rmq_protocol::headers::route::GetRouteInfoRequestHeader;
use rmq_protocol::RemotingCommand;
use rmq_testkit::flood::{canary, Flooder};
use std::time::Duration;

const FLOOD: usize = 100_000;
/// How long the canary runs, and the bar for its p99.
const CANARY_RUN: Duration = Duration::from_secs(5);
const P99_BAR: Duration = Duration::from_millis(50);

fn route_request() -> RemotingCommand {
    RemotingCommand::request_with_header(
        request::GET_ROUTEINFO_BY_TOPIC,
        &GetRouteInfoRequestHeader {
            topic: "TopicTest".into(),
            accept_standard_json_only: None,
        },
    )
}

/// Waits (bounded) until the flooder has pushed enough that the server has stopped reading it:
/// more than the server takes in before back-pressure, and no progress for 200 ms.
async fn flood_under_way(flooder: &Flooder) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = flooder.written();
    let mut still = 0;
    while still < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = flooder.written();
        still = if now == last && now >= 8_192 {
            still + 1
        } else {
            0
        };
        last = now;
    }
    assert!(flooder.written() >= 8_192, "the flood got going");
    assert!(
        flooder.written() < FLOOD,
        "the server stopped reading the flooder (it wrote all {FLOOD})"
    );
}

/// Floods `addr` with `request` from a client that never reads, then runs the canary on its own
/// connection and checks that every canary request was answered, with p99 under the bar.
async fn flood_and_check_the_canary(
    addr: std::net::SocketAddr,
    request: impl Fn() -> RemotingCommand,
) {
    let flooder = Flooder::start(addr, &request(), FLOOD).await;
    flood_under_way(&flooder).await;
    let report = canary(
        &addr.to_string(),
        request,
        Duration::from_millis(10),
        CANARY_RUN,
    )
    .await;
    let p99 = report.quantile(0.99);
    assert_eq!(report.failures, 0, "every canary request answered");
    assert!(
        p99 < P99_BAR,
        "canary p99 {p99:?} (p50 {:?}) over {} requests",
        report.quantile(0.5),
        report.total()
    );
    flooder.stop();
}

/// The two tests flood one server each; run one at a time so they do not measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reading_flooder_does_not_slow_the_nameserver_for_others() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (ns, _dir) = rmq_testkit::namesrv().await;
    let addr = ns.local_addr();
    let _broker = rmq_testkit::register_broker(
        &addr.to_string(),
        "DefaultCluster",
        "broker-a",
        "127.0.0.1:10911",
        &["TopicTest", "TBW102"],
    )
    .await;
    flood_and_check_the_canary(addr, route_request).await;
    ns.shutdown_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reading_flooder_does_not_slow_the_bench_echo_server_for_others() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = rmq_bench::echo::BenchServer::start(rmq_remoting::ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    let echo = || RemotingCommand::request(rmq_bench::echo::CODE_ECHO).with_body(vec![7u8; 128]);
    flood_and_check_the_canary(addr, echo).await;
    server.shutdown();
}
