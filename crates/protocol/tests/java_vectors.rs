//! Conformance against frames encoded by the real Java 5.3.3 RemotingCommand (shared/vectors/java).
//!
//! For every frame: our decode equals what Java's own decoder made of it (`javaDecoded`), and our
//! re-encode is byte-identical where HashMap order cannot differ (0-1 ext fields), map-equal otherwise.

mod support;

use bytes::BytesMut;
use rmq_protocol::{frame::encode_to_vec, RemotingCodec, RemotingCommand, SerializeType};
use serde_json::Value;
use tokio_util::codec::Decoder;

fn decode_one(bytes: &[u8]) -> RemotingCommand {
    let mut buf = BytesMut::from(bytes);
    let cmd = RemotingCodec::default()
        .decode(&mut buf)
        .expect("decodes")
        .expect("whole frame");
    assert!(buf.is_empty(), "one frame per file");
    cmd
}

#[test]
fn every_java_vector_decodes_like_java_and_reencodes() {
    let dir = support::vectors_dir().join("java");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let vectors = manifest["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 48);
    let mut byte_exact = 0;
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(v["file"].as_str().unwrap())).unwrap();
        assert_eq!(
            bytes.len() as u64,
            v["frameBytes"].as_u64().unwrap(),
            "{name}: frame size"
        );
        let cmd = decode_one(&bytes);
        let expected_type = match v["serializeType"].as_str().unwrap() {
            "JSON" => SerializeType::Json,
            _ => SerializeType::RocketMq,
        };
        assert_eq!(cmd.serialize_type, expected_type, "{name}");

        let jd = &v["javaDecoded"];
        assert_eq!(
            cmd.code as i64,
            jd["code"].as_i64().unwrap(),
            "{name}: code"
        );
        assert_eq!(
            cmd.language.name(),
            jd["language"].as_str(),
            "{name}: language"
        );
        assert_eq!(
            cmd.version as i64,
            jd["version"].as_i64().unwrap(),
            "{name}: version"
        );
        assert_eq!(
            cmd.opaque as i64,
            jd["opaque"].as_i64().unwrap(),
            "{name}: opaque"
        );
        assert_eq!(
            cmd.flag as i64,
            jd["flag"].as_i64().unwrap(),
            "{name}: flag"
        );
        assert_eq!(
            cmd.remark.as_deref(),
            jd["remark"].as_str(),
            "{name}: remark"
        );
        assert_eq!(
            cmd.is_response(),
            v["isResponse"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(cmd.is_oneway(), v["isOneway"].as_bool().unwrap(), "{name}");
        assert_eq!(
            cmd.body.len() as u64,
            jd["bodyLength"].as_u64().unwrap(),
            "{name}: body length"
        );
        assert_eq!(
            support::hex(&cmd.body),
            v["bodyHex"].as_str().unwrap(),
            "{name}: body"
        );
        match jd["extFieldsCount"].as_u64() {
            None => assert!(cmd.ext_fields.is_none(), "{name}: ext should be null"),
            Some(n) => assert_eq!(
                cmd.ext_fields.as_ref().map(|e| e.len()),
                Some(n as usize),
                "{name}: ext count"
            ),
        }
        let nulls: Vec<&str> = jd["extKeysDecodedAsNull"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        if let Some(ext) = &cmd.ext_fields {
            for (k, value) in ext.iter() {
                assert_eq!(
                    value.is_none(),
                    nulls.contains(&k),
                    "{name}: null-ness of {k}"
                );
            }
            // Every non-null value is the logical value the manifest lists.
            let logical = v["extFields"].as_object().unwrap();
            for (k, value) in ext.iter() {
                if let Some(value) = value {
                    assert_eq!(Some(value), logical[k].as_str(), "{name}: ext {k}");
                }
            }
        }

        // Re-encode.
        let again = encode_to_vec(&cmd).unwrap();
        let ext_count = cmd.ext_fields.as_ref().map_or(0, |e| e.len());
        if ext_count <= 1 {
            assert_eq!(again, bytes, "{name}: re-encode must be byte-identical");
            byte_exact += 1;
        } else {
            // HashMap order differs; the decoded maps must be equal (null values are not written,
            // exactly as Java's encoder skips them).
            let back = decode_one(&again);
            let mut expected = cmd.clone();
            if let Some(ext) = expected.ext_fields.as_mut() {
                for k in nulls.iter() {
                    ext.remove(k);
                }
            }
            assert_eq!(back, expected, "{name}: re-encode must be map-equal");
            if nulls.is_empty() {
                assert_eq!(
                    again.len(),
                    bytes.len(),
                    "{name}: same size in another order"
                );
            }
        }
        if let Some(json) = v["headerJson"].as_str() {
            if ext_count <= 1 {
                let header_len = v["headerLength"].as_u64().unwrap() as usize;
                assert_eq!(
                    std::str::from_utf8(&again[8..8 + header_len]).unwrap(),
                    json,
                    "{name}: header text"
                );
            }
        }
    }
    assert!(
        byte_exact >= 30,
        "most vectors are compared byte for byte (got {byte_exact})"
    );
}
