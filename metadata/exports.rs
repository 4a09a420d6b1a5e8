//! The C ABI of dm-remap-v4-metadata: what the core module calls. The only `unsafe` besides `blockio.rs`.

use kernel::bindings;
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStrExt;

use crate::abi::{
    OpenParams, OpenReport, RecordAbi, RecordFn, RecordIterFn, ScrubStateAbi, RECORD_ACTIVE,
    RECORD_CLEARED, RECORD_PENDING, SINK_NO_MEMORY, SINK_OK,
};
use crate::blockio::BdevIo;
use crate::error::Error as MdError;
use crate::helper_abi::HELPER_ABI_VERSION;
use crate::layout::BLOCK_SIZE;
use crate::open::{commit_or_checkpoint, open_region, plan_format};
use crate::record::{EntryState, Record, RecordSink};
use crate::scrub::ScrubState;
use crate::store::Store;

/// An open metadata region: what `dm_remap_v4_metadata_open()` hands the core as an opaque pointer.
pub struct OpenStore {
    store: Store,
    io: BdevIo,
    buf: KVec<u8>,
}

/// Hands each loaded record to the core's callback.
struct CallbackSink {
    sink: Option<RecordFn>,
    ctx: *mut c_void,
}

impl RecordSink for CallbackSink {
    fn apply(&mut self, rec: &Record) -> core::result::Result<(), MdError> {
        let Some(sink) = self.sink else {
            return Ok(());
        };
        let abi = RecordAbi {
            main_unit: rec.main_unit,
            spare_unit: rec.spare_unit,
            timestamp: rec.timestamp,
            spare_index: rec.spare_index,
            state: match rec.state {
                EntryState::Active => RECORD_ACTIVE,
                EntryState::PendingReadFailure => RECORD_PENDING,
                EntryState::Cleared => RECORD_CLEARED,
            },
        };
        match sink(self.ctx, &abi) {
            SINK_OK => Ok(()),
            SINK_NO_MEMORY => Err(MdError::OutOfMemory),
            _ => Err(MdError::BadRecord),
        }
    }
}

fn record_of(r: &RecordAbi) -> Option<Record> {
    let state = match r.state {
        RECORD_ACTIVE => EntryState::Active,
        RECORD_PENDING => EntryState::PendingReadFailure,
        RECORD_CLEARED => EntryState::Cleared,
        _ => return None,
    };
    Some(Record {
        main_unit: r.main_unit,
        spare_index: r.spare_index,
        spare_unit: r.spare_unit,
        state,
        timestamp: r.timestamp,
    })
}

/// Pulls the core's whole table, for a checkpoint. An invalid record ends it early, which the checkpoint's
/// own count check then refuses.
struct CallbackIter {
    next: RecordIterFn,
    ctx: *mut c_void,
}

impl Iterator for CallbackIter {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let mut r = RecordAbi::default();
        if (self.next)(self.ctx, &mut r) != 1 {
            return None;
        }
        record_of(&r)
    }
}

/// The helper ABI version this module was built with; the core checks it at load time.
#[no_mangle]
pub extern "C" fn dm_remap_v4_metadata_abi_version() -> u32 {
    HELPER_ABI_VERSION
}

/// Opens the metadata region of the spare `bdev` (see `open_region`): loads it (calling `sink(ctx, record)`
/// for every record, in order), formats it when blank and asked to, repairs damaged superblock copies. On success stores an opaque handle in `*store` (release it
/// with `dm_remap_v4_metadata_close()`), fills `*report` and returns 0. On failure returns a negative errno
/// and points `*error` at a static message that describes it; nothing on the spare was changed unless the
/// failure happened while formatting or repairing.
///
/// # Safety
///
/// `bdev` must be an opened block device that outlives the handle; `params` must be valid for reads;
/// `report`, `store` and `error` valid for writes; `sink`, if set, must accept `ctx` during the call.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_open(
    bdev: *mut bindings::block_device,
    params: *const OpenParams,
    report: *mut OpenReport,
    sink: Option<RecordFn>,
    ctx: *mut c_void,
    store: *mut *mut OpenStore,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: valid for reads (caller's contract).
    let params = unsafe { &*params };
    let opened =
        (|| -> core::result::Result<(KBox<OpenStore>, OpenReport), (c_int, &'static CStr)> {
            let oom = (
                ENOMEM.to_errno(),
                c"out of memory opening the metadata region",
            );
            let md = |e: crate::error::Error| (e.errno(), e.message());
            // SAFETY: `bdev` outlives the handle that owns `io` (caller's contract).
            let mut io = unsafe { BdevIo::new(bdev) }.map_err(|_| oom)?;
            let mut buf = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL).map_err(|_| oom)?;
            buf.resize(BLOCK_SIZE, 0, GFP_KERNEL).map_err(|_| oom)?;
            // SAFETY: no preconditions.
            let salt = unsafe { bindings::get_random_u64() };
            let mut sink = CallbackSink { sink, ctx };
            let (s, r) = open_region(&mut io, &mut buf, params, salt, &mut sink).map_err(md)?;
            let handle = OpenStore { store: s, io, buf };
            Ok((KBox::new(handle, GFP_KERNEL).map_err(|_| oom)?, r))
        })();
    match opened {
        Ok((handle, r)) => {
            // SAFETY: valid for writes (caller's contract).
            unsafe {
                report.write(r);
                store.write(KBox::into_raw(handle));
            }
            0
        }
        Err((errno, msg)) => {
            // SAFETY: valid for writes; the message is static and lives as long as this module, which the
            // core (which imports this function) cannot outlive.
            unsafe { error.write(msg.as_char_ptr()) };
            errno
        }
    }
}

/// Commits `n` records durably: returns 0 only once they are on stable media (group commit: one call, one
/// flush). When the journal is full, writes a checkpoint of the whole table instead, pulled with
/// `table(ctx, &mut record)` (every entry once, as it will be with these records applied). On failure
/// returns a negative errno and points `*error` at a static message.
///
/// # Safety
///
/// `store` must be a live handle not used concurrently (the core serialises commits); `records` must point to
/// `n` valid records; `table` must accept `ctx` during the call; `error` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_commit(
    store: *mut OpenStore,
    records: *const RecordAbi,
    n: usize,
    table: RecordIterFn,
    ctx: *mut c_void,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let h = unsafe { &mut *store };
    // SAFETY: `n` valid records (caller's contract).
    let abi = unsafe { core::slice::from_raw_parts(records, n) };
    let result = (|| -> core::result::Result<(), MdError> {
        let mut batch = KVec::with_capacity(n, GFP_KERNEL).map_err(|_| MdError::OutOfMemory)?;
        for r in abi {
            let rec = record_of(r).ok_or(MdError::BadRecord)?;
            batch
                .push(rec, GFP_KERNEL)
                .map_err(|_| MdError::OutOfMemory)?;
        }
        let OpenStore { store, io, buf } = h;
        commit_or_checkpoint(store, io, buf, &batch, || CallbackIter { next: table, ctx })
    })();
    match result {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: valid for writes; static message (see `dm_remap_v4_metadata_open`).
            unsafe { error.write(e.message().as_char_ptr()) };
            e.errno()
        }
    }
}

/// Brings a member of a setup of several spares up to date (`Store::resync`): writes a checkpoint of the
/// whole table, pulled with `table(ctx, &mut record)`, recording commit sequence `seq`, `member_count` and
/// the removed-members mask `removed_members` (bit `i`: member `i` was removed; it may only gain bits).
/// Returns 0 once it is durable; on failure a negative errno, with `*error` pointing at a static message.
///
/// # Safety
///
/// As for `dm_remap_v4_metadata_commit()`.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_resync(
    store: *mut OpenStore,
    seq: u64,
    member_count: u32,
    removed_members: u32,
    table: RecordIterFn,
    ctx: *mut c_void,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let OpenStore { store, io, buf } = unsafe { &mut *store };
    let entries = CallbackIter { next: table, ctx };
    match store.resync(io, buf, seq, member_count, removed_members, entries) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: valid for writes; static message (see `dm_remap_v4_metadata_open`).
            unsafe { error.write(e.message().as_char_ptr()) };
            e.errno()
        }
    }
}

/// 0 when nobody else wrote to the region since this handle loaded it or last wrote to it
/// (`Store::check_unchanged`); `-ESTALE` otherwise, with `*error` pointing at a static message.
///
/// # Safety
///
/// `store` must be a live handle not used concurrently; `error` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_check_unchanged(
    store: *mut OpenStore,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let OpenStore { store, io, buf } = unsafe { &mut *store };
    match store.check_unchanged(io, buf) {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: valid for writes; static message (see `dm_remap_v4_metadata_open`).
            unsafe { error.write(e.message().as_char_ptr()) };
            e.errno()
        }
    }
}

/// What formatting a blank spare with `params` would give (nothing is read or written): 0 and the pool size
/// in `*pool_units`; or a negative errno, `*error` pointing at a static message and, for a spare too small,
/// the smallest size that would do in `*needed_sectors` (0 if unknown).
///
/// # Safety
///
/// `params` must be valid for reads; `pool_units`, `needed_sectors` and `error` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_plan_format(
    params: *const OpenParams,
    pool_units: *mut u64,
    needed_sectors: *mut u64,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: valid for reads (caller's contract).
    let params = unsafe { &*params };
    match plan_format(params) {
        Ok(units) => {
            // SAFETY: valid for writes (caller's contract).
            unsafe { pool_units.write(units) };
            0
        }
        Err((e, needed)) => {
            // SAFETY: valid for writes (caller's contract); static message (see `dm_remap_v4_metadata_open`).
            unsafe {
                needed_sectors.write(needed);
                error.write(e.message().as_char_ptr());
            }
            e.errno()
        }
    }
}

/// The metadata version of the current superblock: it grows by one with every checkpoint.
///
/// # Safety
///
/// `store` must be a live handle not used concurrently (the core calls it under the lock it commits under).
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_version(store: *const OpenStore) -> u64 {
    // SAFETY: live, and not written concurrently (caller's contract).
    unsafe { &*store }.store.superblock().meta_version
}

/// The sequence number of the last commit this store recorded (or adopted by a resync): the setup's newest
/// when every member is up to date.
///
/// # Safety
///
/// As for `dm_remap_v4_metadata_version()`.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_last_seq(store: *const OpenStore) -> u64 {
    // SAFETY: live, and not written concurrently (caller's contract).
    unsafe { &*store }.store.last_seq()
}

/// Loads the background scrub's persisted state from this spare (`Store::load_scrub_state`; blocks 1 and 9,
/// `docs/metadata-format.md`, "Scrub state"): the newest valid copy of this setup. Returns 0 and fills `*out`
/// when a state was found; `-ENOENT` when neither copy holds one (never saved, blank, damaged or another
/// setup's: the scrub starts at unit 0), leaving `*out` untouched; `-EIO` when neither copy could be read.
/// A damaged copy next to a valid one is not an error. Units: `position` is a main-device unit index,
/// `pass_started` seconds since the epoch, `rate_kib` KiB/s. Reads only; the position is as saved (the core
/// clamps it to the device). Also remembers which copy is newest, for the next save.
///
/// # Safety
///
/// `store` must be a live handle not used concurrently (the core serialises it with commits); `out` must be
/// valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_scrub_load(
    store: *mut OpenStore,
    out: *mut ScrubStateAbi,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let OpenStore { store, io, buf } = unsafe { &mut *store };
    match store.load_scrub_state(io, buf) {
        Ok(found) => match found.state {
            Some(state) => {
                // SAFETY: valid for writes (caller's contract).
                unsafe { out.write(state.to_abi()) };
                0
            }
            None => ENOENT.to_errno(),
        },
        Err(e) => e.errno(),
    }
}

/// Saves the background scrub's state on this spare (`Store::save_scrub_state`): one FUA write of the scrub
/// state copy that does not hold the newest state, so a crash during it leaves the previous state intact.
/// Returns 0 once the state is durable. On failure returns a negative errno and points `*error` at a static
/// message: `-EINVAL` if `state->running` is neither 0 nor 1, `-EIO` if the write (or the read of both
/// copies that precedes the first save of a handle) failed or if the handle is poisoned by an earlier
/// failed commit. A failed save does not poison the handle: commits go on, and the next save retries.
/// Never touches the remap table. Units as for `dm_remap_v4_metadata_scrub_load()`.
///
/// # Safety
///
/// `store` must be a live handle not used concurrently (the core serialises it with commits); `state` must
/// be valid for reads; `error` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_scrub_save(
    store: *mut OpenStore,
    state: *const ScrubStateAbi,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let OpenStore { store, io, buf } = unsafe { &mut *store };
    // SAFETY: valid for reads (caller's contract).
    let abi = unsafe { &*state };
    let saved = ScrubState::from_abi(abi)
        .ok_or(MdError::BadScrubState)
        .and_then(|s| store.save_scrub_state(io, buf, &s));
    match saved {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: valid for writes; static message (see `dm_remap_v4_metadata_open`).
            unsafe { error.write(e.message().as_char_ptr()) };
            e.errno()
        }
    }
}

/// Writes a dirty shutdown mark on this spare (`Store::mark_dirty`; `docs/metadata-format.md`, "Shutdown
/// mark"): the core calls it before the first change of the metadata after a load or a clean mark, so that a
/// crash from then on leaves the setup marked dirty. One FUA write of a scrub-state copy (after reading both),
/// keeping the scrub state. Returns 0 once it is durable; on failure a negative errno with `*error` pointing at
/// a static message (`-EIO`: a read or the write failed, or the handle is poisoned). A failed mark does not
/// poison the handle.
///
/// # Safety
///
/// `store` must be a live handle not used concurrently (the core serialises it with commits); `error` must be
/// valid for writes.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_mark_dirty(
    store: *mut OpenStore,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let OpenStore { store, io, buf } = unsafe { &mut *store };
    let marked = store.mark_dirty(io, buf);
    // SAFETY: valid for writes (caller's contract).
    unsafe { md_status(marked, error) }
}

/// Writes a clean shutdown mark on this spare (`Store::mark_clean`), recording the metadata version and
/// commit sequence of this handle: a later load counts the shutdown as clean only if it loads exactly those.
/// The core calls it when the device has suspended (no I/O, no change in flight). Otherwise as
/// `dm_remap_v4_metadata_mark_dirty()`.
///
/// # Safety
///
/// As for `dm_remap_v4_metadata_mark_dirty()`.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_mark_clean(
    store: *mut OpenStore,
    error: *mut *const c_char,
) -> c_int {
    // SAFETY: live and exclusive (caller's contract).
    let OpenStore { store, io, buf } = unsafe { &mut *store };
    let marked = store.mark_clean(io, buf);
    // SAFETY: valid for writes (caller's contract).
    unsafe { md_status(marked, error) }
}

/// 0 for `Ok`; else the error's negative errno, with `*error` pointing at its static message.
///
/// # Safety
///
/// `error` must be valid for writes.
unsafe fn md_status(r: core::result::Result<(), MdError>, error: *mut *const c_char) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: valid for writes (caller's contract); static message (see `dm_remap_v4_metadata_open`).
            unsafe { error.write(e.message().as_char_ptr()) };
            e.errno()
        }
    }
}

/// Releases a handle from `dm_remap_v4_metadata_open()`; null is ignored.
///
/// # Safety
///
/// `store` must be null or a handle from `dm_remap_v4_metadata_open()` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_metadata_close(store: *mut OpenStore) {
    if !store.is_null() {
        // SAFETY: a live handle made by `KBox::into_raw` in `dm_remap_v4_metadata_open()`.
        drop(unsafe { KBox::from_raw(store) });
    }
}
