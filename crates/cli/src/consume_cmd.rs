//! `rmq consume`: a push consumer on the command line. Prints messages as they arrive (or, with
//! `--print none`, a live rate line), and a summary: consumed, msgs/s, end-to-end latency from
//! each message's born timestamp.

use crate::admin::Common;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use rmq_consumer::{
    listener, ConsumeFrom, ConsumeResult, ConsumerConfig, MessageExt, PushConsumer,
};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to print per message.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PrintMode {
    /// The body as text (lossy UTF-8).
    Body,
    /// Queue, offset, ids, tags, keys, reconsume times.
    Header,
    /// One JSON object per message (body as text).
    Json,
    /// Nothing per message: a live rate and lag line.
    None,
}

/// Arguments of `rmq consume`.
#[derive(Args)]
pub struct ConsumeArgs {
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Consumer group.
    #[arg(long, default_value = "rmq_cli_consumer")]
    group: String,
    /// Tag expression: `*`, `TagA`, `TagA || TagB`.
    #[arg(long, default_value = "*")]
    tag: String,
    /// Where a group without committed offsets starts: first, last, or a time (ms since the
    /// epoch or yyyyMMddHHmmss UTC).
    #[arg(long, default_value = "last")]
    from: String,
    /// Stop (exit 0) after this many messages; messages pulled past them are not acknowledged
    /// (the group's next run starts right after the last one shown).
    #[arg(long)]
    count: Option<u64>,
    /// Orderly consumption: each queue locked and consumed in offset order, one message at a
    /// time.
    #[arg(long)]
    orderly: bool,
    /// What to print per message.
    #[arg(long, value_enum, default_value = "body")]
    print: PrintMode,
    #[command(flatten)]
    common: Common,
}

impl ConsumeArgs {
    /// -v given.
    pub fn verbose(&self) -> bool {
        self.common.verbose
    }
}

fn parse_from(s: &str) -> Result<ConsumeFrom, String> {
    match s {
        "first" => Ok(ConsumeFrom::FirstOffset),
        "last" => Ok(ConsumeFrom::LastOffset),
        t if t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()) => {
            let n = |a: usize, b: usize| t[a..b].parse::<i64>().unwrap_or(0);
            let days = days_from_civil(n(0, 4), n(4, 6), n(6, 8));
            Ok(ConsumeFrom::Timestamp(
                ((days * 24 + n(8, 10)) * 60 + n(10, 12)) * 60_000 + n(12, 14) * 1000,
            ))
        }
        t => t.parse::<i64>().map(ConsumeFrom::Timestamp).map_err(|_| {
            format!("--from {t:?}: first, last, ms since the epoch or yyyyMMddHHmmss")
        }),
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn line(m: &MessageExt, mode: PrintMode) -> Option<String> {
    let body = String::from_utf8_lossy(&m.body);
    match mode {
        PrintMode::Body => Some(body.into_owned()),
        PrintMode::Header => Some(format!(
            "topic={} queue={} offset={} msgId={} offsetMsgId={} tags={} keys={} reconsumeTimes={} bornTimestamp={} bytes={}",
            m.topic,
            m.queue_id,
            m.queue_offset,
            m.msg_id(),
            m.offset_msg_id,
            m.tags().unwrap_or(""),
            m.keys().unwrap_or(""),
            m.reconsume_times,
            m.born_timestamp,
            m.body.len()
        )),
        PrintMode::Json => Some(
            serde_json::json!({
                "topic": m.topic, "queueId": m.queue_id, "queueOffset": m.queue_offset,
                "msgId": m.msg_id(), "offsetMsgId": m.offset_msg_id, "tags": m.tags(),
                "keys": m.keys(), "reconsumeTimes": m.reconsume_times,
                "bornTimestamp": m.born_timestamp, "storeTimestamp": m.store_timestamp,
                "properties": m.properties.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "body": body,
            })
            .to_string(),
        ),
        PrintMode::None => None,
    }
}

/// Runs `rmq consume` until `--count` messages or Ctrl-C.
pub fn run(a: ConsumeArgs) -> ExitCode {
    let from = match parse_from(&a.from) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = ConsumerConfig::new(&a.group, &[]);
    let built = (|| -> Result<(), crate::admin::Failure> {
        config.namesrv_addrs = a.common.namesrv_addrs()?;
        config.client.tls = a.common.client_tls()?;
        config.rpc_hooks.extend(a.common.acl_hook()?);
        Ok(())
    })();
    if let Err(f) = built {
        eprintln!("error: {}", f.message);
        return ExitCode::from(f.exit);
    }
    config.consume_from = from;
    config.orderly = a.orderly;
    // Exactly --count messages are delivered, from each queue the ones next in line, and
    // nothing past them is acknowledged: the group's next run starts right after the last one
    // shown.
    config.max_messages = a.count;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let consumed = Arc::new(AtomicU64::new(0));
        let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("histogram")));
        let done = Arc::new(tokio::sync::Notify::new());
        let (c, l, d, mode, limit) = (
            consumed.clone(),
            latency.clone(),
            done.clone(),
            a.print,
            a.count,
        );
        let out = Arc::new(Mutex::new(()));
        let started = Instant::now();
        let consumer = match PushConsumer::start(
            config,
            &[(&a.topic, &a.tag)],
            listener(move |msgs: Vec<MessageExt>| {
                let (c, l, d, out) = (c.clone(), l.clone(), d.clone(), out.clone());
                async move {
                    let now = now_ms();
                    for m in &msgs {
                        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                        let _ = l
                            .lock()
                            .map(|mut h| h.record((now - m.born_timestamp).max(0) as u64));
                        if let Some(text) = line(m, mode) {
                            let _g = out.lock();
                            println!("{text}");
                        }
                        if limit == Some(n) {
                            d.notify_one();
                        }
                    }
                    ConsumeResult::Success
                }
            }),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let consumer = Arc::new(consumer);
        let rate = (mode == PrintMode::None).then(|| {
            let (c, cons) = (consumed.clone(), consumer.clone());
            tokio::spawn(async move {
                let mut last = 0;
                let mut t = tokio::time::interval(Duration::from_secs(1));
                t.tick().await;
                loop {
                    t.tick().await;
                    let n = c.load(Ordering::SeqCst);
                    let lag = cons.lag().await;
                    eprintln!("consumed={n} msgs_per_sec={} lag={lag}", n - last);
                    last = n;
                }
            })
        });
        tokio::select! {
            _ = done.notified() => {}
            _ = crate::namesrv_cmd::stop_signal() => {}
        }
        let secs = started.elapsed().as_secs_f64();
        if let Some(r) = rate {
            r.abort();
            // The aborted task lets go of its handle once it has stopped.
            let _ = r.await;
        }
        let Ok(consumer) = Arc::try_unwrap(consumer) else {
            eprintln!("error: the consumer is still shared at shutdown");
            return ExitCode::FAILURE;
        };
        consumer.shutdown().await;
        let n = consumed.load(Ordering::SeqCst);
        let h = latency
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| Histogram::new(3).expect("histogram"));
        eprintln!(
            "consumed={n} secs={secs:.3} msgs_per_sec={:.0} e2e_p50_ms={} e2e_p99_ms={}",
            n as f64 / secs.max(1e-9),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
        ExitCode::SUCCESS
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_values() {
        assert_eq!(parse_from("first"), Ok(ConsumeFrom::FirstOffset));
        assert_eq!(
            parse_from("1700000000000"),
            Ok(ConsumeFrom::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            parse_from("20231114221320"),
            Ok(ConsumeFrom::Timestamp(1_700_000_000_000))
        );
        assert!(parse_from("soon").is_err());
    }
}
