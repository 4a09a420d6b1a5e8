//! The write gate: lets the scrub relocate a unit while the device is live, without losing a write to it.
//!
//! Copying a unit to the spare while a write to it is in flight on main would lose that write (the copy may
//! read the old data, and reads then go to the spare). The `remap` message avoids this by needing a suspended
//! device; the scrub cannot suspend the device under its users. Instead it *holds* the unit: `map()` hands
//! every write that touches a held unit to the worker, which serialises with the copy under the remapper's
//! lock, and the scrub waits until every write `map()` sent to main before the hold has completed.
//!
//! Waiting for "every write sent before" uses two in-flight counters and an epoch, the idea behind SRCU: a
//! write counts itself in the current epoch's counter before it looks at the table; the scrub sets the hold,
//! flips the epoch, and waits for the old epoch's counter to drain. New writes count in the new epoch, so the
//! wait ends even under a steady stream of writes. All accesses are sequentially consistent: either a write
//! sees the hold, or the scrub sees the write counted.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use kernel::time::{delay::fsleep, Delta, Instant, Monotonic};

/// No unit is held.
const NONE: u64 = u64::MAX;

/// See the module documentation.
pub(crate) struct WriteGate {
    held: AtomicU64,
    epoch: AtomicUsize,
    inflight: [AtomicU64; 2],
}

/// A write's place in the gate, kept with the bio until it completes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ticket(Option<u8>);

impl WriteGate {
    pub(crate) fn new() -> Self {
        Self {
            held: AtomicU64::new(NONE),
            epoch: AtomicUsize::new(0),
            inflight: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Counts a write in; call before looking the write up in the table (the hold may begin in between).
    pub(crate) fn enter(&self) -> Ticket {
        let e = self.epoch.load(SeqCst) & 1;
        if let Some(c) = self.inflight.get(e) {
            c.fetch_add(1, SeqCst);
        }
        Ticket(u8::try_from(e).ok())
    }

    /// True when the write over units `first..=last` must go to the worker: one of them is held.
    pub(crate) fn blocks(&self, first: u64, last: u64) -> bool {
        let h = self.held.load(SeqCst);
        h != NONE && first <= h && h <= last
    }

    /// Counts a write out: it completed, or went where the hold does not matter.
    pub(crate) fn exit(&self, ticket: &mut Ticket) {
        if let Some(e) = ticket.0.take() {
            if let Some(c) = self.inflight.get(usize::from(e)) {
                c.fetch_sub(1, SeqCst);
            }
        }
    }

    /// Holds `unit` and waits, at most `timeout_ms`, until every write that may not have seen the hold has
    /// completed. False on timeout (the hold is released). One holder at a time: the scrub.
    pub(crate) fn hold(&self, unit: u64, timeout_ms: i64) -> bool {
        self.held.store(unit, SeqCst);
        let old = self.epoch.fetch_add(1, SeqCst) & 1;
        let Some(count) = self.inflight.get(old) else {
            self.release();
            return false;
        };
        let start = Instant::<Monotonic>::now();
        // Bounded by the timeout; writes of the old epoch only complete, none begin.
        while count.load(SeqCst) != 0 {
            if start.elapsed().as_millis() > timeout_ms {
                self.release();
                return false;
            }
            fsleep(Delta::from_millis(1));
        }
        true
    }

    /// Ends the hold; call after the relocation is published in the table.
    pub(crate) fn release(&self) {
        self.held.store(NONE, SeqCst);
    }
}
