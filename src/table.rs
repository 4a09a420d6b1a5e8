//! The remap table: which units of the main device live elsewhere.
//!
//! Read by `map()` without locks (an XArray of packed [`Entry`] values, read under RCU); written only in
//! process context: while the table is loaded, and by `remapper.rs` under its update mutex.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::prelude::*;

use crate::dm::ValueXa;
use crate::logic::route::{Entry, RemapLookup};

/// The remap table of one target.
pub(crate) struct RemapTable {
    xa: ValueXa,
    remapped: AtomicU64,
    pending: AtomicU64,
}

impl RemapTable {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            xa: ValueXa::new()?,
            remapped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        })
    }

    /// Sets (or replaces) the entry of `unit`.
    pub(crate) fn insert(&self, unit: u64, entry: Entry) -> Result {
        let packed = entry.pack().ok_or(EINVAL)?;
        let old = self.xa.load(unit).map(Entry::unpack);
        self.xa.store(unit, packed)?;
        if let Some(old) = old {
            self.counter(old).fetch_sub(1, Ordering::Relaxed);
        }
        self.counter(entry).fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Drops the entry of `unit`, returning it.
    pub(crate) fn remove(&self, unit: u64) -> Option<Entry> {
        let old = self.xa.erase(unit).map(Entry::unpack)?;
        self.counter(old).fetch_sub(1, Ordering::Relaxed);
        Some(old)
    }

    fn counter(&self, e: Entry) -> &AtomicU64 {
        match e {
            Entry::Remapped { .. } => &self.remapped,
            Entry::Pending => &self.pending,
        }
    }

    /// Units whose data lives on a spare.
    pub(crate) fn remapped(&self) -> u64 {
        self.remapped.load(Ordering::Relaxed)
    }

    /// Units waiting for a write to heal them.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// The entries from `first` on, in unit order (process context: for listing and checkpoints).
    pub(crate) fn entries_from(&self, first: u64) -> Entries<'_> {
        Entries {
            table: self,
            next: Some(first),
        }
    }

    /// True when no unit has an entry: `map()`'s one check on the common path.
    pub(crate) fn is_empty(&self) -> bool {
        self.remapped() == 0 && self.pending() == 0
    }
}

impl RemapLookup for RemapTable {
    fn get(&self, unit: u64) -> Option<Entry> {
        self.xa.load(unit).map(Entry::unpack)
    }

    fn next_entry(&self, first: u64, last: u64) -> Option<u64> {
        self.xa.find(first, last)
    }
}

/// Iterator over the entries of a [`RemapTable`]; each step moves past one entry, so it ends.
pub(crate) struct Entries<'a> {
    table: &'a RemapTable,
    /// Next unit to look from; `None` once past the last possible unit.
    next: Option<u64>,
}

impl Iterator for Entries<'_> {
    type Item = (u64, Entry);

    fn next(&mut self) -> Option<(u64, Entry)> {
        loop {
            let unit = self.table.next_entry(self.next?, u64::MAX)?;
            self.next = unit.checked_add(1);
            // An entry erased between the two lookups is skipped.
            if let Some(entry) = self.table.get(unit) {
                return Some((unit, entry));
            }
        }
    }
}
