//! End to end with a real third-party client: npm ali-ons (pure JavaScript remoting) looks up a
//! route from a stand-in server on our runtime and from our NameServer after a broker registered.
//! ali-ons is installed on first use (`rmq_testkit::e2e::ali_ons`).

use async_trait::async_trait;
use rmq_protocol::codes::{request, response};
use rmq_protocol::{LanguageCode, RemotingCommand, SerializeType};
use rmq_remoting::{
    ExecutorConfig, ProcessorError, ProcessorRegistry, RequestContext, RequestProcessor,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers GET_ROUTEINFO_BY_TOPIC for one topic, in the JSON a Java NameServer sends a pre-4.9.4
/// client (unquoted Long keys in brokerAddrs), and records what it was asked.
struct RouteStandIn {
    seen: Mutex<Vec<RemotingCommand>>,
}

const ROUTE: &str = r#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;

#[async_trait]
impl RequestProcessor for RouteStandIn {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        self.seen.lock().unwrap().push(req.clone());
        let topic = req.ext("topic").unwrap_or_default().to_owned();
        Ok(Some(if topic == "TopicTest" {
            RemotingCommand::response(response::SUCCESS, None).with_body(ROUTE)
        } else {
            RemotingCommand::response(
                response::TOPIC_NOT_EXIST,
                Some(&format!(
                    "No topic route info in name server for the topic: {topic}"
                )),
            )
        }))
    }
}

/// `tests-e2e/` with ali-ons installed (the install blocks: off the runtime's threads).
async fn ali_ons_dir() -> PathBuf {
    tokio::task::spawn_blocking(rmq_testkit::e2e::ali_ons)
        .await
        .expect("ali-ons install")
}

/// Runs `route_lookup.js ADDR TOPIC` with ali-ons, bounded in time.
async fn lookup(dir: &Path, addr: &str, topic: &str) -> std::process::Output {
    let child = tokio::process::Command::new("node")
        .arg(dir.join("route_lookup.js"))
        .arg(addr)
        .arg(topic)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("node finished in time")
        .expect("node runs")
}

#[tokio::test]
async fn ali_ons_looks_up_a_route_from_a_server_on_our_runtime() {
    let dir = ali_ons_dir().await;
    let stand_in = Arc::new(RouteStandIn {
        seen: Mutex::new(Vec::new()),
    });
    let mut reg = ProcessorRegistry::new();
    reg.register(
        request::GET_ROUTEINFO_BY_TOPIC,
        stand_in.clone(),
        ExecutorConfig::new(2, 100),
    );
    let server = rmq_testkit::serve(reg).await;
    let addr = server.local_addr().to_string();

    let out = lookup(&dir, &addr, "TopicTest").await;
    assert!(
        out.status.success(),
        "ali-ons failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let route: serde_json::Value = serde_json::from_slice(&out.stdout).expect("route JSON");
    assert_eq!(route["brokerDatas"][0]["brokerName"], "broker-a");
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"]["0"],
        "127.0.0.1:10911"
    );
    assert_eq!(route["queueDatas"][0]["writeQueueNums"], 4);

    let seen = stand_in.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].ext("topic"), Some("TopicTest"));
    assert_eq!(
        seen[0].language,
        LanguageCode::JAVA,
        "ali-ons says it is JAVA"
    );
    assert_eq!(seen[0].serialize_type, SerializeType::Json);

    // The error path: ali-ons surfaces our TOPIC_NOT_EXIST as an error.
    let out = lookup(&dir, &addr, "NoSuchTopic").await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No topic route info"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown_now();
}

#[tokio::test]
async fn ali_ons_reads_a_route_from_our_nameserver() {
    let dir = ali_ons_dir().await;
    let (ns, _d) = rmq_testkit::namesrv().await;
    let addr = ns.local_addr().to_string();
    let _broker = rmq_testkit::register_broker(
        &addr,
        "DefaultCluster",
        "broker-a",
        "127.0.0.1:10911",
        &["TopicTest", "TBW102"],
    )
    .await;
    let out = lookup(&dir, &addr, "TopicTest").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let route: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let brokers = route["brokerDatas"].as_array().unwrap();
    assert_eq!(brokers[0]["brokerName"], "broker-a");
    assert_eq!(brokers[0]["brokerAddrs"]["0"], "127.0.0.1:10911");
    assert_eq!(route["queueDatas"][0]["writeQueueNums"], 4);
    let out = lookup(&dir, &addr, "NoSuchTopic").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No topic route info"));
    ns.shutdown_now();
}
