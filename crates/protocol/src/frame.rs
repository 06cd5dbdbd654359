//! Frame codec: `length | hdrInfo | header | body` on tokio-util's `Decoder`/`Encoder`.
//!
//! Decoding runs in two steps, as in mini-redis: check the 4-byte length as soon as it is there
//! (oversized, negative and too-short lengths fail before the rest arrives, like Netty's failFast),
//! then, once the whole frame is buffered, split it off without copying and parse the header.
//! The decoder never reserves memory on the strength of a length field: the buffer only grows as
//! bytes actually arrive.

use crate::codes::SerializeType;
use crate::command::RemotingCommand;
use crate::error::ProtocolError;
use crate::header;
use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Java's default `com.rocketmq.remoting.frameMaxLength`: the whole frame, length field included.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// Frame codec for remoting connections; one per connection.
#[derive(Debug, Clone, Copy)]
pub struct RemotingCodec {
    max_frame_length: usize,
}

impl Default for RemotingCodec {
    fn default() -> Self {
        RemotingCodec {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
        }
    }
}

impl RemotingCodec {
    /// A codec accepting whole frames (length field included) of at most `max_frame_length` bytes.
    pub fn new(max_frame_length: usize) -> Self {
        RemotingCodec { max_frame_length }
    }

    /// The largest whole frame accepted.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }
}

/// Checks the length field at the front of `src`, if it is there.
///
/// Returns the whole frame's size once the length is valid, so callers can tell how much more to
/// read without trusting the field for an allocation.
pub fn check_length(src: &[u8], max_frame_length: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(head) = src.get(..4) else {
        return Ok(None);
    };
    let length = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if length < 0 {
        return Err(ProtocolError::NegativeLength(length));
    }
    let total = length as usize + 4;
    if total > max_frame_length {
        return Err(ProtocolError::FrameTooLong {
            length: length as u32,
            max: max_frame_length,
        });
    }
    if length < 4 {
        return Err(ProtocolError::FrameTooShort(length));
    }
    Ok(Some(total))
}

impl Decoder for RemotingCodec {
    type Item = RemotingCommand;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, ProtocolError> {
        let Some(total) = check_length(src, self.max_frame_length)? else {
            return Ok(None);
        };
        if src.len() < total {
            return Ok(None);
        }
        let mut frame = src.split_to(total).freeze();
        frame.advance(4);
        let hdr_info = frame.get_u32();
        let header_len = (hdr_info & 0x00FF_FFFF) as usize;
        if header_len > frame.len() {
            return Err(ProtocolError::BadHeaderLength {
                header_len,
                available: frame.len(),
            });
        }
        let type_byte = (hdr_info >> 24) as u8;
        let serialize_type = SerializeType::from_code(type_byte)
            .ok_or(ProtocolError::UnknownSerializeType(type_byte))?;
        let header_bytes = frame.split_to(header_len);
        let mut cmd = header::decode(header_bytes, serialize_type)?;
        cmd.body = frame;
        Ok(Some(cmd))
    }
}

/// Writes the length, hdrInfo and header of `cmd` to `dst`, leaving the body to the caller.
///
/// The runtime's writer uses this to send large bodies with a vectored write instead of copying
/// them behind the header. Returns an error if the header exceeds the 24-bit length field.
pub fn encode_prefix(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    let start = dst.len();
    dst.reserve(8 + 128);
    dst.put_u64(0);
    header::encode(cmd, dst);
    let header_len = dst.len() - start - 8;
    if header_len > 0x00FF_FFFF {
        dst.truncate(start);
        return Err(ProtocolError::BadHeaderLength {
            header_len,
            available: 0x00FF_FFFF,
        });
    }
    let length = 4 + header_len + cmd.body.len();
    let hdr_info = ((cmd.serialize_type.code() as u32) << 24) | header_len as u32;
    dst[start..start + 4].copy_from_slice(&(length as u32).to_be_bytes());
    dst[start + 4..start + 8].copy_from_slice(&hdr_info.to_be_bytes());
    Ok(())
}

impl Encoder<RemotingCommand> for RemotingCodec {
    type Error = ProtocolError;

    fn encode(&mut self, cmd: RemotingCommand, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        Encoder::<&RemotingCommand>::encode(self, &cmd, dst)
    }
}

impl Encoder<&RemotingCommand> for RemotingCodec {
    type Error = ProtocolError;

    fn encode(&mut self, cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let start = dst.len();
        encode_prefix(cmd, dst)?;
        let total = dst.len() - start + cmd.body.len();
        if total > self.max_frame_length {
            dst.truncate(start);
            return Err(ProtocolError::FrameTooLong {
                length: (total - 4) as u32,
                max: self.max_frame_length,
            });
        }
        dst.extend_from_slice(&cmd.body);
        Ok(())
    }
}

/// Encodes one command into a fresh buffer: handy for tests and one-off writes.
pub fn encode_to_vec(cmd: &RemotingCommand) -> Result<Vec<u8>, ProtocolError> {
    let mut buf = BytesMut::new();
    Encoder::<&RemotingCommand>::encode(&mut RemotingCodec::default(), cmd, &mut buf)?;
    Ok(buf.to_vec())
}

/// Decodes every frame in `data` until it runs out or hits an error, asserting the decoder's
/// promises: no panic, no buffer growth. Shared by the cargo-fuzz target and the corpus replay test.
#[doc(hidden)]
pub fn fuzz_decode_all(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let cap = buf.capacity();
    let mut codec = RemotingCodec::default();
    while let Ok(Some(cmd)) = codec.decode(&mut buf) {
        // Whatever decodes must re-encode.
        let _ = encode_to_vec(&cmd);
    }
    assert!(buf.capacity() <= cap, "decoder grew its buffer");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::LanguageCode;

    fn spec_request(t: SerializeType) -> RemotingCommand {
        RemotingCommand {
            code: 105,
            language: LanguageCode::JAVA,
            opaque: 1,
            serialize_type: t,
            ..Default::default()
        }
        .with_ext("topic", "TopicTest")
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn spec_hex_vector_and_json_frame() {
        let bin = encode_to_vec(&spec_request(SerializeType::RocketMq)).unwrap();
        assert_eq!(bin.len(), 49);
        assert_eq!(
            hex(&bin),
            "0000002d 01000029 0069 00 01df 00000001 00000000 00000000 00000014 0005 746f706963 00000009 546f70696354657374"
                .replace(' ', "")
        );
        let json = encode_to_vec(&spec_request(SerializeType::Json)).unwrap();
        assert_eq!(json.len(), 139);
        assert_eq!(&json[..8], &[0, 0, 0, 0x87, 0, 0, 0, 0x83]);
        for frame in [bin, json] {
            let mut buf = BytesMut::from(&frame[..]);
            let cmd = RemotingCodec::default().decode(&mut buf).unwrap().unwrap();
            assert_eq!(cmd.ext("topic"), Some("TopicTest"));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn distinct_errors_for_bad_frames() {
        let mut c = RemotingCodec::default();
        let mut b = BytesMut::from(&16_777_213u32.to_be_bytes()[..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::FrameTooLong {
                length: 16_777_213,
                ..
            })
        ));
        // 16777212 is the largest legal length: accepted by the framer (waits for more bytes).
        let mut b = BytesMut::from(&16_777_212u32.to_be_bytes()[..]);
        assert!(matches!(c.decode(&mut b), Ok(None)));
        let mut b = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::NegativeLength(-1))
        ));
        let mut b = BytesMut::from(&[0u8, 0, 0, 3, 1, 2, 3][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::FrameTooShort(3))
        ));
        let mut b = BytesMut::from(&[0u8, 0, 0, 6, 0, 0, 0, 9, 0, 0][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::BadHeaderLength {
                header_len: 9,
                available: 2
            })
        ));
        let mut b = BytesMut::from(&[0u8, 0, 0, 6, 2, 0, 0, 2, b'{', b'}'][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::UnknownSerializeType(2))
        ));
        let mut b = BytesMut::from(&[0u8, 0, 0, 6, 0, 0, 0, 2, b'{', b'x'][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::MalformedJsonHeader(_))
        ));
        let mut b = BytesMut::from(&[0u8, 0, 0, 6, 1, 0, 0, 2, 0, 0][..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtocolError::MalformedBinaryHeader { .. })
        ));
    }

    #[test]
    fn configurable_limit_and_split_delivery() {
        let frame =
            encode_to_vec(&spec_request(SerializeType::Json).with_body(vec![7u8; 100])).unwrap();
        let mut small = RemotingCodec::new(64);
        assert!(matches!(
            small.decode(&mut BytesMut::from(&frame[..])),
            Err(ProtocolError::FrameTooLong { .. })
        ));
        // Byte by byte, then two frames in one buffer.
        let mut c = RemotingCodec::default();
        let mut buf = BytesMut::new();
        for (i, b) in frame.iter().enumerate() {
            buf.put_u8(*b);
            let r = c.decode(&mut buf).unwrap();
            assert_eq!(r.is_some(), i == frame.len() - 1);
        }
        let mut two = BytesMut::from(&[frame.clone(), frame].concat()[..]);
        assert!(c.decode(&mut two).unwrap().is_some());
        let second = c.decode(&mut two).unwrap().unwrap();
        assert_eq!(second.body.len(), 100);
        assert!(two.is_empty());
    }
}
