//! The store's settings: sizes, flush mode, index, retention and delay levels, with Java's
//! property names and defaults.

use std::path::PathBuf;

/// Store settings (Java's property names in the comments).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `storePathRootDir`.
    pub root: PathBuf,
    /// `mappedFileSizeCommitLog` (1 GiB in Java).
    pub commit_log_segment_size: u64,
    /// `mappedFileSizeConsumeQueue` (300,000 entries x 20 bytes).
    pub consume_queue_file_size: u64,
    /// Fsync after every put (SYNC_FLUSH; `StoreService` groups them).
    pub sync_flush: bool,
    /// Records carry Java's whole-record CRC property (`enabledAppendPropCRC`, `__CRC32#`), so
    /// recovery detects a torn or damaged record anywhere in it, not only in the body and the
    /// lengths. On by default (Java: off); consumers see the extra property, as with a Java
    /// broker that enables it. Off: records byte-identical to a Java broker's defaults.
    pub whole_record_crc: bool,
    /// `messageIndexEnable`: index records by key and UNIQ_KEY (QUERY_MESSAGE).
    pub message_index: bool,
    /// `maxHashSlotNum` of an index file.
    pub index_slot_num: u32,
    /// `maxIndexNum`: entries per index file.
    pub index_num: u32,
    /// When and what retention deletes (Java's `CleanCommitLogService` settings).
    pub retention: Retention,
    /// The delay of each level in ms (`messageDelayLevel`): SCHEDULE_TOPIC_XXXX entries carry
    /// `store time + delay` as their tags code.
    pub delay_levels_ms: Vec<i64>,
    /// A put stamps the record's store time (the wall clock, never earlier than the last
    /// put's), as Java does in its put lock. Off: the caller's store time is kept (tests and
    /// tools that replay records with their times).
    pub stamp_store_time: bool,
    /// How appends reach the active segment: through a memory map (`Some(true)`) or with
    /// positioned writes (`Some(false)`); `None` is positioned writes in both flush modes (see
    /// `CommitLog::set_mapped_writes` for why). Either way a put is in the page cache before
    /// it is acknowledged.
    pub mapped_appends: Option<bool>,
}

/// The topic delayed messages wait in, one queue per level.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Java's default `messageDelayLevel`.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

/// Parses a `messageDelayLevel` value (`1s 5s 1m 2h 1d`) into ms per level; `None` if a level
/// does not parse.
pub fn parse_delay_levels(s: &str) -> Option<Vec<i64>> {
    s.split_whitespace()
        .map(|l| {
            let unit = match l.chars().last()? {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => return None,
            };
            l[..l.len() - 1].parse::<i64>().ok().map(|n| n * unit)
        })
        .collect()
}

/// Retention settings (spec §1.14), Java's names and defaults.
#[derive(Debug, Clone)]
pub struct Retention {
    /// `fileReservedTime` (72 h): a commit-log segment last modified longer ago is expired.
    pub file_reserved: std::time::Duration,
    /// `deleteWhen` (`"04"`): the hours (UTC here; Java: local time) at which expired
    /// segments are deleted.
    pub delete_when: Vec<u32>,
    /// `diskMaxUsedSpaceRatio` (0.75): above it, expired segments are deleted at any hour.
    pub disk_max_used_ratio: f64,
    /// `diskSpaceCleanForciblyRatio` (0.85): above it, the oldest segments are deleted even
    /// when not expired.
    pub clean_forcibly_ratio: f64,
    /// `diskSpaceWarningLevelRatio` (0.90): above it, puts are refused
    /// ([`StoreError::DiskFull`]) until usage drops.
    pub disk_full_ratio: f64,
    /// `deleteFileBatchMax` (10): segments deleted per round at most.
    pub batch_max: usize,
    /// `cleanResourceInterval` (10 s): how often `StoreService` runs a round.
    pub interval: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            file_reserved: std::time::Duration::from_secs(72 * 3600),
            delete_when: vec![4],
            disk_max_used_ratio: 0.75,
            clean_forcibly_ratio: 0.85,
            disk_full_ratio: 0.90,
            batch_max: 10,
            interval: std::time::Duration::from_secs(10),
        }
    }
}

/// Parses Java's `deleteWhen` (`;`-separated hours, e.g. `"04"` or `"01;13"`); parts that
/// are not hours are ignored, as Java's `isItTimeToDo` ignores them.
pub fn parse_delete_when(s: &str) -> Vec<u32> {
    s.split(';')
        .filter_map(|h| h.trim().parse().ok())
        .filter(|h| *h < 24)
        .collect()
}

impl StoreConfig {
    /// Java's sizes under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            commit_log_segment_size: 1 << 30,
            consume_queue_file_size: crate::consume_queue::DEFAULT_FILE_SIZE,
            sync_flush: false,
            whole_record_crc: true,
            message_index: true,
            index_slot_num: 5_000_000,
            index_num: 20_000_000,
            retention: Retention::default(),
            delay_levels_ms: parse_delay_levels(DEFAULT_DELAY_LEVELS).unwrap_or_default(),
            stamp_store_time: true,
            mapped_appends: None,
        }
    }
}
