//! Synchronous block I/O on a spare device, for the metadata protocols ([`BlockIo`]).
//!
//! Part of this module's binding layer. Every request goes through a bounce block from `kmalloc`, because
//! `bdev_rw_virt()` needs a direct-mapped buffer and callers may hand in any slice (stacks are vmalloc'ed).

use kernel::bindings;
use kernel::prelude::*;

use crate::io::{BlockIo, IoError};
use crate::layout::BLOCK_SIZE;

/// A block device held by the caller for at least as long as this value lives.
pub(crate) struct BdevIo {
    bdev: *mut bindings::block_device,
    bounce: KVec<u8>,
}

// SAFETY: the block device may be used from any thread; the bounce buffer is owned.
unsafe impl Send for BdevIo {}

impl BdevIo {
    /// # Safety
    ///
    /// `bdev` must stay a live, opened block device for the whole life of the returned value.
    pub(crate) unsafe fn new(bdev: *mut bindings::block_device) -> Result<Self> {
        let mut bounce = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
        bounce.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        Ok(Self { bdev, bounce })
    }

    fn rw(&mut self, sector: u64, op: u32) -> Result<(), IoError> {
        // SAFETY: `bdev` is live (constructor contract); `bounce` is a kmalloc'ed (direct-mapped) buffer of
        // BLOCK_SIZE bytes that we own; the call completes the I/O before returning.
        let r = unsafe {
            bindings::bdev_rw_virt(
                self.bdev,
                sector,
                self.bounce.as_mut_ptr().cast(),
                BLOCK_SIZE,
                op,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(IoError)
        }
    }

    fn write_op(&mut self, sector: u64, buf: &[u8], op: u32) -> Result<(), IoError> {
        let dst = self.bounce.get_mut(..buf.len()).ok_or(IoError)?;
        if buf.len() != BLOCK_SIZE {
            return Err(IoError);
        }
        dst.copy_from_slice(buf);
        self.rw(sector, op)
    }
}

const REQ_FUA: u32 = 1 << bindings::req_flag_bits___REQ_FUA;

impl BlockIo for BdevIo {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if buf.len() != BLOCK_SIZE {
            return Err(IoError);
        }
        self.rw(sector, bindings::req_op_REQ_OP_READ)?;
        buf.copy_from_slice(self.bounce.get(..BLOCK_SIZE).ok_or(IoError)?);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write_op(sector, buf, bindings::req_op_REQ_OP_WRITE)
    }

    fn write_fua(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write_op(sector, buf, bindings::req_op_REQ_OP_WRITE | REQ_FUA)
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
