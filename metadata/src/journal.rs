//! The journal: append-only commits of records between two checkpoints.
//!
//! A commit of k records occupies ceil(k / [`RECORDS_PER_BLOCK`]) fresh journal blocks, each with a
//! 64-byte header. A block is never rewritten while it holds an acknowledged commit, so a torn write can
//! only damage the commit being written. A commit is taken at load only if it is *complete*:
//!
//! - every block is sealed (magic + CRC) and carries the journal generation's nonce, so blocks of an
//!   earlier generation at the same offset are ignored;
//! - its sequence number follows the previous commit's, and `prev_chain` equals the previous commit's
//!   `commit_crc`, so a commit left over from before a crash never follows a different commit that reused
//!   its sequence number;
//! - all its blocks agree on the commit fields and `commit_crc`, a CRC-32C over those fields, the session
//!   salt and every record, matches; so blocks of two different attempts at the same commit never mix.

use super::block::{self, Block, Seal, ENVELOPE_SIZE};
use super::crc32c::Crc32c;
use super::error::Error;
use super::io::BlockIo;
use super::layout::{Layout, BLOCK_SIZE};
use super::le::{Reader, Writer};
use super::record::{Limits, Record, RecordSink, RECORD_SIZE};

/// Magic of a journal block: "DMRJ".
pub const JOURNAL_MAGIC: u32 = u32::from_le_bytes(*b"DMRJ");
/// Bytes of a journal block header, envelope included.
pub const HEADER_SIZE: usize = 64;
/// Records per journal block.
pub const RECORDS_PER_BLOCK: usize = (BLOCK_SIZE - HEADER_SIZE) / RECORD_SIZE;

/// Header of one journal block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalHeader {
    /// Nonce of the journal generation (from the superblock).
    pub nonce: u64,
    /// Commit sequence number.
    pub seq: u64,
    /// Salt of the session that wrote the commit.
    pub salt: u64,
    /// `commit_crc` of the previous commit of this generation, 0 for the first.
    pub prev_chain: u32,
    /// CRC-32C over the commit fields and all records of the commit.
    pub commit_crc: u32,
    /// Position of this block within the commit.
    pub block_index: u32,
    /// Blocks in the commit.
    pub block_count: u32,
    /// Records in this block.
    pub record_count: u32,
    /// Records in the whole commit.
    pub total_records: u32,
}

impl JournalHeader {
    /// Writes the header into `blk` and seals it; the records must already be in place.
    pub fn encode(&self, blk: &mut Block) {
        let mut w = Writer::new(blk.get_mut(ENVELOPE_SIZE..).unwrap_or(&mut []));
        w.u64(self.nonce);
        w.u64(self.seq);
        w.u64(self.salt);
        w.u32(self.prev_chain);
        w.u32(self.commit_crc);
        w.u32(self.block_index);
        w.u32(self.block_count);
        w.u32(self.record_count);
        w.u32(self.total_records);
        block::seal(blk, JOURNAL_MAGIC);
    }

    /// The header of a sealed journal block, or `None`.
    pub fn decode(blk: &Block) -> Option<Self> {
        if block::check(blk, JOURNAL_MAGIC) != Seal::Valid {
            return None;
        }
        let mut r = Reader::new(blk.get(ENVELOPE_SIZE..).unwrap_or(&[]));
        Some(Self {
            nonce: r.u64(),
            seq: r.u64(),
            salt: r.u64(),
            prev_chain: r.u32(),
            commit_crc: r.u32(),
            block_index: r.u32(),
            block_count: r.u32(),
            record_count: r.u32(),
            total_records: r.u32(),
        })
    }

    /// Whether the counts are those of the one packing the writer produces: every block full but the last.
    pub fn packing_ok(&self) -> bool {
        let per = RECORDS_PER_BLOCK as u64;
        let total = u64::from(self.total_records);
        let before = u64::from(self.block_index).saturating_mul(per);
        total != 0
            && u64::from(self.block_count) == total.div_ceil(per)
            && self.block_index < self.block_count
            && u64::from(self.record_count) == total.saturating_sub(before).min(per)
    }

    /// Whether `other` is a block of the same commit.
    fn same_commit(&self, other: &Self) -> bool {
        Self {
            block_index: other.block_index,
            record_count: other.record_count,
            ..*self
        } == *other
    }

    /// Checksum state after the commit fields; the records follow.
    fn commit_crc_start(&self) -> Crc32c {
        let mut fields = [0u8; 36];
        let mut w = Writer::new(&mut fields);
        w.u64(self.nonce);
        w.u64(self.seq);
        w.u64(self.salt);
        w.u32(self.prev_chain);
        w.u32(self.block_count);
        w.u32(self.total_records);
        let mut crc = Crc32c::new();
        crc.update(&fields);
        crc
    }
}

/// Where the journal continues: the next free block and what the next commit must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Next free journal block.
    pub block: u64,
    /// Sequence number of the next commit.
    pub seq: u64,
    /// `prev_chain` of the next commit.
    pub chain: u32,
}

/// The first `count` record slots of a journal block.
fn slots(blk: &Block, count: u32) -> impl Iterator<Item = &[u8]> {
    blk.get(HEADER_SIZE..)
        .unwrap_or(&[])
        .chunks_exact(RECORD_SIZE)
        .take(usize::try_from(count).unwrap_or(0))
}

/// Number of journal blocks a commit of `records` records takes.
pub fn blocks_for(records: usize) -> u64 {
    records.div_ceil(RECORDS_PER_BLOCK) as u64
}

/// Writes `records` as one commit at `at` and makes it durable; returns the position after it.
///
/// Nothing is written if the batch does not fit: [`Error::BatchTooLarge`] if it exceeds the whole journal,
/// [`Error::JournalFull`] if it exceeds the free part.
pub fn write_commit<I: BlockIo>(
    io: &mut I,
    blk: &mut Block,
    layout: &Layout,
    at: &Position,
    nonce: u64,
    salt: u64,
    records: &[Record],
) -> Result<Position, Error> {
    let count = blocks_for(records.len());
    if count > layout.journal_blocks {
        return Err(Error::BatchTooLarge);
    }
    let end = at
        .block
        .checked_add(count)
        .filter(|&e| e <= layout.journal_blocks)
        .ok_or(Error::JournalFull)?;
    let next_seq = at.seq.checked_add(1).ok_or(Error::Overflow)?;
    let mut header = JournalHeader {
        nonce,
        seq: at.seq,
        salt,
        prev_chain: at.chain,
        commit_crc: 0,
        block_index: 0,
        block_count: u32::try_from(count).map_err(|_| Error::BatchTooLarge)?,
        record_count: 0,
        total_records: u32::try_from(records.len()).map_err(|_| Error::BatchTooLarge)?,
    };
    let mut crc = header.commit_crc_start();
    for rec in records {
        crc.update(&rec.to_bytes());
    }
    header.commit_crc = crc.finish();
    // A one-block commit is made durable by FUA alone: every earlier write was flushed by its own commit.
    let fua = count == 1;
    let mut index: u32 = 0;
    for chunk in records.chunks(RECORDS_PER_BLOCK) {
        blk.fill(0);
        let payload = blk.get_mut(HEADER_SIZE..).unwrap_or(&mut []);
        for (slot, rec) in payload.chunks_exact_mut(RECORD_SIZE).zip(chunk) {
            rec.encode(slot);
        }
        header.block_index = index;
        header.record_count = u32::try_from(chunk.len()).map_err(|_| Error::BatchTooLarge)?;
        header.encode(blk);
        let at_block = at
            .block
            .checked_add(u64::from(index))
            .ok_or(Error::JournalFull)?;
        block::write(io, layout.journal_sector(at_block)?, blk, fua)?;
        index = index.checked_add(1).ok_or(Error::BatchTooLarge)?;
    }
    if !fua {
        block::flush(io)?;
    }
    Ok(Position {
        block: end,
        seq: next_seq,
        chain: header.commit_crc,
    })
}

/// Outcome of a journal replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// Where the journal continues.
    pub end: Position,
    /// Commits applied.
    pub commits: u64,
    /// Records applied.
    pub records: u64,
}

/// Replays the journal generation `nonce` from `start`, applying every complete commit to `sink`, and stops
/// at the first block that does not continue it (the end of the journal or a torn commit).
pub fn replay<I: BlockIo, S: RecordSink>(
    io: &mut I,
    blk: &mut Block,
    layout: &Layout,
    nonce: u64,
    start: Position,
    limits: &Limits,
    sink: &mut S,
) -> Result<Replayed, Error> {
    let mut done = Replayed {
        end: start,
        commits: 0,
        records: 0,
    };
    // Every pass consumes at least one block, so this bound is never what ends the loop early.
    for _ in 0..layout.journal_blocks {
        let pos = done.end;
        if pos.block >= layout.journal_blocks {
            break;
        }
        block::read(io, layout.journal_sector(pos.block)?, blk)?;
        let Some(first) = JournalHeader::decode(blk) else {
            break;
        };
        if first.nonce != nonce
            || first.seq != pos.seq
            || first.prev_chain != pos.chain
            || first.block_index != 0
            || !first.packing_ok()
        {
            break;
        }
        let Some(end) = pos
            .block
            .checked_add(u64::from(first.block_count))
            .filter(|&e| e <= layout.journal_blocks)
        else {
            break;
        };
        if !complete(io, blk, layout, &first, pos.block)? {
            break;
        }
        if first.block_count == 1 {
            // Still in the buffer from the completeness check.
            apply_block(blk, first.record_count, limits, sink)?;
        } else {
            apply_commit(io, blk, layout, &first, pos.block, limits, sink)?;
        }
        done.end = Position {
            block: end,
            seq: pos.seq.checked_add(1).ok_or(Error::Overflow)?,
            chain: first.commit_crc,
        };
        done.commits = done.commits.saturating_add(1);
        done.records = done.records.saturating_add(u64::from(first.total_records));
    }
    Ok(done)
}

/// Whether every block of the commit whose first block (at journal block `at`) is in `blk` is present and
/// its checksum matches. Leaves the commit's last block in `blk`.
fn complete<I: BlockIo>(
    io: &mut I,
    blk: &mut Block,
    layout: &Layout,
    first: &JournalHeader,
    at: u64,
) -> Result<bool, Error> {
    let mut crc = first.commit_crc_start();
    for slot in slots(blk, first.record_count) {
        crc.update(slot);
    }
    for index in 1..first.block_count {
        let pos = at.checked_add(u64::from(index)).ok_or(Error::Overflow)?;
        block::read(io, layout.journal_sector(pos)?, blk)?;
        match JournalHeader::decode(blk) {
            Some(h) if h.same_commit(first) && h.block_index == index && h.packing_ok() => {
                for slot in slots(blk, h.record_count) {
                    crc.update(slot);
                }
            }
            _ => return Ok(false),
        }
    }
    Ok(crc.finish() == first.commit_crc)
}

/// Re-reads a verified multi-block commit and applies it.
fn apply_commit<I: BlockIo, S: RecordSink>(
    io: &mut I,
    blk: &mut Block,
    layout: &Layout,
    first: &JournalHeader,
    at: u64,
    limits: &Limits,
    sink: &mut S,
) -> Result<(), Error> {
    for index in 0..first.block_count {
        let pos = at.checked_add(u64::from(index)).ok_or(Error::Overflow)?;
        block::read(io, layout.journal_sector(pos)?, blk)?;
        let h = JournalHeader::decode(blk)
            .filter(|h| h.same_commit(first) && h.block_index == index && h.packing_ok())
            .ok_or(Error::UnstableRead)?;
        apply_block(blk, h.record_count, limits, sink)?;
    }
    Ok(())
}

/// Decodes and applies the first `count` records of a journal block.
fn apply_block<S: RecordSink>(
    blk: &Block,
    count: u32,
    limits: &Limits,
    sink: &mut S,
) -> Result<(), Error> {
    for slot in slots(blk, count) {
        let rec = slot
            .try_into()
            .ok()
            .and_then(Record::decode)
            .filter(|r| limits.allows(r))
            .ok_or(Error::RecordInvalid)?;
        sink.apply(&rec)?;
    }
    Ok(())
}
