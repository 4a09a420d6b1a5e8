//! The background scrub's arithmetic and its status lines.
#![allow(clippy::unwrap_used)]

use dm_remap_v4_target::outbuf::OutBuf;
use dm_remap_v4_target::scrub::{
    chunk_at, chunk_units, is_slow, pace_micros, proactive_allowed, resume_position,
    write_scrub_status, ScrubView, CHUNK_BYTES,
};

#[test]
fn chunks_cover_the_device_once_and_end() {
    assert_eq!(chunk_units(4096), 16);
    assert_eq!(chunk_units(512), 128);
    assert_eq!(chunk_units(0), 1);
    assert_eq!(chunk_units(CHUNK_BYTES * 2), 1);
    // 40 units in chunks of 16: 16, 16, 8, then done.
    let mut pos = 0;
    let mut seen = Vec::new();
    while let Some((first, n)) = chunk_at(pos, 40, 16) {
        assert_eq!(first, pos);
        seen.push(n);
        pos += u64::from(n);
    }
    assert_eq!(seen, [16, 16, 8]);
    assert_eq!(pos, 40);
    assert_eq!(chunk_at(40, 40, 16), None);
    assert_eq!(chunk_at(41, 40, 16), None);
    assert_eq!(chunk_at(0, 0, 16), None);
    assert_eq!(
        chunk_at(u64::MAX - 1, u64::MAX, 16),
        Some((u64::MAX - 1, 1))
    );
}

#[test]
fn a_saved_position_outside_the_device_restarts_the_pass() {
    assert_eq!(resume_position(10, 40), 10);
    assert_eq!(resume_position(39, 40), 39);
    assert_eq!(resume_position(40, 40), 0);
    assert_eq!(resume_position(u64::MAX, 40), 0);
}

#[test]
fn pacing_matches_the_rate() {
    // 1 KiB at 1 KiB/s: one second.
    assert_eq!(pace_micros(1024, 1), 1_000_000);
    // A 64 KiB chunk at 8 MiB/s: 7.8125 ms.
    assert_eq!(pace_micros(65536, 8192), 7812);
    // At the largest rate, 1 GiB/s.
    assert_eq!(pace_micros(65536, 1 << 20), 61);
    assert_eq!(pace_micros(0, 1), 0);
    // Rate 0 is treated as 1 and nothing overflows.
    assert_eq!(pace_micros(1024, 0), 1_000_000);
    assert!(pace_micros(u64::MAX, 1) > 0);
}

#[test]
fn slow_is_strictly_above_the_threshold() {
    assert!(!is_slow(40_000, 40));
    assert!(is_slow(40_001, 40));
    assert!(!is_slow(0, 1));
    assert!(is_slow(u64::MAX, 60_000));
}

#[test]
fn status_lines() {
    let mut buf = [0u8; 256];
    let mut out = OutBuf::new(&mut buf);
    write_scrub_status(
        &mut out,
        &ScrubView {
            running: true,
            position_sector: 2048,
            total_sectors: 131072,
            passes: 1,
            scanned_bytes: 1048576,
            found_pending: 2,
            relocated: 3,
            rate_kib: 8192,
            slow_threshold_ms: 1000,
            pass_found: 1,
            last_pass_found: 4,
            prev_pass_found: 2,
        },
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(out.as_bytes()).unwrap(),
        "state=running\nposition=2048\ntotal=131072\npasses=1\nscanned_bytes=1048576\nfound_pending=2\n\
         relocated=3\nrate_kib=8192\nslow_threshold_ms=1000\npass_found=1\nlast_pass_found=4\nprev_pass_found=2\n"
    );
}

#[test]
fn growth_needs_two_passes_and_counts_only_more_findings() {
    let v = |passes, last, prev| ScrubView {
        passes,
        last_pass_found: last,
        prev_pass_found: prev,
        ..ScrubView::default()
    };
    assert_eq!(v(0, 0, 0).growth(), 0);
    assert_eq!(v(1, 5, 0).growth(), 0);
    assert_eq!(v(2, 5, 0).growth(), 5);
    assert_eq!(v(2, 5, 3).growth(), 2);
    assert_eq!(v(3, 3, 5).growth(), 0);
    assert_eq!(v(9, u64::MAX, 0).growth(), u64::MAX);
}

#[test]
fn proactive_relocation_keeps_a_tenth_of_the_spare_free() {
    // 8 units: the reserve is one unit, so 7 may be used by slow units.
    assert!(proactive_allowed(0, 8));
    assert!(proactive_allowed(6, 8));
    assert!(!proactive_allowed(7, 8));
    assert!(!proactive_allowed(8, 8));
    assert!(!proactive_allowed(9, 8));
    // 1000 units: 100 stay free.
    assert!(proactive_allowed(899, 1000));
    assert!(!proactive_allowed(900, 1000));
    // Nothing to spare.
    assert!(!proactive_allowed(0, 0));
    assert!(!proactive_allowed(0, 1));
    // No overflow at the ends.
    assert!(proactive_allowed(0, u64::MAX));
    assert!(!proactive_allowed(u64::MAX, u64::MAX));
}
