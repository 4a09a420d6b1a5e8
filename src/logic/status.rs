//! The target's `dmsetup status` (INFO), `dmsetup table` (TABLE) and IMA lines.
//!
//! INFO is a list of space-separated `key=value` tokens, documented in `docs/status.md`; scripts and `dmremap`
//! parse it, so keys are only ever added, never renamed.

use core::fmt::{self, Write};

/// A snapshot of the target's I/O counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Read bios completed.
    pub reads: u64,
    /// Write bios completed (data writes, not flushes or discards).
    pub writes: u64,
    /// Empty flush bios completed, counted once per dm-level flush.
    pub flushes: u64,
    /// Discard bios completed.
    pub discards: u64,
    /// Reads that completed with an error.
    pub read_errors: u64,
    /// Writes that completed with an error.
    pub write_errors: u64,
    /// Errors the devices below returned, whether the target recovered from them or passed them on.
    pub device_errors: u64,
}

/// What the status lines say about the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusView<'a> {
    /// Target name and version, for IMA.
    pub name: &'a str,
    /// `[major, minor, patch]` of the target type.
    pub version: [u32; 3],
    /// Main device as `major:minor`.
    pub main: &'a str,
    /// Spare devices as `major:minor`, in table order (at least one).
    pub spares: &'a [&'a str],
    /// The table's `main_id` option.
    pub main_id: Option<&'a str>,
    /// Remap unit in bytes (the main device's logical block size).
    pub unit_bytes: u32,
    /// `ok`, `spare_exhausted` (a unit needed a spare unit and none was left) or `failed` (a metadata commit
    /// failed: no further relocation is attempted until the table is reloaded).
    pub state: &'a str,
    /// Health of the spare's metadata: `ok`, `degraded` while a damaged copy could not be rewritten, `failed`
    /// after a commit failed.
    pub metadata: &'a str,
    /// Damaged superblock copies rewritten when the table was loaded.
    pub metadata_repaired: u32,
    /// Version of the loaded metadata superblock (grows with every superblock rewrite).
    pub metadata_version: u64,
    /// Spare units in use.
    pub spare_used: u64,
    /// Spare units in all.
    pub spare_total: u64,
    /// Units whose data lives on the spare.
    pub remapped: u64,
    /// Units whose read failed on main and that wait for a write to heal them.
    pub pending: u64,
    /// The table's `retries` option.
    pub retries: u32,
    /// The table's `min_spare_percent` option (0: none).
    pub min_spare_percent: u32,
    /// The table's `format_foreign` option.
    pub format_foreign: bool,
    /// I/O counters.
    pub io: IoCounters,
    /// The health score (`health::health_score`).
    pub health: u8,
    /// The table's `scrub_rate` option in KiB/s.
    pub scrub_rate_kib: u32,
    /// The table's `slow_threshold_ms` option.
    pub slow_threshold_ms: u32,
    /// The background scrub is running.
    pub scrub_running: bool,
    /// The next sector (relative to the target) the scrub reads.
    pub scrub_sector: u64,
    /// Units relocated because a write failed or healed a pending unit, by the `remap` message, and by the
    /// scrub because they read slowly.
    pub remaps: [u64; 3],
}

/// INFO: `unit_bytes=… remapped=… pending=… spare_used=… spare_total=… metadata=… metadata_repaired=… metadata_version=… reads=…
/// writes=… flushes=… discards=… read_errors=… write_errors=… device_errors=… state=… spares=… health=…
/// scrub=… scrub_sector=… remaps_auto=… remaps_manual=… remaps_proactive=…`.
///
/// `spare_used` and `spare_total` count over every spare; the `spares` message breaks them down.
pub fn write_info<W: Write>(w: &mut W, v: &StatusView<'_>) -> fmt::Result {
    let io = &v.io;
    write!(
        w,
        "unit_bytes={} remapped={} pending={} spare_used={} spare_total={} ",
        v.unit_bytes, v.remapped, v.pending, v.spare_used, v.spare_total
    )?;
    write!(
        w,
        "metadata={} metadata_repaired={} metadata_version={} ",
        v.metadata, v.metadata_repaired, v.metadata_version
    )?;
    write!(
        w,
        "reads={} writes={} flushes={} discards={} read_errors={} write_errors={} ",
        io.reads, io.writes, io.flushes, io.discards, io.read_errors, io.write_errors
    )?;
    write!(
        w,
        "device_errors={} state={} spares={} health={} ",
        io.device_errors,
        v.state,
        v.spares.len(),
        v.health
    )?;
    write!(
        w,
        "scrub={} scrub_sector={} ",
        if v.scrub_running {
            "running"
        } else {
            "stopped"
        },
        v.scrub_sector
    )?;
    let [auto, manual, proactive] = v.remaps;
    write!(
        w,
        "remaps_auto={} remaps_manual={} remaps_proactive={}",
        auto, manual, proactive
    )
}

/// The `stats` message: the I/O counters, one `key=value` per line, keys as in INFO.
pub fn write_stats<W: Write>(w: &mut W, io: &IoCounters) -> fmt::Result {
    writeln!(w, "reads={}", io.reads)?;
    writeln!(w, "writes={}", io.writes)?;
    writeln!(w, "flushes={}", io.flushes)?;
    writeln!(w, "discards={}", io.discards)?;
    writeln!(w, "read_errors={}", io.read_errors)?;
    writeln!(w, "write_errors={}", io.write_errors)?;
    writeln!(w, "device_errors={}", io.device_errors)
}

/// Where the remap table's entries are and what they cost, for the `stats` message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableMemory {
    /// Entries in the sorted run.
    pub run_entries: u64,
    /// Changes not yet merged into the run (tombstones included).
    pub changes: u64,
    /// Bytes the run's arrays hold.
    pub run_bytes: u64,
}

/// The `stats` message's table lines, one `key=value` per line.
pub fn write_table_memory<W: Write>(w: &mut W, t: &TableMemory) -> fmt::Result {
    writeln!(w, "table_run_entries={}", t.run_entries)?;
    writeln!(w, "table_changes={}", t.changes)?;
    writeln!(w, "table_run_bytes={}", t.run_bytes)
}

/// TABLE: the constructor arguments, with devices as `major:minor` (device-mapper's convention). Options
/// appear only when they differ from the default, in the order `retries`, `min_spare_percent`,
/// `format_foreign`, `scrub_rate`, `slow_threshold_ms`, `main_id`, `spare`.
pub fn write_table<W: Write>(w: &mut W, v: &StatusView<'_>) -> fmt::Result {
    let (first, more) = v
        .spares
        .split_first()
        .map_or(("-", &[][..]), |(f, m)| (*f, m));
    write!(w, "{} {}", v.main, first)?;
    let retries = v.retries != super::table::DEFAULT_RETRIES;
    let min_spare = v.min_spare_percent != 0;
    let rate = v.scrub_rate_kib != super::table::DEFAULT_SCRUB_RATE_KIB;
    let slow = v.slow_threshold_ms != super::table::DEFAULT_SLOW_THRESHOLD_MS;
    // Words: two for each option with a value, one for the flag.
    let words = more
        .len()
        .saturating_add(usize::from(retries))
        .saturating_add(usize::from(min_spare))
        .saturating_add(usize::from(rate))
        .saturating_add(usize::from(slow))
        .saturating_add(usize::from(v.main_id.is_some()))
        .saturating_mul(2)
        .saturating_add(usize::from(v.format_foreign));
    if words == 0 {
        return Ok(());
    }
    write!(w, " {}", words)?;
    if retries {
        write!(w, " retries {}", v.retries)?;
    }
    if min_spare {
        write!(w, " min_spare_percent {}", v.min_spare_percent)?;
    }
    if v.format_foreign {
        write!(w, " format_foreign")?;
    }
    if rate {
        write!(w, " scrub_rate {}", v.scrub_rate_kib)?;
    }
    if slow {
        write!(w, " slow_threshold_ms {}", v.slow_threshold_ms)?;
    }
    if let Some(id) = v.main_id {
        write!(w, " main_id {}", id)?;
    }
    for spare in more {
        write!(w, " spare {}", spare)?;
    }
    Ok(())
}

/// IMA measurement: `key=value` pairs separated by `,` and ended by `;`.
pub fn write_ima<W: Write>(w: &mut W, v: &StatusView<'_>) -> fmt::Result {
    let [major, minor, patch] = v.version;
    write!(
        w,
        "target_name={},target_version={}.{}.{},main_device={},spare_device={},spares={},unit_bytes={};",
        v.name,
        major,
        minor,
        patch,
        v.main,
        v.spares.first().copied().unwrap_or("-"),
        v.spares.len(),
        v.unit_bytes
    )
}
