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

pub mod persist;

/// Declares a settings struct whose fields carry Java property names, the way RocketMQ's
/// `MixAll.properties2Object` reads them: `set` by name (unknown names are `Ok(false)`, as Java
/// ignores them), `properties()` sorted by name (GET_*_CONFIG bodies), properties text and
/// `<PREFIX><NAME>` environment variables (name upper-cased). A property may list older names
/// after `|` (`"mappedFileSizeCommitLog" | "mapedFileSizeCommitLog"`). Every role's
/// configuration is one of these, so they all read files, env and `--set` the same way.
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident (env = $env:literal) {
            $( $(#[$doc:meta])* $field:ident : $ty:ty = $prop:literal $(| $alias:literal)*, $default:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $name {
            /// Every property name.
            pub const NAMES: &'static [&'static str] = &[$($prop),*];
            /// The environment variable prefix (`<PREFIX><NAME>`, name upper-cased).
            pub const ENV_PREFIX: &'static str = $env;

            /// Sets one property by its Java name. `Ok(false)` for a name we do not know (Java
            /// ignores those too); `Err` for a value that does not parse.
            pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
                match name {
                    $( $prop $(| $alias)* => {
                        self.$field = value.trim().parse::<$ty>().map_err(|e| {
                            format!("property {name}={value:?}: {e}")
                        })?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }

            /// Every property as (name, value), sorted by name.
            pub fn properties(&self) -> std::collections::BTreeMap<&'static str, String> {
                let mut m = std::collections::BTreeMap::new();
                $( m.insert($prop, self.$field.to_string()); )*
                m
            }

            /// Applies a Java properties text; unknown names are ignored. Returns the names applied.
            pub fn apply_properties(&mut self, text: &str) -> Result<Vec<String>, String> {
                let mut applied = Vec::new();
                for (k, v) in $crate::parse_sorted(text)? {
                    if self.set(&k, &v)? {
                        applied.push(k);
                    }
                }
                Ok(applied)
            }

            /// Applies `<PREFIX><NAME>` variables from `vars`.
            pub fn apply_env(
                &mut self,
                vars: impl Iterator<Item = (String, String)>,
            ) -> Result<(), String> {
                for (k, v) in vars {
                    let Some(upper) = k.strip_prefix(Self::ENV_PREFIX) else {
                        continue;
                    };
                    if let Some(name) = Self::NAMES.iter().find(|n| n.to_uppercase() == upper) {
                        self.set(name, &v)?;
                    }
                }
                Ok(())
            }

            /// `name=value` lines sorted by name.
            pub fn to_properties_text(&self) -> String {
                self.properties()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect()
            }
        }
    };
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
