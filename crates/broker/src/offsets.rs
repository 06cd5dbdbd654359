//! Consumer offsets (Java's `ConsumerOffsetManager`, spec §1.9, §2.4) and delay-level offsets
//! (`delayOffset.json`, §1.17), in Java's files: fastjson writes their integer map keys
//! unquoted (`{"T@G":{0:12}}`), and so do we, so a Java broker reads our files as its own.

use crate::json_file;
use rmq_model::route::DataVersion;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Per queue id, an offset.
pub type QueueOffsets = BTreeMap<i32, i64>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct OffsetsFile {
    data_version: DataVersion,
    offset_table: HashMap<String, BTreeMap<String, i64>>,
}

fn int_keys(m: BTreeMap<String, i64>) -> QueueOffsets {
    m.into_iter()
        .filter_map(|(k, v)| Some((k.trim().parse().ok()?, v)))
        .collect()
}

/// `{0:12,1:9}` as fastjson writes an integer-keyed map.
fn write_int_map(out: &mut String, m: &QueueOffsets) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}:{v}");
    }
    out.push('}');
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Committed offsets by `topic@group`, plus the in-memory pull offsets GET_CONSUME_STATS reads.
pub struct ConsumerOffsets {
    committed: Mutex<(DataVersion, HashMap<String, QueueOffsets>)>,
    pulled: Mutex<HashMap<String, QueueOffsets>>,
    path: PathBuf,
    persisting: Mutex<()>,
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl ConsumerOffsets {
    /// Loads `config/consumerOffset.json` under `root`.
    pub fn load(root: &Path) -> Result<ConsumerOffsets, json_file::ConfigFileError> {
        let path = root.join("config").join("consumerOffset.json");
        let f = json_file::load::<OffsetsFile>(&path)?.unwrap_or_default();
        let table = f
            .offset_table
            .into_iter()
            .map(|(k, m)| (k, int_keys(m)))
            .collect();
        Ok(ConsumerOffsets {
            committed: Mutex::new((f.data_version, table)),
            pulled: Mutex::new(HashMap::new()),
            path,
            persisting: Mutex::new(()),
        })
    }

    fn committed(&self) -> std::sync::MutexGuard<'_, (DataVersion, HashMap<String, QueueOffsets>)> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a commit (any value: Java never validates it).
    pub fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let mut c = self.committed();
        c.1.entry(key(topic, group))
            .or_default()
            .insert(queue_id, offset);
    }

    /// The committed offset of a queue.
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.committed()
            .1
            .get(&key(topic, group))?
            .get(&queue_id)
            .copied()
    }

    /// Records where a group's last pull of a queue ended.
    pub fn commit_pull(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let mut p = self.pulled.lock().unwrap_or_else(|p| p.into_inner());
        p.entry(key(topic, group))
            .or_default()
            .insert(queue_id, offset);
    }

    /// Where a group's last pull of a queue ended.
    pub fn pull_offset(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        let p = self.pulled.lock().unwrap_or_else(|p| p.into_inner());
        p.get(&key(topic, group))?.get(&queue_id).copied()
    }

    /// The topics a group has committed offsets for.
    pub fn topics_of(&self, group: &str) -> Vec<String> {
        let suffix = format!("@{group}");
        let mut v: Vec<String> = self
            .committed()
            .1
            .keys()
            .filter_map(|k| k.strip_suffix(&suffix).map(str::to_owned))
            .collect();
        v.sort();
        v
    }

    /// Every committed offset: ((topic, group), per queue).
    pub fn all(&self) -> Vec<((String, String), QueueOffsets)> {
        self.committed()
            .1
            .iter()
            .filter_map(|(k, v)| {
                let (t, g) = k.rsplit_once('@')?;
                Some(((t.to_owned(), g.to_owned()), v.clone()))
            })
            .collect()
    }

    /// Drops every offset of a topic (DELETE_TOPIC_IN_BROKER).
    pub fn remove_topic(&self, topic: &str) {
        let prefix = format!("{topic}@");
        self.committed().1.retain(|k, _| !k.starts_with(&prefix));
        let mut p = self.pulled.lock().unwrap_or_else(|p| p.into_inner());
        p.retain(|k, _| !k.starts_with(&prefix));
    }

    /// Drops every offset of a group.
    pub fn remove_group(&self, group: &str) {
        let suffix = format!("@{group}");
        self.committed().1.retain(|k, _| !k.ends_with(&suffix));
    }

    /// Java's file text: dataVersion, groupTopicMap (derived), offsetTable with bare keys.
    pub fn to_json(&self) -> String {
        let c = self.committed();
        let mut keys: Vec<&String> = c.1.keys().collect();
        keys.sort();
        let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for k in &keys {
            if let Some((t, g)) = k.rsplit_once('@') {
                groups.entry(g).or_default().push(t);
            }
        }
        let mut out = String::from("{\"dataVersion\":");
        out.push_str(&serde_json::to_string(&c.0).unwrap_or_default());
        out.push_str(",\"groupTopicMap\":{");
        for (i, (g, ts)) in groups.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let list: Vec<String> = ts.iter().map(|t| json_str(t)).collect();
            let _ = write!(out, "{}:[{}]", json_str(g), list.join(","));
        }
        out.push_str("},\"offsetTable\":{");
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_str(k));
            out.push(':');
            write_int_map(&mut out, &c.1[*k]);
        }
        out.push_str("}}");
        out
    }

    /// Writes `consumerOffset.json` (blocking).
    pub fn persist(&self) -> std::io::Result<()> {
        let _turn = self.persisting.lock().unwrap_or_else(|p| p.into_inner());
        json_file::store(&self.path, self.to_json().as_bytes())
    }
}

/// `delayOffset.json`: per delay level, the next schedule-queue offset to deliver.
pub struct DelayOffsets {
    table: Mutex<QueueOffsets>,
    path: PathBuf,
    persisting: Mutex<()>,
}

impl DelayOffsets {
    /// Loads `config/delayOffset.json` under `root`.
    pub fn load(root: &Path) -> Result<DelayOffsets, json_file::ConfigFileError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct File {
            offset_table: BTreeMap<String, i64>,
        }
        let path = root.join("config").join("delayOffset.json");
        let f = json_file::load::<File>(&path)?.unwrap_or_default();
        Ok(DelayOffsets {
            table: Mutex::new(int_keys(f.offset_table)),
            path,
            persisting: Mutex::new(()),
        })
    }

    /// A level's next offset (0 when never delivered).
    pub fn get(&self, level: i32) -> i64 {
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.get(&level).copied().unwrap_or(0)
    }

    /// Every level's offset.
    pub fn all(&self) -> QueueOffsets {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Moves a level on.
    pub fn set(&self, level: i32, offset: i64) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.insert(level, offset);
    }

    /// Java's `correctDelayOffset`, run at start: a level's saved offset is brought inside
    /// its SCHEDULE_TOPIC_XXXX queue's `[min, max]` (given per level as `(level, min, max)`).
    /// After a crash the queue can end before the saved offset (the file was written after
    /// entries that did not survive); left there, the level would skip the delayed messages
    /// written at the offsets it re-uses. Returns the levels moved: (level, from, to).
    pub fn correct(&self, bounds: &[(i32, u64, u64)]) -> Vec<(i32, i64, i64)> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mut moved = Vec::new();
        for &(level, min, max) in bounds {
            let Some(saved) = t.get(&level).copied() else {
                continue;
            };
            let fixed = saved.clamp(min as i64, max as i64);
            if fixed != saved {
                t.insert(level, fixed);
                moved.push((level, saved, fixed));
            }
        }
        moved
    }

    /// Java's file text.
    pub fn to_json(&self) -> String {
        let t = self.all();
        let v = DataVersion {
            timestamp: crate::now_ms(),
            ..Default::default()
        };
        let mut out = format!(
            "{{\"dataVersion\":{},\"offsetTable\":",
            serde_json::to_string(&v).unwrap_or_default()
        );
        write_int_map(&mut out, &t);
        out.push('}');
        out
    }

    /// Writes `delayOffset.json` (blocking).
    pub fn persist(&self) -> std::io::Result<()> {
        let _turn = self.persisting.lock().unwrap_or_else(|p| p.into_inner());
        json_file::store(&self.path, self.to_json().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_file_shape_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let o = ConsumerOffsets::load(dir.path()).unwrap();
        o.commit("CG", "T", 0, 12);
        o.commit("CG", "T", 1, 9);
        o.commit("CG", "%RETRY%CG", 0, 0);
        assert_eq!(o.query("CG", "T", 1), Some(9));
        assert_eq!(o.topics_of("CG"), ["%RETRY%CG", "T"]);
        let text = o.to_json();
        assert!(
            text.contains(r#""offsetTable":{"%RETRY%CG@CG":{0:0},"T@CG":{0:12,1:9}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""groupTopicMap":{"CG":["%RETRY%CG","T"]}"#),
            "{text}"
        );
        o.persist().unwrap();
        let again = ConsumerOffsets::load(dir.path()).unwrap();
        assert_eq!(again.query("CG", "T", 0), Some(12));
        again.remove_topic("T");
        assert_eq!(again.query("CG", "T", 0), None);

        let d = DelayOffsets::load(dir.path()).unwrap();
        d.set(3, 17);
        d.persist().unwrap();
        assert!(d.to_json().contains(r#""offsetTable":{3:17}"#));
        assert_eq!(DelayOffsets::load(dir.path()).unwrap().get(3), 17);
    }
}
