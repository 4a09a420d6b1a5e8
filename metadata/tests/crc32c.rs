//! CRC-32C against published vectors (RFC 3720 B.4 and the common check value).

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_metadata::crc32c::{crc32c, Crc32c};

#[test]
fn check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn empty_input() {
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn rfc3720_vectors() {
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let inc: Vec<u8> = (0u8..32).collect();
    assert_eq!(crc32c(&inc), 0x46DD_794E);
    let dec: Vec<u8> = (0u8..32).rev().collect();
    assert_eq!(crc32c(&dec), 0x113F_DB5C);
}

#[test]
fn incremental_matches_one_shot() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    for split in [0, 1, 7, 500, 999, 1000] {
        let (a, b) = data.split_at(split);
        let mut c = Crc32c::new();
        c.update(a);
        c.update(b);
        assert_eq!(c.finish(), crc32c(&data), "split at {split}");
    }
}

/// The bit-at-a-time definition, to check the sliced tables against at every length and alignment.
fn bitwise(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn sliced_matches_the_bitwise_definition_at_every_length_and_offset() {
    let data: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for start in 0..9 {
        for end in start..data.len() {
            assert_eq!(
                crc32c(&data[start..end]),
                bitwise(&data[start..end]),
                "{start}..{end}"
            );
        }
    }
}
