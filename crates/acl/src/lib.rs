//! # rmq-acl
//!
//! ACL (spec §6), beside the runtime (which keeps only the hook interface): the client hook that
//! signs requests like Java's AclClientRPCHook, and a server hook that verifies them like the 5.3
//! broker (ACL 2.0: NO_PERMISSION and its messages).
//!
//! Signature = Base64(HMAC-SHA1(secret, ext values sorted by key, minus `Signature`, ++ body)).

use base64::Engine;
use rmq_protocol::codes::response;
use rmq_protocol::{ExtFields, MqVersion, RemotingCommand};
use rmq_remoting::{HookError, RpcHook};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// Ext field names.
pub const ACCESS_KEY: &str = "AccessKey";
/// The signature's ext field.
pub const SIGNATURE: &str = "Signature";
/// The optional session token's ext field.
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// Left out of the signed content by servers for clients at or below V4_9_3.
const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";

/// An access key and its secret. The secret and token never appear in Debug output or logs.
#[derive(Clone)]
pub struct Credentials {
    /// The access key (sent as `AccessKey`).
    pub access_key: String,
    /// The secret (never sent).
    pub secret_key: String,
    /// Optional STS token (sent as `SecurityToken`).
    pub security_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why credentials could not be loaded (never contains the secret).
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Unreadable file.
    #[error("credentials file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Missing variables or keys.
    #[error("credentials: {0}")]
    Missing(String),
}

impl Credentials {
    /// From `RMQ_ACCESS_KEY`, `RMQ_SECRET_KEY` and optional `RMQ_SECURITY_TOKEN`.
    pub fn from_env() -> Result<Self, CredentialsError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (get("RMQ_ACCESS_KEY"), get("RMQ_SECRET_KEY")) {
            (Some(access_key), Some(secret_key)) => Ok(Credentials {
                access_key,
                secret_key,
                security_token: get("RMQ_SECURITY_TOKEN"),
            }),
            _ => Err(CredentialsError::Missing(
                "set RMQ_ACCESS_KEY and RMQ_SECRET_KEY".into(),
            )),
        }
    }

    /// From a properties file with `accessKey`, `secretKey` and optional `securityToken`.
    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        let err = |reason: String| CredentialsError::File {
            path: path.display().to_string(),
            reason,
        };
        let props = rmq_config::read_file(path).map_err(|e| err(e.reason))?;
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match (get("accessKey"), get("secretKey")) {
            (Some(access_key), Some(secret_key)) => Ok(Credentials {
                access_key,
                secret_key,
                security_token: get("securityToken"),
            }),
            _ => Err(err("needs accessKey and secretKey".into())),
        }
    }
}

/// Java String order (UTF-16 code units), which differs from byte order only past the BMP.
fn java_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The signed content: ext values sorted by key, skipping `Signature` (and `skip_unique_key`
/// drops `_UNIQUE_KEY_QUERY`), a null value as "null", followed by the body.
pub fn signed_content(ext: Option<&ExtFields>, body: &[u8], skip_unique_key: bool) -> Vec<u8> {
    let mut entries: Vec<(&str, Option<&str>)> =
        ext.map(|e| e.iter().collect()).unwrap_or_default();
    entries.retain(|(k, _)| *k != SIGNATURE && !(skip_unique_key && *k == UNIQUE_KEY_QUERY));
    entries.sort_by(|a, b| java_order(a.0, b.0));
    let mut content = Vec::new();
    for (_, v) in entries {
        content.extend_from_slice(v.unwrap_or("null").as_bytes());
    }
    content.extend_from_slice(body);
    content
}

/// Base64(HMAC-SHA1(secret, content)).
pub fn sign(content: &[u8], secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, content).as_ref())
}

/// Client hook: adds AccessKey (and SecurityToken), then the Signature, to every request.
#[derive(Debug)]
pub struct AclClientHook {
    credentials: Credentials,
}

impl AclClientHook {
    /// Signs with `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        AclClientHook { credentials }
    }
}

impl RpcHook for AclClientHook {
    fn before_request(&self, _: &str, req: &mut RemotingCommand) -> Result<(), HookError> {
        let c = &self.credentials;
        let ext = req.ext_fields_mut();
        ext.insert(ACCESS_KEY, c.access_key.clone());
        if let Some(t) = &c.security_token {
            ext.insert(SECURITY_TOKEN, t.clone());
        }
        let signature = sign(
            &signed_content(req.ext_fields.as_ref(), &req.body, false),
            &c.secret_key,
        );
        req.ext_fields_mut().insert(SIGNATURE, signature);
        Ok(())
    }
}

/// Server hook: rejects requests whose AccessKey is unknown or whose Signature does not match,
/// with NO_PERMISSION (16) and the 5.3 broker's messages; the connection stays open.
pub struct AclServerHook {
    secrets: HashMap<String, String>,
}

impl fmt::Debug for AclServerHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclServerHook")
            .field("accounts", &self.secrets.len())
            .finish()
    }
}

impl AclServerHook {
    /// Accepts the given accounts.
    pub fn new(accounts: impl IntoIterator<Item = Credentials>) -> Self {
        AclServerHook {
            secrets: accounts
                .into_iter()
                .map(|c| (c.access_key, c.secret_key))
                .collect(),
        }
    }
}

fn deny(message: String) -> HookError {
    HookError::Abort {
        code: response::NO_PERMISSION,
        message,
    }
}

impl RpcHook for AclServerHook {
    fn before_request(&self, peer: &str, req: &mut RemotingCommand) -> Result<(), HookError> {
        let Some(ak) = req.ext(ACCESS_KEY).filter(|a| !a.is_empty()) else {
            tracing::warn!(%peer, code = req.code, "request without AccessKey refused");
            return Err(deny("username cannot be null.".into()));
        };
        let Some(secret) = self.secrets.get(ak) else {
            tracing::warn!(%peer, access_key = ak, "unknown AccessKey");
            return Err(deny(format!("User:{ak} is not found.")));
        };
        let skip = req.version <= MqVersion::V4_9_3;
        let content = signed_content(req.ext_fields.as_ref(), &req.body, skip);
        let given = base64::engine::general_purpose::STANDARD
            .decode(req.ext(SIGNATURE).unwrap_or(""))
            .unwrap_or_default();
        // ring's verify compares in constant time.
        let key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        if ring::hmac::verify(&key, &content, &given).is_err() {
            tracing::warn!(%peer, access_key = ak, code = req.code, "signature check failed");
            return Err(deny("check signature failed.".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        let ext: ExtFields = [("topic", "TopicTest"), ("AccessKey", "rocketmq2")]
            .into_iter()
            .collect();
        let content = signed_content(Some(&ext), b"", false);
        assert_eq!(content, b"rocketmq2TopicTest");
        assert_eq!(sign(&content, "12345678"), "GeeGoP9mRvDhoVp4PD5omX0prgE=");
        let with_body = signed_content(Some(&ext), b"hello", false);
        assert_eq!(sign(&with_body, "12345678"), "VCoakk8D+zaEPRCyxQHvWUF4988=");
    }

    #[test]
    fn credentials_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("acl.properties");
        std::fs::write(&f, "accessKey=ak\nsecretKey=s3cr3t\n").unwrap();
        let c = Credentials::from_file(&f).unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.secret_key.as_str()),
            ("ak", "s3cr3t")
        );
        std::fs::write(&f, "secretKey=s3cr3t\n").unwrap();
        let e = Credentials::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("acl.properties") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            access_key: "ak".into(),
            secret_key: "s3cr3t".into(),
            security_token: Some("t0k3n".into()),
        };
        let shown = format!("{c:?} {:?}", AclServerHook::new([c.clone()]));
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
    }
}
