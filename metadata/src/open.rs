//! Opening a spare's metadata region when a table is loaded: load it, format it when blank, repair damaged
//! superblock copies. The policy lives here so that the host tests exercise exactly what the kernel runs.
//!
//! Its parameter and report types are in `abi.rs`: they cross the C ABI to the core module.

use super::abi::{
    OpenParams, OpenReport, OPEN_ANY_MEMBER, OPEN_EXPECT_UUID, OPEN_FORMAT_FOREIGN,
    OPEN_FORMAT_IF_BLANK,
};
use super::error::Error;
use super::io::BlockIo;
use super::layout::{Layout, MAX_CAPACITY, MIN_CAPACITY};
use super::record::{Record, RecordSink};
use super::store::{Expect, FormatParams, Store};
use super::superblock::MainIdentity;

/// Counts the records a load replays on their way to the caller's sink.
struct Counter<'a, S: RecordSink>(u64, &'a mut S);

impl<S: RecordSink> RecordSink for Counter<'_, S> {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        self.0 = self.0.checked_add(1).ok_or(Error::Overflow)?;
        self.1.apply(rec)
    }
}

/// Opens the region on `io`: a region of another setup, another main device, foreign data or with every
/// superblock copy damaged is refused with its error and left untouched; a blank one is formatted when
/// `OPEN_FORMAT_IF_BLANK` is set, and one of foreign data when `OPEN_FORMAT_FOREIGN` is set too; damaged
/// copies of a loadable region are rewritten.
///
/// `buf` is one metadata block; `salt` must be random (see [`Store::load`]); `sink` receives every record
/// loaded (none for a freshly formatted region).
pub fn open_region<I: BlockIo, S: RecordSink>(
    io: &mut I,
    buf: &mut [u8],
    params: &OpenParams,
    salt: u64,
    sink: &mut S,
) -> Result<(Store, OpenReport), Error> {
    let main = MainIdentity {
        sectors: params.main_sectors,
        logical_block_size: params.main_logical_block_size,
        id: params.main_id,
    };
    let flag = |f: u32| params.flags & f != 0;
    let expect = Expect {
        uuid: flag(OPEN_EXPECT_UUID).then_some(params.expect_uuid),
        main: Some(main),
        member_index: (!flag(OPEN_ANY_MEMBER)).then_some(params.member_index),
    };
    let mut counter = Counter(0, sink);
    let mut report = OpenReport::default();
    let mut store = match Store::load(io, buf, &expect, salt, &mut counter) {
        Ok((store, load)) => {
            report.bad_copies = u32::try_from(load.bad_copies()).unwrap_or(u32::MAX);
            report.records = counter.0;
            store
        }
        Err(Error::Blank) if flag(OPEN_FORMAT_IF_BLANK) => {
            format(io, buf, params, main, salt, &mut report)?
        }
        Err(Error::Foreign) if flag(OPEN_FORMAT_IF_BLANK) && flag(OPEN_FORMAT_FOREIGN) => {
            format(io, buf, params, main, salt, &mut report)?
        }
        Err(e) => return Err(e),
    };
    if report.bad_copies != 0 {
        report.repaired = u32::try_from(store.repair(io, buf)?).unwrap_or(u32::MAX);
    }
    let sb = store.superblock();
    report.meta_version = sb.meta_version;
    report.uuid = sb.uuid;
    report.last_seq = store.last_seq();
    report.pool_start = sb.pool_start;
    report.pool_units = sb.pool_units;
    report.member_index = sb.member_index;
    report.member_count = sb.member_count;
    report.removed_members = sb.removed_members;
    report.capacity = sb.capacity;
    Ok((store, report))
}

/// Formats the region as `params` say (a new member of setup `new_uuid`).
fn format<I: BlockIo>(
    io: &mut I,
    buf: &mut [u8],
    params: &OpenParams,
    main: MainIdentity,
    salt: u64,
    report: &mut OpenReport,
) -> Result<Store, Error> {
    let format = FormatParams {
        uuid: params.new_uuid,
        member_index: params.member_index,
        member_count: params.member_count,
        main,
        spare_sectors: params.spare_sectors,
        unit_sectors: params.unit_sectors,
        layout: format_layout(params)?,
    };
    report.formatted = 1;
    Store::format(io, buf, &format, salt)
}

/// The layout a blank region gets when `params` format it: sized for `params.capacity` entries, or one per
/// unit of the spare when that is 0.
pub fn format_layout(params: &OpenParams) -> Result<Layout, Error> {
    match params.capacity {
        0 => Layout::for_spare(params.spare_sectors, params.unit_sectors),
        c => Layout::for_capacity(c.clamp(MIN_CAPACITY, MAX_CAPACITY)),
    }
}

/// What formatting a blank spare with `params` would give, without touching it: `Ok(pool_units)`, or
/// `Err((error, sectors_needed))` where `sectors_needed` is the smallest spare that would hold the region
/// and one unit (0 when even that cannot be computed).
pub fn plan_format(params: &OpenParams) -> Result<u64, (Error, u64)> {
    let layout = format_layout(params).map_err(|e| (e, 0))?;
    layout
        .pool_units(params.spare_sectors, params.unit_sectors)
        .map_err(|e| {
            let needed = layout
                .region_sectors
                .checked_add(params.unit_sectors)
                .unwrap_or(0);
            (e, needed)
        })
}

/// Commits `records`; when the journal is full, writes a checkpoint of the whole table instead, which holds
/// them too. `table` yields every entry of the table as it will be once `records` are applied (each main unit
/// once); it is only called for a checkpoint.
pub fn commit_or_checkpoint<I, E, F>(
    store: &mut Store,
    io: &mut I,
    buf: &mut [u8],
    records: &[Record],
    table: F,
) -> Result<(), Error>
where
    I: BlockIo,
    E: IntoIterator<Item = Record>,
    F: FnOnce() -> E,
{
    match store.commit(io, buf, records) {
        Err(Error::JournalFull) => store.checkpoint(io, buf, table()),
        r => r.map(|_| ()),
    }
}
