//! Bad input gets a clear error and loses nothing: every request code the broker handles,
//! with missing, malformed and hostile fields and bodies, is answered (an error, never a
//! panic or a hang), and the broker keeps serving and keeps what it stored.

mod support;

use rmq_protocol::codes::request as rc;
use rmq_protocol::RemotingCommand;
use std::time::Duration;

/// Deterministic pseudo-random bytes (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const CODES: &[i32] = &[
    rc::SEND_MESSAGE,
    rc::SEND_MESSAGE_V2,
    rc::SEND_BATCH_MESSAGE,
    rc::CONSUMER_SEND_MSG_BACK,
    rc::PULL_MESSAGE,
    rc::LITE_PULL_MESSAGE,
    rc::QUERY_MESSAGE,
    rc::VIEW_MESSAGE_BY_ID,
    rc::HEART_BEAT,
    rc::UNREGISTER_CLIENT,
    rc::GET_CONSUMER_LIST_BY_GROUP,
    rc::QUERY_CONSUMER_OFFSET,
    rc::UPDATE_CONSUMER_OFFSET,
    rc::GET_MAX_OFFSET,
    rc::GET_MIN_OFFSET,
    rc::GET_EARLIEST_MSG_STORETIME,
    rc::SEARCH_OFFSET_BY_TIMESTAMP,
    rc::LOCK_BATCH_MQ,
    rc::UNLOCK_BATCH_MQ,
    rc::CHECK_CLIENT_CONFIG,
    rc::UPDATE_AND_CREATE_TOPIC,
    rc::DELETE_TOPIC_IN_BROKER,
    rc::GET_ALL_TOPIC_CONFIG,
    rc::GET_TOPIC_CONFIG,
    rc::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    rc::DELETE_SUBSCRIPTIONGROUP,
    rc::GET_BROKER_RUNTIME_INFO,
    rc::GET_CONSUMER_CONNECTION_LIST,
    rc::GET_CONSUME_STATS,
    rc::GET_TOPIC_STATS_INFO,
    rc::GET_BROKER_CONFIG,
    rc::UPDATE_BROKER_CONFIG,
    rc::GET_ALL_CONSUMER_OFFSET,
    rc::GET_ALL_DELAY_OFFSET,
];

const FIELDS: &[&str] = &[
    "topic",
    "queueId",
    "queueOffset",
    "maxMsgNums",
    "sysFlag",
    "commitOffset",
    "suspendTimeoutMillis",
    "subscription",
    "subVersion",
    "consumerGroup",
    "group",
    "offset",
    "delayLevel",
    "timestamp",
    "key",
    "maxNum",
    "beginTimestamp",
    "endTimestamp",
    "readQueueNums",
    "writeQueueNums",
    "perm",
    "topicFilterType",
    "attributes",
    "groupName",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "l",
    "m",
    "commitOffset",
    "boundaryType",
];

const VALUES: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "7",
    "2147483647",
    "-2147483648",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "NaN",
    "true",
    "TopicA",
    "%RETRY%G",
    "%DLQ%G",
    "..",
    "../../etc",
    "a b",
    "TBW102",
    "SCHEDULE_TOPIC_XXXX",
    "*",
    "A || B",
    "+k=v,-x",
    "=",
    "\u{1}\u{2}",
    "Ω",
    "upper",
    "LOWER",
];

const BODIES: &[&str] = &[
    "", "{", "null", "[]", "{\"mqSet\":[{\"topic\":1}]}",
    "{\"clientID\":\"x\",\"consumerDataSet\":[{\"groupName\":\"\",\"subscriptionDataSet\":[{\"topic\":\"\"}]}]}",
    "{\"groupName\":\"G\",\"retryQueueNums\":-5,\"retryMaxTimes\":-1}",
    "brokerPermission=abc\n", "listenPort=0\n", "\u{0}\u{0}\u{0}\u{1}\u{0}",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_answers_and_the_broker_keeps_its_data() {
    let sa = support::Standalone::start(|_| {}).await;
    let addr = sa.broker_addr();
    let c = support::client();
    support::create_topic(&c, &addr, "Keep", 1).await;
    assert_eq!(
        support::call(&c, &addr, support::send_request("Keep", 0, "precious", &[]))
            .await
            .code,
        0
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..1500 {
        let code = CODES[(rng.next() % CODES.len() as u64) as usize];
        let mut req = RemotingCommand::request(code);
        for _ in 0..(rng.next() % 12) {
            req = req.with_ext(rng.pick(FIELDS), rng.pick(VALUES));
        }
        let body = rng.pick(BODIES);
        if !body.is_empty() {
            req = req.with_body(body.to_owned());
        }
        // Pulls may be held: a short suspension keeps the test quick.
        if code == rc::PULL_MESSAGE || code == rc::LITE_PULL_MESSAGE {
            req = req.with_ext("suspendTimeoutMillis", "10");
        }
        match c.invoke_sync(&addr, req, Duration::from_secs(10)).await {
            Ok(_) => {}
            Err(e) => panic!("round {round}, code {code}: no answer: {e}"),
        }
    }
    // Still serving, the message still there.
    let got = support::call(&c, &addr, support::pull_request("CG_keep", "Keep", 0, 0, 0)).await;
    assert_eq!(got.code, 0, "{:?}", got.remark);
    assert_eq!(&support::records(&got.body)[0].body[..], b"precious");
    let canary = support::call(&c, &addr, support::send_request("Keep", 0, "after", &[])).await;
    assert_eq!(canary.code, 0);
}
