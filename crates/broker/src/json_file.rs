//! The broker's JSON config files (`config/*.json`, spec §1.9) as Java's `ConfigManager` keeps
//! them: written whole and atomically after the previous version is kept as `<name>.bak`, read
//! from `<name>` or, when that is missing, empty or corrupt, from `<name>.bak`. Reading accepts
//! fastjson's unquoted integer map keys (`{0:12}`), which Java writes.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A config file that exists but neither it nor its backup parses.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn bak(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".bak");
    PathBuf::from(p)
}

fn parse<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value = rmq_protocol::lenient_json::parse(&bytes).map_err(|e| e.to_string())?;
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Loads `path` (or its `.bak`); `Ok(None)` when neither holds anything.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ConfigFileError> {
    match parse(path) {
        Ok(Some(v)) => Ok(Some(v)),
        first => match parse(&bak(path)) {
            Ok(Some(v)) => {
                tracing::warn!(path = %path.display(), "config file unusable, loaded its .bak");
                Ok(Some(v))
            }
            _ => match first {
                Ok(None) => Ok(None),
                Err(reason) => Err(ConfigFileError {
                    path: path.to_owned(),
                    reason,
                }),
                Ok(Some(_)) => unreachable!(),
            },
        },
    }
}

/// Keeps the current file as `.bak`, then replaces it atomically and durably. Blocking.
pub fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.is_file() {
        std::fs::copy(path, bak(path))?;
    }
    rmq_config::persist::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn falls_back_to_the_backup_and_reads_bare_integer_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("delayOffset.json");
        assert!(load::<BTreeMap<String, i64>>(&p).unwrap().is_none());
        store(&p, b"{1:5,2:0}").unwrap();
        store(&p, b"{1:6}").unwrap();
        let m: BTreeMap<String, i64> = load(&p).unwrap().unwrap();
        assert_eq!(m["1"], 6);
        std::fs::write(&p, b"{garbage").unwrap();
        let m: BTreeMap<String, i64> = load(&p).unwrap().unwrap();
        assert_eq!(m["1"], 5, "the .bak holds the version before");
        std::fs::write(bak(&p), b"{garbage").unwrap();
        assert!(load::<BTreeMap<String, i64>>(&p)
            .unwrap_err()
            .to_string()
            .contains("delayOffset.json"));
    }
}
