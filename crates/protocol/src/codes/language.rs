//! `LanguageCode`: which client implementation sent a command.

use std::fmt;

/// The sender's language, a `u8` on the binary header and an enum name in JSON.
///
/// A newtype rather than a closed enum because peers send values we do not know (Java maps them to
/// null and carries on); a frame must never be rejected for its language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LanguageCode(pub u8);

/// Names in code order; index == code == Java ordinal.
const NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

impl LanguageCode {
    /// Java clients and servers (and ali-ons, which claims to be JAVA).
    pub const JAVA: LanguageCode = LanguageCode(0);
    /// rocketmq-client-cpp.
    pub const CPP: LanguageCode = LanguageCode(1);
    /// .NET clients.
    pub const DOTNET: LanguageCode = LanguageCode(2);
    /// Python clients.
    pub const PYTHON: LanguageCode = LanguageCode(3);
    /// Delphi clients.
    pub const DELPHI: LanguageCode = LanguageCode(4);
    /// Erlang clients.
    pub const ERLANG: LanguageCode = LanguageCode(5);
    /// Ruby clients.
    pub const RUBY: LanguageCode = LanguageCode(6);
    /// Anything else; also what an unknown JSON language name decodes to.
    pub const OTHER: LanguageCode = LanguageCode(7);
    /// HTTP proxies.
    pub const HTTP: LanguageCode = LanguageCode(8);
    /// rocketmq-client-go.
    pub const GO: LanguageCode = LanguageCode(9);
    /// PHP clients.
    pub const PHP: LanguageCode = LanguageCode(10);
    /// OpenMessaging.
    pub const OMS: LanguageCode = LanguageCode(11);
    /// Rust (known to Java since 4.9.4); what rmq sends by default.
    pub const RUST: LanguageCode = LanguageCode(12);
    /// Node.js (5.3.2+).
    pub const NODE_JS: LanguageCode = LanguageCode(13);

    /// The Java enum name, or `None` for a code Java does not know.
    pub fn name(self) -> Option<&'static str> {
        NAMES.get(self.0 as usize).copied()
    }

    /// Looks a JSON name up case-insensitively, as fastjson does for enums.
    pub fn from_name(name: &str) -> Option<LanguageCode> {
        // Peers write the exact upper-case name; try that cheap comparison before folding case.
        NAMES
            .iter()
            .position(|n| *n == name)
            .or_else(|| NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)))
            .map(|i| LanguageCode(i as u8))
    }

    /// True when Java knows this code (0..=13).
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl Default for LanguageCode {
    fn default() -> Self {
        LanguageCode::JAVA
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "UNKNOWN({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_java_ordinals() {
        assert_eq!(LanguageCode::from_name("go"), Some(LanguageCode::GO));
        assert_eq!(LanguageCode::from_name("NODE_JS"), Some(LanguageCode(13)));
        assert_eq!(LanguageCode::RUST.name(), Some("RUST"));
        assert_eq!(LanguageCode(12).0, 12);
        assert_eq!(LanguageCode::from_name("FOO"), None);
        assert_eq!(LanguageCode(99).name(), None);
        assert_eq!(LanguageCode(99).to_string(), "UNKNOWN(99)");
    }
}
