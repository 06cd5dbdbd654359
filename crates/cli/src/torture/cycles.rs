//! One flush mode's run: start the broker on a fresh store, create the topics, then cycle:
//! load, SIGKILL at a random moment (or right after an idle queue's burst was acknowledged),
//! `rmq store verify` while it is down, sometimes SIGKILL again a few ms into the restart
//! (recovery), restart on the same store and ports, and check everything acknowledged so far
//! by reading every queue back. It ends with a graceful stop and a last verify.

use super::broker_process::{free_ports, BrokerProcess};
use super::checks::{check, Committed};
use super::ledger::{parse_body, Ledger, Shared};
use super::reader::{committed_offset, read_queue};
use super::report::ModeReport;
use super::rng::Rng;
use super::send_back_consumer;
use super::store_verify::verify_store;
use super::timeline::Timeline;
use super::topics::{self, GROUP, RETRY_SOURCE, RETRY_TOPIC, SCHEDULE_TOPIC};
use super::workload::{Load, LoadConfig};
use rmq_model::call::GetRouteInfo;
use rmq_model::Caller;
use rmq_producer::{Producer, ProducerConfig};
use rmq_remoting::{ClientConfig, RemotingClient};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A broker gets this long to print `ready:` after a (re)start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// `rmq store verify` gets this long.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(120);
/// A check's reads get this long in all.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// A broker started with retention on serves at least this long: the store's first retention
/// round runs 10 s after it opens (`cleanResourceInterval` is not a broker setting).
const RETENTION_UPTIME: Duration = Duration::from_millis(11_500);
/// Commit-log segments of 256 KiB: a roll every ~1,100 records.
const SEGMENT_BYTES: u64 = 256 * 1024;
/// Consume-queue files of 300 entries.
const QUEUE_FILE_BYTES: u64 = 300 * 20;
/// The periodic flush intervals a restart picks from (queue entries reach their files at the
/// flush: the longer, the more an idle queue holds in memory at a kill).
const FLUSH_INTERVALS_MS: [u64; 4] = [200, 500, 1_000, 3_000];

/// What one mode's run is told.
#[derive(Debug, Clone)]
pub struct ModeOptions {
    /// This binary (the broker and `store verify` run from it).
    pub exe: PathBuf,
    /// The mode's directory: `store/` and `broker.log` go in it.
    pub dir: PathBuf,
    /// SYNC_FLUSH (else ASYNC_FLUSH).
    pub sync_flush: bool,
    /// Kill/restart cycles at most.
    pub cycles: Option<u32>,
    /// No new cycle after this long.
    pub duration: Option<Duration>,
    /// Longest a broker serves before its kill (the shortest is a tenth of it).
    pub max_uptime: Duration,
    /// Every Nth broker start runs retention (0: never).
    pub retention_every: u32,
    /// Hot queue: sends in flight.
    pub hot_inflight: usize,
    /// Hot queue: sends a second at most (0: no cap).
    pub hot_rate: u32,
    /// The run's id in every body.
    pub run: String,
    /// `async` or `sync`, for progress lines.
    pub label: &'static str,
}

/// The `--set` settings of one broker start.
fn settings(sync_flush: bool, flush_ms: u64, retention: bool) -> Vec<String> {
    let mut s = vec![
        format!(
            "flushDiskType={}",
            if sync_flush {
                "SYNC_FLUSH"
            } else {
                "ASYNC_FLUSH"
            }
        ),
        format!("mappedFileSizeCommitLog={SEGMENT_BYTES}"),
        format!("mappedFileSizeConsumeQueue={QUEUE_FILE_BYTES}"),
        format!("flushIntervalCommitLog={flush_ms}"),
        "diskMaxUsedSpaceRatio=95".into(),
    ];
    if retention {
        // Every segment but the one being written is expired, at any hour.
        s.push("fileReservedTime=0".into());
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
        s.push(format!("deleteWhen={}", hours.join(";")));
    }
    s
}

/// One mode's run in progress.
struct ModeRun<'a> {
    o: &'a ModeOptions,
    rng: Rng,
    report: ModeReport,
    ledger: Shared,
    timeline: Timeline,
    client: RemotingClient,
    ports: (u16, u16),
    store: PathBuf,
    broker_addr: String,
    namesrv: String,
    /// How long the last start took to get ready: recovery kills land within it.
    ready_after: Duration,
}

/// Runs one flush mode (see the module doc) and reports it; harness failures are reported as
/// violations too, so the run fails loudly rather than passing on less than it claims.
pub async fn run_mode(o: &ModeOptions, rng: Rng) -> ModeReport {
    let started = Instant::now();
    let flush = if o.sync_flush {
        "SYNC_FLUSH"
    } else {
        "ASYNC_FLUSH"
    };
    let mut report = ModeReport::new(flush, o.run.clone());
    let ports = match std::fs::create_dir_all(&o.dir).and_then(|()| free_ports()) {
        Ok(p) => p,
        Err(e) => {
            report.problem(0, "harness", format!("{}: {e}", o.dir.display()));
            return report;
        }
    };
    let store = o.dir.join("store");
    if std::fs::read_dir(&store).is_ok_and(|mut d| d.next().is_some()) {
        report.problem(
            0,
            "harness",
            format!(
                "{} already holds a store: the run needs an empty directory",
                store.display()
            ),
        );
        return report;
    }
    let mut run = ModeRun {
        o,
        rng,
        report,
        ledger: Arc::new(Mutex::new(Ledger::new(o.run.clone()))),
        timeline: Timeline::default(),
        client: RemotingClient::new(ClientConfig::default()),
        ports,
        store,
        broker_addr: format!("127.0.0.1:{}", ports.1),
        namesrv: format!("127.0.0.1:{}", ports.0),
        ready_after: Duration::from_millis(50),
    };
    if let Err(e) = run.cycles().await {
        run.report.problem(run.report.cycles, "harness", e);
    }
    run.report.secs = started.elapsed().as_secs_f64();
    run.report
}

impl ModeRun<'_> {
    fn progress(&self, text: String) {
        eprintln!("[{}] {text}", self.o.label);
    }

    /// Spawns the broker with a random flush interval (and retention if asked).
    fn spawn(&mut self, retention: bool) -> Result<BrokerProcess, String> {
        let flush_ms = FLUSH_INTERVALS_MS[self.rng.range(0, 3) as usize];
        BrokerProcess::spawn(
            &self.o.exe,
            &self.store,
            self.ports,
            &settings(self.o.sync_flush, flush_ms, retention),
            &self.o.dir.join("broker.log"),
        )
        .map_err(|e| format!("rmq standalone: {e}"))
    }

    /// A start that must get ready: on failure the broker (recovery) is at fault.
    async fn start(&mut self, cycle: u32, retention: bool) -> Option<BrokerProcess> {
        let mut b = match self.spawn(retention) {
            Ok(b) => b,
            Err(e) => {
                self.report.problem(cycle, "harness", e);
                return None;
            }
        };
        let spawned = Instant::now();
        match b.wait_ready(READY_TIMEOUT).await {
            Ok(()) => {
                self.ready_after = spawned.elapsed();
                self.timeline.up(Instant::now());
                Some(b)
            }
            Err(e) => {
                self.report.problem(
                    cycle,
                    "not-ready",
                    format!(
                        "the broker {e} (store {}, log {})",
                        self.store.display(),
                        self.o.dir.join("broker.log").display()
                    ),
                );
                None
            }
        }
    }

    /// `rmq store verify` on the store (the broker is down).
    async fn verify(&mut self, cycle: u32) {
        self.report.verify_runs += 1;
        match verify_store(&self.o.exe, &self.store, VERIFY_TIMEOUT).await {
            Ok(problems) => {
                for p in problems {
                    self.report.problem(cycle, "store-verify", p);
                }
            }
            Err(e) => self.report.problem(cycle, "harness", e),
        }
    }

    fn done(&self, cycle: u32, started: Instant) -> bool {
        self.o.cycles.is_some_and(|n| cycle > n)
            || self.o.duration.is_some_and(|d| started.elapsed() >= d)
    }

    async fn cycles(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let Some(first) = self.start(0, false).await else {
            return Ok(());
        };
        // The serving broker; `None` once a restart failed.
        let mut broker = Some(first);
        topics::create(&self.client, &self.broker_addr).await?;
        self.wait_routes().await?;
        let producer = Producer::start(ProducerConfig::new("TortureProducer", &[&self.namesrv]))
            .await
            .map_err(|e| format!("producer: {e}"))?;
        let mut consumer = Some(send_back_consumer::start(&self.namesrv, &self.ledger).await?);
        let mut retention = false;
        let mut cycle = 1;
        while !self.done(cycle, started) {
            if cycle > 1 && self.rng.chance(0.3) {
                // A consumer that starts again from the committed offsets.
                if let Some(c) = consumer.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(20), c.shutdown()).await;
                }
                consumer = Some(send_back_consumer::start(&self.namesrv, &self.ledger).await?);
            }
            let Some(serving) = broker.as_mut() else {
                break;
            };
            let (up, how) = self
                .load_and_kill(serving, &producer, cycle, retention)
                .await;
            let t = Instant::now();
            self.verify(cycle).await;
            let recovery_kills = self.recovery_kills(cycle, retention).await?;
            let verified = t.elapsed();
            retention = self.o.retention_every > 0 && (cycle + 1) % self.o.retention_every == 0;
            let t = Instant::now();
            broker = self.start(cycle, retention).await;
            if broker.is_none() {
                break;
            }
            let restarted = t.elapsed();
            let t = Instant::now();
            self.report.cycles = cycle;
            self.check(cycle).await;
            self.progress(format!(
                "cycle {cycle}: served {:.2} s, killed {how}{}; verify {:.2} s, restart {:.2} s, check {:.2} s; acknowledged {} so far; lost {}, read {}, violations {}",
                up.as_secs_f64(),
                match recovery_kills {
                    0 => String::new(),
                    n => format!(", then {n} kill(s) while restarting"),
                },
                verified.as_secs_f64(),
                restarted.as_secs_f64(),
                t.elapsed().as_secs_f64(),
                self.report.acked,
                self.report.lost,
                self.report.read,
                self.report.violations,
            ));
            cycle += 1;
        }
        if let Some(c) = consumer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), c.shutdown()).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), producer.shutdown()).await;
        if let Some(mut broker) = broker {
            match broker.terminate(Duration::from_secs(30)).await {
                Ok(s) if s.success() => {}
                Ok(s) => self.report.problem(
                    self.report.cycles,
                    "stop",
                    format!("the broker's graceful stop exited with {s}"),
                ),
                Err(e) => self.report.problem(self.report.cycles, "stop", e),
            }
            self.timeline.down(Instant::now());
            self.verify(self.report.cycles).await;
        }
        Ok(())
    }

    /// Runs the load until the kill: at a random moment, or right after an idle queue's
    /// burst was acknowledged (the report's scenario). Returns how long it served and how it
    /// was killed.
    async fn load_and_kill(
        &mut self,
        broker: &mut BrokerProcess,
        producer: &Producer,
        cycle: u32,
        retention: bool,
    ) -> (Duration, &'static str) {
        let max = self.o.max_uptime.as_millis() as u64;
        let mut uptime = Duration::from_millis(self.rng.range(max / 10, max));
        if retention {
            uptime = uptime.max(RETENTION_UPTIME);
        }
        let after_burst = self.rng.chance(0.45);
        let config = LoadConfig {
            hot_inflight: self.o.hot_inflight,
            hot_rate: self.o.hot_rate,
            sync_flush: self.o.sync_flush,
            cycle,
        };
        let load = Load::start(producer, &self.ledger, &mut self.rng, config);
        let t0 = Instant::now();
        let mut how = "at a random moment";
        if after_burst {
            let at_least = if retention {
                RETENTION_UPTIME
            } else {
                Duration::ZERO
            };
            tokio::time::sleep((uptime / 2).max(at_least)).await;
            let mut bursts = load.cold_bursts.clone();
            bursts.borrow_and_update();
            let wait = (uptime / 2).max(Duration::from_secs(3));
            if let Ok(Ok(())) = tokio::time::timeout(wait, bursts.changed()).await {
                tokio::time::sleep(Duration::from_millis(self.rng.range(0, 5))).await;
                how = "right after an idle queue's burst was acknowledged";
            }
        } else {
            tokio::time::sleep(uptime).await;
        }
        let up = t0.elapsed();
        let _ = broker.kill();
        self.timeline.down(Instant::now());
        self.report.kills += 1;
        let left = load.stop(Duration::from_secs(10)).await;
        if left > 0 {
            self.progress(format!(
                "cycle {cycle}: {left} send(s) still unanswered 10 s after the kill"
            ));
        }
        (up, how)
    }

    /// Sometimes kills the restarting broker a few ms in (during recovery: within the time
    /// the last start took to get ready), once or twice, verifying the store after each.
    /// Returns how many.
    async fn recovery_kills(&mut self, cycle: u32, retention: bool) -> Result<u32, String> {
        if !self.rng.chance(0.3) {
            return Ok(0);
        }
        let n = self.rng.range(1, 2) as u32;
        for _ in 0..n {
            let mut b = self.spawn(retention)?;
            let within = self.ready_after.as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(self.rng.range(0, within.max(2)))).await;
            if b.is_ready() {
                self.report.kills += 1;
            } else {
                self.report.recovery_kills += 1;
            }
            let _ = b.kill();
            self.verify(cycle).await;
        }
        Ok(n)
    }

    /// Waits (10 s at most) until the NameServer routes every created topic.
    async fn wait_routes(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for (topic, _) in topics::created() {
            loop {
                let r = self
                    .client
                    .call(
                        &self.namesrv,
                        &GetRouteInfo::new(topic),
                        Duration::from_secs(3),
                    )
                    .await;
                if r.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("no route for {topic} after 10 s"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Reads every queue back and checks it against the ledger (see `checks`).
    async fn check(&mut self, cycle: u32) {
        let now = Instant::now();
        let timeout = Duration::from_secs(10);
        // Committed offsets first: whatever they cover was in the queues the reads see.
        let mut committed = Vec::new();
        for (topic, q) in [(RETRY_SOURCE, 0), (RETRY_SOURCE, 1), (RETRY_TOPIC, 0)] {
            match committed_offset(&self.client, &self.broker_addr, GROUP, topic, q, timeout).await
            {
                Ok(offset) => committed.push(Committed {
                    topic: topic.to_owned(),
                    queue_id: q,
                    offset,
                }),
                Err(e) => self.report.problem(cycle, "query-offset", e),
            }
        }
        let queues: BTreeSet<(&'static str, i32)> = {
            let l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            let mut q: BTreeSet<_> = topics::queues().into_iter().collect();
            for s in &l.sent {
                if let Some(a) = s.ack {
                    q.insert((s.topic, a.queue_id));
                    if s.delay_level > 0 {
                        q.insert((SCHEDULE_TOPIC, i32::from(s.delay_level) - 1));
                    }
                }
            }
            q
        };
        let deadline = Instant::now() + READ_TIMEOUT;
        let run = self.o.run.clone();
        let id_of = move |b: &[u8]| parse_body(&run, b);
        let mut reads = Vec::new();
        for (topic, q) in queues {
            match read_queue(&self.client, &self.broker_addr, topic, q, &id_of, deadline).await {
                Ok(r) => {
                    self.timeline.saw_min(topic, q, r.min, Instant::now());
                    reads.push(r);
                }
                Err(e) => self.report.problem(cycle, "read", e),
            }
        }
        let l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let findings = check(&l, &reads, &committed, &self.timeline, now);
        self.report.sent = l.sent.len() as u64;
        self.report.acked = l.acknowledged();
        self.report.failed = l.failed;
        self.report.not_ok = l.not_ok;
        self.report.gave_back = l.gave_back.len() as u64;
        drop(l);
        self.report.findings(cycle, findings);
    }
}
