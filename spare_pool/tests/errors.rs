//! Every error has a short static message and a negative errno.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_spare_pool::Error;

const ALL: [Error; 16] = [
    Error::NoSpace,
    Error::UnitOutOfRange,
    Error::DoubleFree,
    Error::AlreadyUsed,
    Error::UnitRetired,
    Error::AlreadyRetired,
    Error::BitmapBufferTooSmall,
    Error::CorruptBitmap,
    Error::BadBlockSize,
    Error::BlockOutOfRange,
    Error::NoSuchSpare,
    Error::TooManySpares,
    Error::BadUnitSize,
    Error::SpareTooSmallForMetadata,
    Error::SpareTooSmall {
        required_sectors: 1,
        available_sectors: 0,
    },
    Error::Overflow,
];

#[test]
fn messages_are_short_distinct_and_errnos_negative() {
    for (i, a) in ALL.iter().enumerate() {
        assert!(!a.message().is_empty() && a.message().len() < 64, "{a:?}");
        assert!(a.errno() < 0 && a.errno() > -4096, "{a:?}");
        assert_eq!(a.to_string(), a.message());
        for b in ALL.iter().skip(i + 1) {
            assert_ne!(a.message(), b.message());
        }
    }
    assert_eq!(Error::NoSpace.errno(), -28);
    assert_eq!(Error::DoubleFree.errno(), -22);
    assert_eq!(Error::CorruptBitmap.errno(), -117);
}
