//! The commit-log message record (spec §1.2), exactly as Java's `MessageExtEncoder` writes it and
//! `CommitLog.checkMessageAndReturnSize` checks it.
//!
//! Written by hand because the layout is the on-disk and on-wire format: a PULL_MESSAGE response
//! body is these records back to back, and Java clients decode them byte by byte.

use bytes::{BufMut, Bytes};
use std::net::{IpAddr, SocketAddr};

/// MESSAGE_MAGIC_CODE (V1: 1-byte topic length).
pub const MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// MESSAGE_MAGIC_CODE_V2 (2-byte topic length).
pub const MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// BLANK_MAGIC_CODE: the end-of-file record.
pub const BLANK_MAGIC: i32 = 0xCBD4_3194_u32 as i32;
/// Size of the BLANK record's header (`END_FILE_MIN_BLANK_LENGTH`).
pub const BLANK_LEN: usize = 8;
/// sysFlag bit: the born host is IPv6.
pub const BORNHOST_V6: i32 = 0x10;
/// sysFlag bit: the store host is IPv6.
pub const STOREHOST_V6: i32 = 0x20;
/// Largest properties string a record can carry (an i16 length).
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;
/// The whole-record CRC property's name (Java's `MessageConst.PROPERTY_CRC32`).
pub const PROP_CRC_NAME: &str = "__CRC32#";
/// Bytes the whole-record CRC property takes at the end of the properties
/// (`CommitLog.CRC32_RESERVED_LEN`): name, `\u{1}`, 10 digits, `\u{2}`.
pub const PROP_CRC_LEN: usize = PROP_CRC_NAME.len() + 1 + 10 + 1;

/// One stored message, as its fields (the record is [`Record::encode`]'s output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Queue id within the topic.
    pub queue_id: i32,
    /// The producer's flag.
    pub flag: i32,
    /// Consume-queue offset.
    pub queue_offset: i64,
    /// Commit-log offset of the record's first byte.
    pub physical_offset: i64,
    /// MessageSysFlag (the host bits are set by [`Record::encode`] from the addresses).
    pub sys_flag: i32,
    /// Producer's timestamp (ms).
    pub born_timestamp: i64,
    /// The producer's address as the broker saw it.
    pub born_host: SocketAddr,
    /// When the broker stored it (ms).
    pub store_timestamp: i64,
    /// The broker's address.
    pub store_host: SocketAddr,
    /// Deliveries before this one (retries).
    pub reconsume_times: i32,
    /// Transaction records only.
    pub prepared_transaction_offset: i64,
    /// The body as stored (compressed if the sysFlag says so).
    pub body: Bytes,
    /// The topic.
    pub topic: String,
    /// The properties string (`name \u{1} value \u{2}` pairs).
    pub properties: String,
}

/// Why bytes are not a valid record (what recovery truncates at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Fewer bytes than the record needs (a torn write, or the end of the data).
    #[error("record cut short: needs {needed} bytes, {available} available")]
    Short {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// Neither magic code (nor BLANK).
    #[error("bad magic code {0:#010x}")]
    BadMagic(u32),
    /// TOTALSIZE disagrees with the lengths inside.
    #[error("total size {total} does not match the fields ({computed})")]
    SizeMismatch {
        /// The TOTALSIZE field.
        total: i64,
        /// What the fields add up to.
        computed: i64,
    },
    /// A negative or impossible length field.
    #[error("bad {field} length {value}")]
    BadLength {
        /// Which length.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// The body's CRC is not the stored one.
    #[error("body CRC {actual:#x} does not match the stored {stored:#x}")]
    BadCrc {
        /// Stored.
        stored: u32,
        /// Computed.
        actual: u32,
    },
    /// The topic or properties are not UTF-8, or a field is out of range for its encoding.
    #[error("{0}")]
    Invalid(String),
}

/// What a read at some position finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A message record of this many bytes (boxed: a record is large, a BLANK is nothing).
    Message(Box<Record>, usize),
    /// The end-of-file BLANK record: the rest of the file is unused.
    Blank,
}

/// Java's `UtilAll.crc32`: CRC32 masked to 31 bits.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

fn host_len(addr: &SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    }
}

/// `MessageExtEncoder.calMsgLength`: the record's TOTALSIZE.
pub fn record_len(
    born_host_len: usize,
    store_host_len: usize,
    body_len: usize,
    topic_len: usize,
    topic_len_bytes: usize,
    properties_len: usize,
) -> usize {
    4 + 4
        + 4
        + 4
        + 4
        + 8
        + 8
        + 4
        + 8
        + born_host_len
        + 8
        + store_host_len
        + 4
        + 8
        + 4
        + body_len
        + topic_len_bytes
        + topic_len
        + 2
        + properties_len
}

impl Record {
    /// V1 unless the topic needs a 2-byte length (Java's autoMessageVersionOnTopicLen).
    pub fn magic(&self) -> i32 {
        if self.topic.len() > 127 {
            MAGIC_V2
        } else {
            MAGIC_V1
        }
    }

    /// The record's size in bytes.
    pub fn encoded_len(&self) -> usize {
        let topic_len_bytes = if self.magic() == MAGIC_V2 { 2 } else { 1 };
        record_len(
            host_len(&self.born_host),
            host_len(&self.store_host),
            self.body.len(),
            self.topic.len(),
            topic_len_bytes,
            self.properties.len(),
        )
    }

    /// The sysFlag as written: the caller's bits with the host-family bits set from the
    /// addresses.
    pub fn stored_sys_flag(&self) -> i32 {
        let mut f = self.sys_flag & !(BORNHOST_V6 | STOREHOST_V6);
        if self.born_host.is_ipv6() {
            f |= BORNHOST_V6;
        }
        if self.store_host.is_ipv6() {
            f |= STOREHOST_V6;
        }
        f
    }

    /// The record with Java's whole-record CRC property (`enabledAppendPropCRC`): the
    /// properties get a closing `\u{2}` if they lack one and 20 reserved bytes, which
    /// [`Record::to_bytes_with_prop_crc`] fills with the CRC of everything before them.
    pub fn with_prop_crc_reserved(mut self) -> Record {
        if !self.properties.is_empty() && !self.properties.ends_with('\u{2}') {
            self.properties.push('\u{2}');
        }
        self.properties.push_str(PROP_CRC_NAME);
        self.properties.push('\u{1}');
        self.properties.push_str("0000000000\u{2}");
        self
    }

    /// Bytes the properties string takes once stored: with the whole-record CRC property
    /// ([`Record::with_prop_crc_reserved`]'s additions) when `prop_crc`.
    fn stored_properties_len(&self, prop_crc: bool) -> usize {
        let sep = prop_crc && !self.properties.is_empty() && !self.properties.ends_with('\u{2}');
        self.properties.len()
            + if prop_crc {
                PROP_CRC_LEN + usize::from(sep)
            } else {
                0
            }
    }

    /// The size of the record as stored, with the whole-record CRC property when `prop_crc`
    /// (what [`Record::encode_stored`] writes).
    pub fn stored_len(&self, prop_crc: bool) -> usize {
        self.encoded_len() - self.properties.len() + self.stored_properties_len(prop_crc)
    }

    /// Whether the record can be stored (its properties and topic fit their length fields),
    /// checked before any byte is written.
    pub fn check_storable(&self, prop_crc: bool) -> Result<(), RecordError> {
        let props = self.stored_properties_len(prop_crc);
        if props > MAX_PROPERTIES_LEN {
            return Err(RecordError::Invalid(format!(
                "properties of {props} bytes exceed {MAX_PROPERTIES_LEN}"
            )));
        }
        if self.topic.len() > i16::MAX as usize {
            return Err(RecordError::Invalid("topic too long".into()));
        }
        let total = self.stored_len(prop_crc);
        i32::try_from(total)
            .map(drop)
            .map_err(|_| RecordError::Invalid(format!("record of {total} bytes")))
    }

    /// Writes the record as stored into `dst`, which must be exactly
    /// [`Record::stored_len`] bytes: the same bytes as [`Record::encode`] (or, with
    /// `prop_crc`, as [`Record::to_bytes_with_prop_crc`] of the record with the CRC property
    /// reserved), without building the record anywhere else first. The commit log encodes
    /// into the mapped segment with it: no copy of the record and no allocation per append.
    pub fn encode_stored(&self, dst: &mut [u8], prop_crc: bool) -> Result<(), RecordError> {
        self.check_storable(prop_crc)?;
        let total = self.stored_len(prop_crc);
        if dst.len() != total {
            return Err(RecordError::Invalid(format!(
                "a record of {total} bytes given {} to fill",
                dst.len()
            )));
        }
        let props_len = self.stored_properties_len(prop_crc);
        let mut out = &mut dst[..];
        self.put_fields(&mut out, props_len);
        if prop_crc {
            if props_len > self.properties.len() + PROP_CRC_LEN {
                out.put_u8(2);
            }
            out.put_slice(PROP_CRC_NAME.as_bytes());
            out.put_u8(1);
            out.put_slice(b"0000000000");
            out.put_u8(2);
            let crc = body_crc(&dst[..total - PROP_CRC_LEN]);
            write_prop_crc(dst, crc);
        }
        Ok(())
    }

    /// Encodes a record made by [`Record::with_prop_crc_reserved`], filling in the CRC of the
    /// record's bytes before the reserved 20 (Java: masked CRC32, decimal digits least
    /// significant first, zero-padded to 10).
    pub fn to_bytes_with_prop_crc(&self) -> Result<Bytes, RecordError> {
        let mut out = self.to_bytes()?.to_vec();
        let crc = body_crc(&out[..out.len() - PROP_CRC_LEN]);
        write_prop_crc(&mut out, crc);
        Ok(out.into())
    }

    /// Appends the record to `out` (the body CRC is computed here).
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), RecordError> {
        self.check_storable(false)?;
        self.put_fields(out, self.properties.len());
        Ok(())
    }

    /// Writes every field, the properties string last, for a stored properties length of
    /// `props_len` (the record's own, or more when bytes follow it, as the CRC property):
    /// the one writer of the layout behind [`Record::encode`] and [`Record::encode_stored`].
    /// The caller has checked the lengths ([`Record::check_storable`]).
    fn put_fields(&self, out: &mut impl BufMut, props_len: usize) {
        let total = self.encoded_len() - self.properties.len() + props_len;
        out.put_i32(total as i32);
        out.put_i32(self.magic());
        out.put_i32(body_crc(&self.body) as i32);
        out.put_i32(self.queue_id);
        out.put_i32(self.flag);
        out.put_i64(self.queue_offset);
        out.put_i64(self.physical_offset);
        out.put_i32(self.stored_sys_flag());
        out.put_i64(self.born_timestamp);
        put_host(out, &self.born_host);
        out.put_i64(self.store_timestamp);
        put_host(out, &self.store_host);
        out.put_i32(self.reconsume_times);
        out.put_i64(self.prepared_transaction_offset);
        out.put_i32(self.body.len() as i32);
        out.put_slice(&self.body);
        if self.magic() == MAGIC_V2 {
            out.put_i16(self.topic.len() as i16);
        } else {
            out.put_u8(self.topic.len() as u8);
        }
        out.put_slice(self.topic.as_bytes());
        out.put_i16(props_len as i16);
        out.put_slice(self.properties.as_bytes());
    }

    /// The record as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, RecordError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out.into())
    }
}

/// Writes the CRC digits into the reserved property at the end of `record`.
fn write_prop_crc(record: &mut [u8], mut crc: u32) {
    let len = record.len();
    let digits = &mut record[len - 11..len - 1];
    for d in digits.iter_mut() {
        *d = b'0' + (crc % 10) as u8;
        crc /= 10;
    }
}

/// The whole-record CRC a record's properties carry, if they end with one.
fn stored_prop_crc(properties: &str) -> Option<u32> {
    let tail = properties.get(properties.len().checked_sub(PROP_CRC_LEN)?..)?;
    let digits = tail
        .strip_prefix(PROP_CRC_NAME)?
        .strip_prefix('\u{1}')?
        .strip_suffix('\u{2}')?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        digits
            .bytes()
            .rev()
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0')) as u32,
    )
}

/// How much of a record [`decode`] verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Lengths and magic only (reads of records already validated).
    Layout,
    /// Also the body CRC, and the whole-record CRC when the record carries one (recovery).
    Crc,
    /// Also require the whole-record CRC (a log written with it: recovery of that log).
    WholeRecord,
}

fn put_host(out: &mut impl BufMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(i32::from(addr.port()));
}

/// A bounds-checked reader over one record's bytes: every read checks what is left.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(RecordError::Short {
                needed: self.pos.saturating_add(n),
                available: self.buf.len(),
            });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn host(&mut self, v6: bool) -> Result<SocketAddr, RecordError> {
        let ip: IpAddr = if v6 {
            let b: [u8; 16] = self.take(16)?.try_into().expect("16 bytes");
            b.into()
        } else {
            let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
            b.into()
        };
        let port = self.i32()?;
        let port = u16::try_from(port).map_err(|_| RecordError::BadLength {
            field: "port",
            value: i64::from(port),
        })?;
        Ok(SocketAddr::new(ip, port))
    }
}

/// Reads the record at the start of `buf`, checking everything recovery checks (magic, the
/// size formula and, with `check_crc`, the body CRC). `buf` may hold more after it; bytes that
/// end mid-record are [`RecordError::Short`]. `body` shares `source`'s memory when `buf` is a
/// slice of it (no copy).
pub fn decode(source: &Bytes, check_crc: bool) -> Result<Found, RecordError> {
    decode_checked(source, if check_crc { Check::Crc } else { Check::Layout })
}

/// [`decode`] with the level of checking spelled out.
pub fn decode_checked(source: &Bytes, check: Check) -> Result<Found, RecordError> {
    let check_crc = check != Check::Layout;
    let buf: &[u8] = source;
    let mut c = Cursor { buf, pos: 0 };
    let total = c.i32()?;
    let magic = c.i32()?;
    if magic == BLANK_MAGIC {
        return Ok(Found::Blank);
    }
    if magic != MAGIC_V1 && magic != MAGIC_V2 {
        return Err(RecordError::BadMagic(magic as u32));
    }
    if total < 0 {
        return Err(RecordError::BadLength {
            field: "total",
            value: i64::from(total),
        });
    }
    let total = total as usize;
    if total > buf.len() {
        return Err(RecordError::Short {
            needed: total,
            available: buf.len(),
        });
    }
    // From here on only this record's bytes are read.
    let mut c = Cursor {
        buf: &buf[..total],
        pos: 8,
    };
    let crc = c.i32()? as u32;
    let queue_id = c.i32()?;
    let flag = c.i32()?;
    let queue_offset = c.i64()?;
    let physical_offset = c.i64()?;
    let sys_flag = c.i32()?;
    let born_timestamp = c.i64()?;
    let born_host = c.host(sys_flag & BORNHOST_V6 != 0)?;
    let store_timestamp = c.i64()?;
    let store_host = c.host(sys_flag & STOREHOST_V6 != 0)?;
    let reconsume_times = c.i32()?;
    let prepared_transaction_offset = c.i64()?;
    let body_len = c.i32()?;
    if body_len < 0 {
        return Err(RecordError::BadLength {
            field: "body",
            value: i64::from(body_len),
        });
    }
    let body_start = c.pos;
    let body_slice = c.take(body_len as usize)?;
    let body = source.slice(body_start..body_start + body_slice.len());
    let (topic_len, topic_len_bytes) = if magic == MAGIC_V2 {
        (i64::from(c.i16()?), 2)
    } else {
        // Java reads V1's length as a signed byte.
        (i64::from(c.take(1)?[0] as i8), 1)
    };
    if topic_len < 0 {
        return Err(RecordError::BadLength {
            field: "topic",
            value: topic_len,
        });
    }
    let topic = std::str::from_utf8(c.take(topic_len as usize)?)
        .map_err(|_| RecordError::Invalid("topic is not UTF-8".into()))?
        .to_owned();
    let props_len = c.i16()?;
    if props_len < 0 {
        return Err(RecordError::BadLength {
            field: "properties",
            value: i64::from(props_len),
        });
    }
    let properties = std::str::from_utf8(c.take(props_len as usize)?)
        .map_err(|_| RecordError::Invalid("properties are not UTF-8".into()))?
        .to_owned();
    let computed = record_len(
        if sys_flag & BORNHOST_V6 != 0 { 20 } else { 8 },
        if sys_flag & STOREHOST_V6 != 0 { 20 } else { 8 },
        body_len as usize,
        topic_len as usize,
        topic_len_bytes,
        props_len as usize,
    );
    if computed != total {
        return Err(RecordError::SizeMismatch {
            total: total as i64,
            computed: computed as i64,
        });
    }
    if check_crc {
        let actual = body_crc(&body);
        if actual != crc {
            return Err(RecordError::BadCrc {
                stored: crc,
                actual,
            });
        }
        match stored_prop_crc(&properties) {
            Some(stored) => {
                let actual = body_crc(&buf[..total - PROP_CRC_LEN]);
                if actual != stored {
                    return Err(RecordError::BadCrc { stored, actual });
                }
            }
            None if check == Check::WholeRecord => {
                return Err(RecordError::Invalid(
                    "no whole-record CRC property in a log written with them".into(),
                ))
            }
            None => {}
        }
    }
    Ok(Found::Message(
        Box::new(Record {
            queue_id,
            flag,
            queue_offset,
            physical_offset,
            sys_flag,
            born_timestamp,
            born_host,
            store_timestamp,
            store_host,
            reconsume_times,
            prepared_transaction_offset,
            body,
            topic,
            properties,
        }),
        total,
    ))
}

/// The store timestamp of a stored record from its fixed header alone (the first 64 or 76
/// bytes: it follows the born host, 8 or 20 bytes by the IPv6 flag), without decoding the
/// body or the properties: what offset-by-time searches and consume stats need of a record.
pub fn store_timestamp(raw: &[u8]) -> Result<i64, RecordError> {
    let i32_at = |at: usize| {
        raw.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let short = |needed: usize| RecordError::Short {
        needed,
        available: raw.len(),
    };
    let magic = i32_at(4).ok_or_else(|| short(8))?;
    if magic != MAGIC_V1 && magic != MAGIC_V2 {
        return Err(RecordError::BadMagic(magic as u32));
    }
    let sys_flag = i32_at(36).ok_or_else(|| short(40))?;
    let at = if sys_flag & BORNHOST_V6 != 0 { 68 } else { 56 };
    raw.get(at..at + 8)
        .map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| short(at + 8))
}

/// The 8-byte BLANK record for the `remaining` bytes at the end of a file.
pub fn blank(remaining: u32) -> [u8; BLANK_LEN] {
    let mut b = [0u8; BLANK_LEN];
    b[..4].copy_from_slice(&(remaining as i32).to_be_bytes());
    b[4..].copy_from_slice(&BLANK_MAGIC.to_be_bytes());
    b
}

/// The properties a put's dispatch reads (the consume-queue tag code, the index keys, the
/// delay level), found in one pass over the string: a put used to scan it once per name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchProperties<'a> {
    /// `TAGS`.
    pub tags: Option<&'a str>,
    /// `KEYS` (space-separated).
    pub keys: Option<&'a str>,
    /// `UNIQ_KEY`.
    pub uniq_key: Option<&'a str>,
    /// `DELAY`.
    pub delay: Option<&'a str>,
}

impl<'a> DispatchProperties<'a> {
    /// Reads them from a properties string; as with [`property`], the last of a name wins.
    pub fn of(properties: &'a str) -> Self {
        let mut found = DispatchProperties::default();
        for (name, value) in properties
            .split('\u{2}')
            .filter_map(|pair| pair.split_once('\u{1}'))
        {
            match name {
                "TAGS" => found.tags = Some(value),
                "KEYS" => found.keys = Some(value),
                "UNIQ_KEY" => found.uniq_key = Some(value),
                "DELAY" => found.delay = Some(value),
                _ => {}
            }
        }
        found
    }
}

/// The value of property `name` in a properties string (the last one wins, as Java's map does).
pub fn property<'a>(properties: &'a str, name: &str) -> Option<&'a str> {
    properties
        .split('\u{2}')
        .filter_map(|pair| pair.split_once('\u{1}'))
        .rfind(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(born: &str, store: &str) -> Record {
        Record {
            queue_id: 3,
            flag: 0,
            queue_offset: 7,
            physical_offset: 4096,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host: born.parse().unwrap(),
            store_timestamp: 1_700_000_123_456,
            store_host: store.parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::from_static(b"body"),
            topic: "T".into(),
            properties: "TAGS\u{1}A\u{2}".into(),
        }
    }

    #[test]
    fn the_store_timestamp_comes_from_the_fixed_header() {
        for (born, store) in [
            ("10.0.0.1:1", "10.0.0.2:2"),
            ("[::1]:1", "10.0.0.2:2"),
            ("10.0.0.1:1", "[::2]:2"),
            ("[::1]:1", "[::2]:2"),
        ] {
            let raw = record(born, store).to_bytes().unwrap();
            assert_eq!(
                store_timestamp(&raw),
                Ok(1_700_000_123_456),
                "{born} {store}"
            );
            // Only the header is needed.
            let head = if born.starts_with('[') { 76 } else { 64 };
            assert_eq!(store_timestamp(&raw[..head]), Ok(1_700_000_123_456));
            assert!(matches!(
                store_timestamp(&raw[..head - 1]),
                Err(RecordError::Short { .. })
            ));
        }
        let mut bad = record("10.0.0.1:1", "10.0.0.2:2")
            .to_bytes()
            .unwrap()
            .to_vec();
        bad[4] ^= 0xFF;
        assert!(matches!(
            store_timestamp(&bad),
            Err(RecordError::BadMagic(_))
        ));
        assert!(matches!(
            store_timestamp(&[]),
            Err(RecordError::Short { .. })
        ));
    }
}
