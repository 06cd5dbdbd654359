//! Java's store formats written and read from `../shared/docs/broker-spec.md` §1 alone, with no
//! code of `rmq-store`: the migration tests build a directory as a Java 5.3.3 broker lays it
//! out, and read what rmq left with the eyes of a Java broker. If rmq's store and this module
//! disagree, one of them misreads the spec.

use std::path::Path;

pub mod layout;

/// MESSAGE_MAGIC_CODE (V1: one-byte topic length).
pub const MAGIC_V1: u32 = 0xDAA3_20A7;
/// MESSAGE_MAGIC_CODE_V2 (two-byte topic length).
pub const MAGIC_V2: u32 = 0xDAA3_20AB;
/// BLANK_MAGIC_CODE: the rest of the segment is unused.
pub const BLANK_MAGIC: u32 = 0xCBD4_3194;

/// A message record's fields (IPv4 hosts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JavaRecord {
    /// TOTALSIZE.
    pub size: u32,
    /// QUEUEID.
    pub queue_id: i32,
    /// QUEUEOFFSET.
    pub queue_offset: i64,
    /// PHYSICALOFFSET.
    pub physical_offset: i64,
    /// STORETIMESTAMP.
    pub store_timestamp: i64,
    /// BODY.
    pub body: Vec<u8>,
    /// TOPIC.
    pub topic: String,
    /// PROPERTIES, `name \x01 value \x02` pairs.
    pub properties: String,
}

impl JavaRecord {
    /// A property's value.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.split('\u{2}').find_map(|kv| {
            let (k, v) = kv.split_once('\u{1}')?;
            (k == name).then_some(v)
        })
    }
}

/// `UtilAll.crc32`: CRC32 masked to 31 bits.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Encodes a V1 record (IPv4 born and store hosts 127.0.0.1).
#[allow(clippy::too_many_arguments)]
pub fn encode(
    topic: &str,
    queue_id: i32,
    queue_offset: i64,
    physical_offset: i64,
    store_timestamp: i64,
    store_port: u16,
    body: &[u8],
    properties: &[(&str, &str)],
) -> Vec<u8> {
    let props: String = properties
        .iter()
        .map(|(k, v)| format!("{k}\u{1}{v}\u{2}"))
        .collect();
    let total = 91 + body.len() + topic.len() + props.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&(total as i32).to_be_bytes());
    b.extend_from_slice(&MAGIC_V1.to_be_bytes());
    b.extend_from_slice(&body_crc(body).to_be_bytes());
    b.extend_from_slice(&queue_id.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // FLAG
    b.extend_from_slice(&queue_offset.to_be_bytes());
    b.extend_from_slice(&physical_offset.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // SYSFLAG: IPv4 hosts, not compressed
    b.extend_from_slice(&(store_timestamp - 5).to_be_bytes()); // BORNTIMESTAMP
    b.extend_from_slice(&[127, 0, 0, 1]);
    b.extend_from_slice(&54321i32.to_be_bytes());
    b.extend_from_slice(&store_timestamp.to_be_bytes());
    b.extend_from_slice(&[127, 0, 0, 1]);
    b.extend_from_slice(&i32::from(store_port).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // RECONSUMETIMES
    b.extend_from_slice(&0i64.to_be_bytes()); // PREPAREDTRANSACTIONOFFSET
    b.extend_from_slice(&(body.len() as i32).to_be_bytes());
    b.extend_from_slice(body);
    b.push(topic.len() as u8);
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&(props.len() as i16).to_be_bytes());
    b.extend_from_slice(props.as_bytes());
    assert_eq!(b.len(), total);
    b
}

/// What lies at the start of `b`: a record, the end of the segment's data (BLANK or zeros), or
/// why the bytes are not a record.
pub enum Next {
    /// A whole record whose body CRC matches.
    Record(JavaRecord),
    /// BLANK record or never-written bytes.
    End,
    /// Not a valid record.
    Invalid(String),
}

fn be_i32(b: &[u8], o: usize) -> i32 {
    i32::from_be_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

fn be_i64(b: &[u8], o: usize) -> i64 {
    i64::from_be_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Decodes the record at the start of `b` as Java's `CommitLog.checkMessageAndReturnSize`
/// would accept it.
pub fn decode(b: &[u8]) -> Next {
    if b.len() < 8 {
        return Next::End;
    }
    let size = be_i32(b, 0);
    let magic = be_i32(b, 4) as u32;
    if magic == BLANK_MAGIC || (size == 0 && magic == 0) {
        return Next::End;
    }
    if magic != MAGIC_V1 && magic != MAGIC_V2 {
        return Next::Invalid(format!("magic {magic:#x}"));
    }
    if size < 91 || size as usize > b.len() {
        return Next::Invalid(format!("size {size}"));
    }
    let r = &b[..size as usize];
    let sys_flag = be_i32(r, 36);
    let born_len = if sys_flag & 0x10 != 0 { 20 } else { 8 };
    let store_len = if sys_flag & 0x20 != 0 { 20 } else { 8 };
    let store_ts_at = 40 + 8 + born_len;
    let mut at = store_ts_at + 8 + store_len + 4 + 8;
    let body_len = be_i32(r, at) as usize;
    at += 4;
    if at + body_len > r.len() {
        return Next::Invalid("body length".into());
    }
    let body = r[at..at + body_len].to_vec();
    at += body_len;
    if body_crc(&body) != be_i32(r, 8) as u32 {
        return Next::Invalid("body CRC".into());
    }
    let topic_len = if magic == MAGIC_V2 {
        let l = u16::from_be_bytes([r[at], r[at + 1]]) as usize;
        at += 2;
        l
    } else {
        let l = r[at] as usize;
        at += 1;
        l
    };
    if at + topic_len + 2 > r.len() {
        return Next::Invalid("topic length".into());
    }
    let topic = String::from_utf8_lossy(&r[at..at + topic_len]).into_owned();
    at += topic_len;
    let props_len = i16::from_be_bytes([r[at], r[at + 1]]) as usize;
    at += 2;
    if at + props_len != r.len() {
        return Next::Invalid("properties length".into());
    }
    Next::Record(JavaRecord {
        size: size as u32,
        queue_id: be_i32(r, 12),
        queue_offset: be_i64(r, 20),
        physical_offset: be_i64(r, 28),
        store_timestamp: be_i64(r, store_ts_at),
        body,
        topic,
        properties: String::from_utf8_lossy(&r[at..]).into_owned(),
    })
}

/// Every record of `<root>/commitlog`, walked as Java's recovery walks it: each segment from
/// its start to a BLANK or unwritten bytes; the walk ends at the first invalid record (or a
/// record whose PHYSICALOFFSET is not its position). Returns the records and where the valid
/// log ends.
pub fn walk_commit_log(root: &Path) -> (Vec<JavaRecord>, i64) {
    let dir = root.join("commitlog");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("commitlog/")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.len() == 20 && n.bytes().all(|c| c.is_ascii_digit()))
        .collect();
    names.sort();
    let mut out = Vec::new();
    let mut end = names
        .first()
        .map(|n| n.parse::<i64>().expect("digits"))
        .unwrap_or(0);
    for name in names {
        let base: i64 = name.parse().expect("digits");
        let bytes = std::fs::read(dir.join(&name)).expect("segment readable");
        let mut at = 0usize;
        end = base;
        loop {
            match decode(&bytes[at..]) {
                Next::Record(r) => {
                    if r.physical_offset != base + at as i64 {
                        return (out, base + at as i64);
                    }
                    at += r.size as usize;
                    end = base + at as i64;
                    out.push(r);
                }
                Next::End => break,
                Next::Invalid(_) => return (out, base + at as i64),
            }
        }
    }
    (out, end)
}

/// A 20-byte consume-queue entry.
pub fn cq_entry(physical_offset: i64, size: i32, tags_code: i64) -> [u8; 20] {
    let mut e = [0u8; 20];
    e[..8].copy_from_slice(&physical_offset.to_be_bytes());
    e[8..12].copy_from_slice(&size.to_be_bytes());
    e[12..].copy_from_slice(&tags_code.to_be_bytes());
    e
}

/// A consume queue's entries, (physical offset, size, tags code) by logical offset, read from
/// `<root>/consumequeue/<topic>/<queue>/` up to the first never-written entry.
pub fn read_consume_queue(root: &Path, topic: &str, queue: i32) -> Vec<(i64, i32, i64)> {
    let dir = root
        .join("consumequeue")
        .join(topic)
        .join(queue.to_string());
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(d) => d
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect(),
        Err(_) => return Vec::new(),
    };
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let bytes = std::fs::read(dir.join(n)).expect("queue file readable");
        for e in bytes.chunks_exact(20) {
            let (p, s, t) = (be_i64(e, 0), be_i32(e, 8), be_i64(e, 12));
            if p == 0 && s == 0 && t == 0 {
                return out;
            }
            out.push((p, s, t));
        }
    }
    out
}

/// Java's `IndexFile` lookup of `topic#key` over every file in `<root>/index`, newest first:
/// the physical offsets of the entries whose key hash matches.
pub fn index_lookup(root: &Path, slots: u64, topic: &str, key: &str) -> Vec<i64> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("index"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.reverse();
    let hash = java_hash(&format!("{topic}#{key}"));
    let hash = if hash == i32::MIN { 0 } else { hash.abs() };
    let mut out = Vec::new();
    for n in names {
        let f = std::fs::read(root.join("index").join(n)).expect("index file readable");
        let slot_at = 40 + (hash as u64 % slots) as usize * 4;
        let mut idx = be_i32(&f, slot_at);
        let entries_at = 40 + slots as usize * 4;
        let mut guard = 0;
        while idx > 0 && guard < 1_000_000 {
            let e = entries_at + idx as usize * 20;
            if be_i32(&f, e) == hash {
                out.push(be_i64(&f, e + 4));
            }
            idx = be_i32(&f, e + 16);
            guard += 1;
        }
    }
    out
}

/// fastjson's JSON with unquoted integer map keys (`{0:5}`) made standard, then parsed.
pub fn fastjson(text: &str) -> serde_json::Value {
    let mut out = String::with_capacity(text.len() + 16);
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i] as char;
        if in_str {
            out.push(c);
            if c == '\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 1;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if (c == '{' || c == ',') && {
            let rest = text[i + 1..].trim_start();
            let digits = rest
                .bytes()
                .take_while(|d| d.is_ascii_digit() || *d == b'-')
                .count();
            digits > 0 && rest[digits..].trim_start().starts_with(':')
        } {
            out.push(c);
            let rest = &text[i + 1..];
            let ws = rest.len() - rest.trim_start().len();
            let digits = rest[ws..]
                .bytes()
                .take_while(|d| d.is_ascii_digit() || *d == b'-')
                .count();
            out.push('"');
            out.push_str(&rest[ws..ws + digits]);
            out.push('"');
            i += ws + digits;
        } else {
            out.push(c);
        }
        i += 1;
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_integer_keys_are_read() {
        let v = fastjson(r#"{"offsetTable":{"T@G":{0:12, 1:9},"x":"{0:1}"}}"#);
        assert_eq!(v["offsetTable"]["T@G"]["1"], 9);
        assert_eq!(v["offsetTable"]["x"], "{0:1}");
    }

    #[test]
    fn records_round_trip() {
        let r = encode(
            "T",
            1,
            7,
            100,
            1_700_000_000_000,
            10911,
            b"hi",
            &[("KEYS", "k")],
        );
        let Next::Record(d) = decode(&r) else {
            panic!("decodes")
        };
        assert_eq!((d.queue_id, d.queue_offset, d.physical_offset), (1, 7, 100));
        assert_eq!(d.property("KEYS"), Some("k"));
        assert_eq!(
            java_hash("TagA"),
            "TagA"
                .chars()
                .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
        );
    }
}
