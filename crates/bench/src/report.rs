//! One run's result: counts, rates and latency percentiles, as a line and as JSON.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;

/// Latencies are recorded in nanoseconds, from 1 ns to 60 s, with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid")
}

/// The result of one load run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was measured ("ours", "raw", an address...).
    pub target: String,
    /// sync, async or oneway.
    pub mode: String,
    /// json or rocketmq.
    pub serialize: String,
    /// Body bytes per request.
    pub body: usize,
    /// Connections.
    pub conns: usize,
    /// Requests in flight per connection.
    pub inflight: usize,
    /// Completed operations in the measured window (oneway: frames handed to the socket).
    pub ops: u64,
    /// Length of the measured window in seconds.
    pub secs: f64,
    /// ops / secs.
    pub ops_per_sec: f64,
    /// Body megabytes (10^6) per second, one direction.
    pub mb_per_sec: f64,
    /// Latency percentiles in microseconds.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Requests sent in total, warm-up included (what a oneway server should have received).
    pub sent: u64,
    /// Failed requests: error responses, timeouts, connection errors.
    pub errors: u64,
    /// Requests sent but never answered by the end of the run's grace period.
    pub unanswered: u64,
    /// What the server says it received, when it can tell (oneway runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_received: Option<u64>,
    /// Server CPU time per operation in microseconds, when measurable (in-process servers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_op: Option<f64>,
}

impl Report {
    /// Builds a report from the measured counts and the merged histogram.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: &str,
        spec: &crate::LoadSpec,
        ops: u64,
        secs: f64,
        hist: &Histogram<u64>,
        errors: u64,
        unanswered: u64,
    ) -> Self {
        let us = |q: f64| {
            if hist.is_empty() {
                0.0
            } else {
                hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let ops_per_sec = if secs > 0.0 { ops as f64 / secs } else { 0.0 };
        Report {
            target: target.to_owned(),
            mode: spec.mode.as_str().to_owned(),
            serialize: spec.serialize_name().to_owned(),
            body: spec.body,
            conns: spec.conns,
            inflight: spec.inflight,
            ops,
            secs,
            ops_per_sec,
            mb_per_sec: ops_per_sec * spec.body as f64 / 1e6,
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            sent: 0,
            errors,
            unanswered,
            server_received: None,
            server_cpu_us_per_op: None,
        }
    }
}

impl fmt::Display for Report {
    /// The one machine-readable summary line: space-separated key=value pairs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "target={} mode={} serialize={} body={} conns={} inflight={} ops={} ops_s={:.0} mb_s={:.2} \
             p50_us={:.1} p90_us={:.1} p99_us={:.1} p999_us={:.1} errors={} unanswered={}",
            self.target,
            self.mode,
            self.serialize,
            self.body,
            self.conns,
            self.inflight,
            self.ops,
            self.ops_per_sec,
            self.mb_per_sec,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.errors,
            self.unanswered
        )?;
        if let Some(n) = self.server_received {
            write!(f, " sent={} server_received={n}", self.sent)?;
        }
        if let Some(c) = self.server_cpu_us_per_op {
            write!(f, " server_cpu_us_per_op={c:.2}")?;
        }
        Ok(())
    }
}
