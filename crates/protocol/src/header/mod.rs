//! Header codecs: the part of a frame between `hdrInfo` and the body.
//!
//! [`json`] is what fastjson writes and every client reads; [`binary`] is the compact ROCKETMQ form
//! only Java (and rmq) speak. Both decode a header into a [`RemotingCommand`] with an empty body.

pub mod binary;
pub mod json;
mod json_fast;
mod small_copy;
mod swar;

use crate::codes::SerializeType;
use crate::command::RemotingCommand;
use crate::error::ProtocolError;
use bytes::{Bytes, BytesMut};

/// The largest header a frame can carry: `hdrInfo` keeps its length in 24 bits.
pub const MAX_HEADER_LEN: usize = 0xFF_FFFF;

/// Refuses headers no frame can carry. Every public decoder checks this first: the decoded ext
/// map stores offsets into the header as `u32` (and resolves them without re-checking UTF-8), so
/// a header past 4 GiB handed to a decoder directly must never get that far.
pub(crate) fn check_header_len(len: usize) -> Result<(), ProtocolError> {
    if len > MAX_HEADER_LEN {
        return Err(ProtocolError::HeaderTooLong(len));
    }
    Ok(())
}

/// Appends `cmd`'s header, encoded as `cmd.serialize_type`, to `out`.
pub fn encode(cmd: &RemotingCommand, out: &mut BytesMut) {
    match cmd.serialize_type {
        SerializeType::Json => json::encode(cmd, out),
        SerializeType::RocketMq => binary::encode(cmd, out),
    }
}

/// Decodes a header of the given type; strings in the result share `header`'s memory where possible
/// (which is why it is taken by value: the command keeps it without another reference count).
pub fn decode(
    header: Bytes,
    serialize_type: SerializeType,
) -> Result<RemotingCommand, ProtocolError> {
    let mut cmd = match serialize_type {
        SerializeType::Json => json::decode(&header)?,
        SerializeType::RocketMq => binary::decode(header)?,
    };
    cmd.serialize_type = serialize_type;
    Ok(cmd)
}
