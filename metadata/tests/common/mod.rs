//! Test fixtures: an in-memory disk with a volatile write cache, a table sink and setup parameters.
#![allow(dead_code)]

use std::collections::BTreeMap;

use dm_remap_v4_metadata::layout::{BLOCK_SIZE, SECTOR_SIZE};
use dm_remap_v4_metadata::scrub::scrub_sector;
use dm_remap_v4_metadata::{
    block::Block, BlockIo, EntryState, Error, Expect, FormatParams, IoError, Layout, MainIdentity,
    Record, RecordSink, Store,
};

/// Loads whatever setup and member the disk holds.
pub const ANY: Expect = Expect {
    uuid: None,
    main: None,
    member_index: None,
};

/// Deterministic xorshift64* generator, so failures reproduce from a printed seed.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What happens to one unflushed write at a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Lost,
    Kept,
    /// Each sector independently kept or lost.
    Torn,
    /// Each sector new up to byte 100, old after: beyond the sector-atomic model, for steps that must
    /// survive even a garbled sector.
    Garbled,
}

/// A disk with a volatile write cache.
///
/// `write` goes to the cache; `flush` makes everything cached durable; `write_fua` is durable at once.
/// Reads see the cache. After `budget` write/flush operations the power fails: that operation and all
/// later ones return an error (a write interrupted that way joins the cache), and `crash` decides the
/// fate of every cached write.
#[derive(Clone, Debug)]
pub struct CrashDisk {
    pub durable: Vec<u8>,
    /// Cached sectors: (write number, sector, data), oldest first.
    cache: Vec<(usize, u64, Vec<u8>)>,
    pub writes: usize,
    /// Write and flush operations performed successfully.
    pub ops: usize,
    pub budget: Option<usize>,
    pub reads: usize,
    pub fail_reads: Vec<u64>,
}

impl CrashDisk {
    pub fn new(sectors: u64) -> Self {
        Self {
            durable: vec![0; usize::try_from(sectors).unwrap() * SECTOR_SIZE],
            cache: Vec::new(),
            writes: 0,
            ops: 0,
            budget: None,
            reads: 0,
            fail_reads: Vec::new(),
        }
    }

    fn gate(&mut self) -> Result<(), IoError> {
        if self.budget.is_some_and(|b| self.ops >= b) {
            return Err(IoError);
        }
        self.ops += 1;
        Ok(())
    }

    fn range(sector: u64) -> std::ops::Range<usize> {
        let start = usize::try_from(sector).unwrap() * SECTOR_SIZE;
        start..start + SECTOR_SIZE
    }

    /// Power failure: every cached write is lost, kept or torn according to `fate`, applied in order.
    pub fn crash_with(&mut self, mut fate: impl FnMut(usize) -> Fate, rng: &mut Rng) {
        let mut fates = BTreeMap::new();
        for (write, sector, data) in std::mem::take(&mut self.cache) {
            let f = *fates.entry(write).or_insert_with(|| fate(write));
            let keep = match f {
                Fate::Lost => 0,
                Fate::Kept => SECTOR_SIZE,
                Fate::Torn => rng.below(2) as usize * SECTOR_SIZE,
                Fate::Garbled => 100,
            };
            self.durable[Self::range(sector)][..keep].copy_from_slice(&data[..keep]);
        }
        self.budget = None;
    }

    /// Power failure with each cached write's fate drawn from `rng`.
    pub fn crash(&mut self, rng: &mut Rng) {
        let mut r = rng.clone();
        self.crash_with(
            |_| match r.below(7) {
                0 | 1 => Fate::Lost,
                2 | 3 => Fate::Kept,
                4 | 5 => Fate::Torn,
                _ => Fate::Garbled,
            },
            rng,
        );
    }

    pub fn pending(&self) -> usize {
        self.cache.len()
    }
}

impl BlockIo for CrashDisk {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if self.budget.is_some_and(|b| self.ops >= b) || self.fail_reads.contains(&sector) {
            return Err(IoError);
        }
        assert_eq!(buf.len(), BLOCK_SIZE, "protocol reads whole blocks");
        assert_eq!(sector % 8, 0, "protocol reads aligned blocks");
        self.reads += 1;
        for (i, chunk) in buf.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            let s = sector + i as u64;
            chunk.copy_from_slice(&self.durable[Self::range(s)]);
            for (_, cs, data) in &self.cache {
                if *cs == s {
                    chunk.copy_from_slice(data);
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        assert_eq!(buf.len(), BLOCK_SIZE, "protocol writes whole blocks");
        assert_eq!(sector % 8, 0, "protocol writes aligned blocks");
        // A write the power failure interrupts may still reach the media, whole or in part.
        let gate = self.gate();
        self.writes += 1;
        for (i, chunk) in buf.chunks_exact(SECTOR_SIZE).enumerate() {
            self.cache
                .push((self.writes, sector + i as u64, chunk.to_vec()));
        }
        gate
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.gate()?;
        for (_, sector, data) in std::mem::take(&mut self.cache) {
            self.durable[Self::range(sector)].copy_from_slice(&data);
        }
        Ok(())
    }

    fn write_fua(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if self.gate().is_err() {
            // Interrupted: as undetermined as any cached write.
            return self.write(sector, buf);
        }
        assert_eq!(buf.len(), BLOCK_SIZE);
        self.writes += 1;
        for (i, chunk) in buf.chunks_exact(SECTOR_SIZE).enumerate() {
            let s = sector + i as u64;
            self.durable[Self::range(s)].copy_from_slice(chunk);
            // A later durable write supersedes cached data for the same sector.
            self.cache.retain(|(_, cs, _)| *cs != s);
        }
        Ok(())
    }
}

/// The caller's table: upsert by main unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapSink {
    pub map: BTreeMap<u64, Record>,
    pub applied: u64,
}

impl RecordSink for MapSink {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        upsert(&mut self.map, rec);
        self.applied += 1;
        Ok(())
    }
}

pub fn main_identity() -> MainIdentity {
    let mut id = [0u8; 64];
    id[..20].copy_from_slice(b"naa.5000c500a1b2c3d4");
    MainIdentity {
        sectors: 1 << 24,
        logical_block_size: 512,
        id,
    }
}

pub const UUID: [u8; 16] = *b"0123456789abcdef";
pub const UNIT_SECTORS: u64 = 8;

/// Parameters of a member whose spare is just big enough for `layout` plus 1024 units.
pub fn params(layout: Layout) -> FormatParams {
    FormatParams {
        uuid: UUID,
        member_index: 0,
        member_count: 2,
        main: main_identity(),
        spare_sectors: layout.region_sectors + 1024 * UNIT_SECTORS,
        unit_sectors: UNIT_SECTORS,
        layout,
    }
}

/// A disk holding only the metadata region of `layout`.
pub fn disk_for(layout: &Layout) -> CrashDisk {
    CrashDisk::new(layout.region_sectors)
}

pub fn block() -> Vec<u8> {
    vec![0u8; BLOCK_SIZE]
}

pub fn record(main_unit: u64, spare_unit: u64, t: u64) -> Record {
    Record {
        main_unit,
        spare_index: u32::try_from(spare_unit % 2).unwrap(),
        spare_unit,
        state: if t % 5 == 0 {
            EntryState::PendingReadFailure
        } else {
            EntryState::Active
        },
        timestamp: t,
    }
}

/// `n` records with main units drawn from a small range, so later records replace earlier ones.
pub fn random_records(rng: &mut Rng, n: usize, t: &mut u64) -> Vec<Record> {
    (0..n)
        .map(|_| {
            *t += 1;
            record(rng.below(250), rng.below(1024), *t)
        })
        .collect()
}

pub fn apply_all(map: &mut BTreeMap<u64, Record>, recs: &[Record]) {
    for r in recs {
        upsert(map, r);
    }
}

/// What a loader does with one record.
pub fn upsert(map: &mut BTreeMap<u64, Record>, r: &Record) {
    if r.state == EntryState::Cleared {
        map.remove(&r.main_unit);
    } else {
        map.insert(r.main_unit, *r);
    }
}

/// A store freshly formatted on a disk of a small layout (300 blocks, 16 journal blocks).
pub fn fresh() -> (CrashDisk, Store) {
    let layout = Layout::new(300, 16).unwrap();
    let mut disk = disk_for(&layout);
    let store = Store::format(&mut disk, &mut block(), &params(layout), 7).unwrap();
    (disk, store)
}

/// The durable bytes of scrub-state copy `copy`.
pub fn scrub_block_at(disk: &CrashDisk, copy: usize) -> Block {
    let at = usize::try_from(scrub_sector(copy).unwrap()).unwrap() * SECTOR_SIZE;
    disk.durable[at..at + BLOCK_SIZE].try_into().unwrap()
}
