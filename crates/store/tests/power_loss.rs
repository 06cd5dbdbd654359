//! Power-loss safety, as a property test over the store's write path (issue 27).
//!
//! A kill -9 keeps the page cache; a power loss keeps only what an fsync covered. The store's
//! one durability seam (`durable::sim`, feature `crash-sim`) shows every fsync, msync and
//! directory sync to an observer, which keeps a copy of each file as of its last successful
//! sync and the names of each directory as of its last sync. At a random sync the power
//! fails: the image of the disk is built from those copies, with every 512-byte sector
//! written since a file's last sync either reached the disk or not (at random, sector by
//! sector: torn writes), and of the names created since a directory's last sync, a random
//! number of the first ones (a journaling filesystem commits them in order; the store's
//! files are named by their start offset, so name order is creation order). The store is
//! then opened on that image and read back through the pull path.
//!
//! What must hold (redb's and fjall's crash tests are the model):
//! - SYNC_FLUSH: every put acknowledged by a group commit (`sync_log` returned) is read back,
//!   at its queue offset, unchanged; ASYNC_FLUSH: every put before a flush job that finished;
//! - recovery keeps exactly a prefix of the puts: each put is there whole or, with every
//!   later put, not at all;
//! - queues are dense: every offset from 0 to the max holds its record (no placeholder).
//!
//! Not modelled: a removed file coming back after a power loss (no store operation in this
//! workload removes one), and torn writes inside a 512-byte sector (disks write sectors
//! atomically).

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use rmq_store::durable::sim::{self, Observer};
use rmq_store::record::{self, Found, Record};
use rmq_store::store::{GetStatus, MessageStore, StoreConfig};
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SECTOR: usize = 512;
const TOPICS: [&str; 3] = ["HOT", "WARM", "COLD"];

/// The disk as a power loss would leave it, and what is durable so far.
struct PowerLoss {
    root: PathBuf,
    state: Mutex<SimState>,
}

struct SimState {
    /// Sync calls seen so far.
    syncs: u64,
    /// The sync at which the power fails.
    crash_at: u64,
    /// Decides each unsynced sector and name.
    rng: u64,
    /// Each file's bytes as of its last successful sync.
    durable: HashMap<PathBuf, Vec<u8>>,
    /// Each directory's names as of its last sync.
    names: HashMap<PathBuf, BTreeSet<OsString>>,
    /// The disk at the power loss: files and their bytes.
    image: Option<Vec<(PathBuf, Vec<u8>)>>,
}

impl SimState {
    fn coin(&mut self) -> bool {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 63 == 1
    }

    /// The image of the disk if the power failed now.
    fn power_loss(&mut self, root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        self.survivors(root, &mut files);
        files
    }

    /// Files under `dir` that survive, with their bytes.
    fn survivors(&mut self, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        // Names created since the directory's last sync: the first few survive.
        let mut new_names_kept = true;
        for e in entries {
            let name = e.file_name();
            if name == "lock" {
                continue;
            }
            let synced_name = self.names.get(dir).is_some_and(|n| n.contains(&name));
            if !synced_name {
                new_names_kept = new_names_kept && self.coin();
                if !new_names_kept {
                    continue;
                }
            }
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                self.survivors(&path, out);
                continue;
            }
            let now = std::fs::read(&path).unwrap();
            let old = self.durable.get(&path).cloned().unwrap_or_default();
            let mut bytes = now.clone();
            for (i, sector) in bytes.chunks_mut(SECTOR).enumerate() {
                let from = i * SECTOR;
                let before: Vec<u8> = (from..from + sector.len())
                    .map(|j| old.get(j).copied().unwrap_or(0))
                    .collect();
                if sector != before.as_slice() && self.coin() {
                    sector.copy_from_slice(&before);
                }
            }
            out.push((path, bytes));
        }
    }
}

impl Observer for PowerLoss {
    fn before_sync(&self, path: &Path) -> std::io::Result<()> {
        if !path.starts_with(&self.root) {
            return Ok(());
        }
        let mut st = self.state.lock().unwrap();
        if st.image.is_none() {
            st.syncs += 1;
            if st.syncs >= st.crash_at {
                let image = st.power_loss(&self.root);
                st.image = Some(image);
            }
        }
        if st.image.is_some() {
            // The machine is off: nothing more becomes durable.
            return Err(std::io::Error::from_raw_os_error(5));
        }
        Ok(())
    }

    fn synced(&self, path: &Path) {
        if !path.starts_with(&self.root) {
            return;
        }
        let mut st = self.state.lock().unwrap();
        if path.is_dir() {
            let names = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            st.names.insert(path.to_owned(), names);
        } else {
            st.durable
                .insert(path.to_owned(), std::fs::read(path).unwrap());
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A put to topic `TOPICS[t]` (queue 0) with a body of `len` bytes.
    Put { t: usize, len: usize },
    /// SYNC_FLUSH's group commit: the puts since the last one are acknowledged when it
    /// returns.
    GroupCommit,
    /// The periodic flush job (queues, index, checkpoint), run to its end.
    Job,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            6 => (prop_oneof![4 => Just(0usize), 2 => Just(1), 1 => Just(2)], 1usize..1500)
                .prop_map(|(t, len)| Op::Put { t, len }),
            3 => Just(Op::GroupCommit),
            1 => Just(Op::Job),
        ],
        1..160,
    )
}

fn config(root: &Path, sync: bool) -> StoreConfig {
    StoreConfig {
        // Small files: segment rolls and queue-file rolls happen in every case.
        commit_log_segment_size: 16 * 1024,
        // 64 entries: entries straddle 512-byte sectors (a torn entry is possible).
        consume_queue_file_size: 64 * 20,
        sync_flush: sync,
        message_index: false,
        ..StoreConfig::new(root)
    }
}

fn message(t: usize, n: usize, len: usize) -> Record {
    let mut body = format!("{}#{n}#", TOPICS[t]).into_bytes();
    body.resize(len.max(body.len()), b'a' + (n % 26) as u8);
    support::record(TOPICS[t], 0, body, format!("UNIQ_KEY\u{1}{n:032X}\u{2}"))
}

/// A put the workload made: where it went and what it holds.
struct Put {
    t: usize,
    queue_offset: u64,
    end: u64,
    body: Bytes,
    acknowledged: bool,
}

/// Runs `ops` on a store under `root` until the power fails at sync number `crash_at` (or
/// the ops end, then it fails there), opens the disk's image, and checks it.
fn run_case(ops: &[Op], crash_at: u64, seed: u64, sync: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let sim = Arc::new(PowerLoss {
        root: root.clone(),
        state: Mutex::new(SimState {
            syncs: 0,
            crash_at,
            rng: seed | 1,
            durable: HashMap::new(),
            names: HashMap::new(),
            image: None,
        }),
    });
    sim::set_observer(Some(sim.clone()));
    let mut puts: Vec<Put> = Vec::new();
    let mut unacked_from = 0;
    let crashed = |sim: &PowerLoss| sim.state.lock().unwrap().image.is_some();
    // An open that fails is a power failure inside it: nothing to run.
    if let Ok(mut store) = MessageStore::open(config(&root, sync)) {
        {
            for op in ops {
                if crashed(&sim) {
                    break;
                }
                match op {
                    Op::Put { t, len } => {
                        let m = message(*t, puts.len(), *len);
                        let body = m.body.clone();
                        match store.put_unflushed(m) {
                            Ok(r) => puts.push(Put {
                                t: *t,
                                queue_offset: r.queue_offset,
                                end: r.physical_offset + u64::from(r.size),
                                body,
                                acknowledged: false,
                            }),
                            Err(_) => break, // the power failed inside it (a roll's sync)
                        }
                    }
                    Op::GroupCommit if sync => {
                        if store.sync_log().is_ok() {
                            for p in &mut puts[unacked_from..] {
                                p.acknowledged = true;
                            }
                            unacked_from = puts.len();
                        }
                    }
                    Op::GroupCommit => {}
                    Op::Job => {
                        let upto = puts.len();
                        if store.take_sync_job().and_then(|j| j.run()).is_ok() && !sync {
                            // ASYNC_FLUSH: a finished flush job makes what it covered durable.
                            for p in &mut puts[unacked_from..upto] {
                                p.acknowledged = true;
                            }
                            unacked_from = upto;
                        }
                    }
                }
            }
            // The power fails now if it has not yet: nothing after this is durable.
            {
                let mut st = sim.state.lock().unwrap();
                if st.image.is_none() {
                    let image = st.power_loss(&root);
                    st.image = Some(image);
                }
            }
            drop(store);
        }
    }
    sim::set_observer(None);
    let image = sim.state.lock().unwrap().image.take().unwrap_or_default();

    // The machine restarts on what reached the disk.
    let after = dir.path().join("after");
    for (path, bytes) in &image {
        let to = after.join(path.strip_prefix(&root).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, bytes).unwrap();
    }
    std::fs::create_dir_all(&after).unwrap();
    let store = MessageStore::open(config(&after, sync))
        .map_err(|e| TestCaseError::fail(format!("recovery failed: {e}")))?;
    let (_, log_end) = store.log_range();

    // Exactly a prefix: a put is there whole iff it ends within the recovered log.
    let kept = puts.iter().take_while(|p| p.end <= log_end).count();
    for (i, p) in puts.iter().enumerate() {
        if p.acknowledged {
            prop_assert!(
                i < kept,
                "acknowledged put {i} ({} offset {}) lost: log ends at {log_end}, it at {}",
                TOPICS[p.t],
                p.queue_offset,
                p.end
            );
        }
    }
    for (t, topic) in TOPICS.iter().enumerate() {
        let expected: Vec<&Put> = puts[..kept].iter().filter(|p| p.t == t).collect();
        prop_assert_eq!(
            store.max_offset(topic, 0),
            expected.len() as u64,
            "{} holds another number of records than the kept prefix",
            topic
        );
        // Dense, through the pull path.
        let mut offset = 0u64;
        while offset < expected.len() as u64 {
            let r = store
                .get_message(topic, 0, offset, 16, 1 << 20, None)
                .unwrap();
            prop_assert_eq!(r.status, GetStatus::Found, "{} at {}", topic, offset);
            for (at, raw) in &r.records {
                prop_assert_eq!(*at, offset, "{}: offset {} skipped", topic, offset);
                let Ok(Found::Message(rec, _)) = record::decode(raw, true) else {
                    return Err(TestCaseError::fail("not a record"));
                };
                let want = expected[offset as usize];
                prop_assert_eq!(rec.queue_offset as u64, want.queue_offset);
                prop_assert_eq!(&rec.body, &want.body);
                offset += 1;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// One test function for the process: the observer is process-wide. Both flush modes.
    #[test]
    fn a_power_loss_keeps_every_acknowledged_put_and_exactly_a_prefix(
        ops in ops(),
        crash_at in 1u64..200,
        seed in any::<u64>(),
        sync in any::<bool>(),
    ) {
        run_case(&ops, crash_at, seed, sync)?;
    }
}
