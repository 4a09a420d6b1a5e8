//! Errors of the reassembly logic, each with a static message (usable as a device-mapper
//! `ti->error`) and the negative errno the kernel module returns for it.

/// `-EOVERFLOW`: value too large for defined data type.
const EOVERFLOW: i32 = -75;

/// Everything that can go wrong in the reassembly logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The metadata version is at its maximum: committing again would wrap and make old
    /// metadata look newer.
    VersionOverflow,
}

impl Error {
    /// A short static English description, fit for a device-mapper `ti->error`.
    pub fn message(&self) -> &'static str {
        match self {
            Error::VersionOverflow => "metadata version would overflow",
        }
    }

    /// The negative errno the kernel module returns for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::VersionOverflow => EOVERFLOW,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}
