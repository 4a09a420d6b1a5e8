//! Host benchmark of the remap table's sorted run (`logic/sorted.rs`, the code `map()` runs): lookup of a hit
//! and of a miss, `next_key` (how far a bio may go on main), and the merge of 4096 changes, at 1,000 to
//! 1,000,000 entries spread over a 32 GiB device of 4 KiB units; plus the memory per entry of the run.
//!
//! Run it with `scripts/bench-host` (or `cargo bench -p dm-remap-v4-target --bench table`). Without `--bench`
//! on the command line (as `cargo test --benches` runs it) it runs a small smoke configuration.

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

use dm_remap_v4_target::sorted::{build_fence, fence_len, merge, Run};

/// Units of a 32 GiB main device with 4 KiB units.
const DEVICE_UNITS: u64 = 8 << 20;

/// A small xorshift generator: the same probes every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Table {
    keys: Vec<u64>,
    vals: Vec<u64>,
    fence: Vec<u64>,
}

impl Table {
    /// `n` entries spread evenly over the device, as `md-fixture spread` writes them for the VM benchmark.
    fn spread(n: u64) -> Self {
        let step = DEVICE_UNITS / n;
        let keys: Vec<u64> = (0..n).map(|i| i * step).collect();
        let vals: Vec<u64> = (0..n).collect();
        let mut fence = vec![0; fence_len(keys.len())];
        build_fence(&keys, &mut fence).unwrap();
        Self { keys, vals, fence }
    }

    fn run(&self) -> Run<'_> {
        Run::new(&self.keys, &self.vals, &self.fence).unwrap()
    }

    fn bytes(&self) -> usize {
        (self.keys.len() + self.vals.len() + self.fence.len()) * 8
    }
}

/// Nanoseconds per call of `f` over `probes`.
fn ns_per_op(probes: &[u64], mut f: impl FnMut(u64) -> u64) -> f64 {
    let start = Instant::now();
    let mut acc = 0u64;
    for &p in probes {
        acc = acc.wrapping_add(f(p));
    }
    black_box(acc);
    start.elapsed().as_nanos() as f64 / probes.len() as f64
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, probes_n): (&[u64], usize) = if full {
        (&[1_000, 100_000, 1_000_000], 2_000_000)
    } else {
        (&[1_000], 10_000)
    };
    println!("| entries | run bytes/entry | get (hit) ns | get (miss) ns | next_key ns | merge 4096 changes ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for &n in sizes {
        let t = Table::spread(n);
        let run = t.run();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let hits: Vec<u64> = (0..probes_n)
            .map(|_| t.keys[(rng.next() % n) as usize])
            .collect();
        // One past an entry: a miss, since entries are `step` >= 8 units apart.
        let misses: Vec<u64> = (0..probes_n)
            .map(|_| t.keys[(rng.next() % n) as usize] + 1)
            .collect();
        let hit = ns_per_op(&hits, |u| run.get(u).unwrap_or(0));
        let miss = ns_per_op(&misses, |u| run.get(u).unwrap_or(0));
        // A 256 KiB bio: is there an entry within the next 64 units?
        let next = ns_per_op(&misses, |u| run.next_key(u, u + 63).unwrap_or(0));
        let changes: Vec<(u64, u64)> = {
            let mut c: Vec<u64> = (0..4096).map(|_| rng.next() % DEVICE_UNITS).collect();
            c.sort_unstable();
            c.dedup();
            c.into_iter().map(|k| (k, 7)).collect()
        };
        let (mut keys, mut vals) = (
            vec![0; t.keys.len() + changes.len()],
            vec![0; t.keys.len() + changes.len()],
        );
        let start = Instant::now();
        let merged = merge(run, changes.iter().copied(), u64::MAX, &mut keys, &mut vals).unwrap();
        let mut fence = vec![0; fence_len(merged)];
        build_fence(&keys[..merged], &mut fence).unwrap();
        let merge_ms = start.elapsed().as_secs_f64() * 1e3;
        black_box((&keys, &vals, &fence));
        println!(
            "| {n} | {:.1} | {hit:.0} | {miss:.0} | {next:.0} | {merge_ms:.1} |",
            t.bytes() as f64 / n as f64
        );
    }
    if !full {
        println!("(smoke configuration: pass --bench for the real one)");
    }
}
