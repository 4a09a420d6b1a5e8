//! Opening a region at table load: format when blank, load, repair, and refuse without writing.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::{
    commit_or_checkpoint, open_region, plan_format, BlockIo, EntryState, Error, IoError,
    OpenParams, OpenReport, Record, RecordSink, OPEN_ANY_MEMBER, OPEN_EXPECT_UUID,
    OPEN_FORMAT_FOREIGN, OPEN_FORMAT_IF_BLANK,
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
        capacity: 0,
        main_logical_block_size: 512,
        member_index: 0,
        member_count: 1,
        flags: OPEN_FORMAT_IF_BLANK,
        new_uuid: [9; 16],
        expect_uuid: [0; 16],
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
fn format_foreign_formats_foreign_data_and_nothing_of_ours() {
    let with_flag = |main_sectors| OpenParams {
        flags: OPEN_FORMAT_IF_BLANK | OPEN_FORMAT_FOREIGN,
        ..params(main_sectors)
    };
    // Foreign data in the first superblock copy only, and in both.
    for blocks in [1usize, 9] {
        let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
        disk.0[..blocks * BLOCK_SIZE].fill(0x5a);
        let r = open(&mut disk, &with_flag(1 << 20)).unwrap();
        assert_eq!((r.formatted, r.uuid), (1, [9; 16]), "{blocks} blocks");
        let r = open(&mut disk, &params(1 << 20)).unwrap();
        assert_eq!((r.formatted, r.bad_copies), (0, 0), "{blocks} blocks");
    }
    // The flag alone formats nothing: it widens OPEN_FORMAT_IF_BLANK.
    let mut foreign = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    foreign.0[..4096].fill(0x5a);
    let before = foreign.0.clone();
    let p = OpenParams {
        flags: OPEN_FORMAT_FOREIGN,
        ..params(1 << 20)
    };
    assert_eq!(open(&mut foreign, &p), Err(Error::Foreign));
    assert!(foreign.0 == before);
    // Our metadata, damaged, of another main device or of another setup, is never overwritten.
    let mut all_bad = formatted();
    all_bad.0[100] ^= 1;
    all_bad.0[8 * BLOCK_SIZE + 100] ^= 1;
    let mut other_setup = formatted();
    let cases: [(&mut MemDisk, OpenParams, Error); 3] = [
        (&mut all_bad, with_flag(1 << 20), Error::SuperblockCorrupt),
        (&mut formatted(), with_flag(1 << 21), Error::MainMismatch),
        (
            &mut other_setup,
            OpenParams {
                flags: OPEN_FORMAT_IF_BLANK | OPEN_FORMAT_FOREIGN | OPEN_EXPECT_UUID,
                expect_uuid: [7; 16],
                ..params(1 << 20)
            },
            Error::OtherSetup,
        ),
    ];
    for (disk, p, want) in cases {
        let before = disk.0.clone();
        assert_eq!(open(disk, &p), Err(want));
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

/// `params` for a member of a setup of several spares that has main identifier `id`.
fn member(index: u32, count: u32, id: &[u8]) -> OpenParams {
    let mut p = params(1 << 20);
    p.member_index = index;
    p.member_count = count;
    p.main_id[..id.len()].copy_from_slice(id);
    p
}

#[test]
fn members_are_checked_for_uuid_index_and_main_identifier() {
    let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    let r = open(&mut disk, &member(1, 2, b"serial:A")).unwrap();
    assert_eq!((r.formatted, r.member_index, r.member_count), (1, 1, 2));
    let before = disk.0.clone();
    // Another index is refused unless any member is accepted.
    assert_eq!(
        open(&mut disk, &member(0, 2, b"serial:A")),
        Err(Error::MemberMismatch)
    );
    let mut any = member(0, 2, b"serial:A");
    any.flags |= OPEN_ANY_MEMBER;
    assert_eq!(open(&mut disk, &any).map(|r| r.member_index), Ok(1));
    // The UUID of the other members, when given, must match.
    let mut other = any;
    other.flags |= OPEN_EXPECT_UUID;
    other.expect_uuid = [8; 16];
    assert_eq!(open(&mut disk, &other), Err(Error::OtherSetup));
    other.expect_uuid = [9; 16];
    assert_eq!(open(&mut disk, &other).map(|r| r.uuid), Ok([9; 16]));
    // A known identifier must match a known one; an unknown one on either side is not a mismatch.
    assert_eq!(
        open(&mut disk, &member(1, 2, b"serial:B")),
        Err(Error::MainIdMismatch)
    );
    assert!(open(&mut disk, &member(1, 2, b"")).is_ok());
    assert!(
        disk.0 == before,
        "a refused or clean open wrote to the disk"
    );
    let mut unknown = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    open(&mut unknown, &member(0, 1, b"")).unwrap();
    assert!(open(&mut unknown, &member(0, 1, b"serial:B")).is_ok());
}

#[test]
fn the_capacity_of_a_new_region_follows_the_table() {
    let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    let mut p = params(1 << 20);
    p.capacity = 3000;
    assert_eq!(open(&mut disk, &p).map(|r| r.capacity), Ok(3000));
    let mut small = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    p.capacity = 1;
    assert_eq!(
        open(&mut small, &p).map(|r| r.capacity),
        Ok(1024),
        "clamped"
    );
    let mut huge = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    p.capacity = 1 << 26;
    assert_eq!(open(&mut huge, &p), Err(Error::SpareTooSmall));
}

#[test]
fn resync_adopts_the_setup_sequence_and_member_count() {
    let rec = |main_unit, spare_index| Record {
        main_unit,
        spare_index,
        spare_unit: main_unit,
        state: EntryState::Active,
        timestamp: 5,
    };
    let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    let mut buf = vec![0u8; BLOCK_SIZE];
    let p = member(0, 1, b"");
    let (mut store, _) = open_region(&mut disk, &mut buf, &p, 7, &mut Keep::default()).unwrap();
    store.commit(&mut disk, &mut buf, &[rec(1, 0)]).unwrap();
    // A record naming spare 1 needs a member count of 2.
    assert_eq!(
        store.resync(&mut disk, &mut buf, 41, 1, 0, [rec(1, 0), rec(2, 1)]),
        Err(Error::BadRecord)
    );
    assert_eq!(
        store.resync(&mut disk, &mut buf, 0, 2, 0, [rec(1, 0)]),
        Err(Error::BadGeometry),
        "a sequence number going back"
    );
    store
        .resync(&mut disk, &mut buf, 41, 2, 0, [rec(1, 0), rec(2, 1)])
        .unwrap();
    assert_eq!(store.commit(&mut disk, &mut buf, &[rec(3, 1)]), Ok(42));
    assert_eq!(
        store.resync(&mut disk, &mut buf, 42, 1, 0, [rec(1, 0)]),
        Err(Error::BadGeometry),
        "a member count dropping a member"
    );
    let mut keep = Keep::default();
    let (_, r) = open_region(&mut disk, &mut buf, &p, 8, &mut keep).unwrap();
    assert_eq!((r.last_seq, r.member_count), (42, 2));
    assert_eq!(keep.0, [rec(1, 0), rec(2, 1), rec(3, 1)]);
}

#[test]
fn a_store_notices_writes_by_another_store_of_the_same_region() {
    let rec = |main_unit| Record {
        main_unit,
        spare_index: 0,
        spare_unit: main_unit,
        state: EntryState::Active,
        timestamp: 5,
    };
    let mut disk = formatted();
    let mut buf = vec![0u8; BLOCK_SIZE];
    let p = params(1 << 20);
    let (mut old, _) = open_region(&mut disk, &mut buf, &p, 7, &mut Keep::default()).unwrap();
    // A second table loads the region while the first is live.
    let (new, _) = open_region(&mut disk, &mut buf, &p, 8, &mut Keep::default()).unwrap();
    assert_eq!(new.check_unchanged(&mut disk, &mut buf), Ok(()));
    // The first table's own commits do not make it stale, but they do make the second one stale.
    old.commit(&mut disk, &mut buf, &[rec(1)]).unwrap();
    assert_eq!(old.check_unchanged(&mut disk, &mut buf), Ok(()));
    assert_eq!(
        new.check_unchanged(&mut disk, &mut buf),
        Err(Error::ChangedSinceLoad)
    );
    // A checkpoint by the first table is noticed too.
    let (fresh, _) = open_region(&mut disk, &mut buf, &p, 9, &mut Keep::default()).unwrap();
    old.checkpoint(&mut disk, &mut buf, [rec(1)]).unwrap();
    assert_eq!(
        fresh.check_unchanged(&mut disk, &mut buf),
        Err(Error::ChangedSinceLoad)
    );
    assert_eq!(old.check_unchanged(&mut disk, &mut buf), Ok(()));
    // And a store loaded after everything is current.
    let (last, _) = open_region(&mut disk, &mut buf, &p, 10, &mut Keep::default()).unwrap();
    assert_eq!(last.check_unchanged(&mut disk, &mut buf), Ok(()));
}

#[test]
fn plan_format_predicts_format_without_writing() {
    let mut p = params(1 << 20);
    let planned = plan_format(&p).unwrap();
    let mut disk = MemDisk(vec![0; SPARE_SECTORS as usize * 512]);
    let (store, _) = open_region(
        &mut disk,
        &mut vec![0u8; BLOCK_SIZE],
        &p,
        7,
        &mut Keep::default(),
    )
    .unwrap();
    assert_eq!(store.superblock().pool_units, planned);
    // Too small: the error says how large the spare must be, and that size is enough.
    p.capacity = 1 << 22;
    let (e, needed) = plan_format(&p).unwrap_err();
    assert_eq!(e, Error::SpareTooSmall);
    assert!(needed > SPARE_SECTORS);
    p.spare_sectors = needed;
    assert_eq!(plan_format(&p), Ok(1));
    p.spare_sectors = needed - 1;
    assert!(plan_format(&p).is_err());
}

/// Reads through a cache that keeps every block read until `forget_reads`, like the kernel's read-ahead.
struct Cached<'a> {
    disk: &'a mut MemDisk,
    cache: &'a mut std::collections::HashMap<u64, Vec<u8>>,
}

impl BlockIo for Cached<'_> {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if let Some(b) = self.cache.get(&sector) {
            buf.copy_from_slice(b);
            return Ok(());
        }
        self.disk.read(sector, buf)?;
        self.cache.insert(sector, buf.to_vec());
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.cache.clear();
        self.disk.write(sector, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
    fn forget_reads(&mut self) {
        self.cache.clear();
    }
}

#[test]
fn the_check_reads_the_device_not_what_was_read_ahead() {
    let rec = Record {
        main_unit: 1,
        spare_index: 0,
        spare_unit: 1,
        state: EntryState::Active,
        timestamp: 5,
    };
    let mut disk = formatted();
    let mut cache = std::collections::HashMap::new();
    let mut buf = vec![0u8; BLOCK_SIZE];
    let p = params(1 << 20);
    let (mut old, _) = open_region(&mut disk, &mut buf, &p, 7, &mut Keep::default()).unwrap();
    let mut cached = Cached {
        disk: &mut disk,
        cache: &mut cache,
    };
    let (new, _) = open_region(&mut cached, &mut buf, &p, 8, &mut Keep::default()).unwrap();
    old.commit(&mut disk, &mut buf, &[rec]).unwrap();
    let mut cached = Cached {
        disk: &mut disk,
        cache: &mut cache,
    };
    assert_eq!(
        new.check_unchanged(&mut cached, &mut buf),
        Err(Error::ChangedSinceLoad)
    );
}
