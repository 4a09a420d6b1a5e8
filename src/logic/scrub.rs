//! The background scrub's arithmetic: which units the next read covers, how long to wait to keep the rate,
//! when a unit counts as slow, and the `scrub status` lines. The kernel side (`src/scrub.rs`) reads, waits and
//! hands what it finds to the remapper.

use core::fmt::{self, Write};

/// Bytes the scrub reads at once: few requests per MiB, and a foreground bio never waits long behind one.
pub const CHUNK_BYTES: u32 = 64 * 1024;

/// Reads of one unit, each slower than `slow_threshold_ms`, after which the scrub relocates it: one slow read
/// may be the disk being busy elsewhere; three in a row, with nothing else from the scrub in between, is the
/// sector.
pub const SLOW_READS: u32 = 3;

/// While foreground I/O completes, the scrub waits this many times longer between chunks: it runs at a
/// quarter of its rate.
pub const BUSY_SLOWDOWN: u64 = 4;

/// The device counts as busy for this long after a foreground bio completed: at a high rate the scrub reads
/// several chunks between two bios of a queue-depth-1 user.
pub const BUSY_WINDOW_MS: i64 = 100;

/// Seconds between two saves of the scrub's position while it runs (it is also saved when it stops, when a
/// pass ends and when the device is suspended): a crash repeats at most this much of the pass.
pub const SAVE_INTERVAL_SECONDS: u64 = 30;

/// Percent of the spare units (at least one) that proactive relocation leaves free: a slow unit can still be
/// read, a failing one cannot, so the last spare units are kept for units whose writes fail.
pub const PROACTIVE_RESERVE_PERCENT: u64 = 10;

/// True when the scrub may relocate a slow unit with `used` of `total` spare units in use: more than the
/// reserve ([`PROACTIVE_RESERVE_PERCENT`], at least one unit) is free.
pub fn proactive_allowed(used: u64, total: u64) -> bool {
    let reserve = (total / 100)
        .saturating_mul(PROACTIVE_RESERVE_PERCENT)
        .saturating_add((total % 100).saturating_mul(PROACTIVE_RESERVE_PERCENT) / 100)
        .max(1);
    total.saturating_sub(used) > reserve
}

/// Units in one chunk.
pub fn chunk_units(unit_bytes: u32) -> u32 {
    CHUNK_BYTES.checked_div(unit_bytes).unwrap_or(1).max(1)
}

/// The chunk that starts at unit `position`: `(first unit, units)`, cut at the end of the device; `None` once
/// `position` is at or beyond the end (the pass is complete).
pub fn chunk_at(position: u64, total_units: u64, chunk: u32) -> Option<(u64, u32)> {
    let left = total_units.checked_sub(position).filter(|&l| l > 0)?;
    let units = u32::try_from(left.min(u64::from(chunk.max(1)))).unwrap_or(1);
    Some((position, units))
}

/// Where a pass resumes after a load: the saved position when it lies within the device, else its start.
pub fn resume_position(saved: u64, total_units: u64) -> u64 {
    if saved < total_units {
        saved
    } else {
        0
    }
}

/// Microseconds reading `bytes` should take at `rate_kib` KiB/s: `bytes * 10^6 / (rate * 1024)`, computed as
/// `bytes * 15625 / (rate * 16)` to stay within `u64` for any chunk.
pub fn pace_micros(bytes: u64, rate_kib: u32) -> u64 {
    let per = u64::from(rate_kib.max(1)).saturating_mul(16);
    bytes
        .saturating_mul(15_625)
        .checked_div(per)
        .unwrap_or(u64::MAX)
}

/// True when a read that took `micros` µs is slower than `threshold_ms`.
pub fn is_slow(micros: u64, threshold_ms: u32) -> bool {
    micros > u64::from(threshold_ms).saturating_mul(1000)
}

/// What `scrub status` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubView {
    /// The scrub is running.
    pub running: bool,
    /// The next sector (relative to the target) it reads.
    pub position_sector: u64,
    /// The target's length in sectors.
    pub total_sectors: u64,
    /// Full passes completed (persisted).
    pub passes: u64,
    /// Bytes read by the scrub since the table was loaded.
    pub scanned_bytes: u64,
    /// Units found unreadable and recorded as pending (persisted).
    pub found_pending: u64,
    /// Units relocated because they kept reading slowly (persisted).
    pub relocated: u64,
    /// The rate in KiB/s.
    pub rate_kib: u32,
    /// The table's `slow_threshold_ms`.
    pub slow_threshold_ms: u32,
    /// Units found unreadable or slow so far in the pass under way (persisted).
    pub pass_found: u64,
    /// Units found by the last complete pass (persisted).
    pub last_pass_found: u64,
    /// Units found by the pass before it (persisted).
    pub prev_pass_found: u64,
}

impl ScrubView {
    /// How many more units the last complete pass found than the one before it: the health score's trend.
    /// 0 until two passes completed.
    pub fn growth(&self) -> u64 {
        if self.passes < 2 {
            return 0;
        }
        self.last_pass_found.saturating_sub(self.prev_pass_found)
    }
}

/// `scrub status`: one `key=value` per line, keys only ever added.
pub fn write_scrub_status<W: Write>(w: &mut W, v: &ScrubView) -> fmt::Result {
    writeln!(w, "state={}", if v.running { "running" } else { "stopped" })?;
    writeln!(w, "position={}", v.position_sector)?;
    writeln!(w, "total={}", v.total_sectors)?;
    writeln!(w, "passes={}", v.passes)?;
    writeln!(w, "scanned_bytes={}", v.scanned_bytes)?;
    writeln!(w, "found_pending={}", v.found_pending)?;
    writeln!(w, "relocated={}", v.relocated)?;
    writeln!(w, "rate_kib={}", v.rate_kib)?;
    writeln!(w, "slow_threshold_ms={}", v.slow_threshold_ms)?;
    writeln!(w, "pass_found={}", v.pass_found)?;
    writeln!(w, "last_pass_found={}", v.last_pass_found)?;
    writeln!(w, "prev_pass_found={}", v.prev_pass_found)
}
