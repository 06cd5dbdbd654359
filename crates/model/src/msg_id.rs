//! Client message ids (UNIQ_KEY), laid out like Java's MessageClientIDSetter (producer spec §4):
//! IPv4 (4) | pid (2) | a per-process random int in place of the class loader's hash (4) |
//! milliseconds since the start of the current month, UTC (4) | counter (2), as upper-case hex.
//! Java counts the month in local time; brokers only use the id as an opaque unique key.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

struct Prefix {
    hex: String,
}

fn prefix() -> &'static Prefix {
    static P: OnceLock<Prefix> = OnceLock::new();
    P.get_or_init(|| {
        let ip = crate::local_ip();
        let pid = std::process::id() as u16;
        let loader: u32 = rand::random();
        let mut hex = String::with_capacity(20);
        for b in ip.octets() {
            hex.push_str(&format!("{b:02X}"));
        }
        hex.push_str(&format!("{pid:04X}{loader:08X}"));
        Prefix { hex }
    })
}

/// Milliseconds since 00:00 UTC on day 1 of the current month.
fn ms_since_month_start(now_ms: u64) -> u32 {
    let days = now_ms / 86_400_000;
    let (_, _, day) = civil_from_days(days as i64);
    let month_start_days = days - (day as u64 - 1);
    (now_ms - month_start_days * 86_400_000) as u32
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A new unique id: 32 upper-case hex characters.
pub fn new_unique_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u16;
    format!("{}{:08X}{n:04X}", prefix().hex, ms_since_month_start(now))
}

/// The IPv4 address embedded in an id made by any IPv4 Java or rmq client.
pub fn ip_of(id: &str) -> Option<Ipv4Addr> {
    let b = |i: usize| u8::from_str_radix(id.get(i * 2..i * 2 + 2)?, 16).ok();
    Some(Ipv4Addr::new(b(0)?, b(1)?, b(2)?, b(3)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_uniqueness() {
        let a = new_unique_id();
        let b = new_unique_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        assert_eq!(&a[..20], &b[..20], "same process prefix");
        assert_eq!(ip_of(&a), Some(crate::local_ip()));
        // Java capture 001: C0000202 1524 5FFD2B27 69306140 0000 -> 192.0.2.2.
        assert_eq!(
            ip_of("C000020215245FFD2B27693061400000"),
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
        // 2026-11-21 00:00:00.5 UTC is 20 days + 500 ms after the month started.
        let t = 1_795_219_200_000u64 + 500; // 2026-11-21T00:00:00Z + 0.5 s
        assert_eq!(civil_from_days((t / 86_400_000) as i64), (2026, 11, 21));
        assert_eq!(ms_since_month_start(t), 20 * 86_400_000 + 500);
    }
}
