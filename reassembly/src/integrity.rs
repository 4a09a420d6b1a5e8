//! Integrity of one metadata block: is it an intact superblock this code can read?
//!
//! This is the check `dm_remap_v4_verify_metadata_integrity()` exports. It looks at one block in isolation
//! (structure, checksum, format version, feature bits, the copy's position and geometry that contradicts
//! itself); whether several blocks and devices agree with each other is the confidence score's business.

use super::md::layout::{BLOCK_SIZE, SUPERBLOCK_COPIES};
use super::md::store::check_superblock;
use super::md::superblock::{Superblock, SuperblockFault};

/// Why a block is not an intact superblock. Each maps to one negative errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityError {
    /// The buffer is not exactly one metadata block, or the copy index does not exist.
    BadArgument,
    /// The block is all zeros: nothing was ever written (blank spare).
    Blank,
    /// Not dm-remap-v4 metadata at all.
    Foreign,
    /// dm-remap-v4 magic, but the checksum does not match: corrupted or torn.
    Corrupt,
    /// Intact, but written by a newer format version or with unknown incompatible features.
    Unsupported,
    /// Intact, but it says it is another copy than the position it was read from.
    Misplaced,
    /// Intact, but its geometry contradicts itself.
    Inconsistent,
}

const EINVAL: i32 = -22;
const ENODATA: i32 = -61;
const EOPNOTSUPP: i32 = -95;
const EUCLEAN: i32 = -117;
const EMEDIUMTYPE: i32 = -124;

impl IntegrityError {
    /// The negative errno the exported function returns.
    pub fn errno(self) -> i32 {
        match self {
            Self::BadArgument => EINVAL,
            Self::Blank => ENODATA,
            Self::Foreign => EMEDIUMTYPE,
            Self::Corrupt | Self::Misplaced | Self::Inconsistent => EUCLEAN,
            Self::Unsupported => EOPNOTSUPP,
        }
    }

    /// A short static description.
    pub fn message(self) -> &'static str {
        match self {
            Self::BadArgument => "not one metadata block or no such superblock copy",
            Self::Blank => "blank: no metadata written",
            Self::Foreign => "not dm-remap-v4 metadata",
            Self::Corrupt => "superblock checksum mismatch",
            Self::Unsupported => "superblock of an unsupported format version or feature",
            Self::Misplaced => "superblock copy found at another copy's position",
            Self::Inconsistent => "superblock geometry is inconsistent",
        }
    }
}

/// Checks `block`, read from the position of superblock copy `copy`, and returns the decoded superblock.
pub fn verify_superblock(block: &[u8], copy: u32) -> Result<Superblock, IntegrityError> {
    let blk: &[u8; BLOCK_SIZE] = block.try_into().map_err(|_| IntegrityError::BadArgument)?;
    if usize::try_from(copy).map_or(true, |c| c >= SUPERBLOCK_COPIES) {
        return Err(IntegrityError::BadArgument);
    }
    let sb = Superblock::decode(blk).map_err(|fault| match fault {
        SuperblockFault::Zero => IntegrityError::Blank,
        SuperblockFault::Foreign => IntegrityError::Foreign,
        SuperblockFault::Corrupt => IntegrityError::Corrupt,
        SuperblockFault::Version | SuperblockFault::Incompat => IntegrityError::Unsupported,
    })?;
    if sb.copy_index != copy {
        return Err(IntegrityError::Misplaced);
    }
    check_superblock(&sb).map_err(|_| IntegrityError::Inconsistent)?;
    Ok(sb)
}
