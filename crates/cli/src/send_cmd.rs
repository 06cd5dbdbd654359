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
    #[command(flatten)]
    common: Common,
}

impl SendArgs {
    /// -v given.
    pub fn verbose(&self) -> bool {
        self.common.verbose
    }
}

/// Runs `rmq send`.
pub fn run(a: SendArgs) -> ExitCode {
    let body: bytes::Bytes = match a.body.strip_prefix('@') {
        Some(path) => match std::fs::read(path) {
            Ok(b) => b.into(),
            Err(e) => {
                eprintln!("error: body file {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => a.body.clone().into_bytes().into(),
    };
    if a.batch > 1 && !matches!(a.mode, SendMode::Sync) {
        eprintln!("error: --batch works with --mode sync");
        return ExitCode::from(2);
    }
    let (addrs, tls, acl) = match a
        .common
        .namesrv_addrs()
        .and_then(|n| Ok((n, a.common.client_tls()?, a.common.acl_hook()?)))
    {
        Ok(x) => x,
        Err(f) => {
            eprintln!("error: {}", f.message);
            return ExitCode::from(f.exit);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let mut config = ProducerConfig::new(&a.group, &[]);
        config.namesrv_addrs = addrs;
        config.send_timeout = Duration::from_millis(a.common.timeout.max(1));
        config.client.tls = tls;
        config.rpc_hooks.0.extend(acl);
        let producer = match Producer::start(config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let make = |i: u64| {
            let mut m = Message::new(a.topic.clone(), body.clone());
            if let Some(t) = &a.tag {
                m = m.with_tags(t);
            }
            if let Some(k) = &a.keys {
                let keys: Vec<&str> = k.split_whitespace().collect();
                m = m.with_keys(&keys);
            }
            m.set_property("rmqSeq", i.to_string());
            m
        };
        let bar = ProgressBar::new(a.count);
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} {per_sec} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        let (mut sent, mut failed) = (0u64, 0u64);
        let mut last_error = None;
        let started = Instant::now();
        match a.mode {
            SendMode::Sync if a.batch > 1 => {
                let mut i = 0;
                while i < a.count {
                    let n = (a.count - i).min(a.batch as u64);
                    let batch: Vec<Message> = (i..i + n).map(make).collect();
                    let t0 = Instant::now();
                    let r = producer.send_batch(batch).await;
                    let _ = hist.record(t0.elapsed().as_nanos().max(1) as u64);
                    match r {
                        Ok(_) => sent += n,
                        Err(e) => {
                            failed += n;
                            last_error = Some(e.to_string());
                        }
                    }
                    bar.inc(n);
                    i += n;
                }
            }
            SendMode::Sync | SendMode::Oneway => {
                for i in 0..a.count {
                    let t0 = Instant::now();
                    let r = match a.mode {
                        SendMode::Oneway => producer.send_oneway(make(i)).await.map(|_| None),
                        _ => producer.send(make(i)).await.map(Some),
                    };
                    let _ = hist.record(t0.elapsed().as_nanos().max(1) as u64);
                    match r {
                        Ok(Some(res)) if a.count == 1 => {
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
                            sent += 1;
                        }
                        Ok(_) => sent += 1,
                        Err(e) => {
                            failed += 1;
                            last_error = Some(e.to_string());
                        }
                    }
                    bar.inc(1);
                }
            }
            SendMode::Async => {
                let sem = Arc::new(tokio::sync::Semaphore::new(a.inflight.max(1)));
                let mut set = tokio::task::JoinSet::new();
                for i in 0..a.count {
                    let permit = sem.clone().acquire_owned().await.expect("never closed");
                    let fut = producer.send_async(make(i));
                    set.spawn(async move {
                        let t0 = Instant::now();
                        let r = fut.await;
                        drop(permit);
                        (t0.elapsed(), r)
                    });
                    while let Some(done) = set.try_join_next() {
                        tally(done, &mut hist, &mut sent, &mut failed, &mut last_error, &bar);
                    }
                }
                while let Some(done) = set.join_next().await {
                    tally(done, &mut hist, &mut sent, &mut failed, &mut last_error, &bar);
                }
            }
        }
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "sent={sent} failed={failed} secs={secs:.3} msgs_per_sec={:.0} p50_us={:.1} p99_us={:.1}",
            sent as f64 / secs.max(1e-9),
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0
        );
        producer.shutdown().await;
        match last_error {
            Some(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
            None => ExitCode::SUCCESS,
        }
    })
}

type Done = Result<
    (
        Duration,
        Result<rmq_producer::SendResult, rmq_producer::ProducerError>,
    ),
    tokio::task::JoinError,
>;

fn tally(
    done: Done,
    hist: &mut Histogram<u64>,
    sent: &mut u64,
    failed: &mut u64,
    last_error: &mut Option<String>,
    bar: &ProgressBar,
) {
    if let Ok((took, r)) = done {
        let _ = hist.record(took.as_nanos().max(1) as u64);
        match r {
            Ok(_) => *sent += 1,
            Err(e) => {
                *failed += 1;
                *last_error = Some(e.to_string());
            }
        }
    }
    bar.inc(1);
}
