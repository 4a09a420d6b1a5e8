//! The symbols the core imports from its three helper modules (part of the binding layer: the only `unsafe`
//! outside `dm/`).
//!
//! Rust has no stable ABI between separately built crates, and out-of-tree Rust modules cannot link against
//! each other's crates; the helper modules therefore export plain `extern "C"` functions (listed with
//! `EXPORT_SYMBOL_GPL` in each module's `exports.c`), declared here with the `#[repr(C)]` types they share.
//! Importing them is what makes `modprobe dm-remap-v4` load the helpers first.

use core::ffi::CStr;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStrExt;

use crate::dm::Device;
use crate::logic::abi::HELPER_ABI_VERSION;
use crate::md_abi::{OpenParams, OpenReport, RecordAbi, RecordFn, RecordIterFn, ScrubStateAbi};

// The lint looks through `block_device` to a zero-sized array deep inside; a pointer to it is FFI-safe.
#[allow(improper_ctypes)]
extern "C" {
    fn dm_remap_v4_metadata_abi_version() -> u32;
    fn dm_remap_v4_spare_pool_abi_version() -> u32;
    fn dm_remap_v4_setup_reassembly_abi_version() -> u32;
    fn dm_remap_v4_metadata_open(
        bdev: *mut bindings::block_device,
        params: *const OpenParams,
        report: *mut OpenReport,
        sink: Option<RecordFn>,
        ctx: *mut c_void,
        store: *mut *mut c_void,
        error: *mut *const c_char,
    ) -> c_int;
    fn dm_remap_v4_metadata_close(store: *mut c_void);
    fn dm_remap_v4_metadata_version(store: *const c_void) -> u64;
    fn dm_remap_v4_metadata_last_seq(store: *const c_void) -> u64;
    fn dm_remap_v4_metadata_commit(
        store: *mut c_void,
        records: *const RecordAbi,
        n: usize,
        table: RecordIterFn,
        ctx: *mut c_void,
        error: *mut *const c_char,
    ) -> c_int;
    fn dm_remap_v4_metadata_resync(
        store: *mut c_void,
        seq: u64,
        member_count: u32,
        removed_members: u32,
        table: RecordIterFn,
        ctx: *mut c_void,
        error: *mut *const c_char,
    ) -> c_int;
    fn dm_remap_v4_metadata_check_unchanged(store: *mut c_void, error: *mut *const c_char)
        -> c_int;
    fn dm_remap_v4_metadata_scrub_load(store: *mut c_void, out: *mut ScrubStateAbi) -> c_int;
    fn dm_remap_v4_metadata_scrub_save(
        store: *mut c_void,
        state: *const ScrubStateAbi,
        error: *mut *const c_char,
    ) -> c_int;
    fn dm_remap_v4_metadata_mark_dirty(store: *mut c_void, error: *mut *const c_char) -> c_int;
    fn dm_remap_v4_metadata_mark_clean(store: *mut c_void, error: *mut *const c_char) -> c_int;
    fn dm_remap_v4_metadata_plan_format(
        params: *const OpenParams,
        pool_units: *mut u64,
        needed_sectors: *mut u64,
        error: *mut *const c_char,
    ) -> c_int;
    fn dm_remap_v4_spare_pool_check_min_spare(
        main_sectors: u64,
        pool_sectors: u64,
        min_percent: u32,
        required: *mut u64,
    ) -> c_int;
    fn dm_remap_v4_spare_pool_create(out: *mut *mut c_void) -> c_int;
    fn dm_remap_v4_spare_pool_add_spare(h: *mut c_void, units: u64, same_device: u32) -> c_int;
    fn dm_remap_v4_spare_pool_claim(h: *mut c_void, spare: u32, unit: u64) -> c_int;
    fn dm_remap_v4_spare_pool_allocate(h: *mut c_void, spare: *mut u32, unit: *mut u64) -> c_int;
    fn dm_remap_v4_spare_pool_free(h: *mut c_void, spare: u32, unit: u64) -> c_int;
    fn dm_remap_v4_spare_pool_counts(h: *mut c_void, spare: u32, used: *mut u64, total: *mut u64);
    fn dm_remap_v4_spare_pool_set_state(h: *mut c_void, spare: u32, state: u32) -> c_int;
    fn dm_remap_v4_spare_pool_destroy(h: *mut c_void);
}

/// A static message from a helper module, or `fallback`.
fn static_message(msg: *const c_char, fallback: &'static CStr) -> &'static CStr {
    if msg.is_null() {
        fallback
    } else {
        // SAFETY: helper modules point `msg` at one of their static, NUL-terminated messages; they stay
        // loaded while this module (which depends on them) is.
        unsafe { CStr::from_char_ptr(msg) }
    }
}

/// Refuses to initialise the core with helper modules built from another version of the source.
pub(crate) fn check_abi() -> Result {
    // SAFETY: plain functions without arguments or preconditions, exported by loaded helper modules (the
    // module loader resolved the symbols before `init` runs).
    let found = unsafe {
        [
            ("dm-remap-v4-metadata", dm_remap_v4_metadata_abi_version()),
            (
                "dm-remap-v4-spare-pool",
                dm_remap_v4_spare_pool_abi_version(),
            ),
            (
                "dm-remap-v4-setup-reassembly",
                dm_remap_v4_setup_reassembly_abi_version(),
            ),
        ]
    };
    for (module, version) in found {
        if version != HELPER_ABI_VERSION {
            pr_err!(
                "{} has helper ABI {}, this core needs {}: load matching module builds\n",
                module,
                version,
                HELPER_ABI_VERSION
            );
            return Err(EINVAL);
        }
    }
    Ok(())
}

/// Receives the records of the metadata being loaded; returns one of the `SINK_*` codes.
pub(crate) trait LoadSink {
    fn record(&mut self, rec: &RecordAbi) -> i32;
}

extern "C" fn sink_trampoline<S: LoadSink>(ctx: *mut c_void, rec: *const RecordAbi) -> i32 {
    // SAFETY: `ctx` is the `&mut S` that `Metadata::open` passed along with this function, alive and not
    // otherwise used during the call; the metadata module passes a valid record.
    unsafe { (*ctx.cast::<S>()).record(&*rec) }
}

/// Yields the whole remap table for a checkpoint, one record per call, `None` at the end.
pub(crate) trait RecordSource {
    fn next_record(&mut self) -> Option<RecordAbi>;
}

extern "C" fn source_trampoline<S: RecordSource>(ctx: *mut c_void, rec: *mut RecordAbi) -> i32 {
    // SAFETY: `ctx` is the `&mut S` that `Metadata::commit` passed along with this function, alive and not
    // otherwise used during the call; `rec` is valid for writes.
    match unsafe { (*ctx.cast::<S>()).next_record() } {
        Some(r) => {
            // SAFETY: as above.
            unsafe { rec.write(r) };
            1
        }
        None => 0,
    }
}

/// An open metadata region on a spare (owned by `dm-remap-v4-metadata.ko`), closed when dropped.
pub(crate) struct Metadata(NonNull<c_void>);

// SAFETY: the handle is only used through the metadata module's functions, which may run on any thread.
unsafe impl Send for Metadata {}
// SAFETY: no method takes `&self`; `commit` needs `&mut self`, which serialises commits.
unsafe impl Sync for Metadata {}

impl Metadata {
    /// Opens (loading, formatting a blank region, repairing damaged copies) the metadata on `spare`, handing
    /// every loaded record to `sink`. The handle must be dropped before `spare`.
    pub(crate) fn open<S: LoadSink>(
        spare: &Device,
        params: &OpenParams,
        sink: &mut S,
    ) -> core::result::Result<(Self, OpenReport), (Error, &'static CStr)> {
        let mut report = OpenReport::default();
        let mut store: *mut c_void = core::ptr::null_mut();
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: `spare` holds an opened block device, and the owner drops this handle before the device;
        // the other pointers are valid for the call.
        let r = unsafe {
            dm_remap_v4_metadata_open(
                spare.bdev(),
                params,
                &mut report,
                Some(sink_trampoline::<S>),
                core::ptr::from_mut(sink).cast(),
                &mut store,
                &mut msg,
            )
        };
        match NonNull::new(store) {
            Some(store) if r == 0 => Ok((Self(store), report)),
            _ => Err((
                errno_or_eio(r),
                static_message(msg, c"Cannot open the spare's metadata"),
            )),
        }
    }

    /// The metadata version of the current superblock (grows with every checkpoint).
    pub(crate) fn version(&self) -> u64 {
        // SAFETY: a live handle; `&self` excludes a concurrent commit (which takes `&mut self`).
        unsafe { dm_remap_v4_metadata_version(self.0.as_ptr()) }
    }

    /// The sequence number of the last commit this member recorded.
    pub(crate) fn last_seq(&self) -> u64 {
        // SAFETY: a live handle; `&self` excludes a concurrent commit (which takes `&mut self`).
        unsafe { dm_remap_v4_metadata_last_seq(self.0.as_ptr()) }
    }

    /// `ESTALE` when someone else wrote to this spare's metadata since it was loaded or last written through
    /// this handle (a previous table that was still live).
    pub(crate) fn check_unchanged(&mut self) -> core::result::Result<(), (Error, &'static CStr)> {
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: a live handle, used exclusively (`&mut self`); `msg` is a valid out-pointer.
        let r = unsafe { dm_remap_v4_metadata_check_unchanged(self.0.as_ptr(), &mut msg) };
        md_result(r, msg, c"metadata changed since the table was loaded")
    }

    /// Brings this member up to date with the setup: a checkpoint of the whole table from `table`, recorded
    /// under commit sequence `seq`, `member_count` spares and the removed-members mask `removed_members`
    /// (bit `i`: member `i` was removed from the setup; the metadata refuses a mask that clears a bit).
    pub(crate) fn resync<S: RecordSource>(
        &mut self,
        seq: u64,
        member_count: u32,
        removed_members: u32,
        table: &mut S,
    ) -> core::result::Result<(), (Error, &'static CStr)> {
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: a live handle, used exclusively (`&mut self`); `table` stays borrowed for the call, matching
        // `source_trampoline::<S>`.
        let r = unsafe {
            dm_remap_v4_metadata_resync(
                self.0.as_ptr(),
                seq,
                member_count,
                removed_members,
                source_trampoline::<S>,
                core::ptr::from_mut(table).cast(),
                &mut msg,
            )
        };
        md_result(r, msg, c"metadata resync failed")
    }

    /// Commits `records` durably (returns once they are on stable media). When the journal is full the
    /// metadata module writes a checkpoint instead, pulling the whole table (with `records` applied) from
    /// `table`.
    pub(crate) fn commit<S: RecordSource>(
        &mut self,
        records: &[RecordAbi],
        table: &mut S,
    ) -> core::result::Result<(), (Error, &'static CStr)> {
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: a live handle, used exclusively (`&mut self`); `records` is a valid slice; `table` stays
        // borrowed for the call, matching `source_trampoline::<S>`.
        let r = unsafe {
            dm_remap_v4_metadata_commit(
                self.0.as_ptr(),
                records.as_ptr(),
                records.len(),
                source_trampoline::<S>,
                core::ptr::from_mut(table).cast(),
                &mut msg,
            )
        };
        md_result(r, msg, c"metadata commit failed")
    }

    /// The scrub state saved on this spare; `Ok(None)` when there is none (a new setup, or both copies
    /// damaged: the state is advisory, the scrub then starts over).
    pub(crate) fn scrub_load(&mut self) -> Result<Option<ScrubStateAbi>> {
        let mut state = ScrubStateAbi::default();
        // SAFETY: a live handle, used exclusively (`&mut self`); `state` is a valid out-pointer.
        let r = unsafe { dm_remap_v4_metadata_scrub_load(self.0.as_ptr(), &mut state) };
        match r {
            0 => Ok(Some(state)),
            r if r == -(bindings::ENOENT as i32) => Ok(None),
            r => Err(errno_or_eio(r)),
        }
    }

    /// Saves the scrub state on this spare: one block written with FUA, nothing else of the metadata
    /// changes.
    pub(crate) fn scrub_save(
        &mut self,
        state: &ScrubStateAbi,
    ) -> core::result::Result<(), (Error, &'static CStr)> {
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: a live handle, used exclusively (`&mut self`); `state` and `msg` are valid for the call.
        let r = unsafe { dm_remap_v4_metadata_scrub_save(self.0.as_ptr(), state, &mut msg) };
        md_result(r, msg, c"saving the scrub state failed")
    }

    /// Writes a dirty shutdown mark on this spare (one block written with FUA; the scrub state is kept): from
    /// now on a crash leaves the setup marked as not shut down cleanly.
    pub(crate) fn mark_dirty(&mut self) -> core::result::Result<(), (Error, &'static CStr)> {
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: a live handle, used exclusively (`&mut self`); `msg` is a valid out-pointer.
        let r = unsafe { dm_remap_v4_metadata_mark_dirty(self.0.as_ptr(), &mut msg) };
        md_result(r, msg, c"writing the dirty shutdown mark failed")
    }

    /// Writes a clean shutdown mark on this spare, recording its current metadata version and commit
    /// sequence (one block written with FUA).
    pub(crate) fn mark_clean(&mut self) -> core::result::Result<(), (Error, &'static CStr)> {
        let mut msg: *const c_char = core::ptr::null();
        // SAFETY: a live handle, used exclusively (`&mut self`); `msg` is a valid out-pointer.
        let r = unsafe { dm_remap_v4_metadata_mark_clean(self.0.as_ptr(), &mut msg) };
        md_result(r, msg, c"writing the clean shutdown mark failed")
    }
}

/// A metadata call's result: `Ok` for 0, else its errno with its static message (or `fallback`).
fn md_result(
    r: c_int,
    msg: *const c_char,
    fallback: &'static CStr,
) -> core::result::Result<(), (Error, &'static CStr)> {
    if r == 0 {
        Ok(())
    } else {
        Err((errno_or_eio(r), static_message(msg, fallback)))
    }
}

fn errno_or_eio(r: c_int) -> Error {
    Error::from_errno(if r < 0 { r } else { -(bindings::EIO as i32) })
}

/// A spare's state in the allocator, numbered as `dm-remap-v4-spare-pool` takes it (its `SpareState`; every
/// spare starts active).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SpareState {
    Draining = 1,
    Failed = 2,
    Missing = 3,
}

/// The allocator of the setup's spares (owned by `dm-remap-v4-spare-pool.ko`), freed when dropped. Spares are
/// numbered by member index, in the order they were added.
pub(crate) struct SparePool(NonNull<c_void>);

// SAFETY: the handle is plain memory in the spare-pool module; `&mut self` methods serialise its use.
unsafe impl Send for SparePool {}
// SAFETY: no method takes `&self`.
unsafe impl Sync for SparePool {}

impl SparePool {
    /// A pool without spares.
    pub(crate) fn new() -> Result<Self> {
        let mut h: *mut c_void = core::ptr::null_mut();
        // SAFETY: `h` is a valid out-pointer.
        let r = unsafe { dm_remap_v4_spare_pool_create(&mut h) };
        match NonNull::new(h) {
            Some(h) if r == 0 => Ok(Self(h)),
            _ => Err(errno_or_eio(r)),
        }
    }

    /// Adds the next spare, with `units` free units; one on the main device's disk is used last.
    pub(crate) fn add_spare(&mut self, units: u64, same_disk_as_main: bool) -> Result {
        // SAFETY: live handle, exclusive use.
        kernel::error::to_result(unsafe {
            dm_remap_v4_spare_pool_add_spare(self.0.as_ptr(), units, u32::from(same_disk_as_main))
        })
    }

    /// Marks `unit` of `spare` used.
    pub(crate) fn claim(&mut self, spare: u32, unit: u64) -> Result {
        // SAFETY: live handle, exclusive use.
        kernel::error::to_result(unsafe {
            dm_remap_v4_spare_pool_claim(self.0.as_ptr(), spare, unit)
        })
    }

    /// A free `(spare, unit)`, now used, by the pool's order policy; `ENOSPC` when every spare is full.
    pub(crate) fn allocate(&mut self) -> Result<(u32, u64)> {
        let (mut spare, mut unit) = (0, 0);
        // SAFETY: live handle, exclusive use; valid out-pointers.
        kernel::error::to_result(unsafe {
            dm_remap_v4_spare_pool_allocate(self.0.as_ptr(), &mut spare, &mut unit)
        })?;
        Ok((spare, unit))
    }

    /// Gives back a unit from [`SparePool::allocate`] that ended up unused, or an unremapped one.
    pub(crate) fn free(&mut self, spare: u32, unit: u64) -> Result {
        // SAFETY: live handle, exclusive use.
        kernel::error::to_result(unsafe {
            dm_remap_v4_spare_pool_free(self.0.as_ptr(), spare, unit)
        })
    }

    /// Sets the state of `spare`: only an active spare is allocated from.
    pub(crate) fn set_state(&mut self, spare: u32, state: SpareState) -> Result {
        // SAFETY: live handle, exclusive use.
        kernel::error::to_result(unsafe {
            dm_remap_v4_spare_pool_set_state(self.0.as_ptr(), spare, state as u32)
        })
    }

    /// `(used, total)` units of `spare`.
    pub(crate) fn counts(&mut self, spare: u32) -> (u64, u64) {
        let (mut used, mut total) = (0, 0);
        // SAFETY: live handle, exclusive use; valid out-pointers.
        unsafe { dm_remap_v4_spare_pool_counts(self.0.as_ptr(), spare, &mut used, &mut total) };
        (used, total)
    }
}

impl Drop for SparePool {
    fn drop(&mut self) {
        // SAFETY: a live handle from `create`, destroyed once.
        unsafe { dm_remap_v4_spare_pool_destroy(self.0.as_ptr()) };
    }
}

impl Drop for Metadata {
    fn drop(&mut self) {
        // SAFETY: a live handle from `dm_remap_v4_metadata_open()`, closed exactly once.
        unsafe { dm_remap_v4_metadata_close(self.0.as_ptr()) };
    }
}

/// The pool size a blank spare formatted with `params` would get; on failure the error, its message and the
/// smallest spare size that would do (0 if unknown).
pub(crate) fn plan_format(
    params: &OpenParams,
) -> core::result::Result<u64, (Error, &'static CStr, u64)> {
    let (mut units, mut needed) = (0u64, 0u64);
    let mut msg: *const c_char = core::ptr::null();
    // SAFETY: `params` is valid for reads, the out-pointers for writes, for the call.
    let r = unsafe { dm_remap_v4_metadata_plan_format(params, &mut units, &mut needed, &mut msg) };
    if r == 0 {
        Ok(units)
    } else {
        Err((
            errno_or_eio(r),
            static_message(msg, c"spare device too small for its metadata region"),
            needed,
        ))
    }
}

/// The `min_spare_percent` policy: `Err(required_sectors)` when `pool_sectors`, the spares' pool areas
/// together, are less than `min_percent` percent of `main_sectors` (`u64::MAX` if that overflows).
pub(crate) fn check_min_spare(
    main_sectors: u64,
    pool_sectors: u64,
    min_percent: u32,
) -> core::result::Result<(), u64> {
    let mut required = u64::MAX;
    // SAFETY: `required` is a valid out-pointer for the call.
    let r = unsafe {
        dm_remap_v4_spare_pool_check_min_spare(
            main_sectors,
            pool_sectors,
            min_percent,
            &mut required,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(required)
    }
}

/// 16 random bytes, for a new setup's UUID.
pub(crate) fn random_uuid() -> [u8; 16] {
    let mut uuid = [0u8; 16];
    // SAFETY: `uuid` is valid for writes of its length.
    unsafe { bindings::get_random_bytes(uuid.as_mut_ptr().cast(), uuid.len()) };
    uuid
}

/// Wall-clock seconds, for the timestamps of metadata records.
pub(crate) fn now_seconds() -> u64 {
    // SAFETY: no preconditions.
    let t = unsafe { bindings::ktime_get_real_seconds() };
    u64::try_from(t).unwrap_or(0)
}
