//! Where everything lives in the reserved region, and how big the region is.
//!
//! The region is a whole number of 4096-byte metadata blocks at the start of the spare device:
//!
//! | blocks | contents |
//! | --- | --- |
//! | 0 | superblock copy 0 |
//! | 1 | scrub state copy 0 (`scrub.rs`) |
//! | 2..8 | reserved (zero) |
//! | 8 | superblock copy 1 |
//! | 9 | scrub state copy 1 |
//! | 10..16 | reserved (zero) |
//! | 16.. | checkpoint area A (`checkpoint_blocks`) |
//! | then | checkpoint area B (`checkpoint_blocks`) |
//! | then | journal (`journal_blocks`) |
//!
//! The region ends on a 1 MiB boundary; the spare pool starts right after it.

use super::checkpoint::ENTRIES_PER_BLOCK;
use super::error::Error;

/// Bytes per sector, the unit of [`super::io::BlockIo`] addresses.
pub const SECTOR_SIZE: usize = 512;
/// Bytes per metadata block: the unit of every metadata read and write.
pub const BLOCK_SIZE: usize = 4096;
/// Sectors per metadata block.
pub const SECTORS_PER_BLOCK: u64 = 8;
/// Number of superblock copies.
pub const SUPERBLOCK_COPIES: usize = 2;
/// Block number of each superblock copy; 32 KiB apart so one damaged spot cannot take both.
pub const SUPERBLOCK_BLOCKS: [u64; SUPERBLOCK_COPIES] = [0, 8];
/// Blocks before the first checkpoint area (superblocks and reserved space).
pub const HEADER_BLOCKS: u64 = 16;
/// The region size is rounded up to this many sectors (1 MiB), so the pool starts aligned.
pub const REGION_ALIGN_SECTORS: u64 = 2048;
/// Smallest journal chosen by [`Layout::for_capacity`].
pub const MIN_JOURNAL_BLOCKS: u64 = 256;
/// Largest journal accepted (64 GiB).
pub const MAX_JOURNAL_BLOCKS: u64 = 1 << 24;
/// Smallest entry capacity chosen by [`Layout::for_spare`].
pub const MIN_CAPACITY: u64 = 1024;
/// Largest entry capacity accepted (2 GiB per checkpoint area).
pub const MAX_CAPACITY: u64 = 1 << 26;

/// Sizes of the areas of the reserved region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Maximum number of table entries a checkpoint holds.
    pub capacity: u64,
    /// Blocks in each of the two checkpoint areas.
    pub checkpoint_blocks: u64,
    /// Blocks in the journal.
    pub journal_blocks: u64,
    /// Size of the whole region in sectors; the spare pool starts at this sector.
    pub region_sectors: u64,
}

impl Layout {
    /// The layout for `capacity` entries and a journal of `journal_blocks` blocks.
    pub fn new(capacity: u64, journal_blocks: u64) -> Result<Self, Error> {
        if !(1..=MAX_CAPACITY).contains(&capacity)
            || !(1..=MAX_JOURNAL_BLOCKS).contains(&journal_blocks)
        {
            return Err(Error::BadGeometry);
        }
        let checkpoint_blocks = capacity.div_ceil(ENTRIES_PER_BLOCK as u64);
        let blocks = checkpoint_blocks
            .checked_mul(2)
            .and_then(|b| b.checked_add(HEADER_BLOCKS))
            .and_then(|b| b.checked_add(journal_blocks))
            .ok_or(Error::BadGeometry)?;
        let region_sectors = blocks
            .checked_mul(SECTORS_PER_BLOCK)
            .and_then(|s| s.checked_next_multiple_of(REGION_ALIGN_SECTORS))
            .ok_or(Error::BadGeometry)?;
        Ok(Self {
            capacity,
            checkpoint_blocks,
            journal_blocks,
            region_sectors,
        })
    }

    /// The layout for `capacity` entries with the default journal: as many blocks as one checkpoint area,
    /// at least [`MIN_JOURNAL_BLOCKS`]. A full journal then triggers a checkpoint no bigger than the journal,
    /// so checkpoints at most double the bytes written per commit.
    pub fn for_capacity(capacity: u64) -> Result<Self, Error> {
        let checkpoint_blocks = capacity.div_ceil(ENTRIES_PER_BLOCK as u64);
        Self::new(capacity, checkpoint_blocks.max(MIN_JOURNAL_BLOCKS))
    }

    /// The default layout for a spare of `spare_sectors` split into units of `unit_sectors`: one entry per
    /// unit of the spare, clamped to [`MIN_CAPACITY`]..=[`MAX_CAPACITY`], with the journal of
    /// [`Layout::for_capacity`]. Fails if the spare cannot also hold at least one pool unit.
    pub fn for_spare(spare_sectors: u64, unit_sectors: u64) -> Result<Self, Error> {
        let units = spare_sectors
            .checked_div(unit_sectors)
            .ok_or(Error::BadGeometry)?;
        let layout = Self::for_capacity(units.clamp(MIN_CAPACITY, MAX_CAPACITY))?;
        layout.pool_units(spare_sectors, unit_sectors)?;
        Ok(layout)
    }

    /// Number of whole pool units left on a spare of `spare_sectors` after the region.
    pub fn pool_units(&self, spare_sectors: u64, unit_sectors: u64) -> Result<u64, Error> {
        if unit_sectors == 0 {
            return Err(Error::BadGeometry);
        }
        let units = spare_sectors
            .checked_sub(self.region_sectors)
            .and_then(|s| s.checked_div(unit_sectors))
            .unwrap_or(0);
        if units == 0 {
            return Err(Error::SpareTooSmall);
        }
        Ok(units)
    }

    /// Sector of superblock copy `copy`.
    pub fn superblock_sector(copy: usize) -> Option<u64> {
        SUPERBLOCK_BLOCKS
            .get(copy)
            .and_then(|b| b.checked_mul(SECTORS_PER_BLOCK))
    }

    /// Sector of block `block` of checkpoint area `area` (0 = A, 1 = B).
    pub fn checkpoint_sector(&self, area: u32, block: u64) -> Result<u64, Error> {
        if area > 1 || block >= self.checkpoint_blocks {
            return Err(Error::BadGeometry);
        }
        self.checkpoint_blocks
            .checked_mul(u64::from(area))
            .and_then(|b| b.checked_add(HEADER_BLOCKS))
            .and_then(|b| b.checked_add(block))
            .and_then(|b| b.checked_mul(SECTORS_PER_BLOCK))
            .ok_or(Error::BadGeometry)
    }

    /// Sector of journal block `block`.
    pub fn journal_sector(&self, block: u64) -> Result<u64, Error> {
        if block >= self.journal_blocks {
            return Err(Error::BadGeometry);
        }
        self.checkpoint_blocks
            .checked_mul(2)
            .and_then(|b| b.checked_add(HEADER_BLOCKS))
            .and_then(|b| b.checked_add(block))
            .and_then(|b| b.checked_mul(SECTORS_PER_BLOCK))
            .ok_or(Error::BadGeometry)
    }
}
