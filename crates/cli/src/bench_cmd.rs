//! `rmq bench server | client | compare | idle`.

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rmq_bench::compare::{self, CompareOptions};
use rmq_bench::{idle, load, BenchServer, Driver, LoadSpec, Mode};
use rmq_protocol::SerializeType;
use rmq_remoting::{ClientTlsConfig, ServerConfig, ServerTlsConfig, TlsMode};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `rmq bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Echo server on our runtime: code 1 echoes body and ext fields, code 2 (oneway) is counted.
    Server {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:10911")]
        listen: String,
        /// Runtime worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// TLS settings file with the Java keys (tls.server.mode, tls.server.certPath, ...).
        #[arg(long)]
        tls_config: Option<std::path::PathBuf>,
        /// TLS in PERMISSIVE mode on a self-signed certificate made at start (tls.test.mode.enable).
        #[arg(long)]
        tls_test_mode: bool,
    },
    /// Drive code 1 (or 2 for oneway) against any server that follows the convention.
    Client(ClientArgs),
    /// Our server vs a raw-TCP framed echo, same load, same run: prints the ratios.
    Compare(CompareArgs),
    /// Resident memory a `bench server` child process spends per idle connection.
    Idle {
        /// Idle connections to open.
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Sync,
    Async,
    Oneway,
}

#[derive(Clone, Copy, ValueEnum)]
enum SerializeArg {
    Json,
    Rocketmq,
}

impl From<SerializeArg> for SerializeType {
    fn from(s: SerializeArg) -> Self {
        match s {
            SerializeArg::Json => SerializeType::Json,
            SerializeArg::Rocketmq => SerializeType::RocketMq,
        }
    }
}

#[derive(Args)]
struct ClientArgs {
    /// Server address host:port.
    #[arg(long, default_value = "127.0.0.1:10911")]
    addr: String,
    /// sync: one request at a time per connection; async: --inflight outstanding; oneway: code 2.
    #[arg(long, value_enum, default_value = "async")]
    mode: ModeArg,
    /// Body bytes per request.
    #[arg(long, default_value_t = 128)]
    body: usize,
    /// Connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Requests in flight per connection (async mode).
    #[arg(long, default_value_t = 256)]
    inflight: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Request header encoding.
    #[arg(long, value_enum, default_value = "json")]
    serialize: SerializeArg,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Drive the load with the neutral frame client instead of our RemotingClient.
    #[arg(long)]
    neutral: bool,
    /// Print the report as JSON instead of the key=value line.
    #[arg(long)]
    json: bool,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Request code to send instead of 1 (e.g. 105 GET_ROUTEINFO_BY_TOPIC against a NameServer).
    #[arg(long)]
    code: Option<i32>,
    /// Ext field NAME=VALUE to send instead of the default two (repeatable), e.g. topic=TopicTest.
    #[arg(long = "ext", value_name = "NAME=VALUE")]
    ext: Vec<String>,
    /// Dial with TLS, trusting any server certificate (Java test mode).
    #[arg(long)]
    tls: bool,
    /// Dial with TLS per a settings file with the Java keys (tls.client.trustCertPath, ...).
    #[arg(long)]
    tls_config: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    /// Measured seconds per run (each scenario has three runs per header type).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Warm-up seconds per run.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Only these scenarios (sync-128B, async-w256-128B, oneway-128B, async-w64-64KiB, async-16c-w64-1KiB).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Only this header encoding (default: both).
    #[arg(long, value_enum)]
    serialize: Option<SerializeArg>,
    /// Server runtime worker threads.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Load runtime worker threads.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Also measure server memory per idle connection with this many connections (0: skip).
    #[arg(long, default_value_t = 0)]
    idle_conns: usize,
    /// Our server's per-connection write budget in bytes (default: the server's default).
    #[arg(long)]
    write_queue_bytes: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `rmq bench ...`.
pub fn run(args: BenchArgs) -> ExitCode {
    match args.command {
        BenchCommand::Server {
            listen,
            threads,
            tls_config,
            tls_test_mode,
        } => match server_tls(tls_config.as_deref(), tls_test_mode) {
            Ok(tls) => server(listen, threads, tls),
            Err(e) => fail(e),
        },
        BenchCommand::Client(a) => client(a),
        BenchCommand::Compare(a) => compare_cmd(a),
        BenchCommand::Idle { conns, json } => idle_cmd(conns, json),
    }
}

fn runtime(threads: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().build().expect("tokio runtime")
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// Server TLS from a properties file or the test-mode flag.
pub fn server_tls(
    file: Option<&std::path::Path>,
    test_mode: bool,
) -> Result<Option<ServerTlsConfig>, String> {
    if test_mode {
        return Ok(Some(ServerTlsConfig {
            mode: TlsMode::Permissive,
            test_mode: true,
            ..Default::default()
        }));
    }
    match file {
        Some(f) => {
            let props = rmq_config::read_file(f).map_err(|e| e.to_string())?;
            Ok(Some(ServerTlsConfig::from_properties(&props)))
        }
        None => Ok(None),
    }
}

fn server(listen: String, threads: Option<usize>, tls: Option<ServerTlsConfig>) -> ExitCode {
    let rt = runtime(threads);
    rt.block_on(async {
        let server = match BenchServer::start(ServerConfig {
            listen_addr: listen,
            tls,
            // `bench idle` holds 10,000 connections and asks for stats on one more: the bench
            // server measures what connections cost, so it takes as many as come.
            max_connections: 0,
            ..Default::default()
        })
        .await
        {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        println!("listening on {}", server.local_addr());
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown();
        ExitCode::SUCCESS
    })
}

/// A bar that shows elapsed time against the run length and the live rate.
fn progress_bar(total: Duration) -> ProgressBar {
    let bar = ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// Updates `bar` every 200 ms from `ops` until `stop` is set.
fn spawn_ticker(
    bar: ProgressBar,
    ops: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = (Instant::now(), ops.load(Ordering::Relaxed));
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let now = (Instant::now(), ops.load(Ordering::Relaxed));
            let rate = (now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64().max(1e-3);
            bar.set_position(started.elapsed().as_millis() as u64);
            bar.set_message(format!("{} ops, {:.0} ops/s", now.1, rate));
            last = now;
        }
        bar.finish_and_clear();
    })
}

fn client(a: ClientArgs) -> ExitCode {
    let spec = LoadSpec {
        addr: a.addr.clone(),
        mode: match a.mode {
            ModeArg::Sync => Mode::Sync,
            ModeArg::Async => Mode::Async,
            ModeArg::Oneway => Mode::Oneway,
        },
        body: a.body,
        conns: a.conns.max(1),
        inflight: a.inflight.max(1),
        duration: Duration::from_secs_f64(a.duration.max(0.1)),
        warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
        serialize: a.serialize.into(),
        timeout: Duration::from_millis(a.timeout_ms.max(1)),
        tls: match (&a.tls_config, a.tls) {
            (Some(f), _) => match rmq_config::read_file(f) {
                Ok(p) => Some(ClientTlsConfig::from_properties(&p)),
                Err(e) => return fail(e),
            },
            (None, true) => Some(ClientTlsConfig {
                trust_all: true,
                ..Default::default()
            }),
            (None, false) => None,
        },
        query_stats: a.code.is_none(),
        code: a.code,
        ext: if a.ext.is_empty() {
            None
        } else {
            let mut pairs = Vec::new();
            for kv in &a.ext {
                match kv.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_owned(), v.to_owned())),
                    None => return fail(format!("--ext {kv:?}: expected NAME=VALUE")),
                }
            }
            Some(pairs)
        },
    };
    let driver = if a.neutral {
        Driver::Neutral
    } else {
        Driver::Ours
    };
    let rt = runtime(a.threads);
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = spawn_ticker(
        progress_bar(spec.warmup + spec.duration),
        ops.clone(),
        stop.clone(),
    );
    let result = rt.block_on(load::run(&a.addr, &spec, driver, ops));
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    match result {
        Ok(report) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("report serializes")
                );
            } else {
                println!("{report}");
            }
            if report.errors > 0 || report.unanswered > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e),
    }
}

fn compare_cmd(a: CompareArgs) -> ExitCode {
    let mut opts = CompareOptions {
        duration: Duration::from_secs_f64(a.duration.max(0.1)),
        warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
        server_threads: a.server_threads,
        client_threads: a.client_threads,
        write_queue_bytes: a.write_queue_bytes,
        ..Default::default()
    };
    if !a.scenarios.is_empty() {
        let all = compare::default_scenarios();
        let mut chosen = Vec::new();
        for name in &a.scenarios {
            match all.iter().find(|s| s.name == name) {
                Some(s) => chosen.push(*s),
                None => return fail(format!("unknown scenario {name:?}")),
            }
        }
        opts.scenarios = chosen;
    }
    if let Some(s) = a.serialize {
        opts.serialize = vec![s.into()];
    }
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} step {pos}/{len} {msg}").expect("static template"),
    );
    let ticker_bar = bar.clone();
    let (o, s) = (ops.clone(), stop.clone());
    let ticker = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            ticker_bar.tick();
            let _ = o.load(Ordering::Relaxed);
        }
    });
    let result = compare::run(&opts, ops, |step| {
        bar.set_length(step.total as u64);
        bar.set_position(step.index as u64);
        bar.set_message(step.label.to_owned());
    });
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    bar.finish_and_clear();
    let rows = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let idle = if a.idle_conns > 0 {
        match measure_idle(a.idle_conns) {
            Ok(r) => Some(r),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    if a.json {
        let doc = serde_json::json!({ "rows": rows, "idle": idle });
        println!("{doc}");
    } else {
        print!("{}", compare::table(&rows));
        if let Some(r) = idle {
            println!(
                "\nidle connections: {} held, server RSS {} -> {} KiB, {} bytes per connection",
                r.conns,
                r.rss_before / 1024,
                r.rss_after / 1024,
                r.bytes_per_conn
            );
        }
    }
    ExitCode::SUCCESS
}

fn measure_idle(conns: usize) -> Result<idle::IdleReport, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = idle::ChildServer::spawn(&exe).map_err(|e| e.to_string())?;
    let rt = runtime(Some(1));
    rt.block_on(idle::measure(
        &child.addr,
        child.pid(),
        conns,
        Duration::from_secs(60),
    ))
}

fn idle_cmd(conns: usize, json: bool) -> ExitCode {
    match measure_idle(conns) {
        Ok(r) if json => {
            println!("{}", serde_json::to_string(&r).expect("report serializes"));
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!(
                "conns={} rss_before_kib={} rss_after_kib={} bytes_per_conn={}",
                r.conns,
                r.rss_before / 1024,
                r.rss_after / 1024,
                r.bytes_per_conn
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
