//! A bio as a target sees it in `map()` and `end_io()`, and a bio the target took over to complete later.

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use kernel::error::to_result;
use kernel::prelude::*;
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

    /// True for a write that must be on stable media when it completes.
    pub(crate) fn is_fua(&self) -> bool {
        self.opf() & ffi::DMR_REQ_FUA != 0
    }

    /// The bio's current position in its data. Saved in `map()`, it describes the data the bio carries even
    /// after completion has consumed the bio's own iterator.
    pub(crate) fn iter(&self) -> BioIter {
        // SAFETY: `self` wraps a valid bio (type invariant).
        BioIter(unsafe { (*self.0.get()).bi_iter })
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

impl BlkStatus {
    /// `BLK_STS_OK`.
    pub(crate) const OK: Self = Self(ffi::DMR_BLK_STS_OK);
    /// `BLK_STS_IOERR`.
    pub(crate) const IOERR: Self = Self(ffi::DMR_BLK_STS_IOERR);
}

/// A saved position in a bio's data (`struct bvec_iter`).
#[derive(Clone, Copy)]
pub(crate) struct BioIter(ffi::bvec_iter);

impl BioIter {
    /// Bytes of data from this position on.
    pub(crate) fn bytes(&self) -> u32 {
        self.0.bi_size
    }
}

impl Default for BioIter {
    fn default() -> Self {
        Self(ffi::bvec_iter {
            bi_sector: 0,
            bi_size: 0,
            bi_idx: 0,
            bi_offset: 0,
        })
    }
}

/// A bio whose completion the target has taken over, from `map()` or `end_io()`. It is completed exactly once:
/// by [`OwnedBio::end`], or with an I/O error if it is dropped, so no bio is ever left hanging.
///
/// `P` is the target's per-bio data type ([`super::Target::PerBio`]); device-mapper keeps it in front of the
/// bio, and it was initialised when the bio was mapped.
pub(crate) struct OwnedBio<P> {
    bio: NonNull<ffi::bio>,
    _per_bio: PhantomData<P>,
}

// SAFETY: an owned bio is completed exactly once, by whichever thread holds it; its per-bio data is `Send`.
unsafe impl<P: Send> Send for OwnedBio<P> {}

impl<P> OwnedBio<P> {
    /// # Safety
    ///
    /// `bio` must be a bio of a target whose per-bio data is a `P` initialised by `map()`, whose completion the
    /// target took over (it returned `DM_MAPIO_SUBMITTED` or `DM_ENDIO_INCOMPLETE` for it), and nothing else may
    /// use it until it is completed.
    pub(crate) unsafe fn from_raw(bio: NonNull<ffi::bio>) -> Self {
        Self {
            bio,
            _per_bio: PhantomData,
        }
    }

    fn per_bio_ptr(&self) -> *mut P {
        // SAFETY: a bio of a target whose `per_io_data_size` is `size_of::<P>()` (type invariant).
        unsafe { ffi::dm_per_bio_data(self.bio.as_ptr(), core::mem::size_of::<P>()).cast::<P>() }
    }

    /// The target's data for this bio.
    pub(crate) fn per_bio(&self) -> &P {
        // SAFETY: initialised in `map()`, aligned (see `Registration::new`), and ours while we own the bio.
        unsafe { &*self.per_bio_ptr() }
    }

    /// The target's data for this bio, to change.
    pub(crate) fn per_bio_mut(&mut self) -> &mut P {
        // SAFETY: as in `per_bio`; `&mut self` makes this the only reference.
        unsafe { &mut *self.per_bio_ptr() }
    }

    /// Copies `buf.len()` bytes of the bio's data, from `skip` bytes past `iter`, into `buf`.
    pub(crate) fn copy_out(&self, iter: &BioIter, skip: u32, buf: &mut [u8]) -> Result {
        let len = u32::try_from(buf.len()).map_err(|_| EINVAL)?;
        // SAFETY: we own the bio and its pages stay valid until we complete it; `buf` is writable for `len`
        // bytes; the helper checks the range against `iter`.
        to_result(unsafe {
            ffi::dmr_bio_copy(
                self.bio.as_ptr(),
                &iter.0,
                skip,
                buf.as_mut_ptr().cast(),
                len,
                false,
            )
        })
    }

    /// Copies `buf` into the bio's data, from `skip` bytes past `iter` (filling a read).
    pub(crate) fn copy_in(&mut self, iter: &BioIter, skip: u32, buf: &[u8]) -> Result {
        let len = u32::try_from(buf.len()).map_err(|_| EINVAL)?;
        // SAFETY: as in `copy_out`; the helper only reads `buf` when copying into the bio.
        to_result(unsafe {
            ffi::dmr_bio_copy(
                self.bio.as_ptr(),
                &iter.0,
                skip,
                buf.as_ptr().cast_mut().cast(),
                len,
                true,
            )
        })
    }

    /// Completes the bio with `status`. Device-mapper then calls the target's `end_io()` for it again.
    pub(crate) fn end(self, status: BlkStatus) {
        let bio = self.bio.as_ptr();
        core::mem::forget(self);
        // SAFETY: we own the bio (type invariant) and give it up here, exactly once.
        unsafe {
            (*bio).bi_status = status.0;
            ffi::bio_endio(bio);
        }
    }

    fn into_raw(self) -> NonNull<ffi::bio> {
        let bio = self.bio;
        core::mem::forget(self);
        bio
    }
}

impl<P> Deref for OwnedBio<P> {
    type Target = Bio;

    fn deref(&self) -> &Bio {
        // SAFETY: `Bio` is a transparent wrapper of a bio we own (type invariant).
        unsafe { &*self.bio.as_ptr().cast::<Bio>() }
    }
}

impl<P> Drop for OwnedBio<P> {
    fn drop(&mut self) {
        // SAFETY: as in `end`: a bio dropped without an outcome fails rather than hangs.
        unsafe {
            (*self.bio.as_ptr()).bi_status = ffi::DMR_BLK_STS_IOERR;
            ffi::bio_endio(self.bio.as_ptr());
        }
    }
}

/// A FIFO of owned bios, linked through `bi_next` (no allocation, so it can be used in completion context).
pub(crate) struct BioList<P> {
    head: Option<NonNull<ffi::bio>>,
    tail: Option<NonNull<ffi::bio>>,
    _per_bio: PhantomData<P>,
}

// SAFETY: the list owns its bios, as `OwnedBio` does.
unsafe impl<P: Send> Send for BioList<P> {}

impl<P> BioList<P> {
    pub(crate) const fn new() -> Self {
        Self {
            head: None,
            tail: None,
            _per_bio: PhantomData,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends `bio`.
    pub(crate) fn push(&mut self, bio: OwnedBio<P>) {
        let raw = bio.into_raw();
        // SAFETY: we own `raw` and every bio on the list; `bi_next` is free for the owner of a bio to use.
        unsafe {
            (*raw.as_ptr()).bi_next = core::ptr::null_mut();
            match self.tail {
                Some(tail) => (*tail.as_ptr()).bi_next = raw.as_ptr(),
                None => self.head = Some(raw),
            }
        }
        self.tail = Some(raw);
    }

    /// Removes the oldest bio.
    pub(crate) fn pop(&mut self) -> Option<OwnedBio<P>> {
        let head = self.head?;
        // SAFETY: `head` is a bio the list owns; taking it off the list passes that ownership on.
        unsafe {
            self.head = NonNull::new((*head.as_ptr()).bi_next);
            (*head.as_ptr()).bi_next = core::ptr::null_mut();
            if self.head.is_none() {
                self.tail = None;
            }
            Some(OwnedBio::from_raw(head))
        }
    }
}

impl<P> BioList<P> {
    /// Moves the oldest `n` bios (or all, if fewer) to a list of their own.
    pub(crate) fn take_front(&mut self, n: usize) -> Self {
        let mut out = Self::new();
        for _ in 0..n {
            let Some(bio) = self.pop() else { break };
            out.push(bio);
        }
        out
    }
}

impl<P> Drop for BioList<P> {
    fn drop(&mut self) {
        // Bounded by the list: each step removes one bio, which fails as it is dropped.
        while self.pop().is_some() {}
    }
}
