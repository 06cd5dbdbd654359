//! `rmq send` as a subprocess: our NameServer, a stand-in broker that records and acknowledges
//! sends, every mode, a file body, the summary line, and a failure's exit code.

mod support;

use async_trait::async_trait;
use rmq_namesrv::config::NamesrvConfig;
use rmq_namesrv::NameServer;
use rmq_protocol::codes::request;
use rmq_protocol::headers::broker::RegisterBrokerRequestHeader;
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::rmq_n;

struct Acker {
    sends: AtomicU64,
    batches: AtomicU64,
    bodies: std::sync::Mutex<Vec<bytes::Bytes>>,
}

#[async_trait]
impl RequestProcessor for Acker {
    async fn process(
        &self,
        _: &RequestContext,
        req: RemotingCommand,
    ) -> Result<Option<RemotingCommand>, ProcessorError> {
        if req.code == request::SEND_BATCH_MESSAGE {
            self.batches.fetch_add(1, Ordering::SeqCst);
        } else if req.code != request::SEND_MESSAGE_V2 {
            return Ok(Some(RemotingCommand::response(0, None)));
        }
        let n = self.sends.fetch_add(1, Ordering::SeqCst);
        self.bodies.lock().unwrap().push(req.body.clone());
        Ok(Some(
            RemotingCommand::response(0, None)
                .with_ext("msgId", format!("7F000001000051C3{n:016X}"))
                .with_ext("queueId", req.ext("e").unwrap_or("0").to_owned())
                .with_ext("queueOffset", n.to_string()),
        ))
    }
}

async fn cluster(
    hook: Option<Arc<dyn RpcHook>>,
) -> (NameServer, Arc<Acker>, RemotingServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ns = NameServer::start(NamesrvConfig {
        listen_port: 0,
        kv_config_path: dir.path().join("kv.json").display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let acker = Arc::new(Acker {
        sends: AtomicU64::new(0),
        batches: AtomicU64::new(0),
        bodies: Default::default(),
    });
    let mut reg = ProcessorRegistry::new();
    reg.register_default(acker.clone(), ExecutorConfig::new(8, 10_000));
    let mut builder = ServerBuilder::new(ServerConfig {
        listen_addr: "127.0.0.1:0".into(),
        ..Default::default()
    })
    .registry(reg);
    if let Some(h) = hook {
        builder = builder.hook(h);
    }
    let broker = builder.bind().await.unwrap();
    let body = r#"{"topicConfigSerializeWrapper":{"dataVersion":{"counter":1},"topicConfigTable":{"T":{"perm":6,"readQueueNums":4,"topicName":"T","writeQueueNums":4},"TBW102":{"perm":6,"readQueueNums":4,"topicName":"TBW102","writeQueueNums":4}}}}"#;
    let header = RegisterBrokerRequestHeader {
        broker_name: "broker-a".into(),
        broker_addr: broker.local_addr().to_string(),
        cluster_name: "C".into(),
        ha_server_addr: String::new(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: Some(false),
        body_crc32: None,
    };
    let registrar = RemotingClient::new(ClientConfig::default());
    let r = registrar
        .invoke_sync(
            &ns.local_addr().to_string(),
            RemotingCommand::request_with_header(request::REGISTER_BROKER, &header).with_body(body),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0);
    (ns, acker, broker, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_in_every_mode() {
    let (ns, acker, _broker, dir) = cluster(None).await;
    let nsaddr = ns.local_addr().to_string();

    let (code, out, err) = rmq_n(
        &nsaddr,
        &["send", "--topic", "T", "--body", "hi", "--tag", "TagA"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("SendOk msgId="), "{out}");
    assert!(out.contains("sent=1 failed=0"), "{out}");
    for mode in ["sync", "async", "oneway"] {
        let (code, out, err) = rmq_n(
            &nsaddr,
            &[
                "send", "--topic", "T", "--body", "x", "--count", "50", "--mode", mode,
            ],
        )
        .await;
        assert_eq!(code, 0, "{mode}: {err}");
        assert!(
            out.contains("sent=50 failed=0") && out.contains("p99_us="),
            "{mode}: {out}"
        );
    }
    let file = dir.path().join("body.bin");
    std::fs::write(&file, b"from a file").unwrap();
    let arg = format!("@{}", file.display());
    assert_eq!(
        rmq_n(&nsaddr, &["send", "--topic", "T", "--body", &arg])
            .await
            .0,
        0
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while acker.sends.load(Ordering::SeqCst) < 1 + 150 + 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "oneway sends did not all arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(acker
        .bodies
        .lock()
        .unwrap()
        .iter()
        .any(|b| &b[..] == b"from a file"));
    // Batches: 25 messages in batches of 10 are three SEND_BATCH_MESSAGE requests.
    let (code, out, err) = rmq_n(
        &nsaddr,
        &[
            "send", "--topic", "T", "--body", "b", "--count", "25", "--batch", "10",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sent=25 failed=0"), "{out}");
    assert_eq!(acker.batches.load(Ordering::SeqCst), 3);
    let (code, _, err) = rmq_n(
        &nsaddr,
        &[
            "send", "--topic", "T", "--body", "b", "--batch", "10", "--mode", "async",
        ],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("--batch works with --mode sync"), "{err}");
    // --json: one JSON object, with where the messages went.
    let (code, out, err) = rmq_n(
        &nsaddr,
        &[
            "send",
            "--topic",
            "T",
            "--body",
            "j",
            "--count",
            "10",
            "--json",
            "--latency-fault",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(summary["sent"], 10);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["per_broker"]["broker-a"], 10);
    assert!(summary["p99_us"].as_f64().is_some() && summary["msgs_per_sec"].as_f64().is_some());
    // A topic name Java refuses: exit 1 and the reason, nothing sent.
    let (code, _, err) = rmq_n(&nsaddr, &["send", "--topic", "bad topic", "--body", "x"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("invalid message"), "{err}");
    ns.shutdown_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_requests_for_a_broker_with_acl() {
    let creds = rmq_acl::Credentials {
        access_key: "rocketmq2".into(),
        secret_key: "12345678".into(),
        security_token: None,
    };
    let hook = Arc::new(rmq_acl::AclServerHook::new([creds]));
    let (ns, acker, _broker, dir) = cluster(Some(hook)).await;
    let nsaddr = ns.local_addr().to_string();
    let send = [
        "send",
        "--topic",
        "T",
        "--body",
        "signed",
        "--timeout",
        "1000",
    ];
    // Unsigned: the broker refuses (NO_PERMISSION), nothing is stored, exit 1.
    let (code, _, err) = rmq_n(&nsaddr, &send).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(acker.sends.load(Ordering::SeqCst), 0);
    // From a credentials file, then from the environment.
    let file = dir.path().join("acl.properties");
    std::fs::write(&file, "accessKey=rocketmq2\nsecretKey=12345678\n").unwrap();
    let file_arg = file.display().to_string();
    let with_file: Vec<&str> = send
        .iter()
        .copied()
        .chain(["--acl-file", &file_arg])
        .collect();
    let (code, out, err) = rmq_n(&nsaddr, &with_file).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sent=1 failed=0"), "{out}");
    let with_env: Vec<&str> = send.iter().copied().chain(["--acl"]).collect();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(&with_env)
        .args(["-n", &nsaddr])
        .env("RMQ_ACCESS_KEY", "rocketmq2")
        .env("RMQ_SECRET_KEY", "12345678")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(acker.sends.load(Ordering::SeqCst), 2);
    // `rmq clusters` says why a broker's version is missing, and what to do about it.
    let (code, out, err) = rmq_n(&nsaddr, &["clusters"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("- (no permission)"), "{out}");
    assert!(out.contains("--acl"), "{out}");
    let (code, out, _) = rmq_n(&nsaddr, &["clusters", "--acl-file", &file_arg]).await;
    assert_eq!(code, 0);
    assert!(!out.contains("no permission"), "signed: {out}");
    let (_, out, _) = rmq_n(&nsaddr, &["clusters", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["brokers"][0]["versionError"], "no permission");
    // --acl without the variables is a usage error (exit 2), before any I/O.
    let (code, _, err) = rmq_n(&nsaddr, &with_env).await;
    assert_eq!(code, 2);
    assert!(err.contains("RMQ_ACCESS_KEY"), "{err}");
    ns.shutdown_now();
}
