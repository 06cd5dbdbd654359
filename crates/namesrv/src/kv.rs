//! KV config (spec §7.7): namespaces of string pairs, persisted to a JSON file in Java's
//! kvConfig.json format (`{"configTable":{"ns":{"k":"v"}}}`) on every change.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;

/// The namespace brokers get back on registration (order-topic configuration).
pub const ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

type Table = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FileForm {
    #[serde(default)]
    config_table: Table,
}

/// Why the KV store could not load or save.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// Unreadable or unwritable file.
    #[error("kv config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file that is not kvConfig.json.
    #[error("kv config file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

/// The KV store; `None` path keeps it in memory only.
pub struct KvConfigManager {
    path: Option<PathBuf>,
    table: RwLock<Table>,
    /// Held by a writer from its edit to the end of its file write.
    persisting: std::sync::Mutex<()>,
}

impl KvConfigManager {
    /// Loads `path` if it exists (a missing file is an empty store; a corrupt one an error).
    pub fn load(path: Option<PathBuf>) -> Result<Self, KvError> {
        let mut table = Table::new();
        if let Some(p) = &path {
            match std::fs::read(p) {
                Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {}
                Ok(bytes) => {
                    let f: FileForm =
                        serde_json::from_slice(&bytes).map_err(|source| KvError::Corrupt {
                            path: p.clone(),
                            source,
                        })?;
                    table = f.config_table;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(KvError::Io {
                        path: p.clone(),
                        source,
                    })
                }
            }
            tracing::info!(path = %p.display(), namespaces = table.len(), "kv config loaded");
        }
        Ok(KvConfigManager {
            path,
            table: RwLock::new(table),
            persisting: std::sync::Mutex::new(()),
        })
    }

    /// PUT_KV_CONFIG. Blocking (writes the file): run it off the async runtime.
    pub fn put(&self, ns: &str, key: &str, value: &str) -> Result<(), KvError> {
        self.change(|t| {
            t.entry(ns.to_owned())
                .or_default()
                .insert(key.to_owned(), value.to_owned());
        })
    }

    /// DELETE_KV_CONFIG (the namespace stays, even empty, as in Java). Blocking, as `put`.
    pub fn delete(&self, ns: &str, key: &str) -> Result<(), KvError> {
        self.change(|t| {
            if let Some(m) = t.get_mut(ns) {
                m.remove(key);
            }
        })
    }

    /// Applies `edit` and writes the result. Writers take turns under `persisting`, so files
    /// are written in the order the edits were made; the table lock itself is held only for the
    /// edit and the copy, never across the file write (readers never wait on the disk).
    fn change(&self, edit: impl FnOnce(&mut Table)) -> Result<(), KvError> {
        // Poisoning: `persisting` guards no data; a panic there leaves nothing half-done.
        let _turn = self.persisting.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = {
            let mut t = self.write_table();
            edit(&mut t);
            t.clone()
        };
        self.persist(&snapshot)
    }

    /// Poisoning: edits are single map insertions or removals, which leave the table consistent
    /// even if a panic interrupts them between two edits; so a poisoned lock is taken as is.
    fn write_table(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_table(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    /// GET_KV_CONFIG.
    pub fn get(&self, ns: &str, key: &str) -> Option<String> {
        let t = self.read_table();
        t.get(ns).and_then(|m| m.get(key)).cloned()
    }

    /// GET_KVLIST_BY_NAMESPACE: `None` if the namespace does not exist.
    pub fn list(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        let t = self.read_table();
        t.get(ns).cloned()
    }

    /// Writes `t` to the file (atomically, see [`crate::persist::write_atomic`]).
    fn persist(&self, t: &Table) -> Result<(), KvError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = serde_json::to_vec(&FileForm {
            config_table: t.clone(),
        })
        .expect("string maps serialize");
        crate::persist::write_atomic(path, &json).map_err(|source| KvError::Io {
            path: path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_atomically_and_reloads_and_rejects_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kvConfig.json");
        let kv = KvConfigManager::load(Some(path.clone())).unwrap();
        kv.put(ORDER_TOPIC_CONFIG, "T", "broker-a:4").unwrap();
        kv.put("ns", "k", "v").unwrap();
        kv.delete("ns", "k").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"configTable":{"ORDER_TOPIC_CONFIG":{"T":"broker-a:4"},"ns":{}}}"#
        );
        let again = KvConfigManager::load(Some(path.clone())).unwrap();
        assert_eq!(
            again.get(ORDER_TOPIC_CONFIG, "T").as_deref(),
            Some("broker-a:4")
        );
        assert_eq!(again.list("ns"), Some(BTreeMap::new()));
        std::fs::write(&path, "{not json").unwrap();
        let err = KvConfigManager::load(Some(path.clone())).err().unwrap();
        assert!(err.to_string().contains("kvConfig.json"), "{err}");
    }
}
