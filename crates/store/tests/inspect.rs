//! `inspect` and `verify` over hostile directories: random bytes where segments, consume-queue
//! files, the checkpoint and the timer check should be. They report, never panic, never
//! allocate from a size field they read.

use proptest::prelude::*;
use rmq_store::{inspect, layout};

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_stores_are_reported_not_crashed_on(
        seg in proptest::collection::vec(any::<u8>(), 0..8192),
        cq in proptest::collection::vec(any::<u8>(), 0..400),
        timer_cq in proptest::collection::vec(any::<u8>(), 0..200),
        check in proptest::collection::vec(any::<u8>(), 0..64),
        abort in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("commitlog").join(format!("{:020}", 0)), &seg);
        write(&root.join("consumequeue/T/0").join(format!("{:020}", 0)), &cq);
        write(&root.join("consumequeue/rmq_sys_wheel_timer/0").join(format!("{:020}", 0)), &timer_cq);
        write(&root.join("checkpoint"), &check);
        write(&root.join("config/timercheck"), &check);
        if abort {
            write(&root.join("abort"), b"1");
        }
        // Whatever the bytes, these answer (a report or an error), and never panic.
        if let Ok(l) = layout::survey(root) {
            prop_assert_eq!(l.clean_stop, !abort);
        }
        if let Ok(s) = inspect::inspect(root) {
            prop_assert!(s.log_end >= s.log_start);
        }
        if let Ok(r) = inspect::verify(root) {
            prop_assert!(r.log_end <= seg.len() as u64);
        }
    }
}

/// A record-sized field claiming gigabytes is damage, not an allocation.
#[test]
fn a_huge_size_field_is_a_problem_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = vec![0u8; 4096];
    seg[..4].copy_from_slice(&i32::MAX.to_be_bytes());
    seg[4..8].copy_from_slice(&0xDAA3_20A7u32.to_be_bytes());
    write(
        &dir.path().join("commitlog").join(format!("{:020}", 0)),
        &seg,
    );
    let r = inspect::verify(dir.path()).unwrap();
    assert_eq!(r.records, 0);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("does not fit"), "{:?}", r.problems);
}
