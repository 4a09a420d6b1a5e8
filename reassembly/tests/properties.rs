//! Properties of the score and verdict: range, vetoes, monotonicity, reachability.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::BTreeSet;

use dm_remap_v4_reassembly::score::{
    IDENTIFIER_MATCH, IDENTIFIER_MISMATCH, IDENTIFIER_UNKNOWN, NO, YES,
};
use dm_remap_v4_reassembly::{assess, calculate_confidence_score, veto, Inputs, Verdict};
use proptest::prelude::*;

const DAY: u64 = 86_400;

/// Any bit pattern at all, as a buggy caller might pass.
fn any_inputs() -> impl Strategy<Value = Inputs> {
    (
        (any::<u64>(), any::<u64>(), any::<u64>()),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (any::<[u8; 5]>(), any::<[u8; 3]>()),
    )
        .prop_map(|((hs, lag, age), (cv, ct, mf, me, mh), (f, r))| Inputs {
            highest_sequence: hs,
            max_sequence_lag: lag,
            age_seconds: age,
            copies_valid: cv,
            copies_total: ct,
            members_found: mf,
            members_expected: me,
            members_at_highest: mh,
            main_size_matches: f[0],
            main_block_size_matches: f[1],
            main_identifier: f[2],
            uuid_agree: f[3],
            clean_shutdown: f[4],
            reserved: r,
        })
}

fn flag() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(NO), 4 => Just(YES)]
}

/// Consistent inputs over small ranges, so every branch of the formula is hit often.
fn consistent_inputs() -> impl Strategy<Value = Inputs> {
    (1..=8u32, 1..=5u32, 0..=40u64)
        .prop_flat_map(|(ct, me, hs)| {
            (
                0..=ct,
                Just(ct),
                (0..=me).prop_flat_map(|mf| (Just(mf), if mf == 0 { 0..=0 } else { 1..=mf })),
                Just(me),
                Just(hs),
                0..=hs.min(15),
                prop_oneof![Just(0u64), Just(DAY), 0..=800 * DAY],
                (flag(), flag(), flag(), flag(), 0..=2u8),
            )
        })
        .prop_map(
            |(cv, ct, (mf, mh), me, hs, lag, age, (size, lbs, uuid, clean, id))| Inputs {
                highest_sequence: hs,
                max_sequence_lag: lag,
                age_seconds: age,
                copies_valid: cv,
                copies_total: ct,
                members_found: mf,
                members_expected: me,
                members_at_highest: mh,
                main_size_matches: size,
                main_block_size_matches: lbs,
                main_identifier: id,
                uuid_agree: uuid,
                clean_shutdown: clean,
                reserved: [0; 3],
            },
        )
}

/// `inputs` with one input made better, by the rule numbered `which`.
fn improve(mut i: Inputs, which: u8, age: u64) -> Inputs {
    match which {
        0 => i.copies_valid = i.copies_valid.saturating_add(1),
        1 => i.members_found = i.members_found.saturating_add(1),
        2 => i.members_at_highest = i.members_at_highest.saturating_add(1),
        3 => i.max_sequence_lag = i.max_sequence_lag.saturating_sub(1),
        4 => {
            i.main_identifier = match i.main_identifier {
                IDENTIFIER_MISMATCH => IDENTIFIER_UNKNOWN,
                _ => IDENTIFIER_MATCH,
            }
        }
        5 => i.main_size_matches = YES,
        6 => i.main_block_size_matches = YES,
        7 => i.uuid_agree = YES,
        8 => i.clean_shutdown = YES,
        _ => i.age_seconds = i.age_seconds.min(age),
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn score_is_within_range_and_vetoes_give_zero(i in any_inputs(), t in any::<u8>()) {
        let score = calculate_confidence_score(&i);
        prop_assert!(score <= 100);
        if let Some(reason) = veto(&i) {
            prop_assert_eq!(score, 0);
            prop_assert_eq!(assess(&i, t), Verdict::Refuse(reason));
        }
    }

    #[test]
    fn verdict_follows_score_and_threshold(i in consistent_inputs(), t in 0..=101u8) {
        let score = calculate_confidence_score(&i);
        let verdict = assess(&i, t);
        if veto(&i).is_none() {
            prop_assert_eq!(matches!(verdict, Verdict::Refuse(_)), score < t);
        }
        // 100 only when everything is perfect, and then the verdict is Assemble.
        let perfect = veto(&i).is_none()
            && i.copies_valid == i.copies_total
            && i.members_found == i.members_expected
            && i.members_at_highest == i.members_found
            && i.max_sequence_lag == 0
            && i.main_identifier == IDENTIFIER_MATCH
            && i.clean_shutdown == YES
            && i.age_seconds <= DAY;
        prop_assert_eq!(score == 100, perfect);
        if perfect && t <= 100 {
            prop_assert_eq!(verdict, Verdict::Assemble);
        }
    }

    #[test]
    fn improving_one_input_never_lowers_the_score(
        i in consistent_inputs(),
        which in 0..=9u8,
        age in 0..=800 * DAY,
        t in 0..=100u8,
    ) {
        let better = improve(i, which, age);
        // Only compare pairs a correct caller could produce.
        prop_assume!(better.is_consistent());
        prop_assert!(
            calculate_confidence_score(&better) >= calculate_confidence_score(&i),
            "{:?} -> {:?}", i, better
        );
        // Nor turns an accepted setup into a refused one.
        if !matches!(assess(&i, t), Verdict::Refuse(_)) {
            prop_assert!(!matches!(assess(&better, t), Verdict::Refuse(_)));
        }
    }
}

#[test]
fn every_score_is_reachable() {
    let base = Inputs {
        highest_sequence: 100,
        max_sequence_lag: 0,
        age_seconds: 0,
        copies_valid: 30,
        copies_total: 30,
        members_found: 30,
        members_expected: 30,
        members_at_highest: 30,
        main_size_matches: YES,
        main_block_size_matches: YES,
        main_identifier: IDENTIFIER_MATCH,
        uuid_agree: YES,
        clean_shutdown: YES,
        reserved: [0; 3],
    };
    let mut seen = BTreeSet::new();
    for cv in 1..=30 {
        for mf in [1, 10, 20, 30] {
            for lag in [0, 5, 10] {
                for id in [IDENTIFIER_MATCH, IDENTIFIER_UNKNOWN] {
                    let i = Inputs {
                        copies_valid: cv,
                        members_found: mf,
                        members_at_highest: mf,
                        max_sequence_lag: lag,
                        main_identifier: id,
                        clean_shutdown: NO,
                        age_seconds: 1000 * DAY,
                        ..base
                    };
                    seen.insert(calculate_confidence_score(&i));
                    seen.insert(calculate_confidence_score(&Inputs {
                        clean_shutdown: YES,
                        age_seconds: 0,
                        ..i
                    }));
                }
            }
        }
    }
    // One member of 31 is worth 0 points, so one valid copy of 30 alone scores 1.
    seen.insert(calculate_confidence_score(&Inputs {
        copies_valid: 1,
        members_found: 1,
        members_expected: 31,
        members_at_highest: 1,
        max_sequence_lag: 10,
        main_identifier: IDENTIFIER_UNKNOWN,
        clean_shutdown: NO,
        age_seconds: 1000 * DAY,
        ..base
    }));
    seen.insert(calculate_confidence_score(&Inputs {
        uuid_agree: NO,
        ..base
    }));
    let missing: Vec<u8> = (0..=100).filter(|s| !seen.contains(s)).collect();
    assert!(missing.is_empty(), "unreachable scores: {missing:?}");
}
