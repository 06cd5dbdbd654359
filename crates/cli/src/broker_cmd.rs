//! `rmq broker` (a broker registering with NameServers) and `rmq standalone` (a NameServer and
//! a broker in one process: the one-command way to run RocketMQ).

use clap::Args;
use rmq_broker::config::BrokerConfig;
use rmq_broker::{Broker, BrokerOptions};
use rmq_namesrv::config::NamesrvConfig;
use rmq_namesrv::NameServer;
use std::path::PathBuf;
use std::process::ExitCode;

/// Settings shared by `rmq broker` and `rmq standalone`. Java property names (brokerName,
/// brokerClusterName, listenPort, storePathRootDir, brokerIP1, autoCreateTopicEnable,
/// flushDiskType, fileReservedTime, deleteWhen, mappedFileSizeCommitLog, maxMessageSize,
/// longPollingEnable, ...); later sources win: embedded defaults, `-c FILE`,
/// `RMQ_BROKER_<NAME>` environment variables (name upper-cased), then the flags.
#[derive(Args)]
pub struct BrokerSettings {
    /// Java properties file (broker.conf).
    #[arg(short = 'c', long = "config")]
    config_file: Option<PathBuf>,
    /// storePathRootDir (default ~/store).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Any property, as name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Print the effective broker configuration and exit.
    #[arg(short = 'p', long = "print-config")]
    print_config: bool,
    /// Verify every request's ACL signature (Java's 4.x scheme) against the account in this
    /// properties file (accessKey, secretKey); repeatable for several accounts.
    #[arg(long = "acl-credentials", value_name = "FILE")]
    acl_credentials: Vec<PathBuf>,
    /// TLS for the broker's listener, a settings file with the Java keys (tls.server.mode,
    /// tls.server.certPath, tls.server.keyPath, tls.server.need.client.auth, ...).
    #[arg(long)]
    tls_config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (metricsExporterType=PROM;
    /// `rmq standalone` serves its NameServer's series there too).
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
}

/// The ACL hook and TLS settings the flags name.
fn broker_options(s: &BrokerSettings) -> Result<BrokerOptions, String> {
    let mut options = BrokerOptions::default();
    if !s.acl_credentials.is_empty() {
        let accounts = s
            .acl_credentials
            .iter()
            .map(|p| rmq_acl::Credentials::from_file(p).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        options.hook = Some(std::sync::Arc::new(rmq_acl::AclServerHook::new(accounts)));
    }
    options.tls = crate::bench_cmd::server_tls(s.tls_config.as_deref(), false)?;
    Ok(options)
}

/// Arguments of `rmq broker`.
#[derive(Args)]
pub struct BrokerArgs {
    /// namesrvAddr: NameServer addresses, `host:port;host:port`.
    #[arg(short = 'n', long = "namesrv")]
    namesrv: Option<String>,
    /// listenPort (default 10911).
    #[arg(long)]
    listen_port: Option<u16>,
    #[command(flatten)]
    settings: BrokerSettings,
}

/// Arguments of `rmq standalone`.
#[derive(Args)]
pub struct StandaloneArgs {
    /// The NameServer's port (default 9876).
    #[arg(long, default_value_t = 9876)]
    namesrv_port: u16,
    /// The broker's listenPort (default 10911).
    #[arg(long, default_value_t = 10911)]
    broker_port: u16,
    /// Serve the dashboard (`rmq dashboard`) on HOST:PORT, reading this NameServer.
    #[arg(long, value_name = "HOST:PORT")]
    dashboard: Option<String>,
    #[command(flatten)]
    settings: BrokerSettings,
}

fn broker_config(s: &BrokerSettings) -> Result<BrokerConfig, String> {
    let mut c = BrokerConfig::default();
    if let Some(path) = &s.config_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        c.apply_properties(&text)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        c.broker_config_path = path.display().to_string();
    }
    c.apply_env(std::env::vars())?;
    if let Some(dir) = &s.store {
        c.store_path_root_dir = dir.display().to_string();
    }
    for kv in &s.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--set {kv:?}: expected NAME=VALUE"))?;
        if !c.set(k.trim(), v)? {
            return Err(format!("--set: unknown property {k:?}"));
        }
    }
    if let Some(m) = &s.metrics {
        let (host, port) = m
            .rsplit_once(':')
            .ok_or_else(|| format!("--metrics {m:?}: expected HOST:PORT"))?;
        c.metrics_exporter_type = "PROM".into();
        c.metrics_prom_exporter_host = host.to_owned();
        c.metrics_prom_exporter_port = port
            .parse()
            .map_err(|_| format!("--metrics {m:?}: bad port"))?;
    }
    c.validate()?;
    Ok(c)
}

/// Runs `rmq broker` until SIGINT/SIGTERM, then stops gracefully.
pub fn run_broker(a: BrokerArgs) -> ExitCode {
    let mut config = match broker_config(&a.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = &a.namesrv {
        config.namesrv_addr = n.clone();
    } else if config.namesrv_addr.is_empty() {
        if let Ok(n) = std::env::var("NAMESRV_ADDR") {
            config.namesrv_addr = n;
        }
    }
    if let Some(p) = a.listen_port {
        config.listen_port = p;
    }
    if a.settings.print_config {
        print!("{}", config.to_properties_text());
        return ExitCode::SUCCESS;
    }
    let options = match broker_options(&a.settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::memory::server_runtime().block_on(async {
        let broker = match Broker::start_with(config, options).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        {
            let c = broker.state().config();
            println!(
                "The broker[{}, {}] boot success. serializeType=JSON and name server is {}",
                c.broker_name,
                broker.local_addr(),
                if c.namesrv_addr.is_empty() {
                    "(none)"
                } else {
                    &c.namesrv_addr
                }
            );
        }
        crate::namesrv_cmd::stop_signal().await;
        broker.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Runs `rmq standalone`: a NameServer and a broker registered with it, until SIGINT/SIGTERM.
pub fn run_standalone(a: StandaloneArgs) -> ExitCode {
    let mut config = match broker_config(&a.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    config.listen_port = a.broker_port;
    if a.settings.print_config {
        print!("{}", config.to_properties_text());
        return ExitCode::SUCCESS;
    }
    let mut options = match broker_options(&a.settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ns_config = NamesrvConfig {
        listen_port: a.namesrv_port,
        bind_address: config.bind_address.clone(),
        kv_config_path: config
            .store_root()
            .join("namesrv")
            .join("kvConfig.json")
            .display()
            .to_string(),
        config_store_path: config
            .store_root()
            .join("namesrv")
            .join("namesrv.properties")
            .display()
            .to_string(),
        ..NamesrvConfig::default()
    };
    crate::memory::server_runtime().block_on(async {
        let ns = match NameServer::start(ns_config).await {
            Ok(ns) => ns,
            Err(e) => {
                eprintln!("error: name server: {e}");
                return ExitCode::FAILURE;
            }
        };
        config.namesrv_addr = format!("{}:{}", config.broker_ip1, ns.local_addr().port());
        options.extra_metrics.push(ns.metrics_source());
        let store = config.store_path_root_dir.clone();
        let broker = match Broker::start_with(config, options).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: broker: {e}");
                ns.shutdown_now();
                return ExitCode::FAILURE;
            }
        };
        println!("name server listening on {}", ns.local_addr());
        println!(
            "broker {} listening on {} (store {store})",
            broker.state().config().broker_name,
            broker.local_addr()
        );
        if let Some(m) = broker.metrics_addr() {
            println!("metrics on http://{m}/metrics");
        }
        let (stop_dashboard, dashboard_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(listen) = &a.dashboard {
            let admin = match dashboard_admin(&ns.local_addr().to_string()) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: dashboard: {}", e.message);
                    broker.shutdown().await;
                    ns.shutdown_now();
                    return ExitCode::FAILURE;
                }
            };
            let stopped = async move {
                let _ = dashboard_stopped.await;
            };
            match crate::dashboard::serve(admin, listen, stopped).await {
                Ok((addr, _)) => println!("dashboard on http://{addr}/"),
                Err(e) => {
                    eprintln!("error: --dashboard {listen}: {e}");
                    broker.shutdown().await;
                    ns.shutdown_now();
                    return ExitCode::FAILURE;
                }
            }
        }
        println!(
            "ready: rmq send -n {} --topic TopicTest --body hello",
            ns.local_addr()
        );
        crate::namesrv_cmd::stop_signal().await;
        let _ = stop_dashboard.send(());
        broker.shutdown().await;
        // The broker, the NameServer's only registrant, is gone: nothing to drain.
        ns.shutdown_now();
        ExitCode::SUCCESS
    })
}

/// The admin session `rmq standalone --dashboard` reads its own NameServer with.
fn dashboard_admin(ns: &str) -> Result<crate::admin::Admin, crate::admin::Failure> {
    crate::admin::Admin::new(crate::admin::Common {
        namesrv: Some(ns.to_owned()),
        json: false,
        timeout: 3000,
        serialize: crate::admin::Serialize::Json,
        verbose: false,
        tls: false,
        tls_config: None,
        acl: false,
        acl_file: None,
    })
}
