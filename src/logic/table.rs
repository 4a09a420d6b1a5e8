//! The constructor's table line: `<main_dev> <spare_dev> [<#opt_args> <opt_args>...]`.
//!
//! Optional arguments:
//! - `retries <n>` (0 to 8, default 1);
//! - `spare <dev>`, repeatable: one more spare device (at most [`MAX_SPARES`] spares in all);
//! - `main_id <text>`: the main device's stable identifier (1 to 64 printable ASCII characters, no spaces),
//!   recorded when the spares are formatted and compared with the recorded one at load;
//! - `min_spare_percent <p>` (0 to 1000, default 0: no check): the spares' pool areas together must hold at
//!   least `p` percent of the main device;
//! - `format_foreign`: a spare whose metadata region holds data that is not dm-remap-v4 metadata is formatted
//!   like a blank one instead of refused (that data is lost). Metadata of dm-remap-v4, damaged or of another
//!   setup, is never overwritten;
//! - `scrub_rate <KiB/s>` (1 to 1048576, default 8192): how fast the background scrub reads the main device;
//! - `slow_threshold_ms <ms>` (1 to 60000, default 1000): a unit whose every read takes longer than this is
//!   relocated by the scrub while it is still readable.
//!
//! Only the syntax lives here; opening the devices and checking their sizes is the kernel's part
//! (`src/target.rs`). Every way a line can be wrong has its own error, and its message is what `dmsetup`
//! users find in the kernel log as the target's `ti->error`.

use core::ffi::CStr;

use super::arg::{is, Arg};
use super::number::parse_u32;
use super::route::MAX_SPARE_INDEX;

/// After a bio fails on main, each of its units is tried once on its own and then this many more times before
/// it counts as bad (relocated for a write, pending for a read), unless the table says otherwise.
pub const DEFAULT_RETRIES: u32 = 1;
/// Most retries a table may ask for: each costs a synchronous write while the caller waits.
pub const MAX_RETRIES: u32 = 8;

/// Most spare devices in one table: what a remap entry can name (`route::MAX_SPARE_INDEX`).
pub const MAX_SPARES: usize = MAX_SPARE_INDEX as usize + 1;
/// Most bytes of a `main_id` (the superblock's `main_id` field).
pub const MAX_MAIN_ID: usize = 64;
/// Largest `min_spare_percent`: spares ten times the main device.
pub const MAX_MIN_SPARE_PERCENT: u32 = 1000;
/// The background scrub's rate when the table does not set one: 8 MiB/s.
pub const DEFAULT_SCRUB_RATE_KIB: u32 = 8192;
/// Largest `scrub_rate`: 1 GiB/s.
pub const MAX_SCRUB_RATE_KIB: u32 = 1 << 20;
/// `slow_threshold_ms` when the table does not set one.
pub const DEFAULT_SLOW_THRESHOLD_MS: u32 = 1000;
/// Largest `slow_threshold_ms`: one minute.
pub const MAX_SLOW_THRESHOLD_MS: u32 = 60_000;

/// The parsed table line. `A` is the caller's argument type, so the kernel keeps its C strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableArgs<A> {
    /// Path (or `major:minor`) of the main device, the failing disk whose sectors are remapped.
    pub main: A,
    /// Paths (or `major:minor`) of the spare devices that hold relocated data and the metadata, in table
    /// order: the positional one, then each `spare <dev>`. Only the first [`TableArgs::spare_count`] are set.
    pub spares: [Option<A>; MAX_SPARES],
    /// Number of spares given.
    pub spare_count: usize,
    /// `retries <n>`: see [`DEFAULT_RETRIES`].
    pub retries: u32,
    /// `main_id <text>`, checked: printable ASCII without spaces, 1 to [`MAX_MAIN_ID`] bytes.
    pub main_id: Option<A>,
    /// `min_spare_percent <p>`; 0 when not given (no check).
    pub min_spare_percent: u32,
    /// `format_foreign`: format spares that hold foreign data.
    pub format_foreign: bool,
    /// `scrub_rate <KiB/s>`: see [`DEFAULT_SCRUB_RATE_KIB`].
    pub scrub_rate_kib: u32,
    /// `slow_threshold_ms <ms>`: see [`DEFAULT_SLOW_THRESHOLD_MS`].
    pub slow_threshold_ms: u32,
}

impl<A: Copy> TableArgs<A> {
    /// The spare devices, in table order.
    pub fn spares(&self) -> impl Iterator<Item = A> + '_ {
        self.spares.iter().take(self.spare_count).flatten().copied()
    }
}

/// Everything that can be wrong with a table line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// No arguments at all.
    NoArguments,
    /// Only the main device was given.
    MissingSpare,
    /// `<#opt_args>` is not a decimal number.
    BadOptionCount,
    /// `<#opt_args>` promises more arguments than the line has.
    TooFewOptions,
    /// More arguments follow the optional-argument block than `<#opt_args>` announced.
    TooManyArguments,
    /// An optional argument this version does not know.
    UnknownOption,
    /// `retries` without a number from 0 to [`MAX_RETRIES`].
    BadRetries,
    /// The same optional argument twice.
    DuplicateOption,
    /// `spare` without a device.
    MissingSpareDevice,
    /// More than [`MAX_SPARES`] spares.
    TooManySpares,
    /// `main_id` missing, too long or with bytes other than printable ASCII.
    BadMainId,
    /// `min_spare_percent` without a number from 0 to [`MAX_MIN_SPARE_PERCENT`].
    BadMinSparePercent,
    /// `scrub_rate` without a number from 1 to [`MAX_SCRUB_RATE_KIB`].
    BadScrubRate,
    /// `slow_threshold_ms` without a number from 1 to [`MAX_SLOW_THRESHOLD_MS`].
    BadSlowThreshold,
}

impl TableError {
    /// The message for `ti->error`: static, specific, one line.
    pub fn message(self) -> &'static CStr {
        match self {
            Self::NoArguments => {
                c"Missing arguments: <main_dev> <spare_dev> [<#opt_args> <opt_args>...]"
            }
            Self::MissingSpare => c"Missing spare device argument",
            Self::BadOptionCount => c"Invalid optional argument count: not a decimal number",
            Self::TooFewOptions => c"Optional argument count exceeds the arguments given",
            Self::TooManyArguments => c"Unexpected arguments after the optional arguments",
            Self::UnknownOption => c"Unknown optional argument",
            Self::BadRetries => c"Invalid retries: expected a number from 0 to 8",
            Self::DuplicateOption => c"Optional argument given twice",
            Self::MissingSpareDevice => c"Optional argument spare needs a device",
            Self::TooManySpares => c"Too many spare devices: at most 16",
            Self::BadMainId => {
                c"Invalid main_id: expected 1 to 64 printable characters without spaces"
            }
            Self::BadMinSparePercent => {
                c"Invalid min_spare_percent: expected a number from 0 to 1000"
            }
            Self::BadScrubRate => c"Invalid scrub_rate: expected KiB/s from 1 to 1048576",
            Self::BadSlowThreshold => {
                c"Invalid slow_threshold_ms: expected a number from 1 to 60000"
            }
        }
    }
}

/// Parses the constructor's arguments (`argv` without the `<start> <len> dm-remap-v4` prefix).
pub fn parse_table<A, I>(args: I) -> Result<TableArgs<A>, TableError>
where
    A: Arg,
    I: IntoIterator<Item = A>,
    I::IntoIter: ExactSizeIterator,
{
    let mut args = args.into_iter();
    let main = args.next().ok_or(TableError::NoArguments)?;
    let spare = args.next().ok_or(TableError::MissingSpare)?;
    let mut spares = [None; MAX_SPARES];
    let mut spare_count = 0usize;
    let mut add_spare = |dev: A| -> Result<(), TableError> {
        let slot = spares
            .get_mut(spare_count)
            .ok_or(TableError::TooManySpares)?;
        *slot = Some(dev);
        spare_count = spare_count.saturating_add(1);
        Ok(())
    };
    add_spare(spare)?;
    let mut retries = None;
    let mut main_id = None;
    let mut min_spare_percent = None;
    let mut format_foreign = false;
    let mut scrub_rate = None;
    let mut slow_threshold = None;
    if let Some(count) = args.next() {
        let count = parse_u32(count.bytes()).ok_or(TableError::BadOptionCount)?;
        let given = args.len();
        if usize::try_from(count).map_or(true, |c| c > given) {
            return Err(TableError::TooFewOptions);
        }
        if usize::try_from(count).map_or(true, |c| c < given) {
            return Err(TableError::TooManyArguments);
        }
        // Bounded: every step consumes at least one argument.
        while let Some(word) = args.next() {
            if is(word, "retries") {
                if retries.is_some() {
                    return Err(TableError::DuplicateOption);
                }
                let n = args
                    .next()
                    .and_then(|v| parse_u32(v.bytes()))
                    .filter(|&n| n <= MAX_RETRIES)
                    .ok_or(TableError::BadRetries)?;
                retries = Some(n);
            } else if is(word, "min_spare_percent") {
                if min_spare_percent.is_some() {
                    return Err(TableError::DuplicateOption);
                }
                let p = args
                    .next()
                    .and_then(|v| parse_u32(v.bytes()))
                    .filter(|&p| p <= MAX_MIN_SPARE_PERCENT)
                    .ok_or(TableError::BadMinSparePercent)?;
                min_spare_percent = Some(p);
            } else if is(word, "scrub_rate") {
                if scrub_rate.is_some() {
                    return Err(TableError::DuplicateOption);
                }
                let r = args
                    .next()
                    .and_then(|v| parse_u32(v.bytes()))
                    .filter(|r| (1..=MAX_SCRUB_RATE_KIB).contains(r))
                    .ok_or(TableError::BadScrubRate)?;
                scrub_rate = Some(r);
            } else if is(word, "slow_threshold_ms") {
                if slow_threshold.is_some() {
                    return Err(TableError::DuplicateOption);
                }
                let ms = args
                    .next()
                    .and_then(|v| parse_u32(v.bytes()))
                    .filter(|ms| (1..=MAX_SLOW_THRESHOLD_MS).contains(ms))
                    .ok_or(TableError::BadSlowThreshold)?;
                slow_threshold = Some(ms);
            } else if is(word, "format_foreign") {
                if format_foreign {
                    return Err(TableError::DuplicateOption);
                }
                format_foreign = true;
            } else if is(word, "spare") {
                add_spare(args.next().ok_or(TableError::MissingSpareDevice)?)?;
            } else if is(word, "main_id") {
                if main_id.is_some() {
                    return Err(TableError::DuplicateOption);
                }
                let id = args
                    .next()
                    .filter(|v| valid_main_id(v.bytes()))
                    .ok_or(TableError::BadMainId)?;
                main_id = Some(id);
            } else {
                return Err(TableError::UnknownOption);
            }
        }
    }
    Ok(TableArgs {
        main,
        spares,
        spare_count,
        retries: retries.unwrap_or(DEFAULT_RETRIES),
        main_id,
        min_spare_percent: min_spare_percent.unwrap_or(0),
        format_foreign,
        scrub_rate_kib: scrub_rate.unwrap_or(DEFAULT_SCRUB_RATE_KIB),
        slow_threshold_ms: slow_threshold.unwrap_or(DEFAULT_SLOW_THRESHOLD_MS),
    })
}

/// A `main_id`: 1 to [`MAX_MAIN_ID`] bytes of printable ASCII other than space (it is recorded zero-padded,
/// so it cannot hold a zero byte, and status prints it as one word).
fn valid_main_id(id: &[u8]) -> bool {
    (1..=MAX_MAIN_ID).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}
