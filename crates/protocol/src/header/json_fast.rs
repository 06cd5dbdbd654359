//! A scanner for the JSON headers real peers send, tried before the serde decoder.
//!
//! Hand-written because the protocol's hot path forces it: serde_json's visitor machinery was
//! ~20% of a server's CPU per request in the `bench` profile. Every header fastjson (Java) or our
//! encoder writes has one shape: an object of integer fields, a language name, optional remark
//! and an `extFields` object of string values, with no escapes in practice. This scanner accepts
//! exactly that shape (any key order, whitespace allowed) and returns `None` for anything else:
//! surrogate escapes, nulls, floats, booleans, nested values, unknown keys, a BOM, bad syntax. `None` sends
//! the header to the lenient serde decoder, so the fast path never changes what is accepted or
//! how it decodes (a property test checks both paths agree).

use crate::codes::LanguageCode;
use crate::command::RemotingCommand;
use crate::ext_fields::{ExtFields, RawText};
use bytes::Bytes;
use bytestring::ByteString;

/// A scanned string: a range of the header, or unescaped text.
enum Str {
    Range(usize, usize),
    Owned(String),
}

impl Str {
    fn raw(self) -> RawText {
        match self {
            Str::Range(start, len) => RawText::CheckedRange { start, len },
            Str::Owned(s) => RawText::Own(s.into()),
        }
    }
}

/// Index of the first '"', '\\' or control byte: where a JSON string's plain run stops.
///
/// Eight bytes at a time with the classic SWAR tests (Hacker's Delight, "find a zero byte"):
/// `(w - 0x01..) & !w & 0x80..` flags bytes equal to zero, and `(w - n*0x01..) & !w & 0x80..` bytes
/// below n (n <= 128). A borrow can flag bytes *after* a real hit, never before one, so the lowest
/// flag of the combined mask is exactly the first stop byte. Headers are mostly such runs.
fn find_stop(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        let hits = zero(w ^ (LO * u64::from(b'"')))
            | zero(w ^ (LO * u64::from(b'\\')))
            | (w.wrapping_sub(LO * 0x20) & !w & HI);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters: the range of its contents.
    fn string(&mut self) -> Option<(usize, usize)> {
        match self.string_value()? {
            Str::Range(start, len) => Some((start, len)),
            Str::Owned(_) => None,
        }
    }

    /// A string: the range of its contents, or its unescaped text when it has escapes (Java
    /// peers escape the 0x01/0x02 property separators as \u0001 and \u0002).
    fn string_value(&mut self) -> Option<Str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        let len = find_stop(rest)?;
        match rest[len] {
            b'"' => {
                self.i = start + len + 1;
                Some(Str::Range(start, len))
            }
            b'\\' => {
                let mut out = Vec::with_capacity(len + 16);
                out.extend_from_slice(&rest[..len]);
                self.i = start + len;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.i += 1;
                            return String::from_utf8(out).ok().map(Str::Owned);
                        }
                        b'\\' => {
                            let esc = *self.b.get(self.i + 1)?;
                            self.i += 2;
                            match esc {
                                b'"' | b'\\' | b'/' => out.push(esc),
                                b'b' => out.push(0x08),
                                b'f' => out.push(0x0C),
                                b'n' => out.push(b'\n'),
                                b'r' => out.push(b'\r'),
                                b't' => out.push(b'\t'),
                                b'u' => {
                                    let mut code = 0u32;
                                    for &h in self.b.get(self.i..self.i + 4)? {
                                        code = code << 4 | (h as char).to_digit(16)?;
                                    }
                                    self.i += 4;
                                    if code < 0x80 {
                                        // The common case: Java's \u0001 / \u0002 separators.
                                        out.push(code as u8);
                                    } else {
                                        // Surrogate pairs are left to serde.
                                        let c = char::from_u32(code)?;
                                        let mut tmp = [0u8; 4];
                                        out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                                    }
                                }
                                _ => return None,
                            }
                        }
                        c if c < 0x20 => return None,
                        _ => {
                            // Copy the whole run up to the next quote, escape or control byte.
                            let rest = &self.b[self.i..];
                            let run = find_stop(rest).unwrap_or(rest.len());
                            out.extend_from_slice(&rest[..run]);
                            self.i += run;
                        }
                    }
                }
            }
            _ => None,
        }
    }

    /// An integer that fits i32 (no sign other than '-', no fraction or exponent).
    fn int(&mut self) -> Option<i32> {
        self.ws();
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v * 10 + (d - b'0') as i64;
            self.i += 1;
            if self.i - start > 10 {
                return None;
            }
        }
        let digits = self.i - start;
        // JSON forbids leading zeros; a fraction or exponent goes to the lenient path.
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        i32::try_from(if neg { -v } else { v }).ok()
    }

    fn text(&self, (start, len): (usize, usize)) -> &str {
        // Only called on ranges of a header already checked to be UTF-8, at ASCII boundaries
        // ('"' delimiters), so this cannot fail; `None` from the caller would fall back anyway.
        std::str::from_utf8(&self.b[start..start + len]).unwrap_or("")
    }
}

/// Decodes `header` if it has the common shape, `None` otherwise (see the module docs).
pub(crate) fn decode(header: &Bytes) -> Option<RemotingCommand> {
    // One validation of the whole header lets every range below be used without another check.
    std::str::from_utf8(header).ok()?;
    let mut s = Scanner { b: header, i: 0 };
    let mut cmd = RemotingCommand {
        language: LanguageCode::JAVA,
        version: 0,
        ..Default::default()
    };
    s.eat(b'{')?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            let key = s.string()?;
            s.eat(b':')?;
            match &header[key.0..key.0 + key.1] {
                b"code" => cmd.code = s.int()?,
                b"flag" => cmd.flag = s.int()?,
                b"opaque" => cmd.opaque = s.int()?,
                b"version" => cmd.version = s.int()?,
                b"language" => {
                    let name = s.string()?;
                    cmd.language =
                        LanguageCode::from_name(s.text(name).trim()).unwrap_or(LanguageCode::OTHER);
                }
                b"remark" => {
                    cmd.remark = Some(match s.string_value()? {
                        Str::Range(start, len) => {
                            ByteString::try_from(header.slice(start..start + len)).ok()?
                        }
                        Str::Owned(text) => text.into(),
                    });
                }
                b"serializeTypeCurrentRPC" => {
                    s.string()?;
                }
                b"extFields" => cmd.ext_fields = Some(ext_fields(&mut s, header)?),
                _ => return None,
            }
            s.ws();
            match s.peek()? {
                b',' => s.i += 1,
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    if s.i != header.len() {
        return None;
    }
    if let Some(ext) = cmd.ext_fields.as_mut() {
        ext.dedupe();
    }
    Some(cmd)
}

fn ext_fields(s: &mut Scanner<'_>, header: &Bytes) -> Option<ExtFields> {
    s.eat(b'{')?;
    let mut ext = ExtFields::with_source(header.clone(), 16);
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
        return Some(ext);
    }
    loop {
        let key = s.string_value()?.raw();
        s.eat(b':')?;
        let value = s.string_value()?.raw();
        ext.push_raw(key, Some(value)).ok()?;
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b'}' => {
                s.i += 1;
                return Some(ext);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_stop_agrees_with_a_byte_scan() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1F, 0x20, 0x7F, 0x80, 0xE2, 0xFF, b'0',
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain bytes, sometimes a stop byte or a high one.
                        if seed % 5 == 0 {
                            alphabet[(seed >> 8) as usize % alphabet.len()]
                        } else {
                            b'a' + (seed >> 16) as u8 % 26
                        }
                    })
                    .collect();
                assert_eq!(find_stop(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
    }

    #[test]
    fn takes_the_common_shape_and_defers_the_rest() {
        let java = Bytes::from_static(
            br#"{"code":310,"extFields":{"a":"G","b":"T"},"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":479}"#,
        );
        let cmd = decode(&java).expect("fast path");
        assert_eq!((cmd.code, cmd.opaque, cmd.version), (310, 7, 479));
        assert_eq!(cmd.ext("b"), Some("T"));
        let cpp =
            Bytes::from_static(b"{ \"code\" : 105, \"language\" : \"CPP\", \"opaque\" : -3 }\n");
        assert_eq!(decode(&cpp).expect("fast path").opaque, -3);
        for odd in [
            &br#"{"code":"105"}"#[..],
            br#"{"remark":"\ud83d\ude00"}"#,
            br#"{"code":1.0}"#,
            br#"{"code":01}"#,
            br#"{"extFields":null}"#,
            br#"{"extFields":{"k":1}}"#,
            br#"{"unknown":1}"#,
            br#"{"code":1,}"#,
            b"\xEF\xBB\xBF{}",
            br#"{"code":1} x"#,
        ] {
            assert!(
                decode(&Bytes::copy_from_slice(odd)).is_none(),
                "{:?}",
                String::from_utf8_lossy(odd)
            );
        }
    }
}
