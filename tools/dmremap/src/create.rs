//! `dmremap create`: checks the devices and builds the table line.

use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::dmsetup::{Dm, Exec};
use crate::error::CliError;
use crate::image::SECTOR_BYTES;
use crate::status::TARGET;

/// Largest `retries` the target accepts (`docs/status.md`).
pub const MAX_RETRIES: u32 = 8;

/// A block device given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// The path as given.
    pub path: String,
    /// Device number (`st_rdev`).
    pub rdev: u64,
    /// Size in 512-byte sectors.
    pub sectors: u64,
}

/// Checks that `path` exists and is a block device, and reads its size; `role` (`main`, `spare`) names it in
/// errors.
pub fn block_device(role: &str, path: &str) -> Result<BlockDevice, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        CliError::environment(format!(
            "{role} device {path}: {e}; give the path of an existing block device"
        ))
    })?;
    if !meta.file_type().is_block_device() {
        return Err(CliError::usage(format!(
            "{role} device {path} is not a block device; for an image file, attach it first \
             (losetup --find --show {path})"
        )));
    }
    // Seeking to the end of a block device gives its size in bytes, without an ioctl (no unsafe code).
    let bytes = std::fs::File::open(path)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_err(|e| {
            CliError::environment(format!("{role} device {path}: cannot read its size: {e}"))
        })?;
    Ok(BlockDevice {
        path: path.to_owned(),
        rdev: meta.rdev(),
        sectors: bytes / SECTOR_BYTES,
    })
}

/// The table line `0 <sectors> dm-remap-v4 <main> <spare> [2 retries <n>]`.
pub fn table_line(
    sectors: u64,
    main: &str,
    spare: &str,
    retries: Option<u32>,
) -> Result<String, CliError> {
    for (role, path) in [("main", main), ("spare", spare)] {
        if path.is_empty() || path.chars().any(char::is_whitespace) {
            return Err(CliError::usage(format!(
                "{role} device path '{path}' is empty or contains white space, which a table line cannot \
                 hold; use another path to it (for example /dev/disk/by-id/...)"
            )));
        }
    }
    if sectors == 0 {
        return Err(CliError::usage(format!(
            "main device {main} has a size of 0 sectors"
        )));
    }
    let mut line = format!("0 {sectors} {TARGET} {main} {spare}");
    if let Some(n) = retries {
        if n > MAX_RETRIES {
            return Err(CliError::usage(format!(
                "--retries {n} is out of range: the target accepts 0 to {MAX_RETRIES}"
            )));
        }
        line.push_str(&format!(" 2 retries {n}"));
    }
    Ok(line)
}

/// Checks the command line's devices and returns the table line for them.
pub fn plan(main: &str, spares: &[String], retries: Option<u32>) -> Result<String, CliError> {
    let spare = match spares {
        [one] => one,
        [] => return Err(CliError::usage("give the spare device with --spare <dev>")),
        more => {
            return Err(CliError::usage(format!(
                "{} spare devices given, but the kernel target supports exactly one spare today; give one \
                 --spare",
                more.len()
            )))
        }
    };
    let m = block_device("main", main)?;
    let s = block_device("spare", spare)?;
    if m.rdev == s.rdev {
        return Err(CliError::usage(format!(
            "main device {main} and spare device {spare} are the same device; give a separate spare"
        )));
    }
    table_line(m.sectors, &m.path, &s.path, retries)
}

/// Creates device `name` with `table`, loading the kernel module first if the target type is missing.
pub fn create<E: Exec>(dm: &mut Dm<E>, name: &str, table: &str) -> Result<(), CliError> {
    dm.ensure_target()?;
    dm.create(name, table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmsetup::tests::Fake;

    #[test]
    fn table_line_with_and_without_retries() {
        assert_eq!(
            table_line(65536, "/dev/sdb", "/dev/sdc", None).unwrap(),
            "0 65536 dm-remap-v4 /dev/sdb /dev/sdc"
        );
        assert_eq!(
            table_line(65536, "/dev/sdb", "/dev/sdc", Some(3)).unwrap(),
            "0 65536 dm-remap-v4 /dev/sdb /dev/sdc 2 retries 3"
        );
        assert_eq!(
            table_line(8, "/dev/a", "/dev/b", Some(0)).unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b 2 retries 0"
        );
    }

    #[test]
    fn table_line_refusals() {
        assert_eq!(
            table_line(8, "/dev/a", "/dev/b", Some(9)).unwrap_err().code,
            2
        );
        assert!(table_line(8, "/dev/my disk", "/dev/b", None)
            .unwrap_err()
            .message
            .contains("white space"));
        assert!(table_line(0, "/dev/a", "/dev/b", None).is_err());
    }

    #[test]
    fn devices_must_exist_and_be_block_devices() {
        let e = block_device("main", "/nonexistent/dmremap-main").unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e
            .message
            .starts_with("main device /nonexistent/dmremap-main:"));
        let e = block_device("spare", "/dev/null").unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("/dev/null is not a block device"));
    }

    #[test]
    fn exactly_one_spare() {
        let two = vec!["/dev/b".to_owned(), "/dev/c".to_owned()];
        let e = plan("/dev/a", &two, None).unwrap_err();
        assert!(
            e.message.contains("supports exactly one spare"),
            "{}",
            e.message
        );
        assert!(plan("/dev/a", &[], None).is_err());
    }

    #[test]
    fn create_loads_the_module_when_needed() {
        let fake = Fake::default()
            .on("dmsetup targets", Ok("linear v1.4.0\n"))
            .on("modprobe", Ok(""));
        let mut dm = Dm { exec: fake };
        // The fake keeps answering without the target after modprobe: reported as such.
        let e = create(&mut dm, "r", "0 8 dm-remap-v4 /dev/a /dev/b").unwrap_err();
        assert!(e.message.contains("does not list"));

        let fake = Fake::default().on("dmsetup targets", Ok("dm-remap-v4 v0.1.0\n"));
        let mut dm = Dm { exec: fake };
        create(&mut dm, "r", "0 8 dm-remap-v4 /dev/a /dev/b").unwrap();
        assert_eq!(
            dm.exec.calls,
            [
                "dmsetup targets",
                "dmsetup create r --table 0 8 dm-remap-v4 /dev/a /dev/b"
            ]
        );
    }
}
