//! The checkpoint's view of the table against a model: every entry the batch does not touch is written with
//! the time it was made, the batch's records with theirs, cleared units dropped, in unit order.
#![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, BTreeSet};

use dm_remap_v4_target::snapshot::{BatchRecord, Overlay};
use proptest::prelude::*;

/// A record as the checkpoint writes it: unit, entry value, time made; `value == None` clears the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    unit: u64,
    value: Option<u64>,
    time: u32,
}

impl BatchRecord for Rec {
    fn unit(&self) -> u64 {
        self.unit
    }
    fn live(&self) -> bool {
        self.value.is_some()
    }
}

fn snapshot(table: &BTreeMap<u64, (u64, u32)>, batch: &[Rec]) -> Vec<Rec> {
    let entries = table.iter().map(|(&u, &(v, t))| (u, (v, t)));
    let mut overlay = Overlay::new(entries, batch);
    let mut out = Vec::new();
    while let Some(r) = overlay.next_record(
        |unit, (v, time)| Rec {
            unit,
            value: Some(v),
            time,
        },
        |u| table.contains_key(&u),
    ) {
        out.push(r);
    }
    out
}

proptest! {
    #[test]
    fn a_checkpoint_writes_each_entry_with_the_time_it_was_made(
        table in prop::collection::btree_map(0u64..400, (0u64..1 << 40, 1u32..2_000_000_000), 0..300),
        batch in prop::collection::btree_map(0u64..400, (prop::option::of(0u64..1 << 40), 2_000_000_000u32..), 0..60),
    ) {
        let batch: Vec<Rec> = batch
            .into_iter()
            .map(|(unit, (value, time))| Rec { unit, value, time })
            .collect();
        let mut want: BTreeMap<u64, (u64, u32)> = table.clone();
        for r in &batch {
            match r.value {
                Some(v) => { want.insert(r.unit, (v, r.time)); }
                None => { want.remove(&r.unit); }
            }
        }
        let got = snapshot(&table, &batch);
        // Each unit once.
        let units: BTreeSet<u64> = got.iter().map(|r| r.unit).collect();
        prop_assert_eq!(units.len(), got.len());
        let got: BTreeMap<u64, (u64, u32)> =
            got.iter().map(|r| (r.unit, (r.value.unwrap(), r.time))).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn untouched_entries_keep_their_time_and_the_batch_brings_its_own() {
    let table: BTreeMap<u64, (u64, u32)> = [(1, (10, 100)), (5, (50, 500)), (9, (90, 900))].into();
    let batch = [
        Rec {
            unit: 3,
            value: Some(30),
            time: 7_000,
        },
        Rec {
            unit: 5,
            value: Some(51),
            time: 7_000,
        },
        Rec {
            unit: 9,
            value: None,
            time: 7_000,
        },
    ];
    let got = snapshot(&table, &batch);
    let got: Vec<(u64, u32)> = got.iter().map(|r| (r.unit, r.time)).collect();
    assert_eq!(got, [(1, 100), (5, 7_000), (3, 7_000)]);
}
