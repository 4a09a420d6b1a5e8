//! `struct queue_limits` as seen from a target's `io_hints`.

use super::ffi;

/// The queue limits device-mapper is computing for the mapped device.
pub(crate) struct QueueLimits<'a>(&'a mut ffi::queue_limits);

impl<'a> QueueLimits<'a> {
    /// # Safety
    ///
    /// `ptr` must be valid and exclusively ours for `'a` (true inside `io_hints`).
    pub(crate) unsafe fn from_raw(ptr: *mut ffi::queue_limits) -> Self {
        // SAFETY: guaranteed by the caller.
        Self(unsafe { &mut *ptr })
    }

    /// Raises the logical and physical block size and the minimum I/O size to at least `bytes`, like
    /// `dm_stack_bs_limits()`.
    pub(crate) fn stack_block_size(&mut self, bytes: u32) {
        let l = &mut *self.0;
        l.logical_block_size = l.logical_block_size.max(bytes);
        l.physical_block_size = l.physical_block_size.max(bytes);
        l.io_min = l.io_min.max(bytes);
    }
}
