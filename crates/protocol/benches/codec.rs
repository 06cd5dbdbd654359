//! Encode and decode of a typical SEND_MESSAGE_V2 request (128-byte body) in both header types.
//!
//! Targets from the protocol issue: decode + encode under 300 ns (ROCKETMQ) and 1 µs (JSON).

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rmq_protocol::headers::send::SendMessageRequestHeaderV2;
use rmq_protocol::{codes::request, RemotingCodec, RemotingCommand, SerializeType};
use tokio_util::codec::{Decoder, Encoder};

fn send_v2(t: SerializeType) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "please_rename_unique_group_name".into(),
        b: "TopicTest".into(),
        c: "TBW102".into(),
        d: 4,
        e: 3,
        f: 0,
        g: 1_700_000_000_123,
        h: 0,
        i: Some("KEYS\u{1}order-42\u{2}UNIQ_KEY\u{1}7F0000011524AB5A0D12A0E4D3C80000\u{2}WAIT\u{1}true\u{2}TAGS\u{1}TagA\u{2}".into()),
        j: Some(0),
        k: Some(false),
        l: None,
        m: Some(false),
        n: Some("broker-a".into()),
    };
    RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header)
        .with_body(vec![b'x'; 128])
        .with_serialize_type(t)
}

fn bench(c: &mut Criterion) {
    for (name, t) in [
        ("rocketmq", SerializeType::RocketMq),
        ("json", SerializeType::Json),
    ] {
        let cmd = send_v2(t);
        let mut codec = RemotingCodec::default();
        let mut frame = BytesMut::new();
        codec.encode(&cmd, &mut frame).unwrap();
        let frame = frame.freeze();

        c.bench_function(&format!("send_v2_128B/{name}/encode"), |b| {
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| {
                out.clear();
                codec.encode(black_box(&cmd), &mut out).unwrap();
            })
        });
        c.bench_function(&format!("send_v2_128B/{name}/decode"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&frame[..]);
                black_box(codec.decode(&mut buf).unwrap().unwrap())
            })
        });
        c.bench_function(&format!("send_v2_128B/{name}/decode+encode"), |b| {
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| {
                let mut buf = BytesMut::from(&frame[..]);
                let cmd = codec.decode(&mut buf).unwrap().unwrap();
                out.clear();
                codec.encode(&cmd, &mut out).unwrap();
                black_box(&out);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
