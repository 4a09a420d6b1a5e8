//! Reassembly confidence of dm-remap-v4.
//!
//! After a reboot the setup is put back together from whatever devices carry its metadata.
//! This crate decides whether the devices found belong together:
//!
//! - [`score`]: the `#[repr(C)]` [`Inputs`] the caller gathers, the vetoes and the 0..=100
//!   confidence score;
//! - [`verdict`]: [`assess`] turns inputs and a threshold into assemble / degraded / refuse,
//!   with a static [`Reason`];
//! - [`version`]: monotonic metadata versions and picking the newest member;
//! - [`integrity`]: whether one metadata block is an intact superblock of a known format;
//! - [`error`]: errors with static messages and negative errnos for the kernel.
//!
//! `no_std`, allocation-free, integer-only and panic-free: the kernel modules mount these
//! files as source (see `docs/shared-logic.md`); the formula is in `docs/reassembly.md`.
#![no_std]

pub mod error;
pub mod integrity;
pub mod score;
pub mod verdict;
pub mod version;

// The metadata format, reachable from every module here as `super::md` (the kernel module mounts the
// metadata crate's files as a sibling module of the same name).
use dm_remap_v4_metadata as md;

pub use error::Error;
pub use score::{calculate_confidence_score, veto, Inputs};
pub use verdict::{assess, Reason, Verdict, DEFAULT_THRESHOLD};
pub use version::{compare_versions, newest, next_version, summarize, SequenceSummary};
