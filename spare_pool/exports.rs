//! The C ABI of dm-remap-v4-spare-pool: the allocator of one setup's spares behind an opaque handle. The only
//! `unsafe` of this module. Calls on one handle must be serialised by the caller (the core holds its update
//! mutex).
//!
//! Spares are numbered in the order they were added, which is the setup's member index; the order in which
//! units are handed out across them is `pool::pick_spare`.

use kernel::ffi::c_int;
use kernel::prelude::*;

use crate::bitmap::{words_needed, Bitmap, Counts, Tally};
use crate::error::Error as PoolError;
use crate::helper_abi::HELPER_ABI_VERSION;
use crate::pool::{pick_spare, Candidate, SpareState, MAX_SPARES};
use crate::sizing::check_min_spare;

/// The words of one spare's bitmap (see `bitmap.rs`) and the view's tally: each call resumes the view in
/// O(1). Words are `kvmalloc`ed: a large spare's bitmap is megabytes.
struct SpareSlot {
    words: KVVec<u64>,
    units: u64,
    tally: Tally,
    state: SpareState,
    same_device_as_main: bool,
}

impl SpareSlot {
    fn with_bitmap<T>(
        &mut self,
        f: impl FnOnce(&mut Bitmap<'_>) -> core::result::Result<T, PoolError>,
    ) -> core::result::Result<T, PoolError> {
        let mut bitmap = Bitmap::resume(&mut self.words, self.units, self.tally)?;
        let result = f(&mut bitmap);
        self.tally = bitmap.tally();
        result
    }

    fn counts(&mut self) -> Counts {
        self.with_bitmap(|b| Ok(b.counts())).unwrap_or_default()
    }
}

/// The spares of one setup.
pub struct PoolHandle {
    spares: KVec<SpareSlot>,
}

impl PoolHandle {
    fn slot(&mut self, spare: u32) -> core::result::Result<&mut SpareSlot, PoolError> {
        let i = usize::try_from(spare).map_err(|_| PoolError::NoSuchSpare)?;
        self.spares.get_mut(i).ok_or(PoolError::NoSuchSpare)
    }

    fn allocate(&mut self) -> core::result::Result<(u32, u64), PoolError> {
        let mut candidates = [Candidate {
            state: SpareState::Missing,
            same_device_as_main: false,
            free: 0,
        }; MAX_SPARES];
        for (c, s) in candidates.iter_mut().zip(self.spares.iter_mut()) {
            *c = Candidate {
                state: s.state,
                same_device_as_main: s.same_device_as_main,
                free: s.counts().free,
            };
        }
        let n = self.spares.len();
        let index = pick_spare(candidates.iter().take(n).copied()).ok_or(PoolError::NoSpace)?;
        let spare = u32::try_from(index).map_err(|_| PoolError::NoSuchSpare)?;
        let unit = self.slot(spare)?.with_bitmap(|b| b.allocate())?;
        Ok((spare, unit))
    }
}

/// The helper ABI version this module was built with; the core checks it at load time.
#[no_mangle]
pub extern "C" fn dm_remap_v4_spare_pool_abi_version() -> u32 {
    HELPER_ABI_VERSION
}

/// Creates an allocator without spares; stores the handle in `*out` and returns 0, or `-ENOMEM`.
///
/// # Safety
///
/// `out` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_create(out: *mut *mut PoolHandle) -> c_int {
    let handle = (|| -> Result<KBox<PoolHandle>> {
        let spares = KVec::with_capacity(MAX_SPARES, GFP_KERNEL)?;
        Ok(KBox::new(PoolHandle { spares }, GFP_KERNEL)?)
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

/// Adds a spare of `units` free units, active, as the next spare index; `same_device_as_main` non-zero when
/// it shares the main's physical device (used last). 0, or a negative errno (`-ENOMEM`, `-E2BIG` beyond
/// `MAX_SPARES` spares).
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_add_spare(
    h: *mut PoolHandle,
    units: u64,
    same_device_as_main: u32,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    let added = (|| -> Result {
        if h.spares.len() >= MAX_SPARES {
            return Err(Error::from_errno(PoolError::TooManySpares.errno()));
        }
        let n = words_needed(units).map_err(|e| Error::from_errno(e.errno()))?;
        let mut words = KVVec::with_capacity(n, GFP_KERNEL)?;
        words.resize(n, 0, GFP_KERNEL)?;
        let tally = Bitmap::format(&mut words, units)
            .map_err(|e| Error::from_errno(e.errno()))?
            .tally();
        let slot = SpareSlot {
            words,
            units,
            tally,
            state: SpareState::Active,
            same_device_as_main: same_device_as_main != 0,
        };
        h.spares
            .push_within_capacity(slot)
            .map_err(|_| Error::from_errno(PoolError::TooManySpares.errno()))
    })();
    match added {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Marks `unit` of `spare` used (a remap loaded from metadata). 0, or a negative errno (`-ENODEV` no such
/// spare, `-EINVAL` out of range or already used).
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_claim(
    h: *mut PoolHandle,
    spare: u32,
    unit: u64,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    match h.slot(spare).and_then(|s| s.with_bitmap(|b| b.claim(unit))) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

/// Allocates a free unit by the pool's order policy into `*spare` and `*unit`. 0, or `-ENOSPC` when no
/// active spare has a free unit.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently; `spare` and `unit` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_allocate(
    h: *mut PoolHandle,
    spare: *mut u32,
    unit: *mut u64,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    match h.allocate() {
        Ok((s, u)) => {
            // SAFETY: valid for writes (caller's contract).
            unsafe {
                spare.write(s);
                unit.write(u);
            }
            0
        }
        Err(e) => e.errno(),
    }
}

/// Returns an allocated `unit` of `spare` to the pool (an allocation whose remap failed, an unremap). 0, or a
/// negative errno.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_free(
    h: *mut PoolHandle,
    spare: u32,
    unit: u64,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    match h.slot(spare).and_then(|s| s.with_bitmap(|b| b.free(unit))) {
        Ok(()) => 0,
        Err(e) => e.errno(),
    }
}

/// Sets the state of `spare` (`SpareState` as a number: 0 active, 1 draining, 2 failed, 3 missing): only an
/// active spare is allocated from; its units stay claimed whatever its state. 0, `-ENODEV` for no such
/// spare, `-EINVAL` for an unknown state.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_set_state(
    h: *mut PoolHandle,
    spare: u32,
    state: u32,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    let Some(state) = SpareState::from_u32(state) else {
        return EINVAL.to_errno();
    };
    match h.slot(spare) {
        Ok(s) => {
            s.state = state;
            0
        }
        Err(e) => e.errno(),
    }
}

/// Used and total units of `spare`; both 0 for a spare that does not exist.
///
/// # Safety
///
/// `h` must be a live handle, not used concurrently; `used` and `total` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_counts(
    h: *mut PoolHandle,
    spare: u32,
    used: *mut u64,
    total: *mut u64,
) {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *h };
    let counts = h.slot(spare).map(|s| s.counts()).unwrap_or_default();
    // SAFETY: valid for writes (caller's contract).
    unsafe {
        used.write(counts.used);
        total.write(counts.total);
    }
}

/// The minimum spare size policy (`sizing::check_min_spare`): 0 when `pool_sectors`, the spares' pool areas
/// together, hold at least `min_percent` percent of `main_sectors`; else `-ENOSPC` with the sectors required
/// in `*required` (`-EOVERFLOW` when that does not fit).
///
/// # Safety
///
/// `required` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_spare_pool_check_min_spare(
    main_sectors: u64,
    pool_sectors: u64,
    min_percent: u32,
    required: *mut u64,
) -> c_int {
    match check_min_spare(main_sectors, pool_sectors, min_percent) {
        Ok(()) => 0,
        Err(e) => {
            if let PoolError::SpareTooSmall {
                required_sectors, ..
            } = e
            {
                // SAFETY: valid for writes (caller's contract).
                unsafe { required.write(required_sectors) };
            }
            e.errno()
        }
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
