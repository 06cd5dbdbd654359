//! The commit-log record codec against records a Java 5.3.3 broker stored (the bodies of PULL
//! responses 061/062/063 in ../shared/vectors/broker-java are those records, as they lie in its
//! commit log), and property tests over arbitrary records and damaged bytes.

use bytes::Bytes;
use proptest::prelude::*;
use rmq_store::msg_id::offset_msg_id;
use rmq_store::queue_entry::tags_code;
use rmq_store::record::{self, Found, Record, RecordError};
use std::net::SocketAddr;
use std::path::PathBuf;

fn pull_body(name: &str) -> Bytes {
    let dir = match std::env::var_os("RMQ_SHARED_DIR") {
        Some(d) => PathBuf::from(d).join("vectors"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    };
    let frame = std::fs::read(dir.join("broker-java").join(name)).expect("vector present");
    let header_len = (u32::from_be_bytes(frame[4..8].try_into().unwrap()) & 0xFF_FFFF) as usize;
    Bytes::from(frame[8 + header_len..].to_vec())
}

#[test]
fn java_stored_records_decode_and_re_encode_byte_for_byte() {
    for (file, queue_id, body) in [
        ("061_resp_c0.bin", 1, "hello 0"),
        ("062_resp_c0.bin", 3, "hello 2"),
        ("063_resp_c0.bin", 2, "hello 1"),
    ] {
        let raw = pull_body(file);
        let Found::Message(r, len) = record::decode(&raw, true).unwrap() else {
            panic!("{file}: a message record")
        };
        assert_eq!(len, raw.len(), "{file}: one record, the whole body");
        assert_eq!(r.queue_id, queue_id, "{file}");
        assert_eq!(&r.body[..], body.as_bytes());
        assert_eq!(r.topic, "PullCaptureTopic");
        assert_eq!(r.queue_offset, 0);
        assert_eq!(
            r.store_host,
            "127.0.0.1:20931".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            record::property(&r.properties, "TAGS"),
            Some("run1795256024545")
        );
        assert_eq!(
            record::property(&r.properties, "CLUSTER"),
            Some("DefaultCluster")
        );
        assert_eq!(
            tags_code(record::property(&r.properties, "TAGS")),
            -1909056598
        );
        // Our encoder writes exactly what Java stored.
        assert_eq!(r.to_bytes().unwrap(), raw, "{file}");
        assert_eq!(r.encoded_len(), raw.len());
    }
    let first = pull_body("061_resp_c0.bin");
    let Found::Message(r, _) = record::decode(&first, true).unwrap() else {
        unreachable!()
    };
    assert_eq!(r.physical_offset, 3171);
    assert_eq!(r.born_timestamp, 1795256025233);
    assert_eq!(
        offset_msg_id(r.store_host, r.physical_offset),
        "7F000001000051C30000000000000C63"
    );
}

#[test]
fn damaged_java_records_are_refused_with_the_reason() {
    let raw = pull_body("061_resp_c0.bin");
    // Cut anywhere: short, never a record.
    for cut in 0..raw.len() {
        assert!(
            record::decode(&raw.slice(..cut), true).is_err(),
            "cut at {cut} decoded"
        );
    }
    // A flipped body byte: the CRC says so.
    let mut bad = raw.to_vec();
    bad[90] ^= 0x01;
    assert!(matches!(
        record::decode(&Bytes::from(bad), true),
        Err(RecordError::BadCrc { .. })
    ));
    // A wrong magic.
    let mut bad = raw.to_vec();
    bad[4] = 0;
    assert!(matches!(
        record::decode(&Bytes::from(bad), true),
        Err(RecordError::BadMagic(_))
    ));
    // TOTALSIZE that disagrees with the fields.
    let mut bad = raw.to_vec();
    bad.push(0);
    bad[3] = bad[3].wrapping_add(1);
    assert!(matches!(
        record::decode(&Bytes::from(bad), true),
        Err(RecordError::SizeMismatch { .. })
    ));
    // The BLANK end-of-file record.
    assert_eq!(
        record::decode(&Bytes::copy_from_slice(&record::blank(4096)), true),
        Ok(Found::Blank)
    );
}

fn any_host() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        (
            any::<i32>(),
            any::<i32>(),
            any::<i64>(),
            any::<i64>(),
            any::<i32>(),
        ),
        (any::<i64>(), any_host(), any::<i64>(), any_host()),
        (any::<i32>(), any::<i64>()),
        proptest::collection::vec(any::<u8>(), 0..300),
        "[A-Za-z0-9_%-]{1,200}",
        "[ -~\u{1}\u{2}]{0,200}",
    )
        .prop_map(
            |(
                (queue_id, flag, queue_offset, physical_offset, sys_flag),
                (bt, bh, st, sh),
                (rt, pto),
                body,
                topic,
                properties,
            )| Record {
                queue_id,
                flag,
                queue_offset,
                physical_offset,
                sys_flag,
                born_timestamp: bt,
                born_host: bh,
                store_timestamp: st,
                store_host: sh,
                reconsume_times: rt,
                prepared_transaction_offset: pto,
                body: body.into(),
                topic,
                properties,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any record (V1 and V2 topics, IPv4 and IPv6 hosts) decodes back to itself (with the
    /// host-family bits the encoder sets), and several back to back decode one by one.
    #[test]
    fn records_round_trip(a in any_record(), b in any_record()) {
        let mut buf = Vec::new();
        a.encode(&mut buf).unwrap();
        b.encode(&mut buf).unwrap();
        let all = Bytes::from(buf);
        let Found::Message(da, la) = record::decode(&all, true).unwrap() else { panic!() };
        prop_assert_eq!(la, a.encoded_len());
        prop_assert_eq!(&*da, &Record { sys_flag: a.stored_sys_flag(), ..a.clone() });
        let Found::Message(db, lb) = record::decode(&all.slice(la..), true).unwrap() else { panic!() };
        prop_assert_eq!(lb, b.encoded_len());
        prop_assert_eq!(&*db, &Record { sys_flag: b.stored_sys_flag(), ..b.clone() });
    }

    /// The commit log's direct encoder writes exactly the bytes of the two-step encoders: the
    /// plain record, and with the whole-record CRC property the record made by
    /// `with_prop_crc_reserved` then `to_bytes_with_prop_crc` (properties with and without a
    /// closing separator, empty ones included); a wrong-sized destination is refused.
    #[test]
    fn direct_encoding_matches_the_two_step_encoders(a in any_record()) {
        for crc in [false, true] {
            let expected = if crc {
                a.clone().with_prop_crc_reserved().to_bytes_with_prop_crc().unwrap()
            } else {
                a.to_bytes().unwrap()
            };
            prop_assert_eq!(a.stored_len(crc), expected.len());
            let mut dst = vec![0xEEu8; a.stored_len(crc)];
            a.encode_stored(&mut dst, crc).unwrap();
            prop_assert_eq!(&dst[..], &expected[..]);
            let mut short = vec![0u8; a.stored_len(crc) - 1];
            prop_assert!(a.encode_stored(&mut short, crc).is_err());
        }
    }

    /// One pass over the properties finds what a lookup per name finds (the last of a name
    /// wins, pairs without a separator are skipped).
    #[test]
    fn dispatch_properties_match_lookups_by_name(
        pairs in proptest::collection::vec(
            (prop_oneof![Just("TAGS"), Just("KEYS"), Just("UNIQ_KEY"), Just("DELAY"), Just("X"), Just("")], "[ -~]{0,12}", any::<bool>()),
            0..8,
        )
    ) {
        let properties: String = pairs
            .iter()
            .map(|(k, v, sep)| if *sep { format!("{k}\u{1}{v}\u{2}") } else { format!("{k}{v}\u{2}") })
            .collect();
        let p = record::DispatchProperties::of(&properties);
        prop_assert_eq!(p.tags, record::property(&properties, "TAGS"));
        prop_assert_eq!(p.keys, record::property(&properties, "KEYS"));
        prop_assert_eq!(p.uniq_key, record::property(&properties, "UNIQ_KEY"));
        prop_assert_eq!(p.delay, record::property(&properties, "DELAY"));
    }

    /// The index's hash of `topic#key` without building it equals Java's `String.hashCode`
    /// rule over the built string, on the ASCII fast path and off it.
    #[test]
    fn topic_key_hash_matches_the_built_key(topic in "[ -~]{0,40}|.{0,10}", key in "[ -~]{0,40}|.{0,10}") {
        prop_assert_eq!(
            rmq_store::index::topic_key_hash(&topic, &key),
            rmq_store::index::key_hash(&rmq_store::index::index_key(&topic, &key))
        );
    }

    /// Damaged bytes (any byte changed, or garbage) never panic; a decoded record's TOTALSIZE
    /// always fits in the input.
    #[test]
    fn damaged_bytes_never_panic(a in any_record(), at in any::<usize>(), with in any::<u8>(), junk in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut buf = a.to_bytes().unwrap().to_vec();
        let i = at % buf.len();
        buf[i] = with;
        let damaged = Bytes::from(buf);
        if let Ok(Found::Message(_, len)) = record::decode(&damaged, true) {
            prop_assert!(len <= damaged.len());
        }
        let junk = Bytes::from(junk);
        if let Ok(Found::Message(_, len)) = record::decode(&junk, false) {
            prop_assert!(len <= junk.len());
        }
    }
}
