//! Host benchmark of the metadata format: load of a region holding 1,000,000 entries, and sustained commit
//! throughput with group commit into such a table (journal-full checkpoints included).
//!
//! Run it with `scripts/bench-host` (or `cargo bench -p dm-remap-v4-metadata --bench metadata`). The disk is a
//! `Vec<u8>`, so the times are the CPU cost of the format code; the I/O a real disk would see (blocks read and
//! written, flushes and FUA writes) is counted and reported next to them, since that is what dominates there.
//! Results are recorded in `docs/performance.md`.
//!
//! Without `--bench` on the command line (i.e. when built and run by `cargo test --benches`) it runs a small,
//! quick configuration instead, as a smoke test.

// A benchmark, not kernel code: the workspace's no-panic and integer-only lints are for the shared logic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::float_arithmetic
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use dm_remap_v4_metadata::crc32c::crc32c;
use dm_remap_v4_metadata::layout::{BLOCK_SIZE, SECTOR_SIZE};
use dm_remap_v4_metadata::{
    BlockIo, EntryState, Error, Expect, FormatParams, IoError, Layout, MainIdentity, Record,
    RecordSink, Store,
};

/// Unit size of the benchmark setup: 4 KiB.
const UNIT_SECTORS: u64 = 8;
/// Spares in the benchmark setup.
const MEMBERS: u32 = 2;

/// An in-memory disk that counts what a real one would be asked to do.
struct MemDisk {
    data: Vec<u8>,
    stats: Stats,
}

/// I/O requests issued to a [`MemDisk`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stats {
    /// Blocks read.
    reads: u64,
    /// Plain (cached) block writes.
    writes: u64,
    /// FUA block writes.
    fua: u64,
    /// Flushes (REQ_PREFLUSH).
    flushes: u64,
}

impl Stats {
    fn since(self, before: Self) -> Self {
        Self {
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
            fua: self.fua - before.fua,
            flushes: self.flushes - before.flushes,
        }
    }

    /// Blocks written, FUA or not.
    fn blocks_written(self) -> u64 {
        self.writes + self.fua
    }

    /// Requests a real disk must make durable before completing: flushes and FUA writes.
    fn durability_points(self) -> u64 {
        self.flushes + self.fua
    }
}

impl MemDisk {
    fn new(sectors: u64) -> Self {
        Self {
            data: vec![0u8; usize::try_from(sectors).unwrap() * SECTOR_SIZE],
            stats: Stats::default(),
        }
    }

    fn range(&self, sector: u64, len: usize) -> Result<std::ops::Range<usize>, IoError> {
        let start = usize::try_from(sector).map_err(|_| IoError)? * SECTOR_SIZE;
        let end = start + len;
        if end > self.data.len() {
            return Err(IoError);
        }
        Ok(start..end)
    }
}

impl BlockIo for MemDisk {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let r = self.range(sector, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        self.stats.reads += 1;
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let r = self.range(sector, buf.len())?;
        self.data[r].copy_from_slice(buf);
        self.stats.writes += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.stats.flushes += 1;
        Ok(())
    }

    fn write_fua(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let r = self.range(sector, buf.len())?;
        self.data[r].copy_from_slice(buf);
        self.stats.fua += 1;
        Ok(())
    }
}

/// Sink that only counts: the cost of the format code alone.
#[derive(Default)]
struct CountSink {
    applied: u64,
    sum: u64,
}

impl RecordSink for CountSink {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        self.applied += 1;
        self.sum = self.sum.wrapping_add(rec.spare_unit);
        Ok(())
    }
}

/// The caller's table: upsert by main unit.
#[derive(Default)]
struct MapSink {
    map: BTreeMap<u64, Record>,
}

impl RecordSink for MapSink {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        self.map.insert(rec.main_unit, *rec);
        Ok(())
    }
}

/// Deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A stream of remaps that update existing entries of a table of `entries` (random main units), so the
/// table keeps its size and every checkpoint writes all of it.
struct Stream {
    rng: Rng,
    entries: u64,
    pool_units: u64,
    time: u64,
}

impl Stream {
    fn record(&mut self) -> Record {
        self.time += 1;
        let spare_unit = self.rng.below(self.pool_units);
        Record {
            main_unit: self.rng.below(self.entries),
            spare_index: u32::try_from(spare_unit % u64::from(MEMBERS)).unwrap(),
            spare_unit,
            state: EntryState::Active,
            timestamp: 1_700_000_000 + self.time,
        }
    }

    fn fill(&mut self, batch: &mut Vec<Record>, n: usize) {
        batch.clear();
        batch.extend((0..n).map(|_| self.record()));
    }
}

/// Entry `i` of the initial table.
fn entry(i: u64) -> Record {
    Record {
        main_unit: i,
        spare_index: u32::try_from(i % u64::from(MEMBERS)).unwrap(),
        spare_unit: i,
        state: EntryState::Active,
        timestamp: 1_700_000_000,
    }
}

fn params(layout: Layout, entries: u64) -> FormatParams {
    let mut id = [0u8; 64];
    id[..20].copy_from_slice(b"naa.5000c500a1b2c3d4");
    FormatParams {
        uuid: *b"0123456789abcdef",
        member_index: 0,
        member_count: MEMBERS,
        main: MainIdentity {
            // Twice as many units as entries.
            sectors: entries * 2 * UNIT_SECTORS,
            logical_block_size: 512,
            id,
        },
        // A pool of one unit per entry after the region (a 4 GiB spare for 1,000,000 entries).
        spare_sectors: layout.region_sectors + entries * UNIT_SECTORS,
        unit_sectors: UNIT_SECTORS,
        layout,
    }
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident set size of this process in bytes, from /proc (0 if unavailable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Throughput of the crate's CRC-32C over 4 KiB blocks, in MB/s (median of 5 passes of `passes` blocks).
fn crc_rate(passes: usize) -> f64 {
    let block: Vec<u8> = (0..BLOCK_SIZE).map(|i| (i * 7) as u8).collect();
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..passes {
                black_box(crc32c(black_box(&block)));
            }
            t.elapsed().as_secs_f64()
        })
        .collect();
    (passes * BLOCK_SIZE) as f64 / median(times) / 1e6
}

/// Benchmark size.
struct Config {
    /// Entries in the table and capacity of the region.
    entries: u64,
    /// Measured runs per case (the median is reported).
    runs: usize,
    /// Journal commits before the load benchmark: (count, records per commit).
    journal_fill: &'static [(u64, usize)],
    /// Blocks per pass of the CRC-32C measurement.
    crc_blocks: usize,
}

const FULL: Config = Config {
    entries: 1_000_000,
    runs: 5,
    // 3937 of the 7875 journal blocks: about half full, with one-block and multi-block commits.
    journal_fill: &[(2000, 126), (100, 1024), (1037, 16)],
    crc_blocks: 16 * 1024,
};

const SMOKE: Config = Config {
    entries: 20_000,
    runs: 1,
    journal_fill: &[(20, 126), (2, 1024), (20, 16)],
    crc_blocks: 64,
};

const BATCHES: [usize; 4] = [1, 16, 126, 1024];

/// One measured window of the commit stream: whole journal cycles, each ending in a checkpoint.
#[derive(Clone, Copy)]
struct Window {
    records: u64,
    commits: u64,
    checkpoints: u64,
    commit_time: Duration,
    apply_time: Duration,
    checkpoint_time: Duration,
    io: Stats,
}

impl Window {
    fn total(&self) -> Duration {
        self.commit_time + self.apply_time + self.checkpoint_time
    }

    fn sustained(&self) -> f64 {
        self.records as f64 / self.total().as_secs_f64()
    }

    fn per_1000(&self, n: u64) -> f64 {
        n as f64 * 1000.0 / self.records as f64
    }

    /// Records/s a disk with `latency` per durability point (flush or FUA write) allows, counting the
    /// checkpoints' flush and superblock FUA writes too (CPU and transfer time ignored).
    fn flush_bound(&self, latency: Duration) -> f64 {
        self.records as f64 / (self.io.durability_points() as f64 * latency.as_secs_f64())
    }
}

/// Streams batches of `batch` records until `cycles` checkpoints have been made; returns what it took.
#[allow(clippy::too_many_arguments)]
fn stream(
    disk: &mut MemDisk,
    buf: &mut [u8],
    store: &mut Store,
    table: &mut BTreeMap<u64, Record>,
    src: &mut Stream,
    batch: usize,
    cycles: u64,
) -> Window {
    let mut recs = Vec::with_capacity(batch);
    let mut w = Window {
        records: 0,
        commits: 0,
        checkpoints: 0,
        commit_time: Duration::ZERO,
        apply_time: Duration::ZERO,
        checkpoint_time: Duration::ZERO,
        io: Stats::default(),
    };
    let before = disk.stats;
    while w.checkpoints < cycles {
        src.fill(&mut recs, batch);
        let t = Instant::now();
        let done = store.commit(disk, buf, &recs);
        w.commit_time += t.elapsed();
        let t = Instant::now();
        for r in &recs {
            table.insert(r.main_unit, *r);
        }
        w.apply_time += t.elapsed();
        match done {
            Ok(_) => w.commits += 1,
            Err(Error::JournalFull) => {
                // The checkpoint of the table, which now includes this batch, commits it.
                let t = Instant::now();
                store
                    .checkpoint(disk, buf, table.values().copied())
                    .unwrap();
                w.checkpoint_time += t.elapsed();
                w.checkpoints += 1;
            }
            Err(e) => panic!("commit failed: {e:?}"),
        }
        w.records += recs.len() as u64;
    }
    w.io = disk.stats.since(before);
    w
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let cfg = if full { &FULL } else { &SMOKE };
    let n = cfg.entries;
    let layout = Layout::for_capacity(n).unwrap();
    let p = params(layout, n);
    println!(
        "dm-remap-v4 metadata host benchmark: {} entries, capacity {}, checkpoint area {} blocks, \
         journal {} blocks, region {} MiB; in-memory disk; median of {} runs{}",
        n,
        layout.capacity,
        layout.checkpoint_blocks,
        layout.journal_blocks,
        (layout.region_sectors * SECTOR_SIZE as u64) >> 20,
        cfg.runs,
        if full {
            ""
        } else {
            " (smoke configuration: pass --bench for the real one)"
        }
    );

    // The region: a checkpoint of the whole table, then a partly filled journal of updates.
    let mut disk = MemDisk::new(layout.region_sectors);
    let mut buf = vec![0u8; BLOCK_SIZE];
    let mut store = Store::format(&mut disk, &mut buf, &p, 1).unwrap();
    store
        .checkpoint(&mut disk, &mut buf, (0..n).map(entry))
        .unwrap();
    let mut src = Stream {
        rng: Rng(0x9E37_79B9_7F4A_7C15),
        entries: n,
        pool_units: n,
        time: 0,
    };
    let mut recs = Vec::new();
    for &(commits, size) in cfg.journal_fill {
        for _ in 0..commits {
            src.fill(&mut recs, size);
            store.commit(&mut disk, &mut buf, &recs).unwrap();
        }
    }
    drop(recs);

    // (a) Load.
    let any = Expect {
        uuid: None,
        main: None,
        member_index: None,
    };
    let mut load_io = Stats::default();
    let mut report = None;
    let mut format_only = Vec::new();
    for _ in 0..cfg.runs {
        let mut sink = CountSink::default();
        let before = disk.stats;
        let t = Instant::now();
        let (_, r) = Store::load(&mut disk, &mut buf, &any, 2, &mut sink).unwrap();
        format_only.push(t.elapsed());
        black_box(sink.sum);
        load_io = disk.stats.since(before);
        report = Some(r);
    }
    let report = report.unwrap();
    let mut with_map = Vec::new();
    let mut map_bytes = 0u64;
    let mut table = BTreeMap::new();
    for run in 0..cfg.runs {
        let mut sink = MapSink::default();
        let rss = rss_bytes();
        let t = Instant::now();
        let (s, _) = Store::load(&mut disk, &mut buf, &any, 2, &mut sink).unwrap();
        with_map.push(t.elapsed());
        if run == 0 {
            // First allocation of a table this size: the heap grows by what it takes.
            map_bytes = rss_bytes().saturating_sub(rss);
        }
        assert_eq!(sink.map.len() as u64, n);
        store = s;
        table = sink.map;
    }
    let records = report.checkpoint_entries + report.journal_records;
    println!();
    println!("## Load");
    println!();
    println!(
        "region: {} checkpoint entries + {} journal records in {} commits ({} of {} journal blocks)",
        report.checkpoint_entries,
        report.journal_records,
        report.journal_commits,
        report.journal_blocks_used,
        layout.journal_blocks
    );
    println!();
    println!("| sink | median load time | min | max | records/s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, times) in [
        ("count only (format code)", &format_only),
        ("BTreeMap<u64, Record> (host table)", &with_map),
    ] {
        let med = median(times.clone());
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} M |",
            name,
            ms(med),
            ms(*times.iter().min().unwrap()),
            ms(*times.iter().max().unwrap()),
            records as f64 / med.as_secs_f64() / 1e6
        );
    }
    println!();
    println!(
        "I/O per load: {} block reads ({} MiB), 0 writes, 0 flushes",
        load_io.reads,
        (load_io.reads * BLOCK_SIZE as u64) >> 20
    );
    // The kernel's BdevIo reads 16 blocks (64 KiB) per request, and a load reads the region in order.
    let requests = load_io.reads.div_ceil(16);
    for latency_us in [100u64, 300] {
        println!(
            "  at {} us per synchronous 64 KiB request (the kernel reads 16 blocks at once: about {} requests): {:.0} ms",
            latency_us,
            requests,
            (requests * latency_us) as f64 / 1e3
        );
    }
    println!(
        "CRC-32C (crate's slicing-by-8 tables): {:.0} MB/s; a load checksums about {} MiB",
        crc_rate(cfg.crc_blocks),
        (load_io.reads * 2 * BLOCK_SIZE as u64) >> 20
    );
    println!(
        "memory: the crate allocates nothing (no_std, no alloc): Store = {} bytes + one {}-byte buffer; \
         the host table BTreeMap<u64, Record> grew RSS by {:.0} bytes/entry (Record = {} bytes in memory, \
         32 on disk)",
        std::mem::size_of::<Store>(),
        BLOCK_SIZE,
        map_bytes as f64 / n as f64,
        std::mem::size_of::<Record>()
    );

    // (b), (c) Commit throughput, continuing from the loaded state. Warm up to the first checkpoint so that
    // every measured window is whole journal cycles (fill the journal, then checkpoint).
    stream(
        &mut disk, &mut buf, &mut store, &mut table, &mut src, 126, 1,
    );
    println!();
    println!("## Commit (group commit, table of {n} entries, updates of random entries)");
    println!();
    println!(
        "Each run streams batches until the journal is full and checkpoints the table (one journal cycle); \
         sustained = records / (commit + table update + checkpoint time)."
    );
    println!();
    println!(
        "| batch | records/cycle | commit only rec/s | sustained rec/s | checkpoint ms | \
         flushes/1k rec | FUA/1k rec | blocks written/1k rec | bytes/record | bound @1 ms flush | \
         bound @10 ms flush |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for batch in BATCHES {
        let windows: Vec<Window> = (0..cfg.runs)
            .map(|_| {
                stream(
                    &mut disk, &mut buf, &mut store, &mut table, &mut src, batch, 1,
                )
            })
            .collect();
        let mut by_rate: Vec<&Window> = windows.iter().collect();
        by_rate.sort_by(|a, b| a.sustained().partial_cmp(&b.sustained()).unwrap());
        let w = by_rate[by_rate.len() / 2];
        assert_eq!(table.len() as u64, n);
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} |",
            batch,
            w.records,
            w.records as f64 / w.commit_time.as_secs_f64(),
            w.sustained(),
            ms(w.checkpoint_time) / w.checkpoints as f64,
            w.per_1000(w.io.flushes),
            w.per_1000(w.io.fua),
            w.per_1000(w.io.blocks_written()),
            (w.io.blocks_written() * BLOCK_SIZE as u64) as f64 / w.records as f64,
            w.flush_bound(Duration::from_millis(1)),
            w.flush_bound(Duration::from_millis(10)),
        );
    }
    println!();
    println!(
        "bytes/record and blocks written include the checkpoint (its share is the table size / records per \
         cycle); the bounds assume each flush or FUA write costs the given latency and nothing else."
    );
}
