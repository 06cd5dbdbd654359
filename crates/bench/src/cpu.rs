//! CPU time of this process's threads by name, from /proc (Linux). Lets `compare` charge the
//! server's threads alone when client and server share one process.

/// Clock ticks per second of /proc's utime/stime (USER_HZ; 100 on every Linux ABI in use).
const TICKS_PER_SEC: u64 = 100;

/// Total user+system CPU time, in nanoseconds, of this process's threads whose name starts
/// with `prefix`. `None` where /proc is unavailable.
pub fn threads_cpu_ns(prefix: &str) -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        total += stat_ticks(&stat).unwrap_or(0);
    }
    Some(total * (1_000_000_000 / TICKS_PER_SEC))
}

/// utime + stime from a /proc stat line. The name field may hold spaces and parentheses, so
/// fields are counted after the last ')'.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of process `pid` in bytes (VmRSS), `None` if unreadable.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_name() {
        let line = "1234 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 42 8 0 0 20 0 1 0";
        assert_eq!(stat_ticks(line), Some(50));
    }

    #[test]
    fn own_threads_are_found() {
        let t = std::thread::Builder::new()
            .name("cpu-probe-x".into())
            .spawn(|| {
                // Burn some CPU so at least one tick is charged.
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed() < std::time::Duration::from_millis(60) {
                    x = x.wrapping_mul(31).wrapping_add(7);
                }
                std::hint::black_box(x);
                threads_cpu_ns("cpu-probe-x")
            })
            .unwrap();
        let ns = t.join().unwrap().expect("/proc readable");
        assert!(ns > 0, "a busy thread was charged no CPU");
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}
