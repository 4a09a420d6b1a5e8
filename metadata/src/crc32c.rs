//! CRC-32C (Castagnoli), the checksum of every metadata structure.
//!
//! Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF: the same CRC as the kernel's
//! `crc32c()` with the customary pre/post inversion, iSCSI and ext4. Byte-at-a-time with a table built at
//! compile time: metadata is read once at load, so simplicity wins over speed.

/// Reflected CRC-32C polynomial.
const POLY: u32 = 0x82F6_3B78;

/// Lookup table for one byte, built at compile time.
const TABLE: [u32; 256] = make_table();

// Evaluated only at compile time: an out-of-bounds index or overflow here fails the build, it cannot panic
// at run time, and `const fn` has no iterator or `get_mut` to express the loop otherwise.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0usize;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Incremental CRC-32C, for checksums over data that is not contiguous in memory.
#[derive(Clone, Copy, Debug)]
pub struct Crc32c {
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// Starts a new checksum.
    pub const fn new() -> Self {
        Self { state: 0xFFFF_FFFF }
    }

    /// Adds `data` to the checksum.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.state;
        for &b in data {
            let idx = usize::from((c as u8) ^ b);
            // idx < 256 always: the fallback is never taken.
            c = TABLE.get(idx).copied().unwrap_or(0) ^ (c >> 8);
        }
        self.state = c;
    }

    /// The checksum of everything added so far.
    pub const fn finish(&self) -> u32 {
        !self.state
    }
}

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(data);
    c.finish()
}
