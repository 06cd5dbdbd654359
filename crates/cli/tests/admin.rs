//! Every admin command as a subprocess against our NameServer, with a broker registered through
//! our client (and a stand-in broker answering GET_BROKER_RUNTIME_INFO for the version column).

use async_trait::async_trait;
use rmq_namesrv::NameServer;
use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::sync::Arc;
use std::time::Duration;

struct RuntimeInfo;

#[async_trait]
impl RequestProcessor for RuntimeInfo {
    async fn process(
        &self,
        _: &RequestContext,
        _: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        Ok(Some(RemotingCommand::response(0, None).with_body(
            r#"{"table":{"brokerVersionDesc":"V5_3_3","brokerVersion":"479"}}"#,
        )))
    }
}

struct Env {
    ns: NameServer,
    broker: RemotingServer,
    _registrar: RemotingClient,
    _dir: tempfile::TempDir,
}

async fn setup() -> Env {
    let (ns, dir) = rmq_testkit::namesrv().await;
    let mut reg = ProcessorRegistry::new();
    reg.register(
        request::GET_BROKER_RUNTIME_INFO,
        Arc::new(RuntimeInfo),
        ExecutorConfig::inline(),
    );
    let broker = rmq_testkit::serve(reg).await;
    let registrar = rmq_testkit::register_broker(
        &ns.local_addr().to_string(),
        "DefaultCluster",
        "broker-a",
        &broker.local_addr().to_string(),
        &["TopicTest", "Other"],
    )
    .await;
    Env {
        ns,
        broker,
        _registrar: registrar,
        _dir: dir,
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn rmq(namesrv: &str, args: &[&str]) -> Out {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
            .args(args)
            .env("NAMESRV_ADDR", namesrv)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("command finished in time")
    .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(o: &Out) -> serde_json::Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_in_tables_and_json() {
    let env = setup().await;
    let ns = env.ns.local_addr().to_string();
    let broker = env.broker.local_addr().to_string();
    // Fail-over: the first address is closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let both = format!("{dead_addr};{ns}");

    let o = rmq(&both, &["route", "TopicTest"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("BROKER    CLUSTER         ID  ADDRESS"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains(&format!("broker-a  DefaultCluster  0   {broker}")),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("broker-a  4     4      RW (6)"),
        "{}",
        o.stdout
    );
    let j = json(&rmq(&ns, &["route", "TopicTest", "--json"]).await);
    assert_eq!(j["brokerDatas"][0]["brokerAddrs"]["0"], broker.as_str());

    let o = rmq(&ns, &["route", "Missing"]).await;
    assert_eq!(o.code, 4);
    assert!(
        o.stderr.contains(&format!("{ns} answered GET_ROUTEINFO_BY_TOPIC (105) with code 17 (TOPIC_NOT_EXIST): No topic route info")),
        "{}",
        o.stderr
    );

    let o = rmq(&ns, &["clusters"]).await;
    assert!(
        o.stdout
            .contains(&format!("DefaultCluster  broker-a  0   {broker}  V5_3_3")),
        "{}",
        o.stdout
    );
    let j = json(&rmq(&ns, &["clusterList", "--json"]).await);
    assert_eq!(j["brokers"][0]["version"], "V5_3_3");

    let o = rmq(&ns, &["topics"]).await;
    assert_eq!(o.stdout, "TOPIC\nOther\nTopicTest\n");
    let j = json(&rmq(&ns, &["topics", "--cluster", "DefaultCluster", "--json"]).await);
    assert_eq!(j["topicList"], serde_json::json!(["Other", "TopicTest"]));

    let o = rmq(
        &ns,
        &["kv", "put", "ORDER_TOPIC_CONFIG", "TopicTest", "broker-a:4"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        rmq(&ns, &["kv", "get", "ORDER_TOPIC_CONFIG", "TopicTest"])
            .await
            .stdout,
        "broker-a:4\n"
    );
    let j = json(
        &rmq(
            &ns,
            &[
                "kv",
                "list",
                "ORDER_TOPIC_CONFIG",
                "--json",
                "--serialize",
                "rocketmq",
            ],
        )
        .await,
    );
    assert_eq!(j["TopicTest"], "broker-a:4");
    assert_eq!(
        rmq(&ns, &["kv", "delete", "ORDER_TOPIC_CONFIG", "TopicTest"])
            .await
            .code,
        0
    );
    assert_eq!(
        rmq(&ns, &["kv", "get", "ORDER_TOPIC_CONFIG", "TopicTest"])
            .await
            .code,
        4
    );

    let o = rmq(&ns, &["wipe-write-perm", "broker-a"]).await;
    assert!(o.stdout.contains("wipeTopicCount=2"), "{}", o.stdout);
    assert!(rmq(&ns, &["route", "TopicTest"])
        .await
        .stdout
        .contains("R- (4)"));
    let j = json(&rmq(&ns, &["add-write-perm", "broker-a", "--json"]).await);
    assert_eq!(j[0]["detail"], "addTopicCount=2");

    let o = rmq(&ns, &["namesrv-config", "update", "kvConfigPath=/tmp/x"]).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("with code 16 (NO_PERMISSION): Can not update config in black list."),
        "{}",
        o.stderr
    );
    assert_eq!(
        rmq(&ns, &["namesrv-config", "update", "enableTopicList=false"])
            .await
            .code,
        0
    );
    let j = json(&rmq(&ns, &["namesrv-config", "get", "--json"]).await);
    assert_eq!(j[&ns]["enableTopicList"], "false");

    assert_eq!(rmq(&ns, &["delete-topic", "Other"]).await.code, 0);
    assert_eq!(rmq(&ns, &["route", "Other"]).await.code, 4);

    // Frame tracing on stderr with -v.
    let o = rmq(&ns, &["topics", "-v"]).await;
    assert!(
        o.stderr.contains("-> ")
            && o.stderr
                .contains("GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206)"),
        "{}",
        o.stderr
    );

    // Nothing reachable: exit 3 naming the addresses and the request.
    let o = rmq(&dead_addr, &["topics", "--timeout", "500"]).await;
    assert_eq!(o.code, 3);
    assert!(
        o.stderr.contains(&dead_addr) && o.stderr.contains("(206)"),
        "{}",
        o.stderr
    );
    // No NameServer at all: usage error.
    let o = rmq("", &["topics"]).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("NAMESRV_ADDR"));
    env.ns.shutdown_now();
}
