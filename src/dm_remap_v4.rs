// SPDX-License-Identifier: GPL-2.0

//! dm-remap-v4: a device-mapper target that keeps a disk with bad sectors usable.
//!
//! This is the core module. The device-mapper binding layer is in `dm/`, the target in `target.rs`, and the
//! pure logic it shares with the host tests in `logic/` (mounted here as source, see `docs/shared-logic.md`).

use kernel::prelude::*;

mod dm;
mod drain;
mod gate;
mod imports;
mod loader;
/// The `#[repr(C)]` types of the metadata module's C ABI (`metadata/src/abi.rs`).
#[path = "../metadata/src/abi.rs"]
pub mod md_abi;
mod members;
mod remapper;
mod scrub;
mod spare_writes;
mod stats;
mod table;
mod target;

/// The pure logic shared with the host crate `dm-remap-v4-target`.
pub mod logic {
    #[path = "../logic/abi.rs"]
    pub mod abi;
    #[path = "../logic/arg.rs"]
    pub mod arg;
    #[path = "../logic/health.rs"]
    pub mod health;
    #[path = "../logic/message.rs"]
    pub mod message;
    #[path = "../logic/number.rs"]
    pub mod number;
    #[path = "../logic/outbuf.rs"]
    pub mod outbuf;
    #[path = "../logic/route.rs"]
    pub mod route;
    #[path = "../logic/scrub.rs"]
    pub mod scrub;
    #[path = "../logic/snapshot.rs"]
    pub mod snapshot;
    #[path = "../logic/sorted.rs"]
    pub mod sorted;
    #[path = "../logic/status.rs"]
    pub mod status;
    #[path = "../logic/table.rs"]
    pub mod table;
}

module! {
    type: DmRemapV4,
    name: "dm_remap_v4",
    authors: ["dm-remap-v4 developers"],
    description: "device-mapper target that remaps bad sectors to spare devices",
    license: "GPL",
    alias: ["dm-dm-remap-v4"],
}

struct DmRemapV4 {
    _registration: dm::Registration<target::RemapTarget>,
}

impl kernel::Module for DmRemapV4 {
    fn init(module: &'static ThisModule) -> Result<Self> {
        imports::check_abi()?;
        let registration = dm::Registration::new(module)?;
        pr_info!("target dm-remap-v4 registered\n");
        Ok(Self {
            _registration: registration,
        })
    }
}
