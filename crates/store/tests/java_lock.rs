//! The store refuses a directory a Java broker holds. Alone in its test binary: it spawns a
//! process, and a process spawned while another test of the same binary has a store open
//! holds that store's `lock` descriptor (and its flock) until it execs, long enough to make a
//! reopen in that other test fail as `Locked` now and then.

use rmq_store::store::{MessageStore, StoreConfig, StoreError};

fn config(root: &std::path::Path) -> StoreConfig {
    StoreConfig {
        commit_log_segment_size: 64 * 1024,
        consume_queue_file_size: 100 * 20,
        ..StoreConfig::new(root)
    }
}

/// A Java broker holds its store with an fcntl lock on byte 0 of `lock` (FileChannel.tryLock),
/// which flock does not see: the store takes that kind too. Python's `fcntl.lockf` takes the
/// same lock as Java, from another process.
#[test]
fn a_store_held_with_javas_kind_of_lock_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(MessageStore::open(config(dir.path())).unwrap());
    let script = "import fcntl,sys,time\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB,1,0)\nprint('locked',flush=True)\ntime.sleep(30)\n";
    let child = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("lock"))
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("SKIPPED: no python3 to hold an fcntl lock");
        return;
    };
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let r = MessageStore::open(config(dir.path()));
    let _ = child.kill();
    let _ = child.wait();
    match r {
        Err(StoreError::Locked(p)) => assert_eq!(p, dir.path()),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("opened a store another process holds"),
    }
    // Released: it opens.
    drop(MessageStore::open(config(dir.path())).unwrap());
}
