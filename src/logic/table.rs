//! The constructor's table line: `<main_dev> <spare_dev> [<#opt_args> <opt_args>...]`.
//!
//! Optional arguments: `retries <n>` (0 to 8, default 1).
//!
//! Only the syntax lives here; opening the devices and checking their sizes is the kernel's part
//! (`src/target.rs`). Every way a line can be wrong has its own error, and its message is what `dmsetup`
//! users find in the kernel log as the target's `ti->error`.

use core::ffi::CStr;

use super::arg::{is, Arg};
use super::number::parse_u32;

/// After a bio fails on main, each of its units is tried once on its own and then this many more times before
/// it counts as bad (relocated for a write, pending for a read), unless the table says otherwise.
pub const DEFAULT_RETRIES: u32 = 1;
/// Most retries a table may ask for: each costs a synchronous write while the caller waits.
pub const MAX_RETRIES: u32 = 8;

/// The parsed table line. `A` is the caller's argument type, so the kernel keeps its C strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableArgs<A> {
    /// Path (or `major:minor`) of the main device, the failing disk whose sectors are remapped.
    pub main: A,
    /// Path (or `major:minor`) of the spare device that holds relocated data and the metadata.
    pub spare: A,
    /// `retries <n>`: see [`DEFAULT_RETRIES`].
    pub retries: u32,
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
    let mut retries = None;
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
            } else {
                return Err(TableError::UnknownOption);
            }
        }
    }
    Ok(TableArgs {
        main,
        spare,
        retries: retries.unwrap_or(DEFAULT_RETRIES),
    })
}
