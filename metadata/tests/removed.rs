//! The removed-members mask (superblock offset 68): recorded by resync, kept by checkpoints, only ever
//! growing, and refusing every record that names a removed member, on disk or on its way there.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use dm_remap_v4_metadata::layout::SECTOR_SIZE;
use dm_remap_v4_metadata::{
    format_layout, open_region, EntryState, Error, Layout, OpenParams, Record, Store, Superblock,
    OPEN_ANY_MEMBER, OPEN_FORMAT_IF_BLANK,
};

type Table = BTreeMap<u64, Record>;

/// Members of the setups below; member 1 is the one drained and removed.
const MEMBERS: u32 = 3;
const REMOVED: u32 = 1 << 1;

fn layout() -> Layout {
    Layout::new(300, 16).unwrap()
}

/// A region of member `index` of a three-spare setup.
fn fresh_member(layout: Layout, index: u32) -> (CrashDisk, Store) {
    let mut disk = disk_for(&layout);
    let p = dm_remap_v4_metadata::FormatParams {
        member_index: index,
        member_count: MEMBERS,
        ..params(layout)
    };
    let store = Store::format(&mut disk, &mut block(), &p, 7).unwrap();
    (disk, store)
}

fn on(main_unit: u64, spare_index: u32, t: u64) -> Record {
    Record {
        main_unit,
        spare_index,
        spare_unit: main_unit,
        state: EntryState::Active,
        timestamp: t,
    }
}

/// A table with units on every member, and the same table once member 1 is drained (its units moved to
/// members 0 and 2).
fn tables() -> (Table, Table) {
    let mut before = Table::new();
    for u in 0..30 {
        let r = on(u, u32::try_from(u % 3).unwrap(), 1);
        before.insert(u, r);
    }
    let mut after = before.clone();
    for r in after.values_mut().filter(|r| r.spare_index == 1) {
        r.spare_index = if r.main_unit % 2 == 0 { 0 } else { 2 };
        r.spare_unit += 1000;
        r.timestamp = 2;
    }
    (before, after)
}

/// Records in `store` that member 1 was removed, with `after` as the whole table, under sequence 0.
fn remove_member_1(disk: &mut CrashDisk, store: &mut Store, after: &Table) -> Result<(), Error> {
    store.resync(
        disk,
        &mut block(),
        0,
        MEMBERS,
        REMOVED,
        after.values().copied(),
    )
}

fn load(disk: &mut CrashDisk) -> Result<(Store, Table), Error> {
    let mut sink = MapSink::default();
    let (s, _) = Store::load(disk, &mut block(), &ANY, 99, &mut sink)?;
    Ok((s, sink.map))
}

/// Rewrites every superblock copy through `f`, with valid checksums.
fn edit_superblocks(disk: &mut CrashDisk, f: impl Fn(&mut Superblock)) {
    for copy in 0..2 {
        let at = usize::try_from(Layout::superblock_sector(copy).unwrap()).unwrap() * SECTOR_SIZE;
        let blk: &mut [u8; 4096] = (&mut disk.durable[at..at + 4096]).try_into().unwrap();
        let mut sb = Superblock::decode(blk).unwrap();
        f(&mut sb);
        sb.encode(blk);
    }
}

/// Open parameters that load (never format) any member of the test setup.
fn open_params(layout: Layout) -> OpenParams {
    let p = params(layout);
    OpenParams {
        main_sectors: p.main.sectors,
        spare_sectors: p.spare_sectors,
        unit_sectors: p.unit_sectors,
        capacity: layout.capacity,
        main_logical_block_size: p.main.logical_block_size,
        member_index: 0,
        member_count: MEMBERS,
        flags: OPEN_ANY_MEMBER,
        new_uuid: UUID,
        expect_uuid: [0; 16],
        main_id: p.main.id,
    }
}

#[test]
fn the_mask_round_trips_through_resync_reload_and_open() {
    let layout = layout();
    let (before, after) = tables();
    for index in 0..MEMBERS {
        let (mut disk, mut store) = fresh_member(layout, index);
        assert_eq!(store.removed_members(), 0, "a new region removes nobody");
        store
            .checkpoint(&mut disk, &mut block(), before.values().copied())
            .unwrap();
        // Every member records the removal, the removed one included (its own bit set).
        store
            .resync(
                &mut disk,
                &mut block(),
                store.last_seq(),
                MEMBERS,
                REMOVED,
                after.values().copied(),
            )
            .unwrap();
        assert_eq!(store.removed_members(), REMOVED);
        assert_eq!(store.superblock().removed_members, REMOVED);
        let (loaded, table) = load(&mut disk).unwrap();
        assert_eq!(loaded.removed_members(), REMOVED);
        assert!(loaded.superblock().is_removed(1));
        assert!(!loaded.superblock().is_removed(0) && !loaded.superblock().is_removed(2));
        assert_eq!(table, after);
        let (_, report) = open_region(
            &mut disk,
            &mut block(),
            &open_params(layout),
            5,
            &mut MapSink::default(),
        )
        .unwrap();
        assert_eq!(
            (report.member_index, report.removed_members),
            (index, REMOVED)
        );
        // The same mask again, or a larger one, is fine; the superblock bytes hold it at offset 68.
        store
            .resync(
                &mut disk,
                &mut block(),
                store.last_seq(),
                MEMBERS,
                REMOVED,
                after.values().copied(),
            )
            .unwrap();
        let at = usize::try_from(Layout::superblock_sector(0).unwrap()).unwrap() * SECTOR_SIZE;
        assert_eq!(
            u32::from_le_bytes(disk.durable[at + 68..at + 72].try_into().unwrap()),
            REMOVED
        );
    }
}

#[test]
fn a_formatted_region_reports_no_removed_members() {
    let layout = layout();
    let mut p = open_params(layout);
    p.flags = OPEN_FORMAT_IF_BLANK;
    let sectors = format_layout(&p).unwrap().region_sectors;
    let mut disk = CrashDisk::new(sectors);
    let (store, report) =
        open_region(&mut disk, &mut block(), &p, 5, &mut MapSink::default()).unwrap();
    assert_eq!((report.formatted, report.removed_members), (1, 0));
    assert_eq!(store.removed_members(), 0);
}

#[test]
fn resync_never_clears_a_bit_nor_names_a_non_member_and_writes_nothing_when_refused() {
    let layout = layout();
    let (_, after) = tables();
    let (mut disk, mut store) = fresh_member(layout, 0);
    remove_member_1(&mut disk, &mut store, &after).unwrap();
    let seq = store.last_seq();
    let before = disk.clone();
    let refused: [(u32, u32, &str); 5] = [
        (MEMBERS, 0, "clearing the removed bit"),
        (MEMBERS, 1 << 2, "swapping the removed member for another"),
        (MEMBERS, REMOVED | 1 << 3, "a bit at member_count"),
        (MEMBERS, REMOVED | 1 << 31, "the top bit"),
        (
            MEMBERS + 1,
            REMOVED | 1 << 5,
            "a bit above a grown member_count",
        ),
    ];
    for (count, mask, why) in refused {
        assert_eq!(
            store.resync(
                &mut disk,
                &mut block(),
                seq,
                count,
                mask,
                after.values().copied()
            ),
            Err(Error::BadGeometry),
            "{why}"
        );
        assert_eq!(disk.durable, before.durable, "{why}: the region changed");
        assert_eq!(
            (disk.pending(), disk.writes),
            (0, before.writes),
            "{why}: something was written"
        );
        assert_eq!(store.removed_members(), REMOVED);
    }
    // Growing the setup and removing another member at once is allowed, as is removing every member.
    store
        .resync(
            &mut disk,
            &mut block(),
            seq,
            MEMBERS + 1,
            REMOVED | 1 << 3,
            [on(1, 0, 3)],
        )
        .unwrap();
    store
        .resync(&mut disk, &mut block(), seq, MEMBERS + 1, 0b1111, [])
        .unwrap();
    let (loaded, table) = load(&mut disk).unwrap();
    assert_eq!(loaded.removed_members(), 0b1111);
    assert!(table.is_empty());
}

#[test]
fn records_naming_a_removed_member_are_refused() {
    let layout = layout();
    let (before, after) = tables();
    let (mut disk, mut store) = fresh_member(layout, 0);
    // A removal whose table still names the member is refused, and the old state stays.
    assert_eq!(
        store.resync(
            &mut disk,
            &mut block(),
            0,
            MEMBERS,
            REMOVED,
            before.values().copied()
        ),
        Err(Error::BadRecord)
    );
    assert_eq!(store.removed_members(), 0);
    assert_eq!(load(&mut disk).unwrap().0.removed_members(), 0);
    remove_member_1(&mut disk, &mut store, &after).unwrap();
    // Neither a commit nor a checkpoint may name the removed member again.
    let snapshot = disk.clone();
    assert_eq!(
        store.commit(&mut disk, &mut block(), &[on(40, 1, 3)]),
        Err(Error::BadRecord)
    );
    assert_eq!(
        (disk.durable == snapshot.durable, disk.writes),
        (true, snapshot.writes)
    );
    let mut named = after.clone();
    named.insert(40, on(40, 1, 3));
    assert_eq!(
        store.checkpoint(&mut disk, &mut block(), named.values().copied()),
        Err(Error::BadRecord)
    );
    // Pending and cleared records name no spare (the core writes index 0 in them): the index of a removed
    // member is no reason to refuse them.
    let pending = Record {
        state: EntryState::PendingReadFailure,
        spare_unit: 0,
        ..on(41, 1, 0)
    };
    assert!(store.commit(&mut disk, &mut block(), &[pending]).is_ok());
    let clear = Record {
        state: EntryState::Cleared,
        ..pending
    };
    assert!(store.commit(&mut disk, &mut block(), &[clear]).is_ok());
    assert!(store
        .commit(&mut disk, &mut block(), &[on(40, 2, 3)])
        .is_ok());
    let (_, table) = load(&mut disk).unwrap();
    assert_eq!(table.get(&40), Some(&on(40, 2, 3)));
    assert_eq!(table.get(&41), None);
}

#[test]
fn a_record_naming_a_removed_member_on_disk_makes_the_load_fail() {
    let layout = layout();
    let (before, _) = tables();
    // In the checkpoint.
    let (mut disk, mut store) = fresh_member(layout, 0);
    store
        .checkpoint(&mut disk, &mut block(), before.values().copied())
        .unwrap();
    assert!(load(&mut disk).is_ok());
    edit_superblocks(&mut disk, |sb| sb.removed_members = REMOVED);
    assert_eq!(load(&mut disk).err(), Some(Error::RecordInvalid));
    // In the journal.
    let (mut disk, mut store) = fresh_member(layout, 0);
    store
        .commit(&mut disk, &mut block(), &[on(1, 0, 1), on(2, 1, 1)])
        .unwrap();
    edit_superblocks(&mut disk, |sb| sb.removed_members = 1 << 2);
    assert_eq!(
        load(&mut disk).unwrap().1.len(),
        2,
        "member 2 is named by no record"
    );
    edit_superblocks(&mut disk, |sb| sb.removed_members = REMOVED);
    assert_eq!(load(&mut disk).err(), Some(Error::RecordInvalid));
}

#[test]
fn a_mask_naming_a_non_member_is_an_invalid_superblock() {
    let layout = layout();
    let (mut disk, _) = fresh_member(layout, 0);
    for mask in [1 << MEMBERS, 1 << 31, u32::MAX] {
        let mut d = disk.clone();
        edit_superblocks(&mut d, |sb| sb.removed_members = mask);
        assert_eq!(
            load(&mut d).err(),
            Some(Error::SuperblockInvalid),
            "{mask:#x}"
        );
    }
    // Every member's bit, this member's own included, is valid.
    edit_superblocks(&mut disk, |sb| sb.removed_members = 0b111);
    assert_eq!(load(&mut disk).unwrap().0.removed_members(), 0b111);
}

#[test]
fn a_checkpoint_of_a_full_journal_keeps_the_mask() {
    let layout = Layout::new(300, 4).unwrap();
    let (_, after) = tables();
    let (mut disk, mut store) = fresh_member(layout, 2);
    remove_member_1(&mut disk, &mut store, &after).unwrap();
    let mut table = after.clone();
    let mut checkpoints = 0;
    for i in 0..12 {
        let r = [on(100 + i, if i % 2 == 0 { 0 } else { 2 }, 5)];
        apply_all(&mut table, &r);
        match store.commit(&mut disk, &mut block(), &r) {
            Err(Error::JournalFull) => {
                store
                    .checkpoint(&mut disk, &mut block(), table.values().copied())
                    .unwrap();
                checkpoints += 1;
            }
            other => {
                other.unwrap();
            }
        }
        assert_eq!(store.removed_members(), REMOVED);
    }
    assert!(checkpoints >= 2, "{checkpoints} checkpoints");
    let (loaded, loaded_table) = load(&mut disk).unwrap();
    assert_eq!(loaded.removed_members(), REMOVED);
    assert_eq!(loaded_table, table);
    assert_eq!(loaded.superblock().member_count, MEMBERS);
}

/// The removal is one checkpoint: the power fails before every write and flush it issues, each unflushed
/// write then lost, kept, torn or garbled. Recovery finds either the old table with the old mask or the new
/// table with the new mask, never a mix, and the store keeps working with what it found.
#[test]
fn crash_at_every_step_of_a_removal() {
    let layout = layout();
    let (before, after) = tables();
    let (mut disk0, mut store0) = fresh_member(layout, 0);
    store0
        .commit(&mut disk0, &mut block(), &[on(50, 1, 1)])
        .unwrap();
    let mut old = before.clone();
    old.insert(50, on(50, 1, 1));
    store0
        .checkpoint(&mut disk0, &mut block(), old.values().copied())
        .unwrap();
    store0
        .commit(&mut disk0, &mut block(), &[on(51, 2, 1)])
        .unwrap();
    old.insert(51, on(51, 2, 1));
    let mut new = after.clone();
    new.insert(50, on(50, 0, 2));
    new.insert(51, on(51, 2, 1));
    let seq = store0.last_seq();
    let remove = |disk: &mut CrashDisk, store: &mut Store| {
        store.resync(
            disk,
            &mut block(),
            seq,
            MEMBERS,
            REMOVED,
            new.values().copied(),
        )
    };

    let mut dry = disk0.clone();
    remove(&mut dry, &mut store0.clone()).unwrap();
    let steps = dry.ops - disk0.ops;
    assert!(steps >= 4, "{steps} steps");

    let mut rng = Rng(17);
    let mut seen = [false; 2];
    for step in 0..steps {
        for trial in 0..8 {
            let mut disk = disk0.clone();
            let mut store = store0;
            disk.budget = Some(disk0.ops + step);
            assert!(remove(&mut disk, &mut store).is_err(), "step {step}");
            match trial {
                0 => disk.crash_with(|_| Fate::Lost, &mut rng),
                1 => disk.crash_with(|_| Fate::Kept, &mut rng),
                2 => disk.crash_with(|_| Fate::Torn, &mut rng),
                3 => disk.crash_with(|_| Fate::Garbled, &mut rng),
                _ => disk.crash(&mut rng),
            }
            let (mut s, table) =
                load(&mut disk).unwrap_or_else(|e| panic!("step {step}: recovery failed: {e:?}"));
            let removed = s.removed_members() == REMOVED;
            if removed {
                assert_eq!(table, new, "step {step}: the mask without its table");
            } else {
                assert_eq!(s.removed_members(), 0, "step {step}");
                assert_eq!(table, old, "step {step}: the table without its mask");
            }
            seen[usize::from(removed)] = true;
            assert_eq!(s.last_seq(), seq, "step {step}");
            // The removal is retried (or repeated) and the store goes on; the member stays removed.
            remove(&mut disk, &mut s).unwrap();
            assert_eq!(
                s.commit(&mut disk, &mut block(), &[on(60, 1, 9)]),
                Err(Error::BadRecord)
            );
            s.commit(&mut disk, &mut block(), &[on(60, 2, 9)]).unwrap();
            let (again, table) = load(&mut disk).unwrap();
            assert_eq!(again.removed_members(), REMOVED);
            let mut expect = new.clone();
            expect.insert(60, on(60, 2, 9));
            assert_eq!(table, expect, "step {step}");
        }
    }
    assert_eq!(seen, [true, true], "both outcomes occur");
}
