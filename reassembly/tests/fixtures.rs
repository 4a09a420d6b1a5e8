//! Fixtures asserted on exact scores and verdicts, and the ABI layout of `Inputs`.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use core::mem::{align_of, offset_of, size_of};

use dm_remap_v4_reassembly::score::{IDENTIFIER_MISMATCH, IDENTIFIER_UNKNOWN, NO, YES};
use dm_remap_v4_reassembly::{
    assess, calculate_confidence_score, veto, Inputs, Reason, Verdict, DEFAULT_THRESHOLD,
};

const DAY: u64 = 86_400;

/// A setup of `members` members, two metadata copies each, everything perfect.
fn perfect(members: u32) -> Inputs {
    Inputs {
        highest_sequence: 42,
        max_sequence_lag: 0,
        age_seconds: 60,
        copies_valid: members * 2,
        copies_total: members * 2,
        members_found: members,
        members_expected: members,
        members_at_highest: members,
        main_size_matches: YES,
        main_block_size_matches: YES,
        main_identifier: dm_remap_v4_reassembly::score::IDENTIFIER_MATCH,
        uuid_agree: YES,
        clean_shutdown: YES,
        reserved: [0; 3],
    }
}

fn check(inputs: Inputs, score: u8, verdict: Verdict) {
    assert_eq!(calculate_confidence_score(&inputs), score, "{inputs:?}");
    assert_eq!(assess(&inputs, DEFAULT_THRESHOLD), verdict, "{inputs:?}");
}

#[test]
fn all_copies_valid_scores_100() {
    check(perfect(2), 100, Verdict::Assemble);
    check(perfect(1), 100, Verdict::Assemble);
}

#[test]
fn one_corrupt_copy() {
    // 3 of 4 copies: 30 * 3 / 4 = 22 of 30 points.
    let i = Inputs {
        copies_valid: 3,
        ..perfect(2)
    };
    check(i, 92, Verdict::Degraded);
}

#[test]
fn stale_sequence_on_one_member() {
    // 1 of 2 at the highest sequence (5 of 10), one commit behind (9 of 10).
    let i = Inputs {
        members_at_highest: 1,
        max_sequence_lag: 1,
        ..perfect(2)
    };
    check(i, 94, Verdict::Degraded);
    // Far behind: the lag points are gone.
    let i = Inputs {
        members_at_highest: 1,
        max_sequence_lag: 40,
        ..perfect(2)
    };
    check(i, 85, Verdict::Degraded);
}

#[test]
fn missing_member() {
    // 2 of 3 found: members 20, agreement 6, copies counted on the members found.
    let i = Inputs {
        members_found: 2,
        members_at_highest: 2,
        copies_valid: 4,
        copies_total: 4,
        ..perfect(3)
    };
    check(i, 86, Verdict::Degraded);
    // 1 of 2 found: 80, still above the default threshold.
    let i = Inputs {
        members_found: 1,
        members_at_highest: 1,
        copies_valid: 2,
        copies_total: 2,
        ..perfect(2)
    };
    check(i, 80, Verdict::Degraded);
    assert_eq!(assess(&i, 81), Verdict::Refuse(Reason::MemberMissing));
}

#[test]
fn identity_mismatch_is_a_veto() {
    let size = Inputs {
        main_size_matches: NO,
        ..perfect(2)
    };
    check(size, 0, Verdict::Refuse(Reason::MainSizeMismatch));
    let lbs = Inputs {
        main_block_size_matches: NO,
        ..perfect(2)
    };
    check(lbs, 0, Verdict::Refuse(Reason::MainBlockSizeMismatch));
    let wwn = Inputs {
        main_identifier: IDENTIFIER_MISMATCH,
        ..perfect(2)
    };
    check(wwn, 0, Verdict::Refuse(Reason::MainIdentifierMismatch));
    // Vetoes hold even with a threshold of 0.
    assert_eq!(
        assess(&wwn, 0),
        Verdict::Refuse(Reason::MainIdentifierMismatch)
    );
}

#[test]
fn uuid_disagreement_is_a_veto() {
    let i = Inputs {
        uuid_agree: NO,
        ..perfect(2)
    };
    check(i, 0, Verdict::Refuse(Reason::ForeignMember));
    assert_eq!(
        Reason::ForeignMember.message(),
        "spare belongs to another setup"
    );
}

#[test]
fn no_metadata_or_no_members_is_a_veto() {
    let i = Inputs {
        copies_valid: 0,
        ..perfect(2)
    };
    check(i, 0, Verdict::Refuse(Reason::NoValidMetadata));
    let i = Inputs {
        members_found: 0,
        members_at_highest: 0,
        ..perfect(2)
    };
    check(i, 0, Verdict::Refuse(Reason::NoMembers));
}

#[test]
fn inconsistent_inputs_are_refused() {
    let bad = [
        Inputs {
            copies_valid: 5,
            ..perfect(2)
        },
        Inputs {
            copies_total: 0,
            copies_valid: 0,
            ..perfect(2)
        },
        Inputs {
            members_found: 3,
            ..perfect(2)
        },
        Inputs {
            members_at_highest: 0,
            ..perfect(2)
        },
        Inputs {
            max_sequence_lag: 43,
            ..perfect(2)
        },
        Inputs {
            clean_shutdown: 2,
            ..perfect(2)
        },
        Inputs {
            main_identifier: 3,
            ..perfect(2)
        },
        Inputs {
            reserved: [0, 1, 0],
            ..perfect(2)
        },
        Inputs::default(),
    ];
    for i in bad {
        check(i, 0, Verdict::Refuse(Reason::InconsistentInputs));
    }
}

#[test]
fn middle_of_the_range() {
    // Half the copies (15), all members (30), half of them current (5) and far behind (0),
    // unknown WWN (0), unclean shutdown (0), two years old (0).
    let i = Inputs {
        copies_valid: 2,
        members_at_highest: 1,
        max_sequence_lag: 30,
        main_identifier: IDENTIFIER_UNKNOWN,
        clean_shutdown: NO,
        age_seconds: 730 * DAY,
        ..perfect(2)
    };
    check(i, 50, Verdict::Refuse(Reason::CorruptMetadata));
    assert_eq!(assess(&i, 50), Verdict::Degraded);
    // Barely anything but no veto: one valid copy of many, one member of many.
    let i = Inputs {
        copies_valid: 1,
        copies_total: 1000,
        members_found: 1,
        members_at_highest: 1,
        members_expected: 1000,
        max_sequence_lag: 42,
        main_identifier: IDENTIFIER_UNKNOWN,
        clean_shutdown: NO,
        age_seconds: 730 * DAY,
        ..perfect(2)
    };
    check(i, 0, Verdict::Refuse(Reason::MemberMissing));
    assert_eq!(assess(&i, 0), Verdict::Degraded);
}

#[test]
fn soft_deficiencies_lower_the_score_without_repair() {
    let i = Inputs {
        main_identifier: IDENTIFIER_UNKNOWN,
        clean_shutdown: NO,
        age_seconds: 400 * DAY,
        ..perfect(2)
    };
    check(i, 80, Verdict::Assemble);
    assert_eq!(assess(&i, 81), Verdict::Refuse(Reason::IdentityUnconfirmed));
    let unclean = Inputs {
        clean_shutdown: NO,
        ..perfect(2)
    };
    assert_eq!(calculate_confidence_score(&unclean), 95);
    assert_eq!(
        assess(&unclean, 96),
        Verdict::Refuse(Reason::UncleanShutdown)
    );
    for (age, score) in [
        (DAY, 100),
        (DAY + 1, 99),
        (7 * DAY, 99),
        (30 * DAY, 98),
        (90 * DAY, 97),
        (365 * DAY, 96),
        (365 * DAY + 1, 95),
    ] {
        let i = Inputs {
            age_seconds: age,
            ..perfect(2)
        };
        assert_eq!(calculate_confidence_score(&i), score, "age {age}");
    }
    let old = Inputs {
        age_seconds: 2 * DAY,
        ..perfect(2)
    };
    assert_eq!(assess(&old, 100), Verdict::Refuse(Reason::OldMetadata));
    assert_eq!(
        assess(&perfect(2), 101),
        Verdict::Refuse(Reason::LowConfidence)
    );
}

#[test]
fn veto_order_puts_foreign_members_first() {
    let i = Inputs {
        uuid_agree: NO,
        main_size_matches: NO,
        ..perfect(2)
    };
    assert_eq!(veto(&i), Some(Reason::ForeignMember));
    assert_eq!(veto(&perfect(2)), None);
}

#[test]
fn inputs_layout_is_fixed() {
    assert_eq!(size_of::<Inputs>(), 56);
    assert_eq!(align_of::<Inputs>(), 8);
    assert_eq!(offset_of!(Inputs, highest_sequence), 0);
    assert_eq!(offset_of!(Inputs, max_sequence_lag), 8);
    assert_eq!(offset_of!(Inputs, age_seconds), 16);
    assert_eq!(offset_of!(Inputs, copies_valid), 24);
    assert_eq!(offset_of!(Inputs, copies_total), 28);
    assert_eq!(offset_of!(Inputs, members_found), 32);
    assert_eq!(offset_of!(Inputs, members_expected), 36);
    assert_eq!(offset_of!(Inputs, members_at_highest), 40);
    assert_eq!(offset_of!(Inputs, main_size_matches), 44);
    assert_eq!(offset_of!(Inputs, main_block_size_matches), 45);
    assert_eq!(offset_of!(Inputs, main_identifier), 46);
    assert_eq!(offset_of!(Inputs, uuid_agree), 47);
    assert_eq!(offset_of!(Inputs, clean_shutdown), 48);
    assert_eq!(offset_of!(Inputs, reserved), 49);
}

#[test]
fn reason_messages_are_short_and_distinct() {
    let all = [
        Reason::InconsistentInputs,
        Reason::ForeignMember,
        Reason::MainSizeMismatch,
        Reason::MainBlockSizeMismatch,
        Reason::MainIdentifierMismatch,
        Reason::NoMembers,
        Reason::NoValidMetadata,
        Reason::MemberMissing,
        Reason::CorruptMetadata,
        Reason::StaleMember,
        Reason::IdentityUnconfirmed,
        Reason::UncleanShutdown,
        Reason::OldMetadata,
        Reason::LowConfidence,
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.message().is_empty() && a.message().len() < 80);
        for b in &all[i + 1..] {
            assert_ne!(a.message(), b.message());
        }
    }
    assert_eq!(Reason::MemberMissing.message(), "member missing");
    assert_eq!(
        Reason::MainSizeMismatch.message(),
        "main device size differs from the recorded size"
    );
}
