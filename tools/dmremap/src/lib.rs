//! `dmremap`: the administration tool of dm-remap-v4.
//!
//! The binary (`src/main.rs`) is the command line; the work is done here, in modules that the unit tests
//! exercise without a kernel: the status-line parser and renderers ([`status`]), the `list` output ([`list`]),
//! the `stats` and `spares` answers and the drain ([`stats`], [`spares`]), the metadata inspection and check
//! over the real format crate ([`inspect`], [`check`], [`image`]), and the device-mapper requests
//! ([`dm_ioctl`], [`device`], [`create`]). See `docs/dmremap.md`.

pub mod assemble;
pub mod check;
pub mod create;
pub mod device;
pub mod dm_ioctl;
pub mod error;
pub mod identity;
pub mod image;
pub mod inspect;
pub mod list;
pub mod progress;
pub mod scan;
pub mod scrub;
pub mod spares;
pub mod stats;
pub mod status;
pub mod tabular;
