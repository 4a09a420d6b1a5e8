//! The C ABI of dm-remap-v4-spare-pool: one spare's allocator behind an opaque handle. The only `unsafe` of
//! this module. Calls on one handle must be serialised by the caller (the core holds its update mutex).

use kernel::ffi::c_int;
use kernel::prelude::*;

use crate::bitmap::{words_needed, Bitmap, Tally};
use crate::error::Error as PoolError;
use crate::helper_abi::HELPER_ABI_VERSION;

/// The words of one spare's bitmap (see `bitmap.rs`) and the view's tally: each call resumes the view in
/// O(1). Words are `kvmalloc`ed: a large spare's bitmap is megabytes.
pub struct PoolHandle {
    words: KVVec<u64>,
    units: u64,
    tally: Tally,
}

impl PoolHandle {
    fn with_bitmap<T>(
        &mut self,
        f: impl FnOnce(&mut Bitmap<'_>) -> core::result::Result<T, PoolError>,
    ) -> core::result::Result<T, PoolError> {
        let mut bitmap = Bitmap::resume(&mut self.words, self.units, self.tally)?;
        let result = f(&mut bitmap);
        self.tally = bitmap.tally();
        result
    }
}

/// The helper ABI version this module was built with; the core checks it at load time.
#[no_mangle]
pub extern "C" fn dm_remap_v4_spare_pool_abi_version() -> u32 {
    HELPER_ABI_VERSION
}

/// Creates an allocator for a pool of `units` free units; stores the handle in `*out` and returns 0, or a
/// negative errno (`-ENOMEM`, `-E2BIG`).
///
/// # Safety
///
/// `out` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_create(
    units: u64,
    out: *mut *mut PoolHandle,
) -> c_int {
    let handle = (|| -> Result<KBox<PoolHandle>> {
        let n = words_needed(units).map_err(|e| Error::from_errno(e.errno()))?;
        let mut words = KVVec::with_capacity(n, GFP_KERNEL)?;
        words.resize(n, 0, GFP_KERNEL)?;
        let tally = Bitmap::format(&mut words, units)
            .map_err(|e| Error::from_errno(e.errno()))?
            .tally();
        Ok(KBox::new(
            PoolHandle {
                words,
                units,
                tally,
            },
            GFP_KERNEL,
        )?)
    })();
    match handle {
        Ok(h) => {
            // SAFETY: valid for writes (caller's contract).
            unsafe { out.write(KBox::into_raw(h)) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Marks `unit` used (a remap loaded from metadata). 0, or a negative errno (`-EINVAL` out of range or
/// already used).
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_claim(h: *mut PoolHandle, unit: u64) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    match h.with_bitmap(|b| b.claim(unit)) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

/// Allocates a free unit into `*unit`. 0, or `-ENOSPC` when the pool is exhausted.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently; `unit` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_allocate(
    h: *mut PoolHandle,
    unit: *mut u64,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    match h.with_bitmap(|b| b.allocate()) {
        Ok(u) => {
            // SAFETY: valid for writes (caller's contract).
            unsafe { unit.write(u) };
            0
        }
        Err(e) => e.errno(),
    }
}

/// Returns an allocated `unit` to the pool (an allocation whose remap failed). 0, or `-EINVAL`.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_free(h: *mut PoolHandle, unit: u64) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    match h.with_bitmap(|b| b.free(unit)) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

/// Used units and total units of the pool.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently; `used` and `total` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_counts(
    h: *mut PoolHandle,
    used: *mut u64,
    total: *mut u64,
) {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    let counts = h.with_bitmap(|b| Ok(b.counts())).unwrap_or_default();
    // SAFETY: valid for writes (caller's contract).
    unsafe {
        used.write(counts.used);
        total.write(counts.total);
    }
}

/// Frees a handle; null is ignored.
///
/// # Safety
///
/// `h` must be null or a live handle from `dm_remap_v4_spare_pool_create()`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_destroy(h: *mut PoolHandle) {
    if !h.is_null() {
        // SAFETY: made by `KBox::into_raw` in `create`, destroyed once.
        drop(unsafe { KBox::from_raw(h) });
    }
}
