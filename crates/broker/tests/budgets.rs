//! Per-connection and per-client budgets of what a client can make the broker create and keep
//! (issue 28): one client past its budget gets SYSTEM_BUSY with a remark naming the limit,
//! while a canary client is served as usual. A client is a source IP: 127.0.0.2 is the greedy
//! one (opening more connections buys it nothing), 127.0.0.3 the canary. (Bytes in flight per
//! client and connections per client are the remoting layer's, tested in its `per_client.rs`.)

mod support;

use rmq_model::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData};
use rmq_protocol::codes::{request, response};
use rmq_protocol::RemotingCommand;

fn heartbeat(client: &str, groups: usize, subs_each: usize) -> RemotingCommand {
    let hb = HeartbeatData {
        client_id: client.into(),
        consumer_data_set: (0..groups)
            .map(|g| ConsumerData {
                consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
                consume_type: "CONSUME_PASSIVELY".into(),
                group_name: format!("CG_{client}_{g}"),
                message_model: "CLUSTERING".into(),
                subscription_data_set: (0..subs_each)
                    .map(|t| SubscriptionData {
                        expression_type: "TAG".into(),
                        sub_string: "*".into(),
                        topic: format!("T{t}"),
                        ..Default::default()
                    })
                    .collect(),
                unit_mode: false,
            })
            .collect(),
        ..Default::default()
    };
    RemotingCommand::request(request::HEART_BEAT).with_body(hb.encode())
}

fn assert_busy(r: &RemotingCommand, setting: &str) {
    assert_eq!(r.code, response::SYSTEM_BUSY, "{:?}", r.remark_str());
    assert!(
        r.remark_str().unwrap_or_default().contains(setting),
        "{:?}",
        r.remark_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_topics_past_a_clients_minute_are_refused() {
    let sa = support::Standalone::start(|c| c.max_auto_created_topics_per_minute = 5).await;
    let addr = sa.broker_addr();
    // Two connections of one client share its minute.
    let (greedy, greedy_too) = (
        support::client_from("127.0.0.2"),
        support::client_from("127.0.0.2"),
    );
    for i in 0..5 {
        let r = support::call(
            if i % 2 == 0 { &greedy } else { &greedy_too },
            &addr,
            support::send_request(&format!("Auto{i}"), 0, "x", &[]),
        )
        .await;
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    }
    for c in [&greedy, &greedy_too] {
        let r = support::call(c, &addr, support::send_request("Auto5", 0, "x", &[])).await;
        assert_busy(&r, "maxAutoCreatedTopicsPerMinute");
    }
    assert!(sa.broker().state().topics.get("Auto5").is_none());
    // Sends to topics that exist still go through on the same connection...
    let r = support::call(&greedy, &addr, support::send_request("Auto0", 0, "x", &[])).await;
    assert_eq!(r.code, response::SUCCESS);
    // ...and another client creates its own.
    let canary = support::client_from("127.0.0.3");
    let r = support::call(&canary, &addr, support::send_request("Canary", 0, "x", &[])).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_groups_past_a_clients_minute_are_refused() {
    let sa = support::Standalone::start(|c| c.max_auto_created_groups_per_minute = 3).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "T", 1).await;
    let greedy = support::client_from("127.0.0.2");
    for g in 0..3 {
        let r = support::call(
            &greedy,
            &addr,
            support::pull_request(&format!("CG_greedy{g}"), "T", 0, 0, 0),
        )
        .await;
        assert_eq!(r.code, response::PULL_NOT_FOUND, "{:?}", r.remark_str());
    }
    let r = support::call(
        &greedy,
        &addr,
        support::pull_request("CG_greedy3", "T", 0, 0, 0),
    )
    .await;
    assert_busy(&r, "maxAutoCreatedGroupsPerMinute");
    // A new connection of the same client is refused too; another client is served.
    let r = support::call(
        &support::client_from("127.0.0.2"),
        &addr,
        support::pull_request("CG_greedy4", "T", 0, 0, 0),
    )
    .await;
    assert_busy(&r, "maxAutoCreatedGroupsPerMinute");
    let canary = support::client_from("127.0.0.3");
    let r = support::call(
        &canary,
        &addr,
        support::pull_request("CG_canary", "T", 0, 0, 0),
    )
    .await;
    assert_eq!(r.code, response::PULL_NOT_FOUND, "{:?}", r.remark_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_past_their_groups_or_subscriptions_are_refused() {
    let sa = support::Standalone::start(|c| {
        c.max_heartbeat_groups = 4;
        c.max_heartbeat_subscriptions = 10;
    })
    .await;
    let addr = sa.broker_addr();
    let greedy = support::client();
    let r = support::call(&greedy, &addr, heartbeat("greedy", 5, 1)).await;
    assert_busy(&r, "maxHeartbeatGroups");
    let r = support::call(&greedy, &addr, heartbeat("greedy", 2, 6)).await;
    assert_busy(&r, "maxHeartbeatSubscriptions");
    assert!(sa.broker().state().clients.consumer_groups().is_empty());
    let canary = support::client();
    let r = support::call(&canary, &addr, heartbeat("canary", 2, 5)).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    assert_eq!(sa.broker().state().clients.consumer_groups().len(), 2);
}

/// A client's heartbeats count over its connections: each connection's last heartbeat stays
/// registered, so a client sending its heartbeat on many connections is held to its totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_heartbeats_over_many_connections_are_held_to_its_totals() {
    let sa = support::Standalone::start(|c| {
        c.max_heartbeat_groups = 4;
        c.max_heartbeat_groups_per_client = 6;
        c.max_heartbeat_subscriptions_per_client = 100;
    })
    .await;
    let addr = sa.broker_addr();
    let first = support::client_from("127.0.0.2");
    let r = support::call(&first, &addr, heartbeat("a", 4, 1)).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    // The same heartbeat again on the same connection replaces the first.
    let r = support::call(&first, &addr, heartbeat("a", 4, 1)).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    let second = support::client_from("127.0.0.2");
    let r = support::call(&second, &addr, heartbeat("b", 3, 1)).await;
    assert_busy(&r, "maxHeartbeatGroupsPerClient");
    let r = support::call(&second, &addr, heartbeat("b", 2, 1)).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    // Another client is unaffected.
    let canary = support::client_from("127.0.0.3");
    let r = support::call(&canary, &addr, heartbeat("canary", 4, 1)).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    // A closed connection's registrations no longer count.
    first.shutdown();
    let state = sa.broker().state().clone();
    let third = support::client_from("127.0.0.2");
    let client_ip = rmq_broker::budgets::Client::Ip([127, 0, 0, 2].into());
    assert!(
        support::eventually(std::time::Duration::from_secs(10), || {
            state.heartbeat_loads.groups_of(client_ip) == Some(2)
        })
        .await,
        "the closed connection still counts"
    );
    let r = support::call(&third, &addr, heartbeat("c", 4, 1)).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
}

/// Held pulls are bounded per connection and per client: a client that spreads its long polls
/// over connections is held to `maxHeldPullsPerClient`; another client's long poll is held
/// and answered as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_pulls_past_a_connections_or_clients_budget_are_refused() {
    use std::time::Duration;
    let sa = support::Standalone::start(|c| {
        c.max_held_pulls_per_connection = 3;
        c.max_held_pulls_per_client = 4;
    })
    .await;
    let addr = sa.broker_addr();
    let admin = support::client();
    support::create_topic(&admin, &addr, "Empty", 4).await;
    support::create_topic(&admin, &addr, "Canary", 1).await;
    let state = sa.broker().state().clone();
    let hold = |c, queue| support::long_poll(c, &addr, "CG_greedy", "Empty", queue);
    let first = support::client_from("127.0.0.2");
    let held: Vec<_> = (0..3).map(|q| hold(&first, q)).collect();
    assert!(support::eventually(Duration::from_secs(10), || state.notifier.held() == 3).await);
    let r = support::call(
        &first,
        &addr,
        support::pull_request("CG_greedy", "Empty", 3, 0, 20_000),
    )
    .await;
    assert_busy(&r, "maxHeldPullsPerConnection");
    let second = support::client_from("127.0.0.2");
    let also_held = hold(&second, 3);
    assert!(support::eventually(Duration::from_secs(10), || state.notifier.held() == 4).await);
    let r = support::call(
        &second,
        &addr,
        support::pull_request("CG_greedy", "Empty", 0, 0, 20_000),
    )
    .await;
    assert_busy(&r, "maxHeldPullsPerClient");
    // Another client's long poll is held, and answered when its message comes.
    let canary = support::client_from("127.0.0.3");
    let waiting = support::long_poll(&canary, &addr, "CG_canary", "Canary", 0);
    assert!(support::eventually(Duration::from_secs(10), || state.notifier.held() == 5).await);
    let r = support::call(
        &admin,
        &addr,
        support::send_request("Canary", 0, "hello", &[]),
    )
    .await;
    assert_eq!(r.code, response::SUCCESS);
    let r = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the canary's held pull is answered")
        .unwrap()
        .unwrap();
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    drop((held, also_held));
}

/// Queued pull answers are bounded per connection: a client pipelining 5,000 pulls of 256 KiB
/// answers (1.25 GiB if all were built) and never reading them holds at most
/// `PULL_ANSWERS_PER_CONNECTION` answers (4 MiB) and its write queue (1 MiB); its other pulls
/// wait for a turn holding no answer, and past 4,096 in flight its connection is not read.
/// A canary on another connection pulls as usual, and the process's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_pull_answers_hold_one_connections_budget_not_the_brokers_memory() {
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "Fat", 1).await;
    let body = "f".repeat(100 * 1024);
    for _ in 0..40 {
        let r = support::call(&c, &addr, support::send_request("Fat", 0, &body, &[])).await;
        assert_eq!(r.code, response::SUCCESS);
    }
    let before = support::rss_kib();
    let flood = rmq_testkit::flood::Flooder::start(
        sa.broker().local_addr(),
        &support::pull_request("CG_fat", "Fat", 0, 0, 0),
        5_000,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pulls = rmq_testkit::flood::canary(
        &addr,
        || support::pull_request("CG_canary", "Fat", 0, 0, 0),
        std::time::Duration::from_millis(10),
        std::time::Duration::from_secs(1),
    )
    .await;
    let grew = support::rss_kib().saturating_sub(before);
    let written = flood.written();
    drop(flood);
    eprintln!(
        "{written} pulls written, RSS grew {grew} KiB; canary pull p99 {:?}",
        pulls.quantile(0.99)
    );
    assert_eq!(pulls.failures, 0);
    assert!(pulls.quantile(1.0) < std::time::Duration::from_secs(1));
    // Before the per-connection answer turns, 4,096 answers waited in memory for the unread
    // connection: RSS grew 737-841 MiB here.
    assert!(grew < 64 * 1024, "RSS grew {grew} KiB");
}
