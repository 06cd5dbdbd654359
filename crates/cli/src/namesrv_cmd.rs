//! `rmq namesrv`: run a NameServer (127.0.0.1:9876 by default).

use clap::Args;
use rmq_namesrv::config::NamesrvConfig;
use rmq_namesrv::NameServer;
use std::process::ExitCode;

/// Arguments of `rmq namesrv`. Settings use the Java property names (listenPort, kvConfigPath,
/// scanNotActiveBrokerInterval, ...); later sources win: embedded defaults, `-c FILE`,
/// `RMQ_NAMESRV_<NAME>` environment variables (name upper-cased, e.g. RMQ_NAMESRV_LISTENPORT),
/// then the flags below. `rmq namesrv -p` prints every setting with its value.
#[derive(Args)]
#[command(
    after_help = "Properties (Java names): listenPort, bindAddress, kvConfigPath, configStorePath, \
scanNotActiveBrokerInterval (ms), serverChannelMaxIdleTimeSeconds, clientRequestThreadPoolNums, \
clientRequestThreadPoolQueueCapacity, defaultThreadPoolNums, defaultThreadPoolQueueCapacity, \
orderMessageEnable, returnOrderTopicConfigToBroker, enableAllTopicList, enableTopicList, \
deleteTopicWithBrokerRegistration, needWaitForService, waitSecondsForService, configBlackList, \
productEnvName, clusterTest, rocketmqHome."
)]
pub struct NamesrvArgs {
    /// Java properties file (namesrv.properties).
    #[arg(short = 'c', long = "config")]
    config_file: Option<std::path::PathBuf>,
    /// listenPort.
    #[arg(long)]
    listen_port: Option<u16>,
    /// bindAddress (default 127.0.0.1; 0.0.0.0 serves other hosts).
    #[arg(long)]
    bind_address: Option<String>,
    /// kvConfigPath (default ~/namesrv/kvConfig.json).
    #[arg(long)]
    kv_config_path: Option<String>,
    /// Any property, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// TLS settings file with the Java keys (tls.server.mode, tls.server.certPath,
    /// tls.server.keyPath, tls.server.need.client.auth, tls.server.trustCertPath, tls.test.mode.enable).
    #[arg(long)]
    tls_config: Option<std::path::PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(short = 'p', long = "print-config")]
    print_config: bool,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (rocketmq_namesrv_* series).
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
}

fn effective_config(a: &NamesrvArgs) -> Result<NamesrvConfig, String> {
    let mut c = NamesrvConfig::default();
    if let Some(path) = &a.config_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        c.apply_properties(&text)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
    }
    c.apply_env(std::env::vars())?;
    if let Some(p) = a.listen_port {
        c.listen_port = p;
    }
    if let Some(b) = &a.bind_address {
        c.bind_address = b.clone();
    }
    if let Some(k) = &a.kv_config_path {
        c.kv_config_path = k.clone();
    }
    for kv in &a.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--set {kv:?}: expected NAME=VALUE"))?;
        if !c.set(k.trim(), v)? {
            return Err(format!("--set: unknown property {k:?}"));
        }
    }
    Ok(c)
}

/// Runs `rmq namesrv` until Ctrl-C.
pub fn run(a: NamesrvArgs) -> ExitCode {
    let config = match effective_config(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if a.print_config {
        print!("{}", config.to_properties_text());
        return ExitCode::SUCCESS;
    }
    let tls = match crate::bench_cmd::server_tls(a.tls_config.as_deref(), false) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = crate::memory::server_runtime();
    rt.block_on(async {
        let ns = match NameServer::start_with_tls(config, tls).await {
            Ok(ns) => ns,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "The Name Server boot success. serializeType=JSON, address {}",
            ns.local_addr()
        );
        if let Some(m) = &a.metrics {
            match ns.serve_metrics(m).await {
                Ok(addr) => println!("metrics on http://{addr}/metrics"),
                Err(e) => {
                    eprintln!("error: --metrics {m}: {e}");
                    ns.shutdown_now();
                    return ExitCode::FAILURE;
                }
            }
        }
        stop_signal().await;
        ns.shutdown_now();
        ExitCode::SUCCESS
    })
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (service managers, `kill`): both stop the server cleanly.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
