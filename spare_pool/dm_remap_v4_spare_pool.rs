// SPDX-License-Identifier: GPL-2.0

//! dm-remap-v4-spare-pool: spare space allocation across spare devices
//!
//! A helper module of dm-remap-v4: it exports plain `extern "C"` functions (listed in `exports.c`) that the
//! core module `dm-remap-v4.ko` imports.

use kernel::prelude::*;

/// The contract with the core module (`src/logic/abi.rs`).
#[path = "../src/logic/abi.rs"]
pub mod helper_abi;

module! {
    type: DmRemapV4SparePool,
    name: "dm_remap_v4_spare_pool",
    authors: ["dm-remap-v4 developers"],
    description: "dm-remap-v4 spare space allocation across spare devices",
    license: "GPL",
}

struct DmRemapV4SparePool;

impl kernel::Module for DmRemapV4SparePool {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self)
    }
}

/// The helper ABI version this module was built with; the core checks it at load time.
#[no_mangle]
pub extern "C" fn dm_remap_v4_spare_pool_abi_version() -> u32 {
    helper_abi::HELPER_ABI_VERSION
}
