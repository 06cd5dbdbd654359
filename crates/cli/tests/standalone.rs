//! `rmq standalone` as a process: start, `rmq send` in every mode into our own broker, pull it
//! back, stop with SIGTERM (clean-stop marker); and kill -9 under SYNC_FLUSH load, after which
//! every acknowledged message is still there and consumer offsets never run ahead.

use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use rmq_store::record::{self, Found, Record};
use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

use rmq_testkit::process::{free_ports, StandaloneProcess};

/// Starts `rmq standalone` on `store` and waits for its "ready" line.
async fn standalone(store: &Path, ports: (u16, u16), extra: &[&str]) -> StandaloneProcess {
    StandaloneProcess::start(Path::new(env!("CARGO_BIN_EXE_rmq")), store, ports, extra).await
}

async fn rmq_send(ns: &str, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
            .arg("send")
            .args(args)
            .args(["-n", ns])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rmq send in time")
    .unwrap();
    assert!(
        out.status.success(),
        "rmq send {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

/// Every record of `topic` queue `queue` from offset 0, by plain pulls.
async fn pull_all(c: &RemotingClient, broker: &str, topic: &str, queue: i32) -> Vec<Record> {
    pull_all_as(c, broker, "CG_check", topic, queue).await
}

/// Same, as consumer group `group` (which a pull creates on the broker).
async fn pull_all_as(
    c: &RemotingClient,
    broker: &str,
    group: &str,
    topic: &str,
    queue: i32,
) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let req = RemotingCommand::request(request::PULL_MESSAGE)
            .with_ext("consumerGroup", group.to_owned())
            .with_ext("topic", topic.to_owned())
            .with_ext("queueId", queue.to_string())
            .with_ext("queueOffset", offset.to_string())
            .with_ext("maxMsgNums", "32")
            .with_ext("sysFlag", "4")
            .with_ext("commitOffset", "0")
            .with_ext("suspendTimeoutMillis", "0")
            .with_ext("subscription", "*")
            .with_ext("subVersion", "0");
        let r = c
            .invoke_sync(broker, req, Duration::from_secs(10))
            .await
            .expect("pull answered");
        if r.code != 0 {
            return out;
        }
        let mut at = 0;
        while at < r.body.len() {
            match record::decode(&r.body.slice(at..), true).expect("valid record") {
                Found::Message(m, size) => {
                    out.push(*m);
                    at += size;
                }
                Found::Blank => break,
            }
        }
        offset = r.ext("nextBeginOffset").unwrap().parse().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_every_send_mode_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = standalone(&store, free_ports(), &[]).await;
    let ns = p.ns.clone();
    let body_file = dir.path().join("big.txt");
    std::fs::write(&body_file, "compressible ".repeat(1000)).unwrap();
    let body_arg = format!("@{}", body_file.display());
    let runs: [&[&str]; 5] = [
        &[
            "--topic", "Modes", "--body", "sync", "--count", "20", "--tag", "TagS",
        ],
        &[
            "--topic", "Modes", "--body", "async", "--count", "200", "--mode", "async",
        ],
        &[
            "--topic", "Modes", "--body", "oneway", "--count", "20", "--mode", "oneway",
        ],
        &[
            "--topic", "Modes", "--body", "batch", "--count", "40", "--batch", "10",
        ],
        &[
            "--topic", "Modes", "--body", &body_arg, "--count", "3", "--keys", "big-key",
        ],
    ];
    for args in runs {
        let out = rmq_send(&ns, args).await;
        assert!(out.contains("failed=0"), "{out}");
    }
    let c = client();
    // Oneway sends are not acknowledged: wait for them to land.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    while Instant::now() < deadline {
        all.clear();
        for q in 0..4 {
            all.extend(pull_all(&c, &p.broker, "Modes", q).await);
        }
        if all.len() >= 283 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let count = |b: &[u8]| all.iter().filter(|r| &r.body[..] == b).count();
    assert_eq!(count(b"sync"), 20);
    assert_eq!(count(b"async"), 200);
    assert_eq!(count(b"oneway"), 20);
    assert_eq!(count(b"batch"), 40);
    let big: Vec<&Record> = all.iter().filter(|r| r.sys_flag & 0x1 != 0).collect();
    assert_eq!(big.len(), 3, "the 13 KB body is stored compressed");
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::ZlibDecoder::new(&big[0].body[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated, std::fs::read(&body_file).unwrap());
    assert_eq!(
        record::property(&big[0].properties, "KEYS"),
        Some("big-key")
    );
    let uniq: HashSet<&str> = all
        .iter()
        .filter_map(|r| record::property(&r.properties, "UNIQ_KEY"))
        .collect();
    assert_eq!(
        uniq.len(),
        20 + 200 + 20 + 4 + 3,
        "every send but a batch's items has its own id"
    );
    assert!(all
        .iter()
        .filter(|r| &r.body[..] == b"sync")
        .all(|r| record::property(&r.properties, "TAGS") == Some("TagS")));

    // rmq consume reads them all back, once, and exits at --count.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
            .args([
                "consume", "--topic", "Modes", "--group", "CG_cli", "--from", "first", "--count",
                "283", "--print", "json",
            ])
            .args(["-n", &ns])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rmq consume ends at --count")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 283);
    let ids: HashSet<String> = lines
        .iter()
        .map(|v| v["offsetMsgId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 283, "each message once");
    assert!(lines.iter().any(|v| v["tags"] == "TagS"));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("consumed=283"), "{summary}");
    assert!(summary.contains("e2e_p99_ms="), "{summary}");

    // A reader that goes away after one line (`rmq consume | head -1`): rmq stops quietly with
    // SIGPIPE's status, no panic.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args([
            "consume", "--topic", "Modes", "--group", "CG_pipe", "--from", "first", "--print",
            "json",
        ])
        .args(["-n", &ns])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(out_lines.next_line().await.unwrap().is_some());
    drop(out_lines);
    let piped = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("rmq consume ends when its reader goes")
        .unwrap();
    let err = String::from_utf8_lossy(&piped.stderr);
    assert_eq!(piped.status.code(), Some(141), "{err}");
    assert!(!err.contains("panic"), "{err}");

    let status = p.sigterm_and_wait().await;
    assert!(status.success(), "{status:?}");
    assert!(
        !store.join("abort").exists(),
        "a clean stop removes the abort marker"
    );
    for f in [
        "topics.json",
        "subscriptionGroup.json",
        "consumerOffset.json",
        "delayOffset.json",
    ] {
        assert!(store.join("config").join(f).is_file(), "{f} written");
    }

    // `rmq store inspect` and `verify` on what it left, then on a damaged copy.
    let store_cmd = |args: &[&str], dir: &Path| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"));
        c.arg("store").args(args).arg(dir);
        c
    };
    let out = store_cmd(&["inspect", "--json"], &store)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cleanStop"], true);
    let modes: u64 = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["topic"] == "Modes")
        .map(|q| q["maxOffset"].as_u64().unwrap() - q["minOffset"].as_u64().unwrap())
        .sum();
    assert_eq!(modes, 283, "{v}");
    assert!(v["topics"].as_array().unwrap().iter().any(|t| t == "Modes"));
    assert!(v["consumerOffsets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["group"] == "CG_cli"));
    let table = store_cmd(&["inspect"], &store).output().await.unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("last stop: clean") && table.contains("Modes"),
        "{table}"
    );
    let out = store_cmd(&["verify"], &store).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim_end().ends_with("OK"),
        "{text}"
    );
    // One flipped byte in the first record's body: a CRC failure, exit 1.
    let seg = store.join("commitlog").join(format!("{:020}", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let body_len_at = 84;
    assert!(u32::from_be_bytes(bytes[body_len_at..body_len_at + 4].try_into().unwrap()) > 0);
    bytes[body_len_at + 4] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();
    let out = store_cmd(&["verify"], &store).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PROBLEM") && text.contains("DAMAGED"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_sync_flush_load_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let ports = free_ports();
    let flags = ["--set", "flushDiskType=SYNC_FLUSH"];
    let mut p = standalone(&store, ports, &flags).await;
    let producer =
        rmq_producer::Producer::start(rmq_producer::ProducerConfig::new("PG_kill", &[&p.ns]))
            .await
            .unwrap();
    // Create the topic with a first send, then load it from 8 tasks until the kill.
    producer
        .send(rmq_producer::message::Message::new("Crash", "warm"))
        .await
        .unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (producer, acked, stop) = (producer.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let body = format!("t{t}-{i}");
                i += 1;
                let msg = rmq_producer::message::Message::new("Crash", body.clone().into_bytes());
                if let Ok(r) = producer.send(msg).await {
                    if r.status == rmq_producer::result::SendStatus::SendOk {
                        acked.lock().unwrap().push(body);
                    }
                }
            }
        }));
    }
    // Commit consumer offsets as a consumer would, remembering the last one acknowledged.
    let c = client();
    let mut last_committed = 0i64;
    let kill_after = Duration::from_millis(700 + (std::process::id() as u64 % 600));
    let started = Instant::now();
    // The group exists once a pull named it (UPDATE_CONSUMER_OFFSET never creates one).
    let _ = pull_all_as(&c, &p.broker, "CG_kill", "Crash", 3).await;
    while started.elapsed() < kill_after {
        let next = last_committed + 1;
        let req = RemotingCommand::request(request::UPDATE_CONSUMER_OFFSET)
            .with_ext("consumerGroup", "CG_kill")
            .with_ext("topic", "Crash")
            .with_ext("queueId", "0")
            .with_ext("commitOffset", next.to_string());
        if let Ok(r) = c.invoke_sync(&p.broker, req, Duration::from_secs(2)).await {
            if r.code == 0 {
                last_committed = next;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.child.start_kill().unwrap();
    p.child.wait().await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    producer.shutdown().await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "load before the kill: {} acknowledged",
        acked.len()
    );
    assert!(
        store.join("abort").exists(),
        "kill -9 leaves the abort marker"
    );

    // What a Java broker would find before any recovery of ours ran: a reader that knows only
    // Java's formats walks the log as Java's recovery does; every acknowledged message is in
    // the valid prefix, and every consume-queue entry below its end points at its record.
    let (java_records, java_end) = rmq_testkit::java_format::walk_commit_log(&store);
    let java_bodies: HashSet<String> = java_records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let missing = acked.iter().filter(|b| !java_bodies.contains(*b)).count();
    assert_eq!(
        missing, 0,
        "acknowledged but not in the log Java would recover"
    );
    for q in 0..4 {
        for (i, (phys, size, _)) in rmq_testkit::java_format::read_consume_queue(&store, "Crash", q)
            .iter()
            .enumerate()
        {
            if phys + i64::from(*size) > java_end {
                continue; // past the valid end: Java's recovery drops it, as ours does
            }
            let r = java_records
                .iter()
                .find(|r| r.physical_offset == *phys)
                .expect("entry points at a record");
            assert_eq!((r.queue_id, r.queue_offset), (q, i as i64));
        }
    }
    // `rmq store verify` agrees: no damage, at most a torn tail and entries past it.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["store", "verify", "--json"])
        .arg(&store)
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["records"].as_u64().unwrap() >= acked.len() as u64);

    let p = standalone(&store, ports, &flags).await;
    let c = client();
    let mut stored = HashSet::new();
    for q in 0..4 {
        for r in pull_all(&c, &p.broker, "Crash", q).await {
            stored.insert(String::from_utf8_lossy(&r.body).into_owned());
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|b| !stored.contains(*b)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged sends lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    let q = RemotingCommand::request(request::QUERY_CONSUMER_OFFSET)
        .with_ext("consumerGroup", "CG_kill")
        .with_ext("topic", "Crash")
        .with_ext("queueId", "0");
    let r = c
        .invoke_sync(&p.broker, q, Duration::from_secs(5))
        .await
        .unwrap();
    if r.code == 0 {
        let o: i64 = r.ext("offset").unwrap().parse().unwrap();
        assert!(
            o <= last_committed,
            "offset {o} ahead of the last commit {last_committed}"
        );
    }
    eprintln!("kill -9 after {kill_after:?}: {} acknowledged, all {} stored; offset committed {last_committed}", acked.len(), stored.len());
    let status = p.sigterm_and_wait().await;
    assert!(status.success());
}
