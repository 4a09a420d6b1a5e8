//! I/O counters, updated in the completion path, and the remap counters.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::logic::health::{latency_bucket, LATENCY_BUCKETS};
use crate::logic::status::IoCounters;

/// Lock-free counters; each update is one relaxed atomic add (exact totals, no ordering needed).
#[derive(Default)]
pub(crate) struct IoStats {
    reads: AtomicU64,
    writes: AtomicU64,
    flushes: AtomicU64,
    discards: AtomicU64,
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
    /// Latency histogram of the data bios sent to the main device (`logic::health`).
    main_latency: [AtomicU64; LATENCY_BUCKETS],
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
    /// Counts one completed bio, and its failure when `ok` is false.
    pub(crate) fn record(&self, kind: IoKind, ok: bool) {
        let (count, errors) = match kind {
            IoKind::Read => (&self.reads, Some(&self.read_errors)),
            IoKind::Write => (&self.writes, Some(&self.write_errors)),
            IoKind::Flush => (&self.flushes, None),
            IoKind::Discard => (&self.discards, None),
        };
        count.fetch_add(1, Ordering::Relaxed);
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
        if let Some(c) = self.main_latency.get(latency_bucket(micros)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The main device's latency histogram.
    pub(crate) fn main_latency_snapshot(&self) -> [u64; LATENCY_BUCKETS] {
        let mut out = [0u64; LATENCY_BUCKETS];
        for (o, c) in out.iter_mut().zip(self.main_latency.iter()) {
            *o = c.load(Ordering::Relaxed);
        }
        out
    }

    /// Sets every counter to zero (`clear_stats`).
    pub(crate) fn clear(&self) {
        for c in [
            &self.reads,
            &self.writes,
            &self.flushes,
            &self.discards,
            &self.read_errors,
            &self.write_errors,
            &self.device_errors,
            &self.remaps_auto,
            &self.remaps_manual,
            &self.remaps_proactive,
            &self.commits,
        ]
        .into_iter()
        .chain(self.main_latency.iter())
        {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// A snapshot for the status line.
    pub(crate) fn snapshot(&self) -> IoCounters {
        IoCounters {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            discards: self.discards.load(Ordering::Relaxed),
            read_errors: self.read_errors.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            device_errors: self.device_errors.load(Ordering::Relaxed),
        }
    }
}
