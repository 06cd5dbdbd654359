//! The NameServer's JSON bodies, written the way fastjson 1.2.83 writes them.
//!
//! Hand-written because the protocol forces it: fastjson's default output is not JSON (Long map
//! keys are unquoted: `{0:"ip:port"}`) and Java clients older than 4.9.4 (and the Go client) parse
//! exactly that, while newer clients get the "standard" form (quoted, numerically sorted keys,
//! non-ASCII as `\uXXXX`, `/` as `\/`). No serializer produces both. Keys are written in
//! alphabetical order, nulls omitted, as fastjson does.

use bytes::BytesMut;
use rmq_protocol::header::json::write_string;

/// Which of fastjson's outputs to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Default features: Long keys unquoted, UTF-8 raw.
    Default,
    /// BrowserCompatible + MapSortField: keys quoted, non-ASCII and `/` escaped.
    Standard,
}

/// A JSON writer over a buffer.
pub struct Writer {
    /// The bytes written so far.
    pub out: BytesMut,
    style: Style,
}

impl Writer {
    /// A writer in `style`.
    pub fn new(style: Style) -> Self {
        Writer {
            out: BytesMut::with_capacity(256),
            style,
        }
    }

    /// Raw punctuation.
    pub fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A string value.
    pub fn str(&mut self, s: &str) {
        match self.style {
            Style::Default => write_string(&mut self.out, s),
            Style::Standard => write_browser_string(&mut self.out, s),
        }
    }

    /// `"key":` (the key is a plain ASCII identifier).
    pub fn key(&mut self, k: &str) {
        self.str(k);
        self.out.extend_from_slice(b":");
    }

    /// An integer.
    pub fn int(&mut self, v: i64) {
        self.raw(itoa::Buffer::new().format(v));
    }

    /// A boolean.
    pub fn bool(&mut self, v: bool) {
        self.raw(if v { "true" } else { "false" });
    }

    /// A map with Long keys (already in the order to write): unquoted by default, quoted in
    /// standard style (callers give them sorted numerically, which MapSortField also does).
    pub fn long_map<'a>(&mut self, entries: impl Iterator<Item = (i64, &'a str)>) {
        self.raw("{");
        for (i, (k, v)) in entries.enumerate() {
            if i > 0 {
                self.raw(",");
            }
            match self.style {
                Style::Default => self.int(k),
                Style::Standard => {
                    self.raw("\"");
                    self.int(k);
                    self.raw("\"");
                }
            }
            self.raw(":");
            self.str(v);
        }
        self.raw("}");
    }

    /// A map with string keys and string values.
    pub fn str_map<'a>(&mut self, entries: impl Iterator<Item = (&'a str, &'a str)>) {
        self.raw("{");
        for (i, (k, v)) in entries.enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.key(k);
            self.str(v);
        }
        self.raw("}");
    }

    /// An array of strings.
    pub fn str_array<'a>(&mut self, items: impl Iterator<Item = &'a str>) {
        self.raw("[");
        for (i, s) in items.enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.str(s);
        }
        self.raw("]");
    }

    /// The finished bytes.
    pub fn finish(self) -> bytes::Bytes {
        self.out.freeze()
    }
}

/// fastjson's BrowserCompatible string: `"` `\` `/` escaped, controls as short escapes or
/// `\u00XX`, every char >= 0x7F as `\uXXXX` (UTF-16 units, uppercase hex).
fn write_browser_string(out: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(b"\"");
    let mut units = [0u16; 2];
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '/' => out.extend_from_slice(b"\\/"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7F => {
                for u in c.encode_utf16(&mut units) {
                    let u = *u;
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        HEX[(u >> 12) as usize & 0xF],
                        HEX[(u >> 8) as usize & 0xF],
                        HEX[(u >> 4) as usize & 0xF],
                        HEX[u as usize & 0xF],
                    ]);
                }
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_maps_in_both_styles() {
        let mut w = Writer::new(Style::Default);
        w.long_map([(0, "a:1"), (1, "b:2")].into_iter());
        assert_eq!(&w.finish()[..], br#"{0:"a:1",1:"b:2"}"#);
        let mut w = Writer::new(Style::Standard);
        w.long_map([(0, "a/1"), (10, "é😀")].into_iter());
        assert_eq!(
            &w.finish()[..],
            br#"{"0":"a\/1","10":"\u00E9\uD83D\uDE00"}"#
        );
    }
}
