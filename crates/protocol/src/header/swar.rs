//! Eight-bytes-at-a-time searches for the bytes that end a plain run of JSON string text.
//!
//! The classic SWAR tests (Hacker's Delight, "find a zero byte"): `(w - 0x01..) & !w & 0x80..`
//! flags bytes equal to zero, and `(w - n*0x01..) & !w & 0x80..` bytes below n (n <= 128). A
//! borrow can flag bytes *after* a real hit, never before one, so the lowest flag of a combined
//! mask is exactly the first byte searched for. Headers are mostly such runs, so both codecs spend
//! their string time here.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
fn zero(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

#[inline(always)]
fn equal(w: u64, c: u8) -> u64 {
    zero(w ^ (LO * u64::from(c)))
}

#[inline(always)]
fn below_space(w: u64) -> u64 {
    w.wrapping_sub(LO * 0x20) & !w & HI
}

/// Runs `hits` over `b` eight bytes at a time and `slow` over the tail; the first flagged index.
#[inline(always)]
fn search(b: &[u8], hits: impl Fn(u64) -> u64, slow: impl Fn(u8) -> bool) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        let h = hits(w);
        if h != 0 {
            return Some(i + (h.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| slow(c)).map(|p| i + p)
}

/// Index of the first '"', '\\' or control byte: where a received JSON string's plain run stops.
#[inline(always)]
pub(crate) fn find_stop(b: &[u8]) -> Option<usize> {
    search(
        b,
        |w| equal(w, b'"') | equal(w, b'\\') | below_space(w),
        |c| c == b'"' || c == b'\\' || c < 0x20,
    )
}

/// Index of the first byte a JSON string writer must look at: '"', '\\', a control byte, DEL, or
/// any non-ASCII byte (U+2028/U+2029 are escaped, so their lead byte 0xE2 needs a look; other
/// non-ASCII bytes are skipped by the caller).
#[inline(always)]
pub(crate) fn find_escape(b: &[u8]) -> Option<usize> {
    search(
        b,
        |w| equal(w, b'"') | equal(w, b'\\') | equal(w, 0x7F) | below_space(w) | (w & HI),
        |c| c == b'"' || c == b'\\' || !(0x20..0x7F).contains(&c),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random byte strings, mostly letters with the interesting bytes sprinkled in.
    fn samples() -> impl Iterator<Item = Vec<u8>> {
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xE2, 0xFF, b'0',
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        (0..40).flat_map(move |len| {
            (0..200)
                .map(|_| {
                    (0..len)
                        .map(|_| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            if seed.is_multiple_of(5) {
                                alphabet[(seed >> 8) as usize % alphabet.len()]
                            } else {
                                b'a' + (seed >> 16) as u8 % 26
                            }
                        })
                        .collect::<Vec<u8>>()
                })
                .collect::<Vec<_>>()
        })
    }

    #[test]
    fn searches_agree_with_a_byte_scan() {
        for bytes in samples() {
            let stop = bytes
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            assert_eq!(find_stop(&bytes), stop, "{bytes:?}");
            let escape = bytes
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x7F).contains(&c));
            assert_eq!(find_escape(&bytes), escape, "{bytes:?}");
        }
    }
}
