//! Devices a target holds with `dm_get_device()`.

use core::ptr::NonNull;

use kernel::error::to_result;
use kernel::prelude::*;

use super::ffi;

/// A device opened by the target's constructor; released with `dm_put_device()` when dropped.
///
/// A `Device` lives inside the target's private data, so it is dropped in the destructor (or on a constructor
/// error path), while the `dm_target` it was opened for is still alive.
pub(crate) struct Device {
    ti: NonNull<ffi::dm_target>,
    dev: NonNull<ffi::dm_dev>,
}

// SAFETY: a `dm_dev` is a reference-counted handle owned by the table; reading its block device from any
// thread is what device-mapper itself does, and `dm_put_device()` (in `Drop`) may run on any thread.
unsafe impl Send for Device {}
// SAFETY: all methods take `&self` and only read fields that never change while the device is held.
unsafe impl Sync for Device {}

impl Device {
    /// # Safety
    ///
    /// `dev` must come from a successful `dm_get_device(ti, ...)`, and `ti` must outlive the returned value.
    pub(crate) unsafe fn from_raw(ti: NonNull<ffi::dm_target>, dev: NonNull<ffi::dm_dev>) -> Self {
        Self { ti, dev }
    }

    pub(crate) fn raw(&self) -> *mut ffi::dm_dev {
        self.dev.as_ptr()
    }

    pub(crate) fn bdev(&self) -> *mut ffi::block_device {
        // SAFETY: `dev` is a live `dm_dev` (type invariant); `bdev` is set once when it is opened.
        unsafe { (*self.dev.as_ptr()).bdev }
    }

    /// Capacity in 512-byte sectors.
    pub(crate) fn nr_sectors(&self) -> u64 {
        // SAFETY: `bdev()` is a live block device while we hold the `dm_dev`.
        unsafe { ffi::dmr_bdev_nr_sectors(self.bdev()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `bdev()` is a live block device while we hold the `dm_dev`.
        unsafe { ffi::dmr_bdev_logical_block_size(self.bdev()) }
    }

    /// The `major:minor` name device-mapper shows in tables.
    pub(crate) fn name(&self) -> &str {
        // SAFETY: `dev` is live; `name` is a fixed array filled once by `dm_get_device()`.
        let name = unsafe { &(*self.dev.as_ptr()).name };
        let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        // SAFETY: `c_char` and `u8` have the same layout; `len <= name.len()`.
        let bytes = unsafe { core::slice::from_raw_parts(name.as_ptr().cast::<u8>(), len) };
        core::str::from_utf8(bytes).unwrap_or("?")
    }

    /// Reads `buf.len()` bytes at `sector`, synchronously (sleeps). `buf` comes from `kmalloc` (a `KVec`),
    /// as `bdev_rw_virt()` needs a direct-mapped buffer, and must not cross a page.
    pub(crate) fn read_sync(&self, sector: u64, buf: &mut KVec<u8>) -> Result {
        self.rw_sync(sector, buf, ffi::req_op_REQ_OP_READ)
    }

    /// Writes `buf` at `sector`, synchronously (sleeps); see [`Device::read_sync`] for `buf`.
    pub(crate) fn write_sync(&self, sector: u64, buf: &mut KVec<u8>) -> Result {
        self.rw_sync(sector, buf, ffi::req_op_REQ_OP_WRITE)
    }

    fn rw_sync(&self, sector: u64, buf: &mut KVec<u8>, op: ffi::req_op) -> Result {
        // SAFETY: a live block device; `buf` is a kmalloc'ed buffer of `buf.len()` bytes we own (a write only
        // reads it), and the call completes the I/O before it returns.
        to_result(unsafe {
            ffi::bdev_rw_virt(self.bdev(), sector, buf.as_mut_ptr().cast(), buf.len(), op)
        })
    }

    /// Flushes the device's volatile write cache, synchronously (sleeps).
    pub(crate) fn flush_sync(&self) -> Result {
        // SAFETY: a live block device.
        to_result(unsafe { ffi::blkdev_issue_flush(self.bdev()) })
    }

    /// True when both handles refer to the same block device.
    pub(crate) fn same_as(&self, other: &Device) -> bool {
        self.bdev() == other.bdev()
    }

    /// True when both are the same disk or partitions of it. Devices stacked on one disk (device-mapper,
    /// md) are not seen through: each has a disk of its own.
    pub(crate) fn same_disk_as(&self, other: &Device) -> bool {
        // SAFETY: both are live block devices.
        unsafe { ffi::dmr_bdev_same_disk(self.bdev(), other.bdev()) }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: `dev` came from `dm_get_device(ti, ...)` and is put exactly once, here; `ti` is still alive
        // (type invariant).
        unsafe { ffi::dm_put_device(self.ti.as_ptr(), self.dev.as_ptr()) };
    }
}

/// The callback device-mapper passes to `iterate_devices`, to be called once per device area.
pub(crate) struct DeviceVisitor {
    pub(crate) ti: *mut ffi::dm_target,
    pub(crate) callout: ffi::iterate_devices_callout_fn,
    pub(crate) data: *mut kernel::ffi::c_void,
}

impl DeviceVisitor {
    /// Reports that the target uses `len` sectors of `dev` from `start`. A non-zero result means "stop" and
    /// must be returned from `iterate_devices`.
    pub(crate) fn visit(&mut self, dev: &Device, start: u64, len: u64) -> i32 {
        let Some(callout) = self.callout else {
            return 0;
        };
        // SAFETY: device-mapper gave us `callout`, `ti` and `data` for this `iterate_devices` call, and
        // `dev` is a device this target holds.
        unsafe { callout(self.ti, dev.raw(), start, len, self.data) }
    }
}
