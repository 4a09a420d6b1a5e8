//! `OutBuf` over buffers of 0..=300 bytes, fed NUL-free strings: it must never write past the buffer, must
//! keep it NUL-terminated, must hold exactly what was written while it fits, and must signal overflow the way
//! device-mapper expects (`strlen(buf) + 1 == len`).
#![no_main]

use core::fmt::Write;

use dm_remap_v4_target::outbuf::OutBuf;
use libfuzzer_sys::fuzz_target;

/// Bytes past the buffer, which must stay untouched.
const GUARD: usize = 16;

fn strlen(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == 0)
}

fuzz_target!(|data: &[u8]| {
    let [lo, hi, rest @ ..] = data else { return };
    let len = usize::from(u16::from_le_bytes([*lo, *hi])) % 301;
    // NUL separates the strings, so none contains one (status output never does).
    let pieces: Vec<String> = rest
        .split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();

    let mut mem = vec![0xa5u8; len + GUARD];
    let (buf, guard) = mem.split_at_mut(len);
    let mut out = OutBuf::new(buf);
    let mut written = String::new();
    for piece in &pieces {
        let result = out.write_str(piece);
        written.push_str(piece);
        assert_eq!(result.is_err(), out.overflowed());
        if !out.overflowed() {
            assert_eq!(out.as_bytes(), written.as_bytes());
        }
    }
    let overflowed = out.overflowed();
    let text = out.as_bytes().to_vec();
    assert!(guard.iter().all(|&b| b == 0xa5), "wrote past the buffer");
    if len > 0 {
        let n = strlen(buf).expect("buffer not NUL-terminated");
        assert_eq!(&buf[..n], &text[..]);
        if overflowed {
            assert_eq!(n + 1, len, "overflow must fill the buffer");
        }
    }
});
