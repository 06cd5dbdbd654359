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

use super::small_copy::copy_small;
use super::swar::find_stop;
use crate::codes::LanguageCode;
use crate::command::RemotingCommand;
use crate::ext_fields::{ExtFields, KeyFilter, RawText};
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

/// What [`unescape`] made of a string.
enum Unescaped {
    /// `len` bytes written; the closing quote is at `end`.
    Done { len: usize, end: usize },
    /// `out` is too small for it.
    Overflow,
    /// A bad escape, a control byte or no closing quote: the serde path decides.
    Bad,
}

/// Unescapes the string whose contents start at `start` and whose first stop byte (not the
/// closing quote) is at `start + len`, into `out`, up to the closing quote. Unescaped text is
/// never longer than its escaped form, so `out` of the remaining input's length never overflows.
fn unescape(b: &[u8], start: usize, len: usize, out: &mut [u8]) -> Unescaped {
    let mut o = 0;
    let mut i = start;
    let mut run = len;
    loop {
        if o + run > out.len() {
            return Unescaped::Overflow;
        }
        copy_small(&mut out[o..o + run], &b[i..i + run]);
        o += run;
        i += run;
        match b.get(i) {
            Some(b'"') => return Unescaped::Done { len: o, end: i },
            Some(b'\\') => {}
            _ => return Unescaped::Bad,
        }
        let Some(&esc) = b.get(i + 1) else {
            return Unescaped::Bad;
        };
        let hex = || b.get(i + 2..i + 6).and_then(hex4);
        let (text, used): ([u8; 4], usize) = match esc {
            c @ (b'"' | b'\\' | b'/') => ([c, 0, 0, 0], 2),
            b'b' => ([0x08, 0, 0, 0], 2),
            b'f' => ([0x0C, 0, 0, 0], 2),
            b'n' => ([b'\n', 0, 0, 0], 2),
            b'r' => ([b'\r', 0, 0, 0], 2),
            b't' => ([b'\t', 0, 0, 0], 2),
            b'u' => match hex() {
                // Java's property separators \u0001 and \u0002: one byte, no char round trip.
                Some(code) if code < 0x80 => ([code as u8, 0, 0, 0], 6),
                // Surrogates (pairs included) are left to serde: `from_u32` refuses them.
                Some(code) => match char::from_u32(code) {
                    Some(c) => {
                        let mut tmp = [0u8; 4];
                        c.encode_utf8(&mut tmp);
                        (tmp, 6)
                    }
                    None => return Unescaped::Bad,
                },
                None => return Unescaped::Bad,
            },
            _ => return Unescaped::Bad,
        };
        let n = match text[0] {
            0..=0x7F => 1,
            0xC0..=0xDF => 2,
            _ => 3,
        };
        if o + n > out.len() {
            return Unescaped::Overflow;
        }
        out[o..o + n].copy_from_slice(&text[..n]);
        o += n;
        i += used;
        let Some(next) = find_stop(&b[i..]) else {
            return Unescaped::Bad;
        };
        run = next;
    }
}

/// The value of four hex digits (either case), `None` if any is not one.
fn hex4(h: &[u8]) -> Option<u32> {
    h.iter().try_fold(0u32, |code, &c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        Some(code << 4 | u32::from(digit))
    })
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
    /// Inlined for the plain case (a run up to the closing quote); escapes go out of line.
    #[inline(always)]
    fn string_value(&mut self) -> Option<Str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = find_stop(&self.b[start..])?;
        if self.b[start + len] == b'"' {
            self.i = start + len + 1;
            return Some(Str::Range(start, len));
        }
        self.escaped_string(start, len)
    }

    /// The rest of a string whose plain run `start..start + len` stopped at something other than
    /// the closing quote: unescaped into text of its own.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, len: usize) -> Option<Str> {
        let b = self.b;
        // Short strings (Java's properties value, in practice) unescape on the stack and then
        // become one exact-size allocation (`Bytes` takes an exact-size buffer over without a
        // share record); longer ones into a buffer as long as the rest of the header.
        let mut stack = [0u8; 256];
        let (text, end) = match unescape(b, start, len, &mut stack) {
            Unescaped::Done { len, end } => {
                (String::from(std::str::from_utf8(&stack[..len]).ok()?), end)
            }
            Unescaped::Bad => return None,
            Unescaped::Overflow => {
                let mut heap = vec![0u8; b.len() - start];
                match unescape(b, start, len, &mut heap) {
                    Unescaped::Done { len, end } => {
                        heap.truncate(len);
                        (String::from_utf8(heap).ok()?, end)
                    }
                    _ => return None,
                }
            }
        };
        self.i = end + 1;
        Some(Str::Owned(text))
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
    let mut keys = KeyFilter::default();
    let mut repeated = false;
    loop {
        let key = s.string_value()?;
        repeated |= keys.may_repeat(match &key {
            Str::Range(start, len) => &header[*start..start + len],
            Str::Owned(text) => text.as_bytes(),
        });
        s.eat(b':')?;
        let value = s.string_value()?.raw();
        ext.push_raw(key.raw(), Some(value));
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b'}' => {
                s.i += 1;
                ext.dedupe_flagged(repeated);
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
