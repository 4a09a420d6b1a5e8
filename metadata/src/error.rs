//! Every way a metadata operation can fail, with a message for `ti->error` and a negative errno.

use core::ffi::CStr;

/// One variant per distinct failure; see `docs/metadata-format.md` for when each is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Reading the metadata region failed.
    ReadFailed,
    /// Writing the metadata region failed.
    WriteFailed,
    /// Flushing the spare device's write cache failed.
    FlushFailed,
    /// The caller's I/O buffer is not exactly one metadata block.
    BufferSize,
    /// Requested geometry or capacity is out of range.
    BadGeometry,
    /// The spare device cannot hold the metadata region and at least one pool unit.
    SpareTooSmall,
    /// Every superblock copy is all zeros: the region was never formatted.
    Blank,
    /// The region holds data that is not dm-remap-v4 metadata.
    Foreign,
    /// The region belongs to another dm-remap-v4 setup (different UUID).
    OtherSetup,
    /// The region's setup was made for a different main device.
    MainMismatch,
    /// The main device's identifier (WWN, serial) differs from the one recorded.
    MainIdMismatch,
    /// The region is a different member of this setup than expected.
    MemberMismatch,
    /// Someone else wrote to the region after it was loaded (see `Store::check_unchanged`).
    ChangedSinceLoad,
    /// A superblock has a format version this code does not know.
    UnsupportedVersion,
    /// A superblock uses an incompatible feature this code does not know.
    IncompatFeatures,
    /// No superblock copy passed its checksum.
    SuperblockCorrupt,
    /// The newest superblock passed its checksum but its fields are inconsistent.
    SuperblockInvalid,
    /// The checkpoint the newest superblock points to is damaged.
    CheckpointCorrupt,
    /// A checksummed checkpoint or journal record holds an impossible entry.
    RecordInvalid,
    /// A metadata block read back differently the second time.
    UnstableRead,
    /// A record given to commit or checkpoint is out of range for this setup.
    BadRecord,
    /// A commit batch is larger than the whole journal.
    BatchTooLarge,
    /// The journal has no room for the batch: write a checkpoint first.
    JournalFull,
    /// More entries than the metadata region's capacity.
    TableFull,
    /// An earlier write or flush failed; the on-disk state must be reloaded.
    Poisoned,
    /// A sequence or version counter would overflow.
    Overflow,
    /// The caller had no memory to hold the remap table being loaded.
    OutOfMemory,
    /// A scrub state to save has an invalid field (`running` not 0 or 1).
    BadScrubState,
}

/// Linux errno values used by [`Error::errno`]; identical on every architecture the kernel supports.
mod errno {
    pub(super) const EIO: i32 = 5;
    pub(super) const ENOMEM: i32 = 12;
    pub(super) const EBUSY: i32 = 16;
    pub(super) const EEXIST: i32 = 17;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const ENOSPC: i32 = 28;
    pub(super) const ENODATA: i32 = 61;
    pub(super) const EOVERFLOW: i32 = 75;
    pub(super) const EOPNOTSUPP: i32 = 95;
    pub(super) const ESTALE: i32 = 116;
    pub(super) const EUCLEAN: i32 = 117;
}

impl Error {
    /// A short, specific English message, e.g. for `ti->error` (hence a C string) or a command-line tool.
    pub const fn message(&self) -> &'static CStr {
        match self {
            Self::ReadFailed => c"metadata read failed",
            Self::WriteFailed => c"metadata write failed",
            Self::FlushFailed => c"metadata flush failed",
            Self::BufferSize => c"metadata buffer is not one 4096-byte block",
            Self::BadGeometry => c"invalid metadata geometry or capacity",
            Self::SpareTooSmall => c"spare device too small for its metadata region",
            Self::Blank => c"metadata region is blank",
            Self::Foreign => c"metadata region holds foreign data",
            Self::OtherSetup => c"spare belongs to another dm-remap setup",
            Self::MainMismatch => c"spare was set up for a different main device",
            Self::MainIdMismatch => c"main device identifier differs from the recorded one",
            Self::MemberMismatch => c"spare is a different member of this setup",
            Self::ChangedSinceLoad => c"metadata changed since the table was loaded",
            Self::UnsupportedVersion => c"unsupported metadata format version",
            Self::IncompatFeatures => c"metadata uses unknown incompatible features",
            Self::SuperblockCorrupt => c"all metadata superblock copies are corrupt",
            Self::SuperblockInvalid => c"metadata superblock fields are inconsistent",
            Self::CheckpointCorrupt => c"metadata checkpoint is corrupt",
            Self::RecordInvalid => c"metadata holds an invalid remap entry",
            Self::UnstableRead => c"metadata changed between two reads",
            Self::BadRecord => c"remap entry out of range for this setup",
            Self::BatchTooLarge => c"commit batch larger than the metadata journal",
            Self::JournalFull => c"metadata journal full, checkpoint needed",
            Self::TableFull => c"remap table exceeds metadata capacity",
            Self::Poisoned => c"metadata store failed earlier, reload needed",
            Self::Overflow => c"metadata sequence counter overflow",
            Self::OutOfMemory => c"out of memory for the remap table",
            Self::BadScrubState => c"invalid scrub state",
        }
    }

    /// The negative errno the kernel returns for this failure.
    pub const fn errno(&self) -> i32 {
        let e = match self {
            Self::ReadFailed
            | Self::WriteFailed
            | Self::FlushFailed
            | Self::UnstableRead
            | Self::Poisoned => errno::EIO,
            Self::BufferSize
            | Self::BadGeometry
            | Self::BadRecord
            | Self::BatchTooLarge
            | Self::BadScrubState => errno::EINVAL,
            Self::MemberMismatch => errno::EINVAL,
            Self::ChangedSinceLoad => errno::ESTALE,
            Self::SpareTooSmall | Self::JournalFull | Self::TableFull => errno::ENOSPC,
            Self::Blank => errno::ENODATA,
            Self::Foreign => errno::EBUSY,
            Self::OtherSetup | Self::MainMismatch | Self::MainIdMismatch => errno::EEXIST,
            Self::UnsupportedVersion | Self::IncompatFeatures => errno::EOPNOTSUPP,
            Self::SuperblockCorrupt
            | Self::SuperblockInvalid
            | Self::CheckpointCorrupt
            | Self::RecordInvalid => errno::EUCLEAN,
            Self::Overflow => errno::EOVERFLOW,
            Self::OutOfMemory => errno::ENOMEM,
        };
        e.wrapping_neg()
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message().to_str().unwrap_or("?"))
    }
}
