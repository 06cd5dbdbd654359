//! Queries by key and by physical offset (QUERY_MESSAGE, VIEW_MESSAGE_BY_ID).

use super::{MessageStore, StoreError};
use crate::index;
use bytes::Bytes;

/// What a key query found (QUERY_MESSAGE's answer).
#[derive(Debug, Clone, Default)]
pub struct KeyHits {
    /// The records, newest first, each as its exact stored bytes.
    pub records: Vec<Bytes>,
    /// Store time of the last record indexed (`indexLastUpdateTimestamp`).
    pub index_last_update_timestamp: i64,
    /// Its physical offset (`indexLastUpdatePhyoffset`).
    pub index_last_update_phy_offset: i64,
}

/// Java's cap on a key query's hits (`maxMsgsNumBatch`).
pub const MAX_KEY_HITS: usize = 64;

impl MessageStore {
    /// Records of `topic` stored within `[begin, end]` (ms) whose `KEYS` hold `key` or whose
    /// `UNIQ_KEY` is `key`, newest first, at most `max` (capped at 64, as Java does). Unlike
    /// Java's store, which leaves hash collisions for the client to drop, only exact matches
    /// are returned; records retention removed are skipped.
    pub fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Result<KeyHits, StoreError> {
        let Some(ix) = &self.indexes else {
            return Ok(KeyHits::default());
        };
        let (ts, phy) = ix.last_update();
        let mut hits = KeyHits {
            records: Vec::new(),
            index_last_update_timestamp: ts,
            index_last_update_phy_offset: phy,
        };
        let max = max.min(MAX_KEY_HITS);
        let wanted = index::index_key(topic, key);
        let offsets = ix.query(&wanted, MAX_KEY_HITS, begin, end)?;
        for phy in offsets {
            if hits.records.len() >= max {
                break;
            }
            let phy = phy as u64;
            if phy < self.log.start() || phy >= self.log.end() {
                continue;
            }
            // An entry can point at a record a crash truncated and a later put replaced:
            // the record itself decides.
            let Ok(Some(r)) = self.log.read(phy) else {
                continue;
            };
            // The keys it was indexed under, by the index's own rule.
            if r.topic == topic
                && index::record_keys(&r.topic, r.sys_flag, &r.properties).contains(&wanted)
            {
                hits.records
                    .push(self.log.read_raw(phy, r.encoded_len() as u32)?);
            }
        }
        Ok(hits)
    }

    /// The stored bytes of the record at physical offset `offset` (VIEW_MESSAGE_BY_ID: the
    /// offset comes from an offsetMsgId), `None` when no record starts there.
    pub fn record_at(&self, offset: u64) -> Result<Option<Bytes>, StoreError> {
        if offset < self.log.start() || offset >= self.log.end() {
            return Ok(None);
        }
        match self.log.read(offset) {
            Ok(Some(r)) => Ok(Some(self.log.read_raw(offset, r.encoded_len() as u32)?)),
            _ => Ok(None),
        }
    }
}
