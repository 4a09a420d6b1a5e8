//! The superblock: identity of the setup, geometry, and the pointer to the current checkpoint and journal.
//!
//! Field offsets are listed in `docs/metadata-format.md`; the encoder writes them in that order.

use super::block::{self, Block, Seal, ENVELOPE_SIZE};
use super::le::{Reader, Writer};

/// Magic of a superblock: "DMR4" in the first four bytes.
pub const SUPERBLOCK_MAGIC: u32 = u32::from_le_bytes(*b"DMR4");
/// Format version written and understood by this code.
pub const FORMAT_VERSION: u32 = 1;
/// Incompatible feature bits this code understands (none yet): any other set bit refuses the region.
pub const KNOWN_INCOMPAT: u64 = 0;
pub use super::abi::MAIN_ID_SIZE;

/// Identity of the main device a setup was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MainIdentity {
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Logical block size in bytes.
    pub logical_block_size: u32,
    /// Stable identifier such as a WWN or serial number, zero-padded.
    pub id: [u8; MAIN_ID_SIZE],
}

impl MainIdentity {
    /// Whether a main device with this identity may be the one `recorded` describes: size and logical block
    /// size must be equal ([`Error::MainMismatch`] otherwise). An all-zero identifier means unknown (many
    /// virtual disks have none), so identifiers are compared only when both are known
    /// ([`Error::MainIdMismatch`]).
    ///
    /// [`Error::MainMismatch`]: super::error::Error::MainMismatch
    /// [`Error::MainIdMismatch`]: super::error::Error::MainIdMismatch
    pub fn check_against(&self, recorded: &Self) -> Result<(), super::error::Error> {
        if self.sectors != recorded.sectors
            || self.logical_block_size != recorded.logical_block_size
        {
            return Err(super::error::Error::MainMismatch);
        }
        let known = |id: &[u8; MAIN_ID_SIZE]| id.iter().any(|&b| b != 0);
        if known(&self.id) && known(&recorded.id) && self.id != recorded.id {
            return Err(super::error::Error::MainIdMismatch);
        }
        Ok(())
    }
}

/// Decoded superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Which copy this is; must match the position it was read from.
    pub copy_index: u32,
    /// Incompatible feature bits: unknown ones make the region unusable.
    pub incompat: u64,
    /// Compatible feature bits: unknown ones are ignored and preserved.
    pub compat: u64,
    /// Setup UUID, generated once by the caller when the setup is created.
    pub uuid: [u8; 16],
    /// This spare's index among the setup's spares.
    pub member_index: u32,
    /// Number of spares in the setup.
    pub member_count: u32,
    /// Members removed from the setup (drained): bit `i` set = member `i` was removed. Only ever grows; no bit
    /// at or above `member_count`. A removed index is never reused, and no record may name it.
    pub removed_members: u32,
    /// The main device.
    pub main: MainIdentity,
    /// Size of the reserved region in sectors.
    pub region_sectors: u64,
    /// First sector of the spare pool.
    pub pool_start: u64,
    /// Pool size in units.
    pub pool_units: u64,
    /// Unit size in sectors.
    pub unit_sectors: u64,
    /// Entry capacity of each checkpoint area.
    pub capacity: u64,
    /// Blocks in the journal.
    pub journal_blocks: u64,
    /// Metadata version: incremented by every superblock update (format = 1).
    pub meta_version: u64,
    /// Sequence number of the last commit contained in the checkpoint; never reset.
    pub commit_seq: u64,
    /// Nonce of the current journal generation; also stamped in the checkpoint's blocks.
    pub journal_nonce: u64,
    /// Entries in the current checkpoint.
    pub checkpoint_entries: u64,
    /// CRC-32C of the current checkpoint's encoded entries, in order.
    pub checkpoint_crc: u32,
    /// Checkpoint area holding the current checkpoint: 0 = A, 1 = B.
    pub active_area: u32,
}

/// Why a block is not a usable superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuperblockFault {
    /// The block is all zeros.
    Zero,
    /// The block is not a superblock.
    Foreign,
    /// Superblock magic but bad checksum.
    Corrupt,
    /// Valid checksum, unknown format version.
    Version,
    /// Valid checksum, unknown incompatible feature bits.
    Incompat,
}

impl Superblock {
    /// Encodes into `out` (whole block, sealed).
    pub fn encode(&self, out: &mut Block) {
        out.fill(0);
        let (_, body) = out.split_at_mut(ENVELOPE_SIZE);
        let mut w = Writer::new(body);
        w.u32(self.version);
        w.u32(self.copy_index);
        w.u64(self.incompat);
        w.u64(self.compat);
        w.bytes(self.uuid);
        w.u32(self.member_index);
        w.u32(self.member_count);
        w.u64(self.main.sectors);
        w.u32(self.main.logical_block_size);
        w.u32(self.removed_members);
        w.bytes(self.main.id);
        w.u64(self.region_sectors);
        w.u64(self.pool_start);
        w.u64(self.pool_units);
        w.u64(self.unit_sectors);
        w.u64(self.capacity);
        w.u64(self.journal_blocks);
        w.u64(self.meta_version);
        w.u64(self.commit_seq);
        w.u64(self.journal_nonce);
        w.u64(self.checkpoint_entries);
        w.u32(self.checkpoint_crc);
        w.u32(self.active_area);
        block::seal(out, SUPERBLOCK_MAGIC);
    }

    /// Decodes a block, checking magic, checksum, version and incompatible features.
    ///
    /// Field consistency (geometry, counters, the removed-members mask) is checked by the loader, which knows
    /// the layout rules.
    pub fn decode(blk: &Block) -> Result<Self, SuperblockFault> {
        match block::check(blk, SUPERBLOCK_MAGIC) {
            Seal::Valid => {}
            Seal::Zero => return Err(SuperblockFault::Zero),
            Seal::BadMagic => return Err(SuperblockFault::Foreign),
            Seal::BadCrc => return Err(SuperblockFault::Corrupt),
        }
        let (_, body) = blk.split_at(ENVELOPE_SIZE);
        let mut r = Reader::new(body);
        let version = r.u32();
        if version != FORMAT_VERSION {
            return Err(SuperblockFault::Version);
        }
        let copy_index = r.u32();
        let incompat = r.u64();
        if incompat & !KNOWN_INCOMPAT != 0 {
            return Err(SuperblockFault::Incompat);
        }
        let compat = r.u64();
        let uuid = r.bytes();
        let member_index = r.u32();
        let member_count = r.u32();
        let main_sectors = r.u64();
        let logical_block_size = r.u32();
        let removed_members = r.u32();
        let id = r.bytes();
        Ok(Self {
            version,
            copy_index,
            incompat,
            compat,
            uuid,
            member_index,
            member_count,
            removed_members,
            main: MainIdentity {
                sectors: main_sectors,
                logical_block_size,
                id,
            },
            region_sectors: r.u64(),
            pool_start: r.u64(),
            pool_units: r.u64(),
            unit_sectors: r.u64(),
            capacity: r.u64(),
            journal_blocks: r.u64(),
            meta_version: r.u64(),
            commit_seq: r.u64(),
            journal_nonce: r.u64(),
            checkpoint_entries: r.u64(),
            checkpoint_crc: r.u32(),
            active_area: r.u32(),
        })
    }

    /// Whether `other` describes the same state (every field but the copy index equal).
    pub fn same_state(&self, other: &Self) -> bool {
        Self {
            copy_index: other.copy_index,
            ..*self
        } == *other
    }

    /// Whether member `index` was removed from the setup (its bit is set in `removed_members`).
    pub fn is_removed(&self, index: u32) -> bool {
        is_removed(self.removed_members, index)
    }
}

/// Whether bit `index` is set in the removed-members mask `mask` (indices of 32 and above never are).
pub fn is_removed(mask: u32, index: u32) -> bool {
    1u32.checked_shl(index).is_some_and(|bit| mask & bit != 0)
}

/// Whether the removed-members mask `mask` names only members of a setup of `member_count` spares.
pub fn removed_within(mask: u32, member_count: u32) -> bool {
    match 1u32.checked_shl(member_count) {
        Some(limit) => mask < limit,
        // 32 members or more: every bit names a member.
        None => true,
    }
}
