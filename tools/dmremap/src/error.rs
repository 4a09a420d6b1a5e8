//! The tool's errors: one sentence for the user, and the exit code that goes with it.

use std::fmt;

/// Exit codes shared by every subcommand except `check` (which has its own, see [`crate::check::Verdict`]).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The kernel or the target refused or failed the operation (or `inspect` found no loadable metadata).
    pub const FAILED: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// I/O or environment problem: a device cannot be opened or read, `dmsetup` is missing, ...
    pub const ENVIRONMENT: u8 = 3;
}

/// A failure to report: what went wrong, in one sentence naming the device and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Exit code (see [`exit`]).
    pub code: u8,
    /// The message, without the `dmremap: ` prefix.
    pub message: String,
}

impl CliError {
    /// The kernel or the target refused or failed the operation.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: exit::FAILED,
            message: message.into(),
        }
    }

    /// The command line cannot be carried out as given.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    /// An I/O or environment problem.
    pub fn environment(message: impl Into<String>) -> Self {
        Self {
            code: exit::ENVIRONMENT,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}
