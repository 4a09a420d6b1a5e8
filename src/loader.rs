//! Loading the remap table from the records the metadata module replays at construction.
//!
//! A checkpoint replays its entries in ascending unit order, so they are appended to plain sorted arrays that
//! become the table's run in one step (`RemapTable::install`): no per-entry allocation. The first record that
//! does not simply extend the arrays (a journal record that changes or clears an earlier unit) installs what
//! has been gathered, and it and every later record go through the table's change layer, which is merged into
//! the run at the end.

use kernel::alloc::KVVec;
use kernel::prelude::*;

use crate::imports::{LoadSink, SparePool};
use crate::logic::route::Entry;
use crate::md_abi::{
    RecordAbi, RECORD_ACTIVE, RECORD_CLEARED, RECORD_PENDING, SINK_INVALID, SINK_NO_MEMORY, SINK_OK,
};
use crate::table::{stamp_of, RemapTable};

/// Fills the remap table from the records the metadata module loads.
pub(crate) struct Loader<'a> {
    table: &'a RemapTable,
    /// Sorted entries not yet installed (units, packed entries, when each was made); `None` once they have
    /// been.
    gathered: Option<(KVVec<u64>, KVVec<u64>, KVVec<u32>)>,
}

fn sink_status(r: Result) -> i32 {
    match r {
        Ok(()) => SINK_OK,
        Err(e) if e == ENOMEM => SINK_NO_MEMORY,
        Err(_) => SINK_INVALID,
    }
}

impl<'a> Loader<'a> {
    /// A loader into `table`, which must be empty.
    pub(crate) fn new(table: &'a RemapTable) -> Self {
        Self {
            table,
            gathered: Some((KVVec::new(), KVVec::new(), KVVec::new())),
        }
    }

    /// Installs what was gathered, once.
    fn install(&mut self) -> Result {
        match self.gathered.take() {
            Some((keys, vals, stamps)) => self.table.install(keys, vals, stamps),
            None => Ok(()),
        }
    }

    /// Appends `unit` if it extends the gathered arrays; false when it does not (or nothing is gathered).
    fn append(&mut self, unit: u64, packed: u64, stamp: u32) -> Result<bool> {
        let Some((keys, vals, stamps)) = self.gathered.as_mut() else {
            return Ok(false);
        };
        if keys.last().is_some_and(|&last| last >= unit) {
            return Ok(false);
        }
        // Reserve all three first, so a failure leaves them the same length.
        keys.reserve(1, GFP_KERNEL)?;
        vals.reserve(1, GFP_KERNEL)?;
        stamps.reserve(1, GFP_KERNEL)?;
        keys.push(unit, GFP_KERNEL)?;
        vals.push(packed, GFP_KERNEL)?;
        stamps.push(stamp, GFP_KERNEL)?;
        Ok(true)
    }

    fn apply(&mut self, rec: &RecordAbi) -> Result {
        let entry = match rec.state {
            // The metadata module checked the spare index against the member count; the pool checks the
            // unit against that spare's size (`claim_loaded_units`).
            RECORD_ACTIVE => Entry::Remapped {
                spare: rec.spare_index,
                unit: rec.spare_unit,
            },
            RECORD_PENDING => Entry::Pending,
            RECORD_CLEARED => {
                self.install()?;
                self.table.remove(rec.main_unit)?;
                return Ok(());
            }
            _ => return Err(EINVAL),
        };
        let packed = entry.pack().ok_or(EINVAL)?;
        // The entry keeps the time its record says it was made.
        let stamp = stamp_of(rec.timestamp);
        if self.append(rec.main_unit, packed, stamp)? {
            return Ok(());
        }
        self.install()?;
        self.table.insert(rec.main_unit, entry, stamp)
    }

    /// Ends the load: installs what is left and folds the journal's changes into the run.
    pub(crate) fn finish(mut self) -> Result {
        self.install()?;
        self.table.compact()
    }
}

impl LoadSink for Loader<'_> {
    fn record(&mut self, rec: &RecordAbi) -> i32 {
        sink_status(self.apply(rec))
    }
}

/// Marks the spare units of the loaded remaps used, so they are never handed out again. `pool_units(spare)`
/// is the size of each spare's pool (`None`: no such spare). `EUCLEAN` for an entry outside its spare's pool,
/// `EINVAL` for two entries on one spare unit.
pub(crate) fn claim_loaded_units(
    table: &RemapTable,
    pool: &mut SparePool,
    pool_units: impl Fn(u32) -> Option<u64>,
) -> Result {
    table.visit(|_, entry| match entry {
        Entry::Remapped { spare, unit } => {
            if pool_units(spare).is_none_or(|n| unit >= n) {
                return Err(EUCLEAN);
            }
            pool.claim(spare, unit).map_err(|_| EINVAL)
        }
        Entry::Pending => Ok(()),
    })
}
