//! Unit tests of the per-spare bitmap: states, errors, counts, cursor, block encoding.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_spare_pool::bitmap::{self, blocks_needed, decode_block, words_needed};
use dm_remap_v4_spare_pool::{Bitmap, Counts, Error, PriorState, UnitState};

#[test]
fn sizes_of_buffers() {
    assert_eq!(words_needed(0), Ok(0));
    assert_eq!(words_needed(1), Ok(2));
    assert_eq!(words_needed(64), Ok(2));
    assert_eq!(words_needed(65), Ok(4));
    // 130 units: 3 words per plane, 6 words = 48 bytes = 2 blocks of 32 bytes.
    assert_eq!(blocks_needed(130, 32), Ok(2));
    assert_eq!(blocks_needed(130, 48), Ok(1));
    assert_eq!(blocks_needed(130, 0), Err(Error::BadBlockSize));
    assert_eq!(blocks_needed(130, 12), Err(Error::BadBlockSize));
}

#[test]
fn buffer_too_small_is_refused() {
    let mut words = [0u64; 3];
    assert_eq!(
        Bitmap::format(&mut words, 65).err(),
        Some(Error::BitmapBufferTooSmall)
    );
}

#[test]
fn allocates_every_unit_once_then_reports_no_space() {
    let mut words = [u64::MAX; 6];
    let mut bm = Bitmap::format(&mut words, 130).unwrap();
    let mut seen = [false; 130];
    for _ in 0..130 {
        let unit = bm.allocate().unwrap();
        assert!(!seen[unit as usize], "unit {unit} handed out twice");
        seen[unit as usize] = true;
    }
    assert_eq!(bm.allocate(), Err(Error::NoSpace));
    assert_eq!(
        bm.counts(),
        Counts {
            total: 130,
            used: 130,
            free: 0,
            retired: 0
        }
    );
}

#[test]
fn free_retire_claim_errors() {
    let mut words = [0u64; 2];
    let mut bm = Bitmap::format(&mut words, 10).unwrap();
    assert_eq!(bm.free(3), Err(Error::DoubleFree));
    assert_eq!(bm.free(10), Err(Error::UnitOutOfRange));
    assert_eq!(bm.claim(3), Ok(()));
    assert_eq!(bm.claim(3), Err(Error::AlreadyUsed));
    assert_eq!(bm.state(3), Ok(UnitState::Used));
    assert_eq!(bm.retire(3), Ok(PriorState::Used));
    assert_eq!(bm.retire(3), Err(Error::AlreadyRetired));
    assert_eq!(bm.free(3), Err(Error::UnitRetired));
    assert_eq!(bm.claim(3), Err(Error::UnitRetired));
    assert_eq!(bm.retire(4), Ok(PriorState::Free));
    assert_eq!(
        bm.counts(),
        Counts {
            total: 10,
            used: 0,
            free: 8,
            retired: 2
        }
    );
    // Retired units are never handed out again.
    for _ in 0..8 {
        let unit = bm.allocate().unwrap();
        assert!(unit != 3 && unit != 4);
    }
    assert_eq!(bm.allocate(), Err(Error::NoSpace));
}

#[test]
fn cursor_rotates_past_freed_units() {
    let mut words = [0u64; 4];
    let mut bm = Bitmap::format(&mut words, 128).unwrap();
    for expected in 0..70 {
        assert_eq!(bm.allocate(), Ok(expected));
    }
    bm.free(0).unwrap();
    // The cursor sits in word 1, so the search continues there before wrapping to unit 0.
    assert_eq!(bm.allocate(), Ok(70));
    for _ in 71..128 {
        bm.allocate().unwrap();
    }
    assert_eq!(bm.allocate(), Ok(0));
    assert_eq!(bm.allocate(), Err(Error::NoSpace));
}

#[test]
fn load_refuses_corrupt_bitmaps() {
    // Bit past the last unit in the used plane.
    let mut words = [0u64, 0];
    words[0] = 1 << 10;
    assert_eq!(
        Bitmap::load(&mut words, 10).err(),
        Some(Error::CorruptBitmap)
    );
    // Same unit used and retired.
    let mut words = [1u64, 1];
    assert_eq!(
        Bitmap::load(&mut words, 10).err(),
        Some(Error::CorruptBitmap)
    );
    // A valid one is counted.
    let mut words = [0b1011u64, 0b0100];
    let bm = Bitmap::load(&mut words, 10).unwrap();
    assert_eq!(
        bm.counts(),
        Counts {
            total: 10,
            used: 3,
            free: 6,
            retired: 1
        }
    );
}

#[test]
fn encoding_is_little_endian_planes_back_to_back() {
    let mut words = [0u64; 2];
    let mut bm = Bitmap::format(&mut words, 64).unwrap();
    bm.claim(0).unwrap();
    bm.claim(9).unwrap();
    bm.retire(63).unwrap();
    let mut block = [0xAAu8; 24];
    bm.encode_block(0, &mut block).unwrap();
    let mut expected = [0u8; 24];
    expected[0] = 0x01;
    expected[1] = 0x02;
    expected[15] = 0x80;
    assert_eq!(block, expected);
    assert_eq!(bm.encode_block(1, &mut block), Err(Error::BlockOutOfRange));
    assert_eq!(
        bm.encode_block(0, &mut block[..7]),
        Err(Error::BadBlockSize)
    );
}

#[test]
fn decode_refuses_nonzero_padding_and_bad_blocks() {
    let mut words = [0u64; 2];
    let mut block = [0u8; 24];
    block[16] = 1;
    assert_eq!(
        decode_block(&mut words, 0, &block),
        Err(Error::CorruptBitmap)
    );
    assert_eq!(
        decode_block(&mut words, 1, &[0u8; 16]),
        Err(Error::BlockOutOfRange)
    );
    assert_eq!(
        decode_block(&mut words, 0, &[0u8; 9]),
        Err(Error::BadBlockSize)
    );
}

#[test]
fn units_per_word_is_64() {
    assert_eq!(bitmap::UNITS_PER_WORD, 64);
}

/// What the kernel module does: one short-lived view per call, resumed from the previous view's tally.
/// After every step the resumed counts equal a full recount, and allocation continues from the cursor
/// (round-robin past freed units) exactly as one long-lived view would.
#[test]
fn resumed_views_behave_like_one_long_lived_view() {
    const UNITS: u64 = 300;
    let mut words = vec![0u64; words_needed(UNITS).unwrap()];
    let mut reference_words = words.clone();
    let mut reference = Bitmap::format(&mut reference_words, UNITS).unwrap();
    let mut tally = Bitmap::format(&mut words, UNITS).unwrap().tally();
    for step in 0..1_000u64 {
        let mut view = Bitmap::resume(&mut words, UNITS, tally).unwrap();
        let (got, want) = match step % 5 {
            0..=2 => (view.allocate(), reference.allocate()),
            3 => {
                let unit = (step * 7) % UNITS;
                (
                    view.free(unit).map(|()| unit),
                    reference.free(unit).map(|()| unit),
                )
            }
            _ => {
                let unit = (step * 13) % UNITS;
                (
                    view.claim(unit).map(|()| unit),
                    reference.claim(unit).map(|()| unit),
                )
            }
        };
        assert_eq!(got, want, "step {step}");
        tally = view.tally();
        assert_eq!(view.counts(), reference.counts(), "step {step}");
        let resumed = view.counts();
        assert_eq!(
            Bitmap::load(&mut words.clone(), UNITS).unwrap().counts(),
            resumed,
            "step {step}"
        );
    }
}
