//! Host benchmark of what the latency histogram adds to each data bio (`logic/health.rs`): the kernel reads
//! the monotonic clock in `map()` and in `end_io()`, turns the difference into a bucket and adds one to it
//! (a relaxed atomic). Here the clock is `std::time::Instant` (`clock_gettime(CLOCK_MONOTONIC)`, the same
//! clocksource read the kernel's `ktime_get()` does, without the system call under the vDSO).
//!
//! Run it with `scripts/bench-host` (or `cargo bench -p dm-remap-v4-target --bench health`). Without `--bench`
//! on the command line (as `cargo test --benches` runs it) it runs a small smoke configuration.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dm_remap_v4_target::health::{latency_bucket, LATENCY_BUCKETS};

/// Nanoseconds per iteration of `f`, best of 5 runs of `n` iterations.
fn ns_per(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n = if std::env::args().any(|a| a == "--bench") {
        10_000_000
    } else {
        10_000
    };
    let buckets: [AtomicU64; LATENCY_BUCKETS] = std::array::from_fn(|_| AtomicU64::new(0));
    let count = |micros: u64| {
        buckets[latency_bucket(micros)].fetch_add(1, Ordering::Relaxed);
    };
    let bucket_only = ns_per(n, |i| count(black_box(i & 0xffff)));
    let clock = ns_per(n, |_| {
        black_box(Instant::now());
    });
    let per_bio = ns_per(n, |_| {
        let started = Instant::now();
        count(started.elapsed().as_micros() as u64);
    });
    println!("| part | ns per bio |");
    println!("| --- | --- |");
    println!("| bucket and relaxed atomic add | {bucket_only:.1} |");
    println!("| one monotonic clock read | {clock:.1} |");
    println!("| all of it: two clock reads, bucket, add | {per_bio:.1} |");
    let total: u64 = buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
    assert!(total >= 3 * n, "every iteration counted");
}
