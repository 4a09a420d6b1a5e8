//! Status formatting and the output buffer's device-mapper semantics.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use core::fmt::Write;

use dm_remap_v4_target::outbuf::OutBuf;
use dm_remap_v4_target::status::{write_ima, write_info, write_table, IoCounters, StatusView};

fn view() -> StatusView<'static> {
    StatusView {
        name: "dm-remap-v4",
        version: [0, 1, 0],
        main: "7:0",
        spares: &["7:1"],
        main_id: None,
        unit_bytes: 4096,
        spare_used: 9,
        spare_total: 10,
        remapped: 7,
        pending: 8,
        state: "ok",
        metadata: "ok",
        metadata_repaired: 1,
        metadata_version: 3,
        retries: 1,
        min_spare_percent: 0,
        format_foreign: false,
        io: IoCounters {
            reads: 1,
            writes: 2,
            flushes: 3,
            discards: 4,
            read_errors: 5,
            write_errors: 6,
            device_errors: 7,
        },
        health: 93,
        scrub_rate_kib: 8192,
        slow_threshold_ms: 1000,
        scrub_running: true,
        scrub_sector: 2048,
        remaps: [11, 12, 13],
    }
}

fn render(f: fn(&mut OutBuf<'_>, &StatusView<'_>) -> core::fmt::Result) -> String {
    let mut buf = [0xffu8; 512];
    let mut out = OutBuf::new(&mut buf);
    f(&mut out, &view()).unwrap();
    assert!(!out.overflowed());
    String::from_utf8(out.as_bytes().to_vec()).unwrap()
}

#[test]
fn info_is_key_value_tokens() {
    assert_eq!(
        render(|w, v| write_info(w, v)),
        "unit_bytes=4096 remapped=7 pending=8 spare_used=9 spare_total=10 metadata=ok metadata_repaired=1 metadata_version=3 \
         reads=1 writes=2 flushes=3 discards=4 read_errors=5 write_errors=6 \
         device_errors=7 state=ok spares=1 health=93 scrub=running scrub_sector=2048 \
         remaps_auto=11 remaps_manual=12 remaps_proactive=13"
    );
}

#[test]
fn stats_lines_match_the_info_tokens() {
    let stats = render(|w, v| dm_remap_v4_target::status::write_stats(w, &v.io));
    let info = render(|w, v| write_info(w, v));
    assert_eq!(stats.lines().count(), 7);
    for line in stats.lines() {
        assert!(info.split(' ').any(|t| t == line), "{line} not in INFO");
    }
}

#[test]
fn table_memory_lines() {
    let mut buf = [0u8; 128];
    let mut out = OutBuf::new(&mut buf);
    let t = dm_remap_v4_target::status::TableMemory {
        run_entries: 1_000_000,
        changes: 12,
        run_bytes: 16_031_256,
    };
    dm_remap_v4_target::status::write_table_memory(&mut out, &t).unwrap();
    assert_eq!(
        String::from_utf8(out.as_bytes().to_vec()).unwrap(),
        "table_run_entries=1000000\ntable_changes=12\ntable_run_bytes=16031256\n"
    );
}

#[test]
fn table_and_ima() {
    assert_eq!(render(|w, v| write_table(w, v)), "7:0 7:1");
    let mut buf = [0u8; 64];
    let mut out = OutBuf::new(&mut buf);
    let v = StatusView {
        retries: 3,
        ..view()
    };
    write_table(&mut out, &v).unwrap();
    // A non-default option is shown, so `dmsetup table` output can be fed back to `dmsetup load`.
    assert_eq!(out.as_bytes(), b"7:0 7:1 2 retries 3");
    assert_eq!(
        render(|w, v| write_ima(w, v)),
        "target_name=dm-remap-v4,target_version=0.1.0,main_device=7:0,spare_device=7:1,spares=1,unit_bytes=4096;"
    );
}

#[test]
fn table_with_every_option_parses_back_to_the_same_line() {
    use dm_remap_v4_target::table::parse_table;
    let mut buf = [0u8; 160];
    let mut out = OutBuf::new(&mut buf);
    let v = StatusView {
        retries: 0,
        min_spare_percent: 105,
        format_foreign: true,
        scrub_rate_kib: 65536,
        slow_threshold_ms: 40,
        main_id: Some("serial:Z1"),
        spares: &["7:1", "7:2", "7:3"],
        ..view()
    };
    write_table(&mut out, &v).unwrap();
    let line = String::from_utf8(out.as_bytes().to_vec()).unwrap();
    assert_eq!(
        line,
        "7:0 7:1 15 retries 0 min_spare_percent 105 format_foreign scrub_rate 65536 slow_threshold_ms 40 \
         main_id serial:Z1 spare 7:2 spare 7:3"
    );
    let words: Vec<&str> = line.split(' ').collect();
    let t = parse_table(words.iter().copied()).unwrap();
    assert_eq!(t.spares().collect::<Vec<_>>(), v.spares);
    assert_eq!(
        (
            t.main,
            t.retries,
            t.min_spare_percent,
            t.format_foreign,
            t.scrub_rate_kib,
            t.slow_threshold_ms,
            t.main_id
        ),
        ("7:0", 0, 105, true, 65536, 40, Some("serial:Z1"))
    );
}

#[test]
fn output_is_nul_terminated() {
    let mut buf = [0xffu8; 16];
    let mut out = OutBuf::new(&mut buf);
    out.write_str("abc").unwrap();
    assert_eq!(out.as_bytes(), b"abc");
    assert_eq!(&buf[..4], b"abc\0");
}

#[test]
fn overflow_fills_the_buffer_as_dm_expects() {
    let mut buf = [0xffu8; 8];
    let mut out = OutBuf::new(&mut buf);
    assert!(out.write_str("0123456789").is_err());
    assert!(out.overflowed());
    assert!(out.write_str("x").is_err());
    // dm_message_test_buffer_overflow(): strlen(result) + 1 >= maxlen.
    let len = buf.iter().position(|&b| b == 0).unwrap();
    assert_eq!(len + 1, buf.len());
}

#[test]
fn empty_buffer_is_safe() {
    let mut buf = [0u8; 0];
    let mut out = OutBuf::new(&mut buf);
    assert!(out.write_str("a").is_err());
    assert!(out.overflowed());
}
