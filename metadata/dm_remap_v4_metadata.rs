// SPDX-License-Identifier: GPL-2.0

//! dm-remap-v4-metadata: the on-disk metadata format and its durable store.
//!
//! A helper module of dm-remap-v4. The format and its protocols are the host crate in `src/`, mounted here as
//! source; `blockio.rs` gives them synchronous block I/O on a spare device, and `exports.rs` is the C ABI the
//! core imports (listed with `EXPORT_SYMBOL_GPL` in `exports.c`).

use kernel::prelude::*;

/// The contract with the core module (`src/logic/abi.rs`).
#[path = "../src/logic/abi.rs"]
pub mod helper_abi;

#[path = "src/abi.rs"]
pub mod abi;
#[path = "src/block.rs"]
pub mod block;
#[path = "src/checkpoint.rs"]
pub mod checkpoint;
#[path = "src/crc32c.rs"]
pub mod crc32c;
#[path = "src/error.rs"]
pub mod error;
#[path = "src/io.rs"]
pub mod io;
#[path = "src/journal.rs"]
pub mod journal;
#[path = "src/layout.rs"]
pub mod layout;
#[path = "src/le.rs"]
pub mod le;
#[path = "src/open.rs"]
pub mod open;
#[path = "src/record.rs"]
pub mod record;
#[path = "src/scrub.rs"]
pub mod scrub;
#[path = "src/store.rs"]
pub mod store;
#[path = "src/superblock.rs"]
pub mod superblock;

mod blockio;
pub mod exports;

module! {
    type: DmRemapV4Metadata,
    name: "dm_remap_v4_metadata",
    authors: ["dm-remap-v4 developers"],
    description: "dm-remap-v4 on-disk metadata format and its durable store",
    license: "GPL",
}

struct DmRemapV4Metadata;

impl kernel::Module for DmRemapV4Metadata {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self)
    }
}
