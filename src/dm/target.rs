//! The [`Target`] trait and its registration with device-mapper.

use core::ffi::CStr;
use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::alloc::KBox;
use kernel::error::{to_result, Error};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::str::CStrExt;
use kernel::types::Opaque;
use kernel::ThisModule;

use super::args::Args;
use super::bio::{Bio, BlkStatus, OwnedBio};
use super::device::{Device, DeviceVisitor};
use super::ffi;
use super::limits::QueueLimits;
use crate::logic::outbuf::OutBuf;

/// What `map()` did with a bio.
pub(crate) enum MapResult {
    /// The bio was pointed at an underlying device; device-mapper submits it (`DM_MAPIO_REMAPPED`).
    Remapped,
    /// Fail the bio with an I/O error (`DM_MAPIO_KILL`).
    Kill,
    /// The target takes the bio over: device-mapper calls [`Target::take`] with it (`DM_MAPIO_SUBMITTED`).
    Take,
}

/// What `end_io()` decided about a completed bio.
pub(crate) enum EndIo {
    /// Complete it with the (possibly changed) status (`DM_ENDIO_DONE`).
    Done,
    /// The target takes the bio over to complete it later: device-mapper calls [`Target::take`] with it
    /// (`DM_ENDIO_INCOMPLETE`). When the target completes it, `end_io()` sees it again.
    Take,
}

/// Which status line device-mapper asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusKind {
    /// `dmsetup status`.
    Info,
    /// `dmsetup table`.
    Table,
    /// The line measured by IMA.
    Ima,
}

/// A constructor failure: the errno and the static message device-mapper logs as `ti->error`.
pub(crate) struct CtrError {
    pub(crate) errno: Error,
    pub(crate) msg: &'static CStr,
}

impl CtrError {
    pub(crate) fn new(errno: Error, msg: &'static CStr) -> Self {
        Self { errno, msg }
    }
}

/// Read-only view of the `dm_target` a callback runs for.
#[repr(transparent)]
pub(crate) struct TargetInfo(Opaque<ffi::dm_target>);

impl TargetInfo {
    /// # Safety
    ///
    /// `ptr` must be a valid `dm_target` for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut ffi::dm_target) -> &'a TargetInfo {
        // SAFETY: transparent wrapper; validity guaranteed by the caller.
        unsafe { &*ptr.cast::<TargetInfo>() }
    }

    /// First sector of this target in the mapped device.
    pub(crate) fn begin(&self) -> u64 {
        // SAFETY: `self` wraps a valid `dm_target`; `begin` is fixed before the constructor runs.
        unsafe { (*self.0.get()).begin }
    }

    /// Length of this target in sectors.
    pub(crate) fn len(&self) -> u64 {
        // SAFETY: as for `begin`.
        unsafe { (*self.0.get()).len }
    }

    /// True while the mapped device is suspended: no I/O is in flight and new I/O waits for the resume.
    pub(crate) fn suspended(&self) -> bool {
        // SAFETY: `self` wraps a live `dm_target`.
        unsafe { ffi::dm_suspended(self.0.get()) != 0 }
    }
}

/// The `dm_target` being constructed: what a constructor may read and set.
pub(crate) struct TargetCtr<'a> {
    ti: NonNull<ffi::dm_target>,
    _borrow: PhantomData<&'a mut ffi::dm_target>,
}

impl TargetCtr<'_> {
    /// The target's position and length.
    pub(crate) fn info(&self) -> &TargetInfo {
        // SAFETY: `ti` is valid for the constructor call.
        unsafe { TargetInfo::from_raw(self.ti.as_ptr()) }
    }

    /// Opens `path` (a device path or `major:minor`) with the table's mode and holds it for the target.
    pub(crate) fn get_device(&mut self, path: &CStr) -> Result<Device> {
        let ti = self.ti.as_ptr();
        let mut dev: *mut ffi::dm_dev = core::ptr::null_mut();
        // SAFETY: `ti` is the target being constructed; its table is set; `path` is NUL-terminated; `dev` is a
        // valid out-pointer.
        to_result(unsafe {
            ffi::dm_get_device(
                ti,
                path.as_char_ptr(),
                ffi::dm_table_get_mode((*ti).table),
                &mut dev,
            )
        })?;
        let dev = NonNull::new(dev).ok_or(EINVAL)?;
        // SAFETY: `dev` comes from a successful `dm_get_device(ti, ...)`; the `Device` will be owned by the
        // target's private data, dropped in the destructor while `ti` is alive.
        Ok(unsafe { Device::from_raw(self.ti, dev) })
    }

    /// How many copies of each flush the target receives (one per underlying device that must be flushed).
    pub(crate) fn set_num_flush_bios(&mut self, n: u32) {
        // SAFETY: the constructor may set these fields of its own `dm_target`.
        unsafe { (*self.ti.as_ptr()).num_flush_bios = n };
    }

    /// How many copies of each discard the target receives; non-zero enables discards.
    pub(crate) fn set_num_discard_bios(&mut self, n: u32) {
        // SAFETY: as above.
        unsafe { (*self.ti.as_ptr()).num_discard_bios = n };
    }

    /// How many copies of each write-zeroes bio the target receives; non-zero enables them.
    pub(crate) fn set_num_write_zeroes_bios(&mut self, n: u32) {
        // SAFETY: as above.
        unsafe { (*self.ti.as_ptr()).num_write_zeroes_bios = n };
    }
}

/// A device-mapper target type implemented in Rust.
///
/// The value returned by [`Target::new`] becomes the target's private data; device-mapper serialises the
/// constructor and destructor against everything else, and drops the value in the destructor.
pub(crate) trait Target: Sized + Send + Sync + 'static {
    /// Name used in table lines.
    const NAME: &'static CStr;
    /// Version reported by `dmsetup targets`.
    const VERSION: [u32; 3];
    /// What the target keeps with each bio (device-mapper's per-bio data), set up in `map()`.
    type PerBio: Default + Send + 'static;

    /// The constructor: parse the arguments, open the devices.
    fn new(ctr: &mut TargetCtr<'_>, args: Args<'_>) -> core::result::Result<Self, CtrError>;

    /// Routes one bio; `pb` starts as `PerBio::default()`. Runs in the I/O submission path: must not sleep.
    fn map(&self, ti: &TargetInfo, bio: &mut Bio, pb: &mut Self::PerBio) -> MapResult;

    /// Sees every bio this target mapped when it completes. Runs in completion (possibly interrupt) context.
    fn end_io(
        &self,
        _ti: &TargetInfo,
        _bio: &mut Bio,
        _pb: &mut Self::PerBio,
        _status: &mut BlkStatus,
    ) -> EndIo {
        EndIo::Done
    }

    /// Receives a bio `map()` or `end_io()` took over ([`MapResult::Take`], [`EndIo::Take`]). Runs where they
    /// run: must not sleep. The default fails it.
    fn take(&self, _bio: OwnedBio<Self::PerBio>) {}

    /// Writes one status line.
    fn status(&self, ti: &TargetInfo, kind: StatusKind, out: &mut OutBuf<'_>);

    /// Handles `dmsetup message`; output (if any) goes to `out`.
    fn message(&self, ti: &TargetInfo, args: Args<'_>, out: &mut OutBuf<'_>) -> Result;

    /// Calls `visitor.visit` for every device area the target uses, returning the first non-zero result.
    fn iterate_devices(&self, ti: &TargetInfo, visitor: &mut DeviceVisitor) -> i32;

    /// Adjusts the queue limits of the mapped device.
    fn io_hints(&self, _ti: &TargetInfo, _limits: &mut QueueLimits<'_>) {}

    /// Runs before the table starts serving I/O, after any previous table of the device was suspended; an
    /// error fails the resume and leaves the device suspended. May sleep.
    fn preresume(&self, _ti: &TargetInfo) -> Result {
        Ok(())
    }

    /// Runs when the device starts to suspend, while I/O still flows: the target stops issuing I/O of its own.
    /// May sleep.
    fn presuspend(&self, _ti: &TargetInfo) {}

    /// Runs once the device has suspended: no bio of the target is in flight, and none arrives until a
    /// resume. Also runs when a device that was not suspended is removed. May sleep.
    fn postsuspend(&self, _ti: &TargetInfo) {}

    /// Runs when the table has started serving I/O (after a successful `preresume`), and when a suspend is
    /// cancelled after `presuspend` (`presuspend_undo`). May sleep.
    fn resume(&self, _ti: &TargetInfo) {}
}

/// The target's data for `bio`.
///
/// # Safety
///
/// `bio` must be a bio of a live target of type `T`, inside a `map` or `end_io` call; the data must have been
/// initialised (by `map_callback`) unless `init` is set.
unsafe fn per_bio_of<'a, T: Target>(bio: *mut ffi::bio, init: bool) -> &'a mut T::PerBio {
    // SAFETY: the constructor set `per_io_data_size` to the size of `T::PerBio`; the data is aligned (checked in
    // `Registration::new`) and belongs to the callback for the call.
    unsafe {
        let p = ffi::dm_per_bio_data(bio, core::mem::size_of::<T::PerBio>()).cast::<T::PerBio>();
        if init {
            p.write(T::PerBio::default());
        }
        &mut *p
    }
}

/// Recovers the target value from `ti->private`.
///
/// # Safety
///
/// `ti` must be a live target of type `T` whose constructor succeeded and whose destructor has not run.
unsafe fn target_of<'a, T: Target>(ti: *mut ffi::dm_target) -> &'a T {
    // SAFETY: the constructor stored a `KBox<T>` pointer in `private`; it stays valid until the destructor.
    unsafe { &*(*ti).private.cast::<T>() }
}

/// Device-mapper's `target_type.ctr` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.ctr` guarantees.
unsafe extern "C" fn ctr_callback<T: Target>(
    ti: *mut ffi::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
) -> c_int {
    let Some(ti_nn) = NonNull::new(ti) else {
        return EINVAL.to_errno();
    };
    let mut ctr = TargetCtr {
        ti: ti_nn,
        _borrow: PhantomData,
    };
    let Ok(per_bio_size) = c_uint::try_from(core::mem::size_of::<T::PerBio>()) else {
        return EINVAL.to_errno();
    };
    // SAFETY: the constructor may set its own `dm_target`'s fields.
    unsafe { (*ti).per_io_data_size = per_bio_size };
    // SAFETY: device-mapper passes `argc` valid argument strings that live for the call.
    let args = unsafe { Args::from_raw(argc, argv) };
    let result = T::new(&mut ctr, args).and_then(|t| {
        KBox::new(t, GFP_KERNEL)
            .map_err(|_| CtrError::new(ENOMEM, c"Cannot allocate dm-remap-v4 context"))
    });
    match result {
        Ok(boxed) => {
            // SAFETY: `ti` is the target being constructed; `private` is ours.
            unsafe { (*ti).private = KBox::into_raw(boxed).cast::<c_void>() };
            0
        }
        Err(e) => {
            // SAFETY: `ti->error` takes a static string, which `e.msg` is.
            unsafe { (*ti).error = e.msg.as_char_ptr().cast_mut() };
            e.errno.to_errno()
        }
    }
}

/// Device-mapper's `target_type.dtr` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.dtr` guarantees.
unsafe extern "C" fn dtr_callback<T: Target>(ti: *mut ffi::dm_target) {
    // SAFETY: the constructor succeeded, so `private` holds the pointer from `KBox::into_raw`; the destructor
    // runs once, after all I/O and other callbacks have finished.
    drop(unsafe { KBox::from_raw((*ti).private.cast::<T>()) });
}

/// Device-mapper's `target_type.map` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.map` guarantees.
unsafe extern "C" fn map_callback<T: Target>(ti: *mut ffi::dm_target, bio: *mut ffi::bio) -> c_int {
    // SAFETY: `ti` is live for the call (device-mapper contract), and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    // SAFETY: `bio` is the clone device-mapper hands us to map; we own it for the call, with its per-bio data.
    let (pb, raw) = (unsafe { per_bio_of::<T>(bio, true) }, bio);
    // SAFETY: as above.
    let bio = unsafe { Bio::from_raw(bio) };
    let r = match target.map(info, bio, pb) {
        MapResult::Remapped => ffi::DM_MAPIO_REMAPPED,
        MapResult::Kill => ffi::DM_MAPIO_KILL,
        MapResult::Take => {
            if let Some(raw) = NonNull::new(raw) {
                // SAFETY: `DM_MAPIO_SUBMITTED` hands the bio's completion to us; its per-bio data is set.
                target.take(unsafe { OwnedBio::from_raw(raw) });
            }
            ffi::DM_MAPIO_SUBMITTED
        }
    };
    r as c_int
}

/// Device-mapper's `target_type.end_io` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.end_io` guarantees.
unsafe extern "C" fn end_io_callback<T: Target>(
    ti: *mut ffi::dm_target,
    bio: *mut ffi::bio,
    error: *mut ffi::blk_status_t,
) -> c_int {
    let raw = bio;
    // SAFETY: as in `map_callback`: `map()` saw this bio and initialised its per-bio data.
    let (target, info, bio, pb) = unsafe {
        (
            target_of::<T>(ti),
            TargetInfo::from_raw(ti),
            Bio::from_raw(bio),
            per_bio_of::<T>(bio, false),
        )
    };
    // SAFETY: `error` is a valid pointer for the duration of the call.
    let mut status = BlkStatus(unsafe { *error });
    match target.end_io(info, bio, pb, &mut status) {
        EndIo::Done => {
            // SAFETY: as above.
            unsafe { *error = status.0 };
            ffi::DM_ENDIO_DONE as c_int
        }
        EndIo::Take => {
            if let Some(raw) = NonNull::new(raw) {
                // SAFETY: `DM_ENDIO_INCOMPLETE` hands the bio's completion to us; device-mapper does not touch
                // it after this call returns.
                target.take(unsafe { OwnedBio::from_raw(raw) });
            }
            ffi::DM_ENDIO_INCOMPLETE as c_int
        }
    }
}

/// Device-mapper's `target_type.status` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.status` guarantees.
unsafe extern "C" fn status_callback<T: Target>(
    ti: *mut ffi::dm_target,
    kind: ffi::status_type_t,
    _flags: c_uint,
    result: *mut c_char,
    maxlen: c_uint,
) {
    let kind = match kind {
        ffi::status_type_t_STATUSTYPE_INFO => StatusKind::Info,
        ffi::status_type_t_STATUSTYPE_TABLE => StatusKind::Table,
        ffi::status_type_t_STATUSTYPE_IMA => StatusKind::Ima,
        _ => return,
    };
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    // SAFETY: device-mapper passes a writable buffer of `maxlen` bytes for the status line.
    let buf = unsafe { core::slice::from_raw_parts_mut(result.cast::<u8>(), maxlen as usize) };
    let mut out = OutBuf::new(buf);
    target.status(info, kind, &mut out);
}

/// Device-mapper's `target_type.message` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.message` guarantees.
unsafe extern "C" fn message_callback<T: Target>(
    ti: *mut ffi::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
    result: *mut c_char,
    maxlen: c_uint,
) -> c_int {
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    // SAFETY: device-mapper passes `argc` valid words that live for the call.
    let args = unsafe { Args::from_raw(argc, argv) };
    // SAFETY: device-mapper passes a writable result buffer of `maxlen` bytes.
    let buf = unsafe { core::slice::from_raw_parts_mut(result.cast::<u8>(), maxlen as usize) };
    let mut out = OutBuf::new(buf);
    match target.message(info, args, &mut out) {
        // 1 tells dm-ioctl that `result` holds output for userspace.
        Ok(()) if !out.as_bytes().is_empty() || out.overflowed() => 1,
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Device-mapper's `target_type.preresume` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.preresume` guarantees.
unsafe extern "C" fn preresume_callback<T: Target>(ti: *mut ffi::dm_target) -> c_int {
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    match target.preresume(info) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Device-mapper's `target_type.presuspend` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.presuspend` guarantees.
unsafe extern "C" fn presuspend_callback<T: Target>(ti: *mut ffi::dm_target) {
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    target.presuspend(info);
}

/// Device-mapper's `target_type.postsuspend` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.postsuspend` guarantees.
unsafe extern "C" fn postsuspend_callback<T: Target>(ti: *mut ffi::dm_target) {
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    target.postsuspend(info);
}

/// Device-mapper's `target_type.resume` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.resume` guarantees.
unsafe extern "C" fn resume_callback<T: Target>(ti: *mut ffi::dm_target) {
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    target.resume(info);
}

/// Device-mapper's `target_type.iterate_devices` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.iterate_devices` guarantees.
unsafe extern "C" fn iterate_devices_callback<T: Target>(
    ti: *mut ffi::dm_target,
    callout: ffi::iterate_devices_callout_fn,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `ti` is live for the call and its constructor succeeded.
    let (target, info) = unsafe { (target_of::<T>(ti), TargetInfo::from_raw(ti)) };
    let mut visitor = DeviceVisitor { ti, callout, data };
    target.iterate_devices(info, &mut visitor)
}

/// Device-mapper's `target_type.io_hints` callback for `T`.
///
/// # Safety
///
/// Only device-mapper may call it, through the `target_type` that [`Registration`] registered, with the
/// arguments its contract for `target_type.io_hints` guarantees.
unsafe extern "C" fn io_hints_callback<T: Target>(
    ti: *mut ffi::dm_target,
    limits: *mut ffi::queue_limits,
) {
    // SAFETY: `ti` is live for the call and its constructor succeeded; `limits` is ours for the call.
    let (target, info, mut limits) = unsafe {
        (
            target_of::<T>(ti),
            TargetInfo::from_raw(ti),
            QueueLimits::from_raw(limits),
        )
    };
    target.io_hints(info, &mut limits);
}

/// A registered target type; unregistered when dropped (at module exit).
pub(crate) struct Registration<T: Target> {
    tt: Pin<KBox<Opaque<ffi::target_type>>>,
    _target: PhantomData<T>,
}

// SAFETY: after registration the `target_type` is only read by device-mapper, from any thread.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: `Registration` has no methods that use `&self`.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Device-mapper places the per-bio data just before its 8-byte aligned `dm_target_io`.
    const PER_BIO_ALIGNED: () = assert!(core::mem::align_of::<T::PerBio>() <= 8);

    /// Registers `T` under `T::NAME`.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        #[allow(clippy::let_unit_value)]
        let () = Self::PER_BIO_ALIGNED;
        let tt = KBox::pin(Opaque::<ffi::target_type>::zeroed(), GFP_KERNEL)?;
        let p = tt.get();
        // SAFETY: `p` points to a zeroed, pinned `target_type` that nothing else references yet; every callback
        // is an `extern "C"` function with the signature device-mapper expects for that field.
        unsafe {
            (*p).name = T::NAME.as_char_ptr();
            (*p).module = module.as_ptr();
            (*p).version = T::VERSION;
            (*p).ctr = Some(ctr_callback::<T>);
            (*p).dtr = Some(dtr_callback::<T>);
            (*p).map = Some(map_callback::<T>);
            (*p).end_io = Some(end_io_callback::<T>);
            (*p).status = Some(status_callback::<T>);
            (*p).message = Some(message_callback::<T>);
            (*p).iterate_devices = Some(iterate_devices_callback::<T>);
            (*p).io_hints = Some(io_hints_callback::<T>);
            (*p).preresume = Some(preresume_callback::<T>);
            (*p).presuspend = Some(presuspend_callback::<T>);
            (*p).postsuspend = Some(postsuspend_callback::<T>);
            (*p).resume = Some(resume_callback::<T>);
            // A cancelled suspend: the table serves I/O again, as after a resume.
            (*p).presuspend_undo = Some(resume_callback::<T>);
        }
        // SAFETY: `p` is a fully initialised `target_type` that stays pinned until `drop` unregisters it.
        to_result(unsafe { ffi::dm_register_target(p) })?;
        Ok(Self {
            tt,
            _target: PhantomData,
        })
    }
}

impl<T: Target> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; device-mapper holds a module reference for every live target of this
        // type, so none exists when the module (and this registration) goes away.
        unsafe { ffi::dm_unregister_target(self.tt.get()) };
    }
}
