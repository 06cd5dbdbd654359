//! The protocol crate's one error type.

use std::io;

/// Everything that can go wrong turning bytes into commands or ext fields into typed headers.
///
/// Each frame-level variant matches one way Java's `NettyDecoder` gives up on a channel, so the
/// runtime can log precisely why it closed a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The length field announces a frame larger than the configured maximum (Java: TooLongFrameException).
    #[error("frame too long: length field {length} + 4 exceeds max frame length {max}")]
    FrameTooLong {
        /// The announced length (excluding the 4-byte length field itself).
        length: u32,
        /// The configured maximum whole-frame size.
        max: usize,
    },
    /// The length field is negative (Java: CorruptedFrameException).
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// The frame is too short to hold the 4-byte hdrInfo word.
    #[error("frame too short: length field {0} < 4")]
    FrameTooShort(i32),
    /// hdrInfo announces more header bytes than the frame holds.
    #[error(
        "decode error, bad header length: {header_len} (frame has {available} bytes after hdrInfo)"
    )]
    BadHeaderLength {
        /// Header length from hdrInfo's low 24 bits.
        header_len: usize,
        /// Bytes the frame actually has for header and body.
        available: usize,
    },
    /// A header handed to a decoder is longer than any frame can carry (24-bit length).
    #[error("header of {0} bytes exceeds the 16 MiB a frame's header length can express")]
    HeaderTooLong(usize),
    /// hdrInfo's high byte is neither 0 (JSON) nor 1 (ROCKETMQ).
    #[error("unknown serialize type {0}")]
    UnknownSerializeType(u8),
    /// The JSON header is not an acceptable RemotingCommand object.
    #[error("malformed JSON header: {0}")]
    MalformedJsonHeader(String),
    /// The binary header is truncated or a length in it is out of range.
    #[error("malformed ROCKETMQ header: {what}")]
    MalformedBinaryHeader {
        /// Which part of the header was wrong.
        what: String,
    },
    /// A typed custom header lacks a required ext field.
    #[error("the custom field {field} is null")]
    MissingField {
        /// The wire (ext field) name.
        field: &'static str,
    },
    /// A typed custom header's ext field does not parse as its type.
    #[error("the custom field {field} has value {value:?}, expected {expected}")]
    InvalidField {
        /// The wire (ext field) name.
        field: &'static str,
        /// The offending text.
        value: String,
        /// The Rust type expected.
        expected: &'static str,
    },
    /// Reading from or writing to the transport failed (tokio-util codecs require this variant).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl ProtocolError {
    pub(crate) fn binary(what: impl Into<String>) -> Self {
        ProtocolError::MalformedBinaryHeader { what: what.into() }
    }
}
