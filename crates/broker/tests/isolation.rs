//! One client never hurts another: a flooder pipelining 1 KiB sends without ever reading a
//! reply, and a canary on its own connection sending and pulling every few milliseconds. Once
//! the flooder is gone, the memory it made the broker hold is given back.

mod support;

/// The allocator the `rmq` binary ships with, counting what is live.
#[global_allocator]
static HEAP: support::heap::Counting = support::heap::Counting;

use rmq_testkit::flood::{canary, Flooder};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_producer_does_not_starve_a_canary() {
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "Flood", 4).await;
    support::create_topic(&c, &addr, "Canary", 1).await;
    let body = "f".repeat(1024);
    let (idle, idle_rss) = (support::heap::live_kib(), support::anon_rss_kib());
    let flooder = Flooder::start(
        sa.broker().local_addr(),
        &support::send_request("Flood", 0, &body, &[]),
        2_000_000,
    )
    .await;
    // Let the flood reach its budgets first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = canary(
        &addr,
        || support::send_request("Canary", 0, "alive", &[]),
        Duration::from_millis(5),
        Duration::from_secs(2),
    )
    .await;
    let pulls = canary(
        &addr,
        || support::pull_request("CG_canary", "Canary", 0, 0, 0),
        Duration::from_millis(5),
        Duration::from_secs(1),
    )
    .await;
    let written = flooder.written();
    flooder.stop();
    eprintln!(
        "flooder wrote {written} sends; canary sends p50 {:?} p99 {:?} ({} ok, {} failed); pulls p99 {:?}",
        sends.quantile(0.5),
        sends.quantile(0.99),
        sends.latencies.len(),
        sends.failures,
        pulls.quantile(0.99)
    );
    // Nothing fails or times out; the canary's sends share the one disk with the flood (their
    // tail is the page writeback every put waits on then), its pulls do not touch it.
    assert_eq!(sends.failures, 0);
    assert_eq!(pulls.failures, 0);
    assert!(
        sends.quantile(0.5) < Duration::from_millis(50),
        "canary send p50 {:?}",
        sends.quantile(0.5)
    );
    assert!(
        sends.quantile(0.99) < Duration::from_secs(1),
        "canary send p99 {:?}",
        sends.quantile(0.99)
    );
    assert!(
        pulls.quantile(0.99) < Duration::from_millis(100),
        "canary pull p99 {:?}",
        pulls.quantile(0.99)
    );
    assert!(
        written < 2_000_000,
        "the flooder was held back (its replies were never read)"
    );
    // Memory under attack is bounded and comes back: once the flooder's connection is gone
    // (its queued replies and requests with it), what the broker holds is within 2x of its
    // idle size. (The process's anonymous RSS is printed too: mimalloc keeps freed pages of
    // threads gone idle for reuse, about 32 MiB here, the same after repeated floods.)
    let broker = sa.broker();
    let back = support::eventually(Duration::from_secs(20), || {
        broker.connection_count() <= 1 && support::heap::live_kib() < 2 * idle.max(256)
    })
    .await;
    let after = support::heap::live_kib();
    eprintln!(
        "live heap idle {idle} KiB, after the flood {after} KiB (anonymous RSS {idle_rss} -> {} KiB)",
        support::anon_rss_kib()
    );
    assert!(
        back,
        "live heap {idle} KiB idle, {after} KiB after the flood"
    );
}
