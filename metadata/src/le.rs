//! Sequential little-endian field access for the fixed on-disk layouts.
//!
//! Every structure is a fixed sequence of fields inside a buffer that is at least as long, so fields are read
//! and written in specification order without offsets to get wrong. Past the end of the buffer a reader yields
//! zeros and a writer drops bytes instead of panicking; the round-trip tests prove no layout gets there.

/// Reads little-endian fields one after the other.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// The next `N` bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                *head
            }
            None => {
                self.rest = &[];
                [0; N]
            }
        }
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        let [b] = self.bytes::<1>();
        b
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}

/// Writes little-endian fields one after the other.
#[derive(Debug)]
pub struct Writer<'a> {
    rest: &'a mut [u8],
}

impl<'a> Writer<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { rest: buf }
    }

    /// Writes `N` bytes.
    pub fn bytes<const N: usize>(&mut self, v: [u8; N]) {
        let rest = core::mem::take(&mut self.rest);
        if let Some((head, tail)) = rest.split_first_chunk_mut::<N>() {
            *head = v;
            self.rest = tail;
        }
    }

    /// Writes one byte.
    pub fn u8(&mut self, v: u8) {
        self.bytes([v]);
    }

    /// Writes a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes(v.to_le_bytes());
    }

    /// Writes a little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes(v.to_le_bytes());
    }
}
