//! Property tests: random alloc/free/retire/claim/state sequences against a simple model, and
//! the bitmap's block encoding round trip.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_spare_pool::bitmap::{decode_block, words_needed};
use dm_remap_v4_spare_pool::{
    Allocation, Bitmap, Counts, Error, Pool, PriorState, Spare, SpareState, UnitState,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Allocate,
    Free(usize, u64),
    Retire(usize, u64),
    Claim(usize, u64),
    SetState(usize, SpareState),
}

fn state() -> impl Strategy<Value = SpareState> {
    prop_oneof![
        3 => Just(SpareState::Active),
        1 => Just(SpareState::Draining),
        1 => Just(SpareState::Failed),
        1 => Just(SpareState::Missing),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Spare indices and units run a little past the end so range errors are exercised.
    prop_oneof![
        6 => Just(Op::Allocate),
        3 => (0..5usize, 0..140u64).prop_map(|(s, u)| Op::Free(s, u)),
        1 => (0..5usize, 0..140u64).prop_map(|(s, u)| Op::Retire(s, u)),
        1 => (0..5usize, 0..140u64).prop_map(|(s, u)| Op::Claim(s, u)),
        1 => (0..5usize, state()).prop_map(|(s, st)| Op::SetState(s, st)),
    ]
}

/// The model: per spare, its state, same-device flag and the state of every unit.
struct Model {
    spares: Vec<(SpareState, bool, Vec<UnitState>)>,
}

impl Model {
    fn counts(&self, i: usize) -> Counts {
        let units = &self.spares[i].2;
        let n = |s| units.iter().filter(|&&u| u == s).count() as u64;
        Counts {
            total: units.len() as u64,
            used: n(UnitState::Used),
            free: n(UnitState::Free),
            retired: n(UnitState::Retired),
        }
    }

    /// The spare the documented policy must pick, if any.
    fn expected_spare(&self) -> Option<usize> {
        let has_room = |(st, _, units): &(SpareState, bool, Vec<UnitState>)| {
            *st == SpareState::Active && units.contains(&UnitState::Free)
        };
        let pick = |same: bool| self.spares.iter().position(|s| s.1 == same && has_room(s));
        pick(false).or_else(|| pick(true))
    }

    /// The expected outcome of `f`/`r`/`c` on a unit, per the model.
    fn unit(&mut self, s: usize, u: u64) -> Result<&mut UnitState, Error> {
        let spare = self.spares.get_mut(s).ok_or(Error::NoSuchSpare)?;
        spare.2.get_mut(u as usize).ok_or(Error::UnitOutOfRange)
    }
}

fn run(sizes: Vec<(u64, bool, SpareState)>, ops: Vec<Op>, block_words: usize) {
    let mut bufs: Vec<Vec<u64>> = sizes
        .iter()
        .map(|&(n, _, _)| vec![0xdead_beef; words_needed(n).unwrap()])
        .collect();
    let mut model = Model {
        spares: sizes
            .iter()
            .map(|&(n, same, st)| (st, same, vec![UnitState::Free; n as usize]))
            .collect(),
    };
    let mut spares: Vec<Spare<'_>> = bufs
        .iter_mut()
        .zip(&sizes)
        .map(|(b, &(n, same, st))| Spare::new(Bitmap::format(b, n).unwrap(), st, same))
        .collect();
    let mut pool = Pool::new(&mut spares).unwrap();

    for op in ops {
        match op {
            Op::Allocate => {
                let expected = model.expected_spare();
                match pool.allocate() {
                    Ok(Allocation { spare, unit }) => {
                        assert_eq!(Some(spare), expected, "order policy");
                        let slot = model.unit(spare, unit).expect("unit inside the pool");
                        assert_eq!(*slot, UnitState::Free, "unit handed out twice or retired");
                        *slot = UnitState::Used;
                    }
                    Err(e) => {
                        assert_eq!(e, Error::NoSpace);
                        assert_eq!(expected, None, "exhaustion reported with room left");
                    }
                }
            }
            Op::Free(s, u) => {
                let expected = model.unit(s, u).and_then(|slot| match *slot {
                    UnitState::Used => {
                        *slot = UnitState::Free;
                        Ok(())
                    }
                    UnitState::Free => Err(Error::DoubleFree),
                    UnitState::Retired => Err(Error::UnitRetired),
                });
                assert_eq!(pool.free(Allocation { spare: s, unit: u }), expected);
            }
            Op::Retire(s, u) => {
                let expected = model.unit(s, u).and_then(|slot| {
                    let prior = match *slot {
                        UnitState::Used => PriorState::Used,
                        UnitState::Free => PriorState::Free,
                        UnitState::Retired => return Err(Error::AlreadyRetired),
                    };
                    *slot = UnitState::Retired;
                    Ok(prior)
                });
                assert_eq!(pool.retire(Allocation { spare: s, unit: u }), expected);
            }
            Op::Claim(s, u) => {
                let expected = model.unit(s, u).and_then(|slot| match *slot {
                    UnitState::Free => {
                        *slot = UnitState::Used;
                        Ok(())
                    }
                    UnitState::Used => Err(Error::AlreadyUsed),
                    UnitState::Retired => Err(Error::UnitRetired),
                });
                assert_eq!(pool.claim(Allocation { spare: s, unit: u }), expected);
            }
            Op::SetState(s, st) => {
                let expected = match model.spares.get_mut(s) {
                    Some(spare) => {
                        spare.0 = st;
                        Ok(())
                    }
                    None => Err(Error::NoSuchSpare),
                };
                assert_eq!(pool.set_state(s, st), expected);
            }
        }

        // Counts are consistent after every step, per spare and overall.
        let mut total = Counts::default();
        for i in 0..pool.len() {
            let c = pool.spare_counts(i).unwrap();
            assert_eq!(c, model.counts(i));
            assert_eq!(c.used + c.free + c.retired, c.total);
            total = total.sum(c);
        }
        assert_eq!(pool.counts(), total);
    }

    // Every unit's state matches the model, then survives an encode/decode round trip.
    for (i, (_, _, units)) in model.spares.iter().enumerate() {
        let bm = &pool.spare(i).unwrap().bitmap;
        for (u, want) in units.iter().enumerate() {
            assert_eq!(bm.state(u as u64), Ok(*want));
        }
        let block_bytes = block_words * 8;
        let n = bm.units();
        let mut decoded = vec![0xffff_ffffu64; words_needed(n).unwrap()];
        let mut block = vec![0u8; block_bytes];
        for b in 0..bm.blocks(block_bytes).unwrap() {
            bm.encode_block(b, &mut block).unwrap();
            decode_block(&mut decoded, b, &block).unwrap();
        }
        let loaded = Bitmap::load(&mut decoded, n).unwrap();
        assert_eq!(loaded.counts(), bm.counts());
        for u in 0..n {
            assert_eq!(loaded.state(u), bm.state(u));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pool_matches_model(
        sizes in prop::collection::vec((1..=130u64, any::<bool>(), state()), 0..=4),
        ops in prop::collection::vec(op(), 0..400),
        block_words in 1..=5usize,
    ) {
        run(sizes, ops, block_words);
    }

    #[test]
    fn bitmap_block_round_trip(
        units in 0..=600u64,
        marks in prop::collection::vec((0..600u64, 0..3u8), 0..200),
        block_words in 1..=9usize,
    ) {
        let mut words = vec![0u64; words_needed(units).unwrap()];
        let mut bm = Bitmap::format(&mut words, units).unwrap();
        for (u, kind) in marks {
            let _ = match kind {
                0 => bm.claim(u).map(|_| ()),
                1 => bm.retire(u).map(|_| ()),
                _ => bm.free(u),
            };
        }
        let block_bytes = block_words * 8;
        let mut decoded = vec![0u64; words_needed(units).unwrap()];
        let mut block = vec![0u8; block_bytes];
        let blocks = bm.blocks(block_bytes).unwrap();
        for b in 0..blocks {
            bm.encode_block(b, &mut block).unwrap();
            decode_block(&mut decoded, b, &block).unwrap();
        }
        prop_assert_eq!(bm.encode_block(blocks, &mut block), Err(Error::BlockOutOfRange));
        let loaded = Bitmap::load(&mut decoded, units).unwrap();
        prop_assert_eq!(loaded.counts(), bm.counts());
        for u in 0..units {
            prop_assert_eq!(loaded.state(u), bm.state(u));
        }
    }
}
