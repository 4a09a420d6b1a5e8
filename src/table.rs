//! The remap table: which units of the main device live elsewhere.
//!
//! Two layers, both read by `map()` without locks:
//! - the **run**: most entries, in sorted arrays (`logic/sorted.rs`, 16 bytes per entry, plus the 4-byte
//!   time each entry was made), published under RCU and replaced whole;
//! - the **changes**: an XArray of the entries set or removed since the run was built (a removal of a unit
//!   the run holds is a tombstone), and a second XArray of the times of those set. A lookup asks the changes
//!   first.
//!
//! Every entry carries when it was made (seconds since the epoch, as its metadata record says): set when it
//! is loaded or committed, kept through merges, and written back by checkpoints and resyncs.
//!
//! When the changes grow past [`COMPACT_MIN`] (or 1/128 of the run), [`RemapTable::compact`] merges them into
//! a new run. Writers (the table load, then `remapper.rs` under its update mutex) are serialised by their
//! callers; process context only.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use kernel::alloc::{KBox, KVVec, VVec};
use kernel::prelude::*;

use crate::dm::{RcuBox, ValueXa};
use crate::logic::route::{Entry, RemapLookup};
use crate::logic::sorted::{self, Run};
use crate::logic::status::TableMemory;

/// The changes' value for "no entry, whatever the run says"; never a packed [`Entry`] (those are < 2^61 + 1).
const TOMBSTONE: u64 = crate::dm::xa::MAX_VALUE;

/// Changes that trigger a merge into the run, at least: bounds the XArray's memory (up to one 576-byte node
/// per scattered entry) while keeping merges (a copy of the run) rare.
const COMPACT_MIN: usize = 4096;

/// Compaction is due when the changes reach 1/`COMPACT_FRACTION` of the run (if more than [`COMPACT_MIN`]):
/// bounds the two XArrays' memory per entry of the run (see `docs/remap-table.md`).
const COMPACT_FRACTION: usize = 128;

/// The time of an entry as the table keeps it: seconds since the epoch in 32 bits (until 2106); a later time
/// is kept as `u32::MAX`.
pub(crate) fn stamp_of(seconds: u64) -> u32 {
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

/// An immutable sorted run, its fence and filter; `stamps[i]` is when the entry of `keys[i]` was made.
///
/// The arrays are vmalloc'ed (`VVec`), which maps 4 KiB pages and takes exactly the pages needed. `kvmalloc`
/// (`KVVec`) first tries kmalloc, which rounds an array of up to 4 MiB up to a power of two, and maps one of
/// 2 MiB or more with 2 MiB pages, rounded up to a multiple of 2 MiB: up to 36.6 bytes per entry for a run
/// of 262,145 entries instead of 22 (docs/performance.md). 2 MiB pages would take about 40% off a hit at
/// 1,000,000 entries (81 ns to 48 in the host benchmark), which already meets its 100 ns target in 4 KiB pages.
struct Base {
    keys: VVec<u64>,
    vals: VVec<u64>,
    stamps: VVec<u32>,
    fence: VVec<u64>,
    filter: VVec<u64>,
}

impl Base {
    fn empty() -> Self {
        Self {
            keys: VVec::new(),
            vals: VVec::new(),
            stamps: VVec::new(),
            fence: VVec::new(),
            filter: VVec::new(),
        }
    }

    /// A base over sorted `keys`/`vals` and their `stamps` (checked, once), with its fence and filter built.
    fn from_sorted(keys: KVVec<u64>, vals: KVVec<u64>, stamps: KVVec<u32>) -> Result<Self> {
        if stamps.len() != keys.len() {
            return Err(EINVAL);
        }
        // Gathered by doubling: each is copied into an array of exactly its length, then freed.
        let (keys, vals, stamps) = (exact(keys)?, exact(vals)?, exact(stamps)?);
        let (fence, filter) = index_of(&keys)?;
        Run::new(&keys, &vals, &fence, &filter).map_err(|_| EINVAL)?;
        Ok(Self {
            keys,
            vals,
            stamps,
            fence,
            filter,
        })
    }

    /// The packed entry of `unit` and when it was made, if the run has one.
    fn get_stamped(&self, unit: u64) -> Option<(u64, u32)> {
        let i = self.run().lower_bound(unit);
        match (self.keys.get(i), self.vals.get(i)) {
            // Same length as `keys` (checked by `from_sorted`, written by `merge_stamped`).
            (Some(&k), Some(&v)) if k == unit => {
                Some((v, self.stamps.get(i).copied().unwrap_or(0)))
            }
            _ => None,
        }
    }

    fn run(&self) -> Run<'_> {
        // Built by `from_sorted` (checked) or from `merge` output (sorted by construction).
        Run::new_unchecked(&self.keys, &self.vals, &self.fence, &self.filter)
    }
}

/// The fence and the filter of sorted `keys`: what a lookup reads before the keys.
fn index_of(keys: &[u64]) -> Result<(VVec<u64>, VVec<u64>)> {
    let mut fence = VVec::new();
    fence.resize(sorted::fence_len(keys), 0, GFP_KERNEL)?;
    sorted::build_fence(keys, &mut fence).map_err(|_| EINVAL)?;
    let mut filter = VVec::new();
    filter.resize(sorted::filter_len(keys.len()), 0, GFP_KERNEL)?;
    sorted::build_filter(keys, &mut filter).map_err(|_| EINVAL)?;
    Ok((fence, filter))
}

/// `v` in a vmalloc'ed array of exactly its length; `v` is freed.
fn exact<T: Copy>(v: KVVec<T>) -> Result<VVec<T>> {
    let mut copy = VVec::with_capacity(v.len(), GFP_KERNEL)?;
    copy.extend_from_slice(&v, GFP_KERNEL)?;
    Ok(copy)
}

/// The remap table of one target.
pub(crate) struct RemapTable {
    run: RcuBox<Base>,
    changes: ValueXa,
    /// When each entry set in `changes` was made ([`stamp_of`]); tombstones have none.
    change_stamps: ValueXa,
    /// Entries in `changes`, tombstones included.
    changed: AtomicUsize,
    remapped: AtomicU64,
    pending: AtomicU64,
}

impl RemapTable {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            run: RcuBox::new(KBox::new(Base::empty(), GFP_KERNEL)?)?,
            changes: ValueXa::new()?,
            change_stamps: ValueXa::new()?,
            changed: AtomicUsize::new(0),
            remapped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        })
    }

    /// Replaces the contents of an empty table with `keys`/`vals`/`stamps` (strictly ascending units, their
    /// packed entries and when each was made): how a loaded checkpoint becomes the run in one step instead of
    /// one insert per entry.
    pub(crate) fn install(&self, keys: KVVec<u64>, vals: KVVec<u64>, stamps: KVVec<u32>) -> Result {
        if !self.is_empty() || self.changed.load(Ordering::Relaxed) != 0 {
            return Err(EINVAL);
        }
        let (mut remapped, mut pending) = (0u64, 0u64);
        for &v in vals.iter() {
            match Entry::unpack(v) {
                Entry::Remapped { .. } => remapped = remapped.saturating_add(1),
                Entry::Pending => pending = pending.saturating_add(1),
            }
        }
        let base = KBox::new(Base::from_sorted(keys, vals, stamps)?, GFP_KERNEL)?;
        self.run.update(|_| Ok(Some(base)))?;
        self.remapped.store(remapped, Ordering::Relaxed);
        self.pending.store(pending, Ordering::Relaxed);
        Ok(())
    }

    /// Sets (or replaces) the entry of `unit`, made at `stamp` ([`stamp_of`]).
    pub(crate) fn insert(&self, unit: u64, entry: Entry, stamp: u32) -> Result {
        let packed = entry.pack().ok_or(EINVAL)?;
        let old = self.get(unit);
        // The time first: a reader that finds the new entry then finds its time too.
        self.change_stamps.store(unit, u64::from(stamp))?;
        self.store_change(unit, packed)?;
        if let Some(old) = old {
            self.counter(old).fetch_sub(1, Ordering::Relaxed);
        }
        self.counter(entry).fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Drops the entry of `unit`, returning it. Fails only for lack of memory (for a tombstone).
    pub(crate) fn remove(&self, unit: u64) -> Result<Option<Entry>> {
        let Some(old) = self.get(unit) else {
            return Ok(None);
        };
        if self.run.read(|b| b.run().get(unit)).is_some() {
            self.store_change(unit, TOMBSTONE)?;
        } else if self.changes.erase(unit).is_some() {
            self.changed.fetch_sub(1, Ordering::Relaxed);
        }
        self.change_stamps.erase(unit);
        self.counter(old).fetch_sub(1, Ordering::Relaxed);
        Ok(Some(old))
    }

    fn store_change(&self, unit: u64, value: u64) -> Result {
        let new = self.changes.load(unit).is_none();
        self.changes.store(unit, value)?;
        if new {
            self.changed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Merges the changes into a new run once there are enough of them. Costs a copy of the table and an RCU
    /// grace period; on failure (memory) the changes simply stay where they are.
    pub(crate) fn compact_if_due(&self) -> Result {
        let changed = self.changed.load(Ordering::Relaxed);
        let run_len = self.run.read(|b| b.keys.len());
        if changed < COMPACT_MIN.max(run_len / COMPACT_FRACTION) {
            return Ok(());
        }
        self.compact()
    }

    /// Merges every change into a new run and empties the changes.
    pub(crate) fn compact(&self) -> Result {
        if self.changed.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let total = usize::try_from(self.remapped().saturating_add(self.pending()))?;
        let mut keys = VVec::new();
        let mut vals = VVec::new();
        let mut stamps = VVec::new();
        keys.resize(total, 0, GFP_KERNEL)?;
        vals.resize(total, 0, GFP_KERNEL)?;
        stamps.resize(total, 0, GFP_KERNEL)?;
        self.run.update(|old| {
            let changes = Changes {
                xa: &self.changes,
                stamps: &self.change_stamps,
                next: Some(0),
            };
            let n = sorted::merge_stamped(
                old.run(),
                &old.stamps,
                changes,
                TOMBSTONE,
                &mut keys,
                &mut vals,
                &mut stamps,
            )
            .map_err(|_| EINVAL)?;
            // The counters and the layers must agree; if not, keep the old run rather than lose entries.
            if n != total {
                return Err(EINVAL);
            }
            let (fence, filter) = index_of(&keys)?;
            let (keys, vals) = (core::mem::take(&mut keys), core::mem::take(&mut vals));
            let stamps = core::mem::take(&mut stamps);
            let base = Base {
                keys,
                vals,
                stamps,
                fence,
                filter,
            };
            Ok(Some(KBox::new(base, GFP_KERNEL)?))
        })?;
        // The new run holds every change: readers see the same entry in both layers until it is erased here.
        for xa in [&self.changes, &self.change_stamps] {
            let mut next = Some(0);
            while let Some(unit) = next.and_then(|n| xa.find(n, u64::MAX)) {
                xa.erase(unit);
                next = unit.checked_add(1);
            }
        }
        self.changed.store(0, Ordering::Relaxed);
        Ok(())
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

    /// The entries from `first` on, in unit order, each with when it was made (for checkpoints and resyncs).
    pub(crate) fn stamped_from(&self, first: u64) -> Stamped<'_> {
        Stamped {
            table: self,
            next: Some(first),
        }
    }

    /// The entry of `unit` and when it was made.
    pub(crate) fn get_stamped(&self, unit: u64) -> Option<(Entry, u32)> {
        let found = match self.changes.load(unit) {
            Some(TOMBSTONE) => return None,
            // Stored before the entry (`insert`), so present; 0 only if that ordering were broken.
            Some(v) => Some((v, self.change_stamps.load(unit).map_or(0, stamp_of))),
            None => self.run.read(|b| b.get_stamped(unit)),
        };
        found.map(|(v, s)| (Entry::unpack(v), s))
    }

    /// Calls `f` for every entry in unit order, stopping at its first error. With no pending changes this is a
    /// walk over the run inside one RCU read-side section, so `f` must not sleep.
    pub(crate) fn visit(&self, mut f: impl FnMut(u64, Entry) -> Result) -> Result {
        if self.changed.load(Ordering::Relaxed) != 0 {
            return self.entries_from(0).try_for_each(|(u, e)| f(u, e));
        }
        self.run.read(|b| {
            b.run()
                .iter_from(0)
                .try_for_each(|(u, v)| f(u, Entry::unpack(v)))
        })
    }

    /// Entries in the run and in the changes, and the run's bytes (`stats` message).
    pub(crate) fn memory(&self) -> TableMemory {
        let (run_entries, words, stamps) = self.run.read(|b| {
            let words = b
                .keys
                .capacity()
                .saturating_add(b.vals.capacity())
                .saturating_add(b.fence.capacity())
                .saturating_add(b.filter.capacity());
            (b.keys.len(), words, b.stamps.capacity())
        });
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        TableMemory {
            run_entries: as_u64(run_entries),
            changes: as_u64(self.changed.load(Ordering::Relaxed)),
            run_bytes: as_u64(words)
                .saturating_mul(8)
                .saturating_add(as_u64(stamps).saturating_mul(4)),
        }
    }

    /// True when no unit has an entry: `map()`'s one check on the common path.
    pub(crate) fn is_empty(&self) -> bool {
        self.remapped() == 0 && self.pending() == 0
    }
}

impl RemapLookup for RemapTable {
    fn get(&self, unit: u64) -> Option<Entry> {
        let packed = match self.changes.load(unit) {
            Some(TOMBSTONE) => return None,
            Some(v) => Some(v),
            None => self.run.read(|b| b.run().get(unit)),
        };
        packed.map(Entry::unpack)
    }

    fn next_entry(&self, first: u64, last: u64) -> Option<u64> {
        let changed = self.changes.find(first, last);
        let until = changed.unwrap_or(last);
        let in_run = self.run.read(|b| b.run().next_key(first, until));
        match (changed, in_run) {
            (Some(c), Some(r)) => Some(c.min(r)),
            (c, r) => c.or(r),
        }
    }
}

/// The changes in unit order, as `(unit, packed value, stamp)` triples (a tombstone's stamp is 0).
struct Changes<'a> {
    xa: &'a ValueXa,
    stamps: &'a ValueXa,
    next: Option<u64>,
}

impl Iterator for Changes<'_> {
    type Item = (u64, u64, u32);

    fn next(&mut self) -> Option<(u64, u64, u32)> {
        loop {
            let unit = self.xa.find(self.next?, u64::MAX)?;
            self.next = unit.checked_add(1);
            // Writers are serialised with the merge, so this holds; skip rather than trust it blindly.
            if let Some(v) = self.xa.load(unit) {
                let stamp = match v {
                    TOMBSTONE => 0,
                    _ => self.stamps.load(unit).map_or(0, stamp_of),
                };
                return Some((unit, v, stamp));
            }
        }
    }
}

/// Iterator over the entries of a [`RemapTable`]; each step moves past one unit, so it ends.
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
            // A removed unit (tombstone) or an entry erased between the two lookups is skipped.
            if let Some(entry) = self.table.get(unit) {
                return Some((unit, entry));
            }
        }
    }
}

/// Iterator over the entries of a [`RemapTable`] with when each was made, as `(unit, (entry, time))`; each
/// step moves past one unit.
pub(crate) struct Stamped<'a> {
    table: &'a RemapTable,
    /// Next unit to look from; `None` once past the last possible unit.
    next: Option<u64>,
}

impl Iterator for Stamped<'_> {
    type Item = (u64, (Entry, u32));

    fn next(&mut self) -> Option<(u64, (Entry, u32))> {
        loop {
            let unit = self.table.next_entry(self.next?, u64::MAX)?;
            self.next = unit.checked_add(1);
            // A removed unit (tombstone) or an entry erased between the two lookups is skipped.
            if let Some(stamped) = self.table.get_stamped(unit) {
                return Some((unit, stamped));
            }
        }
    }
}
