//! A spare device or image file as the format crate's [`BlockIo`].
//!
//! Opened read-only unless `check --repair` asks for write access; then a block device is opened with
//! `O_EXCL`, which the kernel refuses while the device is mounted or used by a device-mapper table.
//!
//! A block device is read with `O_DIRECT`: the kernel target writes the spare with bios that bypass the block
//! device's page cache, so buffered reads could return blocks cached by an earlier run. Direct I/O goes
//! through a 4096-byte-aligned bounce block (every request of the format crate is whole, aligned blocks).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::{BlockIo, IoError};

use crate::error::CliError;

/// Bytes per sector, the unit of every address here.
pub const SECTOR_BYTES: u64 = 512;
/// Bytes per metadata block.
const BLOCK_BYTES: u64 = 4096;

/// One metadata block, aligned for `O_DIRECT`.
#[repr(C, align(4096))]
struct Aligned([u8; BLOCK_SIZE]);

/// A spare device or an image of one.
#[derive(Debug)]
pub struct FileIo {
    file: File,
    writable: bool,
    direct: bool,
    sectors: u64,
}

impl FileIo {
    /// Opens `path` for reading only: every write request fails.
    pub fn open_read_only(path: &Path) -> Result<Self, CliError> {
        let direct = is_block_device(path)?;
        Self::open(path, false, direct)
    }

    /// Opens `path` for reading and writing; a block device exclusively (`O_EXCL`), so that a device in use
    /// by a dm-remap-v4 table (or mounted) is refused rather than written behind the kernel's back.
    pub fn open_for_repair(path: &Path) -> Result<Self, CliError> {
        let direct = is_block_device(path)?;
        Self::open(path, true, direct)
    }

    /// Opens `path`; `direct` (block devices) adds `O_DIRECT`, and `O_EXCL` when writing.
    fn open(path: &Path, writable: bool, direct: bool) -> Result<Self, CliError> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(writable);
        let mut flags = 0;
        if direct {
            flags |= libc::O_DIRECT;
            if writable {
                flags |= libc::O_EXCL;
            }
        }
        opts.custom_flags(flags);
        let mut file = opts.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                CliError::environment(format!(
                    "{}: the device is in use (by a dm-remap-v4 table or a mount); remove the device \
                     (dmremap remove <name>) before repairing its spare",
                    path.display()
                ))
            } else {
                open_error(path, &e)
            }
        })?;
        // Seeking to the end gives the size of regular files and block devices alike.
        let bytes = file.seek(SeekFrom::End(0)).map_err(|e| {
            CliError::environment(format!(
                "{}: cannot determine the size: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            file,
            writable,
            direct,
            sectors: bytes / SECTOR_BYTES,
        })
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    fn offset(sector: u64) -> Result<u64, IoError> {
        sector.checked_mul(SECTOR_BYTES).ok_or(IoError)
    }
}

fn is_block_device(path: &Path) -> Result<bool, CliError> {
    std::fs::metadata(path)
        .map(|m| m.file_type().is_block_device())
        .map_err(|e| open_error(path, &e))
}

fn open_error(path: &Path, e: &io::Error) -> CliError {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => "; give the path of the spare device or image",
        io::ErrorKind::PermissionDenied => "; run as root",
        _ => "",
    };
    CliError::environment(format!("{}: cannot open: {e}{hint}", path.display()))
}

impl BlockIo for FileIo {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = Self::offset(sector)?;
        if !self.direct {
            return self.file.read_exact_at(buf, at).map_err(|_| IoError);
        }
        let mut bounce = Box::new(Aligned([0; BLOCK_SIZE]));
        let mut pos = at;
        for chunk in buf.chunks_mut(BLOCK_SIZE) {
            self.file
                .read_exact_at(&mut bounce.0, pos)
                .map_err(|_| IoError)?;
            chunk.copy_from_slice(bounce.0.get(..chunk.len()).ok_or(IoError)?);
            pos = pos.checked_add(BLOCK_BYTES).ok_or(IoError)?;
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if !self.writable {
            return Err(IoError);
        }
        let at = Self::offset(sector)?;
        if !self.direct {
            return self.file.write_all_at(buf, at).map_err(|_| IoError);
        }
        let mut bounce = Box::new(Aligned([0; BLOCK_SIZE]));
        let mut pos = at;
        for chunk in buf.chunks(BLOCK_SIZE) {
            // Direct I/O moves whole blocks only: the format crate never asks for less.
            if chunk.len() != BLOCK_SIZE {
                return Err(IoError);
            }
            bounce.0.copy_from_slice(chunk);
            self.file
                .write_all_at(&bounce.0, pos)
                .map_err(|_| IoError)?;
            pos = pos.checked_add(BLOCK_BYTES).ok_or(IoError)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        if !self.writable {
            return Err(IoError);
        }
        self.file.sync_data().map_err(|_| IoError)
    }
}

/// An image in memory, for tests.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct MemIo {
    /// The image's bytes.
    pub data: Vec<u8>,
    /// Number of write requests seen (to prove read-only paths never write).
    pub writes: usize,
}

#[cfg(test)]
impl MemIo {
    /// A blank (all-zero) image of `sectors` sectors.
    pub fn blank(sectors: u64) -> Self {
        let len = usize::try_from(sectors.saturating_mul(SECTOR_BYTES)).unwrap_or(0);
        Self {
            data: vec![0; len],
            writes: 0,
        }
    }

    /// Size in sectors.
    pub fn sectors(&self) -> u64 {
        u64::try_from(self.data.len()).unwrap_or(0) / SECTOR_BYTES
    }

    fn range(&self, sector: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(sector.checked_mul(SECTOR_BYTES)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.data.len()).then_some(start..end)
    }
}

#[cfg(test)]
impl BlockIo for MemIo {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let r = self.range(sector, buf.len()).ok_or(IoError)?;
        buf.copy_from_slice(self.data.get(r).ok_or(IoError)?);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.writes = self.writes.saturating_add(1);
        let r = self.range(sector, buf.len()).ok_or(IoError)?;
        self.data.get_mut(r).ok_or(IoError)?.copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_io_is_read_only_unless_opened_for_repair() {
        let dir = std::env::temp_dir().join(format!("dmremap-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spare.img");
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        let mut ro = FileIo::open_read_only(&path).unwrap();
        assert_eq!(ro.sectors(), 16);
        let mut buf = vec![1u8; 4096];
        ro.read(8, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        assert_eq!(ro.write(0, &buf), Err(IoError));
        assert_eq!(ro.flush(), Err(IoError));
        assert_eq!(ro.read(9, &mut buf), Err(IoError), "read past the end");
        let mut rw = FileIo::open_for_repair(&path).unwrap();
        rw.write(0, &[7u8; 512]).unwrap();
        rw.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().first(), Some(&7));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn direct_io_through_the_bounce_block() {
        let dir = std::env::temp_dir().join(format!("dmremap-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spare.img");
        let mut data = vec![0u8; 16384];
        data[4096..8192].fill(9);
        std::fs::write(&path, &data).unwrap();
        // Not every file system takes O_DIRECT (tmpfs does not): nothing to test there.
        if let Ok(mut io) = FileIo::open(&path, true, true) {
            let mut buf = vec![0u8; 8192];
            io.read(8, &mut buf).unwrap();
            assert!(buf[..4096].iter().all(|&b| b == 9));
            assert!(buf[4096..].iter().all(|&b| b == 0));
            io.write(24, &[5u8; 4096]).unwrap();
            assert_eq!(io.write(0, &[5u8; 512]), Err(IoError));
            io.flush().unwrap();
            assert!(std::fs::read(&path).unwrap()[12288..]
                .iter()
                .all(|&b| b == 5));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_an_environment_error() {
        let e = FileIo::open_read_only(Path::new("/nonexistent/dmremap-spare")).unwrap_err();
        assert_eq!(e.code, crate::error::exit::ENVIRONMENT);
        assert!(e.message.contains("/nonexistent/dmremap-spare"));
    }
}
