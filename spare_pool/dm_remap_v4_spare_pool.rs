// SPDX-License-Identifier: GPL-2.0

//! dm-remap-v4-spare-pool: spare space allocation across spare devices
//!
//! A helper module of dm-remap-v4. The allocator is the host crate in `src/`, mounted here as source;
//! `exports.rs` is the C ABI the core imports (listed with `EXPORT_SYMBOL_GPL` in `exports.c`).

use kernel::prelude::*;

/// The contract with the core module (`src/logic/abi.rs`).
#[path = "../src/logic/abi.rs"]
pub mod helper_abi;

#[path = "src/bitmap.rs"]
pub mod bitmap;
#[path = "src/error.rs"]
pub mod error;
#[path = "src/pool.rs"]
pub mod pool;
#[path = "src/sizing.rs"]
pub mod sizing;

pub mod exports;

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
