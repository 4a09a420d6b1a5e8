//! Strict decimal parsing for table and message arguments.
//!
//! Stricter than `kstrtou64`: no sign, no leading or trailing garbage, no base prefixes, no overflow, so that a
//! typo in a table line is an error rather than a surprising value.

/// Parses a non-empty run of ASCII digits into a `u64`; `None` on anything else or on overflow.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))?;
    }
    Some(value)
}

/// Like [`parse_u64`], limited to `u32`.
pub fn parse_u32(bytes: &[u8]) -> Option<u32> {
    parse_u64(bytes).and_then(|v| u32::try_from(v).ok())
}
