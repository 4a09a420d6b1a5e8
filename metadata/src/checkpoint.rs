//! Checkpoints: the whole table written to the inactive A/B area, replacing the journal.
//!
//! A checkpoint block holds a 32-byte header and up to [`ENTRIES_PER_BLOCK`] records. Blocks are stamped
//! with the metadata version and journal nonce of the superblock that will point to them, so blocks left
//! over from an older checkpoint in the same area are never taken for current ones.

use super::block::{self, Block, Seal, ENVELOPE_SIZE};
use super::crc32c::Crc32c;
use super::error::Error;
use super::io::BlockIo;
use super::layout::{Layout, BLOCK_SIZE};
use super::le::{Reader, Writer};
use super::record::{EntryState, Limits, Record, RecordSink, RECORD_SIZE};

/// Magic of a checkpoint block: "DMRC".
pub const CHECKPOINT_MAGIC: u32 = u32::from_le_bytes(*b"DMRC");
/// Bytes of a checkpoint block header, envelope included.
pub const HEADER_SIZE: usize = 32;
/// Records per checkpoint block.
pub const ENTRIES_PER_BLOCK: usize = (BLOCK_SIZE - HEADER_SIZE) / RECORD_SIZE;

/// Header of one checkpoint block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointHeader {
    /// Metadata version of the superblock this checkpoint belongs to.
    pub meta_version: u64,
    /// Journal nonce of that superblock.
    pub nonce: u64,
    /// Position of this block within the checkpoint.
    pub block_index: u32,
    /// Records in this block.
    pub entry_count: u32,
}

impl CheckpointHeader {
    /// Writes the header into `blk` and seals it; the records must already be in place.
    pub fn encode(&self, blk: &mut Block) {
        let mut w = Writer::new(blk.get_mut(ENVELOPE_SIZE..).unwrap_or(&mut []));
        w.u64(self.meta_version);
        w.u64(self.nonce);
        w.u32(self.block_index);
        w.u32(self.entry_count);
        block::seal(blk, CHECKPOINT_MAGIC);
    }

    /// The header of a sealed checkpoint block, or `None`.
    pub fn decode(blk: &Block) -> Option<Self> {
        if block::check(blk, CHECKPOINT_MAGIC) != Seal::Valid {
            return None;
        }
        let mut r = Reader::new(blk.get(ENVELOPE_SIZE..).unwrap_or(&[]));
        Some(Self {
            meta_version: r.u64(),
            nonce: r.u64(),
            block_index: r.u32(),
            entry_count: r.u32(),
        })
    }
}

/// The record slots of a block.
fn slots(blk: &Block) -> core::slice::ChunksExact<'_, u8> {
    blk.get(HEADER_SIZE..)
        .unwrap_or(&[])
        .chunks_exact(RECORD_SIZE)
}

/// Summary of a written checkpoint, for the superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Entries written.
    pub entries: u64,
    /// CRC-32C of all encoded entries in order.
    pub crc: u32,
}

/// Writes every entry of `entries` into checkpoint area `area`, without flushing.
///
/// Fails with [`Error::TableFull`] past the layout's capacity and [`Error::BadRecord`] for an entry outside
/// `limits`; the area is scratch until a superblock points to it, so a failure leaves the metadata intact.
pub fn write<I: BlockIo, E: Iterator<Item = Record>>(
    io: &mut I,
    blk: &mut Block,
    layout: &Layout,
    area: u32,
    stamp: (u64, u64),
    limits: &Limits,
    mut entries: E,
) -> Result<Written, Error> {
    let mut crc = Crc32c::new();
    let mut total: u64 = 0;
    // Each pass fills one block; one more pass than there are blocks notices a source that is too long.
    for index in 0..=layout.checkpoint_blocks {
        blk.fill(0);
        let mut count: u32 = 0;
        for slot in blk
            .get_mut(HEADER_SIZE..)
            .unwrap_or(&mut [])
            .chunks_exact_mut(RECORD_SIZE)
        {
            let Some(rec) = entries.next() else { break };
            if !limits.allows(&rec) || rec.state == EntryState::Cleared {
                return Err(Error::BadRecord);
            }
            total = total.checked_add(1).ok_or(Error::TableFull)?;
            if total > layout.capacity {
                return Err(Error::TableFull);
            }
            rec.encode(slot);
            crc.update(slot);
            count = count.saturating_add(1);
        }
        if count == 0 {
            break;
        }
        let header = CheckpointHeader {
            meta_version: stamp.0,
            nonce: stamp.1,
            block_index: u32::try_from(index).map_err(|_| Error::TableFull)?,
            entry_count: count,
        };
        header.encode(blk);
        block::write(io, layout.checkpoint_sector(area, index)?, blk, false)?;
        if usize::try_from(count).ok() != Some(ENTRIES_PER_BLOCK) {
            break;
        }
    }
    Ok(Written {
        entries: total,
        crc: crc.finish(),
    })
}

/// What the loader expects of the current checkpoint, taken from the superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Area holding it.
    pub area: u32,
    /// Metadata version and journal nonce stamped in its blocks.
    pub stamp: (u64, u64),
    /// Number of entries.
    pub entries: u64,
    /// CRC-32C of the encoded entries.
    pub crc: u32,
}

/// Reads the checkpoint described by `want` and applies its entries to `sink`.
pub fn replay<I: BlockIo, S: RecordSink>(
    io: &mut I,
    blk: &mut Block,
    layout: &Layout,
    want: &Expected,
    limits: &Limits,
    sink: &mut S,
) -> Result<(), Error> {
    if want.entries > layout.capacity {
        return Err(Error::SuperblockInvalid);
    }
    let per_block = ENTRIES_PER_BLOCK as u64;
    let blocks = want.entries.div_ceil(per_block);
    let mut crc = Crc32c::new();
    let mut left = want.entries;
    for index in 0..blocks {
        block::read(io, layout.checkpoint_sector(want.area, index)?, blk)?;
        let header = CheckpointHeader::decode(blk).ok_or(Error::CheckpointCorrupt)?;
        let count = left.min(per_block);
        if (header.meta_version, header.nonce) != want.stamp
            || u64::from(header.block_index) != index
            || u64::from(header.entry_count) != count
        {
            return Err(Error::CheckpointCorrupt);
        }
        for slot in slots(blk).take(usize::try_from(count).unwrap_or(0)) {
            crc.update(slot);
            let rec = slot
                .try_into()
                .ok()
                .and_then(Record::decode)
                .filter(|r| limits.allows(r) && r.state != EntryState::Cleared)
                .ok_or(Error::RecordInvalid)?;
            sink.apply(&rec)?;
        }
        left = left.saturating_sub(count);
    }
    if crc.finish() != want.crc {
        return Err(Error::CheckpointCorrupt);
    }
    Ok(())
}
