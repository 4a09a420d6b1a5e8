//! The C ABI of dm-remap-v4-setup-reassembly: what the core module (and KUnit) call.
//!
//! This is the module's binding layer: the only `unsafe` code, turning raw pointers into references and the
//! shared logic's results into negative errnos. Semantics and units are documented in `docs/reassembly.md`.

use kernel::ffi::c_int;

use crate::helper_abi::HELPER_ABI_VERSION;
use crate::integrity::{verify_superblock, IntegrityError};
use crate::score::{calculate_confidence_score, Inputs};
use crate::version::next_version;

/// The helper ABI version this module was built with; the core checks it at load time.
#[no_mangle]
pub extern "C" fn dm_remap_v4_setup_reassembly_abi_version() -> u32 {
    HELPER_ABI_VERSION
}

/// Checks that the `len` bytes at `block` are an intact superblock read from the position of copy `copy`.
///
/// Returns 0, or a negative errno: `-EINVAL` (not one 4096-byte block, no such copy, null pointer),
/// `-ENODATA` (blank), `-EMEDIUMTYPE` (not dm-remap-v4 metadata), `-EUCLEAN` (checksum mismatch, misplaced copy,
/// inconsistent geometry), `-EOPNOTSUPP` (newer format or unknown incompatible feature).
///
/// # Safety
///
/// `block` must be null or point to `len` readable bytes that do not change during the call.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_verify_metadata_integrity(
    block: *const u8,
    len: usize,
    copy: u32,
) -> c_int {
    if block.is_null() {
        return IntegrityError::BadArgument.errno();
    }
    // SAFETY: non-null, and the caller guarantees `len` readable, stable bytes.
    let block = unsafe { core::slice::from_raw_parts(block, len) };
    match verify_superblock(block, copy) {
        Ok(_) => 0,
        Err(e) => e.errno(),
    }
}

/// The 0..=100 confidence that the devices described by `*inputs` form one setup (formula in
/// `docs/reassembly.md`). A null pointer scores 0.
///
/// # Safety
///
/// `inputs` must be null or point to a valid `Inputs` (`struct dm_remap_v4_confidence_inputs`).
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_calculate_confidence_score(inputs: *const Inputs) -> u8 {
    // SAFETY: the caller guarantees that a non-null `inputs` points to a valid `Inputs`.
    match unsafe { inputs.as_ref() } {
        Some(inputs) => calculate_confidence_score(inputs),
        None => 0,
    }
}

/// Stores in `*next` the metadata version that follows `current` (versions only grow), and returns 0;
/// `-EOVERFLOW` when `current` is the largest version, `-EINVAL` for a null `next`.
///
/// # Safety
///
/// `next` must be null or valid for a write of a `u64`.
#[no_mangle]
pub unsafe extern "C" fn dm_remap_v4_update_metadata_version(
    current: u64,
    next: *mut u64,
) -> c_int {
    if next.is_null() {
        return IntegrityError::BadArgument.errno();
    }
    match next_version(current) {
        Ok(v) => {
            // SAFETY: non-null and valid for writes (caller's guarantee).
            unsafe { next.write(v) };
            0
        }
        Err(e) => e.errno(),
    }
}
