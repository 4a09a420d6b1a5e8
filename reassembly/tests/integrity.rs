//! The integrity check of one superblock block, on blocks the metadata crate really wrote.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_metadata::layout::{BLOCK_SIZE, SUPERBLOCK_BLOCKS};
use dm_remap_v4_metadata::{BlockIo, FormatParams, IoError, Layout, MainIdentity, Store};
use dm_remap_v4_reassembly::integrity::{verify_superblock, IntegrityError};

/// A plain in-memory disk (no crash model needed here).
struct MemDisk(Vec<u8>);

impl BlockIo for MemDisk {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = sector as usize * 512;
        buf.copy_from_slice(&self.0[at..at + buf.len()]);
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let at = sector as usize * 512;
        self.0[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// The two superblock copies of a freshly formatted region.
fn formatted() -> [Vec<u8>; 2] {
    let layout = Layout::for_capacity(1024).unwrap();
    let spare_sectors = layout.region_sectors + 4096;
    let mut disk = MemDisk(vec![0; spare_sectors as usize * 512]);
    let params = FormatParams {
        uuid: [7; 16],
        member_index: 0,
        member_count: 1,
        main: MainIdentity {
            sectors: 1 << 20,
            logical_block_size: 512,
            id: [0; 64],
        },
        spare_sectors,
        unit_sectors: 1,
        layout,
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    Store::format(&mut disk, &mut buf, &params, 42).unwrap();
    SUPERBLOCK_BLOCKS.map(|b| {
        let at = b as usize * BLOCK_SIZE;
        disk.0[at..at + BLOCK_SIZE].to_vec()
    })
}

#[test]
fn intact_copies_verify() {
    let [a, b] = formatted();
    let sa = verify_superblock(&a, 0).unwrap();
    let sb = verify_superblock(&b, 1).unwrap();
    assert_eq!(sa.uuid, [7; 16]);
    assert!(sa.same_state(&sb));
}

#[test]
fn each_fault_has_its_error_and_errno() {
    let [a, _] = formatted();
    let mut flipped = a.clone();
    flipped[100] ^= 1;
    let mut foreign = a.clone();
    foreign[0] ^= 0xff;
    let cases: [(&[u8], u32, IntegrityError, i32); 6] = [
        (&flipped, 0, IntegrityError::Corrupt, -117),
        (&[0u8; BLOCK_SIZE], 0, IntegrityError::Blank, -61),
        (&foreign, 0, IntegrityError::Foreign, -124),
        (&a, 1, IntegrityError::Misplaced, -117),
        (&a, 2, IntegrityError::BadArgument, -22),
        (&a[..512], 0, IntegrityError::BadArgument, -22),
    ];
    for (block, copy, want, errno) in cases {
        let got = verify_superblock(block, copy).unwrap_err();
        assert_eq!(got, want);
        assert_eq!(got.errno(), errno);
        assert!(!got.message().is_empty());
    }
}

/// Re-seals a changed superblock, so only the changed field is wrong.
fn resealed(block: &[u8], change: impl Fn(&mut dm_remap_v4_metadata::Superblock)) -> Vec<u8> {
    let mut sb = verify_superblock(block, 0).unwrap();
    change(&mut sb);
    let mut out = [0u8; BLOCK_SIZE];
    sb.encode(&mut out);
    out.to_vec()
}

#[test]
fn sealed_but_wrong_contents() {
    let [a, _] = formatted();
    let newer = resealed(&a, |sb| sb.version += 1);
    assert_eq!(
        verify_superblock(&newer, 0),
        Err(IntegrityError::Unsupported)
    );
    let feature = resealed(&a, |sb| sb.incompat |= 1 << 63);
    assert_eq!(
        verify_superblock(&feature, 0),
        Err(IntegrityError::Unsupported)
    );
    let pool_overlaps = resealed(&a, |sb| sb.pool_start = 0);
    assert_eq!(
        verify_superblock(&pool_overlaps, 0),
        Err(IntegrityError::Inconsistent)
    );
    let member = resealed(&a, |sb| sb.member_index = sb.member_count);
    assert_eq!(
        verify_superblock(&member, 0),
        Err(IntegrityError::Inconsistent)
    );
    // A removed-members mask may name this member (the removed spare records its own removal) but no
    // index at or above the member count.
    let removed_self = resealed(&a, |sb| sb.removed_members = 1);
    assert_eq!(
        verify_superblock(&removed_self, 0).map(|sb| sb.removed_members),
        Ok(1)
    );
    let removed_beyond = resealed(&a, |sb| sb.removed_members = 1 << sb.member_count);
    assert_eq!(
        verify_superblock(&removed_beyond, 0),
        Err(IntegrityError::Inconsistent)
    );
    assert_eq!(IntegrityError::Unsupported.errno(), -95);
}
