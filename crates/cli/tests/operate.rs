//! Operating `rmq standalone` as a process, with traffic: its one Prometheus endpoint carries
//! the broker's and the NameServer's series and they move with `rmq send`; the dashboard's
//! pages, loaded in headless Chromium (Debian's `chromium`), show the topic, the consumer
//! group and its lag (the same figure `rmq consumer-progress` prints), the brokers with their
//! version and a message found by key; a screenshot of each page is saved in the test's temp
//! dir.
//!
//! Without a `chromium` binary the browser part is skipped with a message, unless
//! RMQ_REQUIRE_BROWSER=1 (CI installs Chromium and sets it), where its absence fails the test.

mod support;

use rmq_testkit::process::{free_ports, StandaloneProcess};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::{get, rmq, series};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The text of the first element with `id="{id}"` (a leaf element).
fn by_id(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].to_owned())
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Headless Chromium, as a fresh profile that never reaches for the network: loads `url`,
/// returns the DOM it rendered, and saves a screenshot at `png`.
async fn browser_load(chrome: &Path, profile: &Path, url: &str, png: &Path) -> String {
    let run = |extra: Vec<String>| {
        let mut c = tokio::process::Command::new(chrome);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true);
        c
    };
    let dom = tokio::time::timeout(
        Duration::from_secs(60),
        run(vec!["--dump-dom".into()]).output(),
    )
    .await
    .expect("chromium renders in time")
    .expect("chromium runs");
    assert!(dom.status.success(), "chromium --dump-dom {url}: {dom:?}");
    let shot = tokio::time::timeout(
        Duration::from_secs(60),
        run(vec![
            format!("--screenshot={}", png.display()),
            "--window-size=1280,720".into(),
        ])
        .output(),
    )
    .await
    .expect("chromium screenshots in time")
    .expect("chromium runs");
    assert!(
        shot.status.success(),
        "chromium --screenshot {url}: {shot:?}"
    );
    let bytes = std::fs::read(png).expect("screenshot written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 2_000,
        "{url}: a real PNG"
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_metrics_and_dashboard_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports();
    let sa = StandaloneProcess::start(
        Path::new(env!("CARGO_BIN_EXE_rmq")),
        &dir.path().join("store"),
        ports,
        &["--metrics", "127.0.0.1:0", "--dashboard", "127.0.0.1:0"],
    )
    .await;
    let ns = sa.ns.clone();
    let metrics = sa.announced["metrics"].clone();
    let dashboard = sa.announced["dashboard"].clone();

    // Metrics: one endpoint, both roles, moving with rmq send.
    let (status, before) = get(&metrics, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let (code, _, err) = rmq(&[
        "send", "-n", &ns, "--topic", "OpsTopic", "--body", "ops-body", "--keys", "ops-key",
        "--count", "40",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let (_, after) = get(&metrics, "/metrics").await;
    assert_eq!(
        series(&after, "rocketmq_messages_in_total{topic=\"OpsTopic\"}")
            - series(&before, "rocketmq_messages_in_total{topic=\"OpsTopic\"}"),
        40.0,
        "{after}"
    );
    assert!(
        series(
            &after,
            "rocketmq_namesrv_rpc_latency_count{request_code=\"105\",response_code=\"0\"}"
        ) >= 1.0,
        "the route lookups of rmq send: {after}"
    );
    assert_eq!(series(&after, "rocketmq_namesrv_live_brokers "), 1.0);
    assert!(
        series(&after, "rocketmq_namesrv_network_in_bytes_total")
            > series(&before, "rocketmq_namesrv_network_in_bytes_total")
    );
    assert!(
        series(&after, "rocketmq_network_in_bytes_total")
            - series(&before, "rocketmq_network_in_bytes_total")
            > 40.0 * 8.0
    );
    assert_eq!(after.matches("# EOF").count(), 1, "one exposition");
    assert!(after.trim_end().ends_with("# EOF"));

    // A group consumes (some or all of) it.
    let (code, _, err) = rmq(&[
        "consume", "-n", &ns, "--topic", "OpsTopic", "--group", "OpsGroup", "--from", "first",
        "--count", "10",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, progress, err) =
        rmq(&["consumer-progress", "-g", "OpsGroup", "-n", &ns, "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let progress: serde_json::Value = serde_json::from_str(&progress).unwrap();
    let cli_lag = progress["totalDiff"].as_i64().unwrap();
    // The consumer commits what it consumed, which may be everything pulled so far.
    assert!((0..40).contains(&cli_lag), "{progress}");

    // Rates: two loads of /topics with messages sent between them.
    let (status, _) = get(&dashboard, "/topics").await;
    assert!(status.contains("200"), "{status}");
    let (code, _, err) = rmq(&[
        "send", "-n", &ns, "--topic", "OpsTopic", "--body", "more", "--count", "20",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await; // rates need 0.2 s between samples
    let (_, topics) = get(&dashboard, "/topics").await;
    let row = topics
        .split("<tr>")
        .find(|r| r.contains(">OpsTopic<"))
        .unwrap_or_else(|| panic!("{topics}"));
    let cells: Vec<&str> = row
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    assert_eq!(cells[0], "4", "queues: {row}");
    assert_eq!(cells[1], "60", "held: {row}");
    let rate: f64 = cells[3].parse().unwrap_or_else(|_| panic!("rate: {row}"));
    assert!(rate > 0.0, "{row}");
    // The lag: what rmq consumer-progress showed, plus the 20 sent since.
    let (_, groups) = get(&dashboard, "/groups").await;
    assert_eq!(
        by_id(&groups, "total-lag").as_deref(),
        Some((cli_lag + 20).to_string().as_str()),
        "{groups}"
    );
    // Bad input gets a page, not a crash: an unknown topic and a key lookup without topic.
    let (status, _) = get(&dashboard, "/topic?name=NoSuchTopic").await;
    assert!(status.contains("404"), "{status}");
    let (status, _) = get(&dashboard, "/message?key=x").await;
    assert!(status.contains("400"), "{status}");

    // Every page in a real browser.
    match chromium() {
        None => {
            assert!(
                std::env::var("RMQ_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "RMQ_REQUIRE_BROWSER=1 but no chromium on PATH"
            );
            eprintln!("no chromium on PATH: the browser part of this test is skipped");
        }
        Some(chrome) => {
            let profile = dir.path().join("chromium-profile");
            let shots = dir.path().join("screenshots");
            std::fs::create_dir_all(&shots).unwrap();
            let url = |p: &str| format!("http://{dashboard}{p}");
            let load = |page: &'static str, path: &str| {
                let (chrome, profile, url) = (chrome.clone(), profile.clone(), url(path));
                let png = shots.join(format!("{page}.png"));
                async move { browser_load(&chrome, &profile, &url, &png).await }
            };

            let dom = load("clusters", "/").await;
            assert!(dom.contains("DefaultCluster"), "{dom}");
            assert!(dom.contains(&format!("127.0.0.1:{}", ports.1)), "{dom}");
            assert!(dom.contains("V5_3_3"), "the broker's version: {dom}");

            let dom = load("topics", "/topics").await;
            assert!(dom.contains(">OpsTopic</a>"), "{dom}");
            assert!(!dom.contains(">TBW102<"), "system topics hidden: {dom}");

            let dom = load("topic", "/topic?name=OpsTopic").await;
            assert_eq!(dom.matches("last message").count(), 4, "{dom}");

            let dom = load("groups", "/groups").await;
            assert!(dom.contains(">OpsGroup</a>"), "{dom}");
            assert_eq!(
                by_id(&dom, "total-lag").as_deref(),
                Some((cli_lag + 20).to_string().as_str()),
                "the lag rmq consumer-progress shows, plus the 20 sent since: {dom}"
            );
            assert!(dom.contains("lag behind"), "{dom}");

            let dom = load("group", "/group?name=OpsGroup").await;
            assert_eq!(
                by_id(&dom, "total-lag").as_deref(),
                Some((cli_lag + 20).to_string().as_str())
            );

            let dom = load("message", "/message?topic=OpsTopic&key=ops-key").await;
            assert!(dom.contains("ops-body"), "{dom}");
            assert!(dom.contains("ops-key"), "{dom}");
            eprintln!("screenshots in {}", shots.display());
        }
    }

    // SIGTERM stops everything (the dashboard and metrics endpoints too).
    let status = sa.sigterm_and_wait().await;
    assert!(status.success(), "{status:?}");
}

/// `rmq namesrv --metrics`: the NameServer alone serves its series, and they count requests by
/// code and result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namesrv_metrics_count_requests_by_code_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports().0;
    let ns = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
        .arg("namesrv")
        .args(["--listen-port", &port.to_string()])
        .arg("--kv-config-path")
        .arg(dir.path().join("kv.json"))
        .args([
            "--set",
            &format!(
                "configStorePath={}",
                dir.path().join("ns.properties").display()
            ),
        ])
        .args(["--metrics", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("rmq runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let metrics = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(a) = l.strip_prefix("metrics on http://") {
                return a.trim_end_matches("/metrics").to_owned();
            }
        }
        panic!("rmq namesrv exited before serving metrics");
    })
    .await
    .expect("metrics served in time");
    for _ in 0..3 {
        let (code, _, _) = rmq(&["route", "NoSuchTopic", "-n", &ns]).await;
        assert_eq!(code, 4, "not found");
    }
    let (code, _, err) = rmq(&["clusters", "-n", &ns]).await;
    assert_eq!(code, 0, "{err}");
    let (status, text) = get(&metrics, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        series(
            &text,
            "rocketmq_namesrv_rpc_latency_count{request_code=\"105\",response_code=\"17\"}"
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            "rocketmq_namesrv_rpc_latency_count{request_code=\"106\",response_code=\"0\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(series(&text, "rocketmq_namesrv_live_brokers "), 0.0);
    assert!(series(&text, "rocketmq_namesrv_network_out_bytes_total") > 0.0);
    assert!(!text.contains("rocketmq_messages_in"), "no broker series");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
