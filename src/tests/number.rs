//! Strict decimal parsing.

use dm_remap_v4_target::number::{parse_u32, parse_u64};

#[test]
fn accepts_plain_decimal() {
    assert_eq!(parse_u64(b"0"), Some(0));
    assert_eq!(parse_u64(b"007"), Some(7));
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
}

#[test]
fn rejects_everything_else() {
    for bad in [
        &b""[..],
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"0x10",
        b"1e3",
        b"18446744073709551616",
    ] {
        assert_eq!(parse_u64(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(parse_u32(b"4294967296"), None);
}
