//! The envelope shared by every metadata block, and block I/O with protocol errors.
//!
//! Each block starts with a 4-byte magic naming its kind and a CRC-32C over the rest of the block
//! (bytes 8..4096), so a block is taken as valid only if it was written whole, as that kind of block.

use super::crc32c::crc32c;
use super::error::Error;
use super::io::BlockIo;
use super::layout::BLOCK_SIZE;
use super::le::{Reader, Writer};

/// One metadata block.
pub type Block = [u8; BLOCK_SIZE];

/// Bytes of the envelope: magic and CRC.
pub const ENVELOPE_SIZE: usize = 8;

/// What the envelope of a block says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seal {
    /// Magic and CRC match.
    Valid,
    /// The block is all zeros.
    Zero,
    /// The magic is not the expected one.
    BadMagic,
    /// The magic matches but the CRC does not.
    BadCrc,
}

/// The caller's buffer as one block, or [`Error::BufferSize`].
pub fn as_block(buf: &mut [u8]) -> Result<&mut Block, Error> {
    <&mut Block>::try_from(buf).map_err(|_| Error::BufferSize)
}

/// CRC of everything after the envelope.
fn body_crc(block: &Block) -> u32 {
    crc32c(block.get(ENVELOPE_SIZE..).unwrap_or(&[]))
}

/// Stamps `magic` and the CRC into the envelope; call after the body is complete.
pub fn seal(block: &mut Block, magic: u32) {
    let crc = body_crc(block);
    let mut w = Writer::new(block);
    w.u32(magic);
    w.u32(crc);
}

/// Checks the envelope of `block` against `magic`.
pub fn check(block: &Block, magic: u32) -> Seal {
    let mut r = Reader::new(block);
    let (m, crc) = (r.u32(), r.u32());
    if m != magic {
        if block.iter().all(|&b| b == 0) {
            return Seal::Zero;
        }
        return Seal::BadMagic;
    }
    if crc != body_crc(block) {
        return Seal::BadCrc;
    }
    Seal::Valid
}

/// Reads the block at `sector`.
pub fn read<I: BlockIo>(io: &mut I, sector: u64, block: &mut Block) -> Result<(), Error> {
    io.read(sector, block).map_err(|_| Error::ReadFailed)
}

/// Writes `block` at `sector`, durably before returning if `fua`.
pub fn write<I: BlockIo>(io: &mut I, sector: u64, block: &Block, fua: bool) -> Result<(), Error> {
    let done = if fua {
        io.write_fua(sector, block)
    } else {
        io.write(sector, block)
    };
    done.map_err(|_| Error::WriteFailed)
}

/// Makes all completed writes durable.
pub fn flush<I: BlockIo>(io: &mut I) -> Result<(), Error> {
    io.flush().map_err(|_| Error::FlushFailed)
}
