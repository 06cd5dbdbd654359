//! JSON header codec.
//!
//! Encoding is hand-written because the protocol forces it: Java peers and our golden tests expect
//! fastjson 1.2.83's exact bytes (alphabetical keys, nulls omitted, `serializeTypeCurrentRPC`, its
//! escaping rules), which no general serializer reproduces. Decoding uses serde_json with a
//! tolerant visitor that accepts what Go, C++ and JavaScript clients send, and borrows unescaped
//! strings straight from the frame (no allocation per ext field).

use super::swar::find_escape;
use crate::codes::LanguageCode;
use crate::command::RemotingCommand;
use crate::error::ProtocolError;
use crate::ext_fields::{ExtFields, RawText};
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Appends `cmd`'s header as fastjson would write it.
///
/// The header is built in a plain `Vec` (whose small appends inline) and appended to `out` in one
/// copy: many tiny `BytesMut` appends cost more than the extra copy of a few hundred bytes.
pub fn encode(cmd: &RemotingCommand, out: &mut BytesMut) {
    let estimate = 160
        + cmd.remark.as_ref().map_or(0, |r| r.len() + 16)
        + cmd
            .ext_fields
            .as_ref()
            .map_or(0, ExtFields::encoded_len_hint);
    let mut v: Vec<u8> = Vec::with_capacity(estimate);
    encode_into(cmd, &mut v);
    out.extend_from_slice(&v);
}

fn encode_into(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    let mut ints = itoa::Buffer::new();
    out.extend_from_slice(b"{\"code\":");
    out.extend_from_slice(ints.format(cmd.code).as_bytes());
    if let Some(ext) = &cmd.ext_fields {
        out.extend_from_slice(b",\"extFields\":{");
        let mut first = true;
        for (k, v) in ext.iter() {
            // fastjson omits null map values.
            let Some(v) = v else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            write_string(out, k);
            out.push(b':');
            write_string(out, v);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"flag\":");
    out.extend_from_slice(ints.format(cmd.flag).as_bytes());
    if let Some(name) = cmd.language.name() {
        // An unknown language is null in Java, and fastjson omits nulls.
        out.extend_from_slice(b",\"language\":\"");
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"opaque\":");
    out.extend_from_slice(ints.format(cmd.opaque).as_bytes());
    if let Some(remark) = &cmd.remark {
        out.extend_from_slice(b",\"remark\":");
        write_string(out, remark);
    }
    out.extend_from_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    out.extend_from_slice(ints.format(cmd.version).as_bytes());
    out.push(b'}');
}

/// Writes a quoted string with fastjson's escapes: `\" \\ \b \f \n \r \t`, other C0 controls and
/// DEL as uppercase `\u00XX`, U+2028/U+2029 escaped, everything else (`/`, non-ASCII) raw UTF-8.
#[inline]
pub fn write_string<B: BufMut>(out: &mut B, s: &str) {
    // The common string needs no escape: one scan, one copy.
    if find_escape(s.as_bytes()).is_none() {
        out.put_u8(b'"');
        out.put_slice(s.as_bytes());
        out.put_u8(b'"');
        return;
    }
    write_escaped(out, s);
}

/// [`write_string`] for a string with at least one byte to look at.
#[inline(never)]
fn write_escaped<B: BufMut>(out: &mut B, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    out.put_u8(b'"');
    let mut start = 0;
    let mut i = 0;
    // Skip to the next byte that may need escaping, eight at a time: most runs have none.
    while let Some(n) = find_escape(&bytes[i..]) {
        i += n;
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.put_slice(&bytes[start..i]);
                out.put_slice(if bytes[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                start = i;
                continue;
            }
            0x80.. => {
                // Other non-ASCII text is written raw; step over the run.
                i += 1;
                while i < bytes.len() && bytes[i] >= 0x80 && bytes[i] != 0xE2 {
                    i += 1;
                }
                continue;
            }
            _ => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xF) as usize],
            ],
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(escape);
        i += 1;
        start = i;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}

/// Decodes a JSON header leniently (spec §1.5.3): any key order, unknown keys ignored, numbers as
/// strings or floats, language by name or ordinal, ext values of any JSON type stringified, a UTF-8
/// BOM or surrounding whitespace (the C++ client's trailing newline) accepted.
pub fn decode(header: &Bytes) -> Result<RemotingCommand, ProtocolError> {
    super::check_header_len(header.len())?;
    match super::json_fast::decode(header) {
        Some(cmd) => Ok(cmd),
        None => decode_lenient(header),
    }
}

/// The serde path alone: every shape [`decode`] accepts. Public for tests that check the fast
/// path agrees with it.
#[doc(hidden)]
pub fn decode_lenient(header: &Bytes) -> Result<RemotingCommand, ProtocolError> {
    super::check_header_len(header.len())?;
    let text: &[u8] = header.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(header);
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut cmd = HeaderSeed { src: header }
        .deserialize(&mut de)
        .map_err(|e| ProtocolError::MalformedJsonHeader(e.to_string()))?;
    de.end()
        .map_err(|e| ProtocolError::MalformedJsonHeader(e.to_string()))?;
    if let Some(ext) = cmd.ext_fields.as_mut() {
        ext.dedupe();
    }
    Ok(cmd)
}

/// Shares text serde borrowed from the header instead of copying it.
fn shared(src: &Bytes, s: &str) -> ByteString {
    // The slice points into `src` (serde_json borrows from the input we gave it), so slice_ref
    // cannot panic; the bytes came from a &str, so they are valid UTF-8.
    ByteString::try_from(src.slice_ref(s.as_bytes())).unwrap_or_else(|_| ByteString::from(s))
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Code,
    Language,
    Version,
    Opaque,
    Flag,
    Remark,
    ExtFields,
    #[serde(other)]
    Other,
}

struct HeaderSeed<'a> {
    src: &'a Bytes,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = RemotingCommand;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = RemotingCommand;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a RemotingCommand JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RemotingCommand, A::Error> {
        // Java defaults for absent keys: numbers 0, language JAVA, no remark, no ext fields.
        let mut cmd = RemotingCommand {
            language: LanguageCode::JAVA,
            version: 0,
            ..Default::default()
        };
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Code => cmd.code = map.next_value::<LenientI32>()?.0,
                Field::Version => cmd.version = map.next_value::<LenientI32>()?.0,
                Field::Opaque => cmd.opaque = map.next_value::<LenientI32>()?.0,
                Field::Flag => cmd.flag = map.next_value::<LenientI32>()?.0,
                Field::Language => cmd.language = map.next_value::<LenientLanguage>()?.0,
                Field::Remark => {
                    cmd.remark = map.next_value_seed(ScalarSeed)?.into_shared(self.src)
                }
                Field::ExtFields => {
                    cmd.ext_fields = map.next_value_seed(ExtSeed { src: self.src })?
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(cmd)
    }
}

/// An int32 that may arrive as a number, a float, a bool or a numeric string (fastjson coerces).
struct LenientI32(i32);

impl<'de> Deserialize<'de> for LenientI32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientI32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an int32")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientI32, E> {
                i32::try_from(v)
                    .map(LenientI32)
                    .map_err(|_| E::custom(format!("int32 overflow: {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientI32, E> {
                i32::try_from(v)
                    .map(LenientI32)
                    .map_err(|_| E::custom(format!("int32 overflow: {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LenientI32, E> {
                if v.is_finite() && v >= i32::MIN as f64 && v <= i32::MAX as f64 {
                    Ok(LenientI32(v as i32))
                } else {
                    Err(E::custom(format!("int32 overflow: {v}")))
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LenientI32, E> {
                Ok(LenientI32(v as i32))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientI32, E> {
                let t = v.trim();
                if t.is_empty() {
                    return Ok(LenientI32(0));
                }
                match t.parse::<i64>() {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => t
                        .parse::<f64>()
                        .map_err(|_| E::custom(format!("not a number: {v:?}")))
                        .and_then(|f| self.visit_f64(f)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientI32, E> {
                Ok(LenientI32(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A language given by (case-insensitive) name or by ordinal; unknown values become OTHER.
struct LenientLanguage(LanguageCode);

impl<'de> Deserialize<'de> for LenientLanguage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientLanguage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a language name or code")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientLanguage, E> {
                Ok(LenientLanguage(
                    LanguageCode::from_name(v.trim()).unwrap_or(LanguageCode::OTHER),
                ))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientLanguage, E> {
                let code = u8::try_from(v)
                    .map(LanguageCode)
                    .unwrap_or(LanguageCode::OTHER);
                Ok(LenientLanguage(if code.is_known() {
                    code
                } else {
                    LanguageCode::OTHER
                }))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientLanguage, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Ok(LenientLanguage(LanguageCode::OTHER)),
                }
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LenientLanguage, E> {
                Ok(LenientLanguage(LanguageCode::OTHER))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LenientLanguage, E> {
                Ok(LenientLanguage(LanguageCode::OTHER))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientLanguage, E> {
                Ok(LenientLanguage(LanguageCode::OTHER))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string-ish scalar (remark, ext key or value) as serde hands it to us.
enum Scalar<'de> {
    /// Unescaped text borrowed from the header bytes.
    Borrowed(&'de str),
    /// Text we had to build (escapes, numbers, booleans, nested JSON).
    Owned(ByteString),
    /// JSON null.
    Null,
}

impl Scalar<'_> {
    fn into_shared(self, src: &Bytes) -> Option<ByteString> {
        match self {
            Scalar::Borrowed(s) => Some(shared(src, s)),
            Scalar::Owned(s) => Some(s),
            Scalar::Null => None,
        }
    }

    fn into_raw(self, ext: &ExtFields) -> Option<RawText> {
        match self {
            Scalar::Borrowed(s) => Some(match ext.source_offset(s) {
                Some(start) => RawText::CheckedRange {
                    start,
                    len: s.len(),
                },
                None => RawText::Own(s.into()),
            }),
            Scalar::Owned(s) => Some(RawText::Own(s)),
            Scalar::Null => None,
        }
    }
}

/// Reads any scalar: numbers and booleans as their JSON text, objects and arrays as compact JSON.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or scalar")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Owned(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Owned(itoa::Buffer::new().format(v).into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Owned(itoa::Buffer::new().format(v).into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Owned(v.to_string().into()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Owned(ByteString::from_static(if v {
            "true"
        } else {
            "false"
        })))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Scalar::Owned(v.to_string().into()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Scalar::Owned(v.to_string().into()))
    }
}

/// The extFields object: `null` reads as absent, an array is an error (as in Java).
struct ExtSeed<'a> {
    src: &'a Bytes,
}

impl<'de> DeserializeSeed<'de> for ExtSeed<'_> {
    type Value = Option<ExtFields>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ExtSeed<'_> {
    type Value = Option<ExtFields>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an extFields object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ext = ExtFields::with_source(self.src.clone(), map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key_seed(ScalarSeed)? {
            let value = map.next_value_seed(ScalarSeed)?;
            let key = key
                .into_raw(&ext)
                .unwrap_or(RawText::Own(ByteString::new()));
            let value = value.into_raw(&ext);
            ext.push_raw(key, value);
        }
        Ok(Some(ext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(cmd: &RemotingCommand) -> String {
        let mut b = BytesMut::new();
        encode(cmd, &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn dec(s: &str) -> Result<RemotingCommand, ProtocolError> {
        decode(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn fastjson_escaping() {
        let mut b = BytesMut::new();
        write_string(
            &mut b,
            "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1b}\u{7f}/é\u{2028}\u{2029}😀",
        );
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001B\\u007F/é\\u2028\\u2029😀\""
        );
    }

    #[test]
    fn spec_samples_byte_exact() {
        let mut req = RemotingCommand {
            code: 105,
            language: LanguageCode::JAVA,
            opaque: 1,
            ..Default::default()
        };
        req.ext_fields_mut().insert("topic", "TopicTest");
        assert_eq!(
            enc(&req),
            r#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#
        );
        let no_header = RemotingCommand {
            code: 206,
            language: LanguageCode::JAVA,
            opaque: 5,
            ..Default::default()
        };
        assert_eq!(
            enc(&no_header),
            r#"{"code":206,"flag":0,"language":"JAVA","opaque":5,"serializeTypeCurrentRPC":"JSON","version":479}"#
        );
        let mut empty = RemotingCommand {
            code: 0,
            flag: 1,
            language: LanguageCode::JAVA,
            opaque: 7,
            ..Default::default()
        };
        empty.ext_fields_mut();
        assert_eq!(
            enc(&empty),
            r#"{"code":0,"extFields":{},"flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":479}"#
        );
        let err = RemotingCommand {
            code: 17,
            flag: 1,
            language: LanguageCode::JAVA,
            opaque: 1,
            remark: Some("No topic route info in name server for the topic: TopicTest\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.".into()),
            ..Default::default()
        };
        assert_eq!(
            enc(&err),
            r#"{"code":17,"flag":1,"language":"JAVA","opaque":1,"remark":"No topic route info in name server for the topic: TopicTest\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.","serializeTypeCurrentRPC":"JSON","version":479}"#
        );
    }

    #[test]
    fn lenient_decoding() {
        // Go style: struct order, remark "", GO.
        let go = dec(r#"{"code":105,"language":"GO","version":317,"opaque":3,"flag":0,"remark":"","extFields":{"topic":"T"}}"#).unwrap();
        assert_eq!(
            (go.code, go.language, go.version, go.opaque),
            (105, LanguageCode::GO, 317, 3)
        );
        assert_eq!(go.remark.as_deref(), Some(""));
        // C++ style: trailing newline, empty AccessKey, numbers as values.
        let cpp = dec("{\"code\":14,\"extFields\":{\"AccessKey\":\"\",\"queueId\":0,\"ok\":true,\"f\":1.5,\"o\":{\"n\":1}},\"flag\":0,\"language\":\"CPP\",\"opaque\":7,\"remark\":\"\",\"version\":63}\n").unwrap();
        let ext = cpp.ext_fields.unwrap();
        assert_eq!(ext.get("AccessKey"), Some(""));
        assert_eq!(ext.get("queueId"), Some("0"));
        assert_eq!(ext.get("ok"), Some("true"));
        assert_eq!(ext.get("f"), Some("1.5"));
        assert_eq!(ext.get("o"), Some(r#"{"n":1}"#));
        // language by ordinal, lower case, unknown; numbers as strings; missing fields default.
        assert_eq!(dec(r#"{"language":9}"#).unwrap().language, LanguageCode::GO);
        assert_eq!(
            dec(r#"{"language":"go"}"#).unwrap().language,
            LanguageCode::GO
        );
        assert_eq!(
            dec(r#"{"language":"FOO"}"#).unwrap().language,
            LanguageCode::OTHER
        );
        assert_eq!(dec(r#"{"language":null,"code":"10"}"#).unwrap().code, 10);
        let bare = dec(r#"{}"#).unwrap();
        assert_eq!(
            (bare.code, bare.opaque, bare.version, bare.language),
            (0, 0, 0, LanguageCode::JAVA)
        );
        assert!(bare.ext_fields.is_none() && bare.remark.is_none());
        // unknown keys, BOM, whitespace, null ext value, ext null.
        let x = dec("\u{feff} {\"type\":1,\"body\":[1],\"nested\":{\"a\":{}},\"extFields\":{\"k\":null},\"serializeTypeCurrentRPC\":\"ROCKETMQ\"}\r\n").unwrap();
        assert!(x.ext_fields.as_ref().unwrap().is_null("k"));
        assert!(dec(r#"{"extFields":null}"#).unwrap().ext_fields.is_none());
        assert_eq!(
            dec(r#"{"extFields":{}}"#)
                .unwrap()
                .ext_fields
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn strict_where_java_is_strict() {
        for bad in [
            r#"{"code":2147483648}"#,
            r#"{"extFields":[]}"#,
            r#"{"code":1} x"#,
            "null",
            "",
            "{",
            "[1]",
            r#"{"code":"abc"}"#,
        ] {
            assert!(
                matches!(dec(bad), Err(ProtocolError::MalformedJsonHeader(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unescaped_strings_borrow_from_the_frame() {
        let src = Bytes::from_static(br#"{"extFields":{"topic":"TopicTest"}}"#);
        let cmd = decode(&src).unwrap();
        let v = cmd.ext_fields.as_ref().unwrap().get("topic").unwrap();
        let range = src.as_ptr() as usize..src.as_ptr() as usize + src.len();
        assert!(range.contains(&(v.as_ptr() as usize)));
    }
}
