//! Host benchmark of the spare allocator (`spare_pool/src`, the code the kernel module runs for every
//! relocation) at the remap table's sizes: 1,000 to 1,000,000 units in use in a pool of two spares of
//! 1,048,576 units each (4 GiB each in 4 KiB units).
//!
//! - fill: allocating the units one by one into an empty pool (ns per allocation);
//! - claim: marking the same units used one by one, as assembly replays the remaps it loaded;
//! - load: validating and counting both spares' bitmaps as read from disk (`Bitmap::load`);
//! - churn: one unremap and one remap (free a random used unit, allocate one), at that fill and with the
//!   pool 99.9% full, where the next free unit is a hole behind the search cursor.
//!
//! Run it with `scripts/bench-host` (or `cargo bench -p dm-remap-v4-spare-pool --bench allocator`). Without
//! `--bench` on the command line (as `cargo test --benches` runs it) it runs a small smoke configuration.

// A benchmark, not kernel code: the workspace's no-panic and integer-only lints are for the shared logic.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::time::Instant;

use dm_remap_v4_spare_pool::bitmap::words_needed;
use dm_remap_v4_spare_pool::{Allocation, Bitmap, Pool, Spare, SpareState};

/// Units of each of the two spares.
const SPARE_UNITS: u64 = 1 << 20;

/// A scattered index below `len` for step `i`: the top bits of a multiplicative hash, the same every run.
fn scattered(i: usize, len: usize) -> usize {
    let h = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) % len as u64) as usize
}

/// The words of two formatted spares.
fn blank_words(units: u64) -> [Vec<u64>; 2] {
    let words = words_needed(units).unwrap();
    [vec![0; words], vec![0; words]]
}

/// A pool over `words` (two spares, both active, neither on main's device).
fn spares_of(words: &mut [Vec<u64>; 2], units: u64) -> Vec<Spare<'_>> {
    words
        .iter_mut()
        .map(|w| Spare::new(Bitmap::format(w, units).unwrap(), SpareState::Active, false))
        .collect()
}

/// Nanoseconds per step of `f`, run `n` times.
fn ns_per(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n.max(1) as f64
}

/// `count` allocations into `pool`, returned in order.
fn fill(pool: &mut Pool<'_, '_>, count: usize) -> Vec<Allocation> {
    (0..count).map(|_| pool.allocate().unwrap()).collect()
}

/// Nanoseconds per unremap + remap over `used`: a random allocation freed, then one allocated.
fn churn(pool: &mut Pool<'_, '_>, used: &mut [Allocation], rounds: usize) -> f64 {
    ns_per(rounds, |round| {
        let i = scattered(round, used.len());
        pool.free(used[i]).unwrap();
        used[i] = pool.allocate().unwrap();
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, units, rounds): (&[usize], u64, usize) = if full {
        (&[1_000, 100_000, 1_000_000], SPARE_UNITS, 100_000)
    } else {
        (&[1_000], 1 << 12, 1_000)
    };
    println!(
        "| units in use | fill ns/allocation | claim ns/unit | load of both bitmaps ms | \
         churn ns (unremap + remap) | churn ns, pool 99.9% full |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for &n in sizes {
        let (fill_ns, churn_ns, used) = {
            let mut words = blank_words(units);
            let mut spares = spares_of(&mut words, units);
            let mut pool = Pool::new(&mut spares).unwrap();
            let start = Instant::now();
            let mut used = fill(&mut pool, n);
            let fill_ns = start.elapsed().as_nanos() as f64 / n as f64;
            (fill_ns, churn(&mut pool, &mut used, rounds), used)
        };

        // The same units claimed one by one into blank bitmaps, as assembly does.
        let mut claimed = blank_words(units);
        let claim_ns = {
            let mut spares = spares_of(&mut claimed, units);
            let mut pool = Pool::new(&mut spares).unwrap();
            ns_per(used.len(), |i| pool.claim(used[i]).unwrap())
        };

        // Both bitmaps as read back from disk: validated and counted.
        let start = Instant::now();
        for w in claimed.iter_mut() {
            black_box(Bitmap::load(w, units).unwrap().counts());
        }
        let load_ms = start.elapsed().as_secs_f64() * 1e3;

        // Nearly full: every unit but 0.1% allocated, so each remap searches for a hole.
        let full_ns = {
            let mut words = blank_words(units);
            let mut spares = spares_of(&mut words, units);
            let mut pool = Pool::new(&mut spares).unwrap();
            let total = 2 * units as usize;
            let mut used = fill(&mut pool, total - total / 1000);
            churn(&mut pool, &mut used, rounds.min(20_000))
        };

        println!(
            "| {n} | {fill_ns:.0} | {claim_ns:.0} | {load_ms:.2} | {churn_ns:.0} | {full_ns:.0} |"
        );
    }
    if !full {
        println!("(smoke configuration: pass --bench for the real one)");
    }
}
