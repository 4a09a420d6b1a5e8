//! Per-CPU counters ([`PerCpuCounters`]).

use core::ptr::NonNull;

use kernel::prelude::*;

use super::ffi;

/// `N` counters of which each CPU keeps its own copy: adding is one `this_cpu_add` on the local copy, so
/// counting every bio shares no cache line between CPUs (as the block layer's own statistics do). Reading sums
/// the copies; a read racing with adds sees some of them, as with any counter.
pub(crate) struct PerCpuCounters<const N: usize> {
    counters: NonNull<u64>,
}

// SAFETY: the counters are per-CPU memory owned by this value; `add` touches only the running CPU's copy with
// an interrupt-safe per-CPU operation, and `sum` and `zero` only read or store whole `u64`s.
unsafe impl<const N: usize> Send for PerCpuCounters<N> {}
// SAFETY: as above; every method takes `&self` and is safe to call from any context concurrently.
unsafe impl<const N: usize> Sync for PerCpuCounters<N> {}

impl<const N: usize> PerCpuCounters<N> {
    /// Zeroed counters; may sleep.
    pub(crate) fn new() -> Result<Self> {
        let n = u32::try_from(N).map_err(|_| EINVAL)?;
        // SAFETY: a plain allocation of `n` zeroed u64s per CPU.
        let counters = unsafe { ffi::dmr_percpu_alloc(n) };
        Ok(Self {
            counters: NonNull::new(counters).ok_or(ENOMEM)?,
        })
    }

    /// Index `i` as C takes it, when it names a counter.
    fn index(i: usize) -> Option<u32> {
        if i < N {
            u32::try_from(i).ok()
        } else {
            None
        }
    }

    /// Adds `value` to counter `i` (ignored when `i >= N`); never sleeps.
    pub(crate) fn add(&self, i: usize, value: u64) {
        if let Some(i) = Self::index(i) {
            // SAFETY: `counters` holds `N` counters (type invariant) and `i < N`.
            unsafe { ffi::dmr_percpu_add(self.counters.as_ptr(), i, value) };
        }
    }

    /// The sum of counter `i` over all CPUs (0 when `i >= N`).
    pub(crate) fn sum(&self, i: usize) -> u64 {
        match Self::index(i) {
            // SAFETY: `counters` holds `N` counters (type invariant) and `i < N`.
            Some(i) => unsafe { ffi::dmr_percpu_sum(self.counters.as_ptr(), i) },
            None => 0,
        }
    }

    /// Sets every copy of every counter to zero.
    pub(crate) fn zero(&self) {
        for i in 0..N {
            if let Some(i) = Self::index(i) {
                // SAFETY: `counters` holds `N` counters (type invariant) and `i < N`.
                unsafe { ffi::dmr_percpu_zero(self.counters.as_ptr(), i) };
            }
        }
    }
}

impl<const N: usize> Drop for PerCpuCounters<N> {
    fn drop(&mut self) {
        // SAFETY: allocated by `dmr_percpu_alloc` in `new` and freed only here.
        unsafe { ffi::dmr_percpu_free(self.counters.as_ptr()) };
    }
}
