// SPDX-License-Identifier: GPL-2.0

//! dm-remap-v4-setup-reassembly: setup reassembly: integrity checks, confidence scoring, versioning
//!
//! A helper module of dm-remap-v4: it exports plain `extern "C"` functions (listed in `exports.c`) that the
//! core module `dm-remap-v4.ko` imports.

use kernel::prelude::*;

/// The contract with the core module (`src/logic/abi.rs`).
#[path = "../src/logic/abi.rs"]
pub mod abi;

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

/// The helper ABI version this module was built with; the core checks it at load time.
#[no_mangle]
pub extern "C" fn dm_remap_v4_setup_reassembly_abi_version() -> u32 {
    abi::HELPER_ABI_VERSION
}
