//! The latency histogram's buckets and the health score's formula.

use dm_remap_v4_target::health::{
    bucket_floor_micros, health_score, latency_bucket, write_latency, HealthInputs, LATENCY_BUCKETS,
};
use proptest::prelude::*;

#[test]
fn buckets_are_powers_of_two_of_microseconds() {
    assert_eq!(latency_bucket(0), 0);
    assert_eq!(latency_bucket(1), 0);
    assert_eq!(latency_bucket(2), 1);
    assert_eq!(latency_bucket(3), 1);
    assert_eq!(latency_bucket(4), 2);
    assert_eq!(latency_bucket(1023), 9);
    assert_eq!(latency_bucket(1024), 10);
    assert_eq!(latency_bucket(1 << 23), LATENCY_BUCKETS - 1);
    assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    for k in 1..LATENCY_BUCKETS {
        assert_eq!(latency_bucket(bucket_floor_micros(k)), k);
        assert_eq!(latency_bucket(bucket_floor_micros(k) - 1), k - 1);
    }
}

#[test]
fn latency_lines_list_the_non_empty_buckets() {
    let mut b = [0u64; LATENCY_BUCKETS];
    b[0] = 3;
    b[7] = 2;
    b[LATENCY_BUCKETS - 1] = 1;
    let mut s = String::new();
    write_latency(&mut s, &b).unwrap();
    assert_eq!(
        s,
        "main_latency_us_ge_0=3\nmain_latency_us_ge_128=2\nmain_latency_us_ge_8388608=1\n"
    );
}

fn healthy() -> HealthInputs {
    HealthInputs {
        ios: 1_000_000,
        device_errors: 0,
        pending: 0,
        spare_used: 0,
        spare_total: 1000,
        scrub_growth: 0,
    }
}

#[test]
fn score_examples() {
    assert_eq!(health_score(&healthy()), 100);
    let with = |f: fn(&mut HealthInputs)| {
        let mut h = healthy();
        f(&mut h);
        health_score(&h)
    };
    assert_eq!(
        with(|h| h.device_errors = 1),
        96,
        "one error per million I/O"
    );
    assert_eq!(
        with(|h| h.device_errors = 1000),
        60,
        "one per thousand: all 40"
    );
    assert_eq!(with(|h| h.pending = 1), 90);
    assert_eq!(with(|h| h.pending = 3), 80);
    assert_eq!(with(|h| h.pending = 4), 70);
    assert_eq!(with(|h| h.spare_used = 500), 85);
    assert_eq!(with(|h| h.spare_used = 1000), 70);
    assert_eq!(with(|h| h.spare_total = 0), 70, "no spare units at all");
    assert_eq!(
        with(|h| h.scrub_growth = 1),
        95,
        "one more unit found than by the pass before"
    );
    assert_eq!(with(|h| h.scrub_growth = 2), 90);
    assert_eq!(with(|h| h.scrub_growth = 1000), 90);
    // Every part at once still ends at 0, never below.
    assert_eq!(
        with(|h| {
            h.device_errors = 1000;
            h.pending = 4;
            h.spare_used = 1000;
            h.scrub_growth = 9;
        }),
        0
    );
    let worst = HealthInputs {
        ios: 10,
        device_errors: 10,
        pending: 100,
        spare_used: 5,
        spare_total: 5,
        scrub_growth: 0,
    };
    assert_eq!(health_score(&worst), 0);
    assert_eq!(
        health_score(&HealthInputs::default()),
        70,
        "nothing done yet, no spare"
    );
}

proptest! {
    #[test]
    fn score_is_in_range_and_never_rises_with_more_trouble(
        ios in 0u64..u64::MAX,
        errors in 0u64..u64::MAX,
        pending in 0u64..u64::MAX,
        used in 0u64..u64::MAX,
        total in 0u64..u64::MAX,
        growth in 0u64..u64::MAX,
        more in 1u64..1000,
    ) {
        let h = HealthInputs {
            ios,
            device_errors: errors,
            pending,
            spare_used: used,
            spare_total: total,
            scrub_growth: growth,
        };
        let s = health_score(&h);
        prop_assert!(s <= 100);
        let worse = [
            HealthInputs { device_errors: errors.saturating_add(more), ..h },
            HealthInputs { pending: pending.saturating_add(more), ..h },
            HealthInputs { spare_used: used.saturating_add(more), ..h },
            HealthInputs { scrub_growth: growth.saturating_add(more), ..h },
        ];
        for w in worse {
            prop_assert!(health_score(&w) <= s, "{w:?} scored above {h:?}");
        }
    }
}
