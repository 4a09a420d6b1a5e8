// SPDX-License-Identifier: GPL-2.0

//! dm-remap-v4-setup-reassembly: integrity checks, confidence scoring and metadata versioning.
//!
//! A helper module of dm-remap-v4. The logic is the host crate in `src/` (and the metadata format from
//! `../metadata/src/`), mounted here as source; `exports.rs` is the C ABI the core imports (listed with
//! `EXPORT_SYMBOL_GPL` in `exports.c`), and `kunit.rs` tests that ABI inside the kernel.

use kernel::prelude::*;

/// The contract with the core module (`src/logic/abi.rs`).
#[path = "../src/logic/abi.rs"]
pub mod helper_abi;

/// The metadata format, as the metadata crate defines it (its files mounted in `md/mod.rs`).
pub mod md;

#[path = "src/error.rs"]
pub mod error;
#[path = "src/integrity.rs"]
pub mod integrity;
#[path = "src/score.rs"]
pub mod score;
#[path = "src/verdict.rs"]
pub mod verdict;
#[path = "src/version.rs"]
pub mod version;

pub mod exports;
mod kunit;

module! {
    type: DmRemapV4SetupReassembly,
    name: "dm_remap_v4_setup_reassembly",
    authors: ["dm-remap-v4 developers"],
    description: "dm-remap-v4 setup reassembly: integrity checks, confidence scoring, versioning",
    license: "GPL",
}

struct DmRemapV4SetupReassembly;

impl kernel::Module for DmRemapV4SetupReassembly {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self)
    }
}
