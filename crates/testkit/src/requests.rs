//! Requests a test sends the broker on a raw socket or through a client: a send and a pull,
//! each one typed header.

use rmq_protocol::codes::request;
use rmq_protocol::RemotingCommand;

/// A SEND_MESSAGE_V2 of `body` to `topic` queue `queue` with extra properties.
pub fn send_request(
    topic: &str,
    queue: i32,
    body: &str,
    props: &[(&str, &str)],
) -> RemotingCommand {
    let mut p = vec![
        ("UNIQ_KEY".to_owned(), rmq_model::msg_id::new_unique_id()),
        ("WAIT".to_owned(), "true".to_owned()),
    ];
    p.extend(
        props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let h = rmq_protocol::headers::send::SendMessageRequestHeaderV2 {
        a: "PG_test".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: 4,
        e: queue,
        f: 0,
        g: rmq_broker::now_ms(),
        h: 0,
        i: Some(rmq_model::message::encode_properties(&p)),
        j: Some(0),
        k: Some(false),
        l: None,
        m: Some(false),
        n: Some("broker-a".into()),
    };
    RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &h).with_body(body.to_owned())
}

/// A PULL_MESSAGE carrying its subscription (no heartbeat needed), suspending up to
/// `suspend_ms`.
pub fn pull_request(
    group: &str,
    topic: &str,
    queue: i32,
    offset: i64,
    suspend_ms: i64,
) -> RemotingCommand {
    let h = rmq_protocol::headers::pull::PullMessageRequestHeader {
        sys_flag: 0x2 | 0x4,
        suspend_timeout_millis: suspend_ms,
        ..rmq_protocol::headers::pull::PullMessageRequestHeader::subscribed(
            group, topic, queue, offset, "*",
        )
    };
    RemotingCommand::request_with_header(request::PULL_MESSAGE, &h)
}
