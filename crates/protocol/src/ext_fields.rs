//! `ExtFields`: the string map every command carries for its custom header fields.

use bytes::Bytes;
use bytestring::ByteString;
use std::collections::{HashMap, HashSet};

/// One key or value: either a range of the header bytes the map was decoded from, or a string of
/// its own (inserted by code, or unescaped from JSON).
#[derive(Clone)]
enum Text {
    /// `source[start..start + len]`, checked to be UTF-8 when the entry was created.
    Slice { start: u32, len: u32 },
    /// Owned (cheap-clone) text.
    Own(ByteString),
}

/// A command's `extFields`: keys to optional string values, in wire order.
///
/// Decoded maps keep one reference to the received header and store keys and values as ranges
/// into it: decoding a 14-field SEND_MESSAGE_V2 header costs one vector, not 28 reference-counted
/// slices. Maps hold a handful of entries, so lookups scan.
/// A value can be null: Java's binary decoder turns an empty value into `key -> null`, and a JSON
/// header may say `"k":null`. Null values read as absent through [`ExtFields::get`].
/// Equality is map equality: order does not matter (Java's own order is HashMap order).
#[derive(Clone, Default)]
pub struct ExtFields {
    source: Bytes,
    entries: Vec<(Text, Option<Text>)>,
}

impl ExtFields {
    /// An empty map.
    pub fn new() -> Self {
        ExtFields::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        ExtFields {
            source: Bytes::new(),
            entries: Vec::with_capacity(n),
        }
    }

    /// An empty map whose entries may be ranges of `source` (used by the header decoders).
    pub(crate) fn with_source(source: Bytes, n: usize) -> Self {
        ExtFields {
            source,
            entries: Vec::with_capacity(n),
        }
    }

    fn text<'a>(&'a self, t: &'a Text) -> &'a str {
        match t {
            Text::Own(s) => s,
            Text::Slice { start, len } => {
                let bytes = &self.source[*start as usize..(*start + *len) as usize];
                // SAFETY: `Text::Slice` is only created by `push_range`, which checks that this
                // exact range of this exact `source` is valid UTF-8. `source` is an immutable
                // `Bytes` that is never replaced while slices into it exist (the only writer,
                // `with_source`, builds a new map), so the check still holds here.
                // Exercised by `ranges_resolve_to_validated_text` below.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
        }
    }

    /// Number of keys (null-valued keys included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| self.text(k) == key)
    }

    /// The value of `key`; `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.position(key)?;
        self.entries[i].1.as_ref().map(|v| self.text(v))
    }

    /// True when `key` is present, even with a null value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// True when `key` is present with a null value (binary empty value, JSON null).
    pub fn is_null(&self, key: &str) -> bool {
        matches!(self.position(key), Some(i) if self.entries[i].1.is_none())
    }

    /// Sets `key` to `value`, replacing an existing entry in place (like `HashMap::put`).
    pub fn insert(&mut self, key: impl Into<ByteString>, value: impl Into<ByteString>) {
        self.set(key.into(), Some(Text::Own(value.into())));
    }

    /// Like [`ExtFields::insert`] for a key known at compile time: no allocation for the key.
    pub fn insert_static(&mut self, key: &'static str, value: impl Into<ByteString>) {
        self.set(ByteString::from_static(key), Some(Text::Own(value.into())));
    }

    /// Sets `key` to null.
    pub fn insert_null(&mut self, key: impl Into<ByteString>) {
        self.set(key.into(), None);
    }

    fn set(&mut self, key: ByteString, value: Option<Text>) {
        match self.position(&key) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((Text::Own(key), value)),
        }
    }

    /// Removes `key`, returning its value if it had a non-null one.
    pub fn remove(&mut self, key: &str) -> Option<ByteString> {
        let i = self.position(key)?;
        let value = self.entries[i]
            .1
            .as_ref()
            .map(|v| ByteString::from(self.text(v)));
        self.entries.remove(i);
        value
    }

    /// Entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries
            .iter()
            .map(move |(k, v)| (self.text(k), v.as_ref().map(|v| self.text(v))))
    }

    /// Appends a key/value given as ranges of the source (or owned text) without looking for an
    /// existing key; decoders call [`ExtFields::dedupe`] afterwards. Ranges must be valid UTF-8.
    pub(crate) fn push_raw(
        &mut self,
        key: RawText,
        value: Option<RawText>,
    ) -> Result<(), std::str::Utf8Error> {
        let key = self.make_text(key)?;
        let value = value.map(|v| self.make_text(v)).transpose()?;
        self.entries.push((key, value));
        Ok(())
    }

    fn make_text(&self, raw: RawText) -> Result<Text, std::str::Utf8Error> {
        Ok(match raw {
            RawText::Own(s) => Text::Own(s),
            RawText::Range { start, len } => {
                std::str::from_utf8(&self.source[start..start + len])?;
                Text::Slice {
                    start: start as u32,
                    len: len as u32,
                }
            }
            RawText::CheckedRange { start, len } => Text::Slice {
                start: start as u32,
                len: len as u32,
            },
        })
    }

    /// Offset of `s` within the source when it points into it (JSON strings borrowed by serde).
    pub(crate) fn source_offset(&self, s: &str) -> Option<usize> {
        let base = self.source.as_ptr() as usize;
        let p = s.as_ptr() as usize;
        (p >= base && p + s.len() <= base + self.source.len()).then(|| p - base)
    }

    /// Keeps the last value of each repeated key at its first position.
    ///
    /// Java's binary fast-path encoder can write a key twice (header field + copied ext field), and
    /// a hostile peer could repeat one a million times, so this is O(n) for large maps. For small
    /// maps [`ExtFields::has_duplicate_small`] proves in one cheap pass that there is nothing to do,
    /// which is the common case.
    pub(crate) fn dedupe(&mut self) {
        let n = self.entries.len();
        if n < 2 {
            return;
        }
        if n <= 64 && !self.has_duplicate_small() {
            return;
        }
        let mut last: HashMap<String, Option<Text>> = HashMap::with_capacity(n);
        for (k, v) in self.entries.iter().rev() {
            last.entry(self.text(k).to_owned())
                .or_insert_with(|| v.clone());
        }
        let mut seen: HashSet<String> = HashSet::with_capacity(last.len());
        let old = std::mem::take(&mut self.entries);
        for (k, _) in old {
            let key = self.text(&k).to_owned();
            if seen.insert(key.clone()) {
                let v = last.remove(&key).flatten();
                self.entries.push((k, v));
            }
        }
    }
}

impl ExtFields {
    /// Exact duplicate check for up to 64 keys without allocating: keys are bucketed by a hash of
    /// (length, first byte, last byte); only a key landing in an occupied bucket is compared with
    /// the keys before it.
    fn has_duplicate_small(&self) -> bool {
        let mut occupied = 0u64;
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let key = self.text(k).as_bytes();
            let mix = ((key.len() as u64) << 16)
                | ((*key.first().unwrap_or(&0) as u64) << 8)
                | *key.last().unwrap_or(&0) as u64;
            let bit = 1u64 << (mix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58);
            if occupied & bit != 0
                && self.entries[..i].iter().any(|(p, _)| {
                    let p = self.text(p).as_bytes();
                    p.len() == key.len() && p.first() == key.first() && p == key
                })
            {
                return true;
            }
            occupied |= bit;
        }
        false
    }
}

/// Where a decoded key or value lives, before it becomes an entry.
pub(crate) enum RawText {
    /// A range of the source still to be checked for UTF-8 (binary headers).
    Range { start: usize, len: usize },
    /// A range of the source already known to be UTF-8 (borrowed from a parsed JSON `&str`).
    CheckedRange { start: usize, len: usize },
    /// Text of its own.
    Own(ByteString),
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.iter().any(|(ok, ov)| ok == k && ov == v))
    }
}

impl Eq for ExtFields {}

impl std::fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<ByteString>, V: Into<ByteString>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut ext = ExtFields::new();
        for (k, v) in iter {
            ext.insert(k, v);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place_and_equality_ignores_order() {
        let mut a = ExtFields::new();
        a.insert("x", "1");
        a.insert("y", "2");
        a.insert("x", "3");
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![("x", Some("3")), ("y", Some("2"))]
        );
        let b: ExtFields = [("y", "2"), ("x", "3")].into_iter().collect();
        assert_eq!(a, b);
        a.insert_null("z");
        assert!(a.contains_key("z") && a.is_null("z") && a.get("z").is_none());
        assert_ne!(a, b);
        assert_eq!(a.remove("x").as_deref(), Some("3"));
    }

    #[test]
    fn ranges_resolve_to_validated_text() {
        let src = Bytes::from_static("k1v1é\u{ff}".as_bytes());
        let mut e = ExtFields::with_source(src, 2);
        e.push_raw(
            RawText::Range { start: 0, len: 2 },
            Some(RawText::Range { start: 2, len: 4 }),
        )
        .unwrap();
        assert_eq!(e.get("k1"), Some("v1é"));
        // A range that splits a code point, or covers non-UTF-8, is refused.
        assert!(e
            .push_raw(RawText::Range { start: 4, len: 1 }, None)
            .is_err());
        assert!(e
            .push_raw(RawText::Range { start: 0, len: 7 }, None)
            .is_err());
        assert_eq!(e.len(), 1);
        let copy = e.clone();
        assert_eq!(copy.iter().collect::<Vec<_>>(), vec![("k1", Some("v1é"))]);
    }

    #[test]
    fn dedupe_keeps_last_value_small_and_large() {
        for n in [3usize, 100] {
            let mut e = ExtFields::new();
            for i in 0..n {
                e.push_raw(
                    RawText::Own(format!("k{}", i % 2).into()),
                    Some(RawText::Own(format!("{i}").into())),
                )
                .unwrap();
            }
            e.dedupe();
            assert_eq!(e.len(), 2);
            let last_even = if (n - 1) % 2 == 0 { n - 1 } else { n - 2 };
            assert_eq!(e.get("k0"), Some(last_even.to_string().as_str()));
            assert_eq!(
                e.get("k1"),
                Some(
                    (if last_even == n - 1 { n - 2 } else { n - 1 })
                        .to_string()
                        .as_str()
                )
            );
            assert_eq!(e.iter().next().unwrap().0, "k0");
        }
        // Distinct keys whose signatures collide still survive the slow path intact.
        let mut e = ExtFields::new();
        for k in ["ab", "cb", "ab"] {
            e.push_raw(RawText::Own(k.into()), Some(RawText::Own(k.into())))
                .unwrap();
        }
        e.dedupe();
        assert_eq!(e.len(), 2);
    }
}
