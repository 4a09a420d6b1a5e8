//! On-disk metadata of `dm-remap-v4` and its commit/recovery protocol.
//!
//! Every spare device starts with a reserved region holding the remap table: two superblock copies, two
//! checkpoint areas (A/B) and an append-only journal. This crate is the pure logic of that format: encoding,
//! decoding, the crash-safe commit and checkpoint protocols and the loader, generic over [`io::BlockIo`].
//! It allocates nothing: the caller owns the table ([`record::RecordSink`], an `Iterator` of
//! [`record::Record`]) and the one-block I/O buffer. The format is specified in `docs/metadata-format.md`;
//! the rules these files follow are in `docs/shared-logic.md`.
#![no_std]

pub mod abi;
pub mod block;
pub mod checkpoint;
pub mod crc32c;
pub mod error;
pub mod io;
pub mod journal;
pub mod layout;
pub mod le;
pub mod open;
pub mod record;
pub mod scrub;
pub mod store;
pub mod superblock;

pub use abi::{
    OpenParams, OpenReport, OPEN_ANY_MEMBER, OPEN_EXPECT_UUID, OPEN_FORMAT_FOREIGN,
    OPEN_FORMAT_IF_BLANK,
};
pub use error::Error;
pub use io::{BlockIo, IoError};
pub use layout::Layout;
pub use open::{commit_or_checkpoint, format_layout, open_region, plan_format};
pub use record::{EntryState, Record, RecordSink};
pub use scrub::{ScrubLoad, ScrubState, Shutdown, ShutdownMark, ShutdownStatus};
pub use store::{CopyStatus, Expect, FormatParams, LoadReport, ScrubCursor, Store};
pub use superblock::{MainIdentity, Superblock};
