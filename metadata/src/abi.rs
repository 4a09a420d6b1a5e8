//! Types that cross the C ABI between `dm-remap-v4.ko` and `dm-remap-v4-metadata.ko`.
//!
//! This file depends on nothing else, so the core module can mount it alone. `#[repr(C)]`, integer fields.

/// Bytes of the main device's stable identifier (WWN or serial) kept in the superblock.
pub const MAIN_ID_SIZE: usize = 64;

/// [`OpenParams::flags`]: format the region when it is blank (all zeros). Anything else is never overwritten.
pub const OPEN_FORMAT_IF_BLANK: u32 = 1;
/// [`OpenParams::flags`]: the region must belong to the setup [`OpenParams::expect_uuid`] (the other spares of
/// a table already loaded), else `OtherSetup`.
pub const OPEN_EXPECT_UUID: u32 = 2;
/// [`OpenParams::flags`]: accept whichever member index the region records (a table names its spares in any
/// order; each spare's superblock says which member it is). Without it the index must be `member_index`.
pub const OPEN_ANY_MEMBER: u32 = 4;
/// [`OpenParams::flags`]: with [`OPEN_FORMAT_IF_BLANK`], also format a region that holds foreign data (no
/// superblock copy is dm-remap-v4's, damaged or not). The table's `format_foreign` option.
pub const OPEN_FORMAT_FOREIGN: u32 = 8;

/// What the table says about the setup the spare must belong to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenParams {
    /// Main device size in 512-byte sectors.
    pub main_sectors: u64,
    /// Spare device size in 512-byte sectors.
    pub spare_sectors: u64,
    /// Remap unit in sectors (the main device's logical block size / 512).
    pub unit_sectors: u64,
    /// Entry capacity of a region formatted now (every spare holds the whole table, so a setup of several
    /// spares passes their total units); 0: one entry per unit of this spare.
    pub capacity: u64,
    /// Main device logical block size in bytes.
    pub main_logical_block_size: u32,
    /// This spare's index among the setup's spares (see [`OPEN_ANY_MEMBER`]); the index a blank region gets.
    pub member_index: u32,
    /// Number of spares in the setup, written when formatting.
    pub member_count: u32,
    /// `OPEN_*` flags.
    pub flags: u32,
    /// Setup UUID to write if the region is formatted (random for a new setup, from the caller).
    pub new_uuid: [u8; 16],
    /// Setup UUID the region must record, with [`OPEN_EXPECT_UUID`].
    pub expect_uuid: [u8; 16],
    /// Stable identifier of the main device (WWN/serial), zero-padded; all zeros when unknown.
    pub main_id: [u8; MAIN_ID_SIZE],
}

/// What opening found and did, for the status line and the kernel log.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// 1 when the region was blank and has been formatted.
    pub formatted: u32,
    /// Superblock copies found damaged, stale or unreadable at load.
    pub bad_copies: u32,
    /// Copies rewritten by the repair that followed.
    pub repaired: u32,
    /// The member index the region records.
    pub member_index: u32,
    /// The number of spares the region records for its setup.
    pub member_count: u32,
    /// Members removed from the setup, as the region records them (bit `i`: member `i`; 0 after format).
    pub removed_members: u32,
    /// Metadata version of the loaded (or new) superblock.
    pub meta_version: u64,
    /// Sequence number of the last commit.
    pub last_seq: u64,
    /// Records replayed (checkpoint entries plus journal records; later records may update earlier ones).
    pub records: u64,
    /// First sector of the spare pool (right after the metadata region).
    pub pool_start: u64,
    /// Units in the spare pool.
    pub pool_units: u64,
    /// Entry capacity of the region's checkpoint areas: the most entries the table may hold.
    pub capacity: u64,
    /// The setup UUID found (or written).
    pub uuid: [u8; 16],
}

// The core mirrors this layout through this very file; `removed_members` took the place of a reserved field,
// so the layout did not change.
const _: () = assert!(core::mem::size_of::<OpenReport>() == 88);
const _: () = assert!(core::mem::offset_of!(OpenReport, removed_members) == 20);

/// One remap record as the metadata module hands it to the core while loading.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordAbi {
    /// Unit index on the main device.
    pub main_unit: u64,
    /// Unit index within the spare's pool.
    pub spare_unit: u64,
    /// Seconds, as recorded.
    pub timestamp: u64,
    /// Index of the spare among the setup's spares.
    pub spare_index: u32,
    /// `RECORD_ACTIVE`, `RECORD_PENDING` or `RECORD_CLEARED`.
    pub state: u32,
}

/// [`RecordAbi::state`]: the unit's data lives on the spare.
pub const RECORD_ACTIVE: u32 = 1;
/// [`RecordAbi::state`]: a read of the unit failed on main; its next write goes to the spare.
pub const RECORD_PENDING: u32 = 2;
/// [`RecordAbi::state`]: the unit's entry is dropped (journal records only, never in a checkpoint).
pub const RECORD_CLEARED: u32 = 3;

/// [`RecordFn`] result: the record was taken.
pub const SINK_OK: i32 = 0;
/// [`RecordFn`] result: the record contradicts the setup (refuse the metadata).
pub const SINK_INVALID: i32 = 1;
/// [`RecordFn`] result: no memory to hold it.
pub const SINK_NO_MEMORY: i32 = 2;

/// The core's callback for each loaded record, in on-disk order (later records replace earlier ones).
pub type RecordFn = extern "C" fn(ctx: *mut core::ffi::c_void, rec: *const RecordAbi) -> i32;

/// The core's source of the whole table for a checkpoint: fills `*rec` and returns 1, or returns 0 at the end.
pub type RecordIterFn = extern "C" fn(ctx: *mut core::ffi::c_void, rec: *mut RecordAbi) -> i32;

/// The background scrub's persisted state (`docs/metadata-format.md`, "Scrub state"): where the scrub of the
/// main device stands, so that it resumes there after a table reload or a reboot. Kept in blocks 1 and 9 of
/// every spare's region, apart from the remap table: saving it is one block write and never a commit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubStateAbi {
    /// The next main-device unit the scrub reads.
    pub position: u64,
    /// Full passes over the main device completed.
    pub passes: u64,
    /// Units the scrub found unreadable (recorded as pending), over every pass.
    pub found_pending: u64,
    /// Units the scrub relocated because they kept reading slowly, over every pass.
    pub relocated: u64,
    /// Seconds since the epoch when the current pass began (0: none began).
    pub pass_started: u64,
    /// The scrub rate in KiB/s in effect when saved.
    pub rate_kib: u32,
    /// 1: the scrub was running when saved, so it starts again when the table is loaded; 0: stopped.
    pub running: u32,
    /// Units found unreadable or slow so far in the pass under way.
    pub pass_found: u64,
    /// Units found unreadable or slow by the last complete pass.
    pub last_pass_found: u64,
    /// Units found unreadable or slow by the pass before it: with `last_pass_found`, the trend the health
    /// score looks at.
    pub prev_pass_found: u64,
}
