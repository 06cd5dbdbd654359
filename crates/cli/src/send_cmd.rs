//! `rmq send`: send messages through the producer, with a progress bar and a summary.

use crate::admin::Common;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rmq_producer::{Message, Producer, ProducerConfig};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send modes.
#[derive(Clone, Copy, ValueEnum)]
pub enum SendMode {
    /// Wait for each result (retries on another broker).
    Sync,
    /// Up to --inflight sends outstanding.
    Async,
    /// Fire and forget.
    Oneway,
}

/// Arguments of `rmq send`.
#[derive(Args)]
pub struct SendArgs {
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Body text, or @FILE to send a file's bytes.
    #[arg(long)]
    body: String,
    /// Tag.
    #[arg(long)]
    tag: Option<String>,
    /// Keys, space-separated (KEYS property).
    #[arg(long)]
    keys: Option<String>,
    /// Messages to send.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// sync, async or oneway.
    #[arg(long, value_enum, default_value = "sync")]
    mode: SendMode,
    /// Async sends outstanding at once.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// Send the messages in batches of this many (SEND_BATCH_MESSAGE; sync mode only).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Producer group.
    #[arg(long, default_value = "rmq_cli_producer")]
    group: String,
    /// Java's sendLatencyFaultEnable: avoid brokers whose sends were slow or failed.
    #[arg(long)]
    latency_fault: bool,
    #[command(flatten)]
    common: Common,
}

impl SendArgs {
    /// -v given.
    pub fn verbose(&self) -> bool {
        self.common.verbose
    }
}

/// Runs `rmq send`: read the body, start a producer, send in the chosen mode, print the summary.
pub fn run(a: SendArgs) -> ExitCode {
    let body = match load_body(&a.body) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if a.batch > 1 && !matches!(a.mode, SendMode::Sync) {
        eprintln!("error: --batch works with --mode sync");
        return ExitCode::from(2);
    }
    let config = match producer_config(&a) {
        Ok(c) => c,
        Err(f) => {
            eprintln!("error: {}", f.message);
            return ExitCode::from(f.exit);
        }
    };
    // One thread: a send's task, its connection's reader and writer wake one another without
    // crossing threads. Measured against the multi-thread runtime (three alternating runs,
    // 2026-12-08): sync p50 105-143 vs 138-165 µs, half the client's CPU per sync send (4.7
    // context switches per send down to 1); async 64 in flight 54-82k vs 58-69k msgs/s.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let producer = match Producer::start(config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let messages = Messages { args: &a, body };
        let bar = ProgressBar::new(a.count);
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} {per_sec} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        let mut t = Tally::new();
        let started = Instant::now();
        match a.mode {
            SendMode::Sync if a.batch > 1 => send_batches(&producer, &messages, &bar, &mut t).await,
            SendMode::Sync | SendMode::Oneway => {
                send_one_by_one(&producer, &messages, &bar, &mut t).await
            }
            SendMode::Async => send_async(&producer, &messages, &bar, &mut t).await,
        }
        bar.finish_and_clear();
        t.print(started.elapsed().as_secs_f64(), a.common.json);
        producer.shutdown().await;
        match t.last_error {
            Some(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
            None => ExitCode::SUCCESS,
        }
    })
}

/// The body argument: text, or `@FILE` for a file's bytes.
fn load_body(arg: &str) -> Result<bytes::Bytes, String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .map(Into::into)
            .map_err(|e| format!("body file {path}: {e}")),
        None => Ok(arg.to_owned().into_bytes().into()),
    }
}

/// The producer's settings from the command line (NameServers, TLS, ACL, timeout).
fn producer_config(a: &SendArgs) -> Result<ProducerConfig, crate::admin::Failure> {
    let mut config = ProducerConfig::new(&a.group, &[]);
    config.namesrv_addrs = a.common.namesrv_addrs()?;
    config.send_timeout = Duration::from_millis(a.common.timeout.max(1));
    config.client.tls = a.common.client_tls()?;
    config.rpc_hooks.0.extend(a.common.acl_hook()?);
    config.send_latency_fault_enable = a.latency_fault;
    Ok(config)
}

/// Builds the numbered messages a run sends.
struct Messages<'a> {
    args: &'a SendArgs,
    body: bytes::Bytes,
}

impl Messages<'_> {
    /// Message `i`: topic, body, tag and keys from the arguments, and `rmqSeq` = i.
    fn make(&self, i: u64) -> Message {
        let a = self.args;
        let mut m = Message::new(a.topic.clone(), self.body.clone());
        if let Some(t) = &a.tag {
            m = m.with_tags(t);
        }
        if let Some(k) = &a.keys {
            let keys: Vec<&str> = k.split_whitespace().collect();
            m = m.with_keys(&keys);
        }
        m.set_property("rmqSeq", i.to_string());
        m
    }
}

/// `--batch N`: SEND_BATCH_MESSAGE requests of N messages each.
async fn send_batches(producer: &Producer, m: &Messages<'_>, bar: &ProgressBar, t: &mut Tally) {
    let (count, size) = (m.args.count, m.args.batch as u64);
    let mut i = 0;
    while i < count {
        let n = (count - i).min(size);
        let batch: Vec<Message> = (i..i + n).map(|j| m.make(j)).collect();
        let t0 = Instant::now();
        let r = producer.send_batch(batch).await;
        t.record(t0.elapsed(), r.map(Some), n);
        bar.inc(n);
        i += n;
    }
}

/// Sync or oneway: one message after another (a single sync send prints its result).
async fn send_one_by_one(producer: &Producer, m: &Messages<'_>, bar: &ProgressBar, t: &mut Tally) {
    let a = m.args;
    for i in 0..a.count {
        let t0 = Instant::now();
        let r = match a.mode {
            SendMode::Oneway => producer.send_oneway(m.make(i)).await.map(|_| None),
            _ => producer.send(m.make(i)).await.map(Some),
        };
        if let (Ok(Some(res)), 1, false) = (&r, a.count, a.common.json) {
            bar.suspend(|| {
                println!(
                    "{:?} msgId={} offsetMsgId={} broker={} queue={} offset={}",
                    res.status,
                    res.msg_id,
                    res.offset_msg_id,
                    res.queue.broker_name,
                    res.queue.queue_id,
                    res.queue_offset
                )
            });
        }
        t.record(t0.elapsed(), r, 1);
        bar.inc(1);
    }
}

/// Async: up to `--inflight` sends outstanding.
async fn send_async(producer: &Producer, m: &Messages<'_>, bar: &ProgressBar, t: &mut Tally) {
    let sem = Arc::new(tokio::sync::Semaphore::new(m.args.inflight.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..m.args.count {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        // Boxed: the send's future is kilobytes, and a task moves its future on spawn and
        // on completion (those copies were 7 % of this client's CPU).
        let fut = Box::pin(producer.send_async(m.make(i)));
        set.spawn(async move {
            let t0 = Instant::now();
            let r = fut.await;
            drop(permit);
            (t0.elapsed(), r)
        });
        while let Some(done) = set.try_join_next() {
            t.joined(done);
            bar.inc(1);
        }
    }
    while let Some(done) = set.join_next().await {
        t.joined(done);
        bar.inc(1);
    }
}

/// What a run of sends came to: counts, latencies, and where the messages went.
struct Tally {
    hist: Histogram<u64>,
    sent: u64,
    failed: u64,
    last_error: Option<String>,
    /// Messages stored per broker name (oneway sends have no answer: not counted here).
    per_broker: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            hist: Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds"),
            sent: 0,
            failed: 0,
            last_error: None,
            per_broker: Default::default(),
        }
    }

    /// One send (of `n` messages: a batch counts each) that took `took`.
    fn record(
        &mut self,
        took: Duration,
        r: Result<Option<rmq_producer::SendResult>, rmq_producer::ProducerError>,
        n: u64,
    ) {
        let _ = self.hist.record(took.as_nanos().max(1) as u64);
        match r {
            Ok(res) => {
                self.sent += n;
                if let Some(res) = res {
                    *self
                        .per_broker
                        .entry(res.queue.broker_name.clone())
                        .or_default() += n;
                }
            }
            Err(e) => {
                self.failed += n;
                self.last_error = Some(e.to_string());
            }
        }
    }

    fn joined(&mut self, done: Done) {
        match done {
            Ok((took, r)) => self.record(took, r.map(Some), 1),
            Err(e) => {
                self.failed += 1;
                self.last_error = Some(format!("send task failed: {e}"));
            }
        }
    }

    /// The summary: one `key=value` line, or with `json` one JSON object.
    fn print(&self, secs: f64, json: bool) {
        let rate = self.sent as f64 / secs.max(1e-9);
        let p50 = self.hist.value_at_quantile(0.5) as f64 / 1000.0;
        let p99 = self.hist.value_at_quantile(0.99) as f64 / 1000.0;
        if json {
            let summary = serde_json::json!({
                "sent": self.sent,
                "failed": self.failed,
                "secs": secs,
                "msgs_per_sec": rate,
                "p50_us": p50,
                "p99_us": p99,
                "per_broker": self.per_broker,
                "last_error": self.last_error,
            });
            println!("{summary}");
            return;
        }
        let brokers: Vec<String> = self
            .per_broker
            .iter()
            .map(|(b, n)| format!("{b}:{n}"))
            .collect();
        println!(
            "sent={} failed={} secs={secs:.3} msgs_per_sec={rate:.0} p50_us={p50:.1} p99_us={p99:.1} per_broker={}",
            self.sent,
            self.failed,
            brokers.join(",")
        );
    }
}

type Done = Result<
    (
        Duration,
        Result<rmq_producer::SendResult, rmq_producer::ProducerError>,
    ),
    tokio::task::JoinError,
>;
