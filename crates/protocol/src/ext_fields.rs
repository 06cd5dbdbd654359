//! `ExtFields`: the string map every command carries for its custom header fields.

use bytes::Bytes;
use bytestring::ByteString;
use std::collections::HashMap;

/// Where one key or value lives: a range of the header bytes the map was decoded from, a string
/// of the map's own (inserted by code, or unescaped from JSON), or nothing (a null value).
///
/// Eight bytes and `Copy`, so an entry is sixteen: decoding pushes plain integers, never moves
/// reference-counted strings around (which cost a store-forwarding stall per push, measured).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Span {
    /// Offset into `source`, or index into `owned` when `len == OWNED`.
    at: u32,
    /// Length in bytes, or one of the markers below (a header is at most 16 MiB, so real lengths
    /// never reach them).
    len: u32,
}

/// `Span::len` marker: the text is `owned[at]`.
const OWNED: u32 = u32::MAX;
/// `Span::len` marker: a null value.
const NULL: u32 = u32::MAX - 1;

impl Span {
    const NULL: Span = Span { at: 0, len: NULL };

    fn owned(index: usize) -> Span {
        Span {
            at: index as u32,
            len: OWNED,
        }
    }

    fn is_null(self) -> bool {
        self.len == NULL
    }

    fn owned_index(self) -> Option<usize> {
        (self.len == OWNED).then_some(self.at as usize)
    }
}

/// One key and its value (`Span::NULL` for null).
#[derive(Clone, Copy)]
struct Entry {
    key: Span,
    value: Span,
}

/// A command's `extFields`: keys to optional string values, in wire order.
///
/// Decoded maps keep one reference to the received header and store keys and values as ranges
/// into it: decoding a 14-field SEND_MESSAGE_V2 header costs one vector of plain integers, not 28
/// reference-counted slices. Text set by code lives in a side vector the ranges can point to.
/// Maps hold a handful of entries, so lookups scan.
/// A value can be null: Java's binary decoder turns an empty value into `key -> null`, and a JSON
/// header may say `"k":null`. Null values read as absent through [`ExtFields::get`].
/// Equality is map equality: order does not matter (Java's own order is HashMap order).
#[derive(Clone, Default)]
pub struct ExtFields {
    source: Bytes,
    entries: Vec<Entry>,
    /// Strings the spans with `len == OWNED` index; kept free of unreferenced slots.
    owned: Vec<ByteString>,
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
            owned: Vec::with_capacity(2 * n),
        }
    }

    /// Room for `n` more entries set by code (each a key and a value of its own): a typed
    /// header reserves its field count before writing, so the vectors grow once, not field by
    /// field (those regrowths were 6 of a producer's ~50 allocations per send).
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
        self.owned.reserve(2 * n);
    }

    /// An empty map whose entries may be ranges of `source` (used by the header decoders).
    pub(crate) fn with_source(source: Bytes, n: usize) -> Self {
        ExtFields {
            source,
            entries: Vec::with_capacity(n),
            owned: Vec::new(),
        }
    }

    /// A map being decoded from `source` by a decoder that checks UTF-8 itself and hands the
    /// source over when done ([`ExtFields::attach_source`]), saving a reference count round trip.
    pub(crate) fn unsourced(n: usize) -> Self {
        ExtFields::with_source(Bytes::new(), n)
    }

    /// Gives an [`ExtFields::unsourced`] map the bytes its spans point into.
    pub(crate) fn attach_source(&mut self, source: Bytes) {
        debug_assert!(self.source.is_empty());
        self.source = source;
    }

    /// The text of a non-null span.
    #[inline]
    fn text(&self, t: Span) -> &str {
        if let Some(i) = t.owned_index() {
            return &self.owned[i];
        }
        let bytes = &self.source[t.at as usize..(t.at + t.len) as usize];
        // SAFETY: a source span is only created by `make_span` (checked with `from_utf8`, or the
        // caller vouched for it through `RawText::CheckedRange`, which the decoders only build
        // from a `&str` borrowed from this source or from an all-ASCII region) or by the binary
        // decoder's `push_checked` under the same all-ASCII rule. `source` is an immutable
        // `Bytes` that is never replaced while spans into it exist (only `with_source` sets it,
        // on a new map), so the check still holds here. Exercised by
        // `ranges_resolve_to_validated_text` below.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The text of a value span; `None` for null.
    #[inline]
    fn value_text(&self, v: Span) -> Option<&str> {
        (!v.is_null()).then(|| self.text(v))
    }

    /// A cheap upper-bound guess of the bytes a header needs for this map (before escaping): the
    /// header it was decoded from plus its own strings, each with room for quotes and separators.
    /// Encoders size their buffer with it without walking the entries.
    pub fn encoded_len_hint(&self) -> usize {
        self.source.len()
            + self.owned.iter().map(|s| s.len() + 3).sum::<usize>()
            + 3 * self.entries.len()
    }

    /// Bytes the ROCKETMQ header needs for this map's entries (2 + key + 4 + value for each
    /// non-null value), read off the stored lengths without resolving any text.
    pub fn binary_len(&self) -> usize {
        let len = |t: Span| match t.owned_index() {
            Some(i) => self.owned[i].len(),
            None => t.len as usize,
        };
        self.entries
            .iter()
            .filter(|e| !e.value.is_null())
            .map(|e| 6 + len(e.key) + len(e.value))
            .sum()
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
        self.entries.iter().position(|e| self.text(e.key) == key)
    }

    /// The value of `key`; `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.position(key)?;
        self.value_text(self.entries[i].value)
    }

    /// True when `key` is present, even with a null value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// True when `key` is present with a null value (binary empty value, JSON null).
    pub fn is_null(&self, key: &str) -> bool {
        matches!(self.position(key), Some(i) if self.entries[i].value.is_null())
    }

    /// Sets `key` to `value`, replacing an existing entry in place (like `HashMap::put`).
    pub fn insert(&mut self, key: impl Into<ByteString>, value: impl Into<ByteString>) {
        self.set(key.into(), Some(value.into()));
    }

    /// Like [`ExtFields::insert`] for a key known at compile time: no allocation for the key.
    pub fn insert_static(&mut self, key: &'static str, value: impl Into<ByteString>) {
        self.set(ByteString::from_static(key), Some(value.into()));
    }

    /// Sets `key` to null.
    pub fn insert_null(&mut self, key: impl Into<ByteString>) {
        self.set(key.into(), None);
    }

    fn set(&mut self, key: ByteString, value: Option<ByteString>) {
        match self.position(&key) {
            Some(i) => {
                let old = self.entries[i].value;
                self.entries[i].value = match (value, old.owned_index()) {
                    // Reuse the old value's slot: repeated inserts never grow `owned`.
                    (Some(v), Some(slot)) => {
                        self.owned[slot] = v;
                        old
                    }
                    (Some(v), None) => self.own(v),
                    (None, _) => {
                        self.release(old);
                        Span::NULL
                    }
                };
            }
            None => {
                let key = self.own(key);
                let value = value.map_or(Span::NULL, |v| self.own(v));
                self.entries.push(Entry { key, value });
            }
        }
    }

    fn own(&mut self, s: ByteString) -> Span {
        self.owned.push(s);
        Span::owned(self.owned.len() - 1)
    }

    /// Frees an owned span's slot: the last slot moves into it and its one referrer is repointed,
    /// so `owned` never holds strings nothing refers to.
    fn release(&mut self, span: Span) -> Option<ByteString> {
        let slot = span.owned_index()?;
        let last = self.owned.len() - 1;
        let text = self.owned.swap_remove(slot);
        if slot != last {
            let moved = Span::owned(last);
            for e in &mut self.entries {
                if e.key == moved {
                    e.key = Span::owned(slot);
                }
                if e.value == moved {
                    e.value = Span::owned(slot);
                }
            }
        }
        Some(text)
    }

    /// Removes `key`, returning its value if it had a non-null one.
    pub fn remove(&mut self, key: &str) -> Option<ByteString> {
        let i = self.position(key)?;
        let Entry { key, value } = self.entries.remove(i);
        let text = (!value.is_null()).then(|| ByteString::from(self.text(value)));
        // Both spans left `entries` with the entry, so releasing one cannot repoint the other:
        // release the higher slot first, and the move it makes can never touch the lower one.
        let (high, low) = match (key.owned_index(), value.owned_index()) {
            (Some(k), Some(v)) if v > k => (value, key),
            _ => (key, value),
        };
        self.release(high);
        self.release(low);
        text
    }

    /// Entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries
            .iter()
            .map(move |e| (self.text(e.key), self.value_text(e.value)))
    }

    /// Appends a key/value given as ranges of the source (or owned text) without looking for an
    /// existing key; decoders call [`ExtFields::dedupe`] afterwards. Ranges must be valid UTF-8.
    #[inline]
    pub(crate) fn push_raw(&mut self, key: RawText, value: Option<RawText>) {
        let key = self.make_span(key);
        let value = value.map_or(Span::NULL, |v| self.make_span(v));
        self.entries.push(Entry { key, value });
    }

    /// Appends ranges of the source the caller has proven to be UTF-8 (the binary decoder, for an
    /// all-ASCII ext region); `value` `None` is null. No duplicate check, as for `push_raw`.
    #[inline]
    pub(crate) fn push_checked(&mut self, key: (usize, usize), value: Option<(usize, usize)>) {
        let span = |(start, len): (usize, usize)| Span {
            at: start as u32,
            len: len as u32,
        };
        self.entries.push(Entry {
            key: span(key),
            value: value.map_or(Span::NULL, span),
        });
    }

    #[inline]
    fn make_span(&mut self, raw: RawText) -> Span {
        match raw {
            RawText::Own(s) => self.own(s),
            RawText::CheckedRange { start, len } => Span {
                at: start as u32,
                len: len as u32,
            },
        }
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
        let mut last: HashMap<&str, Span> = HashMap::with_capacity(n);
        for e in self.entries.iter().rev() {
            last.entry(self.text(e.key)).or_insert(e.value);
        }
        let mut kept = Vec::with_capacity(last.len());
        for e in &self.entries {
            if let Some(value) = last.remove(self.text(e.key)) {
                kept.push(Entry { key: e.key, value });
            }
        }
        let mut map = ExtFields {
            source: self.source.clone(),
            entries: kept,
            owned: Vec::new(),
        };
        // Re-own what the kept spans refer to, so `owned` holds no dropped strings.
        for i in 0..map.entries.len() {
            let Entry { key, value } = map.entries[i];
            if let Some(k) = key.owned_index() {
                map.entries[i].key = map.own(self.owned[k].clone());
            }
            if let Some(v) = value.owned_index() {
                map.entries[i].value = map.own(self.owned[v].clone());
            }
        }
        *self = map;
    }
}

impl ExtFields {
    /// Exact duplicate check for up to 64 keys without allocating: a [`KeyFilter`] pass, and only
    /// a key the filter flags is compared with the keys before it.
    fn has_duplicate_small(&self) -> bool {
        let mut filter = KeyFilter::default();
        self.entries.iter().enumerate().any(|(i, e)| {
            let key = self.text(e.key).as_bytes();
            filter.may_repeat(key)
                && self.entries[..i].iter().any(|p| {
                    let p = self.text(p.key).as_bytes();
                    p.len() == key.len() && p.first() == key.first() && p == key
                })
        })
    }

    /// Like [`ExtFields::dedupe`] for a decoder that ran a [`KeyFilter`] over the keys as it
    /// pushed them: nothing to do unless the filter flagged one (the common case costs nothing).
    pub(crate) fn dedupe_flagged(&mut self, flagged: bool) {
        if flagged {
            self.dedupe();
        }
    }
}

/// A one-sided test for repeated keys: keys are bucketed into 256 by (first byte, last byte,
/// length); a key that lands in an empty bucket is certainly new. Distinct one-letter keys (the
/// V2 send header's `a`..`n`) never share a bucket, so the common header never needs a compare.
#[derive(Default)]
pub(crate) struct KeyFilter {
    occupied: [u64; 4],
}

impl KeyFilter {
    /// Records `key`; true when it may repeat an earlier key.
    #[inline(always)]
    pub(crate) fn may_repeat(&mut self, key: &[u8]) -> bool {
        let (first, last) = match key {
            [] => (0, 0),
            [f] => (*f, *f),
            [f, .., l] => (*f, *l),
        };
        let bucket = first
            .wrapping_add(last.wrapping_sub(first).wrapping_mul(3))
            .wrapping_add((key.len() as u8).wrapping_sub(1).wrapping_mul(101));
        let (word, bit) = ((bucket >> 6) as usize, 1u64 << (bucket & 63));
        let seen = self.occupied[word] & bit != 0;
        self.occupied[word] |= bit;
        seen
    }
}

/// Where a decoded key or value lives, before it becomes an entry.
pub(crate) enum RawText {
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
        let src = Bytes::from_static("k1v1é".as_bytes());
        let mut e = ExtFields::with_source(src, 2);
        e.push_raw(
            RawText::CheckedRange { start: 0, len: 2 },
            Some(RawText::CheckedRange { start: 2, len: 4 }),
        );
        e.push_checked((0, 1), None);
        e.push_raw(RawText::Own("own".into()), Some(RawText::Own("v".into())));
        assert_eq!(e.get("k1"), Some("v1é"));
        assert!(e.is_null("k"));
        assert_eq!(e.get("own"), Some("v"));
        let copy = e.clone();
        assert_eq!(
            copy.iter().collect::<Vec<_>>(),
            vec![("k1", Some("v1é")), ("k", None), ("own", Some("v"))]
        );
    }

    #[test]
    fn edits_keep_owned_text_consistent() {
        // A decoded map edited by code: ranges and owned strings side by side, slots released
        // and moved as keys come and go.
        let mut e = ExtFields::with_source(Bytes::from_static(b"abcd"), 4);
        e.push_checked((0, 1), Some((1, 1)));
        e.insert("x", "1");
        e.insert("y", "2");
        e.insert("z", "3");
        assert_eq!(e.remove("x").as_deref(), Some("1"));
        e.insert("y", "22");
        e.insert_null("z");
        e.insert("a", "new");
        assert_eq!(e.remove("a").as_deref(), Some("new"));
        e.insert("w", "4");
        assert_eq!(
            e.iter().collect::<Vec<_>>(),
            vec![("y", Some("22")), ("z", None), ("w", Some("4"))]
        );
        assert_eq!(
            e.owned.len(),
            5,
            "y, 22, z, w, 4: no slot outlives its entry"
        );
    }

    #[test]
    fn dedupe_keeps_last_value_small_and_large() {
        for n in [3usize, 100] {
            let mut e = ExtFields::new();
            for i in 0..n {
                e.push_raw(
                    RawText::Own(format!("k{}", i % 2).into()),
                    Some(RawText::Own(format!("{i}").into())),
                );
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
            e.push_raw(RawText::Own(k.into()), Some(RawText::Own(k.into())));
        }
        e.dedupe();
        assert_eq!(e.len(), 2);
    }
}
