//! The contract between `dm-remap-v4.ko` and its three helper modules.

/// Version of the functions and `#[repr(C)]` types the helper modules export to the core.
///
/// Every helper module exports it; the core refuses to initialise when a helper reports another value, so that
/// a partial upgrade (say, a stale `dm-remap-v4-metadata.ko` left by an old DKMS build) fails loudly at
/// `modprobe` instead of misreading structures at run time. Bump it with any change to an exported signature or
/// type.
pub const HELPER_ABI_VERSION: u32 = 7;
