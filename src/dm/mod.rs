//! Safe Rust bindings for writing a device-mapper target.
//!
//! This is the only place in dm-remap-v4 with `unsafe` code. It turns the C interface of
//! `<linux/device-mapper.h>` into a [`Target`] trait: a target is a Rust type whose constructor returns an owned
//! value, and whose methods receive safe views of the bio, the devices and the output buffers. Everything above
//! this layer is safe Rust.

pub(crate) mod args;
pub(crate) mod batch;
pub(crate) mod bio;
pub(crate) mod device;
pub(crate) mod ffi;
pub(crate) mod limits;
pub(crate) mod percpu;
pub(crate) mod rcu;
pub(crate) mod target;
pub(crate) mod worker;
pub(crate) mod xa;

pub(crate) use args::Args;
pub(crate) use batch::{WriteBatch, BATCH_WRITES};
pub(crate) use bio::{Bio, BioIter, BioList, BlkStatus, Op, OwnedBio};
pub(crate) use device::{Device, DeviceVisitor};
pub(crate) use limits::QueueLimits;
pub(crate) use percpu::PerCpuCounters;
pub(crate) use rcu::RcuBox;
pub(crate) use target::{
    CtrError, EndIo, MapResult, Registration, StatusKind, Target, TargetCtr, TargetInfo,
};
pub(crate) use worker::{BioWorker, HandleBio, NoIoScope, OwnedQueue};
pub(crate) use xa::ValueXa;

/// True when a rate-limited warning may be printed now (the kernel's default: 10 per 5 seconds).
pub(crate) fn log_ratelimit() -> bool {
    // SAFETY: a plain C function with no arguments and no preconditions.
    unsafe { ffi::dmr_log_ratelimit() }
}
