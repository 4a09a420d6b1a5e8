//! I/O counters, updated in the completion path, and the remap counters.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::prelude::*;

use crate::dm::PerCpuCounters;
use crate::logic::health::{latency_bucket, LATENCY_BUCKETS};
use crate::logic::status::IoCounters;

/// The counters every bio updates, in [`IoStats::per_bio`]: the four kinds, then the latency histogram.
const READS: usize = 0;
const WRITES: usize = 1;
const FLUSHES: usize = 2;
const DISCARDS: usize = 3;
const LATENCY: usize = 4;
const PER_BIO: usize = LATENCY + LATENCY_BUCKETS;

/// Lock-free counters (exact totals, no ordering needed). Those of every bio are per CPU, so that counting
/// shares no cache line between CPUs; the rare ones are relaxed atomics.
pub(crate) struct IoStats {
    /// Bios completed by kind, and the latency histogram of the data bios sent to the main device
    /// (`logic::health`).
    per_bio: PerCpuCounters<PER_BIO>,
    read_errors: AtomicU64,
    write_errors: AtomicU64,
    device_errors: AtomicU64,
    /// Units relocated because a write failed or healed a pending unit.
    remaps_auto: AtomicU64,
    /// Units moved by the `remap` message.
    remaps_manual: AtomicU64,
    /// Units the scrub moved because they kept reading slowly.
    remaps_proactive: AtomicU64,
    /// Metadata journal commits (one per group of changes, on every spare).
    commits: AtomicU64,
}

/// Why units were relocated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemapCause {
    /// A write failed, or healed a pending unit.
    Auto,
    /// The `remap` message.
    Manual,
    /// The scrub found the unit slow.
    Proactive,
    /// `drain` moved a remapped unit to another spare: not a new remap, not counted.
    Moved,
}

/// Which counter a completed bio belongs to.
#[derive(Clone, Copy)]
pub(crate) enum IoKind {
    Read,
    Write,
    Flush,
    Discard,
}

impl IoStats {
    /// Zeroed counters; may sleep.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            per_bio: PerCpuCounters::new()?,
            read_errors: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            device_errors: AtomicU64::new(0),
            remaps_auto: AtomicU64::new(0),
            remaps_manual: AtomicU64::new(0),
            remaps_proactive: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        })
    }

    /// Counts one completed bio, and its failure when `ok` is false.
    pub(crate) fn record(&self, kind: IoKind, ok: bool) {
        let (count, errors) = match kind {
            IoKind::Read => (READS, Some(&self.read_errors)),
            IoKind::Write => (WRITES, Some(&self.write_errors)),
            IoKind::Flush => (FLUSHES, None),
            IoKind::Discard => (DISCARDS, None),
        };
        self.per_bio.add(count, 1);
        if let (false, Some(errors)) = (ok, errors) {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one error returned by a device below (recovered from or not).
    pub(crate) fn device_error(&self) {
        self.device_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` committed relocations made for `cause`.
    pub(crate) fn remapped(&self, n: u64, cause: RemapCause) {
        let c = match cause {
            RemapCause::Auto => &self.remaps_auto,
            RemapCause::Manual => &self.remaps_manual,
            RemapCause::Proactive => &self.remaps_proactive,
            RemapCause::Moved => return,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one metadata commit.
    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Metadata commits so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// `(automatic, manual, proactive)` relocations.
    pub(crate) fn remaps(&self) -> (u64, u64, u64) {
        (
            self.remaps_auto.load(Ordering::Relaxed),
            self.remaps_manual.load(Ordering::Relaxed),
            self.remaps_proactive.load(Ordering::Relaxed),
        )
    }

    /// Counts one data bio the main device completed in `micros` µs.
    pub(crate) fn main_latency(&self, micros: u64) {
        let bucket = latency_bucket(micros);
        if bucket < LATENCY_BUCKETS {
            self.per_bio.add(LATENCY.saturating_add(bucket), 1);
        }
    }

    /// The main device's latency histogram.
    pub(crate) fn main_latency_snapshot(&self) -> [u64; LATENCY_BUCKETS] {
        let mut out = [0u64; LATENCY_BUCKETS];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.per_bio.sum(LATENCY.saturating_add(i));
        }
        out
    }

    /// Sets every counter to zero (`clear_stats`).
    pub(crate) fn clear(&self) {
        self.per_bio.zero();
        for c in [
            &self.read_errors,
            &self.write_errors,
            &self.device_errors,
            &self.remaps_auto,
            &self.remaps_manual,
            &self.remaps_proactive,
            &self.commits,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// A snapshot for the status line.
    pub(crate) fn snapshot(&self) -> IoCounters {
        IoCounters {
            reads: self.per_bio.sum(READS),
            writes: self.per_bio.sum(WRITES),
            flushes: self.per_bio.sum(FLUSHES),
            discards: self.per_bio.sum(DISCARDS),
            read_errors: self.read_errors.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            device_errors: self.device_errors.load(Ordering::Relaxed),
        }
    }
}
