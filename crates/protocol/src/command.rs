//! `RemotingCommand`: the one message type of the protocol, requests and responses alike.

use crate::codes::{LanguageCode, MqVersion, SerializeType};
use crate::custom_header::CommandCustomHeader;
use crate::error::ProtocolError;
use crate::ext_fields::ExtFields;
use bytes::Bytes;
use bytestring::ByteString;
use std::sync::atomic::{AtomicI32, Ordering};

/// Flag bit 0: the command is a response (checked first by every receiver; flag 3 is a response).
pub const FLAG_RESPONSE: i32 = 0x1;
/// Flag bit 1: the request expects no response.
pub const FLAG_ONEWAY: i32 = 0x2;

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(0);

/// Hands out request ids from one process-wide counter, like Java's static `requestId`.
///
/// Starts at 0 and wraps to negative after `i32::MAX`; negative opaques are legal on the wire.
pub fn next_opaque() -> i32 {
    NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed)
}

/// One request or response, as carried by a frame.
///
/// Fields are public: the wire lets any combination through and so does this type. The body is a
/// `Bytes` slice of the received frame (no copy on decode); empty means "no body", as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code (what to do) or response code (how it went).
    pub code: i32,
    /// The sender's implementation language.
    pub language: LanguageCode,
    /// The sender's `MQVersion` ordinal; gates behaviour on the receiving side.
    pub version: i32,
    /// Request id; a response carries its request's opaque.
    pub opaque: i32,
    /// Bit field: [`FLAG_RESPONSE`], [`FLAG_ONEWAY`]; other bits are carried through.
    pub flag: i32,
    /// Error text on responses; `None` is distinct from `Some("")` in JSON, not in binary.
    pub remark: Option<ByteString>,
    /// Custom header fields plus anything hooks add (signatures, zone names).
    pub ext_fields: Option<ExtFields>,
    /// The payload after the header.
    pub body: Bytes,
    /// The header encoding this command arrived in, or will be sent in.
    pub serialize_type: SerializeType,
}

impl Default for RemotingCommand {
    fn default() -> Self {
        RemotingCommand {
            code: 0,
            language: LanguageCode::RUST,
            version: MqVersion::CURRENT,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: None,
            body: Bytes::new(),
            serialize_type: SerializeType::Json,
        }
    }
}

impl RemotingCommand {
    /// A new request with a fresh opaque, language RUST and version 5.3.3.
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            opaque: next_opaque(),
            ..Default::default()
        }
    }

    /// A new request whose ext fields are `header`'s fields (Java `createRequestCommand(code, header)`).
    pub fn request_with_header<H: CommandCustomHeader>(code: i32, header: &H) -> Self {
        let mut cmd = Self::request(code);
        cmd.set_header(header);
        cmd
    }

    /// A new oneway request: the receiver never answers it.
    pub fn oneway(code: i32) -> Self {
        let mut cmd = Self::request(code);
        cmd.mark_oneway();
        cmd
    }

    /// A response with `code` and `remark`; the server fills in opaque and the response flag on write.
    pub fn response(code: i32, remark: Option<&str>) -> Self {
        RemotingCommand {
            code,
            flag: FLAG_RESPONSE,
            remark: remark.map(ByteString::from),
            ..Default::default()
        }
    }

    /// A response to `request`: same opaque, same serialize type, response flag set.
    pub fn response_to(request: &RemotingCommand, code: i32, remark: Option<&str>) -> Self {
        let mut resp = Self::response(code, remark);
        resp.opaque = request.opaque;
        resp.serialize_type = request.serialize_type;
        resp
    }

    /// True when flag bit 0 is set.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// True when flag bit 1 is set (and it is not a response).
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Sets the response bit (Java `markResponseType`).
    pub fn mark_response(&mut self) {
        self.flag |= FLAG_RESPONSE;
    }

    /// Sets the oneway bit (Java `markOnewayRPC`).
    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// Builder: sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Builder: sets the remark.
    pub fn with_remark(mut self, remark: impl Into<ByteString>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    /// Builder: sets the serialize type used to encode this command.
    pub fn with_serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize_type = t;
        self
    }

    /// Builder: sets one ext field.
    pub fn with_ext(mut self, key: impl Into<ByteString>, value: impl Into<ByteString>) -> Self {
        self.ext_fields_mut().insert(key, value);
        self
    }

    /// The ext map, created empty if absent.
    pub fn ext_fields_mut(&mut self) -> &mut ExtFields {
        self.ext_fields.get_or_insert_with(ExtFields::new)
    }

    /// One ext field's value (`None` if absent or null).
    pub fn ext(&self, key: &str) -> Option<&str> {
        self.ext_fields.as_ref().and_then(|e| e.get(key))
    }

    /// Writes a typed header's fields into the ext map (Java `makeCustomHeaderToNet`).
    ///
    /// Like Java, this creates the map even when every field is null, so a JSON response shows
    /// `"extFields":{}`.
    pub fn set_header<H: CommandCustomHeader>(&mut self, header: &H) {
        header.write_to(self.ext_fields_mut());
    }

    /// Reads a typed header from the ext map; a missing map reads as an empty one.
    pub fn decode_header<H: CommandCustomHeader>(&self) -> Result<H, ProtocolError> {
        match &self.ext_fields {
            Some(ext) => H::read_from(ext),
            None => H::read_from(&ExtFields::new()),
        }
    }

    /// The remark as `&str`.
    pub fn remark_str(&self) -> Option<&str> {
        self.remark.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaques_are_unique_and_responses_copy_them() {
        let a = RemotingCommand::request(105);
        let b = RemotingCommand::request(105);
        assert_ne!(a.opaque, b.opaque);
        assert!(!a.is_response() && !a.is_oneway());
        let r = RemotingCommand::response_to(&a, 0, None);
        assert_eq!(r.opaque, a.opaque);
        assert!(r.is_response());
        let o = RemotingCommand::oneway(2);
        assert!(o.is_oneway());
        assert_eq!(o.flag, FLAG_ONEWAY);
    }
}
