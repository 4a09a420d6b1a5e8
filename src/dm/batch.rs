//! Writes submitted together and waited for together ([`WriteBatch`]).

use core::marker::PhantomData;

use kernel::prelude::*;

use super::ffi;
use super::Device;

/// Writes in one [`WriteBatch`]: the bits of the `u32` that [`WriteBatch::submit`] returns.
pub(crate) const BATCH_WRITES: usize = 16;

/// Writes that do not depend on one another, such as a group's relocated units: submitted together, so a
/// device with slow writes serves them at once instead of one after another. Holds at most
/// [`BATCH_WRITES`]; the buffers stay borrowed until the batch is dropped.
pub(crate) struct WriteBatch<'a> {
    ios: [ffi::dmr_write; BATCH_WRITES],
    len: usize,
    _data: PhantomData<(&'a Device, &'a [u8])>,
}

impl<'a> WriteBatch<'a> {
    pub(crate) fn new() -> Self {
        Self {
            ios: core::array::from_fn(|_| ffi::dmr_write::default()),
            len: 0,
            _data: PhantomData,
        }
    }

    /// Adds a write of `buf` (kmalloc'ed, as a `KVec` is) at `sector` of `dev`; `EBUSY` when the batch is
    /// full.
    pub(crate) fn push(&mut self, dev: &'a Device, sector: u64, buf: &'a KVec<u8>) -> Result {
        let len = u32::try_from(buf.len()).map_err(|_| EINVAL)?;
        let io = self.ios.get_mut(self.len).ok_or(EBUSY)?;
        *io = ffi::dmr_write {
            bdev: dev.bdev(),
            sector,
            // A write only reads the buffer; C's `void *` has no const.
            buf: buf.as_ptr().cast_mut().cast(),
            len,
            error: 0,
        };
        self.len += 1;
        Ok(())
    }

    /// Submits the writes and waits for all of them (sleeps). Bit `i` of the result: write `i` (in the order
    /// pushed) failed. When the batch cannot be set up (no memory), the writes are made one at a time.
    pub(crate) fn submit(mut self) -> u32 {
        let Some(ios) = self.ios.get_mut(..self.len) else {
            return 0;
        };
        let n = u32::try_from(ios.len()).unwrap_or(0);
        // SAFETY: each entry names a live block device (borrowed `Device`s) and a kmalloc'ed buffer of `len`
        // bytes borrowed for `'a`; the call completes every write before it returns.
        let batched = unsafe { ffi::dmr_write_all(ios.as_mut_ptr(), n) };
        let mut failed = 0u32;
        let mut bit = 1u32;
        for io in ios.iter_mut() {
            if batched != 0 {
                // SAFETY: as above, one write at a time.
                io.error = unsafe {
                    ffi::bdev_rw_virt(
                        io.bdev,
                        io.sector,
                        io.buf,
                        usize::try_from(io.len).unwrap_or(0),
                        ffi::req_op_REQ_OP_WRITE,
                    )
                };
            }
            if io.error != 0 {
                failed |= bit;
            }
            bit = bit.wrapping_shl(1);
        }
        failed
    }
}
