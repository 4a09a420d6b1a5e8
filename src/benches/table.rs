//! Host benchmark of the remap table's sorted run (`logic/sorted.rs`, the code `map()` runs): lookup of a hit
//! and of a miss, `next_key` (how far a bio may go on main), and the merge of 4096 changes, at 1,000 to
//! 1,000,000 entries spread over a 32 GiB device of 4 KiB units (and, at the largest size, in four dense
//! clusters, the directory's worst kind of table); plus the memory per entry of the run.
//!
//! Each lookup makes its `Run` first, as the kernel does for every bio (`Run::new_unchecked`: a few length
//! checks). Each size runs twice: with the arrays in ordinary memory (4 KiB pages, as the kernel's vmalloc'ed run is
//! mapped) and in 2 MiB pages (for comparison: how `kvmalloc` mapped a run of 2 MiB or more until
//! 2026-12-03). Lookups are timed two ways: independent probes back to back (throughput: the CPU overlaps
//! several lookups), and one at a time, each waiting for the one before to end (latency, as one bio's lookup
//! sees it).
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
use std::sync::atomic::{fence, Ordering};
use std::time::Instant;

use dm_remap_v4_target::sorted::{build_fence, build_filter, fence_len, filter_len, merge, Run};
use memmap2::{Advice, MmapMut};

/// Units of a 32 GiB main device with 4 KiB units.
const DEVICE_UNITS: u64 = 8 << 20;

/// A huge page.
const HUGE: usize = 2 << 20;

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

/// How an array's memory is mapped.
#[derive(Clone, Copy, PartialEq)]
enum Pages {
    /// A `Vec`: 4 KiB pages (transparent huge pages are `madvise` only on the benchmark's host).
    Small,
    /// 2 MiB-aligned memory advised `MADV_HUGEPAGE`.
    Huge,
}

impl Pages {
    fn name(self) -> &'static str {
        match self {
            Pages::Small => "4 KiB, as the kernel maps the run",
            Pages::Huge => "2 MiB, for comparison",
        }
    }
}

/// An array of `u64`s in memory mapped as [`Pages`] says.
enum Array {
    Small(Vec<u64>),
    Huge {
        map: MmapMut,
        off: usize,
        len: usize,
    },
}

impl Array {
    fn new(data: &[u64], pages: Pages) -> Self {
        match pages {
            Pages::Small => Array::Small(data.to_vec()),
            Pages::Huge => {
                let bytes = data.len() * 8;
                // One huge page more than needed, to start on a 2 MiB boundary; advised before the first
                // write, so the first touch of each 2 MiB faults in a huge page.
                let mut map = MmapMut::map_anon(bytes.div_ceil(HUGE) * HUGE + HUGE).unwrap();
                if let Err(e) = map.advise(Advice::HugePage) {
                    println!(
                        "(madvise(MADV_HUGEPAGE) failed: {e}; these arrays are in 4 KiB pages)"
                    );
                }
                let off = (HUGE - map.as_ptr() as usize % HUGE) % HUGE;
                bytemuck::cast_slice_mut::<u8, u64>(&mut map[off..off + bytes])
                    .copy_from_slice(data);
                Array::Huge {
                    map,
                    off,
                    len: data.len(),
                }
            }
        }
    }

    fn as_slice(&self) -> &[u64] {
        match self {
            Array::Small(v) => v,
            Array::Huge { map, off, len } => bytemuck::cast_slice(&map[*off..*off + len * 8]),
        }
    }
}

/// Bytes in huge pages (AnonHugePages in /proc/self/smaps) of the mappings that hold `arrays`.
fn huge_bytes(arrays: &[&[u64]]) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut huge = 0u64;
    let mut inside = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = arrays
                    .iter()
                    .any(|a| (lo..hi).contains(&(a.as_ptr() as usize)));
                continue;
            }
        }
        if inside && first == "AnonHugePages:" {
            huge += words.next()?.parse::<u64>().ok()? * 1024;
        }
    }
    Some(huge)
}

/// How the entries lie over the device.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Evenly spread, as `md-fixture spread` writes them for the VM benchmark.
    Spread,
    /// Four dense regions (every other unit) at the quarters of the device: the directory's worst kind of
    /// table, most keys in a few buckets, so lookups also search the lower level.
    Clustered,
}

impl Layout {
    fn keys(self, n: u64) -> Vec<u64> {
        match self {
            Layout::Spread => {
                let step = DEVICE_UNITS / n;
                (0..n).map(|i| i * step).collect()
            }
            Layout::Clustered => (0..n)
                .map(|i| (i % 4) * (DEVICE_UNITS / 4) + (i / 4) * 2)
                .collect::<std::collections::BTreeSet<u64>>()
                .into_iter()
                .collect(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layout::Spread => "spread",
            Layout::Clustered => "4 clusters",
        }
    }
}

struct Table {
    keys: Array,
    vals: Array,
    fence: Array,
    filter: Array,
}

impl Table {
    /// `n` entries laid out over the device as `layout` says.
    fn new(n: u64, layout: Layout, pages: Pages) -> Self {
        let keys = layout.keys(n);
        let vals: Vec<u64> = (0..n).collect();
        let mut fence = vec![0; fence_len(&keys)];
        build_fence(&keys, &mut fence).unwrap();
        let mut filter = vec![0; filter_len(keys.len())];
        build_filter(&keys, &mut filter).unwrap();
        Self {
            keys: Array::new(&keys, pages),
            vals: Array::new(&vals, pages),
            fence: Array::new(&fence, pages),
            filter: Array::new(&filter, pages),
        }
    }

    fn run(&self) -> Run<'_> {
        Run::new(
            self.keys.as_slice(),
            self.vals.as_slice(),
            self.fence.as_slice(),
            self.filter.as_slice(),
        )
        .unwrap()
    }

    /// The run as the kernel makes it for every lookup (`Run::new_unchecked` over the published arrays),
    /// kept from being hoisted out of the benchmark's loop.
    fn run_per_lookup(&self) -> Run<'_> {
        Run::new_unchecked(
            black_box(self.keys.as_slice()),
            self.vals.as_slice(),
            self.fence.as_slice(),
            self.filter.as_slice(),
        )
    }

    fn bytes(&self) -> usize {
        (self.keys.as_slice().len()
            + self.vals.as_slice().len()
            + self.fence.as_slice().len()
            + self.filter.as_slice().len())
            * 8
    }
}

/// Nanoseconds per call of `f` over `probes`, called back to back (throughput).
fn ns_per_op(probes: &[u64], mut f: impl FnMut(u64) -> u64) -> f64 {
    let start = Instant::now();
    let mut acc = 0u64;
    for &p in probes {
        acc = acc.wrapping_add(f(p));
    }
    black_box(acc);
    start.elapsed().as_nanos() as f64 / probes.len() as f64
}

/// Nanoseconds per call of `f` when each probe waits for the previous one to finish (latency, as one bio's
/// lookup sees it): a full fence after each call (`mfence` on x86) lets no later load start before every
/// earlier one has completed. (Chaining the next probe on the result alone is not enough: a predicted
/// branch, such as "miss", hands on a result before its loads arrive.)
fn ns_chained(probes: &[u64], mut f: impl FnMut(u64) -> u64) -> f64 {
    let start = Instant::now();
    let mut acc = 0u64;
    for &p in probes {
        acc = acc.wrapping_add(f(p));
        fence(Ordering::SeqCst);
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
    println!(
        "| entries | layout | pages | run bytes/entry | get (hit) ns | get (miss) ns | next_key ns | \
         hit, one at a time ns | miss, one at a time ns | next_key, one at a time ns | merge 4096 changes ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut huge_checks = Vec::new();
    for &n in sizes {
        let mut configs = vec![
            (Layout::Spread, Pages::Small),
            (Layout::Spread, Pages::Huge),
        ];
        if n == *sizes.last().unwrap() {
            configs.push((Layout::Clustered, Pages::Small));
        }
        for (layout, pages) in configs {
            let t = Table::new(n, layout, pages);
            let run = t.run();
            let keys = t.keys.as_slice();
            // The same probes for both kinds of pages.
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let hits: Vec<u64> = (0..probes_n)
                .map(|_| keys[(rng.next() % n) as usize])
                .collect();
            // One past an entry: a miss, since entries are at least 2 units apart.
            let misses: Vec<u64> = (0..probes_n)
                .map(|_| keys[(rng.next() % n) as usize] + 1)
                .collect();
            let hit = ns_per_op(&hits, |u| t.run_per_lookup().get(u).unwrap_or(0));
            let miss = ns_per_op(&misses, |u| t.run_per_lookup().get(u).unwrap_or(0));
            // A 256 KiB bio: is there an entry within the next 64 units?
            let next = ns_per_op(&misses, |u| {
                t.run_per_lookup().next_key(u, u + 63).unwrap_or(0)
            });
            let hit_c = ns_chained(&hits, |u| t.run_per_lookup().get(u).unwrap_or(0));
            let miss_c = ns_chained(&misses, |u| t.run_per_lookup().get(u).unwrap_or(0));
            let next_c = ns_chained(&misses, |u| {
                t.run_per_lookup().next_key(u, u + 63).unwrap_or(0)
            });
            let changes: Vec<(u64, u64)> = {
                let mut c: Vec<u64> = (0..4096).map(|_| rng.next() % DEVICE_UNITS).collect();
                c.sort_unstable();
                c.dedup();
                c.into_iter().map(|k| (k, 7)).collect()
            };
            let (mut mkeys, mut mvals) = (
                vec![0; keys.len() + changes.len()],
                vec![0; keys.len() + changes.len()],
            );
            let start = Instant::now();
            let merged = merge(
                run,
                changes.iter().copied(),
                u64::MAX,
                &mut mkeys,
                &mut mvals,
            )
            .unwrap();
            let mut fence = vec![0; fence_len(&mkeys[..merged])];
            build_fence(&mkeys[..merged], &mut fence).unwrap();
            let mut filter = vec![0; filter_len(merged)];
            build_filter(&mkeys[..merged], &mut filter).unwrap();
            let merge_ms = start.elapsed().as_secs_f64() * 1e3;
            black_box((&mkeys, &mvals, &fence, &filter));
            println!(
                "| {n} | {} | {} | {:.1} | {hit:.0} | {miss:.0} | {next:.0} | {hit_c:.0} | {miss_c:.0} | {next_c:.0} \
                 | {merge_ms:.1} |",
                layout.name(),
                pages.name(),
                t.bytes() as f64 / n as f64
            );
            if pages == Pages::Huge {
                let arrays = [keys, t.vals.as_slice(), t.fence.as_slice()];
                let need: usize = arrays
                    .iter()
                    .map(|a| (a.len() * 8).div_ceil(HUGE) * HUGE)
                    .sum();
                if let Some(huge) = huge_bytes(&arrays) {
                    huge_checks.push(format!(
                        "{n} entries: {} KiB in huge pages, of {} KiB needed",
                        huge / 1024,
                        need / 1024
                    ));
                }
            }
        }
    }
    println!();
    println!(
        "2 MiB pages (AnonHugePages in /proc/self/smaps): {}",
        huge_checks.join("; ")
    );
    if !full {
        println!("(smoke configuration: pass --bench for the real one)");
    }
}
