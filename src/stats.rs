//! I/O counters, updated in the completion path.

use core::sync::atomic::{AtomicU64, Ordering};

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
        ] {
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
