//! A bio as a target sees it in `map()` and `end_io()`.

use kernel::types::Opaque;

use super::device::Device;
use super::ffi;

/// The operation of a bio, from `bi_opf & REQ_OP_MASK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `REQ_OP_READ`.
    Read,
    /// `REQ_OP_WRITE`.
    Write,
    /// `REQ_OP_FLUSH` (device-mapper hands targets empty `REQ_PREFLUSH` writes instead; kept for completeness).
    Flush,
    /// `REQ_OP_DISCARD`.
    Discard,
    /// `REQ_OP_WRITE_ZEROES`.
    WriteZeroes,
    /// `REQ_OP_SECURE_ERASE`.
    SecureErase,
    /// Anything else (zoned operations, driver-private).
    Other,
}

/// A bio owned by the target for the duration of a `map()` or `end_io()` call.
#[repr(transparent)]
pub(crate) struct Bio(Opaque<ffi::bio>);

impl Bio {
    /// # Safety
    ///
    /// `ptr` must be a valid bio that the caller may read and modify for `'a`, as device-mapper guarantees to a
    /// target's `map` and `end_io` callbacks.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::bio) -> &'a mut Bio {
        // SAFETY: `Bio` is a transparent wrapper of `bio`; the caller guarantees validity and exclusivity.
        unsafe { &mut *ptr.cast::<Bio>() }
    }

    fn opf(&self) -> ffi::blk_opf_t {
        // SAFETY: `self` wraps a valid bio (type invariant).
        unsafe { (*self.0.get()).bi_opf }
    }

    /// The operation.
    pub(crate) fn op(&self) -> Op {
        match self.opf() & ffi::DMR_REQ_OP_MASK {
            ffi::req_op_REQ_OP_READ => Op::Read,
            ffi::req_op_REQ_OP_WRITE => Op::Write,
            ffi::req_op_REQ_OP_FLUSH => Op::Flush,
            ffi::req_op_REQ_OP_DISCARD => Op::Discard,
            ffi::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            ffi::req_op_REQ_OP_SECURE_ERASE => Op::SecureErase,
            _ => Op::Other,
        }
    }

    /// True for a write that asks for a cache flush before it (an empty one is a pure flush).
    pub(crate) fn is_preflush(&self) -> bool {
        self.opf() & ffi::DMR_REQ_PREFLUSH != 0
    }

    /// First sector, in the device-mapper device's address space until the target remaps it.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: `self` wraps a valid bio (type invariant).
        unsafe { (*self.0.get()).bi_iter.bi_sector }
    }

    /// Size in bytes.
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: `self` wraps a valid bio (type invariant).
        unsafe { (*self.0.get()).bi_iter.bi_size }
    }

    /// Which of the `num_flush_bios`/`num_discard_bios` clones this is (0 for ordinary bios).
    pub(crate) fn target_bio_nr(&self) -> u32 {
        // SAFETY: `self` wraps a valid bio cloned by device-mapper, which is what the function expects.
        unsafe { ffi::dm_bio_get_target_bio_nr(self.0.get()) }
    }

    /// Keeps only the first `sectors` sectors of the bio for this `map()` call; device-mapper sends the rest
    /// to `map()` again as a new bio. `sectors` must be at least 1 and less than the bio's size.
    pub(crate) fn accept_partial(&mut self, sectors: u32) {
        // SAFETY: `self` is a bio being mapped by a target, which is what the function requires; the caller
        // passes a length within the bio.
        unsafe { ffi::dm_accept_partial_bio(self.0.get(), sectors) };
    }

    /// Sends the bio to `dev` at `sector` (ignored for empty bios such as flushes).
    pub(crate) fn remap(&mut self, dev: &Device, sector: u64) {
        // SAFETY: `self` wraps a valid bio we may modify (type invariant); `dev.bdev()` is a live block
        // device held by the table for as long as the target exists.
        unsafe {
            ffi::dmr_bio_set_dev(self.0.get(), dev.bdev());
            if self.bytes() != 0 {
                (*self.0.get()).bi_iter.bi_sector = sector;
            }
        }
    }
}

/// A completion status (`blk_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlkStatus(pub(crate) ffi::blk_status_t);

impl BlkStatus {
    /// True for `BLK_STS_OK`.
    pub(crate) fn is_ok(self) -> bool {
        self.0 == ffi::DMR_BLK_STS_OK
    }
}
