//! `bench compare`: the same load against our server and against the raw-TCP baseline, in one
//! process and one run, so the ratio ours/raw holds however noisy the machine is.
//!
//! Each scenario runs three times: the raw echo under the neutral client (the baseline), our
//! server under the neutral client (a client that is not ours), and our server under our client
//! (the full stack). Servers and load run on separate tokio runtimes whose threads are named, so
//! the server's CPU per request is read from /proc for the server's threads alone.

use crate::cpu::threads_cpu_ns;
use crate::echo::BenchServer;
use crate::load::{self, Driver, LoadSpec, Mode};
use crate::raw::RawEchoServer;
use crate::report::Report;
use rmq_protocol::SerializeType;
use rmq_remoting::ServerConfig;
use serde::Serialize;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Name prefix of the server runtime's threads (CPU accounting reads it).
pub const SERVER_THREAD: &str = "rmq-bsrv";
const CLIENT_THREAD: &str = "rmq-bload";

/// One load shape.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    /// Short label.
    pub name: &'static str,
    /// How requests are issued.
    #[serde(serialize_with = "mode_name")]
    pub mode: Mode,
    /// Body bytes.
    pub body: usize,
    /// Connections.
    pub conns: usize,
    /// In flight per connection.
    pub inflight: usize,
}

fn mode_name<S: serde::Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

impl Scenario {
    /// Which figure this scenario is judged by.
    pub fn metric(&self) -> Metric {
        match (self.mode, self.body) {
            (Mode::Sync, _) => Metric::P50,
            (_, b) if b >= 16 * 1024 => Metric::Throughput,
            _ => Metric::Ops,
        }
    }
}

/// The figure a scenario's ratio is taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Operations per second (higher is better).
    Ops,
    /// Body MB/s (higher is better).
    Throughput,
    /// Median latency (lower is better).
    P50,
}

/// The scenarios: sync 1 conn 128 B; async 256 in flight 128 B; oneway 128 B;
/// async 64 in flight 64 KiB; async 16 conns x 64 in flight 1 KiB.
pub fn default_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "sync-128B",
            mode: Mode::Sync,
            body: 128,
            conns: 1,
            inflight: 1,
        },
        Scenario {
            name: "async-w256-128B",
            mode: Mode::Async,
            body: 128,
            conns: 1,
            inflight: 256,
        },
        Scenario {
            name: "oneway-128B",
            mode: Mode::Oneway,
            body: 128,
            conns: 1,
            inflight: 1,
        },
        Scenario {
            name: "async-w64-64KiB",
            mode: Mode::Async,
            body: 64 * 1024,
            conns: 1,
            inflight: 64,
        },
        Scenario {
            name: "async-16c-w64-1KiB",
            mode: Mode::Async,
            body: 1024,
            conns: 16,
            inflight: 64,
        },
    ]
}

/// One run of the load against one target, with the server's CPU per request from /proc; for
/// the raw oneway sink, waits (bounded) until it has counted what was sent.
fn measure(
    client_rt: &tokio::runtime::Runtime,
    target: &str,
    spec: &LoadSpec,
    driver: Driver,
    ops: &Arc<AtomicU64>,
    raw_sink: Option<&RawEchoServer>,
) -> std::io::Result<crate::report::Report> {
    let raw_before = raw_sink.map_or(0, |r| r.frames());
    let cpu_before = threads_cpu_ns(SERVER_THREAD);
    let mut report = client_rt
        .block_on(load::run(target, spec, driver, ops.clone()))
        .map_err(std::io::Error::other)?;
    if let Some(sink) = raw_sink {
        // The last writes may still be in the socket: wait (bounded) for the sink.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.frames() - raw_before < report.sent && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        report.server_received = Some(sink.frames() - raw_before);
    }
    let cpu_after = threads_cpu_ns(SERVER_THREAD);
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        if report.sent > 0 {
            report.server_cpu_us_per_op =
                Some((b.saturating_sub(a)) as f64 / 1000.0 / report.sent as f64);
        }
    }
    Ok(report)
}

impl Row {
    /// The row of one scenario x header type from its three runs (raw, ours under the neutral
    /// client, ours under ours), with the ratios to raw.
    fn from_runs(scenario: Scenario, mut reports: Vec<crate::report::Report>) -> Row {
        let ours_full = reports.pop().expect("three runs");
        let ours_neutral = reports.pop().expect("three runs");
        let raw = reports.pop().expect("three runs");
        let metric = scenario.metric();
        Row {
            scenario,
            serialize: raw.serialize.clone(),
            metric,
            ratio_neutral: ratio(metric, &ours_neutral, &raw),
            ratio_full: ratio(metric, &ours_full, &raw),
            raw,
            ours_neutral,
            ours_full,
        }
    }
}

/// Knobs of a compare run.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// Header encodings to run each scenario with.
    pub serialize: Vec<SerializeType>,
    /// Measured window per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Worker threads of the server runtime.
    pub server_threads: usize,
    /// Worker threads of the load runtime.
    pub client_threads: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Our server's per-connection write budget in bytes (`None`: the server default).
    pub write_queue_bytes: Option<usize>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            scenarios: default_scenarios(),
            serialize: vec![SerializeType::Json, SerializeType::RocketMq],
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            server_threads: 1,
            client_threads: 1,
            timeout: Duration::from_secs(3),
            write_queue_bytes: None,
        }
    }
}

/// One scenario x serialize type: the three runs and their ratios to the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The load shape.
    pub scenario: Scenario,
    /// json or rocketmq.
    pub serialize: String,
    /// Judged by.
    pub metric: Metric,
    /// Raw-TCP echo under the neutral client.
    pub raw: Report,
    /// Our server under the neutral client.
    pub ours_neutral: Report,
    /// Our server under our client.
    pub ours_full: Report,
    /// ours_neutral / raw for the metric (for P50: latency ratio, lower is better).
    pub ratio_neutral: f64,
    /// ours_full / raw for the metric.
    pub ratio_full: f64,
}

fn ratio(metric: Metric, ours: &Report, raw: &Report) -> f64 {
    let (a, b) = match metric {
        Metric::Ops => (ours.ops_per_sec, raw.ops_per_sec),
        Metric::Throughput => (ours.mb_per_sec, raw.mb_per_sec),
        Metric::P50 => (ours.p50_us, raw.p50_us),
    };
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// A step of the run, for progress display.
pub struct Step<'a> {
    /// "scenario/serialize/target".
    pub label: &'a str,
    /// 0-based index of this step.
    pub index: usize,
    /// Steps in all.
    pub total: usize,
    /// Length of the step's load (warm-up + duration).
    pub length: Duration,
}

/// Runs every scenario; `on_step` is called before each of the runs, `ops` counts completed
/// operations live. Blocking: builds and owns its runtimes.
pub fn run(
    opts: &CompareOptions,
    ops: Arc<AtomicU64>,
    mut on_step: impl FnMut(Step<'_>),
) -> std::io::Result<Vec<Row>> {
    let runtime = |threads: usize, name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()
    };
    let server_rt = runtime(opts.server_threads, SERVER_THREAD)?;
    let client_rt = runtime(opts.client_threads, CLIENT_THREAD)?;
    let ours = server_rt
        .block_on(BenchServer::start(ServerConfig {
            listen_addr: "127.0.0.1:0".into(),
            write_queue_bytes: opts
                .write_queue_bytes
                .unwrap_or(ServerConfig::default().write_queue_bytes),
            ..Default::default()
        }))
        .map_err(std::io::Error::other)?;
    let raw_echo = server_rt.block_on(RawEchoServer::start("127.0.0.1:0", true))?;
    let raw_sink = server_rt.block_on(RawEchoServer::start("127.0.0.1:0", false))?;

    let total = opts.scenarios.len() * opts.serialize.len() * 3;
    let mut index = 0;
    let mut rows = Vec::new();
    for sc in &opts.scenarios {
        for &st in &opts.serialize {
            let spec = |addr: String| LoadSpec {
                addr,
                mode: sc.mode,
                body: sc.body,
                conns: sc.conns,
                inflight: sc.inflight,
                duration: opts.duration,
                warmup: opts.warmup,
                serialize: st,
                timeout: opts.timeout,
                query_stats: true,
                code: None,
                ext: None,
                tls: None,
            };
            let raw_addr = if sc.mode == Mode::Oneway {
                raw_sink.local_addr()
            } else {
                raw_echo.local_addr()
            };
            let runs = [
                ("raw", raw_addr.to_string(), Driver::Neutral),
                (
                    "ours+neutral",
                    ours.local_addr().to_string(),
                    Driver::Neutral,
                ),
                ("ours+ours", ours.local_addr().to_string(), Driver::Ours),
            ];
            let mut reports = Vec::with_capacity(3);
            for (target, addr, driver) in runs {
                let mut spec = spec(addr);
                spec.query_stats = target != "raw";
                let label = format!("{}/{}/{}", sc.name, spec.serialize_name(), target);
                on_step(Step {
                    label: &label,
                    index,
                    total,
                    length: opts.warmup + opts.duration,
                });
                index += 1;
                let sink = (target == "raw" && sc.mode == Mode::Oneway).then_some(&raw_sink);
                reports.push(measure(&client_rt, target, &spec, driver, &ops, sink)?);
            }
            rows.push(Row::from_runs(*sc, reports));
        }
    }
    ours.shutdown();
    drop((raw_echo, raw_sink));
    server_rt.shutdown_timeout(Duration::from_secs(1));
    client_rt.shutdown_timeout(Duration::from_secs(1));
    Ok(rows)
}

/// The rows as a Markdown table (what the README shows).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | header | metric | raw | ours, neutral client | ratio | ours, our client | ratio | server CPU µs/req (raw / ours) | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let fig = |rep: &Report| match r.metric {
            Metric::Ops => format!("{:.0} ops/s", rep.ops_per_sec),
            Metric::Throughput => format!("{:.0} MB/s", rep.mb_per_sec),
            Metric::P50 => format!("p50 {:.1} µs", rep.p50_us),
        };
        let cpu = |rep: &Report| {
            rep.server_cpu_us_per_op
                .map_or("-".to_owned(), |c| format!("{c:.2}"))
        };
        let mut errors = r.raw.errors + r.ours_neutral.errors + r.ours_full.errors;
        errors += r.raw.unanswered + r.ours_neutral.unanswered + r.ours_full.unanswered;
        for rep in [&r.raw, &r.ours_neutral, &r.ours_full] {
            if let Some(got) = rep.server_received {
                errors += rep.sent.saturating_sub(got);
            }
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {} | {:.2} | {} / {} | {} |\n",
            r.scenario.name,
            r.serialize,
            match r.metric {
                Metric::Ops => "ops/s",
                Metric::Throughput => "MB/s",
                Metric::P50 => "p50 latency",
            },
            fig(&r.raw),
            fig(&r.ours_neutral),
            r.ratio_neutral,
            fig(&r.ours_full),
            r.ratio_full,
            cpu(&r.raw),
            cpu(&r.ours_neutral),
            errors,
        ));
    }
    out
}
