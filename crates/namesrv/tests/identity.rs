//! Brokers are tied to the connection they registered on, not to an address: a client that
//! claims a broker's address (a PROXY header from a trusted proxy address, here loopback) and then
//! closes its own connection must not get that broker unregistered. Before, the NameServer
//! matched closed channels by peer address string.

mod support;

use bytes::BytesMut;
use rmq_protocol::codes::request;
use rmq_protocol::frame::encode_to_vec;
use rmq_protocol::{RemotingCodec, RemotingCommand};
use std::time::Duration;
use support::{call, client, register_body, register_request, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

const CLAIMED: &str = "PROXY TCP4 10.9.8.7 127.0.0.1 40001 9876\r\n";

async fn read_frame(s: &mut TcpStream) -> RemotingCommand {
    let mut buf = BytesMut::new();
    let mut codec = RemotingCodec::default();
    loop {
        if let Some(cmd) = codec.decode(&mut buf).unwrap() {
            return cmd;
        }
        let n = tokio::time::timeout(Duration::from_secs(3), s.read_buf(&mut buf))
            .await
            .expect("answer in time")
            .unwrap();
        assert!(n > 0, "closed before answering");
    }
}

async fn route_has_broker(ns_addr: &str) -> bool {
    let c = client();
    let r = call(
        &c,
        ns_addr,
        RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", "TopicTest"),
    )
    .await;
    c.shutdown();
    r.code == 0
}

#[tokio::test]
async fn a_client_claiming_a_brokers_address_cannot_unregister_it() {
    let (ns, _dir) = start(|_| {}).await;
    let addr = ns.local_addr();
    // The broker's registration arrives through a proxy that says it comes from 10.9.8.7:40001.
    let mut broker = TcpStream::connect(addr).await.unwrap();
    let reg = register_request(
        "DefaultCluster",
        "broker-a",
        0,
        "10.9.8.7:10911",
        &register_body(&["TopicTest", "TBW102"], 1),
    );
    broker
        .write_all(&[CLAIMED.as_bytes(), &encode_to_vec(&reg).unwrap()].concat())
        .await
        .unwrap();
    assert_eq!(read_frame(&mut broker).await.code, 0);
    assert!(route_has_broker(&addr.to_string()).await);

    // Another client claims the same source address, says something, and leaves.
    let mut impostor = TcpStream::connect(addr).await.unwrap();
    let ask = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
    impostor
        .write_all(&[CLAIMED.as_bytes(), &encode_to_vec(&ask).unwrap()].concat())
        .await
        .unwrap();
    assert_eq!(read_frame(&mut impostor).await.code, 0);
    drop(impostor);
    // Give the close event time to be handled (bounded): the broker must stay throughout.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        assert!(
            route_has_broker(&addr.to_string()).await,
            "the impostor's close unregistered the broker"
        );
    }

    // The broker's own connection closing does unregister it (the positive control).
    drop(broker);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while route_has_broker(&addr.to_string()).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker's own close did not unregister it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ns.shutdown_now();
}
