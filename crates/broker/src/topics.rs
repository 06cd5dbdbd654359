//! Topic configs (Java's `TopicConfigManager`, spec §2.1.2, §2.9, §3.3): the system topics a
//! 5.3.3 broker creates, auto-creation from TBW102, retry and DLQ topics, and `topics.json`.

use crate::config::BrokerConfig;
use crate::json_file;
use rmq_model::route::DataVersion;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

/// PERM_INHERIT: a topic created from this one inherits its queues (TBW102).
pub const PERM_INHERIT: i32 = 1;
/// Read permission.
pub const PERM_READ: i32 = 4;
/// Write permission.
pub const PERM_WRITE: i32 = 2;
/// The template topic auto-creation copies.
pub const AUTO_CREATE_TOPIC: &str = "TBW102";
/// Prefix of a consumer group's retry topic.
pub const RETRY_PREFIX: &str = "%RETRY%";
/// Prefix of a consumer group's dead-letter topic.
pub const DLQ_PREFIX: &str = "%DLQ%";

/// One topic's config, with Java's JSON field names (alphabetical, as fastjson writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    /// `queue.type`, `message.type`, ... (kept, not interpreted).
    pub attributes: BTreeMap<String, String>,
    /// An order topic.
    pub order: bool,
    /// Permission bits (4 read, 2 write, 1 inherit).
    pub perm: i32,
    /// Readable queues.
    pub read_queue_nums: i32,
    /// SINGLE_TAG or MULTI_TAG.
    pub topic_filter_type: String,
    /// The name.
    pub topic_name: String,
    /// Unit flags.
    pub topic_sys_flag: i32,
    /// Writable queues.
    pub write_queue_nums: i32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            attributes: BTreeMap::new(),
            order: false,
            perm: PERM_READ | PERM_WRITE,
            read_queue_nums: 16,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_name: String::new(),
            topic_sys_flag: 0,
            write_queue_nums: 16,
        }
    }
}

impl TopicConfig {
    /// A topic of `queues` read and write queues and `perm`.
    pub fn new(name: &str, queues: i32, perm: i32) -> Self {
        TopicConfig {
            topic_name: name.to_owned(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm,
            ..Default::default()
        }
    }

    /// Readable?
    pub fn readable(&self) -> bool {
        self.perm & PERM_READ != 0
    }

    /// Java's `TopicConfig.toString`, which send refusals quote.
    pub fn java_string(&self) -> String {
        let perm = format!(
            "{}{}{}",
            if self.perm & PERM_READ != 0 { "R" } else { "-" },
            if self.perm & PERM_WRITE != 0 {
                "W"
            } else {
                "-"
            },
            if self.perm & PERM_INHERIT != 0 {
                "X"
            } else {
                "-"
            },
        );
        let attrs: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "TopicConfig [topicName={}, readQueueNums={}, writeQueueNums={}, perm={perm}, topicFilterType={}, topicSysFlag={}, order={}, attributes={{{}}}]",
            self.topic_name,
            self.read_queue_nums,
            self.write_queue_nums,
            self.topic_filter_type,
            self.topic_sys_flag,
            self.order,
            attrs.join(", ")
        )
    }
}

/// `topics.json`: `{"dataVersion":…,"topicConfigTable":{…}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TopicsFile {
    data_version: DataVersion,
    topic_config_table: BTreeMap<String, TopicConfig>,
}

/// Why a topic name is refused (spec §2.1.1 row 3): the remark Java writes.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.trim().is_empty() {
        return Err("The specified topic is blank.".into());
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"%|_-".contains(&b))
    {
        return Err(
            "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
                .into(),
        );
    }
    if topic.len() > 127 {
        return Err("The specified topic is longer than topic max length.".into());
    }
    Ok(())
}

/// Topics no client may send to (spec §2.1.1 row 4).
pub fn is_not_allowed_send_topic(topic: &str) -> bool {
    matches!(
        topic,
        "SCHEDULE_TOPIC_XXXX"
            | "RMQ_SYS_TRANS_HALF_TOPIC"
            | "RMQ_SYS_TRANS_OP_HALF_TOPIC"
            | "TRANS_CHECK_MAX_TIME_TOPIC"
            | "SELF_TEST_TOPIC"
            | "OFFSET_MOVED_EVENT"
    )
}

/// The broker's topic table.
pub struct TopicManager {
    table: RwLock<(DataVersion, BTreeMap<String, TopicConfig>)>,
    /// System topics (never updated or deleted by admin requests).
    system: Vec<String>,
    path: PathBuf,
    persisting: Mutex<()>,
}

fn now_ms() -> i64 {
    crate::now_ms()
}

fn next_version(v: &mut DataVersion) {
    v.counter += 1;
    v.timestamp = now_ms();
}

/// The system topics a broker creates at start, as Java's `TopicConfigManager` does.
fn system_topics(config: &BrokerConfig) -> BTreeMap<String, TopicConfig> {
    let mut t = BTreeMap::new();
    let mut add = |name: &str, queues: i32, perm: i32| {
        t.insert(name.to_owned(), TopicConfig::new(name, queues, perm));
    };
    let rw = PERM_READ | PERM_WRITE;
    add("SELF_TEST_TOPIC", 1, rw);
    if config.auto_create_topic_enable {
        add(
            AUTO_CREATE_TOPIC,
            config.default_topic_queue_nums,
            rw | PERM_INHERIT,
        );
    }
    add("BenchmarkTest", 1024, rw);
    let cluster = &config.broker_cluster_name;
    let name = &config.broker_name;
    add(
        cluster,
        16,
        if config.cluster_topic_enable {
            rw | PERM_INHERIT
        } else {
            PERM_INHERIT
        },
    );
    add(
        name,
        1,
        if config.broker_topic_enable {
            rw | PERM_INHERIT
        } else {
            PERM_INHERIT
        },
    );
    add("OFFSET_MOVED_EVENT", 1, rw);
    add("SCHEDULE_TOPIC_XXXX", 18, rw);
    if config.trace_topic_enable {
        add(&config.msg_trace_topic_name, 1, rw);
    }
    add(&format!("{cluster}_REPLY_TOPIC"), 1, rw);
    add(&format!("rmq_sys_REVIVE_LOG_{cluster}"), 8, rw);
    add(
        &format!("rmq_sys_SYNC_BROKER_MEMBER_{name}"),
        1,
        PERM_INHERIT,
    );
    add("RMQ_SYS_TRANS_HALF_TOPIC", 1, rw);
    add("RMQ_SYS_TRANS_OP_HALF_TOPIC", 1, rw);
    if config.timer_wheel_enable {
        add("rmq_sys_wheel_timer", 1, rw);
    }
    t
}

impl TopicManager {
    /// The system topics of spec §3.3, then `config/topics.json` over them.
    pub fn load(config: &BrokerConfig) -> Result<TopicManager, json_file::ConfigFileError> {
        let mut t = system_topics(config);
        let mut system: Vec<String> = t.keys().cloned().collect();
        system.extend(
            [
                "TRANS_CHECK_MAX_TIME_TOPIC",
                "CHECKPOINT_TOPIC",
                "RMQ_SYS_TRACE_TOPIC",
            ]
            .map(String::from),
        );
        let path = config.store_root().join("config").join("topics.json");
        let mut version = DataVersion {
            timestamp: now_ms(),
            ..Default::default()
        };
        if let Some(f) = json_file::load::<TopicsFile>(&path)? {
            version = f.data_version;
            for (name, mut tc) in f.topic_config_table {
                if tc.topic_name.is_empty() {
                    tc.topic_name = name.clone();
                }
                t.insert(name, tc);
            }
        }
        Ok(TopicManager {
            table: RwLock::new((version, t)),
            system,
            path,
            persisting: Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (DataVersion, BTreeMap<String, TopicConfig>)> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, (DataVersion, BTreeMap<String, TopicConfig>)> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A topic's config.
    pub fn get(&self, topic: &str) -> Option<TopicConfig> {
        self.read().1.get(topic).cloned()
    }

    /// `f` of the topic's config, read in place (no copy; `f` runs under the read lock, so it
    /// must be short).
    pub fn with<T>(&self, topic: &str, f: impl FnOnce(&TopicConfig) -> T) -> Option<T> {
        self.read().1.get(topic).map(f)
    }

    /// Every topic name.
    pub fn names(&self) -> Vec<String> {
        self.read().1.keys().cloned().collect()
    }

    /// A system topic (spec §3.3): not updatable or deletable by admin requests.
    pub fn is_system(&self, topic: &str) -> bool {
        topic.starts_with("rmq_sys_") || self.system.iter().any(|s| s == topic)
    }

    /// The data version.
    pub fn data_version(&self) -> DataVersion {
        self.read().0
    }

    /// Auto-creation on send (spec §2.1.2): a copy of `default_topic` (it must allow
    /// inheriting) with `min(queue_nums, its write queues)` queues. `Some((config, created))`.
    pub fn create_on_send(
        &self,
        topic: &str,
        default_topic: &str,
        queue_nums: i32,
        auto_create: bool,
    ) -> Option<(TopicConfig, bool)> {
        let mut g = self.write();
        if let Some(tc) = g.1.get(topic) {
            return Some((tc.clone(), false));
        }
        let def = g.1.get(default_topic)?;
        let mut perm = def.perm;
        if default_topic == AUTO_CREATE_TOPIC && !auto_create {
            perm = PERM_READ | PERM_WRITE;
        }
        if perm & PERM_INHERIT == 0 {
            return None;
        }
        let queues = queue_nums.min(def.write_queue_nums).max(1);
        let mut tc = TopicConfig::new(topic, queues, perm & !PERM_INHERIT);
        tc.topic_filter_type = def.topic_filter_type.clone();
        g.1.insert(topic.to_owned(), tc.clone());
        next_version(&mut g.0);
        Some((tc, true))
    }

    /// Gets a topic or creates it with `queues` queues and `perm` (retry and DLQ topics).
    pub fn get_or_create(&self, topic: &str, queues: i32, perm: i32) -> (TopicConfig, bool) {
        let mut g = self.write();
        if let Some(tc) = g.1.get(topic) {
            return (tc.clone(), false);
        }
        let tc = TopicConfig::new(topic, queues, perm);
        g.1.insert(topic.to_owned(), tc.clone());
        next_version(&mut g.0);
        (tc, true)
    }

    /// Creates or replaces a topic (UPDATE_AND_CREATE_TOPIC); `false` when nothing changed.
    pub fn update(&self, tc: TopicConfig) -> bool {
        let mut g = self.write();
        if g.1.get(&tc.topic_name) == Some(&tc) {
            return false;
        }
        g.1.insert(tc.topic_name.clone(), tc);
        next_version(&mut g.0);
        true
    }

    /// Deletes a topic; `false` if it was not there.
    pub fn delete(&self, topic: &str) -> bool {
        let mut g = self.write();
        let removed = g.1.remove(topic).is_some();
        if removed {
            next_version(&mut g.0);
        }
        removed
    }

    /// Moves the data version on with no topic changed (a broker permission change: the
    /// NameServers take a registration's topics only from a newer version).
    pub fn bump_version(&self) {
        next_version(&mut self.write().0);
    }

    /// Every topic with the broker permission applied (a broker without R or W registers its
    /// topics without it, spec §3.1), for registration.
    pub fn snapshot(&self, broker_perm: i32) -> (DataVersion, Vec<TopicConfig>) {
        let g = self.read();
        let topics = g.1.values().map(|t| with_perm(t, broker_perm)).collect();
        (g.0, topics)
    }

    /// The data version and the configs of `names` only (those that exist), as
    /// [`TopicManager::snapshot`] gives them: what an incremental registration carries.
    pub fn snapshot_of(&self, names: &[&str], broker_perm: i32) -> (DataVersion, Vec<TopicConfig>) {
        let g = self.read();
        let topics = names
            .iter()
            .filter_map(|n| g.1.get(*n))
            .map(|t| with_perm(t, broker_perm))
            .collect();
        (g.0, topics)
    }

    /// `TopicConfigSerializeWrapper` JSON of `topics` (GET_ALL_TOPIC_CONFIG, registration).
    pub fn wrapper_json(version: &DataVersion, topics: &[TopicConfig]) -> serde_json::Value {
        let table: serde_json::Map<String, serde_json::Value> = topics
            .iter()
            .map(|t| {
                (
                    t.topic_name.clone(),
                    serde_json::to_value(t).unwrap_or_default(),
                )
            })
            .collect();
        serde_json::json!({
            "dataVersion": version,
            "mappingDataVersion": version,
            "topicConfigTable": table,
            "topicQueueMappingDetailMap": {},
            "topicQueueMappingInfoMap": {},
        })
    }

    /// Writes `topics.json` (blocking: call from a blocking thread).
    pub fn persist(&self) -> std::io::Result<()> {
        let _turn = self.persisting.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = {
            let g = self.read();
            serde_json::to_vec_pretty(&TopicsFile {
                data_version: g.0,
                topic_config_table: g.1.clone(),
            })?
        };
        json_file::store(&self.path, &bytes)
    }
}

/// A topic's config as registered: its permissions narrowed by the broker's own.
fn with_perm(t: &TopicConfig, broker_perm: i32) -> TopicConfig {
    let mut t = t.clone();
    if broker_perm & (PERM_READ | PERM_WRITE) != PERM_READ | PERM_WRITE {
        t.perm &= broker_perm;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> BrokerConfig {
        BrokerConfig {
            store_path_root_dir: dir.display().to_string(),
            broker_name: "broker-a".into(),
            ..Default::default()
        }
    }

    #[test]
    fn system_topics_auto_create_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let m = TopicManager::load(&config(dir.path())).unwrap();
        assert_eq!(m.get("TBW102").unwrap().perm, 7);
        assert_eq!(m.get("SCHEDULE_TOPIC_XXXX").unwrap().read_queue_nums, 18);
        assert_eq!(
            m.get("rmq_sys_SYNC_BROKER_MEMBER_broker-a").unwrap().perm,
            1
        );
        assert!(m.is_system("DefaultCluster") && !m.is_system("T"));
        let (tc, created) = m.create_on_send("T", "TBW102", 4, true).unwrap();
        assert!(created);
        assert_eq!(
            (tc.read_queue_nums, tc.write_queue_nums, tc.perm),
            (4, 4, 6)
        );
        assert!(m.create_on_send("U", "NoSuchTopic", 4, true).is_none());
        m.persist().unwrap();
        let again = TopicManager::load(&config(dir.path())).unwrap();
        assert_eq!(again.get("T"), Some(tc));
        assert_eq!(again.data_version(), m.data_version());
        assert!(validate_topic("a b").is_err() && validate_topic("%RETRY%g").is_ok());
        assert!(TopicConfig::new("T", 4, 6)
            .java_string()
            .contains("perm=RW-"));
    }
}
