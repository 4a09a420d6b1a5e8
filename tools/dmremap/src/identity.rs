//! Block devices as sysfs describes them, and the stable identifier of a main device (`main_id`).
//!
//! `main_id` is what `dmremap create` passes to the target (recorded in the superblock when the spare is
//! formatted) and what `dmremap scan` compares to tell mains of equal size apart. It must survive a reboot
//! and a re-attachment, so it comes from the device's identity, never from its kernel name (`sdb`, `loop3`):
//!
//! | device | `main_id` |
//! | --- | --- |
//! | a disk with a WWN/WWID (`/sys/class/block/X/wwid` or `.../device/wwid`) | `wwn:<wwid>` |
//! | a disk with a serial (`.../serial`, `.../device/serial`, or udev's `ID_SERIAL`) | `serial:<serial>` |
//! | a loop device | `loop:<backing file path>` |
//! | a device-mapper device | `dm-uuid:<uuid>` when it has one (LVM, crypt), else `dm-name:<name>` |
//! | an md array | `md:<array uuid>` |
//! | a partition | its disk's identifier + `:part<N>` |
//!
//! Anything else has no identifier and `main_id` is omitted. The text is made to fit the target's rule
//! (1..64 bytes of printable ASCII without spaces): white space and other bytes become `_`, and a longer
//! text keeps its first 47 bytes followed by `~` and the 16 hex digits of the FNV-1a 64-bit hash of the
//! whole text, so two long identifiers that share a prefix still differ.

use std::fs;
use std::path::{Path, PathBuf};

/// Largest `main_id` the target accepts (the superblock field).
pub const MAIN_ID_MAX: usize = 64;
/// Bytes of the original text kept in front of the hash of a too-long identifier.
const KEPT_PREFIX: usize = MAIN_ID_MAX - 17;

/// Where sysfs, `/dev` and udev's database are (the real ones, or a test tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `/sys`.
    pub sys: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
    /// `/run/udev/data`.
    pub udev: PathBuf,
}

impl Roots {
    /// The running system's.
    pub fn system() -> Self {
        Self {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            udev: PathBuf::from("/run/udev/data"),
        }
    }

    fn class_block(&self) -> PathBuf {
        self.sys.join("class/block")
    }
}

/// One block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDev {
    /// Kernel name (`sdb`, `loop3`, `dm-0`).
    pub name: String,
    /// Node to open (`/dev/<name>`, or the path given on the command line).
    pub path: PathBuf,
    /// `(major, minor)`.
    pub dev: (u32, u32),
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Logical block size in bytes.
    pub logical_block_size: u32,
    /// Kernel names of the devices holding it (device-mapper tables, md arrays).
    pub holders: Vec<String>,
    /// Kernel names of the devices it is built on (for a device-mapper device: its table's devices).
    pub slaves: Vec<String>,
    /// The device-mapper name, for a device-mapper device.
    pub dm_name: Option<String>,
    /// The stable identifier (see the module documentation).
    pub main_id: Option<String>,
}

impl BlockDev {
    /// `major:minor`, as a table line names a device.
    pub fn numbers(&self) -> String {
        format!("{}:{}", self.dev.0, self.dev.1)
    }

    /// How reports name the device: its node path.
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn dir_names(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(path)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn parse_numbers(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// FNV-1a, 64 bits: a fixed, documented hash (the standard library's may change between releases).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Makes `kind:value` fit the target's rule (see the module documentation); `None` for an empty value.
pub fn normalize(kind: &str, value: &str) -> Option<String> {
    let mut v = String::new();
    let mut last_underscore = false;
    for c in value.trim().chars() {
        if c.is_ascii_graphic() {
            v.push(c);
            last_underscore = false;
        } else if !last_underscore {
            // A run of spaces (SCSI pads its identifiers) or other bytes becomes one `_`.
            v.push('_');
            last_underscore = true;
        }
    }
    let v = v.trim_matches('_');
    if v.is_empty() {
        return None;
    }
    let full = format!("{kind}:{v}");
    if full.len() <= MAIN_ID_MAX {
        return Some(full);
    }
    // Only ASCII is left, so any byte index is a character boundary.
    let prefix = full.get(..KEPT_PREFIX).unwrap_or(&full);
    Some(format!("{prefix}~{:016x}", fnv1a64(full.as_bytes())))
}

/// udev's `ID_SERIAL` (or `ID_SERIAL_SHORT`) for the device, from its database.
fn udev_serial(roots: &Roots, dev: (u32, u32)) -> Option<String> {
    let db = fs::read_to_string(roots.udev.join(format!("b{}:{}", dev.0, dev.1))).ok()?;
    let find = |key: &str| {
        db.lines()
            .find_map(|l| l.strip_prefix(&format!("E:{key}=")).map(str::to_owned))
            .filter(|s| !s.trim().is_empty())
    };
    find("ID_SERIAL").or_else(|| find("ID_SERIAL_SHORT"))
}

/// The identifier of the device whose sysfs directory is `dir` (see the module documentation).
pub fn main_id(roots: &Roots, dir: &Path, dev: (u32, u32)) -> Option<String> {
    if let Some(n) = read_trimmed(&dir.join("partition")) {
        // sysfs nests a partition's directory in its disk's.
        let parent = fs::canonicalize(dir).ok()?.parent()?.to_path_buf();
        let pdev = read_trimmed(&parent.join("dev")).and_then(|s| parse_numbers(&s))?;
        let disk = main_id(roots, &parent, pdev)?;
        return normalize_joined(&disk, &format!(":part{n}"));
    }
    for f in ["wwid", "device/wwid"] {
        if let Some(w) = read_trimmed(&dir.join(f)).and_then(|w| normalize("wwn", &w)) {
            return Some(w);
        }
    }
    for f in ["serial", "device/serial"] {
        if let Some(s) = read_trimmed(&dir.join(f)).and_then(|s| normalize("serial", &s)) {
            return Some(s);
        }
    }
    if let Some(s) = udev_serial(roots, dev).and_then(|s| normalize("serial", &s)) {
        return Some(s);
    }
    if let Some(f) = read_trimmed(&dir.join("loop/backing_file")) {
        return normalize("loop", &f);
    }
    if dir.join("dm").is_dir() {
        if let Some(u) = read_trimmed(&dir.join("dm/uuid")) {
            return normalize("dm-uuid", &u);
        }
        return read_trimmed(&dir.join("dm/name")).and_then(|n| normalize("dm-name", &n));
    }
    read_trimmed(&dir.join("md/uuid")).and_then(|u| normalize("md", &u))
}

/// `id` + `suffix`, shortened like [`normalize`] when too long.
fn normalize_joined(id: &str, suffix: &str) -> Option<String> {
    let (kind, value) = id.split_once(':')?;
    // A hashed disk identifier is hashed again with the suffix: still stable and distinct per partition.
    normalize(kind, &format!("{value}{suffix}"))
}

/// Reads the device with sysfs directory `dir`; `path` overrides the node (a path from the command line).
fn read_device(roots: &Roots, dir: &Path, name: &str, path: Option<PathBuf>) -> Option<BlockDev> {
    let dev = parse_numbers(&read_trimmed(&dir.join("dev"))?)?;
    let sectors = read_trimmed(&dir.join("size"))?.parse().ok()?;
    // A partition has no queue directory of its own: its disk's applies.
    let lbs = read_trimmed(&dir.join("queue/logical_block_size"))
        .or_else(|| {
            let parent = fs::canonicalize(dir).ok()?.parent()?.to_path_buf();
            read_trimmed(&parent.join("queue/logical_block_size"))
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    Some(BlockDev {
        name: name.to_owned(),
        path: path.unwrap_or_else(|| roots.dev.join(name)),
        dev,
        sectors,
        logical_block_size: lbs,
        holders: dir_names(&dir.join("holders")),
        slaves: dir_names(&dir.join("slaves")),
        dm_name: read_trimmed(&dir.join("dm/name")),
        main_id: main_id(roots, dir, dev),
    })
}

/// Every block device of non-zero size, by kernel name.
pub fn all_devices(roots: &Roots) -> Vec<BlockDev> {
    let class = roots.class_block();
    dir_names(&class)
        .into_iter()
        .filter_map(|n| read_device(roots, &class.join(&n), &n, None))
        .filter(|d| d.sectors > 0)
        .collect()
}

/// The block device at `path` (a node, or a symlink to one such as `/dev/disk/by-id/...`).
pub fn device_at(roots: &Roots, path: &Path) -> Result<BlockDev, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_block_device() {
        return Err(format!("{} is not a block device", path.display()));
    }
    let dev = crate::dm_ioctl::rdev_numbers(meta.rdev());
    let dir = roots.sys.join(format!("dev/block/{}:{}", dev.0, dev.1));
    let real = fs::canonicalize(&dir)
        .map_err(|e| format!("{}: no sysfs entry {} ({e})", path.display(), dir.display()))?;
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    read_device(roots, &real, &name, Some(path.to_path_buf())).ok_or_else(|| {
        format!(
            "{}: cannot read its size from {}",
            path.display(),
            real.display()
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scratch directory under the system's temporary directory, removed on drop.
    pub(crate) struct Scratch(pub PathBuf);

    impl Scratch {
        pub fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "dmremap-test-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&p).unwrap();
            Self(p)
        }

        pub fn roots(&self) -> Roots {
            Roots {
                sys: self.0.join("sys"),
                dev: self.0.join("dev"),
                udev: self.0.join("udev"),
            }
        }

        pub fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }

        /// A disk `name` under `sys/devices/...`, linked from `sys/class/block`.
        pub fn disk(&self, name: &str, dev: &str, sectors: u64, lbs: u32) -> PathBuf {
            let dir = self.0.join(format!("sys/devices/virtual/block/{name}"));
            fs::create_dir_all(dir.join("holders")).unwrap();
            fs::create_dir_all(dir.join("slaves")).unwrap();
            fs::create_dir_all(dir.join("queue")).unwrap();
            fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
            fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
            fs::write(dir.join("queue/logical_block_size"), format!("{lbs}\n")).unwrap();
            self.link(name, &dir);
            dir
        }

        pub fn link(&self, name: &str, dir: &Path) {
            let class = self.0.join("sys/class/block");
            fs::create_dir_all(&class).unwrap();
            std::os::unix::fs::symlink(dir, class.join(name)).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn normalize_follows_the_targets_rule() {
        assert_eq!(normalize("loop", "/tmp/a.img").unwrap(), "loop:/tmp/a.img");
        assert_eq!(
            normalize("wwn", "t10.ATA     QEMU HARDDISK   QM00001 \n").unwrap(),
            "wwn:t10.ATA_QEMU_HARDDISK_QM00001"
        );
        assert_eq!(normalize("serial", "  \t "), None);
        let long = format!("/var/lib/images/{}", "x".repeat(80));
        let a = normalize("loop", &long).unwrap();
        let b = normalize("loop", &format!("{long}y")).unwrap();
        assert_eq!(a.len(), MAIN_ID_MAX);
        assert_eq!(b.len(), MAIN_ID_MAX);
        assert_ne!(
            a, b,
            "the hash tells long identifiers with a shared prefix apart"
        );
        assert!(a.starts_with("loop:/var/lib/images/xxx"));
        assert_eq!(a.as_bytes()[KEPT_PREFIX], b'~');
        // Stable across releases: the value is fixed by the algorithm.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        for id in [a, b] {
            assert!(id.bytes().all(|c| c.is_ascii_graphic()));
        }
    }

    #[test]
    fn identifiers_in_order_of_preference() {
        let s = Scratch::new("id");
        let roots = s.roots();
        let sda = s.disk("sda", "8:0", 1000, 512);
        fs::write(sda.join("serial"), "S3R14L\n").unwrap();
        assert_eq!(main_id(&roots, &sda, (8, 0)).unwrap(), "serial:S3R14L");
        fs::create_dir_all(sda.join("device")).unwrap();
        fs::write(sda.join("device/wwid"), "naa.5000c500a1b2c3d4\n").unwrap();
        assert_eq!(
            main_id(&roots, &sda, (8, 0)).unwrap(),
            "wwn:naa.5000c500a1b2c3d4"
        );
        // A partition: the disk's identifier and its number.
        let p1 = sda.join("sda1");
        fs::create_dir_all(&p1).unwrap();
        fs::write(p1.join("dev"), "8:1\n").unwrap();
        fs::write(p1.join("size"), "500\n").unwrap();
        fs::write(p1.join("partition"), "1\n").unwrap();
        assert_eq!(
            main_id(&roots, &p1, (8, 1)).unwrap(),
            "wwn:naa.5000c500a1b2c3d4:part1"
        );
        // udev's serial when sysfs has none.
        let vdb = s.disk("vdb", "254:16", 1000, 512);
        assert_eq!(main_id(&roots, &vdb, (254, 16)), None);
        s.write("udev/b254:16", "S:disk/by-id/x\nE:ID_SERIAL=QEMU_disk_1\n");
        assert_eq!(
            main_id(&roots, &vdb, (254, 16)).unwrap(),
            "serial:QEMU_disk_1"
        );
        let lo = s.disk("loop3", "7:3", 1000, 512);
        s.write(
            "sys/devices/virtual/block/loop3/loop/backing_file",
            "/srv/main a.img\n",
        );
        assert_eq!(
            main_id(&roots, &lo, (7, 3)).unwrap(),
            "loop:/srv/main_a.img"
        );
        let dm = s.disk("dm-0", "253:0", 1000, 512);
        s.write("sys/devices/virtual/block/dm-0/dm/name", "dust\n");
        s.write("sys/devices/virtual/block/dm-0/dm/uuid", "\n");
        assert_eq!(main_id(&roots, &dm, (253, 0)).unwrap(), "dm-name:dust");
        s.write("sys/devices/virtual/block/dm-0/dm/uuid", "LVM-abc\n");
        assert_eq!(main_id(&roots, &dm, (253, 0)).unwrap(), "dm-uuid:LVM-abc");
    }

    #[test]
    fn devices_are_read_from_sysfs() {
        let s = Scratch::new("devs");
        let roots = s.roots();
        let lo = s.disk("loop0", "7:0", 65536, 4096);
        s.write(
            "sys/devices/virtual/block/loop0/loop/backing_file",
            "/x/main.img\n",
        );
        fs::create_dir_all(lo.join("holders/dm-1")).unwrap();
        s.disk("loop1", "7:1", 0, 512);
        let all = all_devices(&roots);
        assert_eq!(all.len(), 1, "empty devices are skipped: {all:?}");
        let d = &all[0];
        assert_eq!(d.name, "loop0");
        assert_eq!(d.path, roots.dev.join("loop0"));
        assert_eq!(d.dev, (7, 0));
        assert_eq!(d.numbers(), "7:0");
        assert_eq!(d.sectors, 65536);
        assert_eq!(d.logical_block_size, 4096);
        assert_eq!(d.holders, ["dm-1"]);
        assert_eq!(d.main_id.as_deref(), Some("loop:/x/main.img"));
        assert!(device_at(&roots, Path::new("/dev/null"))
            .unwrap_err()
            .contains("not a block device"));
    }
}
