//! Every request frame written by a third-party client (ali-ons, C++ 1.0.1 and 2.1) decodes, with the
//! fields the capture tool recorded in `frames.jsonl`.

mod support;

use bytes::BytesMut;
use rmq_protocol::{RemotingCodec, SerializeType};
use serde_json::Value;
use tokio_util::codec::Decoder;

fn stringify(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[test]
fn every_client_capture_decodes_with_its_recorded_fields() {
    let root = support::vectors_dir().join("clients");
    let mut frames = 0;
    for client in std::fs::read_dir(&root).unwrap() {
        let client = client.unwrap().path();
        for mode in std::fs::read_dir(&client).unwrap() {
            let mode = mode.unwrap().path();
            let index = mode.join("frames.jsonl");
            if !index.is_file() {
                continue;
            }
            for line in std::fs::read_to_string(&index)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let rec: Value = serde_json::from_str(line).unwrap();
                let file = mode.join(rec["file"].as_str().unwrap());
                let bytes = std::fs::read(&file).unwrap();
                let what = file.display().to_string();
                assert_eq!(
                    bytes.len() as u64,
                    rec["frame_len"].as_u64().unwrap(),
                    "{what}"
                );
                let mut buf = BytesMut::from(&bytes[..]);
                let cmd = RemotingCodec::default()
                    .decode(&mut buf)
                    .unwrap_or_else(|e| panic!("{what}: {e}"))
                    .unwrap_or_else(|| panic!("{what}: incomplete"));
                assert!(buf.is_empty(), "{what}");
                assert_eq!(cmd.serialize_type, SerializeType::Json, "{what}");
                assert_eq!(
                    cmd.body.len() as u64,
                    rec["body_len"].as_u64().unwrap(),
                    "{what}"
                );
                let h = &rec["header"];
                assert_eq!(cmd.code as i64, h["code"].as_i64().unwrap(), "{what}: code");
                assert_eq!(
                    cmd.opaque as i64,
                    h["opaque"].as_i64().unwrap_or(0),
                    "{what}: opaque"
                );
                assert_eq!(
                    cmd.flag as i64,
                    h["flag"].as_i64().unwrap_or(0),
                    "{what}: flag"
                );
                assert_eq!(
                    cmd.version as i64,
                    h["version"].as_i64().unwrap_or(0),
                    "{what}: version"
                );
                assert_eq!(
                    cmd.language.name(),
                    h["language"].as_str(),
                    "{what}: language"
                );
                assert_eq!(
                    cmd.remark.as_deref().map(str::to_owned),
                    stringify(&h["remark"]),
                    "{what}: remark"
                );
                let ext = h["extFields"].as_object().unwrap();
                let ours = cmd.ext_fields.as_ref().unwrap();
                assert_eq!(ours.len(), ext.len(), "{what}: ext count");
                for (k, v) in ext {
                    assert_eq!(
                        ours.get(k).map(str::to_owned),
                        stringify(v),
                        "{what}: ext {k}"
                    );
                }
                frames += 1;
            }
        }
    }
    assert!(
        frames >= 60,
        "expected every capture to be checked, saw {frames}"
    );
}
