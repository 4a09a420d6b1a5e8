//! Routing against a model: every sector of every bio lands on the right device and sector, pieces touching a
//! remapped or pending unit never leave it, and main pieces stop exactly at the next unit with an entry.
#![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use dm_remap_v4_target::route::{route_first, Dest, Entry, Geometry, RemapLookup};
use proptest::prelude::*;

struct Model(BTreeMap<u64, Entry>);

impl RemapLookup for Model {
    fn get(&self, unit: u64) -> Option<Entry> {
        self.0.get(&unit).copied()
    }
    fn next_entry(&self, first: u64, last: u64) -> Option<u64> {
        self.0.range(first..=last).next().map(|(&u, _)| u)
    }
}

fn spare_sector(unit_sectors: u32) -> impl Fn(u32, u64) -> Option<u64> {
    move |spare, unit| Some(1_000_000 * u64::from(spare + 1) + unit * u64::from(unit_sectors))
}

/// Where sector `x` (relative to the target) must go.
fn expected(model: &Model, unit_sectors: u32, x: u64, write: bool) -> Dest {
    let us = u64::from(unit_sectors);
    match model.get(x / us) {
        Some(Entry::Remapped { spare, unit }) => Dest::Spare {
            spare,
            sector: spare_sector(unit_sectors)(spare, unit).unwrap() + x % us,
        },
        Some(Entry::Pending) if write => Dest::Defer,
        _ => Dest::Main { sector: x },
    }
}

/// Advances a destination by `n` sectors (pieces are contiguous on their device).
fn advance(d: Dest, n: u64) -> Dest {
    match d {
        Dest::Main { sector } => Dest::Main { sector: sector + n },
        Dest::Spare { spare, sector } => Dest::Spare {
            spare,
            sector: sector + n,
        },
        Dest::Defer => Dest::Defer,
    }
}

fn check_bio(model: &Model, unit_sectors: u32, offset: u64, sectors: u32, write: bool) {
    let geo = Geometry { unit_sectors };
    let us = u64::from(unit_sectors);
    let (mut at, mut left) = (offset, sectors);
    while left > 0 {
        let p = route_first(geo, model, at, left, write, spare_sector(unit_sectors)).unwrap();
        assert!(p.sectors >= 1 && p.sectors <= left, "piece {p:?} of {left}");
        for i in 0..u64::from(p.sectors) {
            assert_eq!(
                advance(p.dest, i),
                expected(model, unit_sectors, at + i, write),
                "sector {}",
                at + i
            );
        }
        let end = at + u64::from(p.sectors);
        if model.get(at / us).is_some() {
            assert_eq!((end - 1) / us, at / us, "a piece on an entry left its unit");
        } else if u64::from(p.sectors) < u64::from(left) {
            assert!(
                model.get(end / us).is_some(),
                "a main piece stopped early at {end}"
            );
            assert_eq!(end % us, 0);
        }
        at = end;
        left -= p.sectors;
    }
}

#[test]
fn empty_table_routes_whole_bios_to_main() {
    let m = Model(BTreeMap::new());
    let p = route_first(
        Geometry { unit_sectors: 8 },
        &m,
        12345,
        2048,
        true,
        spare_sector(8),
    )
    .unwrap();
    assert_eq!((p.dest, p.sectors), (Dest::Main { sector: 12345 }, 2048));
}

#[test]
fn a_bio_straddling_a_remapped_unit_is_split_at_its_edges() {
    let mut t = BTreeMap::new();
    t.insert(3, Entry::Remapped { spare: 0, unit: 7 });
    let m = Model(t);
    let geo = Geometry { unit_sectors: 8 };
    // Sectors 20..40: units 2 (part), 3 (whole), 4 (part).
    let p = route_first(geo, &m, 20, 20, false, spare_sector(8)).unwrap();
    assert_eq!((p.dest, p.sectors), (Dest::Main { sector: 20 }, 4));
    let p = route_first(geo, &m, 24, 16, false, spare_sector(8)).unwrap();
    assert_eq!(p.sectors, 8);
    assert_eq!(
        p.dest,
        Dest::Spare {
            spare: 0,
            sector: 1_000_000 + 56
        }
    );
    check_bio(&m, 8, 20, 20, false);
}

#[test]
fn pending_units_read_from_main_and_defer_writes() {
    let mut t = BTreeMap::new();
    t.insert(5, Entry::Pending);
    let m = Model(t);
    let geo = Geometry { unit_sectors: 1 };
    let read = route_first(geo, &m, 5, 3, false, spare_sector(1)).unwrap();
    assert_eq!((read.dest, read.sectors), (Dest::Main { sector: 5 }, 1));
    let write = route_first(geo, &m, 5, 3, true, spare_sector(1)).unwrap();
    assert_eq!((write.dest, write.sectors), (Dest::Defer, 1));
}

#[test]
fn a_corrupt_entry_fails_the_piece() {
    let mut t = BTreeMap::new();
    t.insert(0, Entry::Remapped { spare: 9, unit: 1 });
    let none = |_: u32, _: u64| None;
    assert_eq!(
        route_first(Geometry { unit_sectors: 8 }, &Model(t), 0, 8, false, none),
        None
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn every_sector_lands_right(
        shift in 0u32..4,
        entries in proptest::collection::btree_map(0u64..64, (0u32..3, 0u64..1000, any::<bool>()), 0..20),
        offset in 0u64..400,
        sectors in 1u32..300,
        write in any::<bool>(),
    ) {
        let unit_sectors = 1u32 << shift;
        let model = Model(entries.into_iter().map(|(u, (s, su, pending))| {
            (u, if pending { Entry::Pending } else { Entry::Remapped { spare: s, unit: su } })
        }).collect());
        check_bio(&model, unit_sectors, offset, sectors, write);
    }
}

#[test]
fn entries_pack_into_62_bits_and_back() {
    use dm_remap_v4_target::route::{MAX_SPARE_INDEX, MAX_SPARE_UNIT};
    for e in [
        Entry::Pending,
        Entry::Remapped { spare: 0, unit: 0 },
        Entry::Remapped {
            spare: MAX_SPARE_INDEX,
            unit: MAX_SPARE_UNIT,
        },
        Entry::Remapped {
            spare: 3,
            unit: 123_456_789,
        },
    ] {
        let v = e.pack().unwrap();
        assert!(v < 1 << 62, "{e:?} packs to {v:#x}");
        assert_eq!(Entry::unpack(v), e);
    }
    assert_eq!(
        Entry::Remapped {
            spare: MAX_SPARE_INDEX + 1,
            unit: 0
        }
        .pack(),
        None
    );
    assert_eq!(
        Entry::Remapped {
            spare: 0,
            unit: MAX_SPARE_UNIT + 1
        }
        .pack(),
        None
    );
}
