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

/// Waits (bounded) until the flooder has pushed enough that the server has stopped reading it.
async fn flood_under_way(flooder: &Flooder) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while flooder.written() < 8_192 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(flooder.written() >= 8_192, "the flood got going");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reading_flooder_does_not_slow_the_nameserver_for_others() {
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
    let flooder = Flooder::start(addr, &route_request(), FLOOD).await;
    flood_under_way(&flooder).await;
    let report = canary(
        &addr.to_string(),
        route_request,
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
    ns.shutdown_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_reading_flooder_does_not_slow_the_bench_echo_server_for_others() {
    let server = rmq_bench::echo::BenchServer::start(rmq_remoting::ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    let echo = || RemotingCommand::request(rmq_bench::echo::CODE_ECHO).with_body(vec![7u8; 128]);
    let flooder = Flooder::start(addr, &echo(), FLOOD).await;
    flood_under_way(&flooder).await;
    let report = canary(
        &addr.to_string(),
        echo,
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
    server.shutdown();
}
