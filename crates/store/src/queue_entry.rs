//! The consume-queue entry (spec §1.5): 20 bytes, big-endian: commit-log offset (i64), record
//! size (i32), tags hash code (i64).

/// Bytes per entry (`CQ_STORE_UNIT_SIZE`).
pub const ENTRY_LEN: usize = 20;

/// One consume-queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEntry {
    /// Commit-log offset of the record.
    pub physical_offset: i64,
    /// The record's TOTALSIZE.
    pub size: i32,
    /// [`tags_code`] of the record's TAGS (or a delivery time for delayed messages).
    pub tags_code: i64,
}

impl QueueEntry {
    /// The pre-blank entry Java pads a queue's first file with (`fillPreBlank`).
    pub const PRE_BLANK: QueueEntry = QueueEntry {
        physical_offset: 0,
        size: i32::MAX,
        tags_code: 0,
    };

    /// The 20 bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[..8].copy_from_slice(&self.physical_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..].copy_from_slice(&self.tags_code.to_be_bytes());
        b
    }

    /// Reads an entry from 20 bytes.
    pub fn decode(b: &[u8; ENTRY_LEN]) -> QueueEntry {
        QueueEntry {
            physical_offset: i64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            size: i32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            tags_code: i64::from_be_bytes(b[12..].try_into().expect("8 bytes")),
        }
    }

    /// Recovery's test (`ConsumeQueue.recover`): a real entry has `offset >= 0 && size > 0`.
    pub fn is_valid(&self) -> bool {
        self.physical_offset >= 0 && self.size > 0
    }
}

/// Java's `String.hashCode()` over UTF-16 code units.
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

/// The tags hash code a consume-queue entry carries: 0 without tags, else the Java hash of the
/// whole TAGS value, sign-extended (`MessageExtBrokerInner.tagsString2tagsCode`).
pub fn tags_code(tags: Option<&str>) -> i64 {
    match tags {
        None | Some("") => 0,
        Some(t) => i64::from(java_string_hash(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_tag_codes_as_java() {
        let e = QueueEntry {
            physical_offset: 3171,
            size: 261,
            tags_code: -1909056598,
        };
        assert_eq!(QueueEntry::decode(&e.encode()), e);
        assert!(
            e.is_valid() && QueueEntry::PRE_BLANK.is_valid(),
            "pre-blank entries count as entries"
        );
        assert!(!QueueEntry { size: 0, ..e }.is_valid());
        // Values from the spec and capture 038 (codeSet of the subscription).
        assert_eq!(tags_code(Some("run1795256024545")), -1909056598);
        assert_eq!(tags_code(Some("TagA")), 2598919);
        assert_eq!(tags_code(None), 0);
        assert_eq!(tags_code(Some("")), 0);
        // Non-ASCII goes through UTF-16 units like Java (U+1F600 is a surrogate pair).
        assert_eq!(java_string_hash("é"), 0xE9);
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }
}
