//! Synchronous block I/O on a spare device, for the metadata protocols ([`BlockIo`]).
//!
//! Part of this module's binding layer. Every request goes through a bounce buffer from `kmalloc`, because
//! `bdev_rw_virt()` needs a direct-mapped buffer and callers may hand in any slice (stacks are vmalloc'ed).
//! Loads read the region in order, one block per call: reads fetch [`READAHEAD_BYTES`] at once and serve the
//! following blocks from the bounce buffer, so a load costs one request per 16 blocks instead of one each.

use kernel::bindings;
use kernel::prelude::*;

use crate::io::{BlockIo, IoError};
use crate::layout::BLOCK_SIZE;

/// Bytes a read fetches at once, when that much contiguous memory can be had.
const READAHEAD_BYTES: usize = 16 * BLOCK_SIZE;

/// A block device held by the caller for at least as long as this value lives.
pub(crate) struct BdevIo {
    bdev: *mut bindings::block_device,
    /// [`READAHEAD_BYTES`] long, or one block when that allocation failed.
    bounce: KVec<u8>,
    /// First sector and length in bytes of the device data the bounce buffer holds, if it holds any.
    cached: Option<(u64, usize)>,
}

// SAFETY: the block device may be used from any thread; the bounce buffer is owned.
unsafe impl Send for BdevIo {}

impl BdevIo {
    /// # Safety
    ///
    /// `bdev` must stay a live, opened block device for the whole life of the returned value.
    pub(crate) unsafe fn new(bdev: *mut bindings::block_device) -> Result<Self> {
        // A 64 KiB kmalloc may fail on a fragmented machine; one block is always enough.
        let mut bounce = match KVec::with_capacity(READAHEAD_BYTES, GFP_KERNEL | __GFP_NOWARN) {
            Ok(v) => v,
            Err(_) => KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?,
        };
        bounce.resize(bounce.capacity(), 0, GFP_KERNEL)?;
        Ok(Self {
            bdev,
            bounce,
            cached: None,
        })
    }

    /// One request of `len` bytes (at most the bounce buffer) at `sector`, through the bounce buffer.
    fn rw(&mut self, sector: u64, len: usize, op: u32) -> Result<(), IoError> {
        if len > self.bounce.len() {
            return Err(IoError);
        }
        // SAFETY: `bdev` is live (constructor contract); `bounce` is a kmalloc'ed (direct-mapped) buffer of at
        // least `len` bytes that we own; the call completes the I/O before returning.
        let r = unsafe {
            bindings::bdev_rw_virt(self.bdev, sector, self.bounce.as_mut_ptr().cast(), len, op)
        };
        if r == 0 {
            Ok(())
        } else {
            Err(IoError)
        }
    }

    fn write_op(&mut self, sector: u64, buf: &[u8], op: u32) -> Result<(), IoError> {
        // The bounce buffer is reused: whatever it held of the device is gone.
        self.cached = None;
        let dst = self.bounce.get_mut(..buf.len()).ok_or(IoError)?;
        if buf.len() != BLOCK_SIZE {
            return Err(IoError);
        }
        dst.copy_from_slice(buf);
        self.rw(sector, BLOCK_SIZE, op)
    }

    /// Where the block at `sector` is in the bounce buffer, if it is there.
    fn cached_offset(&self, sector: u64) -> Option<usize> {
        let (first, len) = self.cached?;
        let offset = usize::try_from(sector.checked_sub(first)?.checked_mul(SECTOR_BYTES)?).ok()?;
        (offset.checked_add(BLOCK_SIZE)? <= len).then_some(offset)
    }
}

const REQ_FUA: u32 = 1 << bindings::req_flag_bits___REQ_FUA;
const READ: u32 = bindings::req_op_REQ_OP_READ;
const SECTOR_BYTES: u64 = 512;

impl BlockIo for BdevIo {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if buf.len() != BLOCK_SIZE {
            return Err(IoError);
        }
        let offset = match self.cached_offset(sector) {
            Some(offset) => offset,
            None => {
                self.cached = None;
                let ahead = self.bounce.len();
                // Past the end of the device or over a bad sector, the long read fails; the block alone may not.
                let len = if ahead > BLOCK_SIZE && self.rw(sector, ahead, READ).is_ok() {
                    ahead
                } else {
                    self.rw(sector, BLOCK_SIZE, READ)?;
                    BLOCK_SIZE
                };
                self.cached = Some((sector, len));
                0
            }
        };
        let end = offset.checked_add(BLOCK_SIZE).ok_or(IoError)?;
        buf.copy_from_slice(self.bounce.get(offset..end).ok_or(IoError)?);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write_op(sector, buf, bindings::req_op_REQ_OP_WRITE)
    }

    fn write_fua(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write_op(sector, buf, bindings::req_op_REQ_OP_WRITE | REQ_FUA)
    }

    fn forget_reads(&mut self) {
        self.cached = None;
    }

    fn flush(&mut self) -> Result<(), IoError> {
        // SAFETY: `bdev` is live (constructor contract).
        if unsafe { bindings::blkdev_issue_flush(self.bdev) } == 0 {
            Ok(())
        } else {
            Err(IoError)
        }
    }
}
