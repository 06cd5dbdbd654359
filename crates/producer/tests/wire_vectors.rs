//! Every encoding the producer writes, against real Java 5.3.3 producer frames
//! (`../shared/vectors/broker-java`) and third-party clients' SEND frames (`vectors/clients`).

use bytes::{Buf, Bytes, BytesMut};
use rmq_producer::message::{decode_properties, Message};
use rmq_producer::result::{SendResult, SendStatus};
use rmq_producer::route::MessageQueue;
use rmq_producer::wire::{self, Target};
use rmq_protocol::frame::encode_to_vec;
use rmq_protocol::headers::send::{SendMessageRequestHeader, SendMessageRequestHeaderV2};
use rmq_protocol::{LanguageCode, RemotingCodec, RemotingCommand};
use std::io::Read;
use std::path::PathBuf;
use tokio_util::codec::Decoder;

fn vectors() -> PathBuf {
    match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

fn frame(rel: &str) -> (Vec<u8>, RemotingCommand) {
    let bytes = std::fs::read(vectors().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let cmd = RemotingCodec::default()
        .decode(&mut BytesMut::from(&bytes[..]))
        .unwrap()
        .unwrap();
    (bytes, cmd)
}

/// Our request for the same message, in Java's identity (opaque, language, version).
fn like_java(mut ours: RemotingCommand, java: &RemotingCommand) -> RemotingCommand {
    ours.opaque = java.opaque;
    ours.language = LanguageCode::JAVA;
    ours.version = java.version;
    ours
}

fn v2(cmd: &RemotingCommand) -> SendMessageRequestHeaderV2 {
    cmd.decode_header().unwrap()
}

#[test]
fn send_message_v2_is_byte_identical_to_java() {
    let (java_bytes, java) = frame("broker-java/001_req_c310.bin");
    let h = v2(&java);
    // The same message, properties set in the order Java's HashMap wrote them.
    let props = decode_properties(h.i.as_deref().unwrap());
    let mut msg = Message::new("CaptureTopic", java.body.clone());
    for (k, v) in &props {
        msg.set_property(k, v.clone());
    }
    let p = wire::prepare(&mut msg, 4096, 5, false);
    assert_eq!(
        p.unique_id, "C000020215245FFD2B27693061400000",
        "an existing UNIQ_KEY is kept"
    );
    let ours = wire::send_request(
        &Target {
            group: "PG_capture",
            topic: "CaptureTopic",
            broker_name: "broker-a",
            queue_id: 2,
            born_timestamp: h.g,
        },
        0,
        &p,
        false,
    );
    let ours = encode_to_vec(&like_java(ours, &java)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&java_bytes)
    );
}

#[test]
fn new_messages_get_uniq_key_and_wait_like_java() {
    let mut msg = Message::new("T", "hello")
        .with_keys(&["k1", "k2"])
        .with_tags("TagA");
    let p = wire::prepare(&mut msg, 4096, 5, false);
    let props = decode_properties(&p.properties);
    let get = |k: &str| {
        props
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("KEYS"), Some("k1 k2"));
    assert_eq!(get("WAIT"), Some("true"));
    assert_eq!(get("UNIQ_KEY"), Some(p.unique_id.as_str()));
    assert_eq!(p.unique_id.len(), 32);
    // Capture 005 has the same shape: space-joined keys and a user property.
    let (_, java) = frame("broker-java/005_req_c310.bin");
    let jp = decode_properties(v2(&java).i.as_deref().unwrap());
    assert!(jp.iter().any(|(k, v)| k == "KEYS" && v == "k1 k2"));
    assert!(jp.iter().any(|(k, v)| k == "userProp" && v == "v1"));
}

#[test]
fn compression_sets_sysflag_769_and_zlib_level_5() {
    let (_, java) = frame("broker-java/010_req_c310.bin");
    let h = v2(&java);
    assert_eq!(h.f, 769);
    let mut original = Vec::new();
    flate2::read::ZlibDecoder::new(&java.body[..])
        .read_to_end(&mut original)
        .unwrap();
    assert!(original.len() >= 4096);
    assert_eq!(&java.body[..2], &[0x78, 0x5E]);
    let mut msg = Message::new("CaptureTopic", original.clone());
    let p = wire::prepare(&mut msg, 4096, 5, false);
    assert_eq!(p.sys_flag, 769);
    // A zlib stream (RFC 1950: deflate, 32K window, valid check bits). Java's header says level
    // 2-5 (0x5E) where miniz says "default" (0x9C); the level bits are informational only.
    assert_eq!(p.body[0], 0x78);
    assert_eq!((u16::from(p.body[0]) << 8 | u16::from(p.body[1])) % 31, 0);
    let mut back = Vec::new();
    flate2::read::ZlibDecoder::new(&p.body[..])
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, original);
    // Below the threshold, and batches: never compressed.
    let mut small = Message::new("T", vec![b'x'; 4095]);
    assert_eq!(wire::prepare(&mut small, 4096, 5, false).sys_flag, 0);
    let mut batch = Message::new("T", original);
    assert_eq!(wire::prepare(&mut batch, 4096, 5, true).sys_flag, 0);
    // Transaction half messages carry TRANSACTION_PREPARED.
    let mut tx = Message::new("T", "x");
    tx.set_property("TRAN_MSG", "true");
    assert_eq!(wire::prepare(&mut tx, 4096, 5, false).sys_flag, 0x4);
}

#[test]
fn oneway_capture_sets_flag_two() {
    let (_, java) = frame("broker-java/009_req_c310.bin");
    assert!(java.is_oneway());
    let mut ours = RemotingCommand::request(310);
    ours.mark_oneway();
    assert_eq!(ours.flag, java.flag);
}

/// Splits a batch body into (flag, body, properties) per message.
fn parse_batch(mut b: Bytes) -> Vec<(i32, Bytes, String)> {
    let mut out = Vec::new();
    while b.has_remaining() {
        let _total = b.get_i32();
        let _magic = b.get_i32();
        let _crc = b.get_i32();
        let flag = b.get_i32();
        let len = b.get_i32() as usize;
        let body = b.split_to(len);
        let plen = b.get_i16() as usize;
        let props = String::from_utf8(b.split_to(plen).to_vec()).unwrap();
        out.push((flag, body, props));
    }
    out
}

#[test]
fn batch_body_is_byte_identical() {
    let (_, java) = frame("broker-java/014_req_c320.bin");
    let h = v2(&java);
    assert_eq!((h.m, java.code), (Some(true), 320));
    let msgs = parse_batch(java.body.clone());
    assert_eq!(msgs.len(), 3);
    assert_eq!(wire::batch_body(&msgs), java.body);
    // The whole envelope from the messages Java sent: the same body, and envelope properties
    // of Java's shape (its own UNIQ_KEY, then WAIT).
    let mut messages: Vec<Message> = msgs
        .iter()
        .map(|(flag, body, props)| {
            let mut m = Message::new(h.b.clone(), body.clone()).with_flag(*flag);
            m.properties = decode_properties(props);
            m
        })
        .collect();
    let p = wire::prepare_batch(&mut messages);
    assert_eq!(p.body, java.body);
    assert!(p.batch && p.sys_flag == 0);
    let envelope = decode_properties(&p.properties);
    let java_envelope = decode_properties(h.i.as_deref().unwrap());
    let keys =
        |props: &[(String, String)]| props.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&envelope), keys(&java_envelope));
    assert_eq!(envelope[1], java_envelope[1]);
}

#[test]
fn heartbeat_and_unregister_match_java() {
    let (java_bytes, java) = frame("broker-java/002_req_c34.bin");
    let ours = wire::heartbeat_request(
        "127.0.0.1@capinst",
        &["PG_capture", "CLIENT_INNER_PRODUCER"],
    );
    assert_eq!(
        String::from_utf8_lossy(&encode_to_vec(&like_java(ours, &java)).unwrap()),
        String::from_utf8_lossy(&java_bytes)
    );
    for (file, group) in [
        ("022_req_c35.bin", "PG_capture"),
        ("024_req_c35.bin", "CLIENT_INNER_PRODUCER"),
    ] {
        let (_, java) = frame(&format!("broker-java/{file}"));
        let ours = wire::unregister_request("127.0.0.1@capinst", group);
        assert_eq!(ours.ext_fields, java.ext_fields, "{file}");
        assert_eq!(ours.code, java.code);
    }
}

#[test]
fn send_results_decode_from_broker_responses() {
    let (_, resp) = frame("broker-java/004_resp_c0.bin");
    let mq = MessageQueue {
        topic: "CaptureTopic".into(),
        broker_name: "broker-a".into(),
        queue_id: 2,
    };
    let r = SendResult::from_response(&resp, "C000020215245FFD2B27693061400000", &mq).unwrap();
    assert_eq!(r.status, SendStatus::SendOk);
    assert_eq!(r.offset_msg_id, "7F000001000051C30000000000000000");
    assert_eq!((r.queue.queue_id, r.queue_offset), (2, 0));
    assert_eq!(
        r.transaction_id.as_deref(),
        Some("C000020215245FFD2B27693061400000")
    );
    assert_eq!((r.region_id.as_str(), r.trace_on), ("DefaultRegion", true));
    let (_, batch) = frame("broker-java/015_resp_c0.bin");
    let r = SendResult::from_response(&batch, "x", &mq).unwrap();
    assert_eq!(r.offset_msg_id.split(',').count(), 3);
    for (code, status) in [
        (10, SendStatus::FlushDiskTimeout),
        (11, SendStatus::SlaveNotAvailable),
        (12, SendStatus::FlushSlaveTimeout),
    ] {
        assert_eq!(SendStatus::from_code(code), Some(status));
    }
    assert_eq!(SendStatus::from_code(1), None);
}

#[test]
fn third_party_send_frames_decode() {
    // ali-ons and the C++ 2.1 client send V2 headers (numbers unquoted, booleans "0"), C++ 1.0.1
    // the long-named V1 header.
    for rel in [
        "clients/ali-ons/fake-mode/004_c310_SEND_MESSAGE_V2.req.bin",
        "clients/cpp-2.1/fake-mode/002_c310_SEND_MESSAGE_V2.req.bin",
    ] {
        let (_, cmd) = frame(rel);
        let h = v2(&cmd);
        assert_eq!(
            (h.a.as_str(), h.b.as_str(), h.c.as_str(), h.d),
            ("drv_group_pg", "TopicTest", "TBW102", 4),
            "{rel}"
        );
        let props = decode_properties(h.i.as_deref().unwrap());
        assert!(
            props.iter().any(|(k, v)| k == "TAGS" && v == "TagA"),
            "{rel}"
        );
        let v1: SendMessageRequestHeader = h.into();
        assert_eq!(v1.topic, "TopicTest");
    }
    let (_, cmd) = frame("clients/cpp-1.0.1/fake-mode/002_c10_SEND_MESSAGE.req.bin");
    let h: SendMessageRequestHeader = cmd.decode_header().unwrap();
    assert_eq!(
        (h.producer_group.as_str(), h.queue_id, h.batch),
        ("drv_group_pg", 0, Some(false))
    );
    let props = decode_properties(h.properties.as_deref().unwrap());
    assert!(props
        .iter()
        .any(|(k, v)| k == "UNIQ_KEY" && v == "0100007F000016AE00002CCE516E0100"));
}
