//! `rmq torture`: crash torture for "acknowledged means delivered, after any crash" (issue 27).
//! It runs `rmq standalone` (this binary) as a child on a scratch store, loads it in-process
//! through rmq-producer (a flooded queue, nearly idle ones, sync, async, batch, delayed sends,
//! and give-backs through an rmq-consumer push consumer), SIGKILLs it at random moments (and
//! during recovery), runs `rmq store verify` while it is down, restarts it on the same store and
//! ports, and after each restart reads every queue back through PULL_MESSAGE: every
//! acknowledged message must come back by its unique id, from dense queues, and nothing else.
//!
//! ```sh
//! rmq torture --cycles 15 --flush both          # the CI run (crates/cli/tests/torture.rs)
//! rmq torture --duration 300 --seed 42 --json   # a long run, repeatable choices
//! ```
//!
//! Files: `workload` (the senders), `send_back_consumer`, `broker_process` (the child and its
//! kill guard), `store_verify`, `reader` (pulls), `checks` (the verdict, a pure function),
//! `ledger` (what was sent and acknowledged), `timeline` (when the broker served), `cycles`
//! (one flush mode's kill/restart loop), `report` (summary lines), `topics`, `rng`.

mod broker_process;
mod checks;
mod cycles;
mod ledger;
mod reader;
mod report;
mod rng;
mod send_back_consumer;
mod store_verify;
mod timeline;
mod topics;
mod workload;

use clap::{Args, ValueEnum};
use cycles::{run_mode, ModeOptions};
use report::ModeReport;
use rng::Rng;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Which flush modes to torture.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FlushArg {
    /// ASYNC_FLUSH only.
    Async,
    /// SYNC_FLUSH only.
    Sync,
    /// ASYNC_FLUSH, then SYNC_FLUSH.
    Both,
}

/// Arguments of `rmq torture`.
#[derive(Args)]
#[command(after_long_help = "\
Each cycle: load the broker, SIGKILL it (at a random moment, or a few ms after an idle queue's \
burst of async sends was acknowledged), run `rmq store verify` on the store, sometimes SIGKILL \
the restarting broker a few ms in (recovery), restart it, then read every queue of every topic \
used from its min to its max offset through PULL_MESSAGE and check: every acknowledged message \
is there by its unique id, at the offset its SendResult named (excused only below the queue's \
min offset after retention); nothing comes back that was never sent; no offset is skipped; due \
delayed messages (levels 1-2) reached their topic and acknowledged give-backs reached \
%RETRY%<group>; the send-back group's committed offsets never pass what its listener \
processed. Under SYNC_FLUSH only SEND_OK counts as acknowledged, under ASYNC_FLUSH every stored \
status (a process crash keeps the page cache).

Prints one line per flush mode (cycles, kills, acknowledged, lost, duplicates, delayed \
due/delivered, ...) and the first violations; exits 1 on any loss or violation.")]
pub struct TortureArgs {
    /// Flush modes to run, one after the other.
    #[arg(long, value_enum, default_value = "both")]
    flush: FlushArg,
    /// Kill/restart cycles per flush mode (20 when neither this nor --duration is given).
    #[arg(long)]
    cycles: Option<u32>,
    /// Seconds per flush mode: no cycle starts after this.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Seed of every random choice (printed; from the clock by default).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the stores under DIR (DIR/async, DIR/sync) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Longest a broker serves before its kill, in ms (the shortest is a tenth of it).
    #[arg(long, default_value_t = 3000)]
    max_uptime_ms: u64,
    /// Every Nth restart runs retention (every commit-log segment but the active one expires)
    /// and serves at least 11.5 s, for the store's first round; 0: never.
    #[arg(long, default_value_t = 6)]
    retention_every: u32,
    /// Async sends in flight on the flooded queue.
    #[arg(long, default_value_t = 128)]
    hot_inflight: usize,
    /// Sends a second on the flooded queue at most (0: as fast as they go). Every check reads
    /// the whole store (retention deletes at most 10 segments a round), so this sets how fast
    /// checks slow down in a long run.
    #[arg(long, default_value_t = 5_000)]
    hot_rate: u32,
    /// One JSON object per flush mode instead of the summary lines.
    #[arg(long)]
    json: bool,
    /// Keep the temporary stores even when the run passes.
    #[arg(long)]
    keep: bool,
}

/// A seed from the clock and the process id.
fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id()).rotate_left(32)) % 1_000_000_000
}

/// Runs `rmq torture`.
pub fn run(a: TortureArgs) -> ExitCode {
    let seed = a.seed.unwrap_or_else(clock_seed);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: this binary's path: {e}");
            return ExitCode::from(2);
        }
    };
    let temp = a.store.is_none();
    let root = a.store.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rmq-torture-{seed}-{}", std::process::id()))
    });
    eprintln!(
        "torture seed={seed} (repeat with --seed {seed}); stores under {}",
        root.display()
    );
    let modes: &[bool] = match a.flush {
        FlushArg::Async => &[false],
        FlushArg::Sync => &[true],
        FlushArg::Both => &[false, true],
    };
    let cycles = match (a.cycles, a.duration) {
        (None, None) => Some(20),
        (c, _) => c,
    };
    let max_uptime = Duration::from_millis(a.max_uptime_ms.max(10));
    let options: Vec<ModeOptions> = modes
        .iter()
        .map(|&sync_flush| {
            let label = if sync_flush { "sync" } else { "async" };
            ModeOptions {
                exe: exe.clone(),
                dir: root.join(label),
                sync_flush,
                cycles,
                duration: a.duration.map(Duration::from_secs),
                max_uptime,
                retention_every: a.retention_every,
                hot_inflight: a.hot_inflight,
                hot_rate: a.hot_rate,
                run: format!("{seed}{}", &label[..1]),
                label,
            }
        })
        .collect();
    // A safety net over the per-step deadlines: a mode that overruns this is a failure.
    let per_mode = match (cycles, a.duration) {
        (Some(n), _) => (max_uptime + Duration::from_secs(90)) * n + Duration::from_secs(120),
        (None, Some(d)) => Duration::from_secs(d + 600),
        (None, None) => unreachable!("cycles default to 20"),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json = a.json;
    let reports = runtime.block_on(async move {
        let all = async {
            let mut rng = Rng::new(seed);
            let mut reports = Vec::new();
            for o in &options {
                let mode_rng = rng.fork();
                let r = match tokio::time::timeout(per_mode, run_mode(o, mode_rng)).await {
                    Ok(r) => r,
                    Err(_) => {
                        let mut r = ModeReport::new(
                            if o.sync_flush {
                                "SYNC_FLUSH"
                            } else {
                                "ASYNC_FLUSH"
                            },
                            o.run.clone(),
                        );
                        r.problem(0, "harness", format!("not done within {per_mode:?}"));
                        r
                    }
                };
                print_report(&r, seed, json);
                reports.push(r);
            }
            reports
        };
        // Dropping the run's future kills the broker (its guard), on Ctrl-C as on any end.
        tokio::select! {
            r = all => Some(r),
            _ = crate::namesrv_cmd::stop_signal() => None,
        }
    });
    // Background tasks (clients, consumers) must not outlive the brokers' guards by long.
    runtime.shutdown_timeout(Duration::from_secs(2));
    let Some(reports) = reports else {
        eprintln!("interrupted; stores kept under {}", root.display());
        return ExitCode::from(130);
    };
    let ok = reports.iter().all(ModeReport::ok);
    if temp && ok && !a.keep {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        eprintln!("stores and broker logs kept under {}", root.display());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_report(r: &ModeReport, seed: u64, json: bool) {
    if json {
        println!("{}", r.json(seed));
        return;
    }
    println!("{}", r.line());
    if !r.ok() {
        println!("  violations: {}", r.breakdown());
        println!(
            "  the first of each kind ({} in all, seed {seed}, message ids are <run>-<counter>):",
            r.violations
        );
        for v in &r.shown {
            println!("  {v}");
        }
    }
}
