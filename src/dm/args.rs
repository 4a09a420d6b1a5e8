//! The `argc`/`argv` pair device-mapper passes to constructors and message handlers.

use core::ffi::CStr;
use core::marker::PhantomData;

use kernel::ffi::{c_char, c_uint};
use kernel::str::CStrExt;

/// The words of a table line or message, borrowed from device-mapper for the duration of one call.
#[derive(Clone, Copy)]
pub(crate) struct Args<'a> {
    argv: *const *mut c_char,
    argc: usize,
    _borrow: PhantomData<&'a CStr>,
}

impl<'a> Args<'a> {
    /// # Safety
    ///
    /// `argv` must point to `argc` pointers to NUL-terminated strings (or `argc` must be 0), all valid and
    /// unchanged for `'a`.
    pub(crate) unsafe fn from_raw(argc: c_uint, argv: *mut *mut c_char) -> Self {
        let argc = if argv.is_null() { 0 } else { argc as usize };
        Self {
            argv,
            argc,
            _borrow: PhantomData,
        }
    }
}

impl<'a> IntoIterator for Args<'a> {
    type Item = &'a CStr;
    type IntoIter = ArgIter<'a>;

    fn into_iter(self) -> ArgIter<'a> {
        ArgIter {
            args: self,
            next: 0,
        }
    }
}

/// Iterator over [`Args`].
pub(crate) struct ArgIter<'a> {
    args: Args<'a>,
    next: usize,
}

impl<'a> Iterator for ArgIter<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        if self.next >= self.args.argc {
            return None;
        }
        // SAFETY: `next < argc`, and `from_raw`'s contract makes `argv[0..argc]` valid pointers to
        // NUL-terminated strings that live for `'a`.
        let word = unsafe { CStr::from_char_ptr(*self.args.argv.add(self.next)) };
        self.next += 1;
        Some(word)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.args.argc - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for ArgIter<'_> {}
