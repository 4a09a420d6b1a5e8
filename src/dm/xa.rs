//! An XArray of integer values, read lock-free: the storage of the remap table.
//!
//! The kernel crate's `XArray` stores owned pointers and reads under the XArray's spinlock; the I/O path needs
//! `xa_load()`/`xa_find()`, which take only the RCU read lock, on plain integers (`xa_mk_value`). Indices and
//! values are `unsigned long`, 64 bits on the 64-bit kernels this module supports.

use core::pin::Pin;

use kernel::alloc::KBox;
use kernel::prelude::*;
use kernel::types::Opaque;

use super::ffi;

/// Values are at most 62 bits (`xa_mk_value` needs the top bit of a `long` free, and leaves one tag bit).
pub(crate) const MAX_VALUE: u64 = (1 << 62) - 1;

/// The XArray, pinned: it must not move once initialised.
pub(crate) struct ValueXa(Pin<KBox<Opaque<ffi::xarray>>>);

// SAFETY: the XArray serialises writers with its own lock and lets readers in under RCU, from any thread.
unsafe impl Send for ValueXa {}
// SAFETY: as above: every method is safe to call concurrently.
unsafe impl Sync for ValueXa {}

impl ValueXa {
    /// An empty array.
    pub(crate) fn new() -> Result<Self> {
        let xa = KBox::pin(Opaque::<ffi::xarray>::zeroed(), GFP_KERNEL)?;
        // SAFETY: `xa` points to pinned memory that nothing else uses yet.
        unsafe { ffi::dmr_xa_init(xa.get()) };
        Ok(Self(xa))
    }

    /// The value at `index`. Never sleeps; safe in `map()`.
    pub(crate) fn load(&self, index: u64) -> Option<u64> {
        let index = usize::try_from(index).ok()?;
        let mut value: usize = 0;
        // SAFETY: initialised in `new`; `value` is a valid out-pointer.
        let found = unsafe { ffi::dmr_xa_load_value(self.0.get(), index, &mut value) };
        found.then_some(value as u64)
    }

    /// The first index in `first..=last` holding a value. Never sleeps; safe in `map()`.
    pub(crate) fn find(&self, first: u64, last: u64) -> Option<u64> {
        let first = usize::try_from(first).ok()?;
        let last = usize::try_from(last).unwrap_or(usize::MAX);
        let mut index: usize = 0;
        // SAFETY: initialised in `new`; `index` is a valid out-pointer.
        let found = unsafe { ffi::dmr_xa_find_index(self.0.get(), first, last, &mut index) };
        found.then_some(index as u64)
    }

    /// Stores `value` (at most [`MAX_VALUE`]) at `index`, replacing what was there. May sleep to allocate.
    pub(crate) fn store(&self, index: u64, value: u64) -> Result {
        if value > MAX_VALUE {
            return Err(EINVAL);
        }
        let (index, value) = (usize::try_from(index)?, usize::try_from(value)?);
        // SAFETY: initialised in `new`; the XArray takes its own lock for writers.
        kernel::error::to_result(unsafe { ffi::dmr_xa_store_value(self.0.get(), index, value) })
    }

    /// Removes the value at `index`, returning it. Never allocates.
    pub(crate) fn erase(&self, index: u64) -> Option<u64> {
        let index = usize::try_from(index).ok()?;
        let mut old: usize = 0;
        // SAFETY: initialised in `new`; the XArray takes its own lock for writers; `old` is a valid out-pointer.
        let found = unsafe { ffi::dmr_xa_erase_value(self.0.get(), index, &mut old) };
        found.then_some(old as u64)
    }
}

impl Drop for ValueXa {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`; no reader is left when the owner drops it (the target's destructor
        // runs after all I/O completed). Values are not pointers: nothing else to free.
        unsafe { ffi::dmr_xa_destroy(self.0.get()) };
    }
}
