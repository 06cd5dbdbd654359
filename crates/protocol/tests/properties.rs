//! Property tests: round trips for arbitrary commands in both header types, and a decoder that
//! never panics nor grows its buffer on arbitrary input.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use rmq_protocol::{
    frame::encode_to_vec, ExtFields, LanguageCode, RemotingCodec, RemotingCommand, SerializeType,
};
use tokio_util::codec::Decoder;

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_%|-]{0,16}",
        any::<String>().prop_map(|s| s.chars().take(24).collect()),
        Just(String::new()),
    ]
}

prop_compose! {
    fn any_command()(
        code in any::<i32>(),
        language in any::<u8>(),
        version in any::<i32>(),
        opaque in any::<i32>(),
        flag in any::<i32>(),
        remark in proptest::option::of(any_string()),
        ext in proptest::option::of(proptest::collection::vec((any_string(), any_string()), 0..8)),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        json in any::<bool>(),
    ) -> RemotingCommand {
        RemotingCommand {
            code, language: LanguageCode(language), version, opaque, flag,
            remark: remark.map(Into::into),
            ext_fields: ext.map(|e| e.into_iter().collect::<ExtFields>()),
            body: body.into(),
            serialize_type: if json { SerializeType::Json } else { SerializeType::RocketMq },
        }
    }
}

/// What a command looks like after a trip through its header type, by the protocol's own rules.
fn expected_after_trip(cmd: &RemotingCommand) -> RemotingCommand {
    let mut e = cmd.clone();
    match cmd.serialize_type {
        SerializeType::Json => {
            // An unknown language is omitted (Java null) and decodes as the default.
            if !e.language.is_known() {
                e.language = LanguageCode::JAVA;
            }
        }
        SerializeType::RocketMq => {
            e.code = cmd.code as i16 as i32;
            e.version = cmd.version as i16 as i32;
            if e.remark.as_deref() == Some("") {
                e.remark = None;
            }
            if let Some(ext) = &cmd.ext_fields {
                let mut out = ExtFields::new();
                for (k, v) in ext.iter() {
                    if k.is_empty() {
                        continue;
                    }
                    match v {
                        Some(v) if !v.is_empty() => out.insert(k, v),
                        _ => out.insert_null(k),
                    }
                }
                e.ext_fields = if out.is_empty() { None } else { Some(out) };
            }
        }
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(cmd in any_command()) {
        let bytes = encode_to_vec(&cmd).unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        let back = RemotingCodec::default().decode(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(back, expected_after_trip(&cmd));
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_grow_the_buffer(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::with_capacity(data.len());
        buf.put_slice(&data);
        let cap = buf.capacity();
        let mut codec = RemotingCodec::default();
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        prop_assert!(buf.capacity() <= cap);
    }

    #[test]
    fn arbitrary_headers_in_valid_frames_never_panic(
        header in proptest::collection::vec(any::<u8>(), 0..256),
        body in proptest::collection::vec(any::<u8>(), 0..32),
        type_byte in 0u8..3,
        claimed in proptest::option::of(0u32..1024),
    ) {
        let header_len = claimed.unwrap_or(header.len() as u32);
        let mut frame = BytesMut::new();
        frame.put_u32((4 + header.len() + body.len()) as u32);
        frame.put_u32(((type_byte as u32) << 24) | header_len);
        frame.put_slice(&header);
        frame.put_slice(&body);
        let _ = RemotingCodec::default().decode(&mut frame);
    }

    #[test]
    fn mutated_valid_frames_never_panic(cmd in any_command(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = encode_to_vec(&cmd).unwrap();
        for (at, b) in flips {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let cap = buf.capacity();
        let _ = RemotingCodec::default().decode(&mut buf);
        prop_assert!(buf.capacity() <= cap);
    }
}

/// A JSON header shaped like what peers send, with random whitespace, key order, and the odd
/// token that only the lenient decoder takes (escapes, nulls, floats, unknown keys).
fn any_json_header() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "-?[0-9]{1,11}",
        Just("null".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        "\"[a-zA-Z0-9 _\\\\\"]{0,8}\"",
        "\"(JAVA|java|GO|RUST|x)\"",
    ];
    let key = prop_oneof![
        Just("code"),
        Just("flag"),
        Just("opaque"),
        Just("version"),
        Just("language"),
        Just("remark"),
        Just("serializeTypeCurrentRPC"),
        Just("other"),
    ];
    let ext_text = prop_oneof![
        "[a-z0-9\\\\]{0,4}",
        Just("a\\u0001b\\u0002c".to_owned()),
        Just("\\u00e9\\/\\t".to_owned()),
        Just("\\ud83d\\ude00".to_owned()),
        // Java's properties value: many separators, past the 256-byte stack buffer at times.
        "([A-Za-z_]{0,6}\\\\u000[12]){1,60}",
        Just("\\u00ff\\u4e2d\\\"q\\\\\\b\\f\\n\\r".to_owned()),
        // Bad escapes: refused by both decoders alike.
        Just("bad\\x".to_owned()),
        Just("\\u00G1".to_owned()),
        Just("end\\u00".to_owned()),
    ];
    let ext = proptest::collection::vec(("[a-z\\\\]{0,4}", ext_text), 0..4).prop_map(|pairs| {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("\"{k}\" : \"{v}\""))
            .collect();
        format!("{{ {} }}", body.join(","))
    });
    (
        proptest::collection::vec((key, value), 0..8),
        proptest::option::of(ext),
        "[ \n]{0,2}",
    )
        .prop_map(|(fields, ext, ws)| {
            let mut parts: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{ws}{v}"))
                .collect();
            if let Some(e) = ext {
                parts.push(format!("\"extFields\":{e}"));
            }
            format!("{ws}{{{}}}{ws}", parts.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// The hand-written fast path must decode exactly like the serde decoder, or defer to it.
    #[test]
    fn json_fast_path_agrees_with_serde(text in any_json_header()) {
        let header = bytes::Bytes::from(text.clone());
        let fast = rmq_protocol::header::json::decode(&header);
        let lenient = rmq_protocol::header::json::decode_lenient(&header);
        match (fast, lenient) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", text),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "{text}: fast {a:?} vs serde {b:?}"),
        }
    }

    #[test]
    fn json_fast_path_agrees_on_encoded_commands(mut cmd in any_command()) {
        cmd.serialize_type = SerializeType::Json;
        let mut out = BytesMut::new();
        rmq_protocol::header::json::encode(&cmd, &mut out);
        let header = out.freeze();
        prop_assert_eq!(
            rmq_protocol::header::json::decode(&header).unwrap(),
            rmq_protocol::header::json::decode_lenient(&header).unwrap()
        );
    }
}

proptest! {
    /// fastjson-style bodies from a peer: arbitrary bytes parse or fail, never panic.
    #[test]
    fn lenient_json_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256), prefix in "[{},:0-9\"a ]{0,16}") {
        let _ = rmq_protocol::lenient_json::parse(&data);
        let _ = rmq_protocol::lenient_json::parse(prefix.as_bytes());
    }
}

/// One edit of an ext map, for the model test below.
#[derive(Debug, Clone)]
enum Edit {
    Insert(u8, String),
    InsertNull(u8),
    Remove(u8),
}

fn any_edit() -> impl Strategy<Value = Edit> {
    // Few distinct keys, so edits keep hitting the same entries.
    prop_oneof![
        (0u8..6, "[a-z]{0,6}").prop_map(|(k, v)| Edit::Insert(k, v)),
        (0u8..6).prop_map(Edit::InsertNull),
        (0u8..6).prop_map(Edit::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// ExtFields, decoded (ranges of a header) and then edited by code (owned strings whose
    /// slots are released and moved), always reads like a plain ordered map with Java's
    /// put-in-place semantics.
    #[test]
    fn ext_fields_edits_match_a_plain_map(
        decoded in prop::collection::vec((0u8..6, "[a-z]{1,4}"), 0..6),
        edits in prop::collection::vec(any_edit(), 0..40),
    ) {
        // Start from a map that came off the wire.
        let mut cmd = RemotingCommand::request(1).with_serialize_type(SerializeType::RocketMq);
        let mut model: Vec<(String, Option<String>)> = Vec::new();
        for (k, v) in &decoded {
            let key = format!("k{k}");
            cmd.ext_fields_mut().insert(key.clone(), v.clone());
            match model.iter_mut().find(|(mk, _)| *mk == key) {
                Some(e) => e.1 = Some(v.clone()),
                None => model.push((key, Some(v.clone()))),
            }
        }
        let wire = encode_to_vec(&cmd).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        let mut ext = RemotingCodec::default()
            .decode(&mut buf)
            .unwrap()
            .unwrap()
            .ext_fields
            .unwrap_or_default();
        for e in &edits {
            match e {
                Edit::Insert(k, v) => {
                    let key = format!("k{k}");
                    ext.insert(key.clone(), v.clone());
                    match model.iter_mut().find(|(mk, _)| *mk == key) {
                        Some(e) => e.1 = Some(v.clone()),
                        None => model.push((key, Some(v.clone()))),
                    }
                }
                Edit::InsertNull(k) => {
                    let key = format!("k{k}");
                    ext.insert_null(key.clone());
                    match model.iter_mut().find(|(mk, _)| *mk == key) {
                        Some(e) => e.1 = None,
                        None => model.push((key, None)),
                    }
                }
                Edit::Remove(k) => {
                    let key = format!("k{k}");
                    let got = ext.remove(&key);
                    let want = model
                        .iter()
                        .position(|(mk, _)| *mk == key)
                        .and_then(|i| model.remove(i).1);
                    prop_assert_eq!(got.as_deref(), want.as_deref());
                }
            }
            let seen: Vec<(String, Option<String>)> = ext
                .iter()
                .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
                .collect();
            // Binary decoding turns an empty value into null; compare through that lens.
            let normal = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
            prop_assert_eq!(seen.len(), model.len());
            for ((sk, sv), (mk, mv)) in seen.iter().zip(&model) {
                prop_assert_eq!(sk, mk);
                prop_assert_eq!(normal(sv), normal(mv));
            }
        }
    }
}

/// fastjson's string escaping written the plain way, one char at a time: the reference the
/// word-at-a-time writer must match.
fn fastjson_escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    /// The JSON writer escapes exactly like fastjson for any text: ASCII runs of every length
    /// around quotes, backslashes, controls, DEL, non-ASCII and U+2028/U+2029.
    #[test]
    fn json_string_writer_matches_fastjson(
        parts in prop::collection::vec(
            prop_oneof![
                "[a-zA-Z0-9 /]{0,20}",
                Just("\"".to_owned()),
                Just("\\".to_owned()),
                Just("\u{2028}".to_owned()),
                Just("\u{2029}".to_owned()),
                Just("\u{e2}\u{82}\u{ac}".to_owned()),
                "[\u{0}-\u{1f}\u{7f}]",
                "[\u{80}-\u{3000}]{1,3}",
            ],
            0..12,
        )
    ) {
        let s: String = parts.concat();
        let mut out = Vec::new();
        rmq_protocol::header::json::write_string(&mut out, &s);
        prop_assert_eq!(String::from_utf8(out).unwrap(), fastjson_escaped(&s));
    }
}
