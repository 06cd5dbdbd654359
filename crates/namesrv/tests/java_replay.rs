//! Replays every request the Java 5.3.3 broker and tools sent the Java NameServer
//! (`../shared/vectors/namesrv-java`) against ours, on the same connections in the same order,
//! and compares our answers with Java's byte for byte: header JSON and body. The only allowed
//! differences are where Java's order is a HashMap's (topic lists, compared as sets) and the
//! configuration dump (our property set is not the JVM's).

mod support;

use rmq_protocol::RemotingCodec;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

#[derive(serde::Deserialize)]
struct Line {
    seq: Option<u64>,
    conn: Option<u64>,
    dir: Option<String>,
    code: Option<i32>,
    header: Option<String>,
}

/// A frame rebuilt from a jsonl line's header text (no body).
fn resp_header_frame(l: &Line) -> Vec<u8> {
    let h = l.header.as_deref().unwrap().as_bytes();
    let mut f = ((4 + h.len()) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&(h.len() as u32).to_be_bytes());
    f.extend_from_slice(h);
    f
}

async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut len))
        .await
        .expect("answer within 3 s")
        .unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut rest).await.unwrap();
    [&len[..], &rest].concat()
}

/// (header bytes, body bytes) of a frame.
fn split(frame: &[u8]) -> (&[u8], &[u8]) {
    let hl = (u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) & 0xFF_FFFF) as usize;
    (&frame[8..8 + hl], &frame[8 + hl..])
}

fn topic_set(body: &[u8]) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["topicList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn answers_like_the_java_nameserver() {
    let dir = support::vectors_dir().join("namesrv-java");
    let jsonl = std::fs::read_to_string(dir.join("frames.jsonl")).expect("vectors present");
    let files: HashMap<u64, String> = std::fs::read_to_string(dir.join("index.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[1].to_owned())
        })
        .collect();
    let frames: Vec<Line> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Line| l.seq.is_some())
        .collect();
    let (ns, _tmp) = support::start(|_| {}).await;
    let addr = ns.local_addr();
    let mut conns: HashMap<u64, TcpStream> = HashMap::new();
    let mut compared = 0;
    let mut i = 0;
    while i < frames.len() {
        let req = &frames[i];
        assert_eq!(req.dir.as_deref(), Some("c2s"), "seq {:?}", req.seq);
        let req_bytes = std::fs::read(dir.join(&files[&req.seq.unwrap()])).unwrap();
        let conn = req.conn.unwrap();
        if let std::collections::hash_map::Entry::Vacant(e) = conns.entry(conn) {
            e.insert(TcpStream::connect(addr).await.unwrap());
        }
        let sock = conns.get_mut(&conn).unwrap();
        sock.write_all(&req_bytes).await.unwrap();
        let resp = &frames[i + 1];
        assert_eq!(resp.dir.as_deref(), Some("s2c"));
        assert_eq!(resp.conn, req.conn);
        let ours = read_frame(sock).await;
        // One capture (the JVM's configuration dump) is not shipped as a file: compare its
        // header from frames.jsonl.
        let java = std::fs::read(dir.join(&files[&resp.seq.unwrap()]))
            .unwrap_or_else(|_| resp_header_frame(resp));
        let (jh, jb) = split(&java);
        let (oh, ob) = split(&ours);
        let what = format!(
            "seq {} code {}:\n java {}\n ours {}",
            req.seq.unwrap(),
            req.code.unwrap(),
            String::from_utf8_lossy(jh),
            String::from_utf8_lossy(oh)
        );
        assert_eq!(jh, oh, "{what}");
        match req.code.unwrap() {
            206 => assert_eq!(topic_set(jb), topic_set(ob), "{what}"),
            319 => assert!(
                String::from_utf8_lossy(ob).contains("listenPort="),
                "{what}"
            ),
            _ => assert_eq!(
                String::from_utf8_lossy(jb),
                String::from_utf8_lossy(ob),
                "{what}"
            ),
        }
        // Decodes with our codec too.
        let mut buf = bytes::BytesMut::from(&ours[..]);
        RemotingCodec::default().decode(&mut buf).unwrap().unwrap();
        compared += 1;
        i += 2;
    }
    assert_eq!(compared, 49, "every exchange replayed");
    ns.shutdown_now();
}
