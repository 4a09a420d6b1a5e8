//! Spare space allocator of dm-remap-v4.
//!
//! A bad sector of the main device is remapped to a *unit* (one logical block) on one of up to
//! [`MAX_SPARES`] spare devices. This crate decides which unit:
//!
//! - [`bitmap`]: the persisted per-spare free-space bitmap (used and retired planes) in
//!   caller-provided words, with little-endian block encoding;
//! - [`pool`]: the pool of spares, their states and the allocation order policy;
//! - [`sizing`]: unit/sector arithmetic and the minimum spare size policy;
//! - [`error`]: errors with static messages and negative errnos for the kernel.
//!
//! `no_std`, allocation-free and panic-free: the kernel module mounts these files as source
//! (see `docs/shared-logic.md`); the policy is described in `docs/spare-pool.md`.
#![no_std]

pub mod bitmap;
pub mod error;
pub mod pool;
pub mod sizing;

pub use bitmap::{Bitmap, Counts, PriorState, Tally, UnitState};
pub use error::Error;
pub use pool::{pick_spare, Allocation, Candidate, Pool, Spare, SpareState, MAX_SPARES};
