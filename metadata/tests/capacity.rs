//! A region sized for 1,000,000 entries holds and reloads them (checkpoint + journal), in linear time.

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
use dm_remap_v4_metadata::{EntryState, Error, Expect, Layout, Record, RecordSink, Store};

/// Dense table indexed by main unit, as a kernel might keep it.
struct Dense {
    spare_unit: Vec<u64>,
    live: u64,
    applied: u64,
}

impl RecordSink for Dense {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        let slot = self
            .spare_unit
            .get_mut(usize::try_from(rec.main_unit).unwrap())
            .ok_or(Error::TableFull)?;
        if *slot == u64::MAX {
            self.live += 1;
        }
        *slot = rec.spare_unit;
        self.applied += 1;
        Ok(())
    }
}

fn entry(i: u64, generation: u64) -> Record {
    Record {
        main_unit: i,
        spare_index: u32::try_from(i % 2).unwrap(),
        spare_unit: i * 3 + generation,
        state: EntryState::Active,
        timestamp: 1_700_000_000 + i,
    }
}

#[test]
fn one_million_entries() {
    const N: u64 = 1_000_000;
    let layout = Layout::for_capacity(N).unwrap();
    let mut disk = disk_for(&layout);
    let mut buf = block();
    let mut store = Store::format(&mut disk, &mut buf, &params(layout), 1).unwrap();
    store
        .checkpoint(&mut disk, &mut buf, (0..N).map(|i| entry(i, 0)))
        .unwrap();
    // Then 100,800 journal records in 800 commits, rewriting the first entries.
    let batch: Vec<Record> = (0..126).map(|i| entry(i, 1)).collect();
    for c in 0..800u64 {
        let moved: Vec<Record> = batch
            .iter()
            .map(|r| entry(r.main_unit + c * 126, 1))
            .collect();
        store.commit(&mut disk, &mut buf, &moved).unwrap();
    }
    disk.reads = 0;
    let mut sink = Dense {
        spare_unit: vec![u64::MAX; usize::try_from(N).unwrap()],
        live: 0,
        applied: 0,
    };
    let any = Expect {
        uuid: None,
        main: None,
        member_index: None,
    };
    let (_, report) = Store::load(&mut disk, &mut buf, &any, 2, &mut sink).unwrap();
    assert_eq!(sink.live, N);
    assert_eq!(sink.applied, N + 800 * 126);
    assert_eq!(report.checkpoint_entries, N);
    assert_eq!(
        (report.journal_commits, report.journal_records),
        (800, 800 * 126)
    );
    assert_eq!(sink.spare_unit[5], 16);
    assert_eq!(sink.spare_unit[800 * 126], 800 * 126 * 3);
    // Linear: every block read once, plus the two superblocks and the block that ends the journal.
    assert_eq!(disk.reads, 2 + 7875 + 800 + 1);
    // Capacity is a hard limit.
    assert_eq!(
        store.checkpoint(&mut disk, &mut buf, (0..=N).map(|i| entry(i, 0))),
        Err(Error::TableFull)
    );
}
