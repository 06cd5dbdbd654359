//! End to end with a real third-party client: npm ali-ons (pure JavaScript) looks up a route from
//! our NameServer after a broker registered. `.ci/run` installs ali-ons into tests-e2e/.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{call, client, register_body, register_request, start};

#[tokio::test]
async fn ali_ons_reads_a_route_from_our_nameserver() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests-e2e");
    assert!(
        dir.join("node_modules/ali-ons").is_dir(),
        "ali-ons is not installed: run `npm install` in {} (CI's .ci/run does)",
        dir.display()
    );
    let (ns, _d) = start(|_| {}).await;
    let addr = ns.local_addr().to_string();
    let broker = client();
    let r = call(
        &broker,
        &addr,
        register_request(
            "DefaultCluster",
            "broker-a",
            0,
            "127.0.0.1:10911",
            &register_body(&["TopicTest", "TBW102"], 1),
        ),
    )
    .await;
    assert_eq!(r.code, 0);
    let lookup = |topic: &'static str| {
        let (dir, addr) = (dir.clone(), addr.clone());
        async move {
            let child = tokio::process::Command::new("node")
                .arg(dir.join("route_lookup.js"))
                .arg(&addr)
                .arg(topic)
                .current_dir(&dir)
                .kill_on_drop(true)
                .output();
            tokio::time::timeout(Duration::from_secs(30), child)
                .await
                .expect("node finished in time")
                .expect("node runs")
        }
    };
    let out = lookup("TopicTest").await;
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
    let out = lookup("NoSuchTopic").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No topic route info"));
    ns.shutdown_now();
}
