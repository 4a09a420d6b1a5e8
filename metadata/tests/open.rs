//! Opening a region at table load: format when blank, load, repair, and refuse without writing.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::{
    commit_or_checkpoint, open_region, BlockIo, EntryState, Error, IoError, OpenParams, OpenReport,
    Record, RecordSink, OPEN_FORMAT_IF_BLANK,
};

const SPARE_SECTORS: u64 = 32 * 2048;

struct MemDisk(Vec<u8>);

impl BlockIo for MemDisk {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = sector as usize * 512;
        buf.copy_from_slice(self.0.get(at..at + buf.len()).ok_or(IoError)?);
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let at = sector as usize * 512;
        self.0
            .get_mut(at..at + buf.len())
            .ok_or(IoError)?
            .copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

fn params(main_sectors: u64) -> OpenParams {
    OpenParams {
        main_sectors,
        spare_sectors: SPARE_SECTORS,
        unit_sectors: 1,
        main_logical_block_size: 512,
        member_index: 0,
        member_count: 1,
        flags: OPEN_FORMAT_IF_BLANK,
        new_uuid: [9; 16],
        main_id: [0; 64],
    }
}

/// Keeps what a load replays.
#[derive(Default)]
struct Keep(Vec<Record>);

impl RecordSink for Keep {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        self.0.push(*rec);
        Ok(())
    }
}

fn open(disk: &mut MemDisk, p: &OpenParams) -> Result<OpenReport, Error> {
    let mut buf = vec![0u8; BLOCK_SIZE];
    open_region(disk, &mut buf, p, 7, &mut Keep::default()).map(|(_, r)| r)
}

#[test]
fn committed_records_reach_the_sink_and_geometry_is_reported() {
    let mut disk = formatted();
    let mut buf = vec![0u8; BLOCK_SIZE];
    let (mut store, report) = open_region(
        &mut disk,
        &mut buf,
        &params(1 << 20),
        7,
        &mut Keep::default(),
    )
    .unwrap();
    assert!(report.pool_start > 0 && report.pool_units > 0);
    assert_eq!(report.pool_start + report.pool_units, SPARE_SECTORS);
    let rec = Record {
        main_unit: 10,
        spare_index: 0,
        spare_unit: 3,
        state: EntryState::Active,
        timestamp: 1,
    };
    store.commit(&mut disk, &mut buf, &[rec]).unwrap();
    let mut keep = Keep::default();
    let (_, report) = open_region(&mut disk, &mut buf, &params(1 << 20), 8, &mut keep).unwrap();
    assert_eq!(keep.0, vec![rec]);
    assert_eq!(report.records, 1);
}

#[test]
fn a_failing_sink_fails_the_open() {
    struct Full;
    impl RecordSink for Full {
        fn apply(&mut self, _: &Record) -> Result<(), Error> {
            Err(Error::OutOfMemory)
        }
    }
    let mut disk = formatted();
    let mut buf = vec![0u8; BLOCK_SIZE];
    let (mut store, _) = open_region(
        &mut disk,
        &mut buf,
        &params(1 << 20),
        7,
        &mut Keep::default(),
    )
    .unwrap();
    let rec = Record {
        main_unit: 1,
        spare_index: 0,
        spare_unit: 1,
        state: EntryState::Active,
        timestamp: 1,
    };
    store.commit(&mut disk, &mut buf, &[rec]).unwrap();
    let r = open_region(&mut disk, &mut buf, &params(1 << 20), 8, &mut Full);
    assert_eq!(r.err(), Some(Error::OutOfMemory));
}

fn formatted() -> MemDisk {
    let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    let r = open(&mut disk, &params(1 << 20)).unwrap();
    assert_eq!(
        (r.formatted, r.bad_copies, r.repaired, r.uuid),
        (1, 0, 0, [9; 16])
    );
    disk
}

#[test]
fn blank_is_formatted_then_loaded_without_writing() {
    let mut disk = formatted();
    let before = disk.0.clone();
    let r = open(&mut disk, &params(1 << 20)).unwrap();
    assert_eq!((r.formatted, r.bad_copies, r.repaired), (0, 0, 0));
    assert_eq!(r.uuid, [9; 16]);
    assert!(disk.0 == before, "a clean load wrote to the disk");
}

#[test]
fn blank_without_the_flag_is_refused_untouched() {
    let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    let p = OpenParams {
        flags: 0,
        ..params(1 << 20)
    };
    assert_eq!(open(&mut disk, &p), Err(Error::Blank));
    assert!(disk.0.iter().all(|&b| b == 0));
}

#[test]
fn one_damaged_copy_is_reported_and_repaired() {
    for copy_block in [0usize, 8] {
        let mut disk = formatted();
        disk.0[copy_block * BLOCK_SIZE + 100] ^= 0x40;
        let r = open(&mut disk, &params(1 << 20)).unwrap();
        assert_eq!(
            (r.bad_copies, r.repaired),
            (1, 1),
            "copy at block {copy_block}"
        );
        let r = open(&mut disk, &params(1 << 20)).unwrap();
        assert_eq!(
            (r.bad_copies, r.repaired),
            (0, 0),
            "still damaged after repair"
        );
    }
}

#[test]
fn refusals_leave_the_disk_untouched() {
    let mut all_bad = formatted();
    all_bad.0[100] ^= 1;
    all_bad.0[8 * BLOCK_SIZE + 100] ^= 1;
    let mut foreign = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    foreign.0[..4096].fill(0x5a);
    let cases: [(MemDisk, u64, Error); 3] = [
        (all_bad, 1 << 20, Error::SuperblockCorrupt),
        (foreign, 1 << 20, Error::Foreign),
        (formatted(), 1 << 21, Error::MainMismatch),
    ];
    for (mut disk, main_sectors, want) in cases {
        let before = disk.0.clone();
        assert_eq!(open(&mut disk, &params(main_sectors)), Err(want));
        assert!(disk.0 == before, "{want:?}: the disk was written");
    }
}

#[test]
fn a_full_journal_is_folded_into_a_checkpoint() {
    use std::collections::BTreeMap;
    let mut disk = formatted();
    let mut buf = vec![0u8; BLOCK_SIZE];
    let (mut store, _) = open_region(
        &mut disk,
        &mut buf,
        &params(1 << 20),
        7,
        &mut Keep::default(),
    )
    .unwrap();
    let mut table: BTreeMap<u64, Record> = BTreeMap::new();
    let journal_records = store.journal_free_blocks() * 126;
    // Enough single-record commits to fill the journal and force at least one checkpoint.
    for i in 0..journal_records + 10 {
        let rec = Record {
            main_unit: i % 300,
            spare_index: 0,
            spare_unit: i % 300,
            state: EntryState::Active,
            timestamp: i,
        };
        let before = store.superblock().meta_version;
        let snapshot = {
            let mut t = table.clone();
            t.insert(rec.main_unit, rec);
            t
        };
        commit_or_checkpoint(&mut store, &mut disk, &mut buf, &[rec], || {
            snapshot.values().copied().collect::<Vec<_>>()
        })
        .unwrap();
        table.insert(rec.main_unit, rec);
        if store.superblock().meta_version != before {
            assert_eq!(store.superblock().checkpoint_entries, table.len() as u64);
        }
    }
    assert!(
        store.superblock().meta_version > 1,
        "no checkpoint was written"
    );
    let mut keep = Keep::default();
    open_region(&mut disk, &mut buf, &params(1 << 20), 9, &mut keep).unwrap();
    let mut loaded: BTreeMap<u64, Record> = BTreeMap::new();
    for r in keep.0 {
        loaded.insert(r.main_unit, r);
    }
    assert_eq!(loaded, table);
}
