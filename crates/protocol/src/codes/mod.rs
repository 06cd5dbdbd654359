//! Numeric code tables of the remoting protocol, as typed constants.
//!
//! Request and response codes stay plain `i32` on the command (the wire carries any value and peers
//! invent new ones); these modules give the known ones names, plus `name()` lookups for logs.

pub mod language;
pub mod request;
pub mod response;
pub mod version;

pub use language::LanguageCode;
pub use version::MqVersion;

/// How a command's header is encoded on the wire: the high byte of the frame's `hdrInfo` word.
///
/// Java keeps this on the command (`serializeTypeCurrentRPC`) so that a server can answer in the
/// type the request used; we do the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// fastjson text header (code 0). The only type every third-party client can read.
    #[default]
    Json,
    /// Compact binary header named "ROCKETMQ" (code 1).
    RocketMq,
}

impl SerializeType {
    /// The byte stored in the high 8 bits of `hdrInfo`.
    pub const fn code(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// Maps the `hdrInfo` byte back; `None` for anything but 0 and 1 (Java closes the channel then).
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }

    /// The Java enum name, as accepted by `rocketmq.serialize.type` and CLI flags.
    pub const fn name(self) -> &'static str {
        match self {
            SerializeType::Json => "JSON",
            SerializeType::RocketMq => "ROCKETMQ",
        }
    }

    /// Parses `JSON` / `ROCKETMQ` case-insensitively (the Java property values).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("json") {
            Some(SerializeType::Json)
        } else if name.eq_ignore_ascii_case("rocketmq") {
            Some(SerializeType::RocketMq)
        } else {
            None
        }
    }
}

impl std::fmt::Display for SerializeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
