//! Health of the main device: a latency histogram of its I/O and a 0..=100 score.
//!
//! Both are integer-only and cheap: the histogram costs one leading-zeros count and one relaxed atomic add
//! per completed bio (the kernel side keeps the counters), the score is computed when status is read.

use core::fmt::{self, Write};

/// Buckets of the latency histogram: bucket 0 holds I/O that took less than 2 µs, bucket `k` (1 to 22) from
/// `2^k` µs up to `2^(k+1)` µs, and the last bucket everything from `2^23` µs (about 8.4 s) on.
pub const LATENCY_BUCKETS: usize = 24;

/// The bucket of an I/O that took `micros` µs.
pub fn latency_bucket(micros: u64) -> usize {
    let log2 = u64::BITS
        .saturating_sub(micros.leading_zeros())
        .saturating_sub(1);
    usize::try_from(log2)
        .unwrap_or(usize::MAX)
        .min(LATENCY_BUCKETS.saturating_sub(1))
}

/// The lower bound in µs of bucket `k` (0 for bucket 0).
pub fn bucket_floor_micros(k: usize) -> u64 {
    match k {
        0 => 0,
        k => u32::try_from(k)
            .ok()
            .and_then(|k| 1u64.checked_shl(k))
            .unwrap_or(u64::MAX),
    }
}

/// The histogram's non-empty buckets for the `stats` message, one line each:
/// `main_latency_us_ge_<floor>=<count>`.
pub fn write_latency<W: Write>(w: &mut W, buckets: &[u64; LATENCY_BUCKETS]) -> fmt::Result {
    for (k, &n) in buckets.iter().enumerate() {
        if n != 0 {
            writeln!(w, "main_latency_us_ge_{}={}", bucket_floor_micros(k), n)?;
        }
    }
    Ok(())
}

/// What the health score looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthInputs {
    /// Data bios completed (reads and writes).
    pub ios: u64,
    /// Errors the devices below returned, recovered from or not.
    pub device_errors: u64,
    /// Units whose read failed and that wait for a write.
    pub pending: u64,
    /// Spare units in use.
    pub spare_used: u64,
    /// Spare units in all.
    pub spare_total: u64,
    /// How many more units the last complete scrub pass found (unreadable or slow) than the pass before it;
    /// 0 until two passes completed, or when it found as many or fewer.
    pub scrub_growth: u64,
}

/// Most points each part of the score can take away.
pub const ERROR_POINTS: u8 = 40;
/// See [`ERROR_POINTS`].
pub const PENDING_POINTS: u8 = 30;
/// See [`ERROR_POINTS`].
pub const SPARE_POINTS: u8 = 30;
/// See [`ERROR_POINTS`]; on top of the others (the score stops at 0).
pub const TREND_POINTS: u8 = 10;

/// Bits needed to write `n` (0 for 0): a cheap integer log2 scale.
fn bit_length(n: u64) -> u64 {
    u64::from(u64::BITS.saturating_sub(n.leading_zeros()))
}

/// The health score, 0 (failing) to 100 (no sign of trouble), `docs/status.md`:
///
/// - errors: `min(40, 4 * bit_length(errors per million I/O))` points off: one error in a million I/O costs
///   4, one in a thousand (1000 per million) all 40;
/// - pending units, data at risk until rewritten: `min(30, 10 * bit_length(pending))` off: 1 costs 10,
///   2 or 3 cost 20, 4 or more all 30;
/// - spare use: `30 * used / total` off, rounded down (30 with no spare units at all);
/// - trend, a disk that gets worse: `min(10, 5 * bit_length(scrub_growth))` off: one more unit found by the
///   last scrub pass than by the one before costs 5, two or more 10.
///
/// The parts add up to at most 110 points; the score stops at 0.
pub fn health_score(h: &HealthInputs) -> u8 {
    // u64 only (a u128 division needs a libgcc helper the kernel lacks); saturating is exact enough, since
    // anything near u64::MAX errors per million costs all the points anyway.
    let per_million = h
        .device_errors
        .saturating_mul(1_000_000)
        .checked_div(h.ios.max(1))
        .unwrap_or(u64::MAX);
    let errors = bit_length(per_million)
        .saturating_mul(4)
        .min(u64::from(ERROR_POINTS));
    let pending = bit_length(h.pending)
        .saturating_mul(10)
        .min(u64::from(PENDING_POINTS));
    let spare = match h.spare_total {
        0 => u64::from(SPARE_POINTS),
        total => h
            .spare_used
            .min(total)
            .saturating_mul(u64::from(SPARE_POINTS))
            .checked_div(total)
            .unwrap_or(u64::from(SPARE_POINTS))
            .min(u64::from(SPARE_POINTS)),
    };
    let trend = bit_length(h.scrub_growth)
        .saturating_mul(5)
        .min(u64::from(TREND_POINTS));
    let off = errors
        .saturating_add(pending)
        .saturating_add(spare)
        .saturating_add(trend);
    u8::try_from(100u64.saturating_sub(off)).unwrap_or(0)
}
