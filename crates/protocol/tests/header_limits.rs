//! Headers longer than a frame can carry are refused by every public decoder, before any byte of
//! them is looked at. The ext map stores offsets into the header as `u32`: a header over 4 GiB
//! passed to a decoder directly used to reach safe-looking code that resolved spans with
//! wrapped offsets.

use bytes::Bytes;
use rmq_protocol::header::{self, binary, json, MAX_HEADER_LEN};
use rmq_protocol::{ProtocolError, SerializeType};

fn zeroed(len: usize) -> Bytes {
    // vec![0; n] is one calloc: pages nobody touches are never made resident, so the 4 GiB case
    // costs address space, not memory (the decoders refuse it on its length alone).
    Bytes::from(vec![0u8; len])
}

fn assert_too_long(r: Result<rmq_protocol::RemotingCommand, ProtocolError>, len: usize) {
    match r {
        Err(ProtocolError::HeaderTooLong(n)) => assert_eq!(n, len),
        other => panic!("expected HeaderTooLong({len}), got {other:?}"),
    }
}

#[test]
fn every_decoder_refuses_a_header_one_byte_past_the_24_bit_limit() {
    let len = MAX_HEADER_LEN + 1;
    let h = zeroed(len);
    assert_too_long(json::decode(&h), len);
    assert_too_long(json::decode_lenient(&h), len);
    assert_too_long(binary::decode(h.clone()), len);
    assert_too_long(header::decode(h.clone(), SerializeType::Json), len);
    assert_too_long(header::decode(h, SerializeType::RocketMq), len);
}

#[test]
#[cfg(target_pointer_width = "64")]
fn headers_past_4_gib_are_refused_not_wrapped() {
    let len = (u32::MAX as usize) + 64;
    let h = zeroed(len);
    assert_too_long(binary::decode(h.clone()), len);
    assert_too_long(json::decode(&h), len);
}

#[test]
fn a_header_at_the_limit_is_still_decoded_on_its_merits() {
    // Exactly MAX_HEADER_LEN bytes: not refused for its size (it is malformed JSON, so it fails
    // for that reason instead).
    let h = zeroed(MAX_HEADER_LEN);
    assert!(matches!(
        json::decode(&h),
        Err(ProtocolError::MalformedJsonHeader(_))
    ));
}
