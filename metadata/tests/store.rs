//! Format, commit, checkpoint, load and repair on a well-behaved disk, plus damaged and foreign regions.

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
use dm_remap_v4_metadata::journal;
use dm_remap_v4_metadata::layout::SECTOR_SIZE;
use dm_remap_v4_metadata::superblock::FORMAT_VERSION;
use dm_remap_v4_metadata::{
    BlockIo, CopyStatus, EntryState, Error, Expect, Layout, LoadReport, Record, Store, Superblock,
};

fn small() -> Layout {
    Layout::new(300, 16).unwrap()
}

fn fresh(layout: Layout) -> (CrashDisk, Store) {
    let mut disk = disk_for(&layout);
    let store = Store::format(&mut disk, &mut block(), &params(layout), 7).unwrap();
    (disk, store)
}

fn load(disk: &mut CrashDisk) -> Result<(Store, LoadReport, MapSink), Error> {
    let mut sink = MapSink::default();
    let (s, r) = Store::load(disk, &mut block(), &ANY, 99, &mut sink)?;
    Ok((s, r, sink))
}

fn sb_sector(copy: usize) -> usize {
    usize::try_from(Layout::superblock_sector(copy).unwrap()).unwrap() * SECTOR_SIZE
}

/// Rewrites every superblock copy through `f`, with valid checksums.
fn edit_superblocks(disk: &mut CrashDisk, f: impl Fn(&mut Superblock)) {
    for copy in 0..2 {
        let at = sb_sector(copy);
        let blk: &mut [u8; 4096] = (&mut disk.durable[at..at + 4096]).try_into().unwrap();
        let mut sb = Superblock::decode(blk).unwrap();
        f(&mut sb);
        sb.encode(blk);
    }
}

#[test]
fn empty_region_loads_empty() {
    let (mut disk, store) = fresh(small());
    assert_eq!(store.last_seq(), 0);
    let (s, r, sink) = load(&mut disk).unwrap();
    assert!(sink.map.is_empty());
    assert_eq!(r.copies, [CopyStatus::Current; 2]);
    assert_eq!((r.chosen, r.meta_version, r.last_seq), (0, 1, 0));
    assert_eq!(s.superblock().pool_units, 1024);
    assert_eq!(s.superblock().pool_start, small().region_sectors);
}

#[test]
fn commits_and_checkpoints_round_trip() {
    let (mut disk, mut store) = fresh(small());
    let mut rng = Rng(1);
    let mut t = 0;
    let mut model = std::collections::BTreeMap::new();
    for round in 0..6 {
        for n in [1usize, 3, 126, 127, 2] {
            let recs = random_records(&mut rng, n, &mut t);
            let seq = store.commit(&mut disk, &mut block(), &recs).unwrap();
            assert_eq!(seq, store.last_seq());
            apply_all(&mut model, &recs);
        }
        let (_, r, sink) = load(&mut disk).unwrap();
        assert_eq!(sink.map, model, "round {round}");
        assert_eq!(r.last_seq, store.last_seq());
        assert_eq!(r.journal_commits, 5);
        assert_eq!(r.journal_blocks_used, 1 + 1 + 1 + 2 + 1);
        store
            .checkpoint(&mut disk, &mut block(), model.values().copied())
            .unwrap();
        let (_, r, sink) = load(&mut disk).unwrap();
        assert_eq!(sink.map, model);
        assert_eq!(r.checkpoint_entries, model.len() as u64);
        assert_eq!((r.journal_commits, r.last_seq), (0, store.last_seq()));
        assert_eq!(r.meta_version, 2 + round);
    }
}

#[test]
fn commit_cost_is_independent_of_table_size() {
    let (mut disk, mut store) = fresh(small());
    let table: Vec<Record> = (0..290).map(|i| record(i, i, 1)).collect();
    store.checkpoint(&mut disk, &mut block(), table).unwrap();
    for k in [1usize, 126, 127, 300] {
        let before = disk.writes;
        store
            .commit(&mut disk, &mut block(), &vec![record(5, 5, 2); k])
            .unwrap();
        assert_eq!(
            (disk.writes - before) as u64,
            journal::blocks_for(k),
            "k = {k}"
        );
    }
}

#[test]
fn empty_commit_writes_nothing() {
    let (mut disk, mut store) = fresh(small());
    let before = disk.clone();
    assert_eq!(store.commit(&mut disk, &mut block(), &[]), Ok(0));
    assert_eq!(disk.durable, before.durable);
    assert_eq!(disk.writes, before.writes);
}

#[test]
fn cleared_records_drop_entries_and_never_enter_a_checkpoint() {
    let (mut disk, mut store) = fresh(small());
    let cleared = |unit| Record {
        state: EntryState::Cleared,
        ..record(unit, 0, 1)
    };
    store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1), record(2, 2, 1)])
        .unwrap();
    store
        .commit(&mut disk, &mut block(), &[cleared(1)])
        .unwrap();
    let (_, _, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.keys().copied().collect::<Vec<_>>(), [2]);
    // Clearing again, or clearing a unit without an entry, is harmless.
    store
        .commit(&mut disk, &mut block(), &[cleared(1), cleared(7)])
        .unwrap();
    let (_, _, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.keys().copied().collect::<Vec<_>>(), [2]);
    // A checkpoint takes live entries only; a refused one leaves the store usable.
    assert_eq!(
        store.checkpoint(
            &mut disk,
            &mut block(),
            [record(2, 2, 1), cleared(1)].into_iter()
        ),
        Err(Error::BadRecord)
    );
    let (_, _, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.keys().copied().collect::<Vec<_>>(), [2]);
    store
        .checkpoint(&mut disk, &mut block(), sink.map.values().copied())
        .unwrap();
    let (_, r, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.keys().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(r.checkpoint_entries, 1);
}

#[test]
fn journal_full_then_checkpoint() {
    let layout = Layout::new(300, 4).unwrap();
    let (mut disk, mut store) = fresh(layout);
    let mut model = std::collections::BTreeMap::new();
    for i in 0..4 {
        let r = [record(i, i, i)];
        store.commit(&mut disk, &mut block(), &r).unwrap();
        apply_all(&mut model, &r);
    }
    assert_eq!(store.journal_free_blocks(), 0);
    let r = [record(9, 9, 9)];
    let before = disk.durable.clone();
    assert_eq!(
        store.commit(&mut disk, &mut block(), &r),
        Err(Error::JournalFull)
    );
    assert_eq!(disk.durable, before, "a refused commit writes nothing");
    assert!(!store.is_poisoned());
    let big = vec![record(1, 1, 1); 126 * 4 + 1];
    assert_eq!(
        store.commit(&mut disk, &mut block(), &big),
        Err(Error::BatchTooLarge)
    );
    // The caller puts the records in its table and checkpoints: that commits them.
    apply_all(&mut model, &r);
    store
        .checkpoint(&mut disk, &mut block(), model.values().copied())
        .unwrap();
    assert_eq!(store.journal_free_blocks(), 4);
    let (_, _, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map, model);
}

#[test]
fn invalid_arguments() {
    let (mut disk, mut store) = fresh(small());
    let mut short = vec![0u8; 512];
    assert_eq!(
        store.commit(&mut disk, &mut short, &[record(1, 1, 1)]),
        Err(Error::BufferSize)
    );
    let mut bad = record(1, 1, 1);
    bad.spare_index = 2;
    assert_eq!(
        store.commit(&mut disk, &mut block(), &[bad]),
        Err(Error::BadRecord)
    );
    bad.spare_index = 0;
    bad.main_unit = (1 << 24) / UNIT_SECTORS;
    assert_eq!(
        store.commit(&mut disk, &mut block(), &[bad]),
        Err(Error::BadRecord)
    );
    let too_many = (0..301).map(|i| record(i, i, 1));
    assert_eq!(
        store.checkpoint(&mut disk, &mut block(), too_many),
        Err(Error::TableFull)
    );
    assert_eq!(
        store.checkpoint(&mut disk, &mut block(), [bad]),
        Err(Error::BadRecord)
    );
    // Refused checkpoints leave the metadata as it was.
    let (_, r, _) = load(&mut disk).unwrap();
    assert_eq!(r.meta_version, 1);
    let exactly = (0..300).map(|i| record(i, i, 1));
    store.checkpoint(&mut disk, &mut block(), exactly).unwrap();
    assert_eq!(load(&mut disk).unwrap().2.map.len(), 300);

    let mut p = params(small());
    p.member_index = 2;
    assert_eq!(
        Store::format(&mut disk_for(&small()), &mut block(), &p, 1).err(),
        Some(Error::BadGeometry)
    );
    let mut p = params(small());
    p.spare_sectors = small().region_sectors;
    assert_eq!(
        Store::format(&mut disk_for(&small()), &mut block(), &p, 1).err(),
        Some(Error::SpareTooSmall)
    );
}

#[test]
fn one_bad_copy_loads_reports_and_repairs() {
    for bad in 0..2 {
        let (mut disk, mut store) = fresh(small());
        store
            .commit(&mut disk, &mut block(), &[record(1, 2, 3)])
            .unwrap();
        disk.durable[sb_sector(bad) + 300] ^= 0xFF;
        let (mut s, r, sink) = load(&mut disk).unwrap();
        assert_eq!(sink.map.len(), 1);
        assert_eq!(r.copies[bad], CopyStatus::Corrupt);
        assert_eq!(r.copies[1 - bad], CopyStatus::Current);
        assert_eq!(r.chosen, 1 - bad);
        assert_eq!(r.bad_copies(), 1);
        assert_eq!(s.repair(&mut disk, &mut block()), Ok(1));
        let (mut s, r, sink) = load(&mut disk).unwrap();
        assert_eq!(r.copies, [CopyStatus::Current; 2]);
        assert_eq!(sink.map.len(), 1);
        assert_eq!(s.repair(&mut disk, &mut block()), Ok(0));
    }
}

#[test]
fn unreadable_copy_is_reported() {
    let (mut disk, _) = fresh(small());
    disk.fail_reads.push(Layout::superblock_sector(0).unwrap());
    let (mut s, r, _) = load(&mut disk).unwrap();
    assert_eq!(r.copies, [CopyStatus::Unreadable, CopyStatus::Current]);
    disk.fail_reads.clear();
    assert_eq!(s.repair(&mut disk, &mut block()), Ok(1));
    assert_eq!(load(&mut disk).unwrap().1.bad_copies(), 0);
}

#[test]
fn misplaced_copy_is_corrupt() {
    let (mut disk, _) = fresh(small());
    let (a, b) = (sb_sector(0), sb_sector(1));
    let copy1 = disk.durable[b..b + 4096].to_vec();
    disk.durable[a..a + 4096].copy_from_slice(&copy1);
    let (_, r, _) = load(&mut disk).unwrap();
    assert_eq!(r.copies, [CopyStatus::Corrupt, CopyStatus::Current]);
}

#[test]
fn all_copies_bad_is_an_error_and_load_writes_nothing() {
    let (mut disk, mut store) = fresh(small());
    store
        .commit(&mut disk, &mut block(), &[record(1, 2, 3)])
        .unwrap();
    disk.durable[sb_sector(0) + 10] ^= 1;
    disk.durable[sb_sector(1) + 4000] ^= 1;
    let before = disk.clone();
    assert_eq!(load(&mut disk).err(), Some(Error::SuperblockCorrupt));
    assert_eq!(disk.durable, before.durable);
    assert_eq!(
        (disk.writes, disk.ops, disk.pending()),
        (before.writes, before.ops, 0)
    );

    disk.fail_reads = vec![0, 64];
    assert_eq!(load(&mut disk).err(), Some(Error::ReadFailed));
    assert_eq!(disk.durable, before.durable);
}

#[test]
fn blank_foreign_and_other_setups_are_distinct() {
    let layout = small();
    let mut disk = disk_for(&layout);
    assert_eq!(load(&mut disk).err(), Some(Error::Blank));

    let mut rng = Rng(5);
    let mut foreign = disk.clone();
    for b in foreign.durable.iter_mut().take(64 * 1024) {
        *b = rng.next() as u8;
    }
    let snapshot = foreign.durable.clone();
    assert_eq!(load(&mut foreign).err(), Some(Error::Foreign));
    assert_eq!(foreign.durable, snapshot);

    let (mut ours, _) = fresh(layout);
    let snapshot = ours.durable.clone();
    let mut sink = MapSink::default();
    let mut other_uuid = ANY;
    other_uuid.uuid = Some(*b"another-setup-id");
    assert_eq!(
        Store::load(&mut ours, &mut block(), &other_uuid, 1, &mut sink).err(),
        Some(Error::OtherSetup)
    );
    let mut other_main = ANY;
    let mut m = main_identity();
    m.id[0] = b'X';
    other_main.main = Some(m);
    assert_eq!(
        Store::load(&mut ours, &mut block(), &other_main, 1, &mut sink).err(),
        Some(Error::MainIdMismatch)
    );
    let mut other_member = ANY;
    other_member.member_index = Some(1);
    assert_eq!(
        Store::load(&mut ours, &mut block(), &other_member, 1, &mut sink).err(),
        Some(Error::MemberMismatch)
    );
    assert_eq!(ours.durable, snapshot, "a refused region is never written");
    let exact = Expect {
        uuid: Some(UUID),
        main: Some(main_identity()),
        member_index: Some(0),
    };
    assert!(Store::load(&mut ours, &mut block(), &exact, 1, &mut sink).is_ok());
}

#[test]
fn forward_compatibility() {
    let (mut disk, mut store) = fresh(small());
    store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1)])
        .unwrap();
    // Unknown compatible bit: ignored, loads, and survives a checkpoint.
    edit_superblocks(&mut disk, |sb| sb.compat |= 1 << 17);
    let (mut s, _, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.len(), 1);
    s.checkpoint(&mut disk, &mut block(), sink.map.values().copied())
        .unwrap();
    let (s, _, _) = load(&mut disk).unwrap();
    assert_eq!(s.superblock().compat, 1 << 17);
    // Unknown incompatible bit, even on one copy: refused.
    let mut one = disk.clone();
    let at = sb_sector(1);
    let blk: &mut [u8; 4096] = (&mut one.durable[at..at + 4096]).try_into().unwrap();
    let mut sb = Superblock::decode(blk).unwrap();
    sb.incompat |= 1 << 3;
    sb.encode(blk);
    let snapshot = one.durable.clone();
    assert_eq!(load(&mut one).err(), Some(Error::IncompatFeatures));
    assert_eq!(one.durable, snapshot);
    // Unknown format version.
    edit_superblocks(&mut disk, |sb| sb.version = FORMAT_VERSION + 1);
    assert_eq!(load(&mut disk).err(), Some(Error::UnsupportedVersion));
}

#[test]
fn inconsistent_superblock_fields_are_refused() {
    let cases: [fn(&mut Superblock); 5] = [
        |sb| sb.region_sectors += 8,
        |sb| sb.pool_start = 0,
        |sb| sb.member_index = sb.member_count,
        |sb| sb.active_area = 2,
        |sb| sb.checkpoint_entries = sb.capacity + 1,
    ];
    for f in cases {
        let (mut disk, _) = fresh(small());
        edit_superblocks(&mut disk, f);
        assert_eq!(load(&mut disk).err(), Some(Error::SuperblockInvalid));
    }
}

#[test]
fn damaged_checkpoint_is_refused() {
    let layout = small();
    let (mut disk, mut store) = fresh(layout);
    let table: Vec<Record> = (0..200).map(|i| record(i, i, 1)).collect();
    store.checkpoint(&mut disk, &mut block(), table).unwrap();
    let area = store.superblock().active_area;
    let at = usize::try_from(layout.checkpoint_sector(area, 1).unwrap()).unwrap() * SECTOR_SIZE;
    disk.durable[at + 1000] ^= 4;
    assert_eq!(load(&mut disk).err(), Some(Error::CheckpointCorrupt));
}

#[test]
fn checksummed_but_impossible_record_is_refused() {
    let layout = small();
    let (mut disk, mut store) = fresh(layout);
    store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1)])
        .unwrap();
    // Forge a journal block with a valid checksum whose record names spare 7 of 2.
    let at = usize::try_from(layout.journal_sector(0).unwrap()).unwrap() * SECTOR_SIZE;
    let blk: &mut [u8; 4096] = (&mut disk.durable[at..at + 4096]).try_into().unwrap();
    let mut h = journal::JournalHeader::decode(blk).unwrap();
    blk[64 + 24] = 7;
    // Without a matching commit checksum the commit is merely incomplete (a torn tail)...
    h.encode(blk);
    let (_, r, sink) = load(&mut disk).unwrap();
    assert_eq!((r.journal_commits, sink.map.len()), (0, 0));
    // ...with one, the record itself is refused.
    let blk: &mut [u8; 4096] = (&mut disk.durable[at..at + 4096]).try_into().unwrap();
    let mut fields = Vec::new();
    for v in [h.nonce, h.seq, h.salt] {
        fields.extend_from_slice(&v.to_le_bytes());
    }
    for v in [h.prev_chain, h.block_count, h.total_records] {
        fields.extend_from_slice(&v.to_le_bytes());
    }
    fields.extend_from_slice(&blk[64..96]);
    h.commit_crc = dm_remap_v4_metadata::crc32c::crc32c(&fields);
    h.encode(blk);
    assert_eq!(load(&mut disk).err(), Some(Error::RecordInvalid));
}

#[test]
fn old_journal_generation_is_not_replayed() {
    let (mut disk, mut store) = fresh(small());
    let recs: Vec<Record> = (0..5).map(|i| record(i, i, 1)).collect();
    for r in &recs {
        store.commit(&mut disk, &mut block(), &[*r]).unwrap();
    }
    // The checkpoint deliberately drops entry 4: its stale journal record must not come back.
    store
        .checkpoint(&mut disk, &mut block(), recs[..4].iter().copied())
        .unwrap();
    let (mut s, r, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.len(), 4);
    assert_eq!(r.journal_commits, 0);
    // Same sequence numbers again would follow on from the checkpoint; the nonce keeps them apart.
    s.commit(&mut disk, &mut block(), &[record(100, 1, 1)])
        .unwrap();
    let (_, r, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.len(), 5);
    assert!(sink.map.contains_key(&100) && !sink.map.contains_key(&4));
    assert_eq!(r.journal_commits, 1);
}

#[test]
fn poisoned_after_write_failure() {
    let (mut disk, mut store) = fresh(small());
    disk.budget = Some(disk.ops);
    assert_eq!(
        store.commit(&mut disk, &mut block(), &[record(1, 1, 1)]),
        Err(Error::WriteFailed)
    );
    assert!(store.is_poisoned());
    disk.budget = None;
    assert_eq!(
        store.commit(&mut disk, &mut block(), &[record(1, 1, 1)]),
        Err(Error::Poisoned)
    );
    assert_eq!(store.repair(&mut disk, &mut block()), Err(Error::Poisoned));
}

#[test]
fn sink_errors_stop_the_load() {
    struct Full(usize);
    impl dm_remap_v4_metadata::RecordSink for Full {
        fn apply(&mut self, _: &Record) -> Result<(), Error> {
            self.0 = self.0.checked_sub(1).ok_or(Error::TableFull)?;
            Ok(())
        }
    }
    let (mut disk, mut store) = fresh(small());
    store
        .commit(&mut disk, &mut block(), &[record(1, 1, 1), record(2, 2, 2)])
        .unwrap();
    let got = Store::load(&mut disk, &mut block(), &ANY, 1, &mut Full(1));
    assert_eq!(got.err(), Some(Error::TableFull));
}

#[test]
fn load_reads_each_block_about_once() {
    let layout = Layout::new(2000, 64).unwrap();
    let (mut disk, mut store) = fresh(layout);
    let table: Vec<Record> = (0..2000).map(|i| record(i, i, 1)).collect();
    store.checkpoint(&mut disk, &mut block(), table).unwrap();
    for i in 0..20 {
        store
            .commit(&mut disk, &mut block(), &[record(i, i, 2)])
            .unwrap();
    }
    disk.reads = 0;
    load(&mut disk).unwrap();
    // 2 superblocks + 16 checkpoint blocks + 20 journal blocks + the block that ends the journal.
    assert_eq!(disk.reads, 2 + 16 + 20 + 1);
}

#[test]
fn sectors_written_stay_inside_the_region() {
    // CrashDisk holds only the region and panics on anything outside it.
    let layout = Layout::new(127, 2).unwrap();
    let (mut disk, mut store) = fresh(layout);
    for _ in 0..3 {
        store
            .commit(&mut disk, &mut block(), &vec![record(1, 1, 1); 252])
            .unwrap();
        store
            .checkpoint(&mut disk, &mut block(), (0..127).map(|i| record(i, i, 1)))
            .unwrap();
    }
    assert_eq!(load(&mut disk).unwrap().2.map.len(), 127);
    let _ = disk.read(0, &mut block());
}

#[test]
fn reformat_never_resurrects_old_remaps() {
    let (mut disk, mut store) = fresh(small());
    for i in 0..3 {
        store
            .commit(&mut disk, &mut block(), &[record(i, i, 1)])
            .unwrap();
    }
    // Same layout, new session salt: the old journal is still on disk at the same offsets.
    Store::format(&mut disk, &mut block(), &params(small()), 8).unwrap();
    let (_, r, sink) = load(&mut disk).unwrap();
    assert!(sink.map.is_empty());
    assert_eq!(r.journal_commits, 0);
}

#[test]
fn commit_following_a_different_predecessor_is_not_replayed() {
    let layout = small();
    let (mut disk, store) = fresh(layout);
    let nonce = store.superblock().journal_nonce;
    let start = journal::Position {
        block: 0,
        seq: 1,
        chain: 0,
    };
    let mut blk = [0u8; 4096];
    // Two pipelined commits of one session; then a later session rewrites the first one differently.
    let after_a = journal::write_commit(
        &mut disk,
        &mut blk,
        &layout,
        &start,
        nonce,
        1,
        &[record(1, 1, 1)],
    )
    .unwrap();
    journal::write_commit(
        &mut disk,
        &mut blk,
        &layout,
        &after_a,
        nonce,
        1,
        &[record(2, 2, 2)],
    )
    .unwrap();
    journal::write_commit(
        &mut disk,
        &mut blk,
        &layout,
        &start,
        nonce,
        2,
        &[record(3, 3, 3)],
    )
    .unwrap();
    let (_, r, sink) = load(&mut disk).unwrap();
    assert_eq!(sink.map.keys().copied().collect::<Vec<_>>(), vec![3]);
    assert_eq!(r.journal_commits, 1);
}
