//! The pool of spares: the allocation order policy, states, and aggregate counts.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_spare_pool::{
    Allocation, Bitmap, Counts, Error, Pool, PriorState, Spare, SpareState, MAX_SPARES,
};

/// Builds spares of `units` units each over `bufs`, with the given states and same-device flags.
fn spares<'a>(bufs: &'a mut [[u64; 2]], units: u64, cfg: &[(SpareState, bool)]) -> Vec<Spare<'a>> {
    bufs.iter_mut()
        .zip(cfg)
        .map(|(b, &(state, same))| Spare::new(Bitmap::format(b, units).unwrap(), state, same))
        .collect()
}

#[test]
fn fills_first_spare_before_the_next() {
    let mut bufs = [[0u64; 2]; 3];
    let mut s = spares(&mut bufs, 3, &[(SpareState::Active, false); 3]);
    let mut pool = Pool::new(&mut s).unwrap();
    let got: Vec<usize> = (0..9).map(|_| pool.allocate().unwrap().spare).collect();
    assert_eq!(got, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(pool.allocate(), Err(Error::NoSpace));
    // A freed unit on a lower spare is used again before anything else.
    pool.free(Allocation { spare: 1, unit: 2 }).unwrap();
    assert_eq!(pool.allocate(), Ok(Allocation { spare: 1, unit: 2 }));
}

#[test]
fn same_device_spares_are_last_resort() {
    let mut bufs = [[0u64; 2]; 3];
    let cfg = [
        (SpareState::Active, true),
        (SpareState::Active, false),
        (SpareState::Active, true),
    ];
    let mut s = spares(&mut bufs, 2, &cfg);
    let mut pool = Pool::new(&mut s).unwrap();
    let got: Vec<usize> = (0..6).map(|_| pool.allocate().unwrap().spare).collect();
    assert_eq!(got, [1, 1, 0, 0, 2, 2]);
}

#[test]
fn only_active_spares_are_allocated_from() {
    let mut bufs = [[0u64; 2]; 4];
    let cfg = [
        (SpareState::Draining, false),
        (SpareState::Failed, false),
        (SpareState::Missing, false),
        (SpareState::Active, true),
    ];
    let mut s = spares(&mut bufs, 2, &cfg);
    let mut pool = Pool::new(&mut s).unwrap();
    assert_eq!(pool.allocatable(), 2);
    assert_eq!(pool.allocate().unwrap().spare, 3);
    assert_eq!(pool.allocate().unwrap().spare, 3);
    assert_eq!(pool.allocate(), Err(Error::NoSpace));
    // Free units on unusable spares still count as free, but not as allocatable.
    assert_eq!(pool.counts().free, 6);
    assert_eq!(pool.allocatable(), 0);
    pool.set_state(0, SpareState::Active).unwrap();
    assert_eq!(pool.allocate().unwrap().spare, 0);
    assert_eq!(
        pool.set_state(4, SpareState::Active),
        Err(Error::NoSuchSpare)
    );
}

#[test]
fn counts_add_up_across_spares() {
    let mut bufs = [[0u64; 2]; 2];
    let mut s = spares(&mut bufs, 5, &[(SpareState::Active, false); 2]);
    let mut pool = Pool::new(&mut s).unwrap();
    for _ in 0..7 {
        pool.allocate().unwrap();
    }
    assert_eq!(
        pool.retire(Allocation { spare: 1, unit: 0 }),
        Ok(PriorState::Used)
    );
    assert_eq!(
        pool.retire(Allocation { spare: 1, unit: 4 }),
        Ok(PriorState::Free)
    );
    assert_eq!(
        pool.spare_counts(1),
        Ok(Counts {
            total: 5,
            used: 1,
            free: 2,
            retired: 2
        })
    );
    assert_eq!(
        pool.counts(),
        Counts {
            total: 10,
            used: 6,
            free: 2,
            retired: 2
        }
    );
    assert_eq!(pool.spare_counts(2), Err(Error::NoSuchSpare));
    assert_eq!(
        pool.free(Allocation { spare: 9, unit: 0 }),
        Err(Error::NoSuchSpare)
    );
}

#[test]
fn at_most_max_spares() {
    let mut bufs = [[0u64; 2]; MAX_SPARES + 1];
    let mut s = spares(&mut bufs, 1, &[(SpareState::Active, false); MAX_SPARES + 1]);
    assert_eq!(Pool::new(&mut s).err(), Some(Error::TooManySpares));
    let mut s = spares(&mut bufs, 1, &[(SpareState::Active, false); MAX_SPARES]);
    assert_eq!(Pool::new(&mut s).unwrap().len(), MAX_SPARES);
    let mut none: [Spare<'_>; 0] = [];
    let mut empty = Pool::new(&mut none).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.allocate(), Err(Error::NoSpace));
}

#[test]
fn state_numbers_round_trip_and_unknown_ones_are_refused() {
    for s in [
        SpareState::Active,
        SpareState::Draining,
        SpareState::Failed,
        SpareState::Missing,
    ] {
        assert_eq!(SpareState::from_u32(s as u32), Some(s));
    }
    assert_eq!(SpareState::from_u32(4), None);
    assert_eq!(SpareState::from_u32(u32::MAX), None);
}
