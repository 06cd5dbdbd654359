//! Per-connection budgets of what a client can make the broker create and keep (issue 28): one
//! client past its budget gets SYSTEM_BUSY with a remark naming the limit, while a canary on
//! another connection is served as usual. (Held pulls have theirs in `isolation.rs`; bytes in
//! flight and queued replies are the remoting layer's, tested there.)

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
async fn auto_created_topics_past_a_connections_minute_are_refused() {
    let sa = support::Standalone::start(|c| c.max_auto_created_topics_per_minute = 5).await;
    let addr = sa.broker_addr();
    let greedy = support::client();
    for i in 0..5 {
        let r = support::call(
            &greedy,
            &addr,
            support::send_request(&format!("Auto{i}"), 0, "x", &[]),
        )
        .await;
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
    }
    let r = support::call(&greedy, &addr, support::send_request("Auto5", 0, "x", &[])).await;
    assert_busy(&r, "maxAutoCreatedTopicsPerMinute");
    assert!(sa.broker().state().topics.get("Auto5").is_none());
    // Sends to topics that exist still go through on the same connection...
    let r = support::call(&greedy, &addr, support::send_request("Auto0", 0, "x", &[])).await;
    assert_eq!(r.code, response::SUCCESS);
    // ...and another connection creates its own.
    let canary = support::client();
    let r = support::call(&canary, &addr, support::send_request("Canary", 0, "x", &[])).await;
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_groups_past_a_connections_minute_are_refused() {
    let sa = support::Standalone::start(|c| c.max_auto_created_groups_per_minute = 3).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "T", 1).await;
    let greedy = support::client();
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
    let canary = support::client();
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
