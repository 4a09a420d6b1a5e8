//! Errors of the spare pool, each with a static message (usable as a device-mapper `ti->error`)
//! and the negative errno the kernel module returns for it.

/// `-E2BIG`: argument list too long.
const E2BIG: i32 = -7;
/// `-ENODEV`: no such device.
const ENODEV: i32 = -19;
/// `-EINVAL`: invalid argument.
const EINVAL: i32 = -22;
/// `-ENOSPC`: no space left on device.
const ENOSPC: i32 = -28;
/// `-EOVERFLOW`: value too large for defined data type.
const EOVERFLOW: i32 = -75;
/// `-EUCLEAN`: structure needs cleaning (the kernel's "corrupted on-disk data").
const EUCLEAN: i32 = -117;

/// Everything that can go wrong in the spare pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No allocatable spare has a free unit left.
    NoSpace,
    /// A unit number at or past the end of the spare's pool area.
    UnitOutOfRange,
    /// Freeing a unit that is not allocated.
    DoubleFree,
    /// Claiming a unit that is already allocated.
    AlreadyUsed,
    /// Freeing or claiming a unit that was retired.
    UnitRetired,
    /// Retiring a unit that is already retired.
    AlreadyRetired,
    /// The caller's word buffer is shorter than the bitmap needs.
    BitmapBufferTooSmall,
    /// A loaded bitmap has bits past the pool end, or a unit both used and retired.
    CorruptBitmap,
    /// An encode/decode block buffer whose length is zero or not a multiple of 8 bytes.
    BadBlockSize,
    /// An encode/decode block index past the end of the bitmap.
    BlockOutOfRange,
    /// A spare index with no spare behind it.
    NoSuchSpare,
    /// More spares than [`super::pool::MAX_SPARES`].
    TooManySpares,
    /// A unit size that is not a power of two of at least 512 bytes.
    BadUnitSize,
    /// The spare cannot hold its metadata region plus at least one unit.
    SpareTooSmallForMetadata,
    /// The spares together are smaller than the minimum-size policy requires.
    SpareTooSmall {
        /// Sectors of spare space the policy requires.
        required_sectors: u64,
        /// Sectors of spare space the caller has.
        available_sectors: u64,
    },
    /// A size or sector computation does not fit in 64 bits.
    Overflow,
}

impl Error {
    /// A short static English description, fit for a device-mapper `ti->error`.
    pub fn message(&self) -> &'static str {
        match self {
            Error::NoSpace => "no free spare unit left",
            Error::UnitOutOfRange => "spare unit outside the pool",
            Error::DoubleFree => "spare unit is already free",
            Error::AlreadyUsed => "spare unit is already in use",
            Error::UnitRetired => "spare unit is retired",
            Error::AlreadyRetired => "spare unit is already retired",
            Error::BitmapBufferTooSmall => "spare bitmap buffer too small",
            Error::CorruptBitmap => "spare bitmap is corrupt",
            Error::BadBlockSize => "spare bitmap block size must be a multiple of 8 bytes",
            Error::BlockOutOfRange => "spare bitmap block index out of range",
            Error::NoSuchSpare => "no such spare device",
            Error::TooManySpares => "too many spare devices",
            Error::BadUnitSize => "unit size must be a power of two of at least 512 bytes",
            Error::SpareTooSmallForMetadata => "spare device too small for its metadata",
            Error::SpareTooSmall { .. } => "spare devices too small for the main device",
            Error::Overflow => "spare size computation overflows",
        }
    }

    /// The negative errno the kernel module returns for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NoSpace | Error::SpareTooSmallForMetadata | Error::SpareTooSmall { .. } => {
                ENOSPC
            }
            Error::CorruptBitmap => EUCLEAN,
            Error::NoSuchSpare => ENODEV,
            Error::TooManySpares => E2BIG,
            Error::Overflow => EOVERFLOW,
            Error::UnitOutOfRange
            | Error::DoubleFree
            | Error::AlreadyUsed
            | Error::UnitRetired
            | Error::AlreadyRetired
            | Error::BitmapBufferTooSmall
            | Error::BadBlockSize
            | Error::BlockOutOfRange
            | Error::BadUnitSize => EINVAL,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}
