//! `rmq torture` as CI runs it: 15 SIGKILL/restart cycles of `rmq standalone` (the binary under
//! test) in each flush mode, every queue read back through PULL_MESSAGE after each restart. It
//! must exit 0 with `lost=0` in both modes' summary lines. The harness itself lives in
//! `crates/cli/src/torture/`; this is the bounded run (small load, no retention cycles: those
//! serve 11.5 s each) that fits the test budget, debug build included.

mod support;

use std::time::Duration;

#[tokio::test]
async fn kill_9_cycles_lose_no_acknowledged_message_in_either_flush_mode() {
    let args = [
        "torture",
        "--cycles",
        "15",
        "--flush",
        "both",
        "--max-uptime-ms",
        "1200",
        "--hot-rate",
        "2000",
        "--retention-every",
        "0",
    ];
    let (code, out, err) = support::rmq_bounded(&args, Duration::from_secs(300)).await;
    for flush in ["ASYNC_FLUSH", "SYNC_FLUSH"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("torture flush={flush} ")))
            .unwrap_or_else(|| panic!("no {flush} summary line:\n{out}\n{err}"));
        assert!(line.contains(" cycles=15 "), "{line}\n{out}\n{err}");
        assert!(line.contains(" lost=0 "), "{line}\n{out}\n{err}");
        assert!(line.ends_with(" OK"), "{line}\n{out}\n{err}");
    }
    assert_eq!(code, 0, "rmq torture failed:\n{out}\n{err}");
    eprintln!("{out}");
}
