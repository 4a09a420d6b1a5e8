//! The constructor's table line: `<main_dev> <spare_dev> [<#opt_args> <opt_args>...]`.
//!
//! Only the syntax lives here; opening the devices and checking their sizes is the kernel's part
//! (`src/target.rs`). Every way a line can be wrong has its own error, and its message is what `dmsetup`
//! users find in the kernel log as the target's `ti->error`.

use core::ffi::CStr;

use super::arg::Arg;
use super::number::parse_u32;

/// The parsed table line. `A` is the caller's argument type, so the kernel keeps its C strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableArgs<A> {
    /// Path (or `major:minor`) of the main device, the failing disk whose sectors are remapped.
    pub main: A,
    /// Path (or `major:minor`) of the spare device that holds relocated data and the metadata.
    pub spare: A,
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
    if let Some(count) = args.next() {
        let count = parse_u32(count.bytes()).ok_or(TableError::BadOptionCount)?;
        let given = args.len();
        if usize::try_from(count).map_or(true, |c| c > given) {
            return Err(TableError::TooFewOptions);
        }
        if usize::try_from(count).map_or(true, |c| c < given) {
            return Err(TableError::TooManyArguments);
        }
        // No optional argument is defined yet; each later feature adds its keyword here.
        if args.next().is_some() {
            return Err(TableError::UnknownOption);
        }
    }
    Ok(TableArgs { main, spare })
}
