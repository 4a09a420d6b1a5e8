//! What the fuzz targets share.
// Each fuzz target uses only part of this module.
#![allow(dead_code)]

/// The words device-mapper would pass a target: the line up to the first NUL, split on the kernel's
/// `isspace()` characters as `dm_split_args()` does (backslash escapes are not modelled).
pub fn split_args(data: &[u8]) -> Vec<&[u8]> {
    let line = data.split(|&b| b == 0).next().unwrap_or(&[]);
    line.split(|b| b" \t\n\x0b\x0c\r".contains(b))
        .filter(|w| !w.is_empty())
        .collect()
}

/// `word` as a plain decimal `u64` (digits only: `str::parse` alone would also take a `+`).
pub fn decimal(word: &&[u8]) -> Option<u64> {
    let digits = word.iter().all(u8::is_ascii_digit);
    digits.then(|| std::str::from_utf8(word).ok()?.parse().ok())?
}
