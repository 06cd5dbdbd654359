//! TLS (spec §4) with rustls: server modes DISABLED / PERMISSIVE / ENFORCING on one port, client
//! TLS with custom trust roots and an optional client certificate, and the Java property names
//! (`tls.server.mode`, `tls.server.certPath`, ...) to configure both.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig as RustlsClient, RootCertStore, ServerConfig as RustlsServer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a server does with TLS (Java TlsMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext only; a TLS handshake closes the connection.
    Disabled,
    /// TLS and plaintext on the same port, told apart by the first byte (0x16 = TLS).
    Permissive,
    /// TLS only; plaintext closes the connection.
    Enforcing,
}

impl TlsMode {
    /// Java's parsing: "disabled", "permissive", "enforcing"; anything else is PERMISSIVE.
    pub fn parse(s: &str) -> TlsMode {
        match s.trim().to_ascii_lowercase().as_str() {
            "disabled" => TlsMode::Disabled,
            "enforcing" => TlsMode::Enforcing,
            _ => TlsMode::Permissive,
        }
    }
}

/// Whether the server asks for client certificates (`tls.server.need.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate requested.
    None,
    /// Verified if presented.
    Optional,
    /// Required (mTLS).
    Require,
}

/// Why TLS could not be set up. Always names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
    #[error("TLS file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material.
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Server TLS settings.
#[derive(Debug, Clone)]
pub struct ServerTlsConfig {
    /// tls.server.mode.
    pub mode: TlsMode,
    /// tls.server.certPath: PEM certificate chain.
    pub cert_path: Option<PathBuf>,
    /// tls.server.keyPath: PEM private key (PKCS#8, PKCS#1 or SEC1; or an encrypted PKCS#8
    /// key, "ENCRYPTED PRIVATE KEY", with `key_password`).
    pub key_path: Option<PathBuf>,
    /// tls.server.keyPassword: decrypts an encrypted PKCS#8 key (PBES2: PBKDF2 or scrypt with
    /// AES-CBC, what `openssl pkcs8 -topk8` writes).
    pub key_password: Option<String>,
    /// tls.server.need.client.auth.
    pub client_auth: ClientAuth,
    /// tls.server.trustCertPath: CA certificates that sign client certificates.
    pub trust_cert_path: Option<PathBuf>,
    /// tls.test.mode.enable: a self-signed certificate made at start (no files needed).
    pub test_mode: bool,
}

impl Default for ServerTlsConfig {
    fn default() -> Self {
        ServerTlsConfig {
            mode: TlsMode::Permissive,
            cert_path: None,
            key_path: None,
            key_password: None,
            client_auth: ClientAuth::None,
            trust_cert_path: None,
            test_mode: false,
        }
    }
}

/// Client TLS settings.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsConfig {
    /// tls.client.authServer = false: accept any server certificate (Java test mode). Only for
    /// tests and closed networks.
    pub trust_all: bool,
    /// tls.client.trustCertPath: CA certificates to trust (the system's are not used).
    pub trust_cert_path: Option<PathBuf>,
    /// tls.client.certPath: client certificate chain for mTLS.
    pub cert_path: Option<PathBuf>,
    /// tls.client.keyPath: its key.
    pub key_path: Option<PathBuf>,
    /// tls.client.keyPassword: decrypts an encrypted PKCS#8 client key.
    pub key_password: Option<String>,
    /// Name to verify the server certificate against (default: the host of the address dialled).
    pub server_name: Option<String>,
}

fn path(props: &HashMap<String, String>, key: &str) -> Option<PathBuf> {
    props
        .get(key)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

fn flag(props: &HashMap<String, String>, key: &str, default: bool) -> bool {
    props
        .get(key)
        .map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

impl ServerTlsConfig {
    /// Reads Java's tls.properties keys. `tls.test.mode.enable` defaults to false here (Java:
    /// true), so a server never runs on a throwaway certificate unless asked to.
    pub fn from_properties(props: &HashMap<String, String>) -> Self {
        let client_auth = match props
            .get("tls.server.need.client.auth")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("require") => ClientAuth::Require,
            Some("optional") => ClientAuth::Optional,
            _ => ClientAuth::None,
        };
        ServerTlsConfig {
            mode: props
                .get("tls.server.mode")
                .map_or(TlsMode::Permissive, |m| TlsMode::parse(m)),
            cert_path: path(props, "tls.server.certPath"),
            key_path: path(props, "tls.server.keyPath"),
            key_password: props.get("tls.server.keyPassword").cloned(),
            client_auth,
            trust_cert_path: path(props, "tls.server.trustCertPath"),
            test_mode: flag(props, "tls.test.mode.enable", false),
        }
    }

    /// Builds the rustls acceptor (None in DISABLED mode).
    pub fn acceptor(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, TlsError> {
        if self.mode == TlsMode::Disabled {
            return Ok(None);
        }
        let (certs, key) = if self.test_mode {
            self_signed()?
        } else {
            let cert = self
                .cert_path
                .as_deref()
                .ok_or_else(|| TlsError::Setup("tls.server.certPath is not set".into()))?;
            let key = self
                .key_path
                .as_deref()
                .ok_or_else(|| TlsError::Setup("tls.server.keyPath is not set".into()))?;
            (
                load_certs(cert)?,
                load_key(key, self.key_password.as_deref())?,
            )
        };
        let builder = RustlsServer::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let trust = self.trust_cert_path.as_deref().ok_or_else(|| {
                    TlsError::Setup(
                        "tls.server.need.client.auth needs tls.server.trustCertPath".into(),
                    )
                })?;
                let roots = Arc::new(load_roots(trust)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Setup(e.to_string()))?,
                )
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Setup(format!("certificate and key do not match: {e}")))?;
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

impl ClientTlsConfig {
    /// Reads Java's client keys: tls.client.authServer, tls.client.trustCertPath,
    /// tls.client.certPath, tls.client.keyPath.
    pub fn from_properties(props: &HashMap<String, String>) -> Self {
        ClientTlsConfig {
            trust_all: !flag(props, "tls.client.authServer", true),
            trust_cert_path: path(props, "tls.client.trustCertPath"),
            cert_path: path(props, "tls.client.certPath"),
            key_path: path(props, "tls.client.keyPath"),
            key_password: props.get("tls.client.keyPassword").cloned(),
            server_name: None,
        }
    }

    /// Builds the rustls connector.
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector, TlsError> {
        let builder = RustlsClient::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let builder = if self.trust_all {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(TrustAll(provider())))
        } else {
            let trust = self.trust_cert_path.as_deref().ok_or_else(|| {
                TlsError::Setup(
                    "client TLS needs tls.client.trustCertPath (or tls.client.authServer=false)"
                        .into(),
                )
            })?;
            builder.with_root_certificates(load_roots(trust)?)
        };
        let config = match (&self.cert_path, &self.key_path) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(load_certs(c)?, load_key(k, self.key_password.as_deref())?)
                .map_err(|e| TlsError::Setup(format!("client certificate and key: {e}")))?,
            _ => builder.with_no_client_auth(),
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// The name to check the certificate of the server at `addr` ("host:port") against.
    pub fn server_name(&self, addr: &str) -> Result<ServerName<'static>, TlsError> {
        let host = match &self.server_name {
            Some(n) => n.clone(),
            None => addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        };
        ServerName::try_from(host.clone())
            .map_err(|_| TlsError::Setup(format!("invalid TLS server name {host:?}")))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// The private key in the PEM file at `path`: a plain PKCS#8, PKCS#1 or SEC1 key, or an
/// encrypted PKCS#8 key opened with `password` (Java's keyPassword).
fn load_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let err = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        use pkcs8::der::Decode;
        let password =
            password.ok_or_else(|| err("the key is encrypted and no keyPassword is set".into()))?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(&pem)
            .map_err(|e| err(format!("unreadable encrypted key: {e}")))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
            .map_err(|e| err(format!("unreadable encrypted key: {e}")))?;
        let key = encrypted
            .decrypt(password)
            .map_err(|e| err(format!("cannot decrypt the key (wrong keyPassword?): {e}")))?;
        return Ok(PrivateKeyDer::Pkcs8(key.as_bytes().to_vec().into()));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| err(format!("no usable PEM private key: {e}")))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::File {
            path: path.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// A throwaway self-signed certificate for localhost/127.0.0.1 (tls.test.mode.enable).
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let key = PrivateKeyDer::try_from(ck.key_pair.serialize_der())
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok((vec![ck.cert.der().clone()], key))
}

/// Accepts any server certificate (still checks the handshake signatures).
#[derive(Debug)]
struct TrustAll(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
