//! Subscription group configs (Java's `SubscriptionGroupManager`, spec §1.9, §2.9.4):
//! auto-created on first use, `subscriptionGroup.json`.

use crate::json_file;
use rmq_model::route::DataVersion;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

/// A group's config with Java's JSON names; fields this broker does not know are kept as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupConfig {
    /// Kept, not interpreted.
    pub attributes: BTreeMap<String, String>,
    /// The broker id consumers should pull from.
    pub broker_id: i64,
    /// Broadcasting consumption allowed.
    pub consume_broadcast_enable: bool,
    /// Consumption allowed at all.
    pub consume_enable: bool,
    /// Start from the min offset when the group has none.
    pub consume_from_min_enable: bool,
    /// Orderly consumers.
    pub consume_message_orderly: bool,
    /// Minutes.
    pub consume_timeout_minute: i64,
    /// The group.
    pub group_name: String,
    /// Kept, not interpreted.
    pub group_retry_policy: serde_json::Value,
    /// Flags.
    pub group_sys_flag: i32,
    /// NOTIFY_CONSUMER_IDS_CHANGED on membership changes.
    pub notify_consumer_ids_changed_enable: bool,
    /// Redeliveries before the DLQ.
    pub retry_max_times: i32,
    /// Queues of the group's retry topic.
    pub retry_queue_nums: i32,
    /// Slave id to suggest when consumers lag.
    pub which_broker_when_consume_slowly: i64,
    /// Anything else Java wrote.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            attributes: BTreeMap::new(),
            broker_id: 0,
            consume_broadcast_enable: true,
            consume_enable: true,
            consume_from_min_enable: true,
            consume_message_orderly: false,
            consume_timeout_minute: 15,
            group_name: String::new(),
            group_retry_policy: serde_json::json!({"type": "CUSTOMIZED"}),
            group_sys_flag: 0,
            notify_consumer_ids_changed_enable: true,
            retry_max_times: 16,
            retry_queue_nums: 1,
            which_broker_when_consume_slowly: 1,
            other: BTreeMap::new(),
        }
    }
}

impl GroupConfig {
    /// The default config of `group`.
    pub fn new(group: &str) -> Self {
        GroupConfig {
            group_name: group.to_owned(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GroupsFile {
    data_version: DataVersion,
    forbidden_table: serde_json::Map<String, serde_json::Value>,
    subscription_group_table: BTreeMap<String, GroupConfig>,
}

/// A group name a broker may auto-create (≤ 255 of `[%|a-zA-Z0-9_-]`).
fn valid_group(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"%|_-".contains(&b))
}

/// Data version, groups by name, and the forbidden table (kept as read).
type GroupTable = (
    DataVersion,
    BTreeMap<String, GroupConfig>,
    serde_json::Map<String, serde_json::Value>,
);

/// The broker's subscription groups.
pub struct GroupManager {
    table: RwLock<GroupTable>,
    path: PathBuf,
    persisting: Mutex<()>,
    auto_create: bool,
}

impl GroupManager {
    /// The groups a 5.3.3 broker creates at start, then `subscriptionGroup.json` over them.
    pub fn load(
        root: &std::path::Path,
        auto_create: bool,
    ) -> Result<GroupManager, json_file::ConfigFileError> {
        let mut t = BTreeMap::new();
        for g in [
            "TOOLS_CONSUMER",
            "FILTERSRV_CONSUMER",
            "SELF_TEST_C_GROUP",
            "CID_ONS-HTTP-PROXY",
            "CID_ONSAPI_PULL",
            "CID_ONSAPI_PERMISSION",
            "CID_ONSAPI_OWNER",
            "CID_RMQ_SYS_TRANS",
        ] {
            t.insert(g.to_owned(), GroupConfig::new(g));
        }
        let path = root.join("config").join("subscriptionGroup.json");
        let mut version = DataVersion {
            timestamp: crate::now_ms(),
            ..Default::default()
        };
        let mut forbidden = serde_json::Map::new();
        if let Some(f) = json_file::load::<GroupsFile>(&path)? {
            version = f.data_version;
            forbidden = f.forbidden_table;
            for (name, mut g) in f.subscription_group_table {
                if g.group_name.is_empty() {
                    g.group_name = name.clone();
                }
                t.insert(name, g);
            }
        }
        Ok(GroupManager {
            table: RwLock::new((version, t, forbidden)),
            path,
            persisting: Mutex::new(()),
            auto_create,
        })
    }

    /// A group's config, auto-created when allowed: `(config, created)`.
    pub fn find_or_create(&self, group: &str) -> Option<(GroupConfig, bool)> {
        if let Some(g) = self.get(group) {
            return Some((g, false));
        }
        if !self.auto_create || !valid_group(group) {
            return None;
        }
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = t.1.get(group) {
            return Some((g.clone(), false));
        }
        let g = GroupConfig::new(group);
        t.1.insert(group.to_owned(), g.clone());
        t.0.counter += 1;
        t.0.timestamp = crate::now_ms();
        Some((g, true))
    }

    /// A group's config, never created.
    pub fn get(&self, group: &str) -> Option<GroupConfig> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .get(group)
            .cloned()
    }

    /// Every group name.
    pub fn names(&self) -> Vec<String> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .keys()
            .cloned()
            .collect()
    }

    /// Creates or replaces a group (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).
    pub fn update(&self, g: GroupConfig) {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        t.1.insert(g.group_name.clone(), g);
        t.0.counter += 1;
        t.0.timestamp = crate::now_ms();
    }

    /// Deletes a group; `false` if unknown.
    pub fn delete(&self, group: &str) -> bool {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        let removed = t.1.remove(group).is_some();
        if removed {
            t.0.counter += 1;
            t.0.timestamp = crate::now_ms();
        }
        removed
    }

    /// The whole table as Java's `SubscriptionGroupWrapper` JSON (GET_ALL_SUBSCRIPTIONGROUP_CONFIG).
    pub fn to_json(&self) -> Vec<u8> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        serde_json::to_vec_pretty(&GroupsFile {
            data_version: t.0,
            forbidden_table: t.2.clone(),
            subscription_group_table: t.1.clone(),
        })
        .unwrap_or_default()
    }

    /// Writes `subscriptionGroup.json` (blocking).
    pub fn persist(&self) -> std::io::Result<()> {
        let _turn = self.persisting.lock().unwrap_or_else(|p| p.into_inner());
        json_file::store(&self.path, &self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_create_keeps_unknown_fields_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let m = GroupManager::load(dir.path(), true).unwrap();
        assert!(m.get("TOOLS_CONSUMER").is_some());
        let (g, created) = m.find_or_create("CG").unwrap();
        assert!(created && g.retry_max_times == 16 && g.retry_queue_nums == 1);
        assert!(m.find_or_create("bad group").is_none());
        let mut custom: GroupConfig =
            serde_json::from_str(r#"{"groupName":"CG2","retryMaxTimes":3,"futureField":1}"#)
                .unwrap();
        custom.consume_enable = false;
        m.update(custom);
        m.persist().unwrap();
        let again = GroupManager::load(dir.path(), false).unwrap();
        let g2 = again.get("CG2").unwrap();
        assert_eq!(g2.retry_max_times, 3);
        assert!(!g2.consume_enable);
        assert_eq!(g2.other["futureField"], 1);
        assert!(again.find_or_create("CG3").is_none(), "no auto-create");
    }
}
