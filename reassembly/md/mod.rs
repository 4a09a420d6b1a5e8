//! The metadata crate's files (`metadata/src/`), mounted as source: one definition of the format.

#[path = "../../metadata/src/abi.rs"]
pub mod abi;
#[path = "../../metadata/src/block.rs"]
pub mod block;
#[path = "../../metadata/src/checkpoint.rs"]
pub mod checkpoint;
#[path = "../../metadata/src/crc32c.rs"]
pub mod crc32c;
#[path = "../../metadata/src/error.rs"]
pub mod error;
#[path = "../../metadata/src/io.rs"]
pub mod io;
#[path = "../../metadata/src/journal.rs"]
pub mod journal;
#[path = "../../metadata/src/layout.rs"]
pub mod layout;
#[path = "../../metadata/src/le.rs"]
pub mod le;
#[path = "../../metadata/src/open.rs"]
pub mod open;
#[path = "../../metadata/src/record.rs"]
pub mod record;
#[path = "../../metadata/src/store.rs"]
pub mod store;
#[path = "../../metadata/src/superblock.rs"]
pub mod superblock;
