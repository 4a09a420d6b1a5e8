//! Relocated units written to their spare units together, just before the commit that maps them.
//!
//! The worker handles a group of failed writes under one lock and commits their mappings once. Writing each
//! relocated unit with a synchronous write of its own made a slow spare serve those writes one behind the
//! other: with 1 ms per write, a group of 16 spent 16 ms before its one flush and commit. The worker now
//! keeps each relocated unit's data in a buffer of its own ([`SpareWrites`]) until the group commits, or until
//! [`BATCH_WRITES`] wait, and submits them all at once ([`WriteBatch`]). A spare unit that fails its write is
//! retired and the data tried on fresh units one at a time, as before; when none takes it, its mapping leaves
//! the batch and the bio that wrote it fails.

use core::ffi::CStr;

use kernel::prelude::*;

use crate::dm::worker::GROUP;
use crate::dm::{WriteBatch, BATCH_WRITES};
use crate::remapper::{unit_buffer, Remapper, Updates, SPARE_ATTEMPTS};

// A group's bios are tracked by one bit each in `SpareWrites::lost`.
const _: () = assert!(GROUP <= 32);

/// A buffer for one relocated unit, and where its data goes.
struct Slot {
    main_unit: u64,
    spare: u32,
    spare_unit: u64,
    /// Bit of the worker's bio that wrote it (see [`SpareWrites::bio`]).
    bio: u32,
    data: KVec<u8>,
}

/// The relocated units waiting for the group's commit, in buffers allocated by the constructor: the error path
/// allocates nothing.
pub(crate) struct SpareWrites {
    /// The first `waiting` hold data to write.
    slots: KVec<Slot>,
    waiting: usize,
    /// Bit of the worker's bio being handled (bit `i` for the `i`-th bio of the group); 0 outside the worker,
    /// whose relocations are written at once.
    pub(crate) bio: u32,
    /// Bits of the group's bios that lost a unit: no spare unit took its data.
    pub(crate) lost: u32,
}

impl SpareWrites {
    pub(crate) fn new(unit_bytes: u32) -> Result<Self> {
        let mut slots = KVec::with_capacity(BATCH_WRITES, GFP_KERNEL)?;
        for _ in 0..BATCH_WRITES {
            let slot = Slot {
                main_unit: 0,
                spare: 0,
                spare_unit: 0,
                bio: 0,
                data: unit_buffer(unit_bytes)?,
            };
            slots.push(slot, GFP_KERNEL)?;
        }
        Ok(Self {
            slots,
            waiting: 0,
            bio: 0,
            lost: 0,
        })
    }
}

impl Remapper {
    /// Gives `unit` a fresh spare unit for the data in `u.buf` and stages the mapping, like
    /// [`Remapper::stage_relocation`], but in the worker the data is written with the rest of its group before
    /// the commit. Returns the spare and sector.
    pub(crate) fn stage_relocation_batched(
        &self,
        u: &mut Updates,
        unit: u64,
    ) -> Result<(u32, u64), (Error, &'static CStr)> {
        if u.spare_writes.bio == 0 || u.spare_writes.slots.is_empty() {
            return self.stage_relocation(u, unit);
        }
        self.refuse_if_md_failed()?;
        if u.spare_writes.waiting >= u.spare_writes.slots.len() {
            self.write_waiting(u);
        }
        let (spare, spare_unit, sector) = self.claim_spare_unit(u)?;
        self.stage_new(u, unit, spare, spare_unit)?;
        // Staging may have committed (and so written out) the batch: `waiting` only went down.
        let bio = u.spare_writes.bio;
        match u.spare_writes.slots.get_mut(u.spare_writes.waiting) {
            Some(slot) => {
                core::mem::swap(&mut slot.data, &mut u.buf);
                (slot.main_unit, slot.spare, slot.spare_unit, slot.bio) =
                    (unit, spare, spare_unit, bio);
                u.spare_writes.waiting = u.spare_writes.waiting.saturating_add(1);
            }
            // Not reached (a slot was free); written at once.
            None => {
                if !self.write_spare_unit(spare, sector, &mut u.buf) {
                    self.rewrite_waiting(u, unit, spare, spare_unit)?;
                }
            }
        }
        Ok((spare, sector))
    }

    /// Writes the waiting relocated units to their spare units, all in flight together (sleeps). Relocated
    /// data must be on the spare before the flush that precedes its commit: [`Remapper::commit_batch`] calls
    /// this first.
    pub(crate) fn write_waiting(&self, u: &mut Updates) {
        let waiting = u.spare_writes.waiting;
        u.spare_writes.waiting = 0;
        let Some(slots) = u.spare_writes.slots.get(..waiting) else {
            return;
        };
        if slots.is_empty() {
            return;
        }
        let mut failed = 0u32;
        {
            let mut batch = WriteBatch::new();
            let mut in_batch = 0u32;
            let mut bit = 1u32;
            for w in slots.iter() {
                let at = self
                    .spare(w.spare)
                    .zip(self.spare_sector(w.spare, w.spare_unit));
                match at.map(|(s, sector)| batch.push(&s.dev, sector, &w.data)) {
                    Some(Ok(())) => in_batch |= bit,
                    _ => failed |= bit,
                }
                bit = bit.wrapping_shl(1);
            }
            // The batch reports its writes in order, without the ones left out.
            let mut batch_failed = batch.submit();
            let mut bit = 1u32;
            while in_batch != 0 {
                if in_batch & bit != 0 {
                    if batch_failed & 1 != 0 {
                        failed |= bit;
                    }
                    batch_failed >>= 1;
                    in_batch &= !bit;
                }
                bit = bit.wrapping_shl(1);
            }
        }
        let mut bit = 1u32;
        for i in 0..waiting {
            if failed & bit != 0 {
                if let Some(slot) = u.spare_writes.slots.get_mut(i) {
                    // The data goes through `u.buf` (whatever that holds comes back after).
                    core::mem::swap(&mut slot.data, &mut u.buf);
                    let (unit, spare, spare_unit, bio) =
                        (slot.main_unit, slot.spare, slot.spare_unit, slot.bio);
                    if self.rewrite_waiting(u, unit, spare, spare_unit).is_err() {
                        u.spare_writes.lost |= bio;
                    }
                    if let Some(slot) = u.spare_writes.slots.get_mut(i) {
                        core::mem::swap(&mut slot.data, &mut u.buf);
                    }
                }
            }
            bit = bit.wrapping_shl(1);
        }
    }

    /// After the write of `unit`'s data (in `u.buf`) to `spare_unit` of `spare` failed: retires that unit,
    /// writes the data to fresh ones and points the staged mapping there. When none takes it, the mapping
    /// leaves the batch.
    fn rewrite_waiting(
        &self,
        u: &mut Updates,
        unit: u64,
        spare: u32,
        spare_unit: u64,
    ) -> Result<(), (Error, &'static CStr)> {
        self.spare_write_failed(spare, spare_unit);
        let placed = self.write_to_fresh_unit(u, SPARE_ATTEMPTS.saturating_sub(1));
        let staged = u.batch.binary_search_by_key(&unit, |r| r.main_unit);
        if let (Ok((spare, spare_unit, _)), Ok(i)) = (placed, staged) {
            if let Some(r) = u.batch.get_mut(i) {
                r.spare_index = spare;
                r.spare_unit = spare_unit;
                return Ok(());
            }
        }
        if let Ok(i) = staged {
            let _ = u.batch.remove(i);
        }
        let why = match placed {
            Ok((spare, spare_unit, _)) => {
                // Not reached: the mapping was staged. The unit written goes back.
                let _ = u.pool.free(spare, spare_unit);
                self.note_pool(u);
                c"its mapping was not staged"
            }
            Err((_, why)) => why,
        };
        self.write_lost(unit, why);
        Err((EIO, why))
    }
}
