//! Encode/decode round trips, field offsets from the specification, layout rules and error metadata.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use common::{main_identity, record, UUID};
use dm_remap_v4_metadata::block::Block;
use dm_remap_v4_metadata::checkpoint::{self, CheckpointHeader};
use dm_remap_v4_metadata::journal::{self, JournalHeader};
use dm_remap_v4_metadata::layout::{self, BLOCK_SIZE, SECTORS_PER_BLOCK};
use dm_remap_v4_metadata::record::RECORD_SIZE;
use dm_remap_v4_metadata::superblock::{SuperblockFault, FORMAT_VERSION, SUPERBLOCK_MAGIC};
use dm_remap_v4_metadata::{EntryState, Error, Layout, MainIdentity, Record, Superblock};
use proptest::prelude::*;

fn sample_sb() -> Superblock {
    Superblock {
        version: FORMAT_VERSION,
        copy_index: 1,
        incompat: 0,
        compat: 0,
        uuid: UUID,
        member_index: 1,
        member_count: 3,
        removed_members: 0b101,
        main: main_identity(),
        region_sectors: 4096,
        pool_start: 4096,
        pool_units: 12345,
        unit_sectors: 8,
        capacity: 300,
        journal_blocks: 256,
        meta_version: 0x0102_0304_0506_0708,
        commit_seq: 0x1112_1314_1516_1718,
        journal_nonce: 0x2122_2324_2526_2728,
        checkpoint_entries: 0x3132_3334_3536_3738,
        checkpoint_crc: 0x4142_4344,
        active_area: 1,
    }
}

fn le64(b: &Block, off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn le32(b: &Block, off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn superblock_offsets_match_spec() {
    let sb = sample_sb();
    let mut b = [0u8; BLOCK_SIZE];
    sb.encode(&mut b);
    assert_eq!(&b[0..4], b"DMR4");
    assert_eq!(le32(&b, 0), SUPERBLOCK_MAGIC);
    assert_eq!(le32(&b, 4), dm_remap_v4_metadata::crc32c::crc32c(&b[8..]));
    assert_eq!(le32(&b, 8), FORMAT_VERSION);
    assert_eq!(le32(&b, 12), 1);
    assert_eq!(&b[32..48], &UUID);
    assert_eq!(le32(&b, 48), 1);
    assert_eq!(le32(&b, 52), 3);
    assert_eq!(le64(&b, 56), 1 << 24);
    assert_eq!(le32(&b, 64), 512);
    assert_eq!(le32(&b, 68), 0b101);
    assert_eq!(&b[72..136], &main_identity().id);
    assert_eq!(le64(&b, 136), 4096);
    assert_eq!(le64(&b, 152), 12345);
    assert_eq!(le64(&b, 168), 300);
    assert_eq!(le64(&b, 184), sb.meta_version);
    assert_eq!(le64(&b, 192), sb.commit_seq);
    assert_eq!(le64(&b, 200), sb.journal_nonce);
    assert_eq!(le64(&b, 208), sb.checkpoint_entries);
    assert_eq!(le32(&b, 216), sb.checkpoint_crc);
    assert_eq!(le32(&b, 220), 1);
    assert!(b[224..].iter().all(|&x| x == 0));
}

#[test]
fn superblock_faults() {
    let mut b = [0u8; BLOCK_SIZE];
    assert_eq!(Superblock::decode(&b), Err(SuperblockFault::Zero));
    sample_sb().encode(&mut b);
    assert_eq!(Superblock::decode(&b), Ok(sample_sb()));
    for off in [5, 8, 100, 223, 224, 4095] {
        let mut c = b;
        c[off] ^= 0x40;
        assert_eq!(
            Superblock::decode(&c),
            Err(SuperblockFault::Corrupt),
            "{off}"
        );
    }
    let mut c = b;
    c[0] = b'X';
    assert_eq!(Superblock::decode(&c), Err(SuperblockFault::Foreign));
    let mut v2 = sample_sb();
    v2.version = 2;
    v2.encode(&mut c);
    assert_eq!(Superblock::decode(&c), Err(SuperblockFault::Version));
}

#[test]
fn feature_bits() {
    let mut b = [0u8; BLOCK_SIZE];
    let mut sb = sample_sb();
    sb.compat = 0x8000_0000_0000_0001;
    sb.encode(&mut b);
    assert_eq!(
        Superblock::decode(&b).unwrap().compat,
        sb.compat,
        "compat ignored, kept"
    );
    sb.incompat = 1 << 40;
    sb.encode(&mut b);
    assert_eq!(Superblock::decode(&b), Err(SuperblockFault::Incompat));
}

#[test]
fn record_layout_and_rejects() {
    let r = record(0x0102, 0x0304, 0x0506);
    let b = r.to_bytes();
    assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 0x0102);
    assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 0x0304);
    assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 0x0506);
    assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 0);
    assert_eq!(b[28], EntryState::Active.code());
    assert_eq!(Record::decode(&b), Some(r));
    let mut bad = b;
    bad[28] = 9;
    assert_eq!(Record::decode(&bad), None);
    let mut bad = b;
    bad[31] = 1;
    assert_eq!(Record::decode(&bad), None);
}

#[test]
fn per_block_counts() {
    assert_eq!(checkpoint::ENTRIES_PER_BLOCK, 127);
    assert_eq!(journal::RECORDS_PER_BLOCK, 126);
    assert_eq!(checkpoint::HEADER_SIZE + 127 * RECORD_SIZE, BLOCK_SIZE);
    assert_eq!(journal::HEADER_SIZE + 126 * RECORD_SIZE, BLOCK_SIZE);
}

#[test]
fn journal_packing_rule() {
    let h = |index, count, total| JournalHeader {
        nonce: 1,
        seq: 2,
        salt: 3,
        prev_chain: 4,
        commit_crc: 5,
        block_index: index,
        block_count: u32::try_from(journal::blocks_for(total as usize)).unwrap(),
        record_count: count,
        total_records: total,
    };
    assert!(h(0, 1, 1).packing_ok());
    assert!(h(0, 126, 126).packing_ok());
    assert!(h(0, 126, 127).packing_ok());
    assert!(h(1, 1, 127).packing_ok());
    assert!(!h(1, 2, 127).packing_ok());
    assert!(!h(0, 125, 127).packing_ok());
    assert!(!h(0, 0, 0).packing_ok());
    assert!(!h(2, 1, 127).packing_ok());
}

#[test]
fn layout_rules() {
    let l = Layout::for_capacity(1_000_000).unwrap();
    assert_eq!(l.checkpoint_blocks, 7875);
    assert_eq!(l.journal_blocks, 7875);
    assert_eq!(l.region_sectors % layout::REGION_ALIGN_SECTORS, 0);
    assert!(l.region_sectors >= (16 + 3 * 7875) * SECTORS_PER_BLOCK);
    // Areas follow each other without overlap, in the documented order.
    assert_eq!(l.checkpoint_sector(0, 0).unwrap(), 16 * 8);
    assert_eq!(l.checkpoint_sector(1, 0).unwrap(), (16 + 7875) * 8);
    assert_eq!(l.journal_sector(0).unwrap(), (16 + 2 * 7875) * 8);
    assert_eq!(
        l.journal_sector(7874).unwrap() + 8,
        (16 + 3 * 7875) * 8,
        "journal ends the used part"
    );
    assert_eq!(l.checkpoint_sector(0, 7875), Err(Error::BadGeometry));
    assert_eq!(l.journal_sector(7875), Err(Error::BadGeometry));
    assert_eq!(l.checkpoint_sector(2, 0), Err(Error::BadGeometry));
    assert_eq!(Layout::superblock_sector(0), Some(0));
    assert_eq!(Layout::superblock_sector(1), Some(64));
    assert_eq!(Layout::superblock_sector(2), None);

    let small = Layout::for_capacity(10).unwrap();
    assert_eq!(small.journal_blocks, layout::MIN_JOURNAL_BLOCKS);
    assert_eq!(Layout::new(0, 8), Err(Error::BadGeometry));
    assert_eq!(Layout::new(8, 0), Err(Error::BadGeometry));
    assert_eq!(
        Layout::new(layout::MAX_CAPACITY + 1, 8),
        Err(Error::BadGeometry)
    );
}

#[test]
fn capacity_from_spare_size() {
    // 1 TiB spare, 4 KiB units: one entry per unit, clamped to the maximum.
    let l = Layout::for_spare(1 << 31, 8).unwrap();
    assert_eq!(l.capacity, layout::MAX_CAPACITY);
    // 4 GiB spare, 4 KiB units: 2^20 units.
    let l = Layout::for_spare(1 << 23, 8).unwrap();
    assert_eq!(l.capacity, 1 << 20);
    assert!(l.pool_units(1 << 23, 8).unwrap() > 0);
    // Tiny spare: at least MIN_CAPACITY, but it must still fit.
    assert_eq!(Layout::for_spare(4096, 8), Err(Error::SpareTooSmall));
    let l = Layout::for_spare(1 << 13, 8).unwrap();
    assert_eq!(l.capacity, layout::MIN_CAPACITY);
    assert_eq!(Layout::for_spare(1 << 20, 0), Err(Error::BadGeometry));
}

#[test]
fn errors_have_distinct_messages_and_errnos() {
    use Error::*;
    let all = [
        ReadFailed,
        WriteFailed,
        FlushFailed,
        BufferSize,
        BadGeometry,
        SpareTooSmall,
        Blank,
        Foreign,
        OtherSetup,
        MainMismatch,
        MainIdMismatch,
        MemberMismatch,
        ChangedSinceLoad,
        UnsupportedVersion,
        IncompatFeatures,
        SuperblockCorrupt,
        SuperblockInvalid,
        CheckpointCorrupt,
        RecordInvalid,
        UnstableRead,
        BadRecord,
        BatchTooLarge,
        JournalFull,
        TableFull,
        Poisoned,
        Overflow,
        OutOfMemory,
        BadScrubState,
    ];
    let mut msgs: Vec<_> = all.iter().map(|e| e.message()).collect();
    assert!(msgs.iter().all(|m| !m.is_empty() && m.count_bytes() < 64));
    msgs.sort_unstable();
    msgs.dedup();
    assert_eq!(msgs.len(), all.len());
    assert!(all.iter().all(|e| e.errno() < 0));
    assert_eq!(SuperblockCorrupt.errno(), -117);
    assert_eq!(CheckpointCorrupt.errno(), -117);
    assert_eq!(ReadFailed.errno(), -5);
    assert_eq!(JournalFull.errno(), -28);
    assert_eq!(BadGeometry.errno(), -22);
    assert_eq!(OtherSetup.errno(), -17);
    assert_eq!(Foreign.errno(), -16);
    assert_eq!(Blank.errno(), -61);
    assert_eq!(IncompatFeatures.errno(), -95);
    assert_eq!(BadScrubState.errno(), -22);
    assert_eq!(
        format!("{OtherSetup}"),
        OtherSetup.message().to_str().unwrap()
    );
}

fn arb_state() -> impl Strategy<Value = EntryState> {
    prop_oneof![
        Just(EntryState::Active),
        Just(EntryState::PendingReadFailure),
        Just(EntryState::Cleared)
    ]
}

proptest! {
    #[test]
    fn record_round_trip(main_unit: u64, spare_index: u32, spare_unit: u64, state in arb_state(), timestamp: u64) {
        let r = Record { main_unit, spare_index, spare_unit, state, timestamp };
        prop_assert_eq!(Record::decode(&r.to_bytes()), Some(r));
    }

    #[test]
    fn superblock_round_trip(
        copy_index in 0u32..2, compat: u64, uuid: [u8; 16], member_index: u32, member_count: u32,
        removed_members: u32, sectors: u64, lbs: u32, id in proptest::collection::vec(any::<u8>(), 64),
        geometry: [u64; 6], counters: [u64; 4], checkpoint_crc: u32, active_area: u32,
    ) {
        let sb = Superblock {
            version: FORMAT_VERSION, copy_index, incompat: 0, compat, uuid, member_index, member_count,
            removed_members,
            main: MainIdentity { sectors, logical_block_size: lbs, id: id.try_into().unwrap() },
            region_sectors: geometry[0], pool_start: geometry[1], pool_units: geometry[2],
            unit_sectors: geometry[3], capacity: geometry[4], journal_blocks: geometry[5],
            meta_version: counters[0], commit_seq: counters[1], journal_nonce: counters[2],
            checkpoint_entries: counters[3], checkpoint_crc, active_area,
        };
        let mut b = [0u8; BLOCK_SIZE];
        sb.encode(&mut b);
        prop_assert_eq!(Superblock::decode(&b), Ok(sb));
    }

    #[test]
    fn checkpoint_header_round_trip(meta_version: u64, nonce: u64, block_index: u32, entry_count: u32) {
        let h = CheckpointHeader { meta_version, nonce, block_index, entry_count };
        let mut b = [0u8; BLOCK_SIZE];
        h.encode(&mut b);
        prop_assert_eq!(CheckpointHeader::decode(&b), Some(h));
        b[100] ^= 1;
        prop_assert_eq!(CheckpointHeader::decode(&b), None);
    }

    #[test]
    fn journal_header_round_trip(f: [u64; 3], g: [u32; 6]) {
        let h = JournalHeader {
            nonce: f[0], seq: f[1], salt: f[2], prev_chain: g[0], commit_crc: g[1],
            block_index: g[2], block_count: g[3], record_count: g[4], total_records: g[5],
        };
        let mut b = [0u8; BLOCK_SIZE];
        h.encode(&mut b);
        prop_assert_eq!(JournalHeader::decode(&b), Some(h));
        b[4000] ^= 0x80;
        prop_assert_eq!(JournalHeader::decode(&b), None);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), BLOCK_SIZE)) {
        let b: Block = bytes.try_into().unwrap();
        let _ = Superblock::decode(&b);
        let _ = CheckpointHeader::decode(&b);
        let _ = JournalHeader::decode(&b);
        let _ = Record::decode(b[..32].try_into().unwrap());
    }
}
