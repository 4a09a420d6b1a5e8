//! Opening a region at table load: format when blank, load, repair, and refuse without writing.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::{
    open_region, BlockIo, Error, IoError, OpenParams, OpenReport, OPEN_FORMAT_IF_BLANK,
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

fn open(disk: &mut MemDisk, p: &OpenParams) -> Result<OpenReport, Error> {
    let mut buf = vec![0u8; BLOCK_SIZE];
    open_region(disk, &mut buf, p, 7).map(|(_, r)| r)
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
