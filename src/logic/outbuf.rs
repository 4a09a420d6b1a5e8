//! Writing `status` and `message` output into the buffer device-mapper hands the target.
//!
//! Device-mapper's convention (`DMEMIT`, `dm_message_test_buffer_overflow()`): the result is a NUL-terminated
//! string, and output that does not fit fills the buffer to its last byte, which tells the ioctl layer to report
//! `DM_BUFFER_FULL_FLAG` so that libdevmapper retries with a larger buffer. Never a partial token presented as
//! complete, never a write past the end.

use core::fmt;

/// A `core::fmt::Write` sink over the caller's buffer.
pub struct OutBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflowed: bool,
}

impl<'a> OutBuf<'a> {
    /// Starts an empty string in `buf` (which is NUL-terminated at once, when it has room for it).
    pub fn new(buf: &'a mut [u8]) -> Self {
        if let Some(first) = buf.first_mut() {
            *first = 0;
        }
        Self {
            buf,
            len: 0,
            overflowed: false,
        }
    }

    /// The text written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// True when some output did not fit.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl fmt::Write for OutBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.overflowed {
            return Err(fmt::Error);
        }
        // One byte stays reserved for the terminating NUL.
        let room = self.buf.len().saturating_sub(1).saturating_sub(self.len);
        let bytes = s.as_bytes();
        let n = bytes.len().min(room);
        let end = self.len.saturating_add(n);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..end), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = end;
        if n < bytes.len() {
            // Fill to the last byte: strlen(result) + 1 >= maxlen is device-mapper's "buffer full".
            for b in self.buf.iter_mut().skip(self.len) {
                *b = b'.';
            }
            if let Some(last) = self.buf.last_mut() {
                *last = 0;
            }
            self.len = self.buf.len().saturating_sub(1);
            self.overflowed = true;
            return Err(fmt::Error);
        }
        if let Some(nul) = self.buf.get_mut(self.len) {
            *nul = 0;
        }
        Ok(())
    }
}
