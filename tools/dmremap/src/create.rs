//! `dmremap create`: checks the devices and builds the table line.

use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use std::path::Path;

use crate::assemble::{self, optional_args, valid_main_id};
use crate::device;
use crate::dm_ioctl::{Control, DmError, Target, CONTROL};
use crate::error::CliError;
use crate::identity::{self, Roots};
use crate::image::SECTOR_BYTES;
use crate::scrub::{MAX_RATE_KIB, MAX_SLOW_THRESHOLD_MS, MIN_RATE_KIB, MIN_SLOW_THRESHOLD_MS};
use crate::status::TARGET;

/// Largest `retries` the target accepts (`docs/status.md`).
pub const MAX_RETRIES: u32 = 8;

/// The table's tuning options; each is passed only when given (the target's defaults apply otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    /// `retries <n>`: extra attempts of a failed unit (0..=8; the target's default is 1).
    pub retries: Option<u32>,
    /// `scrub_rate <KiB/s>`: the background scrub's rate (1..=1048576; default 8192).
    pub scrub_rate: Option<u32>,
    /// `slow_threshold_ms <ms>`: a read slower than this counts as slow (1..=60000; default 1000).
    pub slow_threshold_ms: Option<u32>,
}

impl Tuning {
    /// The optional table arguments, in the order `retries`, `scrub_rate`, `slow_threshold_ms`; a value out
    /// of the target's range is a usage error naming the command-line option.
    pub fn words(&self) -> Result<Vec<String>, CliError> {
        let options = [
            ("retries", "--retries", self.retries, 0, MAX_RETRIES),
            (
                "scrub_rate",
                "--scrub-rate",
                self.scrub_rate,
                MIN_RATE_KIB,
                MAX_RATE_KIB,
            ),
            (
                "slow_threshold_ms",
                "--slow-threshold-ms",
                self.slow_threshold_ms,
                MIN_SLOW_THRESHOLD_MS,
                MAX_SLOW_THRESHOLD_MS,
            ),
        ];
        let mut words = Vec::new();
        for (key, flag, value, min, max) in options {
            let Some(n) = value else { continue };
            if !(min..=max).contains(&n) {
                return Err(CliError::usage(format!(
                    "{flag} {n} is out of range: the target accepts {min} to {max}"
                )));
            }
            words.extend([key.to_owned(), n.to_string()]);
        }
        Ok(words)
    }
}

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

/// The table line `0 <sectors> dm-remap-v4 <main> <spare> [<#opt_args> [retries <n>] [scrub_rate <KiB/s>]
/// [slow_threshold_ms <ms>] [spare <dev>]... [main_id <id>]]`: the first spare is the table's spare, the
/// others are passed as `spare <dev>`.
pub fn table_line(
    sectors: u64,
    main: &str,
    spares: &[&str],
    tuning: Tuning,
    main_id: Option<&str>,
) -> Result<String, CliError> {
    let roles = std::iter::once(("main", main)).chain(spares.iter().map(|s| ("spare", *s)));
    for (role, path) in roles {
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
    let Some((first, rest)) = spares.split_first() else {
        return Err(CliError::usage("give the spare device with --spare <dev>"));
    };
    let mut opts = tuning.words()?;
    for s in rest {
        opts.extend(["spare".to_owned(), (*s).to_owned()]);
    }
    if let Some(id) = main_id.filter(|id| valid_main_id(id)) {
        opts.extend(["main_id".to_owned(), id.to_owned()]);
    }
    Ok(format!(
        "0 {sectors} {TARGET} {main} {first}{}",
        optional_args(&opts)
    ))
}

/// Checks the command line's devices and returns the table line for them, with the main device's
/// identifier (`main_id`, see [`crate::identity`]) when it has one, so that the spare records it.
pub fn plan(main: &str, spares: &[String], tuning: Tuning) -> Result<String, CliError> {
    if spares.is_empty() {
        return Err(CliError::usage("give the spare device with --spare <dev>"));
    }
    let m = block_device("main", main)?;
    let mut seen = vec![(m.rdev, main)];
    for spare in spares {
        let s = block_device("spare", spare)?;
        if let Some((_, other)) = seen.iter().find(|(rdev, _)| *rdev == s.rdev) {
            return Err(CliError::usage(format!(
                "{other} and spare device {spare} are the same device; give separate devices"
            )));
        }
        seen.push((s.rdev, spare));
    }
    let main_id = identity::device_at(&Roots::system(), Path::new(main))
        .ok()
        .and_then(|d| d.main_id);
    let spares: Vec<&str> = spares.iter().map(String::as_str).collect();
    table_line(m.sectors, &m.path, &spares, tuning, main_id.as_deref())
}

/// The user's error for a failed device-mapper request about device `name`.
pub fn dm_failure(name: &str, e: &DmError) -> CliError {
    match (e.cmd, e.errno) {
        ("open", libc::ENOENT | libc::ENODEV | libc::ENXIO) => CliError::environment(format!(
            "{CONTROL} is missing: device-mapper is not available; load it (modprobe dm_mod)"
        )),
        ("open", libc::EACCES | libc::EPERM) => CliError::environment(format!(
            "cannot open {CONTROL}: permission denied; run as root"
        )),
        ("open", _) => CliError::environment(format!("cannot open {CONTROL}: {}", e.detail)),
        ("DM_DEV_CREATE", libc::EBUSY) => CliError::failed(format!(
            "a device-mapper device named '{name}' (or one made from the same setup) already exists; \
             see 'dmremap status' and 'dmremap scan'"
        )),
        ("DM_TABLE_LOAD" | "DM_DEV_SUSPEND", _) => {
            let why = assemble::kernel_reason().unwrap_or_else(|| e.detail.clone());
            CliError::failed(format!("{name}: the kernel refused the table: {why}"))
        }
        (_, libc::ENXIO) => CliError::failed(format!(
            "there is no device-mapper device named '{name}'; 'dmremap status' lists the dm-remap-v4 devices"
        )),
        ("DM_DEV_REMOVE", libc::EBUSY) => CliError::failed(format!(
            "{name} is in use (mounted or held open); unmount or close it, then remove it"
        )),
        (_, libc::EACCES | libc::EPERM) => {
            CliError::environment(format!("{name}: {e}; run as root"))
        }
        _ => CliError::failed(format!("{name}: {e}")),
    }
}

/// Creates device `name` with `table` through the ioctl interface, loading the kernel module first if the
/// target type is missing. A table the kernel refuses leaves no device behind.
pub fn create(name: &str, table: &str) -> Result<(), CliError> {
    let target = Target::parse(table).map_err(CliError::usage)?;
    let mut c = Control::open().map_err(|e| dm_failure(name, &e))?;
    device::ensure_target(&mut c, device::modprobe)?;
    c.create_device(name, "", &[target])
        .map(|_| ())
        .map_err(|e| dm_failure(name, &e))
}

/// Removes device `name`, which must be a dm-remap-v4 device, through the ioctl interface.
pub fn remove(name: &str) -> Result<(), CliError> {
    let mut c = Control::open().map_err(|e| dm_failure(name, &e))?;
    let table = c.table(name, true).map_err(|e| dm_failure(name, &e))?;
    if !table.iter().any(|t| t.kind == TARGET) {
        return Err(CliError::failed(format!(
            "{name} is not a {TARGET} device (see 'dmsetup table {name}')"
        )));
    }
    c.remove_device(name).map_err(|e| dm_failure(name, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retries(n: u32) -> Tuning {
        Tuning {
            retries: Some(n),
            ..Tuning::default()
        }
    }

    #[test]
    fn table_line_with_and_without_options() {
        assert_eq!(
            table_line(65536, "/dev/sdb", &["/dev/sdc"], Tuning::default(), None).unwrap(),
            "0 65536 dm-remap-v4 /dev/sdb /dev/sdc"
        );
        assert_eq!(
            table_line(65536, "/dev/sdb", &["/dev/sdc"], retries(3), None).unwrap(),
            "0 65536 dm-remap-v4 /dev/sdb /dev/sdc 2 retries 3"
        );
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b"], retries(0), None).unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b 2 retries 0"
        );
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b", "/dev/c", "/dev/d"], retries(1), Some("loop:/x/a.img"))
                .unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b 8 retries 1 spare /dev/c spare /dev/d main_id loop:/x/a.img"
        );
        // An identifier the target would refuse is not passed.
        assert_eq!(
            table_line(
                8,
                "/dev/a",
                &["/dev/b"],
                Tuning::default(),
                Some("has space")
            )
            .unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b"
        );
    }

    #[test]
    fn table_line_with_scrub_options() {
        let scrub = Tuning {
            scrub_rate: Some(65536),
            ..Tuning::default()
        };
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b"], scrub, None).unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b 2 scrub_rate 65536"
        );
        let slow = Tuning {
            slow_threshold_ms: Some(250),
            ..Tuning::default()
        };
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b"], slow, None).unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b 2 slow_threshold_ms 250"
        );
        let all = Tuning {
            retries: Some(2),
            scrub_rate: Some(1),
            slow_threshold_ms: Some(60000),
        };
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b", "/dev/c"], all, Some("loop:/x/a.img")).unwrap(),
            "0 8 dm-remap-v4 /dev/a /dev/b 10 retries 2 scrub_rate 1 slow_threshold_ms 60000 spare /dev/c \
             main_id loop:/x/a.img"
        );
        let top = Tuning {
            scrub_rate: Some(1_048_576),
            slow_threshold_ms: Some(1),
            ..Tuning::default()
        };
        assert_eq!(
            top.words().unwrap(),
            ["scrub_rate", "1048576", "slow_threshold_ms", "1"]
        );
        assert_eq!(Tuning::default().words().unwrap(), Vec::<String>::new());
        let bad = |t: Tuning| table_line(8, "/dev/a", &["/dev/b"], t, None).unwrap_err();
        let e = bad(Tuning {
            scrub_rate: Some(0),
            ..Tuning::default()
        });
        assert_eq!(e.code, 2);
        assert_eq!(
            e.message,
            "--scrub-rate 0 is out of range: the target accepts 1 to 1048576"
        );
        let e = bad(Tuning {
            scrub_rate: Some(1_048_577),
            ..Tuning::default()
        });
        assert_eq!(e.code, 2);
        let e = bad(Tuning {
            slow_threshold_ms: Some(60001),
            ..Tuning::default()
        });
        assert_eq!(
            e.message,
            "--slow-threshold-ms 60001 is out of range: the target accepts 1 to 60000"
        );
        let e = bad(Tuning {
            slow_threshold_ms: Some(0),
            ..Tuning::default()
        });
        assert_eq!(e.code, 2);
    }

    #[test]
    fn table_line_refusals() {
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b"], retries(9), None)
                .unwrap_err()
                .message,
            "--retries 9 is out of range: the target accepts 0 to 8"
        );
        assert_eq!(
            table_line(8, "/dev/a", &["/dev/b"], retries(9), None)
                .unwrap_err()
                .code,
            2
        );
        assert!(
            table_line(8, "/dev/my disk", &["/dev/b"], Tuning::default(), None)
                .unwrap_err()
                .message
                .contains("white space")
        );
        assert!(table_line(
            8,
            "/dev/a",
            &["/dev/b", "/dev/c d"],
            Tuning::default(),
            None
        )
        .is_err());
        assert!(table_line(0, "/dev/a", &["/dev/b"], Tuning::default(), None).is_err());
        assert!(table_line(8, "/dev/a", &[], Tuning::default(), None).is_err());
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
        assert_eq!(plan("/dev/a", &[], Tuning::default()).unwrap_err().code, 2);
    }

    #[test]
    fn a_malformed_table_is_a_usage_error_before_any_request() {
        // Found before /dev/mapper/control is opened: the same on a machine without device-mapper.
        assert_eq!(create("r", "zero").unwrap_err().code, 2);
    }

    #[test]
    fn device_mapper_failures_read_as_sentences() {
        let e = |cmd, errno| DmError {
            cmd,
            name: "r0".into(),
            errno,
            detail: "Device or resource busy (os error 16)".into(),
        };
        let m = dm_failure("r0", &e("DM_DEV_CREATE", libc::EBUSY));
        assert_eq!(m.code, 1);
        assert!(m.message.starts_with("a device-mapper device named 'r0'"));
        assert_eq!(dm_failure("r0", &e("open", libc::EACCES)).code, 3);
        assert!(dm_failure("r0", &e("DM_DEV_REMOVE", libc::EBUSY))
            .message
            .contains("r0 is in use"));
        assert!(dm_failure("r0", &e("DM_TABLE_STATUS", libc::ENXIO))
            .message
            .contains("no device-mapper device named 'r0'"));
    }
}
