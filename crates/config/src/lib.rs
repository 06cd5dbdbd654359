//! # rmq-config
//!
//! Java properties, as RocketMQ's configuration files use them (`namesrv.properties`,
//! `broker.conf`, `tls.properties`, ACL credential files): comments, `=`/`:`/space separators,
//! escapes and line continuations, through the `java-properties` crate. One parser for every
//! role and file, so they all read the same syntax; errors name the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A properties file that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct PropertiesError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// Parses properties text into name -> value.
pub fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    java_properties::read(text.as_bytes()).map_err(|e| e.to_string())
}

/// Parses properties text into `(name, value)` pairs sorted by name.
pub fn parse_sorted(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut v: Vec<(String, String)> = parse(text)?.into_iter().collect();
    v.sort();
    Ok(v)
}

/// Reads a properties file, naming it on error.
pub fn read_file(path: &Path) -> Result<HashMap<String, String>, PropertiesError> {
    let err = |reason: String| PropertiesError {
        path: path.to_owned(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    java_properties::read(std::io::BufReader::new(f)).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_syntax_and_errors_naming_the_file() {
        let v = parse_sorted("# c\na=1\nb : two\nc three\nd=x\\\n  y\n").unwrap();
        assert_eq!(
            v,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "two".to_owned()),
                ("c".to_owned(), "three".to_owned()),
                ("d".to_owned(), "xy".to_owned()),
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tls.properties");
        std::fs::write(&f, "tls.server.mode=enforcing\n").unwrap();
        assert_eq!(read_file(&f).unwrap()["tls.server.mode"], "enforcing");
        let missing = dir.path().join("nope.properties");
        let e = read_file(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.properties"), "{e}");
    }
}
