//! The block I/O the protocol needs from its caller.

/// An I/O request failed; the protocol maps it to [`super::error::Error::ReadFailed`],
/// [`super::error::Error::WriteFailed`] or [`super::error::Error::FlushFailed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError;

/// Access to one spare device, addressed in 512-byte sectors from its first sector.
///
/// The protocol only ever transfers whole metadata blocks: `buf` is always
/// [`super::layout::BLOCK_SIZE`] bytes and `sector` a multiple of [`super::layout::SECTORS_PER_BLOCK`], so
/// every request is aligned for 512-byte and 4096-byte logical block devices alike.
///
/// Durability model: [`BlockIo::write`] may complete into a volatile cache; [`BlockIo::flush`] makes every
/// write completed before it durable. Until then a write may be lost, kept, or torn at sector granularity.
pub trait BlockIo {
    /// Reads `buf.len()` bytes starting at `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;

    /// Writes `buf` starting at `sector`; not durable until the next [`BlockIo::flush`].
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;

    /// Makes every write completed before this call durable (`REQ_PREFLUSH`).
    fn flush(&mut self) -> Result<(), IoError>;

    /// Writes `buf` and returns only when that write is durable (`REQ_FUA`). It need not make earlier
    /// writes durable: the protocol only uses it when nothing else is pending.
    fn write_fua(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write(sector, buf)?;
        self.flush()
    }

    /// Forgets anything read ahead, so that the next read goes to the device: someone else may have written
    /// to it since (see `Store::check_unchanged`).
    fn forget_reads(&mut self) {}
}
