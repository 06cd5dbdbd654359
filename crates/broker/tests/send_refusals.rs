//! Every refusal of the send path answers with Java's code and remark (spec §2.1), and the
//! retry-topic rule sends an exhausted message to the DLQ.

mod support;

use rmq_protocol::codes::response;
use rmq_protocol::RemotingCommand;

async fn send(sa: &support::Standalone, req: RemotingCommand) -> RemotingCommand {
    support::call(&support::client(), &sa.broker_addr(), req).await
}

fn with_header(
    req: RemotingCommand,
    f: impl FnOnce(&mut rmq_protocol::headers::send::SendMessageRequestHeaderV2),
) -> RemotingCommand {
    let mut h: rmq_protocol::headers::send::SendMessageRequestHeaderV2 =
        req.decode_header().unwrap();
    f(&mut h);
    let mut req = req;
    req.ext_fields = None;
    req.set_header(&h);
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_javas_codes_and_remarks() {
    let sa = support::Standalone::start(|c| c.max_message_size = 1024).await;
    let faq = "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.";

    let r = send(&sa, support::send_request("bad topic", 0, "x", &[])).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (
            response::INVALID_PARAMETER,
            Some(
                "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
            )
        )
    );
    assert_eq!(
        r.ext("MSG_REGION"),
        Some("DefaultRegion"),
        "every answer from the checks on"
    );
    assert_eq!(r.ext("TRACE_ON"), Some("true"));

    let long = "T".repeat(128);
    let r = send(&sa, support::send_request(&long, 0, "x", &[])).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (
            response::INVALID_PARAMETER,
            Some("The specified topic is longer than topic max length.")
        )
    );

    let r = send(
        &sa,
        support::send_request("SCHEDULE_TOPIC_XXXX", 0, "x", &[]),
    )
    .await;
    assert_eq!(
        (r.code, r.remark_str()),
        (
            response::NO_PERMISSION,
            Some("Sending message to topic[SCHEDULE_TOPIC_XXXX] is forbidden.")
        )
    );

    // An unknown default topic cannot be inherited from.
    let r = send(
        &sa,
        with_header(support::send_request("Fresh", 0, "x", &[]), |h| {
            h.c = "NoSuchDefault".into()
        }),
    )
    .await;
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
    assert_eq!(
        r.remark_str(),
        Some(&*format!(
            "topic[Fresh] not exist, apply first please!{faq}"
        ))
    );

    // Auto-created from TBW102 with min(d, 8) queues: a queue id past them is refused with
    // Java's TopicConfig text.
    assert_eq!(
        send(&sa, support::send_request("Auto", 0, "x", &[]))
            .await
            .code,
        0
    );
    let tc = sa.broker().state().topics.get("Auto").unwrap();
    assert_eq!(
        (tc.read_queue_nums, tc.write_queue_nums, tc.perm),
        (4, 4, 6)
    );
    let r = send(&sa, support::send_request("Auto", 4, "x", &[])).await;
    assert_eq!(r.code, response::INVALID_PARAMETER);
    let remark = r.remark_str().unwrap();
    assert!(
        remark.starts_with("request queueId[4] is illegal, TopicConfig [topicName=Auto, readQueueNums=4, writeQueueNums=4, perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false, attributes={}] Producer: 127.0.0.1:"),
        "{remark}"
    );

    // Bodies past maxMessageSize.
    let r = send(
        &sa,
        support::send_request("Auto", 0, &"b".repeat(1025), &[]),
    )
    .await;
    assert_eq!(r.code, response::MESSAGE_ILLEGAL);
    assert_eq!(r.remark_str(), Some("the message is illegal, maybe msg body or properties length not matched. msg body length limit 1024B, msg properties length limit 32KB."));

    // A batch to a retry topic.
    let batch = with_header(support::send_request("%RETRY%G", 0, "", &[]), |h| {
        h.m = Some(true)
    });
    let r = send(&sa, batch).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (
            response::MESSAGE_ILLEGAL,
            Some("batch request does not support retry group %RETRY%G")
        )
    );

    // A negative queue id picks a queue.
    let r = send(&sa, support::send_request("Auto", -1, "x", &[])).await;
    assert_eq!(r.code, 0);
    let q: i32 = r.ext("queueId").unwrap().parse().unwrap();
    assert!((0..4).contains(&q), "{q}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auto_creation_when_switched_off() {
    let sa = support::Standalone::start(|c| c.auto_create_topic_enable = false).await;
    assert!(sa.broker().state().topics.get("TBW102").is_none());
    let r = send(&sa, support::send_request("Nope", 0, "x", &[])).await;
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_retry_send_goes_to_the_dlq() {
    let sa = support::Standalone::start(|_| {}).await;
    // reconsumeTimes 17 > maxReconsumeTimes 16: %DLQ%G queue 0, DELAY -1 stored.
    let req = with_header(support::send_request("%RETRY%G", 0, "tired", &[]), |h| {
        h.j = Some(17);
        h.l = Some(16);
    });
    let r = send(&sa, req).await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(r.ext("queueId"), Some("0"));
    let state = sa.broker().state().clone();
    let dlq = state
        .store
        .run(|st| st.get_message("%DLQ%G", 0, 0, 1, 1 << 20, None).unwrap())
        .await
        .unwrap();
    let rec = support::records(&dlq.records[0].1).remove(0);
    assert_eq!(&rec.body[..], b"tired");
    assert_eq!(
        rmq_store::record::property(&rec.properties, "DELAY"),
        Some("-1")
    );
    // Within the limit it stays on the retry topic.
    let req = with_header(support::send_request("%RETRY%G", 0, "again", &[]), |h| {
        h.j = Some(3)
    });
    assert_eq!(send(&sa, req).await.code, 0);
    assert_eq!(
        state
            .store
            .run(|st| st.max_offset("%RETRY%G", 0))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_broker_config_applies_persists_and_re_registers() {
    use rmq_model::Caller;
    use rmq_protocol::codes::request;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "brokerName=broker-a\n").unwrap();
    let sa =
        support::Standalone::start(|c| c.broker_config_path = conf.display().to_string()).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "Perm", 2).await;
    let update = |body: &str| {
        RemotingCommand::request(request::UPDATE_BROKER_CONFIG).with_body(body.to_owned())
    };
    let r = support::call(&c, &addr, update("brokerConfigPath=/etc/passwd\n")).await;
    assert_eq!(
        (r.code, r.remark_str()),
        (
            response::NO_PERMISSION,
            Some("Can not update config in black list.")
        )
    );
    // Read-only broker: the registration that follows carries the topics without write.
    let r = support::call(&c, &addr, update("brokerPermission=4\n")).await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let route = c
        .call(
            &sa.ns_addr(),
            &rmq_model::call::GetRouteInfo::new("Perm"),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(route.queue_datas[0].perm, 4);
    let cfg = support::call(
        &c,
        &addr,
        RemotingCommand::request(request::GET_BROKER_CONFIG),
    )
    .await;
    assert!(String::from_utf8_lossy(&cfg.body).contains("brokerPermission=4\n"));
    assert!(cfg.ext("version").is_some());
    assert!(
        std::fs::read_to_string(&conf)
            .unwrap()
            .contains("brokerPermission=4"),
        "the -c file is rewritten"
    );
}

/// Fails every sync of a commit-log file under one store while armed.
struct FailLogSyncs {
    root: std::path::PathBuf,
    armed: std::sync::atomic::AtomicBool,
}

impl rmq_store::durable::sim::Observer for FailLogSyncs {
    fn before_sync(&self, path: &std::path::Path) -> std::io::Result<()> {
        let hit = self.armed.load(std::sync::atomic::Ordering::SeqCst)
            && path.starts_with(&self.root)
            && path.to_string_lossy().contains("commitlog");
        if hit {
            Err(std::io::Error::from_raw_os_error(5)) // EIO
        } else {
            Ok(())
        }
    }

    fn synced(&self, _: &std::path::Path) {}
}

/// A failed fsync under SYNC_FLUSH: the send it covered is not acknowledged, every later send
/// is refused with Java's not-writeable answer until a restart, and broker-status says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_fsync_sends_are_refused_and_broker_status_says_why() {
    use std::sync::atomic::Ordering;
    let mut sa = support::Standalone::start(|c| c.flush_disk_type = "SYNC_FLUSH".into()).await;
    let c = support::client();
    support::create_topic(&c, &sa.broker_addr(), "Durable", 1).await;
    let ok = send(&sa, support::send_request("Durable", 0, "before", &[])).await;
    assert_eq!(ok.code, response::SUCCESS);
    let fail = std::sync::Arc::new(FailLogSyncs {
        root: sa.dir.path().to_owned(),
        armed: true.into(),
    });
    rmq_store::durable::sim::set_observer(Some(fail.clone()));
    let lost = send(&sa, support::send_request("Durable", 0, "during", &[])).await;
    assert_ne!(
        lost.code,
        response::SUCCESS,
        "acknowledged without its fsync"
    );
    fail.armed.store(false, Ordering::SeqCst);
    let refused = send(&sa, support::send_request("Durable", 0, "after", &[])).await;
    assert_eq!(refused.code, response::SERVICE_NOT_AVAILABLE);
    assert!(
        refused
            .remark_str()
            .unwrap_or_default()
            .contains("not writeable"),
        "{:?}",
        refused.remark_str()
    );
    let status = support::call(
        &c,
        &sa.broker_addr(),
        RemotingCommand::request(rmq_protocol::codes::request::GET_BROKER_RUNTIME_INFO),
    )
    .await;
    let table: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(table["table"]["storeWritable"], "false");
    assert!(table["table"]["storeWriteFailure"]
        .as_str()
        .unwrap()
        .contains("Input/output error"));
    rmq_store::durable::sim::set_observer(None);
    // A restart recovers from the disk and takes sends again; the acknowledged one is there.
    sa.stop_broker().await;
    sa.start_broker().await;
    let again = send(&sa, support::send_request("Durable", 0, "restarted", &[])).await;
    assert_eq!(again.code, response::SUCCESS, "{:?}", again.remark_str());
    let got = support::call(
        &c,
        &sa.broker_addr(),
        support::pull_request("CG_durable", "Durable", 0, 0, 1_000),
    )
    .await;
    assert_eq!(&support::records(&got.body)[0].body[..], b"before");
}
