//! Retention (spec §1.14): expired commit-log segments deleted, and what pointed into them.

use super::{MessageStore, StoreError};
use std::path::Path;

/// What a retention round did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CleanReport {
    /// Commit-log segments deleted.
    pub deleted: usize,
    /// The disk usage the round was decided on.
    pub disk_used: f64,
    /// Whether puts are refused now.
    pub disk_full: bool,
}

/// The used fraction of the filesystem holding `path` (Java: `(total - free) / total`).
pub fn disk_used_ratio(path: &Path) -> std::io::Result<f64> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    if st.f_blocks == 0 {
        return Ok(0.0);
    }
    Ok((st.f_blocks - st.f_bfree.min(st.f_blocks)) as f64 / st.f_blocks as f64)
}

/// (total, free) bytes of the filesystem holding `path` (`commitLogDirCapacity`).
pub fn disk_space(path: &Path) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok((st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize))
}

impl MessageStore {
    /// Retention (Java's `fileReservedTime`): deletes the commit log's oldest segments last
    /// modified more than `reserved` ago (never the one being written), then the consume-queue
    /// entries that pointed into them; min offsets move past what went. Returns the segments
    /// deleted.
    pub fn delete_expired(&mut self, reserved: std::time::Duration) -> Result<usize, StoreError> {
        self.delete_segments(reserved, false, usize::MAX)
    }

    /// One retention round (spec §1.14), decided on the UTC `hour` and the disk's `disk_used`
    /// fraction: expired segments go when the hour is in `delete_when` or the disk is above
    /// `disk_max_used_ratio`; above `clean_forcibly_ratio` the oldest go even when young; at
    /// most `batch_max`. Above `disk_full_ratio`, puts are refused until a round finds less.
    pub fn clean(&mut self, hour: u32, disk_used: f64) -> Result<CleanReport, StoreError> {
        let r = self.config.retention.clone();
        let full = disk_used > r.disk_full_ratio;
        if full && self.disk_full.is_none() {
            tracing::error!(used = disk_used, "disk full: puts refused");
        } else if !full && self.disk_full.is_some() {
            tracing::warn!(
                used = disk_used,
                "disk usage back under the limit: puts accepted"
            );
        }
        self.disk_full = full.then_some(disk_used);
        let forcibly = disk_used > r.clean_forcibly_ratio;
        let due = r.delete_when.contains(&hour) || disk_used > r.disk_max_used_ratio;
        let deleted = if due || forcibly {
            self.delete_segments(r.file_reserved, forcibly, r.batch_max)?
        } else {
            0
        };
        Ok(CleanReport {
            deleted,
            disk_used,
            disk_full: full,
        })
    }

    fn delete_segments(
        &mut self,
        reserved: std::time::Duration,
        forcibly: bool,
        max: usize,
    ) -> Result<usize, StoreError> {
        let now = std::time::SystemTime::now();
        let mut budget = max;
        let deleted = self.log.delete_oldest_segments(|meta| {
            let go = budget > 0
                && (forcibly
                    || meta
                        .modified()
                        .ok()
                        .and_then(|m| now.duration_since(m).ok())
                        .is_some_and(|age| age > reserved));
            budget = budget.saturating_sub(usize::from(go));
            go
        })?;
        if deleted > 0 {
            let start = self.log.start();
            for q in self.queues.values_mut() {
                q.drop_before_physical(start)?;
            }
            if let Some(ix) = &mut self.indexes {
                ix.delete_before(start as i64)?;
            }
            tracing::info!(
                segments = deleted,
                log_start = start,
                "expired commit-log segments deleted"
            );
        }
        Ok(deleted)
    }

    /// Drops a topic's consume queues, files included (DELETE_TOPIC_IN_BROKER); its records
    /// stay in the commit log until retention removes them. Returns the queues dropped.
    pub fn delete_topic(&mut self, topic: &str) -> Result<usize, StoreError> {
        let dropped = self.queues.remove_topic(topic);
        let dir = self.config.root.join("consumequeue").join(topic);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { path: dir, source }),
        }
        Ok(dropped)
    }
}
