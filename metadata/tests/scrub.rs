//! The scrub state in blocks 1 and 9: round trip, ping-pong, newest wins, damaged copies, other setups,
//! blank regions, isolation from every other block, and failed writes.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use common::*;
use dm_remap_v4_metadata::abi::ScrubStateAbi;
use dm_remap_v4_metadata::block::{self, Block};
use dm_remap_v4_metadata::layout::{BLOCK_SIZE, SECTOR_SIZE};
use dm_remap_v4_metadata::scrub::{scrub_sector, SCRUB_MAGIC};
use dm_remap_v4_metadata::{
    EntryState, Error, Layout, Record, ScrubCursor, ScrubLoad, ScrubState, ShutdownMark, Store,
};

fn small() -> Layout {
    Layout::new(300, 16).unwrap()
}

/// A store freshly loaded from `disk`, as after a reboot.
fn reload(disk: &mut CrashDisk) -> (Store, MapSink) {
    let mut sink = MapSink::default();
    let (s, _) = Store::load(disk, &mut block(), &ANY, 99, &mut sink).unwrap();
    (s, sink)
}

/// Loads the scrub state through a freshly loaded store.
fn load_state(disk: &mut CrashDisk) -> ScrubLoad {
    let (mut s, _) = reload(disk);
    s.load_scrub_state(disk, &mut block()).unwrap()
}

fn state(n: u64) -> ScrubState {
    ScrubState {
        position: 1000 + n,
        passes: n,
        found_pending: 3 * n,
        relocated: 5 * n,
        pass_started: 1_700_000_000 + n,
        rate_kib: 4096 + u32::try_from(n).unwrap(),
        running: n % 2 == 1,
        pass_found: 7 * n,
        last_pass_found: 11 * n,
        prev_pass_found: 13 * n,
    }
}

fn put_block(disk: &mut CrashDisk, copy: usize, blk: &Block) {
    let at = usize::try_from(scrub_sector(copy).unwrap()).unwrap() * SECTOR_SIZE;
    disk.durable[at..at + BLOCK_SIZE].copy_from_slice(blk);
}

/// Sequence number and state held by copy `copy`, if valid for the test setup.
fn copy_holds(disk: &CrashDisk, copy: usize) -> Option<(u64, ScrubState)> {
    ScrubState::decode(
        &scrub_block_at(disk, copy),
        u32::try_from(copy).unwrap(),
        &UUID,
    )
}

#[test]
fn layout_and_magic() {
    assert_eq!(SCRUB_MAGIC, 0x5352_4D44);
    assert_eq!(scrub_sector(0), Some(8));
    assert_eq!(scrub_sector(1), Some(72));
    assert_eq!(scrub_sector(2), None);
}

#[test]
fn encoding_is_the_documented_layout() {
    let mut blk = [0u8; BLOCK_SIZE];
    state(3).encode(1, &UUID, 0x0102_0304_0506_0708, &mut blk);
    let u32_at = |o: usize| u32::from_le_bytes(blk[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(blk[o..o + 8].try_into().unwrap());
    assert_eq!(&blk[0..4], b"DMRS");
    assert_eq!(u32_at(8), 1);
    assert_eq!(u32_at(12), 1);
    assert_eq!(&blk[16..32], &UUID);
    assert_eq!(u64_at(32), 0x0102_0304_0506_0708);
    assert_eq!(u64_at(40), 1003);
    assert_eq!(u64_at(48), 3);
    assert_eq!(u64_at(56), 9);
    assert_eq!(u64_at(64), 15);
    assert_eq!(u64_at(72), 1_700_000_003);
    assert_eq!(u32_at(80), 4099);
    assert_eq!(u32_at(84), 1);
    assert_eq!(u64_at(88), 21);
    assert_eq!(u64_at(96), 33);
    assert_eq!(u64_at(104), 39);
    assert!(blk[112..].iter().all(|&b| b == 0));
    assert_eq!(block::check(&blk, SCRUB_MAGIC), block::Seal::Valid);
    assert_eq!(
        ScrubState::decode(&blk, 1, &UUID),
        Some((0x0102_0304_0506_0708, state(3)))
    );
    // Wrong position, wrong setup: ignored.
    assert_eq!(ScrubState::decode(&blk, 0, &UUID), None);
    assert_eq!(ScrubState::decode(&blk, 1, b"fedcba9876543210"), None);
}

#[test]
fn decode_rejects_bad_fields_but_ignores_reserved_bytes() {
    let mut blk = [0u8; BLOCK_SIZE];
    state(2).encode(0, &UUID, 7, &mut blk);
    // A compatible extension's bytes after the last field are ignored (the CRC still covers them).
    blk[200] = 0x5a;
    block::seal(&mut blk, SCRUB_MAGIC);
    assert_eq!(ScrubState::decode(&blk, 0, &UUID), Some((7, state(2))));
    // running must be 0 or 1.
    blk[84] = 2;
    block::seal(&mut blk, SCRUB_MAGIC);
    assert_eq!(ScrubState::decode(&blk, 0, &UUID), None);
    // Unknown version.
    state(2).encode(0, &UUID, 7, &mut blk);
    blk[8] = 2;
    block::seal(&mut blk, SCRUB_MAGIC);
    assert_eq!(ScrubState::decode(&blk, 0, &UUID), None);
    // Bad CRC.
    state(2).encode(0, &UUID, 7, &mut blk);
    blk[45] ^= 1;
    assert_eq!(ScrubState::decode(&blk, 0, &UUID), None);
}

#[test]
fn abi_conversion() {
    let abi = ScrubStateAbi {
        position: 1,
        passes: 2,
        found_pending: 3,
        relocated: 4,
        pass_started: 5,
        rate_kib: 6,
        running: 1,
        pass_found: 7,
        last_pass_found: 8,
        prev_pass_found: 9,
    };
    let s = ScrubState::from_abi(&abi).unwrap();
    assert!(s.running);
    assert_eq!(s.to_abi(), abi);
    assert_eq!(
        ScrubState::from_abi(&ScrubStateAbi { running: 2, ..abi }),
        None
    );
    // The export refuses such a state before saving, with this error.
    assert_eq!(Error::BadScrubState.errno(), -22);
}

#[test]
fn blank_and_formatted_regions_hold_no_state() {
    let (mut disk, mut store) = fresh();
    let found = store.load_scrub_state(&mut disk, &mut block()).unwrap();
    assert_eq!(
        found,
        ScrubLoad {
            state: None,
            seq: 0,
            copy: None,
            mark: ShutdownMark::default(),
            bad_copies: 0
        }
    );
    assert_eq!(store.scrub_cursor(), ScrubCursor::Empty);
    assert_eq!(load_state(&mut disk).state, None);
}

#[test]
fn region_formatted_over_foreign_data_holds_no_state_and_reports_both_copies() {
    let layout = small();
    let mut disk = disk_for(&layout);
    disk.durable.fill(0xa5);
    let mut store = Store::format(&mut disk, &mut block(), &params(layout), 7).unwrap();
    let found = store.load_scrub_state(&mut disk, &mut block()).unwrap();
    assert_eq!(found.state, None);
    assert_eq!(found.bad_copies, 2);
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    let found = load_state(&mut disk);
    assert_eq!(found.state, Some(state(1)));
    assert_eq!((found.seq, found.copy, found.bad_copies), (1, Some(0), 1));
}

#[test]
fn round_trip() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(5))
        .unwrap();
    let found = load_state(&mut disk);
    assert_eq!(
        found,
        ScrubLoad {
            state: Some(state(5)),
            seq: 1,
            copy: Some(0),
            mark: ShutdownMark::default(),
            bad_copies: 0
        }
    );
    assert_eq!(copy_holds(&disk, 1), None);
}

#[test]
fn saves_alternate_copies_with_growing_sequence_numbers() {
    let (mut disk, mut store) = fresh();
    for n in 1..=6u64 {
        store
            .save_scrub_state(&mut disk, &mut block(), &state(n))
            .unwrap();
        let copy = usize::from(n % 2 == 0);
        assert_eq!(copy_holds(&disk, copy), Some((n, state(n))), "save {n}");
        if n > 1 {
            // The other copy keeps the previous state.
            assert_eq!(copy_holds(&disk, 1 - copy), Some((n - 1, state(n - 1))));
        }
        assert_eq!(store.scrub_cursor(), ScrubCursor::Newest { seq: n, copy });
        let found = load_state(&mut disk);
        assert_eq!(
            (found.state, found.seq, found.copy),
            (Some(state(n)), n, Some(copy))
        );
    }
}

#[test]
fn a_loaded_store_continues_the_sequence() {
    let (mut disk, mut store) = fresh();
    for n in 1..=3 {
        store
            .save_scrub_state(&mut disk, &mut block(), &state(n))
            .unwrap();
    }
    // After a reboot: load first, then save.
    let (mut s2, _) = reload(&mut disk);
    assert_eq!(s2.load_scrub_state(&mut disk, &mut block()).unwrap().seq, 3);
    s2.save_scrub_state(&mut disk, &mut block(), &state(4))
        .unwrap();
    assert_eq!(copy_holds(&disk, 1), Some((4, state(4))));
    assert_eq!(copy_holds(&disk, 0), Some((3, state(3))));
    // Saving without loading first reads both copies to find the sequence number.
    let (mut s3, _) = reload(&mut disk);
    assert_eq!(s3.scrub_cursor(), ScrubCursor::Unknown);
    s3.save_scrub_state(&mut disk, &mut block(), &state(5))
        .unwrap();
    assert_eq!(copy_holds(&disk, 0), Some((5, state(5))));
    assert_eq!(copy_holds(&disk, 1), Some((4, state(4))));
    assert_eq!(load_state(&mut disk).state, Some(state(5)));
}

#[test]
fn newest_sequence_wins_wherever_it_is() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(2))
        .unwrap();
    // Copy 0 gets a higher number than copy 1 by hand.
    let mut blk = [0u8; BLOCK_SIZE];
    state(9).encode(0, &UUID, 40, &mut blk);
    put_block(&mut disk, 0, &blk);
    let found = load_state(&mut disk);
    assert_eq!(
        (found.state, found.seq, found.copy),
        (Some(state(9)), 40, Some(0))
    );
    // And the next save goes to the other copy, numbered above it.
    let (mut s, _) = reload(&mut disk);
    s.save_scrub_state(&mut disk, &mut block(), &state(3))
        .unwrap();
    assert_eq!(copy_holds(&disk, 1), Some((41, state(3))));
    assert_eq!(load_state(&mut disk).state, Some(state(3)));
}

#[test]
fn a_damaged_newest_copy_falls_back_to_the_previous_state() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(2))
        .unwrap();
    // Copy 1 holds state 2 (newest); flip one byte of it.
    let at = usize::try_from(scrub_sector(1).unwrap()).unwrap() * SECTOR_SIZE + 50;
    disk.durable[at] ^= 0x10;
    let found = load_state(&mut disk);
    assert_eq!(
        found,
        ScrubLoad {
            state: Some(state(1)),
            seq: 1,
            copy: Some(0),
            mark: ShutdownMark::default(),
            bad_copies: 1
        }
    );
    // The next save overwrites the damaged copy, and both are valid again.
    let (mut s, _) = reload(&mut disk);
    s.load_scrub_state(&mut disk, &mut block()).unwrap();
    s.save_scrub_state(&mut disk, &mut block(), &state(3))
        .unwrap();
    let found = load_state(&mut disk);
    assert_eq!(
        (found.state, found.seq, found.bad_copies),
        (Some(state(3)), 2, 0)
    );
}

#[test]
fn an_interrupted_save_leaves_the_old_or_the_new_state() {
    for fate in [Fate::Lost, Fate::Kept, Fate::Torn, Fate::Garbled] {
        for seed in 1..=8u64 {
            let (mut disk, mut store) = fresh();
            for n in 1..=3 {
                store
                    .save_scrub_state(&mut disk, &mut block(), &state(n))
                    .unwrap();
            }
            // Power fails during the fourth save (to copy 1, which holds state 2).
            disk.budget = Some(disk.ops);
            assert_eq!(
                store.save_scrub_state(&mut disk, &mut block(), &state(4)),
                Err(Error::WriteFailed)
            );
            disk.crash_with(|_| fate, &mut Rng(seed));
            let found = load_state(&mut disk);
            let got = (found.state.unwrap(), found.seq);
            assert!(
                got == (state(3), 3) || got == (state(4), 4),
                "{fate:?} seed {seed}: {got:?}"
            );
            if fate == Fate::Lost {
                assert_eq!(got, (state(3), 3));
            }
            if fate == Fate::Kept {
                assert_eq!(got, (state(4), 4));
            }
            // Copy 0 (the previous newest) was never touched.
            assert_eq!(copy_holds(&disk, 0), Some((3, state(3))));
        }
    }
}

#[test]
fn a_copy_of_another_setup_is_ignored() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    let mut blk = [0u8; BLOCK_SIZE];
    state(8).encode(1, b"another-setup-id", 1000, &mut blk);
    put_block(&mut disk, 1, &blk);
    let found = load_state(&mut disk);
    assert_eq!(
        found,
        ScrubLoad {
            state: Some(state(1)),
            seq: 1,
            copy: Some(0),
            mark: ShutdownMark::default(),
            bad_copies: 1
        }
    );
    // Alone, it is no state at all.
    put_block(&mut disk, 0, &[0u8; BLOCK_SIZE]);
    let found = load_state(&mut disk);
    assert_eq!((found.state, found.bad_copies), (None, 1));
}

#[test]
fn reformatting_with_the_same_uuid_keeps_the_sequence_ordered() {
    let (mut disk, mut store) = fresh();
    for n in 1..=2 {
        store
            .save_scrub_state(&mut disk, &mut block(), &state(n))
            .unwrap();
    }
    // Format leaves blocks 1 and 9 alone; a save after it must still number above what is there.
    let mut again = Store::format(&mut disk, &mut block(), &params(small()), 8).unwrap();
    assert_eq!(again.scrub_cursor(), ScrubCursor::Unknown);
    again
        .save_scrub_state(&mut disk, &mut block(), &state(7))
        .unwrap();
    assert_eq!(copy_holds(&disk, 0), Some((3, state(7))));
    assert_eq!(load_state(&mut disk).state, Some(state(7)));
}

#[test]
fn a_save_writes_one_block_durably_and_nothing_else() {
    let (mut disk, mut store) = fresh();
    store
        .commit(&mut disk, &mut block(), &[record(5, 1, 1), record(6, 2, 2)])
        .unwrap();
    store.load_scrub_state(&mut disk, &mut block()).unwrap();
    for n in 1..=4u64 {
        let before = disk.durable.clone();
        let (writes, ops) = (disk.writes, disk.ops);
        store
            .save_scrub_state(&mut disk, &mut block(), &state(n))
            .unwrap();
        assert_eq!(disk.writes - writes, 1, "one block write per save");
        assert_eq!(disk.ops - ops, 1, "no flush besides the FUA write");
        assert_eq!(disk.pending(), 0, "the write is durable (FUA)");
        let written = usize::from(n % 2 == 0);
        let written_block = usize::try_from(scrub_sector(written).unwrap()).unwrap() / 8;
        for (i, (a, b)) in before
            .chunks_exact(BLOCK_SIZE)
            .zip(disk.durable.chunks_exact(BLOCK_SIZE))
            .enumerate()
        {
            if i == written_block {
                assert_ne!(a, b, "save {n} wrote block {i}");
            } else {
                assert_eq!(a, b, "save {n} changed block {i}");
            }
        }
    }
    // The remap table is as committed.
    let (_, sink) = reload(&mut disk);
    assert_eq!(sink.map.len(), 2);
}

#[test]
fn a_failed_save_is_an_error_but_the_table_stays_usable() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1)])
        .unwrap();
    disk.budget = Some(disk.ops);
    assert_eq!(
        store.save_scrub_state(&mut disk, &mut block(), &state(2)),
        Err(Error::WriteFailed)
    );
    assert!(!store.is_poisoned());
    // The device recovers (the interrupted write never reached it).
    disk.crash_with(|_| Fate::Lost, &mut Rng(1));
    let seq = store
        .commit(&mut disk, &mut block(), &[record(2, 2, 2)])
        .unwrap();
    assert_eq!(seq, 2);
    let entries: Vec<Record> = (3..6).map(|u| record(u, u, u)).collect();
    store.commit(&mut disk, &mut block(), &entries).unwrap();
    let (_, sink) = reload(&mut disk);
    assert_eq!(
        sink.map.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(sink.map[&2].state, EntryState::Active);
    assert_eq!(load_state(&mut disk).state, Some(state(1)));
    // The retry writes the same copy with the same number.
    store
        .save_scrub_state(&mut disk, &mut block(), &state(3))
        .unwrap();
    assert_eq!(copy_holds(&disk, 1), Some((2, state(3))));
    assert_eq!(copy_holds(&disk, 0), Some((1, state(1))));
}

#[test]
fn unreadable_copies() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(2))
        .unwrap();
    disk.fail_reads.push(scrub_sector(1).unwrap());
    let found = load_state(&mut disk);
    assert_eq!(
        (found.state, found.seq, found.bad_copies),
        (Some(state(1)), 1, 1)
    );
    disk.fail_reads.push(scrub_sector(0).unwrap());
    let (mut s, _) = reload(&mut disk);
    assert_eq!(
        s.load_scrub_state(&mut disk, &mut block()),
        Err(Error::ReadFailed)
    );
    assert_eq!(
        s.save_scrub_state(&mut disk, &mut block(), &state(3)),
        Err(Error::ReadFailed)
    );
    assert_eq!(disk.fail_reads.len(), 2);
}

#[test]
fn a_poisoned_store_refuses_to_save_but_still_loads() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &state(1))
        .unwrap();
    disk.budget = Some(disk.ops);
    assert!(store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1)])
        .is_err());
    assert!(store.is_poisoned());
    disk.crash_with(|_| Fate::Lost, &mut Rng(1));
    assert_eq!(
        store.save_scrub_state(&mut disk, &mut block(), &state(2)),
        Err(Error::Poisoned)
    );
    let found = store.load_scrub_state(&mut disk, &mut block()).unwrap();
    assert_eq!(found.state, Some(state(1)));
}

#[test]
fn wrong_buffer_size() {
    let (mut disk, mut store) = fresh();
    let mut small_buf = vec![0u8; 512];
    assert_eq!(
        store.load_scrub_state(&mut disk, &mut small_buf),
        Err(Error::BufferSize)
    );
    assert_eq!(
        store.save_scrub_state(&mut disk, &mut small_buf, &state(1)),
        Err(Error::BufferSize)
    );
}
