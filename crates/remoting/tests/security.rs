//! TLS (every server mode x plain/TLS client, mTLS, PEM errors), PROXY v1/v2 (good, malformed,
//! short first frames), ACL (signing, verification, forgery), the connection cap and the
//! first-frame timeout. Certificates are made at test time with rcgen; nothing is committed.

mod support;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rmq_protocol::RemotingCommand;
use rmq_remoting::*;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncWriteExt;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issue = |names: Vec<String>, file: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            std::fs::write(dir.path().join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{file}.key")), key.serialize_pem()).unwrap();
            // The same key as an encrypted PKCS#8 file (PBES2: PBKDF2-SHA256 + AES-256-CBC, what
            // `openssl pkcs8 -topk8` writes), password "s3cret".
            let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
                2048,
                b"saltsalt",
                &[7u8; 16],
            )
            .unwrap();
            let der = key.serialize_der();
            let encrypted = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                .unwrap()
                .encrypt_with_params(params, "s3cret")
                .unwrap();
            let pem = encrypted
                .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
                .unwrap();
            std::fs::write(dir.path().join(format!("{file}.enc.key")), pem.as_bytes()).unwrap();
        };
        issue(vec!["127.0.0.1".into(), "localhost".into()], "server");
        issue(vec!["client".into()], "client");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn server(&self, mode: TlsMode, client_auth: ClientAuth) -> ServerTlsConfig {
        ServerTlsConfig {
            mode,
            cert_path: Some(self.path("server.pem")),
            key_path: Some(self.path("server.key")),
            client_auth,
            trust_cert_path: Some(self.path("ca.pem")),
            ..Default::default()
        }
    }

    fn client(&self, with_cert: bool) -> ClientTlsConfig {
        ClientTlsConfig {
            trust_cert_path: Some(self.path("ca.pem")),
            cert_path: with_cert.then(|| self.path("client.pem")),
            key_path: with_cert.then(|| self.path("client.key")),
            ..Default::default()
        }
    }
}

async fn server_with(
    tls: Option<ServerTlsConfig>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> RemotingServer {
    let (reg, _) = echo_registry();
    let mut config = local_config();
    config.tls = tls;
    tweak(&mut config);
    ServerBuilder::new(config)
        .registry(reg)
        .bind()
        .await
        .unwrap()
}

fn tls_client(tls: ClientTlsConfig) -> RemotingClient {
    RemotingClient::new(ClientConfig {
        tls: Some(tls),
        ..Default::default()
    })
}

async fn echo_ok(client: &RemotingClient, addr: &str) -> bool {
    matches!(
        client
            .invoke_sync(addr, RemotingCommand::request(1).with_body("ping"), Duration::from_secs(2))
            .await,
        Ok(r) if &r.body[..] == b"ping"
    )
}

#[tokio::test]
async fn every_server_mode_against_plain_and_tls_clients() {
    let pki = Pki::new();
    for (mode, plain_ok, tls_ok) in [
        (TlsMode::Disabled, true, false),
        (TlsMode::Permissive, true, true),
        (TlsMode::Enforcing, false, true),
    ] {
        let server = server_with(Some(pki.server(mode, ClientAuth::None)), |_| {}).await;
        let addr = server.local_addr().to_string();
        let plain = RemotingClient::new(ClientConfig::default());
        let tls = tls_client(pki.client(false));
        assert_eq!(echo_ok(&plain, &addr).await, plain_ok, "{mode:?} plain");
        assert_eq!(echo_ok(&tls, &addr).await, tls_ok, "{mode:?} tls");
        // The server is still healthy after a refused connection.
        if plain_ok {
            assert!(echo_ok(&RemotingClient::new(ClientConfig::default()), &addr).await);
        }
        server.shutdown_now();
    }
    // No TLS configured at all behaves like DISABLED.
    let server = server_with(None, |_| {}).await;
    let tls = tls_client(pki.client(false));
    assert!(!echo_ok(&tls, &server.local_addr().to_string()).await);
}

#[tokio::test]
async fn encrypted_keys_open_with_the_key_password() {
    let pki = Pki::new();
    // Server and client keys both encrypted (Java's tls.server.keyPassword / tls.client.keyPassword).
    let mut server_tls = pki.server(TlsMode::Enforcing, ClientAuth::Require);
    server_tls.key_path = Some(pki.path("server.enc.key"));
    server_tls.key_password = Some("s3cret".into());
    let server = server_with(Some(server_tls.clone()), |_| {}).await;
    let mut client_tls = pki.client(true);
    client_tls.key_path = Some(pki.path("client.enc.key"));
    client_tls.key_password = Some("s3cret".into());
    assert!(echo_ok(&tls_client(client_tls), &server.local_addr().to_string()).await);
    server.shutdown_now();
    // A wrong or missing password is an error naming the file, before anything listens.
    for (password, why) in [
        (Some("wrong"), "wrong keyPassword"),
        (None, "no keyPassword"),
    ] {
        let mut cfg = server_tls.clone();
        cfg.key_password = password.map(String::from);
        let err = cfg.acceptor().err().expect("must fail").to_string();
        assert!(err.contains("server.enc.key") && err.contains(why), "{err}");
    }
    let props: std::collections::HashMap<String, String> = [
        ("tls.server.keyPassword", "a"),
        ("tls.client.keyPassword", "b"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        ServerTlsConfig::from_properties(&props)
            .key_password
            .as_deref(),
        Some("a")
    );
    assert_eq!(
        ClientTlsConfig::from_properties(&props)
            .key_password
            .as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn rotated_certificate_files_are_picked_up_for_new_connections() {
    let old = Pki::new();
    let new = Pki::new();
    let server = server_with(
        Some(old.server(TlsMode::Enforcing, ClientAuth::None)),
        |_| {},
    )
    .await;
    let addr = server.local_addr().to_string();
    let trusts_old = tls_client(old.client(false));
    let trusts_new = tls_client(new.client(false));
    assert!(echo_ok(&trusts_old, &addr).await);
    assert!(!echo_ok(&trusts_new, &addr).await);
    // A broken write is ignored: the old certificate keeps serving. Wait until the watcher has
    // acted on the change (bounded), so this checks the refusal, not a watcher that never ran.
    assert_eq!(server.tls_reload_counts(), (0, 0));
    std::fs::write(old.path("server.pem"), "half a certificate").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.tls_reload_counts().0 == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never saw the change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.tls_reload_counts(), (1, 0), "seen, not loaded");
    assert!(echo_ok(&tls_client(old.client(false)), &addr).await);
    // The rotation lands: new connections get the new certificate, the old client's live
    // connection goes on.
    std::fs::copy(new.path("server.pem"), old.path("server.pem")).unwrap();
    std::fs::copy(new.path("server.key"), old.path("server.key")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !echo_ok(&tls_client(new.client(false)), &addr).await {
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!echo_ok(&tls_client(old.client(false)), &addr).await);
    assert!(
        echo_ok(&trusts_old, &addr).await,
        "live connection unaffected"
    );
    server.shutdown_now();
}

#[tokio::test]
async fn mutual_tls_and_test_mode() {
    let pki = Pki::new();
    let server = server_with(
        Some(pki.server(TlsMode::Enforcing, ClientAuth::Require)),
        |_| {},
    )
    .await;
    let addr = server.local_addr().to_string();
    let anonymous = tls_client(pki.client(false));
    assert!(
        !echo_ok(&anonymous, &addr).await,
        "a client without a certificate got in"
    );
    let with_cert = tls_client(pki.client(true));
    assert!(echo_ok(&with_cert, &addr).await);
    // Optional: both get in.
    let server = server_with(
        Some(pki.server(TlsMode::Enforcing, ClientAuth::Optional)),
        |_| {},
    )
    .await;
    let addr = server.local_addr().to_string();
    let anonymous = tls_client(pki.client(false));
    assert!(echo_ok(&anonymous, &addr).await);
    // A client that does not trust the server's CA is refused by its own check.
    let other = Pki::new();
    let distrust = tls_client(other.client(false));
    assert!(!echo_ok(&distrust, &addr).await);
    // Test mode: a self-signed certificate made at start, and a trust-all client.
    let server = server_with(
        Some(ServerTlsConfig {
            mode: TlsMode::Enforcing,
            test_mode: true,
            ..Default::default()
        }),
        |_| {},
    )
    .await;
    let trust_all = tls_client(ClientTlsConfig {
        trust_all: true,
        ..Default::default()
    });
    assert!(echo_ok(&trust_all, &server.local_addr().to_string()).await);
}

#[tokio::test]
async fn unreadable_pem_files_are_named() {
    let pki = Pki::new();
    let mut cfg = pki.server(TlsMode::Enforcing, ClientAuth::None);
    cfg.key_path = Some(pki.path("missing.key"));
    let err = ServerBuilder::new(ServerConfig {
        tls: Some(cfg),
        ..local_config()
    })
    .bind()
    .await
    .err()
    .expect("bind must fail");
    assert!(err.to_string().contains("missing.key"), "{err}");
    std::fs::write(pki.path("garbage.pem"), "not a certificate").unwrap();
    let mut cfg = pki.server(TlsMode::Enforcing, ClientAuth::None);
    cfg.cert_path = Some(pki.path("garbage.pem"));
    let err = cfg.acceptor().err().unwrap();
    assert!(err.to_string().contains("garbage.pem"), "{err}");
    // Properties with the Java names.
    let props: std::collections::HashMap<String, String> = [
        ("tls.server.mode", "enforcing"),
        ("tls.server.need.client.auth", "require"),
        ("tls.server.certPath", "/x/cert.pem"),
        ("tls.client.authServer", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let s = ServerTlsConfig::from_properties(&props);
    assert_eq!(
        (s.mode, s.client_auth),
        (TlsMode::Enforcing, ClientAuth::Require)
    );
    assert_eq!(s.cert_path, Some(PathBuf::from("/x/cert.pem")));
    assert!(ClientTlsConfig::from_properties(&props).trust_all);
}

/// Records the peer address hooks see.
struct PeerSpy(Mutex<Vec<String>>);

impl RpcHook for PeerSpy {
    fn before_request(&self, peer: &str, _: &mut RemotingCommand) -> Result<(), HookError> {
        self.0.lock().unwrap().push(peer.to_owned());
        Ok(())
    }
}

fn v2_header(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // TCP over IPv4
    let tlv = [0x02u8, 0x00, 0x05, b'h', b'o', b's', b't', b'1']; // authority "host1"
    h.extend_from_slice(&((12 + tlv.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&[5, 6, 7, 8]);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&9876u16.to_be_bytes());
    h.extend_from_slice(&tlv);
    h
}

#[tokio::test]
async fn proxy_protocol_v1_v2_and_malformed() {
    let spy = Arc::new(PeerSpy(Mutex::new(Vec::new())));
    let (reg, _) = echo_registry();
    let server = ServerBuilder::new(local_config())
        .registry(reg)
        .hook(spy.clone())
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let frame =
        rmq_protocol::frame::encode_to_vec(&RemotingCommand::request(1).with_body("x")).unwrap();
    // v1 line and the frame in one write.
    let mut raw = Raw::connect(addr).await;
    raw.stream
        .write_all(&[b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 9876\r\n".as_ref(), &frame].concat())
        .await
        .unwrap();
    assert_eq!(
        &raw.recv(Duration::from_secs(2)).await.unwrap().body[..],
        b"x"
    );
    // v2 header sent byte by byte, then the frame.
    let mut raw = Raw::connect(addr).await;
    for b in v2_header([10, 0, 0, 9], 2222) {
        raw.stream.write_all(&[b]).await.unwrap();
    }
    raw.stream.write_all(&frame).await.unwrap();
    assert_eq!(
        &raw.recv(Duration::from_secs(2)).await.unwrap().body[..],
        b"x"
    );
    assert_eq!(
        *spy.0.lock().unwrap(),
        vec!["1.2.3.4:1111".to_owned(), "10.0.0.9:2222".to_owned()]
    );
    // Malformed headers close the connection, with no answer; others are unaffected.
    for bad in [
        &b"PROXY TCP4 not-an-ip 5.6.7.8 1 2\r\n"[..],
        b"\r\n\r\n\0\r\nQUIT\n\x99\x11\x00\x00",
    ] {
        let mut raw = Raw::connect(addr).await;
        raw.stream.write_all(&[bad, &frame].concat()).await.unwrap();
        assert!(raw.closed_within(Duration::from_secs(2)).await, "{bad:?}");
    }
    let mut ok = Raw::connect(addr).await;
    ok.send(&RemotingCommand::request(1).with_body("still"))
        .await;
    assert_eq!(
        &ok.recv(Duration::from_secs(2)).await.unwrap().body[..],
        b"still"
    );
    // A 10-byte frame (fewer than the 12 bytes Java's detector waits for) is served at once.
    let mut short = Raw::connect(addr).await;
    short
        .stream
        .write_all(&[0, 0, 0, 6, 0, 0, 0, 2, b'{', b'}'])
        .await
        .unwrap();
    let r = short
        .recv(Duration::from_secs(2))
        .await
        .expect("short frame answered");
    assert_eq!(
        r.code, 3,
        "code 0 is not registered: REQUEST_CODE_NOT_SUPPORTED"
    );
}

#[tokio::test]
async fn connection_cap_and_slow_loris() {
    let server = server_with(None, |c| {
        c.max_connections = 2;
        c.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let addr = server.local_addr();
    let mut a = Raw::connect(addr).await;
    a.send(&RemotingCommand::request(1).with_body("a")).await;
    assert!(a.recv(Duration::from_secs(2)).await.is_some());
    let mut b = Raw::connect(addr).await;
    b.send(&RemotingCommand::request(1).with_body("b")).await;
    assert!(b.recv(Duration::from_secs(2)).await.is_some());
    // Third: over the cap, closed at accept.
    let mut c = Raw::connect(addr).await;
    assert!(c.closed_within(Duration::from_secs(2)).await);
    drop((a, b));
    // Slots come back when connections end.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut d = Raw::connect(addr).await;
        d.send(&RemotingCommand::request(1).with_body("d")).await;
        if d.recv(Duration::from_millis(500)).await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not released");
    }
    // Slow-loris: a silent connection, and one that sends half a frame, are closed in time.
    let started = Instant::now();
    let mut silent = Raw::connect(addr).await;
    let mut partial = Raw::connect(addr).await;
    partial
        .stream
        .write_all(&[0, 0, 0, 50, 0, 0])
        .await
        .unwrap();
    assert!(silent.closed_within(Duration::from_secs(3)).await);
    assert!(partial.closed_within(Duration::from_secs(3)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

/// A TLS client that closes its socket without close_notify (Java clients and most others do) has
/// simply closed: no Exception event and no WARN. Before, each such close was an error.
#[tokio::test]
async fn a_tls_close_without_close_notify_is_a_plain_close() {
    struct Events(Mutex<Vec<ChannelEvent>>);
    impl ChannelEventListener for Events {
        fn on_event(&self, e: ChannelEvent) {
            self.0.lock().unwrap().push(e);
        }
    }
    let pki = Pki::new();
    let (reg, _) = echo_registry();
    let events = Arc::new(Events(Mutex::new(Vec::new())));
    let server = ServerBuilder::new(ServerConfig {
        tls: Some(pki.server(TlsMode::Enforcing, ClientAuth::None)),
        ..local_config()
    })
    .registry(reg)
    .event_listener(events.clone())
    .bind()
    .await
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let tls = ClientTlsConfig {
        trust_all: true,
        ..Default::default()
    };
    let connector = tls.connector().unwrap();
    let name = tls.server_name(&server.local_addr().to_string()).unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    let frame =
        rmq_protocol::frame::encode_to_vec(&RemotingCommand::request(1).with_body("x")).unwrap();
    stream.write_all(&frame).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
        .await
        .unwrap();
    assert!(n > 0, "answered");
    // Close the TCP socket under the TLS session: no close_notify.
    let (tcp, _) = stream.into_inner();
    drop(tcp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !events
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ChannelEvent::Close(_)))
    {
        assert!(tokio::time::Instant::now() < deadline, "no Close event");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = events.0.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, ChannelEvent::Exception(..))),
        "{seen:?}"
    );
    server.shutdown_now();
}
