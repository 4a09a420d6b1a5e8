//! The persisted free-space bitmap of one spare.
//!
//! Units are numbered `0..units` within the spare's pool area, which starts after the metadata
//! region (see [`super::sizing`]), so no unit number can ever name metadata space.
//!
//! The caller owns the storage: one `&mut [u64]` of [`words_needed`] words holding two planes of
//! [`words_per_plane`] words each, the *used* plane first, then the *retired* plane. Unit `u`
//! is bit `u % 64` of word `u / 64` of a plane. A unit is free when its bit is clear in both.
//! Keeping retired units in their own plane (rather than as "used forever") lets the counts tell
//! them apart and lets `free` refuse a retired unit.
//!
//! For persistence the two planes are encoded back to back as little-endian words, cut into
//! caller-sized blocks ([`Bitmap::encode_block`], [`decode_block`]); checksums are the metadata
//! crate's business.

use super::error::Error;

/// Units tracked by one bitmap word.
pub const UNITS_PER_WORD: u64 = u64::BITS as u64;

/// Bytes of one encoded word.
const WORD_BYTES: usize = 8;

/// What a unit held just before it was retired, so the caller knows whether data must move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorState {
    /// The unit was free: nothing to relocate.
    Free,
    /// The unit held a remap: the caller must remap that sector again.
    Used,
}

/// The state of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// Can be handed out.
    Free,
    /// Handed out, holds a remapped block.
    Used,
    /// Failed; never handed out again.
    Retired,
}

/// Unit counts; `used + free + retired == total` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Units in the pool area.
    pub total: u64,
    /// Units handed out.
    pub used: u64,
    /// Units that can be handed out.
    pub free: u64,
    /// Units that failed and are never handed out.
    pub retired: u64,
}

impl Counts {
    /// The field-by-field sum, saturating (a pool of 16 spares cannot reach `u64::MAX` units).
    pub fn sum(self, other: Counts) -> Counts {
        Counts {
            total: self.total.saturating_add(other.total),
            used: self.used.saturating_add(other.used),
            free: self.free.saturating_add(other.free),
            retired: self.retired.saturating_add(other.retired),
        }
    }
}

/// Words of one plane for `units` units.
pub fn words_per_plane(units: u64) -> Result<usize, Error> {
    usize::try_from(units.div_ceil(UNITS_PER_WORD)).map_err(|_| Error::Overflow)
}

/// Words of the whole bitmap (both planes) for `units` units: the size of the caller's buffer.
pub fn words_needed(units: u64) -> Result<usize, Error> {
    words_per_plane(units)?
        .checked_mul(2)
        .ok_or(Error::Overflow)
}

/// Blocks of `block_bytes` bytes needed to persist the bitmap of `units` units.
pub fn blocks_needed(units: u64, block_bytes: usize) -> Result<usize, Error> {
    let per_block = words_per_block(block_bytes)?;
    Ok(words_needed(units)?.div_ceil(per_block))
}

/// Words in one block, refusing block sizes that do not hold whole words.
fn words_per_block(block_bytes: usize) -> Result<usize, Error> {
    if block_bytes == 0 || block_bytes % WORD_BYTES != 0 {
        return Err(Error::BadBlockSize);
    }
    Ok(block_bytes / WORD_BYTES)
}

/// Index of the first word of block `block`, refusing blocks past the end.
fn block_start(block: usize, words_per_block: usize, total_words: usize) -> Result<usize, Error> {
    let start = block
        .checked_mul(words_per_block)
        .ok_or(Error::BlockOutOfRange)?;
    if start >= total_words {
        return Err(Error::BlockOutOfRange);
    }
    Ok(start)
}

/// Decodes block `block` of a persisted bitmap from `input` (little-endian words) into `words`.
///
/// `words` is the caller's whole bitmap buffer of exactly [`words_needed`] words; decode every
/// block, then validate with [`Bitmap::load`]. Padding past the last word must be zero, so a
/// block from a larger bitmap is caught here rather than silently truncated.
pub fn decode_block(words: &mut [u64], block: usize, input: &[u8]) -> Result<(), Error> {
    let per_block = words_per_block(input.len())?;
    let start = block_start(block, per_block, words.len())?;
    let mut targets = words.iter_mut().skip(start);
    for chunk in input.chunks_exact(WORD_BYTES) {
        let bytes: [u8; WORD_BYTES] = chunk.try_into().map_err(|_| Error::BadBlockSize)?;
        let value = u64::from_le_bytes(bytes);
        match targets.next() {
            Some(word) => *word = value,
            None if value != 0 => return Err(Error::CorruptBitmap),
            None => {}
        }
    }
    Ok(())
}

/// Encodes block `block` of the word sequence `get(0), get(1), ..` of `total_words` words.
fn encode_with(
    get: impl Fn(usize) -> Option<u64>,
    total_words: usize,
    block: usize,
    out: &mut [u8],
) -> Result<(), Error> {
    let per_block = words_per_block(out.len())?;
    let start = block_start(block, per_block, total_words)?;
    for (index, chunk) in (start..).zip(out.chunks_exact_mut(WORD_BYTES)) {
        // Past the last word the block is zero padding.
        let value = if index < total_words {
            get(index).unwrap_or(0)
        } else {
            0
        };
        for (dst, src) in chunk.iter_mut().zip(value.to_le_bytes()) {
            *dst = src;
        }
    }
    Ok(())
}

/// `1 << bit`, zero for an out-of-range bit instead of a panic.
fn bit_mask(bit: u64) -> u64 {
    u32::try_from(bit)
        .ok()
        .and_then(|b| 1u64.checked_shl(b))
        .unwrap_or(0)
}

/// The free-space bitmap of one spare, a view over caller-owned words.
///
/// Counts are cached and kept in step with every change, so reading them is O(1). The search
/// cursor is a hint only (not persisted): allocation scans from the word of the previous
/// allocation, so filling a spare costs O(words) in total rather than O(words) per unit.
#[derive(Debug)]
pub struct Bitmap<'a> {
    used: &'a mut [u64],
    retired: &'a mut [u64],
    units: u64,
    used_count: u64,
    retired_count: u64,
    cursor: usize,
}

/// What a [`Bitmap`] view caches beyond its words: its counts and search cursor. An owner that keeps the
/// words between calls keeps this too and resumes the view with [`Bitmap::resume`] in O(1), instead of
/// re-validating and recounting every word with [`Bitmap::load`] on each allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    used_count: u64,
    retired_count: u64,
    cursor: usize,
}

impl<'a> Bitmap<'a> {
    /// The view again over the words a [`Bitmap`] of the same `units` last changed, with what
    /// [`Bitmap::tally`] returned then. Checks only the buffer size: the words and the tally must be
    /// exactly as that view left them, or the counts will be wrong (a unit is still never handed out twice:
    /// allocation reads the bits themselves).
    pub fn resume(words: &'a mut [u64], units: u64, tally: Tally) -> Result<Self, Error> {
        let (used, retired) = Self::split(words, units)?;
        Ok(Bitmap {
            used,
            retired,
            units,
            used_count: tally.used_count,
            retired_count: tally.retired_count,
            cursor: tally.cursor,
        })
    }

    /// The counts and cursor to resume this view with later.
    pub fn tally(&self) -> Tally {
        Tally {
            used_count: self.used_count,
            retired_count: self.retired_count,
            cursor: self.cursor,
        }
    }

    /// Takes the planes for `units` units out of the caller's buffer (extra words stay unused).
    fn split(words: &'a mut [u64], units: u64) -> Result<(&'a mut [u64], &'a mut [u64]), Error> {
        let plane = words_per_plane(units)?;
        let needed = words_needed(units)?;
        let words = words.get_mut(..needed).ok_or(Error::BitmapBufferTooSmall)?;
        words
            .split_at_mut_checked(plane)
            .ok_or(Error::BitmapBufferTooSmall)
    }

    /// A fresh bitmap of `units` units, all free: clears the caller's words.
    pub fn format(words: &'a mut [u64], units: u64) -> Result<Self, Error> {
        let (used, retired) = Self::split(words, units)?;
        used.iter_mut()
            .chain(retired.iter_mut())
            .for_each(|w| *w = 0);
        Ok(Bitmap {
            used,
            retired,
            units,
            used_count: 0,
            retired_count: 0,
            cursor: 0,
        })
    }

    /// A bitmap of `units` units over words decoded from disk, validated and counted.
    ///
    /// Refuses bits past the last unit and units both used and retired: either means the
    /// persisted bitmap is not one this code wrote, and trusting it could hand out a unit twice.
    pub fn load(words: &'a mut [u64], units: u64) -> Result<Self, Error> {
        let (used, retired) = Self::split(words, units)?;
        let mut bitmap = Bitmap {
            used,
            retired,
            units,
            used_count: 0,
            retired_count: 0,
            cursor: 0,
        };
        let mut used_count: u64 = 0;
        let mut retired_count: u64 = 0;
        for (index, (u, r)) in bitmap.used.iter().zip(bitmap.retired.iter()).enumerate() {
            let outside = !bitmap.valid_mask(index);
            if (u | r) & outside != 0 || u & r != 0 {
                return Err(Error::CorruptBitmap);
            }
            used_count = used_count.saturating_add(u64::from(u.count_ones()));
            retired_count = retired_count.saturating_add(u64::from(r.count_ones()));
        }
        bitmap.used_count = used_count;
        bitmap.retired_count = retired_count;
        Ok(bitmap)
    }

    /// Units in the pool area.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Current counts of this spare.
    pub fn counts(&self) -> Counts {
        let taken = self.used_count.saturating_add(self.retired_count);
        Counts {
            total: self.units,
            used: self.used_count,
            free: self.units.saturating_sub(taken),
            retired: self.retired_count,
        }
    }

    /// Bits of word `index` that name units inside the pool.
    fn valid_mask(&self, index: usize) -> u64 {
        let first = (index as u64).saturating_mul(UNITS_PER_WORD);
        let remaining = self.units.saturating_sub(first);
        if remaining >= UNITS_PER_WORD {
            u64::MAX
        } else {
            bit_mask(remaining).wrapping_sub(1)
        }
    }

    /// Word index and bit mask of `unit`, refusing units outside the pool.
    fn locate(&self, unit: u64) -> Result<(usize, u64), Error> {
        if unit >= self.units {
            return Err(Error::UnitOutOfRange);
        }
        let index = usize::try_from(unit / UNITS_PER_WORD).map_err(|_| Error::UnitOutOfRange)?;
        Ok((index, bit_mask(unit % UNITS_PER_WORD)))
    }

    /// Whether `mask` is set in word `index` of `plane` (false past the end).
    fn test(plane: &[u64], index: usize, mask: u64) -> bool {
        plane.get(index).is_some_and(|w| w & mask != 0)
    }

    /// The state of `unit`.
    pub fn state(&self, unit: u64) -> Result<UnitState, Error> {
        let (index, mask) = self.locate(unit)?;
        Ok(if Self::test(self.retired, index, mask) {
            UnitState::Retired
        } else if Self::test(self.used, index, mask) {
            UnitState::Used
        } else {
            UnitState::Free
        })
    }

    /// Hands out a free unit: the lowest free unit at or after the cursor word, wrapping.
    pub fn allocate(&mut self) -> Result<u64, Error> {
        if self.counts().free == 0 {
            return Err(Error::NoSpace);
        }
        let words = self.used.len();
        let start = self.cursor.min(words);
        for (from, to) in [(start, words), (0, start)] {
            if let Some(index) = self.first_with_room(from, to) {
                let valid = self.valid_mask(index);
                let (Some(used), Some(retired)) =
                    (self.used.get_mut(index), self.retired.get(index))
                else {
                    break;
                };
                let bit = u64::from((!(*used | *retired) & valid).trailing_zeros());
                *used |= bit_mask(bit);
                self.used_count = self.used_count.saturating_add(1);
                self.cursor = index;
                let first = (index as u64).saturating_mul(UNITS_PER_WORD);
                return Ok(first.saturating_add(bit));
            }
        }
        // Only reachable if the counts and bits disagree; refuse rather than guess.
        Err(Error::NoSpace)
    }

    /// Whether word `index` has a unit of the pool neither used nor retired.
    fn has_room(&self, index: usize) -> bool {
        match (self.used.get(index), self.retired.get(index)) {
            (Some(u), Some(r)) => !(u | r) & self.valid_mask(index) != 0,
            _ => false,
        }
    }

    /// The first word in `from..to` with a unit neither used nor retired. Most often that is the word of
    /// the previous allocation. Near a full pool most words are full: they are skipped by a plain comparison
    /// of the two planes (which the compiler unrolls), and only the word found is checked against the pool's
    /// mask. Only the plane's last word has bits past the pool (clear, but not units), so a word found
    /// without room is the last one, and nothing follows it.
    fn first_with_room(&self, from: usize, to: usize) -> Option<usize> {
        if from < to && self.has_room(from) {
            return Some(from);
        }
        let used = self.used.get(from..to)?;
        let retired = self.retired.get(from..to)?;
        let found = used
            .iter()
            .zip(retired)
            .position(|(u, r)| u | r != u64::MAX)?;
        let index = from.saturating_add(found);
        self.has_room(index).then_some(index)
    }

    /// Marks a specific free unit used, for replaying remaps recorded elsewhere.
    pub fn claim(&mut self, unit: u64) -> Result<(), Error> {
        match self.state(unit)? {
            UnitState::Retired => Err(Error::UnitRetired),
            UnitState::Used => Err(Error::AlreadyUsed),
            UnitState::Free => {
                let (index, mask) = self.locate(unit)?;
                let word = self.used.get_mut(index).ok_or(Error::UnitOutOfRange)?;
                *word |= mask;
                self.used_count = self.used_count.saturating_add(1);
                Ok(())
            }
        }
    }

    /// Returns a used unit to the free space (unremap).
    pub fn free(&mut self, unit: u64) -> Result<(), Error> {
        match self.state(unit)? {
            UnitState::Retired => Err(Error::UnitRetired),
            UnitState::Free => Err(Error::DoubleFree),
            UnitState::Used => {
                let (index, mask) = self.locate(unit)?;
                let word = self.used.get_mut(index).ok_or(Error::UnitOutOfRange)?;
                *word &= !mask;
                self.used_count = self.used_count.saturating_sub(1);
                Ok(())
            }
        }
    }

    /// Retires a unit (it failed): it is never handed out again and no longer counts as used
    /// or free. Returns what it held, so the caller knows whether a remap must move.
    pub fn retire(&mut self, unit: u64) -> Result<PriorState, Error> {
        let prior = match self.state(unit)? {
            UnitState::Retired => return Err(Error::AlreadyRetired),
            UnitState::Free => PriorState::Free,
            UnitState::Used => PriorState::Used,
        };
        let (index, mask) = self.locate(unit)?;
        if prior == PriorState::Used {
            let word = self.used.get_mut(index).ok_or(Error::UnitOutOfRange)?;
            *word &= !mask;
            self.used_count = self.used_count.saturating_sub(1);
        }
        let word = self.retired.get_mut(index).ok_or(Error::UnitOutOfRange)?;
        *word |= mask;
        self.retired_count = self.retired_count.saturating_add(1);
        Ok(prior)
    }

    /// Word `index` of the persisted sequence: the used plane, then the retired plane.
    fn persisted_word(&self, index: usize) -> Option<u64> {
        match index.checked_sub(self.used.len()) {
            None => self.used.get(index).copied(),
            Some(rest) => self.retired.get(rest).copied(),
        }
    }

    /// Blocks of `block_bytes` bytes this bitmap encodes to.
    pub fn blocks(&self, block_bytes: usize) -> Result<usize, Error> {
        blocks_needed(self.units, block_bytes)
    }

    /// Encodes block `block` of the bitmap into `out` (whose length is the block size) as
    /// little-endian words, zero-padded past the last word.
    pub fn encode_block(&self, block: usize, out: &mut [u8]) -> Result<(), Error> {
        let total = self.used.len().saturating_add(self.retired.len());
        encode_with(|i| self.persisted_word(i), total, block, out)
    }
}
