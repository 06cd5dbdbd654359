//! Reading a capture directory of `../shared/vectors` (shared by the replay tests).

use bytes::BytesMut;
use rmq_protocol::{RemotingCodec, RemotingCommand};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio_util::codec::Decoder;

pub fn vectors() -> PathBuf {
    match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

/// The frames of a capture directory, by sequence number, and for each request the seq of its
/// response (same connection and opaque).
pub struct Capture {
    pub frames: HashMap<u64, RemotingCommand>,
    pub answer_of: HashMap<u64, u64>,
}

pub fn capture(dir: &str) -> Capture {
    let base = vectors().join(dir);
    let text = std::fs::read_to_string(base.join("frames.jsonl")).expect("frames.jsonl");
    let mut frames = HashMap::new();
    let mut pending: HashMap<(u64, i64), u64> = HashMap::new();
    let mut answer_of = HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (Some(seq), Some(file)) = (v["seq"].as_u64(), v["file"].as_str()) else {
            continue;
        };
        let bytes = std::fs::read(base.join(file)).unwrap();
        let cmd = RemotingCodec::default()
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        let key = (v["conn"].as_u64().unwrap(), v["opaque"].as_i64().unwrap());
        if v["is_response"].as_bool() == Some(true) {
            if let Some(req) = pending.remove(&key) {
                answer_of.insert(req, seq);
            }
        } else if v["dir"] == "c2s" {
            pending.insert(key, seq);
        }
        frames.insert(seq, cmd);
    }
    Capture { frames, answer_of }
}

impl Capture {
    pub fn req(&self, seq: u64) -> RemotingCommand {
        self.frames[&seq].clone()
    }
    pub fn java_answer(&self, seq: u64) -> &RemotingCommand {
        &self.frames[&self.answer_of[&seq]]
    }
}

/// The port in an offsetMsgId (hex digits 8..16) zeroed: Java's broker listened elsewhere.
pub fn without_port(msg_ids: &str) -> String {
    msg_ids
        .split(',')
        .map(|id| format!("{}00000000{}", &id[..8], &id[16..]))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn ext(c: &RemotingCommand, k: &str) -> Option<String> {
    c.ext(k).map(str::to_owned)
}
