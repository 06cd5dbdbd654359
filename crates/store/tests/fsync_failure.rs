//! A failed fsync makes the store refuse writes until it is reopened (issue 27, item 2).
//!
//! After a failed fsync the kernel may have dropped the dirty pages it could not write and
//! report the next fsync of the file as a success (PostgreSQL's fsync lesson): a store that
//! went on writing would acknowledge puts on top of a hole. Failures are injected through the
//! store's one durability seam (`durable::sim`, feature `crash-sim`): the sync does not
//! happen and returns EIO, as a failing disk's would.

mod support;

use rmq_store::durable::sim::{self, Observer};
use rmq_store::record::Record;
use rmq_store::service::{ServiceError, StoreService};
use rmq_store::store::{MessageStore, StoreConfig, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fails every sync of a path under `root` containing `part` while armed.
struct FailSyncs {
    root: PathBuf,
    part: Mutex<String>,
    armed: AtomicBool,
}

impl FailSyncs {
    fn install(root: &Path) -> Arc<FailSyncs> {
        let o = Arc::new(FailSyncs {
            root: root.to_owned(),
            part: Mutex::new(String::new()),
            armed: AtomicBool::new(false),
        });
        sim::set_observer(Some(o.clone()));
        o
    }

    fn arm(&self, part: &str) {
        *self.part.lock().unwrap() = part.to_owned();
        self.armed.store(true, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Observer for FailSyncs {
    fn before_sync(&self, path: &Path) -> std::io::Result<()> {
        let hit = self.armed.load(Ordering::SeqCst)
            && path.starts_with(&self.root)
            && path
                .to_string_lossy()
                .contains(self.part.lock().unwrap().as_str());
        if hit {
            Err(std::io::Error::from_raw_os_error(5)) // EIO
        } else {
            Ok(())
        }
    }

    fn synced(&self, _: &Path) {}
}

fn config(root: &Path, sync: bool) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 256 * 1024,
        consume_queue_file_size: 1000 * 20,
        sync_flush: sync,
        message_index: false,
        ..StoreConfig::new(root)
    }
}

fn message(i: u64) -> Record {
    support::record("F", 0, format!("m{i}"), "")
}

/// One test for the process: the observer is process-wide.
#[test]
fn a_failed_fsync_stops_writes_until_the_store_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let fail = FailSyncs::install(dir.path());

    // SYNC_FLUSH, in-process: the put whose fsync fails is refused, and so is every later
    // one, although the disk "works" again.
    let a = dir.path().join("a");
    let mut store = MessageStore::open(config(&a, true)).unwrap();
    store.put(message(0)).unwrap();
    fail.arm("commitlog");
    let e = store.put(message(1)).unwrap_err();
    assert!(e.to_string().contains("Input/output error"), "{e}");
    fail.disarm();
    for i in 2..4 {
        match store.put(message(i)) {
            Err(StoreError::FlushFailed(why)) => assert!(why.contains("Input/output"), "{why}"),
            other => panic!("a put after a failed fsync: {other:?}"),
        }
    }
    assert!(store.write_failure().is_some());
    drop(store);
    // Reopened: recovery takes what is on disk, and writes are taken again.
    let mut store = MessageStore::open(config(&a, true)).unwrap();
    assert!(store.write_failure().is_none());
    assert!(
        store.max_offset("F", 0) >= 1,
        "the acknowledged put is there"
    );
    store.put(message(4)).unwrap();
    drop(store);

    // Through the store thread: a group commit's failed fsync fails its puts and every
    // later one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = dir.path().join("b");
        let svc = StoreService::start(config(&b, true), Duration::from_secs(3600)).unwrap();
        svc.put(message(0)).await.unwrap();
        fail.arm("commitlog");
        assert!(svc.put(message(1)).await.is_err());
        fail.disarm();
        match svc.put(message(2)).await {
            Err(ServiceError::Store(e)) => {
                assert!(matches!(*e, StoreError::FlushFailed(_)), "{e}")
            }
            other => panic!("a put after a failed group commit: {other:?}"),
        }
        let why = svc
            .run(|s| s.write_failure().map(str::to_owned))
            .await
            .unwrap();
        assert!(why.is_some_and(|w| w.contains("Input/output")));
        svc.close().await;

        // ASYNC_FLUSH: a periodic flush job that fails (a consume-queue file here) makes the
        // store refuse puts from then on.
        let c = dir.path().join("c");
        let svc = StoreService::start(config(&c, false), Duration::from_millis(20)).unwrap();
        svc.put(message(0)).await.unwrap();
        fail.arm("consumequeue");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut i = 1;
        let refused = loop {
            match svc.put(message(i)).await {
                Ok(_) => {}
                Err(ServiceError::Store(e)) if matches!(*e, StoreError::FlushFailed(_)) => {
                    break true
                }
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "puts never refused");
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(refused);
        fail.disarm();
        svc.close().await;

        // The store's status says so as soon as the job failed, before any put asks.
        let d = dir.path().join("d");
        let svc = StoreService::start(config(&d, false), Duration::from_millis(20)).unwrap();
        svc.put(message(0)).await.unwrap();
        fail.arm("consumequeue");
        let deadline = Instant::now() + Duration::from_secs(20);
        while svc.run(|s| s.write_failure().is_none()).await.unwrap() {
            assert!(
                Instant::now() < deadline,
                "the status never showed the failure"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fail.disarm();
        assert!(matches!(
            svc.put(message(1)).await,
            Err(ServiceError::Store(e)) if matches!(*e, StoreError::FlushFailed(_))
        ));
        svc.close().await;
    });
    sim::set_observer(None);
}
