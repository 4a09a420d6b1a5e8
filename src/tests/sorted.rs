//! The sorted run against a model: lookups agree with a `BTreeMap` at every key near an entry, and a merge
//! gives exactly the model's map after the changes, tombstones removing units.
#![allow(
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use dm_remap_v4_target::sorted::{
    build_fence, build_filter, fence_len, filter_len, merge, merge_stamped, Run, RunError, LEAF,
};
use proptest::prelude::*;

const TOMB: u64 = u64::MAX;

/// The filter of `keys`, built the way the kernel builds it.
fn filter_of(keys: &[u64]) -> Vec<u64> {
    let mut filter = vec![0; filter_len(keys.len())];
    build_filter(keys, &mut filter).unwrap();
    filter
}

/// Owned arrays of a run built from a model.
struct Arrays {
    keys: Vec<u64>,
    vals: Vec<u64>,
    fence: Vec<u64>,
    filter: Vec<u64>,
}

impl Arrays {
    fn of(model: &BTreeMap<u64, u64>) -> Self {
        let keys: Vec<u64> = model.keys().copied().collect();
        let vals = model.values().copied().collect();
        let mut fence = vec![0; fence_len(&keys)];
        build_fence(&keys, &mut fence).unwrap();
        let filter = filter_of(&keys);
        Self {
            keys,
            vals,
            fence,
            filter,
        }
    }
    fn run(&self) -> Run<'_> {
        Run::new(&self.keys, &self.vals, &self.fence, &self.filter).unwrap()
    }
}

/// Tables with clusters and gaps, sized to cross many leaves: a cluster near 0 fills the directory's first
/// buckets with many leaves each, so lookups narrow them with the lower level.
fn table() -> impl Strategy<Value = BTreeMap<u64, u64>> {
    prop::collection::btree_map(
        prop_oneof![0u64..2_000, 0u64..u64::MAX - 1, Just(u64::MAX - 1)],
        0u64..1 << 62,
        0..48 * LEAF,
    )
}

fn check_lookups(model: &BTreeMap<u64, u64>, run: Run<'_>) {
    assert_eq!(run.len(), model.len());
    let mut probes: Vec<u64> = vec![0, 1, u64::MAX];
    for &k in model.keys() {
        probes.extend([k.saturating_sub(1), k, k.saturating_add(1)]);
    }
    for p in probes {
        assert_eq!(run.get(p), model.get(&p).copied(), "get {p}");
        let want = model.range(p..).next().map(|(&k, _)| k);
        assert_eq!(run.keys_at(run.lower_bound(p)), want, "lower_bound {p}");
        for last in [p, p.saturating_add(5), u64::MAX] {
            let want = model.range(p..=last).next().map(|(&k, _)| k);
            assert_eq!(run.next_key(p, last), want, "next_key {p}..={last}");
        }
    }
}

trait KeyAt {
    fn keys_at(&self, i: usize) -> Option<u64>;
}

impl KeyAt for Run<'_> {
    fn keys_at(&self, i: usize) -> Option<u64> {
        self.iter_from(i).next().map(|(k, _)| k)
    }
}

proptest! {
    #[test]
    fn lookups_agree_with_the_model(model in table()) {
        let a = Arrays::of(&model);
        check_lookups(&model, a.run());
    }

    #[test]
    fn merge_applies_changes_and_tombstones(
        model in table(),
        changes in prop::collection::btree_map(0u64..2_100, prop_oneof![Just(TOMB), 0u64..1 << 62], 0..600),
        also_delete_existing in any::<bool>(),
    ) {
        let mut changes = changes;
        if also_delete_existing {
            for &k in model.keys().take(40) {
                changes.insert(k, TOMB);
            }
        }
        let a = Arrays::of(&model);
        let mut want = model.clone();
        for (&k, &v) in &changes {
            if v == TOMB { want.remove(&k); } else { want.insert(k, v); }
        }
        let cap = model.len() + changes.len();
        let (mut keys, mut vals) = (vec![0; cap], vec![0; cap]);
        let n = merge(a.run(), changes.iter().map(|(&k, &v)| (k, v)), TOMB, &mut keys, &mut vals).unwrap();
        keys.truncate(n);
        vals.truncate(n);
        let got: BTreeMap<u64, u64> = keys.iter().copied().zip(vals.iter().copied()).collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(n, want.len());
        let mut fence = vec![0; fence_len(&keys[..n])];
        build_fence(&keys, &mut fence).unwrap();
        check_lookups(&want, Run::new(&keys, &vals, &fence, &filter_of(&keys)).unwrap());
    }
}

/// Sizes at the edges of a leaf (16 keys), of the directory's buckets (8 keys on average at most) and of
/// powers of two.
const EDGE_SIZES: [usize; 11] = [0, 1, 15, 16, 17, 255, 256, 257, 4095, 4096, 4097];

/// `n` ascending keys with gaps of 1 to 4 from `seed`, starting near 0 or ending at `u64::MAX` (or one below).
fn edge_table(n: usize, high: bool, at_max: bool, seed: u64) -> BTreeMap<u64, u64> {
    let mut rng = seed | 1;
    let gaps: Vec<u64> = (0..n)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            1 + rng % 4
        })
        .collect();
    // From the first key to the last: every gap but the first.
    let span: u64 = gaps.iter().skip(1).sum();
    let mut key = if high {
        u64::MAX - span - u64::from(!at_max)
    } else {
        seed % 1000
    };
    gaps.iter()
        .enumerate()
        .map(|(i, &g)| {
            key += if i == 0 { 0 } else { g };
            (key, i as u64)
        })
        .collect()
}

proptest! {
    /// Lookups agree with the model at the sizes where a leaf or a stride ends, near 0 and near the top of
    /// the key space.
    #[test]
    fn lookups_agree_with_the_model_at_edge_sizes(
        size in prop::sample::select(EDGE_SIZES.to_vec()),
        high in any::<bool>(),
        at_max in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let model = edge_table(size, high, at_max, seed);
        prop_assert_eq!(model.len(), size);
        let a = Arrays::of(&model);
        check_lookups(&model, a.run());
    }
}

proptest! {
    /// Each entry keeps the time it was made through a merge: an untouched run entry its own stamp, a
    /// replaced or added unit the change's stamp; tombstoned units take theirs away.
    #[test]
    fn merge_keeps_the_stamp_of_every_entry(
        model in table(),
        changes in prop::collection::btree_map(
            0u64..2_100,
            (prop_oneof![Just(TOMB), 0u64..1 << 62], any::<u32>()),
            0..600,
        ),
    ) {
        let a = Arrays::of(&model);
        // A stamp per run entry, distinct from every value so a mix-up shows.
        let run_stamps: Vec<u32> = model.keys().map(|&k| (k as u32) ^ 0x5a5a_5a5a).collect();
        let mut want: BTreeMap<u64, (u64, u32)> = model
            .iter()
            .zip(&run_stamps)
            .map(|((&k, &v), &s)| (k, (v, s)))
            .collect();
        for (&k, &(v, s)) in &changes {
            if v == TOMB { want.remove(&k); } else { want.insert(k, (v, s)); }
        }
        let cap = model.len() + changes.len();
        let (mut keys, mut vals, mut stamps) = (vec![0; cap], vec![0; cap], vec![0u32; cap]);
        let n = merge_stamped(
            a.run(),
            &run_stamps,
            changes.iter().map(|(&k, &(v, s))| (k, v, s)),
            TOMB,
            &mut keys,
            &mut vals,
            &mut stamps,
        )
        .unwrap();
        prop_assert_eq!(n, want.len());
        let got: BTreeMap<u64, (u64, u32)> = keys[..n]
            .iter()
            .copied()
            .zip(vals[..n].iter().copied().zip(stamps[..n].iter().copied()))
            .collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn merge_stamped_refuses_mismatched_stamps_and_a_short_stamp_output() {
    let model: BTreeMap<u64, u64> = (0..10).map(|k| (k * 2, k)).collect();
    let a = Arrays::of(&model);
    let run_stamps = [7u32; 10];
    let (mut keys, mut vals, mut stamps) = (vec![0; 11], vec![0; 11], vec![0u32; 11]);
    let none = core::iter::empty::<(u64, u64, u32)>;
    assert_eq!(
        merge_stamped(
            a.run(),
            &run_stamps[..9],
            none(),
            TOMB,
            &mut keys,
            &mut vals,
            &mut stamps
        ),
        Err(RunError::Malformed)
    );
    assert_eq!(
        merge_stamped(
            a.run(),
            &run_stamps,
            none(),
            TOMB,
            &mut keys,
            &mut vals,
            &mut stamps[..9]
        ),
        Err(RunError::TooSmall)
    );
    let one = [(1u64, 70u64, 9u32)];
    assert_eq!(
        merge_stamped(
            a.run(),
            &run_stamps,
            one.into_iter(),
            TOMB,
            &mut keys,
            &mut vals,
            &mut stamps
        ),
        Ok(11)
    );
    assert_eq!((keys[1], vals[1], stamps[1]), (1, 70, 9));
    assert!(stamps
        .iter()
        .enumerate()
        .all(|(i, &s)| s == if i == 1 { 9 } else { 7 }));
}

#[test]
fn merge_refuses_a_short_output_and_unsorted_changes() {
    let model: BTreeMap<u64, u64> = (0..10).map(|k| (k * 2, k)).collect();
    let a = Arrays::of(&model);
    let (mut keys, mut vals) = (vec![0; 10], vec![0; 10]);
    let one_more = [(1u64, 7u64)];
    assert_eq!(
        merge(a.run(), one_more.into_iter(), TOMB, &mut keys, &mut vals),
        Err(RunError::TooSmall)
    );
    // A tombstone makes room: 10 - 1 + 1.
    let swap = [(1u64, 7u64), (4, TOMB)];
    assert_eq!(
        merge(a.run(), swap.into_iter(), TOMB, &mut keys, &mut vals),
        Ok(10)
    );
    let unsorted = [(5u64, 1u64), (3, 1)];
    let (mut keys, mut vals) = (vec![0; 12], vec![0; 12]);
    assert_eq!(
        merge(a.run(), unsorted.into_iter(), TOMB, &mut keys, &mut vals),
        Err(RunError::Malformed)
    );
}

#[test]
fn malformed_runs_are_refused() {
    let vals = [0u64; 3];
    let bad = |keys: &[u64], vals: &[u64], fence: &[u64], filter: &[u64]| {
        assert_eq!(
            Run::new(keys, vals, fence, filter).unwrap_err(),
            RunError::Malformed,
            "{keys:?} {fence:?} {filter:?}"
        );
    };
    // Three keys, units 1 to 3: one bucket (a span of 2 in at most 1 bucket takes shift 2), so the fence is the
    // shift, the lower level (keys[0]) and one word of two directory entries: 0 keys before bucket 0, then 3.
    let f3 = filter_of(&[1, 2, 3]);
    let fence3 = [2, 1, 3 << 32];
    assert_eq!(fence_len(&[1, 2, 3]), 3);
    bad(&[1, 2, 2], &vals, &fence3, &f3);
    bad(&[1, 3, 2], &vals, &fence3, &f3);
    assert!(Run::new(&[1, 2, 3], &vals, &fence3, &f3).is_ok());
    bad(&[1, 2, 3], &vals, &[1, 1, 3 << 32], &f3);
    bad(&[1, 2, 3], &vals, &[3, 1, 3 << 32], &f3);
    bad(&[1, 2, 3], &vals, &[2, 2, 3 << 32], &f3);
    bad(&[1, 2, 3], &vals, &[2, 1, 2 << 32], &f3);
    bad(&[1, 2, 3], &vals, &[2, 1, (3 << 32) | 1], &f3);
    bad(&[1, 2, 3], &vals, &[2, 1], &f3);
    bad(&[1, 2, 3], &vals, &[2, 1, 3 << 32, 0], &f3);
    bad(&[1, 2, 3], &vals[..2], &fence3, &f3);
    bad(&[1, 2, 3], &vals, &[], &f3);
    bad(&[1, 2, 3], &vals, &fence3, &[]);
    bad(&[1, 2, 3], &vals, &fence3, &[f3[0], 0]);
    // A filter missing a key's bit would hide the key: refused.
    for k in [1u64, 2, 3] {
        let without = f3[0] & !filter_of(&[k])[0];
        if without != f3[0] {
            bad(&[1, 2, 3], &vals, &fence3, &[without]);
        }
    }
    // Extra bits only send a lookup on to the keys.
    assert!(Run::new(&[1, 2, 3], &vals, &fence3, &[u64::MAX]).is_ok());
    // 17 keys, units 0 to 48 by 3: at most 3 buckets, so shift 5 and 2 buckets (units 0–31: 11 keys, 32–63:
    // 6). The lower level has a second word, keys[16]; the directory 3 entries and one more, the run's
    // length, to fill its second word; the filter two words (68 bits, rounded up to 128).
    let keys: Vec<u64> = (0..17).map(|k| k * 3).collect();
    let vals17 = [0u64; 17];
    assert_eq!((fence_len(&keys), filter_len(17)), (5, 2));
    let f17 = filter_of(&keys);
    let mut built = [0; 5];
    build_fence(&keys, &mut built).unwrap();
    assert_eq!(built, [5, 0, 48, 11 << 32, 17 | (17 << 32)]);
    assert!(Run::new(&keys, &vals17, &built, &f17).is_ok());
    bad(&keys, &vals17, &[5, 0, 45, 11 << 32, 17 | (17 << 32)], &f17);
    bad(&keys, &vals17, &[5, 0, 48, 11 << 32, 17 | (16 << 32)], &f17);
    bad(&keys, &vals17, &[5, 0, 48, 11 << 32, 17], &f17);
    let empty = Run::EMPTY;
    assert_eq!(
        (
            empty.get(0),
            empty.next_key(0, u64::MAX),
            empty.lower_bound(5)
        ),
        (None, None, 0)
    );
}

/// Without a usable fence (none, or one too short for a directory) a lookup searches all the keys: slower,
/// still right. A fence of the right length with the wrong words gives wrong answers, never a panic.
#[test]
fn a_run_without_its_fence_still_answers_right() {
    let model = edge_table(4097, false, false, 7);
    let keys: Vec<u64> = model.keys().copied().collect();
    let vals: Vec<u64> = model.values().copied().collect();
    let filter = filter_of(&keys);
    for fence in [vec![], vec![0; 1 + keys.len().div_ceil(LEAF)]] {
        let run = Run::new_unchecked(&keys, &vals, &fence, &filter);
        check_lookups(&model, run);
    }
    for word in [0, 7, 63, 64, u64::MAX] {
        let garbage = vec![word; fence_len(&keys)];
        let run = Run::new_unchecked(&keys, &vals, &garbage, &filter);
        for p in [0, 1, keys[100], keys[4096], u64::MAX] {
            let _ = (run.get(p), run.lower_bound(p), run.next_key(p, u64::MAX));
        }
    }
}

/// The fence: a header word, a lower-level word per 16 keys, and the directory's `u32` entries, at most one
/// per 8 keys and at least one per 32 keys (and a few more for tiny runs), whatever the units' span.
#[test]
fn the_fence_takes_under_a_byte_per_entry_at_any_span() {
    for n in [1usize, 2, 7, 8, 9, 100, 1000, 4097, 100_000] {
        for step in [1u64, 3, 1000, 1 << 20, u64::MAX / (n as u64 + 1)] {
            let keys: Vec<u64> = (0..n as u64).map(|i| 5 + i * step).collect();
            let lower = n.div_ceil(LEAF);
            let dir_entries = 2 * (fence_len(&keys) - 1 - lower);
            assert!(
                dir_entries <= n.div_ceil(8) + 2 && dir_entries * 32 >= n,
                "{n} keys by {step}: {dir_entries} directory entries"
            );
            let mut fence = vec![0; fence_len(&keys)];
            build_fence(&keys, &mut fence).unwrap();
            let vals = vec![0; n];
            assert!(Run::new(&keys, &vals, &fence, &filter_of(&keys)).is_ok());
        }
    }
}

#[test]
fn the_filter_has_4_to_8_bits_per_key_in_a_power_of_two() {
    assert_eq!(filter_len(0), 0);
    assert_eq!(filter_len(1), 1);
    assert_eq!(filter_len(16), 1);
    assert_eq!(filter_len(17), 2);
    // 4,000,000 bits rounded up to 2^22: 512 KiB, about half a byte per entry.
    assert_eq!(filter_len(1_000_000), 1 << 16);
    assert_eq!(filter_len((1 << 20) + 1), 1 << 17);
    assert_eq!(
        filter_len(usize::MAX),
        0,
        "too large to count: no filter, the keys decide"
    );
}
