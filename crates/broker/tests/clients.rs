//! Group membership over real connections: members are told (NOTIFY_CONSUMER_IDS_CHANGED) when
//! one joins or its connection closes, the member list follows, and a graceful stop removes the
//! broker from the NameServer.

mod support;

use async_trait::async_trait;
use rmq_model::heartbeat::{ConsumerData, HeartbeatData, SubscriptionData};
use rmq_model::Caller;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{
    ClientBuilder, ClientConfig, ExecutorConfig, ProcessorError, ProcessorRegistry, RemotingClient,
    RequestContext, RequestProcessor,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Records the broker's requests to a client.
struct Inbox(mpsc::UnboundedSender<RemotingCommand>);

#[async_trait]
impl RequestProcessor for Inbox {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        let _ = self.0.send(req);
        Ok(None)
    }
}

fn consumer_client() -> (RemotingClient, mpsc::UnboundedReceiver<RemotingCommand>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut reg = ProcessorRegistry::new();
    reg.register(
        request::NOTIFY_CONSUMER_IDS_CHANGED,
        Arc::new(Inbox(tx)),
        ExecutorConfig::new(1, 100),
    );
    (
        ClientBuilder::new(ClientConfig::default())
            .registry(reg)
            .build(),
        rx,
    )
}

fn heartbeat(client_id: &str) -> RemotingCommand {
    HeartbeatData {
        client_id: client_id.into(),
        consumer_data_set: vec![ConsumerData {
            consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            group_name: "CG_members".into(),
            message_model: "CLUSTERING".into(),
            subscription_data_set: vec![SubscriptionData {
                expression_type: "TAG".into(),
                sub_string: "*".into(),
                sub_version: 1,
                topic: "Members".into(),
                ..Default::default()
            }],
            unit_mode: false,
        }],
        ..Default::default()
    }
    .request()
}

async fn members(c: &RemotingClient, addr: &str) -> Vec<String> {
    let r = support::call(
        c,
        addr,
        RemotingCommand::request(request::GET_CONSUMER_LIST_BY_GROUP)
            .with_ext("consumerGroup", "CG_members"),
    )
    .await;
    if r.code != 0 {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut ids: Vec<String> = v["consumerIdList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn next_notify(rx: &mut mpsc::UnboundedReceiver<RemotingCommand>) -> RemotingCommand {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("notified in time")
        .expect("inbox open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_told_when_the_group_changes_and_a_stop_unregisters() {
    let mut sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let admin = support::client();
    support::create_topic(&admin, &addr, "Members", 4).await;
    let (a, mut a_rx) = consumer_client();
    let (b, mut b_rx) = consumer_client();

    assert_eq!(
        support::call(&a, &addr, heartbeat("10.0.0.1@a")).await.code,
        0
    );
    let first = next_notify(&mut a_rx).await;
    assert_eq!(first.ext("consumerGroup"), Some("CG_members"));
    assert!(first.is_oneway());
    // A repeated heartbeat changes nothing: no notification.
    assert_eq!(
        support::call(&a, &addr, heartbeat("10.0.0.1@a")).await.code,
        0
    );
    assert_eq!(
        support::call(&b, &addr, heartbeat("10.0.0.2@b")).await.code,
        0
    );
    next_notify(&mut a_rx).await;
    next_notify(&mut b_rx).await;
    assert!(a_rx.try_recv().is_err(), "one notification per change");
    assert_eq!(members(&admin, &addr).await, ["10.0.0.1@a", "10.0.0.2@b"]);
    // The retry topic exists and is routable.
    assert!(sa
        .broker()
        .state()
        .topics
        .get("%RETRY%CG_members")
        .is_some());

    // b's connection closes: a is told, the list follows.
    b.shutdown();
    next_notify(&mut a_rx).await;
    assert_eq!(members(&admin, &addr).await, ["10.0.0.1@a"]);

    // UNREGISTER_CLIENT from a: the group is empty.
    let r = support::call(
        &a,
        &addr,
        RemotingCommand::request(request::UNREGISTER_CLIENT)
            .with_ext("clientID", "10.0.0.1@a")
            .with_ext("consumerGroup", "CG_members"),
    )
    .await;
    assert_eq!(r.code, 0);
    assert!(members(&admin, &addr).await.is_empty());

    // The NameServer routes to us until a graceful stop unregisters.
    let ns = sa.ns_addr();
    let info = admin
        .call(
            &ns,
            &rmq_model::call::GetClusterInfo,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(info.broker_addr_table.contains_key("broker-a"));
    let route = admin
        .call(
            &ns,
            &rmq_model::call::GetRouteInfo::new("%RETRY%CG_members"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(route.queue_datas.len(), 1);
    sa.stop_broker().await;
    let info = admin
        .call(
            &ns,
            &rmq_model::call::GetClusterInfo,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(!info.broker_addr_table.contains_key("broker-a"), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_expires_and_its_group_is_told() {
    let sa = support::Standalone::start(|c| c.channel_expired_timeout = 600).await;
    let addr = sa.broker_addr();
    let (a, mut a_rx) = consumer_client();
    let (b, _b_rx) = consumer_client();
    assert_eq!(
        support::call(&a, &addr, heartbeat("10.0.0.1@a")).await.code,
        0
    );
    next_notify(&mut a_rx).await;
    // b joins and then says nothing; a keeps beating.
    assert_eq!(
        support::call(&b, &addr, heartbeat("10.0.0.2@b")).await.code,
        0
    );
    next_notify(&mut a_rx).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(
            support::call(&a, &addr, heartbeat("10.0.0.1@a")).await.code,
            0
        );
        if members(&support::client(), &addr).await == ["10.0.0.1@a"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a was told b left.
    next_notify(&mut a_rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_refuses_unsigned_requests_and_serves_signed_ones() {
    let account = rmq_acl::Credentials {
        access_key: "rmq-ak".into(),
        secret_key: "rmq-secret".into(),
        security_token: None,
    };
    let (ns, _ns_dir) = rmq_testkit::namesrv().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = rmq_broker::Broker::start_with(
        rmq_broker::config::BrokerConfig {
            broker_name: "broker-acl".into(),
            listen_port: 0,
            namesrv_addr: ns.local_addr().to_string(),
            store_path_root_dir: dir.path().display().to_string(),
            mapped_file_size_commit_log: 1 << 20,
            max_hash_slot_num: 100,
            max_index_num: 400,
            ..Default::default()
        },
        rmq_broker::BrokerOptions {
            hook: Some(Arc::new(rmq_acl::AclServerHook::new([account.clone()]))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addr = broker.local_addr().to_string();
    let open = support::client();
    let refused = support::call(&open, &addr, support::send_request("TBW102", 0, "x", &[])).await;
    assert_eq!(refused.code, rmq_protocol::codes::response::NO_PERMISSION);
    let signed = ClientBuilder::new(ClientConfig::default())
        .hook(Arc::new(rmq_acl::AclClientHook::new(account)))
        .build();
    let r = support::call(
        &signed,
        &addr,
        support::send_request("AclTopic", 0, "x", &[]),
    )
    .await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
    broker.shutdown().await;
}
