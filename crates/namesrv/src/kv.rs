//! KV config (spec §7.7): namespaces of string pairs, persisted to a JSON file in Java's
//! kvConfig.json format (`{"configTable":{"ns":{"k":"v"}}}`) on every change.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
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
        })
    }

    /// PUT_KV_CONFIG.
    pub fn put(&self, ns: &str, key: &str, value: &str) -> Result<(), KvError> {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        t.entry(ns.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        self.persist(&t)
    }

    /// DELETE_KV_CONFIG (the namespace stays, even empty, as in Java).
    pub fn delete(&self, ns: &str, key: &str) -> Result<(), KvError> {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = t.get_mut(ns) {
            m.remove(key);
        }
        self.persist(&t)
    }

    /// GET_KV_CONFIG.
    pub fn get(&self, ns: &str, key: &str) -> Option<String> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        t.get(ns).and_then(|m| m.get(key)).cloned()
    }

    /// GET_KVLIST_BY_NAMESPACE: `None` if the namespace does not exist.
    pub fn list(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        t.get(ns).cloned()
    }

    /// Atomic write: temp file in the same directory, fsync, rename over, fsync the directory.
    fn persist(&self, t: &Table) -> Result<(), KvError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| KvError::Io {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec(&FileForm {
            config_table: t.clone(),
        })
        .expect("string maps serialize");
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&json).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
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
