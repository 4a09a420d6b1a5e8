//! Arbitrary bytes as a persisted spare bitmap: decoding and loading must give `Ok` or an error, never a
//! panic; a bitmap that loads must have consistent counts and encode back to the blocks it was decoded from.
//!
//! Input: units (u16 LE), block size in bytes (1..=255, so also sizes that are not whole words), how many
//! words to take off the caller's buffer (0..=3, for too-small buffers), then the blocks; the trailing
//! remainder (possibly empty) is decoded too.
#![no_main]

use dm_remap_v4_spare_pool::bitmap::{decode_block, words_needed, Bitmap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [u0, u1, block_bytes, shrink, rest @ ..] = data else {
        return;
    };
    let units = u64::from(u16::from_le_bytes([*u0, *u1]));
    let block_bytes = usize::from(*block_bytes).max(1);
    let needed = words_needed(units).expect("u16 units always fit");
    let mut words = vec![0u64; needed.saturating_sub(usize::from(shrink & 3))];

    let blocks = rest.chunks_exact(block_bytes);
    // A short trailing block (or a whole input shorter than one block), decoded on the side.
    let _ = decode_block(&mut words.clone(), 0, blocks.remainder());
    let decoded: Vec<(usize, &[u8])> = blocks
        .enumerate()
        .filter(|&(i, block)| decode_block(&mut words, i, block).is_ok())
        .collect();

    let Ok(bitmap) = Bitmap::load(&mut words, units) else {
        return;
    };
    let c = bitmap.counts();
    assert_eq!(c.total, units);
    assert_eq!(c.used + c.free + c.retired, c.total);
    let mut out = vec![0u8; block_bytes];
    for (i, block) in decoded {
        bitmap
            .encode_block(i, &mut out)
            .expect("encode a block that decoded");
        assert_eq!(out, block, "block {i} does not round-trip");
    }
});
