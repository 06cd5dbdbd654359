//! # rmq-protocol
//!
//! Sans-IO implementation of Apache RocketMQ's remoting wire format (5.x): frames, the JSON and
//! ROCKETMQ header codecs, request/response/language codes and typed custom headers. No sockets,
//! no clocks: bytes in, [`RemotingCommand`]s out, so every edge case is a plain unit test. The
//! one I/O-shaped seam is [`RemotingCodec`], a tokio-util `Decoder`/`Encoder`.
//!
//! ```
//! use bytes::BytesMut;
//! use rmq_protocol::{codes::request, RemotingCodec, RemotingCommand};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = RemotingCodec::default();
//! let mut buf = BytesMut::new();
//! let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", "TopicTest");
//! codec.encode(&req, &mut buf).unwrap();
//! let back = codec.decode(&mut buf).unwrap().unwrap();
//! assert_eq!(back.ext("topic"), Some("TopicTest"));
//! assert_eq!(back.opaque, req.opaque);
//! ```

pub mod codes;
pub mod command;
pub mod custom_header;
pub mod error;
pub mod ext_fields;
pub mod frame;
pub mod header;
pub mod headers;
pub mod lenient_json;

pub use bytestring::ByteString;
pub use codes::{LanguageCode, MqVersion, SerializeType};
pub use command::{next_opaque, RemotingCommand, FLAG_ONEWAY, FLAG_RESPONSE};
pub use custom_header::CommandCustomHeader;
pub use error::ProtocolError;
pub use ext_fields::ExtFields;
pub use frame::{RemotingCodec, DEFAULT_MAX_FRAME_LENGTH};
