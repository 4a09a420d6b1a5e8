//! Metadata versions: monotonic, refusing overflow, and picking the newest member.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use core::cmp::Ordering;

use dm_remap_v4_reassembly::{
    compare_versions, newest, next_version, summarize, Error, SequenceSummary,
};
use proptest::prelude::*;

#[test]
fn next_version_increments_and_refuses_overflow() {
    assert_eq!(next_version(0), Ok(1));
    assert_eq!(next_version(41), Ok(42));
    assert_eq!(next_version(u64::MAX - 1), Ok(u64::MAX));
    assert_eq!(next_version(u64::MAX), Err(Error::VersionOverflow));
    assert_eq!(Error::VersionOverflow.errno(), -75);
    assert_eq!(
        Error::VersionOverflow.to_string(),
        "metadata version would overflow"
    );
}

#[test]
fn newest_picks_the_highest_first_on_ties() {
    assert_eq!(newest(&[]), None);
    assert_eq!(newest(&[7]), Some(0));
    assert_eq!(newest(&[3, 9, 1, 9]), Some(1));
    assert_eq!(newest(&[0, 0]), Some(0));
    assert_eq!(newest(&[1, u64::MAX]), Some(1));
    assert_eq!(compare_versions(2, 1), Ordering::Greater);
    assert_eq!(compare_versions(1, 1), Ordering::Equal);
}

#[test]
fn summarize_feeds_the_sequence_inputs() {
    assert_eq!(summarize(&[]), None);
    assert_eq!(
        summarize(&[10, 12, 12, 9]),
        Some(SequenceSummary {
            highest: 12,
            at_highest: 2,
            max_lag: 3
        })
    );
}

proptest! {
    #[test]
    fn next_version_is_strictly_newer(v in any::<u64>()) {
        match next_version(v) {
            Ok(n) => prop_assert_eq!(compare_versions(n, v), Ordering::Greater),
            Err(e) => {
                prop_assert_eq!(v, u64::MAX);
                prop_assert_eq!(e, Error::VersionOverflow);
            }
        }
    }

    #[test]
    fn newest_is_a_maximum(vs in prop::collection::vec(any::<u64>(), 1..20)) {
        let i = newest(&vs).unwrap();
        prop_assert!(vs.iter().all(|&v| compare_versions(vs[i], v) != Ordering::Less));
        prop_assert!(vs[..i].iter().all(|&v| v < vs[i]));
        let s = summarize(&vs).unwrap();
        prop_assert_eq!(s.highest, vs[i]);
    }
}
