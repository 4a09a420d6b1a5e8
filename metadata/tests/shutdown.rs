//! The shutdown mark in the scrub-state blocks: its documented layout, compatibility with readers that do
//! not know it, clean only for exactly the loaded metadata, the ping-pong write that keeps the scrub state,
//! and scrub saves that carry the mark.

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
use dm_remap_v4_metadata::block::{self};
use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::scrub::{SCRUB_MAGIC, SHUTDOWN_MARK_OFFSET};
use dm_remap_v4_metadata::{Error, ScrubState, Shutdown, ShutdownMark, ShutdownStatus, Store};

/// What a scan after a reboot sees: the newest mark and the status it gives the loaded metadata.
fn status_after_reboot(disk: &mut CrashDisk) -> (ShutdownMark, ShutdownStatus) {
    let mut sink = MapSink::default();
    let (mut s, _) = Store::load(disk, &mut block(), &ANY, 99, &mut sink).unwrap();
    let found = s.load_scrub_state(disk, &mut block()).unwrap();
    let status = found.mark.status(s.superblock().meta_version, s.last_seq());
    (found.mark, status)
}

fn scrub(n: u64) -> ScrubState {
    ScrubState {
        position: 100 + n,
        passes: n,
        rate_kib: 1024,
        running: true,
        ..ScrubState::default()
    }
}

#[test]
fn the_mark_is_at_offset_112_little_endian_and_older_readers_ignore_it() {
    let mark = ShutdownMark {
        shutdown: Shutdown::Clean,
        meta_version: 0x1122_3344_5566_7788,
        commit_seq: 0x0102_0304_0506_0708,
    };
    let mut blk = [0u8; BLOCK_SIZE];
    scrub(3).encode_marked(1, &UUID, 9, &mark, &mut blk);
    assert_eq!(SHUTDOWN_MARK_OFFSET, 112);
    assert_eq!(blk[112..116], 2u32.to_le_bytes());
    assert_eq!(blk[116..120], [0; 4], "flags are written as zero");
    assert_eq!(blk[120..128], 0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(blk[128..136], 0x0102_0304_0506_0708u64.to_le_bytes());
    assert!(blk[136..].iter().all(|&b| b == 0));
    assert_eq!(block::check(&blk, SCRUB_MAGIC), block::Seal::Valid);
    // The scrub state decodes as before (an older reader sees reserved bytes it ignores).
    assert_eq!(ScrubState::decode(&blk, 1, &UUID), Some((9, scrub(3))));
    let mut plain = [0u8; BLOCK_SIZE];
    scrub(3).encode(1, &UUID, 9, &mut plain);
    assert_eq!(blk[8..112], plain[8..112]);
    assert_eq!(ShutdownMark::read(&blk), mark);
    // An unmarked block (older writer) has no mark.
    assert_eq!(ShutdownMark::read(&plain), ShutdownMark::default());
    assert_eq!(ShutdownMark::read(&plain).shutdown, Shutdown::None);
}

#[test]
fn unknown_states_and_flags() {
    assert_eq!(Shutdown::from_u32(0), Shutdown::None);
    assert_eq!(Shutdown::from_u32(1), Shutdown::Dirty);
    assert_eq!(Shutdown::from_u32(2), Shutdown::Clean);
    assert_eq!(Shutdown::from_u32(3), Shutdown::None);
    assert_eq!(Shutdown::from_u32(u32::MAX), Shutdown::None);
    let mut blk = [0u8; BLOCK_SIZE];
    let mark = ShutdownMark {
        shutdown: Shutdown::Clean,
        meta_version: 4,
        commit_seq: 5,
    };
    scrub(1).encode_marked(0, &UUID, 1, &mark, &mut blk);
    blk[116] = 0xff; // flags: ignored
    assert_eq!(ShutdownMark::read(&blk), mark);
    blk[112] = 7; // a state this code does not know: never clean
    assert_eq!(ShutdownMark::read(&blk).shutdown, Shutdown::None);
}

#[test]
fn clean_only_for_exactly_the_loaded_metadata() {
    let m = ShutdownMark {
        shutdown: Shutdown::Clean,
        meta_version: 3,
        commit_seq: 10,
    };
    assert_eq!(m.status(3, 10), ShutdownStatus::Clean);
    assert_eq!(m.status(3, 11), ShutdownStatus::Stale);
    assert_eq!(m.status(3, 9), ShutdownStatus::Stale);
    assert_eq!(m.status(4, 10), ShutdownStatus::Stale);
    let dirty = ShutdownMark {
        shutdown: Shutdown::Dirty,
        ..m
    };
    assert_eq!(dirty.status(3, 10), ShutdownStatus::Dirty);
    assert_eq!(ShutdownMark::default().status(0, 0), ShutdownStatus::None);
    let names: Vec<&str> = [
        ShutdownStatus::Clean,
        ShutdownStatus::Dirty,
        ShutdownStatus::Stale,
        ShutdownStatus::None,
    ]
    .iter()
    .map(|s| s.name())
    .collect();
    assert_eq!(names, ["clean", "dirty", "stale", "none"]);
}

#[test]
fn a_fresh_region_has_no_mark() {
    let (mut disk, _) = fresh();
    assert_eq!(
        status_after_reboot(&mut disk),
        (ShutdownMark::default(), ShutdownStatus::None)
    );
}

#[test]
fn dirty_then_clean_across_commits_and_reboots() {
    let (mut disk, mut store) = fresh();
    store.mark_dirty(&mut disk, &mut block()).unwrap();
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Dirty);
    store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1), record(2, 2, 2)])
        .unwrap();
    // A power cut now: still dirty.
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Dirty);
    store.mark_clean(&mut disk, &mut block()).unwrap();
    let (mark, status) = status_after_reboot(&mut disk);
    assert_eq!(status, ShutdownStatus::Clean);
    assert_eq!(
        mark,
        ShutdownMark {
            shutdown: Shutdown::Clean,
            meta_version: store.superblock().meta_version,
            commit_seq: 1,
        }
    );
    // A change after the clean mark without a dirty one (which the core never does) is not clean.
    store
        .commit(&mut disk, &mut block(), &[record(3, 3, 3)])
        .unwrap();
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Stale);
    // Marking again after a reboot: the new store continues the sequence.
    let mut sink = MapSink::default();
    let (mut again, _) = Store::load(&mut disk, &mut block(), &ANY, 5, &mut sink).unwrap();
    again.mark_dirty(&mut disk, &mut block()).unwrap();
    again.mark_clean(&mut disk, &mut block()).unwrap();
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Clean);
}

#[test]
fn marks_keep_the_scrub_state_and_scrub_saves_carry_the_mark() {
    let (mut disk, mut store) = fresh();
    store
        .save_scrub_state(&mut disk, &mut block(), &scrub(1))
        .unwrap();
    store.mark_dirty(&mut disk, &mut block()).unwrap();
    store
        .save_scrub_state(&mut disk, &mut block(), &scrub(2))
        .unwrap();
    let newest = |disk: &CrashDisk| {
        (0..2)
            .filter_map(|c| {
                let b = scrub_block_at(disk, c);
                ScrubState::decode(&b, u32::try_from(c).unwrap(), &UUID)
                    .map(|(seq, s)| (seq, s, ShutdownMark::read(&b)))
            })
            .max_by_key(|(seq, _, _)| *seq)
            .unwrap()
    };
    let (seq, state, mark) = newest(&disk);
    assert_eq!((seq, state, mark.shutdown), (3, scrub(2), Shutdown::Dirty));
    store.mark_clean(&mut disk, &mut block()).unwrap();
    let (seq, state, mark) = newest(&disk);
    assert_eq!((seq, state, mark.shutdown), (4, scrub(2), Shutdown::Clean));
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Clean);
}

#[test]
fn a_mark_is_one_durable_block_write_and_a_crash_during_it_keeps_the_previous_mark() {
    let (mut disk, mut store) = fresh();
    store.mark_clean(&mut disk, &mut block()).unwrap();
    let before = disk.durable.clone();
    let (writes, ops) = (disk.writes, disk.ops);
    store.mark_dirty(&mut disk, &mut block()).unwrap();
    assert_eq!((disk.writes - writes, disk.ops - ops), (1, 1));
    assert_eq!(disk.pending(), 0, "written with FUA");
    let changed: Vec<usize> = before
        .chunks_exact(BLOCK_SIZE)
        .zip(disk.durable.chunks_exact(BLOCK_SIZE))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(changed, [9], "only scrub-state copy 1");
    // The power fails during the clean mark: the dirty mark stays.
    disk.budget = Some(disk.ops);
    assert!(store.mark_clean(&mut disk, &mut block()).is_err());
    disk.crash_with(|_| Fate::Torn, &mut Rng(3));
    disk.budget = None;
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Dirty);
}

#[test]
fn a_poisoned_store_marks_nothing() {
    let (mut disk, mut store) = fresh();
    store.mark_dirty(&mut disk, &mut block()).unwrap();
    disk.budget = Some(disk.ops);
    assert!(store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1)])
        .is_err());
    disk.crash_with(|_| Fate::Lost, &mut Rng(1));
    disk.budget = None;
    assert_eq!(
        store.mark_clean(&mut disk, &mut block()),
        Err(Error::Poisoned)
    );
    assert_eq!(status_after_reboot(&mut disk).1, ShutdownStatus::Dirty);
}
