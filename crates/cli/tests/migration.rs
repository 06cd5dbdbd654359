//! The migration commands as an operator runs them, on a directory laid out as a Java 5.3.3
//! broker leaves it (`rmq_testkit::java_format::layout`: 64 KiB segments, small consume-queue
//! files, the Java broker's own records, offsets, a delayed message): `rmq store inspect` and
//! `verify` read it; `rmq broker --store DIR` serves it to `rmq consume` from the committed
//! offset on; a Java feature's data stops `rmq broker` with the file and setting named.

mod support;

use rmq_testkit::java_format::layout::{build_java_store, CQ_FILE, SEG};
use std::process::Stdio;
use std::time::Duration;
use support::rmq;
use tokio::io::{AsyncBufReadExt, BufReader};

fn broker_cmd(store: &std::path::Path, ns: &str, port: u16) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"));
    c.arg("broker")
        .args(["-n", ns, "--listen-port", &port.to_string(), "--store"])
        .arg(store)
        .args([
            "--set",
            "brokerName=broker-a",
            "--set",
            "maxHashSlotNum=1000",
        ])
        .args(["--set", "maxIndexNum=4000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmq_broker_serves_a_java_brokers_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    build_java_store(&store, false);
    let s = store.to_str().unwrap();

    let (code, out, err) = rmq(&["store", "inspect", "--json", s]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["commitLog"]["segmentSize"], SEG as u64);
    assert_eq!(v["consumeQueueFileSize"], CQ_FILE as u64);
    assert_eq!(v["cleanStop"], true);
    assert_eq!(v["timerFiles"], true);
    assert!(v["unsupported"].as_array().unwrap().is_empty(), "{v}");
    let offsets: Vec<_> = v["consumerOffsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [42, 7]);
    let q0 = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["topic"] == "JavaT" && q["queueId"] == 0)
        .unwrap()
        .clone();
    assert_eq!(
        (q0["minOffset"].as_u64(), q0["maxOffset"].as_u64()),
        (Some(0), Some(100))
    );
    let (code, out, err) = rmq(&["store", "verify", s]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("134 record(s)") && out.trim_end().ends_with("OK"),
        "{out}"
    );

    let (ns, _ns_dir) = rmq_testkit::namesrv().await;
    let ns_addr = ns.local_addr().to_string();
    let port = rmq_testkit::process::free_ports().0;
    let mut broker = broker_cmd(&store, &ns_addr, port).spawn().unwrap();
    let mut lines = BufReader::new(broker.stdout.take().unwrap()).lines();
    let booted = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the broker starts in time")
        .unwrap()
        .unwrap_or_default();
    assert!(booted.contains("boot success"), "{booted}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // Queue 0 holds 100 messages and CG_java committed 42: a consumer of that group gets the 58
    // after it (plus, from queue 1, the 23 after offset 7 and the delayed one when it fires).
    let (code, out, err) = rmq(&[
        "consume", "-n", &ns_addr, "--topic", "JavaT", "--group", "CG_java", "--count", "82",
        "--print", "body",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let bodies: Vec<&str> = out.lines().collect();
    assert!(bodies.iter().any(|b| b.starts_with("java-42|")), "{out}");
    assert!(
        !bodies.iter().any(|b| b.starts_with("java-41|")),
        "nothing before the committed offset"
    );
    assert!(bodies.contains(&"delayed"), "the delayed message fired");
    let (code, out, _) = rmq(&[
        "query-msg",
        "-n",
        &ns_addr,
        "--key",
        "k7",
        "--topic",
        "JavaT",
        "--json",
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("java-7|"), "{out}");
    std::process::Command::new("kill")
        .args(["-TERM", &broker.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), broker.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    ns.shutdown_now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmq_broker_refuses_rocksdb_config_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    build_java_store(&store, false);
    std::fs::create_dir_all(store.join("config").join("topics")).unwrap();
    let (code, out, _) = rmq(&["store", "inspect", store.to_str().unwrap()]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("unsupported:") && out.contains("storeType=defaultRocksDB"),
        "{out}"
    );
    let out = broker_cmd(&store, "127.0.0.1:1", rmq_testkit::process::free_ports().0)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config/topics") && err.contains("storeType=defaultRocksDB"),
        "{err}"
    );
}
