//! Pure logic of the `dm-remap-v4` target, shared as source with `dm-remap-v4.ko`.
//!
//! Nothing here touches the kernel: the constructor's argument parser, the message parser and the status
//! formatters work on bytes and `core::fmt::Write`, so the host tests and fuzzers exercise exactly the code the
//! module runs. See `docs/shared-logic.md` for the rules these files follow.
#![no_std]

pub mod abi;
pub mod arg;
pub mod health;
pub mod message;
pub mod number;
pub mod outbuf;
pub mod route;
pub mod scrub;
pub mod snapshot;
pub mod sorted;
pub mod status;
pub mod table;
