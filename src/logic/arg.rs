//! One argument of a table line or message, as the parsers see it.

use core::ffi::CStr;

/// Anything that can be viewed as the bytes of one whitespace-free argument.
///
/// The kernel hands the target `char **argv` (NUL-terminated strings, seen as `&CStr`); the host tests use
/// `&str`. The parsers keep the caller's own type for the arguments they return, so the kernel still has the
/// C string it needs for `dm_get_device()`.
pub trait Arg: Copy {
    /// The argument's bytes, without any terminator.
    fn bytes(&self) -> &[u8];
}

impl Arg for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Arg for &str {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Arg for &CStr {
    fn bytes(&self) -> &[u8] {
        self.to_bytes()
    }
}

/// True when `arg` is exactly `word` (the parsers' keywords are case-sensitive, like dm's own).
pub fn is<A: Arg>(arg: A, word: &str) -> bool {
    arg.bytes() == word.as_bytes()
}
