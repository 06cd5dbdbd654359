//! What a message is on the wire, shared by producers, the broker and consumers: the
//! properties string (`key \x01 value \x02`), the SEND_BATCH_MESSAGE body, and the order in
//! which a Java broker writes properties back (a `HashMap`'s iteration order), so a record we
//! store is byte-identical to the one a Java broker stores for the same send.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// `key \x01 value \x02` for each property (no escaping exists in the format).
pub fn encode_properties<K: AsRef<str>, V: AsRef<str>>(props: &[(K, V)]) -> String {
    let len = props
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut s = String::with_capacity(len);
    for (k, v) in props {
        s.push_str(k.as_ref());
        s.push('\u{1}');
        s.push_str(v.as_ref());
        s.push('\u{2}');
    }
    s
}

/// The pairs of a properties string, borrowed from it (see [`decode_properties`]).
pub fn property_pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split('\u{2}').filter_map(|item| item.split_once('\u{1}'))
}

/// The value of `key` in a properties string (the last one where it repeats, as a Java map
/// decoded from it holds), without decoding the rest.
pub fn property<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    property_pairs(s)
        .filter(|(k, _)| *k == key)
        .last()
        .map(|(_, v)| v)
}

/// Splits on 0x02 then on the first 0x01, skipping malformed items (as Java's decoder does).
pub fn decode_properties(s: &str) -> Vec<(String, String)> {
    property_pairs(s)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Java's `String.hashCode` (UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    let mut units = [0u16; 2];
    for c in s.chars() {
        for u in c.encode_utf16(&mut units) {
            h = h.wrapping_mul(31).wrapping_add(i32::from(*u));
        }
    }
    h
}

/// Properties as a Java broker re-serialises them: parsed into `new HashMap<>(128)` in the
/// producer's order (a repeated key keeps its first position and its last value), the broker's
/// own keys put after, then iterated bucket by bucket (`(h ^ h >>> 16) & (capacity - 1)`,
/// insertion order within a bucket; the table doubles past 75 % load).
pub fn java_hash_map_order<K: AsRef<str>, V>(mut pairs: Vec<(K, V)>) -> Vec<(K, V)> {
    // In place: a repeated key's last value moves to its first position, then it goes.
    let mut i = 0;
    while i < pairs.len() {
        match pairs[..i]
            .iter()
            .position(|(k, _)| k.as_ref() == pairs[i].0.as_ref())
        {
            Some(first) => {
                let (_, v) = pairs.remove(i);
                pairs[first].1 = v;
            }
            None => i += 1,
        }
    }
    let mut capacity = 128usize;
    while pairs.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |k: &str| {
        let h = java_string_hash(k) as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    // A stable sort keeps insertion order within a bucket (and allocates nothing for the
    // handful of properties a message has).
    pairs.sort_by_key(|(k, _)| bucket(k.as_ref()));
    pairs
}

/// One message of a batch body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// User flag.
    pub flag: i32,
    /// Body as sent (compressed or not, as the producer chose).
    pub body: Bytes,
    /// Properties string.
    pub properties: String,
}

/// The body of SEND_BATCH_MESSAGE: per message totalSize, magic 0, bodyCRC 0, flag, bodyLen,
/// body, propertiesLen (i16), properties.
pub fn batch_body(messages: &[(i32, Bytes, String)]) -> Bytes {
    let mut out = BytesMut::new();
    for (flag, body, props) in messages {
        let total = 4 + 4 + 4 + 4 + 4 + body.len() + 2 + props.len();
        out.put_i32(total as i32);
        out.put_i32(0);
        out.put_i32(0);
        out.put_i32(*flag);
        out.put_i32(body.len() as i32);
        out.put_slice(body);
        out.put_i16(props.len() as i16);
        out.put_slice(props.as_bytes());
    }
    out.freeze()
}

/// Decodes a batch body; every length is checked against what remains (a lying length is an
/// error, never an allocation).
pub fn decode_batch(mut body: Bytes) -> Result<Vec<BatchItem>, String> {
    let mut items = Vec::new();
    while body.has_remaining() {
        if body.remaining() < 20 {
            return Err(format!(
                "batch item cut short: {} bytes left",
                body.remaining()
            ));
        }
        let total = body.get_i32();
        let _magic = body.get_i32();
        let _crc = body.get_i32();
        let flag = body.get_i32();
        let body_len = body.get_i32();
        if body_len < 0 || body_len as usize + 2 > body.remaining() {
            return Err(format!("batch item body length {body_len} beyond the body"));
        }
        let msg = body.split_to(body_len as usize);
        let props_len = body.get_i16();
        if props_len < 0 || props_len as usize > body.remaining() {
            return Err(format!(
                "batch item properties length {props_len} beyond the body"
            ));
        }
        let props = body.split_to(props_len as usize);
        let expect = 20 + body_len as i64 + 2 + props_len as i64;
        if i64::from(total) != expect {
            return Err(format!(
                "batch item total size {total}, fields add up to {expect}"
            ));
        }
        let properties = String::from_utf8(props.to_vec())
            .map_err(|_| "batch item properties are not UTF-8".to_owned())?;
        items.push(BatchItem {
            flag,
            body: msg,
            properties,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip_and_lies() {
        let body = batch_body(&[
            (1, Bytes::from_static(b"a"), "K\u{1}v\u{2}".into()),
            (0, Bytes::new(), String::new()),
        ]);
        let items = decode_batch(body.clone()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].flag, &items[0].body[..]), (1, &b"a"[..]));
        assert!(decode_batch(body.slice(..body.len() - 1)).is_err());
        let mut lie = body.to_vec();
        lie[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_batch(Bytes::from(lie)).is_err());
    }

    /// A repeated key is stored once, with its last value (Java's `HashMap.put`), and keys of
    /// one bucket keep their insertion order.
    #[test]
    fn java_hash_map_order_keeps_one_entry_per_key_with_its_last_value() {
        let ordered = java_hash_map_order(vec![
            ("TAGS", "a"),
            ("KEYS", "k"),
            ("TAGS", "b"),
            ("WAIT", "true"),
            ("KEYS", "l"),
        ]);
        assert_eq!(ordered, [("TAGS", "b"), ("KEYS", "l"), ("WAIT", "true")]);
        // "Aa" and "BB" share a Java hash code, so a bucket: insertion order decides.
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
        let same = java_hash_map_order(vec![("BB", "1"), ("Aa", "2")]);
        assert_eq!(same, [("BB", "1"), ("Aa", "2")]);
    }

    /// Capture 061: the producer sent KEYS, UNIQ_KEY, WAIT, TAGS; the broker added MSG_REGION,
    /// TRACE_ON, CLUSTER; the record holds them in this order.
    #[test]
    fn java_hash_map_order_matches_a_stored_record() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let ordered = java_hash_map_order(vec![
            kv("KEYS", "key-0"),
            kv("UNIQ_KEY", "C000020216E75FFD2B276931188F0000"),
            kv("WAIT", "true"),
            kv("TAGS", "run1795256024545"),
            kv("MSG_REGION", "DefaultRegion"),
            kv("TRACE_ON", "true"),
            kv("CLUSTER", "DefaultCluster"),
        ]);
        let keys: Vec<&str> = ordered.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "MSG_REGION",
                "UNIQ_KEY",
                "CLUSTER",
                "TAGS",
                "KEYS",
                "WAIT",
                "TRACE_ON"
            ]
        );
    }
}
