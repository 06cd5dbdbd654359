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
