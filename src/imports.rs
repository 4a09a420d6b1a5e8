//! The symbols the core imports from its three helper modules (part of the binding layer: the only `unsafe`
//! outside `dm/`).
//!
//! Rust has no stable ABI between separately built crates, and out-of-tree Rust modules cannot link against
//! each other's crates; the helper modules therefore export plain `extern "C"` functions (listed with
//! `EXPORT_SYMBOL_GPL` in each module's `exports.c`), declared here. Importing them is what makes `modprobe
//! dm-remap-v4` load the helpers first.

use kernel::prelude::*;

use crate::logic::abi::HELPER_ABI_VERSION;

extern "C" {
    fn dm_remap_v4_metadata_abi_version() -> u32;
    fn dm_remap_v4_spare_pool_abi_version() -> u32;
    fn dm_remap_v4_setup_reassembly_abi_version() -> u32;
}

/// Refuses to initialise the core with helper modules built from another version of the source.
pub(crate) fn check_abi() -> Result {
    // SAFETY: plain functions without arguments or preconditions, exported by loaded helper modules (the
    // module loader resolved the symbols before `init` runs).
    let found = unsafe {
        [
            ("dm-remap-v4-metadata", dm_remap_v4_metadata_abi_version()),
            (
                "dm-remap-v4-spare-pool",
                dm_remap_v4_spare_pool_abi_version(),
            ),
            (
                "dm-remap-v4-setup-reassembly",
                dm_remap_v4_setup_reassembly_abi_version(),
            ),
        ]
    };
    for (module, version) in found {
        if version != HELPER_ABI_VERSION {
            pr_err!(
                "{} has helper ABI {}, this core needs {}: load matching module builds\n",
                module,
                version,
                HELPER_ABI_VERSION
            );
            return Err(EINVAL);
        }
    }
    Ok(())
}
