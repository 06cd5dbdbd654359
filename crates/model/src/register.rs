//! REGISTER_BROKER bodies (spec §7.4): the JSON RegisterBrokerBody, and the zlib-compressed
//! binary layout, both turned into the same [`RegisterBody`]. The NameServer decodes them; a
//! broker encodes them.

use crate::route::{DataVersion, TopicConfig};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Read;

/// Largest inflated compressed body accepted (a broker with 100k topics stays far below).
const MAX_INFLATED: u64 = 64 * 1024 * 1024;

/// What a registration carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisterBody {
    /// The broker's topic-config version.
    pub data_version: DataVersion,
    /// Its topics.
    pub topics: Vec<TopicConfig>,
    /// Filter servers (None when the body had no list).
    pub filter_server_list: Option<Vec<String>>,
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// JSON that does not parse.
    #[error("bad register body JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A compressed body that does not inflate or is cut short.
    #[error("bad compressed register body: {0}")]
    Compressed(String),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BodyJson {
    filter_server_list: Option<Vec<String>>,
    topic_config_serialize_wrapper: WrapperJson,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WrapperJson {
    data_version: DataVersion,
    topic_config_table: HashMap<String, TopicConfigJson>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct TopicConfigJson {
    topic_name: Option<String>,
    read_queue_nums: i32,
    write_queue_nums: i32,
    perm: i32,
    topic_sys_flag: i32,
}

impl WrapperJson {
    fn into_topics(self) -> (DataVersion, Vec<TopicConfig>) {
        let mut topics: Vec<TopicConfig> = self
            .topic_config_table
            .into_iter()
            .map(|(name, t)| TopicConfig {
                topic_name: t.topic_name.unwrap_or(name),
                read_queue_nums: t.read_queue_nums,
                write_queue_nums: t.write_queue_nums,
                perm: t.perm,
                topic_sys_flag: t.topic_sys_flag,
            })
            .collect();
        topics.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
        (self.data_version, topics)
    }
}

/// Parses a plain JSON RegisterBrokerBody (`wrapper_only`: an ancient broker, version < V3_0_11,
/// that sends the TopicConfigSerializeWrapper itself). An empty body is an empty registration.
pub fn decode_json(body: &[u8], wrapper_only: bool) -> Result<RegisterBody, BodyError> {
    if body.is_empty() {
        return Ok(RegisterBody::default());
    }
    if wrapper_only {
        let w: WrapperJson = serde_json::from_slice(body)?;
        let (data_version, topics) = w.into_topics();
        return Ok(RegisterBody {
            data_version,
            topics,
            filter_server_list: None,
        });
    }
    let b: BodyJson = serde_json::from_slice(body)?;
    let (data_version, topics) = b.topic_config_serialize_wrapper.into_topics();
    Ok(RegisterBody {
        data_version,
        topics,
        filter_server_list: b.filter_server_list,
    })
}

/// Parses the compressed layout: zlib of `len,DataVersion JSON | count, count x (len, topic line)
/// | len, filter list JSON | (5.x) mapping count, entries`.
pub fn decode_compressed(body: &[u8], version: i32) -> Result<RegisterBody, BodyError> {
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut raw)
        .map_err(|e| BodyError::Compressed(format!("inflate: {e}")))?;
    if raw.len() as u64 > MAX_INFLATED {
        return Err(BodyError::Compressed("inflated body over 64 MiB".into()));
    }
    let mut cur = Cursor { b: &raw, i: 0 };
    let data_version: DataVersion = serde_json::from_slice(cur.chunk()?)?;
    let count = cur.i32()?;
    // Each topic needs at least its 4-byte length: a count beyond that is a lie, not an allocation.
    if count < 0 || count as usize > cur.remaining() / 4 {
        return Err(BodyError::Compressed(format!("bad topic count {count}")));
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let line = std::str::from_utf8(cur.chunk()?)
            .map_err(|_| BodyError::Compressed("topic line not UTF-8".into()))?;
        topics.push(parse_topic_line(line)?);
    }
    let filters: Option<Vec<String>> = serde_json::from_slice(cur.chunk()?)?;
    // 5.x appends the static-topic mapping section (version >= V5_0_0); it is not routed here.
    let _ = version;
    topics.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
    Ok(RegisterBody {
        data_version,
        topics,
        filter_server_list: filters,
    })
}

/// `"<name> <read> <write> <perm> <SINGLE_TAG|MULTI_TAG> [<attributes JSON>]"`.
fn parse_topic_line(line: &str) -> Result<TopicConfig, BodyError> {
    let bad = || BodyError::Compressed(format!("bad topic line {line:?}"));
    let mut parts = line.splitn(6, ' ');
    let name = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    let mut num =
        || -> Result<i32, BodyError> { parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad) };
    let (read, write, perm) = (num()?, num()?, num()?);
    Ok(TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: read,
        write_queue_nums: write,
        perm,
        topic_sys_flag: 0,
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.i
    }

    fn i32(&mut self) -> Result<i32, BodyError> {
        let s = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| BodyError::Compressed("cut short".into()))?;
        self.i += 4;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A length-prefixed chunk, its length checked against what remains.
    fn chunk(&mut self) -> Result<&'a [u8], BodyError> {
        let len = self.i32()?;
        if len < 0 || len as usize > self.remaining() {
            return Err(BodyError::Compressed(format!("bad chunk length {len}")));
        }
        let s = &self.b[self.i..self.i + len as usize];
        self.i += len as usize;
        Ok(s)
    }
}

/// Builds a compressed body (what a broker with `compressedRegister=true` sends); used by tests
/// and tools that stand in for a broker.
pub fn encode_compressed(
    data_version: &DataVersion,
    topics: &[TopicConfig],
    filters: &[String],
) -> Vec<u8> {
    use std::io::Write;
    let mut raw = Vec::new();
    let chunk = |raw: &mut Vec<u8>, b: &[u8]| {
        raw.extend_from_slice(&(b.len() as i32).to_be_bytes());
        raw.extend_from_slice(b);
    };
    chunk(&mut raw, &data_version.to_json());
    raw.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        let line = format!(
            "{} {} {} {} SINGLE_TAG {{}}",
            t.topic_name, t.read_queue_nums, t.write_queue_nums, t.perm
        );
        chunk(&mut raw, line.as_bytes());
    }
    chunk(
        &mut raw,
        serde_json::to_string(filters)
            .expect("strings serialize")
            .as_bytes(),
    );
    raw.extend_from_slice(&0i32.to_be_bytes());
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&raw).expect("writing to a Vec cannot fail");
    z.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_round_trip_and_bad_input() {
        let dv = DataVersion {
            counter: 3,
            state_version: 0,
            timestamp: 1700000000000,
        };
        let topics = vec![TopicConfig {
            topic_name: "T".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        }];
        let body = encode_compressed(&dv, &topics, &[]);
        let back = decode_compressed(&body, 479).unwrap();
        assert_eq!(back.data_version, dv);
        assert_eq!(back.topics, topics);
        assert!(decode_compressed(b"not zlib", 479).is_err());
        assert!(decode_compressed(&body[..body.len() / 2], 479).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Hostile register bodies give errors, never panics or huge allocations.
        #[test]
        fn arbitrary_bodies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_json(&data, false);
            let _ = decode_json(&data, true);
            let _ = decode_compressed(&data, 479);
            // Valid zlib around arbitrary content exercises the inner length checks.
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, &data).unwrap();
            let _ = decode_compressed(&z.finish().unwrap(), 479);
        }
    }
}
