//! Crash consistency against a disk with a volatile write cache.
//!
//! The power fails before every single write or flush the protocol issues; each unflushed write is then
//! lost, kept, or torn per sector. Recovery must load exactly the acknowledged state, or that state plus
//! the one operation in flight, and the store must keep working afterwards.

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
use dm_remap_v4_metadata::{Error, Layout, Record, Store};
use proptest::prelude::*;

type Table = BTreeMap<u64, Record>;

#[derive(Clone, Debug)]
enum Op {
    Commit(Vec<Record>),
    Checkpoint,
}

/// How a session ended.
#[derive(Debug)]
enum End {
    /// Every operation was acknowledged.
    Clean,
    /// An operation failed: the state it would have produced, if it was a commit.
    Failed(Option<Table>),
}

/// Runs `ops` like the kernel would: a commit that finds the journal full is folded into a checkpoint.
fn run(disk: &mut CrashDisk, store: &mut Store, ops: &[Op], table: &mut Table) -> End {
    let mut buf = block();
    for op in ops {
        match op {
            Op::Commit(recs) => {
                let mut next = table.clone();
                apply_all(&mut next, recs);
                let done = match store.commit(disk, &mut buf, recs) {
                    Err(Error::JournalFull) => {
                        store.checkpoint(disk, &mut buf, next.values().copied())
                    }
                    other => other.map(|_| ()),
                };
                match done {
                    Ok(()) => *table = next,
                    Err(_) => return End::Failed(Some(next)),
                }
            }
            Op::Checkpoint => {
                if store
                    .checkpoint(disk, &mut buf, table.values().copied())
                    .is_err()
                {
                    return End::Failed(None);
                }
            }
        }
    }
    End::Clean
}

/// Loads after a crash and checks the result against what was acknowledged.
fn recover(
    disk: &mut CrashDisk,
    acked: &Table,
    inflight: Option<&Table>,
    salt: u64,
) -> (Store, Table) {
    let mut sink = MapSink::default();
    let (store, report) = Store::load(disk, &mut block(), &ANY, salt, &mut sink)
        .unwrap_or_else(|e| panic!("recovery failed: {e:?}"));
    assert!(
        sink.map == *acked || Some(&sink.map) == inflight,
        "recovered state is neither the acknowledged one nor the in-flight one (report {report:?})"
    );
    (store, sink.map)
}

fn script(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    let mut t = 0;
    (0..len)
        .map(|_| {
            let n = match rng.below(8) {
                0 => return Op::Checkpoint,
                1 => 127 + rng.below(200),
                _ => 1 + rng.below(4),
            };
            Op::Commit(random_records(&mut rng, n as usize, &mut t))
        })
        .collect()
}

fn formatted(layout: Layout) -> (CrashDisk, Store) {
    let mut disk = disk_for(&layout);
    let store = Store::format(&mut disk, &mut block(), &params(layout), 11).unwrap();
    (disk, store)
}

#[test]
fn crash_before_every_write_and_flush() {
    // A 6-block journal makes the script run through several journal-full checkpoints.
    let layout = Layout::new(300, 6).unwrap();
    let (disk0, store0) = formatted(layout);
    let ops = script(42, 40);
    let after = script(43, 6);

    let mut dry = disk0.clone();
    let mut table = Table::new();
    assert!(matches!(
        run(&mut dry, &mut store0.clone(), &ops, &mut table),
        End::Clean
    ));
    let steps = dry.ops - disk0.ops;
    assert!(steps > 70, "script too short: {steps} steps");

    let mut crashes = 0;
    let mut rng = Rng(7);
    for step in 0..steps {
        for trial in 0..8 {
            let mut disk = disk0.clone();
            let mut store = store0;
            let mut acked = Table::new();
            disk.budget = Some(disk0.ops + step);
            let End::Failed(inflight) = run(&mut disk, &mut store, &ops, &mut acked) else {
                panic!("step {step}: no failure");
            };
            match trial {
                0 => disk.crash_with(|_| Fate::Lost, &mut rng),
                1 => disk.crash_with(|_| Fate::Kept, &mut rng),
                2 => disk.crash_with(|_| Fate::Torn, &mut rng),
                3 => disk.crash_with(|_| Fate::Garbled, &mut rng),
                _ => disk.crash(&mut rng),
            }
            crashes += 1;
            let (mut store, mut table) =
                recover(&mut disk, &acked, inflight.as_ref(), 1000 + step as u64);
            // The recovered store keeps working, and nothing from before the crash leaks in later.
            let mut expect = table.clone();
            assert!(matches!(
                run(&mut disk, &mut store, &after, &mut table),
                End::Clean
            ));
            for op in &after {
                if let Op::Commit(r) = op {
                    apply_all(&mut expect, r);
                }
            }
            assert_eq!(table, expect);
            recover(&mut disk, &table, None, 5);
        }
    }
    assert_eq!(crashes, steps * 8);
}

/// Two attempts at the same commit position, each torn differently, must not combine into one.
#[test]
fn torn_attempts_from_two_sessions_never_mix() {
    let layout = Layout::new(300, 16).unwrap();
    let (mut disk, mut store) = formatted(layout);
    let base = [record(1, 1, 1)];
    store.commit(&mut disk, &mut block(), &base).unwrap();
    let mut acked = Table::new();
    apply_all(&mut acked, &base);
    let mut rng = Rng(3);

    for same_records in [false, true] {
        let mut d = disk.clone();
        let mut s = store;
        let first: Vec<Record> = (0..200).map(|i| record(i, i, 10)).collect();
        // Session 1: both blocks written, power fails at the flush; block 0 lost, block 1 kept.
        d.budget = Some(d.ops + 2);
        assert!(s.commit(&mut d, &mut block(), &first).is_err());
        let w0 = d.writes - 1;
        d.crash_with(|w| if w == w0 { Fate::Lost } else { Fate::Kept }, &mut rng);
        let (mut s, _) = recover(&mut d, &acked, None, 2);
        // Session 2: the same position again; now block 0 kept and block 1 lost.
        let second: Vec<Record> = if same_records {
            first.clone()
        } else {
            (0..200).map(|i| record(i, i + 1, 20)).collect()
        };
        d.budget = Some(d.ops + 2);
        assert!(s.commit(&mut d, &mut block(), &second).is_err());
        let w0 = d.writes - 1;
        d.crash_with(|w| if w == w0 { Fate::Kept } else { Fate::Lost }, &mut rng);
        recover(&mut d, &acked, None, 3);
    }
}

#[test]
fn crash_between_superblock_copies_leaves_a_stale_copy() {
    let layout = Layout::new(300, 16).unwrap();
    let (mut disk, mut store) = formatted(layout);
    let recs = [record(1, 1, 1), record(2, 2, 2)];
    store.commit(&mut disk, &mut block(), &recs).unwrap();
    let mut table = Table::new();
    apply_all(&mut table, &recs);
    // Checkpoint = 1 block write + flush + 2 superblock FUA writes: lose the second superblock write.
    disk.budget = Some(disk.ops + 3);
    assert!(store
        .checkpoint(&mut disk, &mut block(), table.values().copied())
        .is_err());
    disk.crash_with(|_| Fate::Lost, &mut Rng(1));
    let mut sink = MapSink::default();
    let (mut s, r) = Store::load(&mut disk, &mut block(), &ANY, 4, &mut sink).unwrap();
    assert_eq!(sink.map, table);
    assert_eq!(r.chosen, 0);
    assert_eq!(r.copies[1], dm_remap_v4_metadata::CopyStatus::Stale);
    // New commits overwrite the stale copy's journal generation, so the stale copy is now useless...
    let more = [record(3, 3, 3)];
    s.commit(&mut disk, &mut block(), &more).unwrap();
    apply_all(&mut table, &more);
    // ...and the next checkpoint must overwrite it before the current copy: crash at either write.
    let mut rng = Rng(9);
    for step in [2, 3] {
        for fate in [
            Fate::Lost,
            Fate::Kept,
            Fate::Torn,
            Fate::Torn,
            Fate::Garbled,
        ] {
            let mut d = disk.clone();
            let mut s2 = s;
            d.budget = Some(d.ops + step);
            assert!(s2
                .checkpoint(&mut d, &mut block(), table.values().copied())
                .is_err());
            d.crash_with(|_| fate, &mut rng);
            recover(&mut d, &table, None, 6);
        }
    }
    // Or repair it.
    assert_eq!(s.repair(&mut disk, &mut block()), Ok(1));
    let mut sink = MapSink::default();
    let (_, r) = Store::load(&mut disk, &mut block(), &ANY, 4, &mut sink).unwrap();
    assert_eq!(r.bad_copies(), 0);
    assert_eq!(sink.map, table);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Random scripts, several sessions in a row, each ending in a crash at a random step.
    #[test]
    fn random_sessions_with_crashes(seed: u64, journal in 2u64..12, sessions in 1usize..4, cut in proptest::collection::vec(0usize..80, 3)) {
        let layout = Layout::new(300, journal).unwrap();
        let (mut disk, mut store) = formatted(layout);
        let mut rng = Rng(seed);
        let mut table = Table::new();
        for (i, &at) in cut.iter().take(sessions).enumerate() {
            let ops = script(seed.wrapping_add(i as u64), 25);
            disk.budget = Some(disk.ops + at);
            let mut acked = table.clone();
            let inflight = match run(&mut disk, &mut store, &ops, &mut acked) {
                End::Clean => None,
                End::Failed(t) => t,
            };
            disk.crash(&mut rng);
            let (s, t) = recover(&mut disk, &acked, inflight.as_ref(), rng.next());
            store = s;
            table = t;
        }
        let mut sink = MapSink::default();
        Store::load(&mut disk, &mut block(), &ANY, 0, &mut sink).unwrap();
        prop_assert_eq!(sink.map, table);
    }
}
