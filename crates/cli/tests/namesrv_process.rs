//! `rmq namesrv` as a process: starts with embedded defaults overridden by flags, answers, and
//! refuses a corrupt KV file with an error naming it.

use rmq_protocol::RemotingCommand;
use rmq_remoting::{ClientConfig, RemotingClient};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `rmq namesrv --listen-port 0 --kv-config-path KV EXTRA...` and reads the address it
/// prints.
fn spawn_namesrv(
    kv: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["namesrv", "--listen-port", "0", "--kv-config-path"])
        .arg(kv)
        .args(extra)
        .env("RMQ_NAMESRV_SCANNOTACTIVEBROKERINTERVAL", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("boot success"), "{line}");
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    (child, addr)
}

#[tokio::test]
async fn starts_answers_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kvConfig.json");
    let started = Instant::now();
    let (mut child, addr) = spawn_namesrv(&kv, &[]);
    let client = RemotingClient::new(ClientConfig::default());
    let r = client
        .invoke_sync(&addr, RemotingCommand::request(106), Duration::from_secs(3))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        &r.body[..],
        br#"{"brokerAddrTable":{},"clusterAddrTable":{}}"#
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "start to first answer took {elapsed:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    std::fs::write(&kv, "{oops").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["namesrv", "--listen-port", "0", "--kv-config-path"])
        .arg(&kv)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kvConfig.json") && err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn print_config_shows_java_property_names() {
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["namesrv", "-p", "--set", "listenPort=9999"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("listenPort=9999\n") && text.contains("scanNotActiveBrokerInterval=5000\n"),
        "{text}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["namesrv", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("kvConfigPath"));
}

#[tokio::test]
async fn serves_tls_from_a_java_style_tls_properties_file() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls.properties");
    std::fs::write(
        &tls,
        "tls.server.mode=enforcing\ntls.test.mode.enable=true\n",
    )
    .unwrap();
    let (mut child, addr) = spawn_namesrv(
        &dir.path().join("kv.json"),
        &["--tls-config".as_ref(), tls.as_os_str()],
    );
    let tls_client = RemotingClient::new(ClientConfig {
        tls: Some(rmq_remoting::ClientTlsConfig {
            trust_all: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let r = tls_client
        .invoke_sync(&addr, RemotingCommand::request(106), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(r.code, 0);
    // The admin CLI speaks TLS too.
    let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["clusters", "--tls", "--json", "-n", &addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["clusters", "-n", &addr, "--timeout", "1000"])
        .output()
        .unwrap();
    assert_eq!(
        plain.status.code(),
        Some(3),
        "plaintext to an ENFORCING server fails"
    );
    // ENFORCING: plaintext is refused.
    let plain = RemotingClient::new(ClientConfig::default());
    assert!(plain
        .invoke_sync(&addr, RemotingCommand::request(106), Duration::from_secs(3))
        .await
        .is_err());
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Logs for files and journald: no ANSI colour codes when stderr is not a terminal, and a TCP
/// probe that connects and closes (load balancers, Kubernetes) is not a WARN. SIGTERM stops the
/// process cleanly (exit 0). Before, every line carried colour codes and every probe a WARN.
#[tokio::test]
async fn logs_are_plain_text_and_health_checks_are_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("namesrv.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["namesrv", "--listen-port", "0", "--kv-config-path"])
        .arg(dir.path().join("kv.json"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    for _ in 0..5 {
        drop(std::net::TcpStream::connect(&addr).unwrap());
    }
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke_sync(&addr, RemotingCommand::request(106), Duration::from_secs(3))
        .await
        .unwrap();
    client.shutdown();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in a log file: {text:?}"
    );
    assert!(
        !text.contains("WARN"),
        "health checks logged at WARN: {text}"
    );
}
