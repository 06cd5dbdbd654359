//! The load of one cycle, in-process through rmq-producer so every SendResult is seen: one
//! queue flooded with async sends (many in flight), nearly idle queues getting a few sync and
//! async sends a second and now and then a burst of async sends (the report's COLD), batches
//! and delayed sends (levels 1-2) on a four-queue topic and the idle ones, and a trickle for
//! the send-back consumer. Each message is in the ledger before it leaves, and its
//! acknowledgement after it comes back.

use super::ledger::{body, Kind, Shared};
use super::rng::Rng;
use super::topics::{COLD, HOT, MIX, RETRY_SOURCE};
use rmq_producer::{Message, Producer, ProducerError, SendResult, SendStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// How hard the load pushes.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// Async sends in flight on the hot queue at most.
    pub hot_inflight: usize,
    /// The hot queue's sends a second at most (0: no cap).
    pub hot_rate: u32,
    /// SYNC_FLUSH: only SEND_OK counts as acknowledged (ASYNC_FLUSH: every stored status).
    pub sync_flush: bool,
    /// The cycle (recorded with each acknowledgement).
    pub cycle: u32,
}

/// A running load; [`Load::stop`] ends it.
pub struct Load {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    inflight: Arc<AtomicUsize>,
    /// Counts the idle queues' bursts whose every send was acknowledged.
    pub cold_bursts: watch::Receiver<u64>,
}

/// Sends and records.
struct Sender {
    producer: Producer,
    ledger: Shared,
    run: String,
    config: LoadConfig,
    inflight: Arc<AtomicUsize>,
}

/// One send in flight (counted until dropped).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(n: &Arc<AtomicUsize>) -> InFlight {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a single message goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sync,
    Async,
}

impl Sender {
    fn lock(&self) -> std::sync::MutexGuard<'_, super::ledger::Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, first: u64, n: usize, r: Result<SendResult, ProducerError>) -> bool {
        let mut l = self.lock();
        match r {
            Ok(r) if r.status == SendStatus::SendOk || !self.config.sync_flush => {
                l.ack(
                    first,
                    n,
                    r.queue.queue_id,
                    r.queue_offset,
                    self.config.cycle,
                );
                true
            }
            Ok(_) => {
                l.not_ok += n as u64;
                false
            }
            Err(_) => {
                l.failed += n as u64;
                false
            }
        }
    }

    /// One message; whether it was acknowledged.
    async fn one(&self, topic: &'static str, kind: Kind, delay: u8, mode: Mode) -> bool {
        let _f = InFlight::new(&self.inflight);
        let counter = self.lock().attempt(topic, kind, delay, 1);
        let mut msg = Message::new(topic, body(&self.run, counter));
        if delay > 0 {
            msg = msg.with_delay_level(i32::from(delay));
        }
        let r = match mode {
            Mode::Sync => self.producer.send(msg).await,
            Mode::Async => self.producer.send_async(msg).await,
        };
        self.record(counter, 1, r)
    }

    /// A batch of `n`; whether it was acknowledged.
    async fn batch(&self, topic: &'static str, n: usize, mode: Mode) -> bool {
        let _f = InFlight::new(&self.inflight);
        let first = self.lock().attempt(topic, Kind::Batch, 0, n);
        let msgs: Vec<Message> = (0..n as u64)
            .map(|i| Message::new(topic, body(&self.run, first + i)))
            .collect();
        let r = match mode {
            Mode::Sync => self.producer.send_batch(msgs).await,
            Mode::Async => self.producer.send_batch_async(msgs).await,
        };
        self.record(first, n, r)
    }
}

/// Sleeps `d` unless the load stops first; false when it stopped.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

fn ms(rng: &mut Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.range(lo, hi))
}

/// The flooded queue: async sends, `hot_inflight` at once, at most `hot_rate` a second.
async fn hot(s: Arc<Sender>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(s.config.hot_inflight.max(1)));
    let started = Instant::now();
    let mut n = 0u64;
    loop {
        if s.config.hot_rate > 0 {
            let due = started + Duration::from_secs_f64(n as f64 / f64::from(s.config.hot_rate));
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() && !pause(&mut stop, wait).await {
                return;
            }
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = stop.changed() => return,
        };
        let Ok(permit) = permit else { return };
        if *stop.borrow() {
            return;
        }
        let s = s.clone();
        tokio::spawn(async move {
            s.one(HOT, Kind::Hot, 0, Mode::Async).await;
            drop(permit);
        });
        n += 1;
    }
}

/// A nearly idle queue: a send every 0.1-0.6 s (sync, async or delayed), now and then a burst
/// of async sends; `bursts` counts the bursts acknowledged whole.
async fn cold(
    s: Arc<Sender>,
    topic: &'static str,
    mut rng: Rng,
    mut stop: watch::Receiver<bool>,
    bursts: watch::Sender<u64>,
) {
    while pause(&mut stop, ms(&mut rng, 100, 600)).await {
        match rng.range(0, 9) {
            0..=4 => {
                s.one(topic, Kind::Cold, 0, Mode::Sync).await;
            }
            5..=6 => {
                s.one(topic, Kind::Cold, 0, Mode::Async).await;
            }
            7 => {
                let level = rng.range(1, 2) as u8;
                s.one(topic, Kind::Delayed, level, Mode::Sync).await;
            }
            _ => {
                let most = if rng.chance(0.3) { 3000 } else { 300 };
                let n = rng.range(20, most);
                let sends = (0..n).map(|_| s.one(topic, Kind::Cold, 0, Mode::Async));
                let acked = futures_util::future::join_all(sends).await;
                if acked.iter().all(|a| *a) {
                    bursts.send_modify(|b| *b += 1);
                }
            }
        }
    }
}

/// Batches (2-16 messages, sync or async) and delayed sends on the four-queue topic.
async fn mix(s: Arc<Sender>, mut rng: Rng, mut stop: watch::Receiver<bool>) {
    while pause(&mut stop, ms(&mut rng, 30, 150)).await {
        let n = rng.range(2, 16) as usize;
        match rng.range(0, 9) {
            0..=4 => {
                s.batch(MIX, n, Mode::Sync).await;
            }
            5..=6 => {
                s.batch(MIX, n, Mode::Async).await;
            }
            _ => {
                let level = rng.range(1, 2) as u8;
                let mode = if rng.chance(0.5) {
                    Mode::Sync
                } else {
                    Mode::Async
                };
                s.one(MIX, Kind::Delayed, level, mode).await;
            }
        }
    }
}

/// The send-back consumer's topic: a send every 20-120 ms, sync or async.
async fn retry_source(s: Arc<Sender>, mut rng: Rng, mut stop: watch::Receiver<bool>) {
    while pause(&mut stop, ms(&mut rng, 20, 120)).await {
        let mode = if rng.chance(0.5) {
            Mode::Sync
        } else {
            Mode::Async
        };
        s.one(RETRY_SOURCE, Kind::Retry, 0, mode).await;
    }
}

impl Load {
    /// Starts every sender of the load.
    pub fn start(producer: &Producer, ledger: &Shared, rng: &mut Rng, config: LoadConfig) -> Load {
        let (stop, stop_rx) = watch::channel(false);
        let (bursts, cold_bursts) = watch::channel(0u64);
        let inflight = Arc::new(AtomicUsize::new(0));
        let run = ledger.lock().unwrap_or_else(|p| p.into_inner()).run.clone();
        let s = Arc::new(Sender {
            producer: producer.clone(),
            ledger: ledger.clone(),
            run,
            config,
            inflight: inflight.clone(),
        });
        let mut tasks = vec![tokio::spawn(hot(s.clone(), stop_rx.clone()))];
        for topic in COLD {
            tasks.push(tokio::spawn(cold(
                s.clone(),
                topic,
                rng.fork(),
                stop_rx.clone(),
                bursts.clone(),
            )));
        }
        tasks.push(tokio::spawn(mix(s.clone(), rng.fork(), stop_rx.clone())));
        tasks.push(tokio::spawn(retry_source(s, rng.fork(), stop_rx)));
        Load {
            stop,
            tasks,
            inflight,
            cold_bursts,
        }
    }

    /// Stops sending and waits (up to `timeout`) for the sends in flight to be answered or to
    /// fail; returns how many were still in flight at the deadline (their answers, if any
    /// come, are still recorded).
    pub async fn stop(self, timeout: Duration) -> usize {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + timeout;
        for t in self.tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            let abort = t.abort_handle();
            if tokio::time::timeout(left, t).await.is_err() {
                abort.abort();
            }
        }
        while self.inflight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.inflight.load(Ordering::SeqCst)
    }
}
