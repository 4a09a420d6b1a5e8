//! device-mapper through its ioctl interface (`/dev/mapper/control`, `linux/dm-ioctl.h`), without
//! libdevmapper.
//!
//! Why not the `devicemapper` crate: its `devicemapper-sys` build script needs libdevmapper's development
//! files and libclang, which the tools package must not depend on. The protocol is small: every request is
//! one buffer holding `struct dm_ioctl` (312 bytes) followed by the command's data, and the kernel answers
//! in the same buffer. The buffer is built and read field by field at the C offsets (asserted against a
//! `#[repr(C)]` mirror of the struct in the tests), so the only `unsafe` code is the `ioctl(2)` call itself
//! and `mknod(2)` for the device node.
//!
//! Device nodes: libdevmapper waits for udev to make `/dev/mapper/<name>`, or makes it itself when udev is
//! not running (`DM_DISABLE_UDEV=1`). [`Control::create_device`] does the same: it waits briefly for udev
//! when udev runs, and otherwise creates the node itself (the test VMs have no udev).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Size of `struct dm_ioctl`.
pub const DM_IOCTL_SIZE: usize = 312;
/// Size of `struct dm_target_spec`.
pub const DM_TARGET_SPEC_SIZE: usize = 40;
/// `DM_NAME_LEN`: a name's bytes, NUL included.
pub const DM_NAME_LEN: usize = 128;
/// `DM_UUID_LEN`: a uuid's bytes, NUL included.
pub const DM_UUID_LEN: usize = 129;
/// `DM_MAX_TYPE_NAME`.
const DM_MAX_TYPE_NAME: usize = 16;

// Field offsets in `struct dm_ioctl` (checked against the mirror in the tests).
const OFF_VERSION: usize = 0;
const OFF_DATA_SIZE: usize = 12;
const OFF_DATA_START: usize = 16;
const OFF_TARGET_COUNT: usize = 20;
const OFF_OPEN_COUNT: usize = 24;
const OFF_FLAGS: usize = 28;
const OFF_EVENT_NR: usize = 32;
const OFF_DEV: usize = 40;
const OFF_NAME: usize = 48;
const OFF_UUID: usize = 176;

/// The interface version this code speaks; the kernel accepts any 4.x request with x at most its own.
const VERSION: [u32; 3] = [4, 0, 0];

/// `DM_READONLY_FLAG`.
pub const DM_READONLY_FLAG: u32 = 1 << 0;
/// `DM_SUSPEND_FLAG`: in DM_DEV_SUSPEND, suspend (without it, resume); out: the device is suspended.
pub const DM_SUSPEND_FLAG: u32 = 1 << 1;
/// `DM_STATUS_TABLE_FLAG`: DM_TABLE_STATUS returns the table lines instead of the status lines.
pub const DM_STATUS_TABLE_FLAG: u32 = 1 << 4;
/// `DM_ACTIVE_PRESENT_FLAG`: the device has a live table.
pub const DM_ACTIVE_PRESENT_FLAG: u32 = 1 << 5;
/// `DM_INACTIVE_PRESENT_FLAG`: a table is loaded but not yet live.
pub const DM_INACTIVE_PRESENT_FLAG: u32 = 1 << 6;
/// `DM_BUFFER_FULL_FLAG`: the answer did not fit; ask again with a larger buffer.
pub const DM_BUFFER_FULL_FLAG: u32 = 1 << 8;
/// `DM_DATA_OUT_FLAG`: a target message returned text.
pub const DM_DATA_OUT_FLAG: u32 = 1 << 16;

/// The commands used here (`enum { DM_VERSION_CMD = 0, ... }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Cmd {
    /// DM_VERSION.
    Version = 0,
    /// DM_LIST_DEVICES.
    ListDevices = 2,
    /// DM_DEV_CREATE.
    DevCreate = 3,
    /// DM_DEV_REMOVE.
    DevRemove = 4,
    /// DM_DEV_SUSPEND (also resume).
    DevSuspend = 6,
    /// DM_DEV_STATUS (the device's info, not the target status).
    DevStatus = 7,
    /// DM_TABLE_LOAD.
    TableLoad = 9,
    /// DM_TABLE_STATUS (with [`DM_STATUS_TABLE_FLAG`]: the table).
    TableStatus = 12,
    /// DM_LIST_VERSIONS (the registered target types).
    ListVersions = 13,
    /// DM_TARGET_MSG.
    TargetMsg = 14,
}

impl Cmd {
    /// `_IOWR(0xfd, cmd, struct dm_ioctl)`: direction read|write (3) in bits 30-31, the struct size in bits
    /// 16-29, the type 0xfd in bits 8-15, the command number in bits 0-7.
    pub fn request(self) -> u64 {
        const IOC_READ_WRITE: u64 = 3;
        const DM_IOCTL_TYPE: u64 = 0xfd;
        (IOC_READ_WRITE << 30) | ((DM_IOCTL_SIZE as u64) << 16) | (DM_IOCTL_TYPE << 8) | self as u64
    }

    fn name(self) -> &'static str {
        match self {
            Self::Version => "DM_VERSION",
            Self::ListDevices => "DM_LIST_DEVICES",
            Self::DevCreate => "DM_DEV_CREATE",
            Self::DevRemove => "DM_DEV_REMOVE",
            Self::DevSuspend => "DM_DEV_SUSPEND",
            Self::DevStatus => "DM_DEV_STATUS",
            Self::TableLoad => "DM_TABLE_LOAD",
            Self::TableStatus => "DM_TABLE_STATUS",
            Self::ListVersions => "DM_LIST_VERSIONS",
            Self::TargetMsg => "DM_TARGET_MSG",
        }
    }
}

/// A failed request: which command, about which device, and the OS error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmError {
    /// The command.
    pub cmd: &'static str,
    /// The device name ("" when none).
    pub name: String,
    /// `errno` (0 for a malformed answer or request).
    pub errno: i32,
    /// What went wrong.
    pub detail: String,
}

impl std::fmt::Display for DmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            write!(f, "{} failed: {}", self.cmd, self.detail)
        } else {
            write!(f, "{} of {} failed: {}", self.cmd, self.name, self.detail)
        }
    }
}

/// `dev_t` as the kernel's `huge_encode_dev` puts it in `dm_ioctl.dev`.
pub fn encode_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// `(major, minor)` of a `dm_ioctl.dev` (`huge_decode_dev`), also right for a glibc `st_rdev` of a device
/// whose numbers fit the old encoding.
pub fn decode_dev(dev: u64) -> (u32, u32) {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

/// `(major, minor)` of a glibc `st_rdev` (`gnu_dev_major` / `gnu_dev_minor`).
pub fn rdev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

/// One request buffer: the header, then `data` at `data_start`. The kernel copies it into its own memory
/// before reading it, so only offsets inside it must be 8-aligned (the target specs), not the buffer itself.
#[derive(Debug, Clone)]
pub struct Buffer {
    bytes: Vec<u8>,
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(d) = b.get_mut(at..at.saturating_add(4)) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(d) = b.get_mut(at..at.saturating_add(8)) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8))
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// The NUL-terminated string at `at`, at most `max` bytes, lossily decoded.
fn get_str(b: &[u8], at: usize, max: usize) -> String {
    let s = b.get(at..).unwrap_or(&[]);
    let s = s.get(..max.min(s.len())).unwrap_or(&[]);
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(s.get(..end).unwrap_or(&[])).into_owned()
}

/// Rounds up to a multiple of 8.
fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

impl Buffer {
    /// A request about device `name` (may be empty) with `data` after the header, and `room` spare bytes
    /// for the answer.
    pub fn new(
        name: &str,
        uuid: &str,
        flags: u32,
        data: &[u8],
        room: usize,
    ) -> Result<Self, String> {
        if name.len() >= DM_NAME_LEN {
            return Err(format!(
                "the name '{name}' is longer than device-mapper's {} bytes",
                DM_NAME_LEN.saturating_sub(1)
            ));
        }
        if uuid.len() >= DM_UUID_LEN {
            return Err(format!(
                "the uuid '{uuid}' is longer than device-mapper's {} bytes",
                DM_UUID_LEN.saturating_sub(1)
            ));
        }
        let size = align8(
            DM_IOCTL_SIZE
                .saturating_add(data.len())
                .saturating_add(room),
        );
        let mut buf = Self {
            bytes: vec![0; size],
        };
        let b = buf.bytes_mut();
        for (i, v) in VERSION.iter().enumerate() {
            put_u32(b, OFF_VERSION.saturating_add(i.saturating_mul(4)), *v);
        }
        put_u32(
            b,
            OFF_DATA_SIZE,
            u32::try_from(size).map_err(|_| "request too large")?,
        );
        put_u32(b, OFF_DATA_START, DM_IOCTL_SIZE as u32);
        put_u32(b, OFF_FLAGS, flags);
        if let Some(d) = b.get_mut(OFF_NAME..OFF_NAME.saturating_add(name.len())) {
            d.copy_from_slice(name.as_bytes());
        }
        if let Some(d) = b.get_mut(OFF_UUID..OFF_UUID.saturating_add(uuid.len())) {
            d.copy_from_slice(uuid.as_bytes());
        }
        if let Some(d) = b.get_mut(DM_IOCTL_SIZE..DM_IOCTL_SIZE.saturating_add(data.len())) {
            d.copy_from_slice(data);
        }
        Ok(buf)
    }

    /// The whole buffer as bytes.
    pub fn bytes(&self) -> &[u8] {
        self.view()
    }

    fn view(&self) -> &[u8] {
        &self.bytes
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// `flags` of the answer.
    pub fn flags(&self) -> u32 {
        get_u32(self.view(), OFF_FLAGS)
    }

    /// `target_count` of the answer.
    pub fn target_count(&self) -> u32 {
        get_u32(self.view(), OFF_TARGET_COUNT)
    }

    /// `open_count` of the answer.
    pub fn open_count(&self) -> i32 {
        i32::from_ne_bytes(get_u32(self.view(), OFF_OPEN_COUNT).to_ne_bytes())
    }

    /// `event_nr` of the answer.
    pub fn event_nr(&self) -> u32 {
        get_u32(self.view(), OFF_EVENT_NR)
    }

    /// `dev` of the answer, as `(major, minor)`.
    pub fn dev(&self) -> (u32, u32) {
        decode_dev(get_u64(self.view(), OFF_DEV))
    }

    /// `name` of the answer.
    pub fn name(&self) -> String {
        get_str(self.view(), OFF_NAME, DM_NAME_LEN)
    }

    /// The kernel's interface version.
    pub fn version(&self) -> [u32; 3] {
        let b = self.view();
        [get_u32(b, 0), get_u32(b, 4), get_u32(b, 8)]
    }

    /// The answer's data: from `data_start` to `data_size` (bounded by the buffer).
    pub fn data(&self) -> &[u8] {
        let b = self.view();
        let start = get_u32(b, OFF_DATA_START) as usize;
        let end = (get_u32(b, OFF_DATA_SIZE) as usize).min(b.len());
        b.get(start..end).unwrap_or(&[])
    }
}

/// One target line of a table: `start length type params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub length: u64,
    /// Target type, e.g. `dm-remap-v4`.
    pub kind: String,
    /// The parameter string (or, from DM_TABLE_STATUS, the status or table string).
    pub params: String,
}

impl Target {
    /// Parses `<start> <length> <type> <params...>`.
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let mut num = |what: &str| -> Result<u64, String> {
            words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("the table line '{line}' lacks a numeric {what}"))
        };
        let start = num("start")?;
        let length = num("length")?;
        let kind = words
            .next()
            .ok_or_else(|| format!("the table line '{line}' lacks a target type"))?
            .to_owned();
        let params = words.collect::<Vec<_>>().join(" ");
        Ok(Self {
            start,
            length,
            kind,
            params,
        })
    }
}

/// The DM_TABLE_LOAD data for `targets`: a `dm_target_spec` per target, its NUL-terminated parameters,
/// padded to 8 bytes; `next` is the offset from one spec to the following one.
pub fn encode_targets(targets: &[Target]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for t in targets {
        if t.kind.len() >= DM_MAX_TYPE_NAME {
            return Err(format!("target type '{}' is too long", t.kind));
        }
        if t.params.contains('\0') {
            return Err("a table parameter contains a NUL byte".into());
        }
        let len = align8(
            DM_TARGET_SPEC_SIZE
                .saturating_add(t.params.len())
                .saturating_add(1),
        );
        let mut spec = vec![0u8; len];
        put_u64(&mut spec, 0, t.start);
        put_u64(&mut spec, 8, t.length);
        // status (16) stays 0 on input.
        put_u32(
            &mut spec,
            20,
            u32::try_from(len).map_err(|_| "table too large")?,
        );
        if let Some(d) = spec.get_mut(24..24usize.saturating_add(t.kind.len())) {
            d.copy_from_slice(t.kind.as_bytes());
        }
        if let Some(d) =
            spec.get_mut(DM_TARGET_SPEC_SIZE..DM_TARGET_SPEC_SIZE.saturating_add(t.params.len()))
        {
            d.copy_from_slice(t.params.as_bytes());
        }
        out.extend_from_slice(&spec);
    }
    Ok(out)
}

/// The targets of a DM_TABLE_STATUS answer: `count` specs in `data`, each followed by its string; `next`
/// is the offset of the following spec from the start of `data`.
pub fn decode_targets(data: &[u8], count: u32) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for _ in 0..count {
        if at.saturating_add(DM_TARGET_SPEC_SIZE) > data.len() {
            return Err("the kernel's table answer is truncated".into());
        }
        let kind = get_str(data, at.saturating_add(24), DM_MAX_TYPE_NAME);
        out.push(Target {
            start: get_u64(data, at),
            length: get_u64(data, at.saturating_add(8)),
            kind,
            params: get_str(data, at.saturating_add(DM_TARGET_SPEC_SIZE), usize::MAX),
        });
        at = get_u32(data, at.saturating_add(20)) as usize;
    }
    Ok(out)
}

/// A device-mapper device: its name and `(major, minor)`.
pub type NamedDevice = (String, (u32, u32));

/// The devices of a DM_LIST_DEVICES answer: `(name, (major, minor))`; each record's `next` is the offset
/// of the following one from the start of this one, 0 on the last; `dev == 0` first means no devices.
pub fn decode_names(data: &[u8]) -> Vec<NamedDevice> {
    let mut out = Vec::new();
    let mut at = 0usize;
    loop {
        if at.saturating_add(12) > data.len() {
            break;
        }
        let dev = get_u64(data, at);
        if dev == 0 {
            break;
        }
        out.push((
            get_str(data, at.saturating_add(12), DM_NAME_LEN),
            decode_dev(dev),
        ));
        let next = get_u32(data, at.saturating_add(8)) as usize;
        if next == 0 {
            break;
        }
        at = at.saturating_add(next);
    }
    out
}

/// The target type names of a DM_LIST_VERSIONS answer: records of `struct dm_target_versions` (`next`,
/// `version[3]`, then the NUL-terminated name at offset 16); `next` is the offset of the following record
/// from this one, 0 on the last.
pub fn decode_versions(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at.saturating_add(16) <= data.len() {
        out.push(get_str(data, at.saturating_add(16), usize::MAX));
        let next = get_u32(data, at) as usize;
        if next == 0 {
            break;
        }
        at = at.saturating_add(next);
    }
    out
}

/// What a DM_TARGET_MSG answer holds (dm-ioctl's `target_message`): with [`DM_DATA_OUT_FLAG`] the target
/// returned text, NUL-terminated at `data_start`, unless [`DM_BUFFER_FULL_FLAG`] says it did not fit (the
/// kernel then leaves `data_size` as it was and the text is cut).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAnswer {
    /// The target returned nothing.
    Nothing,
    /// The target's whole answer.
    Text(String),
    /// The answer did not fit in the buffer.
    Full,
}

/// The DM_TARGET_MSG data: `struct dm_target_msg` (the sector, 0: the target's messages are not about a
/// sector of the table) followed by the NUL-terminated message.
pub fn encode_message(message: &str) -> Result<Vec<u8>, String> {
    if message.contains('\0') {
        return Err("the message contains a NUL byte".into());
    }
    if message.trim().is_empty() {
        return Err("the message is empty".into());
    }
    let mut data = vec![0u8; 8];
    data.extend_from_slice(message.as_bytes());
    data.push(0);
    Ok(data)
}

/// Reads the answer to a DM_TARGET_MSG.
pub fn message_answer(b: &Buffer) -> MessageAnswer {
    let flags = b.flags();
    if flags & DM_DATA_OUT_FLAG == 0 {
        MessageAnswer::Nothing
    } else if flags & DM_BUFFER_FULL_FLAG != 0 {
        MessageAnswer::Full
    } else {
        MessageAnswer::Text(get_str(b.data(), 0, usize::MAX))
    }
}

/// Room for a message's answer on the first try: far more than any answer but `list` of many entries.
pub const MESSAGE_ROOM: usize = 16 * 1024;
/// The most room asked for: `list` of about a million entries.
pub const MESSAGE_ROOM_MAX: usize = 64 * 1024 * 1024;

/// Whether a message may be sent again when its answer did not fit: `list`, `help`, `stats`, `spares` and
/// `scrub status` only read; `remap`, `unremap`, the other `scrub` messages and the others change the
/// device, and were carried out by the first send.
pub fn repeatable(message: &str) -> bool {
    let mut words = message.split_whitespace();
    match words.next() {
        Some("list" | "help" | "stats" | "spares") => true,
        Some("scrub") => words.next() == Some("status"),
        _ => false,
    }
}

/// Sends a message through `send` (given the room for the answer) and returns the answer: while it does not
/// fit, a repeatable message is sent again with four times the room, up to [`MESSAGE_ROOM_MAX`]; any other
/// message is never sent twice, its cut answer is an error.
pub fn message_growing(
    message: &str,
    mut send: impl FnMut(usize) -> Result<Buffer, DmError>,
) -> Result<String, DmError> {
    let mut room = MESSAGE_ROOM;
    loop {
        let b = send(room)?;
        match message_answer(&b) {
            MessageAnswer::Nothing => return Ok(String::new()),
            MessageAnswer::Text(t) => return Ok(t),
            MessageAnswer::Full if repeatable(message) && room < MESSAGE_ROOM_MAX => {
                room = room.saturating_mul(4).min(MESSAGE_ROOM_MAX);
            }
            MessageAnswer::Full => {
                return Err(DmError {
                    cmd: Cmd::TargetMsg.name(),
                    name: String::new(),
                    errno: 0,
                    detail: format!(
                        "the target's answer to '{message}' does not fit in {room} bytes{}",
                        if repeatable(message) {
                            ""
                        } else {
                            " (the message was carried out; it is not sent again)"
                        }
                    ),
                })
            }
        }
    }
}

/// What DM_DEV_STATUS says about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `(major, minor)` of the dm device.
    pub dev: (u32, u32),
    /// Openers.
    pub open_count: i32,
    /// Targets in the live table.
    pub target_count: u32,
    /// Suspended.
    pub suspended: bool,
    /// Has a live table.
    pub active: bool,
    /// Has a loaded, inactive table.
    pub inactive_table: bool,
}

/// The opened control device.
#[derive(Debug)]
pub struct Control {
    file: File,
}

/// Path of the control node.
pub const CONTROL: &str = "/dev/mapper/control";

impl Control {
    /// Opens `/dev/mapper/control` and checks the kernel speaks interface version 4.
    pub fn open() -> Result<Self, DmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(CONTROL)
            .map_err(|e| DmError {
                cmd: "open",
                name: CONTROL.into(),
                errno: e.raw_os_error().unwrap_or(0),
                detail: e.to_string(),
            })?;
        let mut c = Self { file };
        let v = c.call(
            Cmd::Version,
            "",
            Buffer::new("", "", 0, &[], 0).map_err(|d| DmError {
                cmd: "DM_VERSION",
                name: String::new(),
                errno: 0,
                detail: d,
            })?,
        )?;
        if v.version()[0] != VERSION[0] {
            return Err(DmError {
                cmd: "DM_VERSION",
                name: String::new(),
                errno: 0,
                detail: format!(
                    "the kernel speaks interface version {:?}, not 4.x",
                    v.version()
                ),
            });
        }
        Ok(c)
    }

    /// Sends `buf` with command `cmd`; the kernel's answer replaces it.
    fn call(&mut self, cmd: Cmd, name: &str, mut buf: Buffer) -> Result<Buffer, DmError> {
        let fd = self.file.as_raw_fd();
        let ptr = buf.bytes.as_mut_ptr();
        #[allow(unsafe_code)]
        // SAFETY: `ptr` points to `buf`'s bytes, which are at least DM_IOCTL_SIZE bytes and hold their
        // own length in `data_size`; the kernel reads and writes only within `data_size` bytes, and `buf`
        // is borrowed mutably for the duration of the call. `request()` is `_IOWR(0xfd, cmd, dm_ioctl)`.
        let r = unsafe { libc::ioctl(fd, cmd.request() as libc::c_ulong, ptr) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return Err(DmError {
                cmd: cmd.name(),
                name: name.to_owned(),
                errno: e.raw_os_error().unwrap_or(0),
                detail: e.to_string(),
            });
        }
        Ok(buf)
    }

    fn request(
        &mut self,
        cmd: Cmd,
        name: &str,
        uuid: &str,
        flags: u32,
        data: &[u8],
        room: usize,
    ) -> Result<Buffer, DmError> {
        let buf = Buffer::new(name, uuid, flags, data, room).map_err(|detail| DmError {
            cmd: cmd.name(),
            name: name.to_owned(),
            errno: 0,
            detail,
        })?;
        self.call(cmd, name, buf)
    }

    /// Asks again with a larger buffer while the kernel says its answer did not fit.
    fn request_growing(&mut self, cmd: Cmd, name: &str, flags: u32) -> Result<Buffer, DmError> {
        let mut room = 16 * 1024;
        loop {
            let b = self.request(cmd, name, "", flags, &[], room)?;
            if b.flags() & DM_BUFFER_FULL_FLAG == 0 {
                return Ok(b);
            }
            if room >= 64 * 1024 * 1024 {
                return Err(DmError {
                    cmd: cmd.name(),
                    name: name.to_owned(),
                    errno: 0,
                    detail: "the kernel's answer does not fit in 64 MiB".into(),
                });
            }
            room = room.saturating_mul(4);
        }
    }

    /// Creates an empty device `name` with device-mapper uuid `uuid` (may be empty); returns its numbers.
    pub fn create(&mut self, name: &str, uuid: &str) -> Result<(u32, u32), DmError> {
        Ok(self.request(Cmd::DevCreate, name, uuid, 0, &[], 0)?.dev())
    }

    /// Loads `targets` as the inactive table of `name`.
    pub fn load(&mut self, name: &str, targets: &[Target]) -> Result<(), DmError> {
        let data = encode_targets(targets).map_err(|detail| DmError {
            cmd: Cmd::TableLoad.name(),
            name: name.to_owned(),
            errno: 0,
            detail,
        })?;
        let mut b = Buffer::new(name, "", 0, &data, 0).map_err(|detail| DmError {
            cmd: Cmd::TableLoad.name(),
            name: name.to_owned(),
            errno: 0,
            detail,
        })?;
        let count = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        put_u32(b.bytes_mut(), OFF_TARGET_COUNT, count);
        self.call(Cmd::TableLoad, name, b).map(|_| ())
    }

    /// Resumes `name` (makes a loaded table live).
    pub fn resume(&mut self, name: &str) -> Result<(), DmError> {
        self.request(Cmd::DevSuspend, name, "", 0, &[], 0)
            .map(|_| ())
    }

    /// Suspends `name`.
    pub fn suspend(&mut self, name: &str) -> Result<(), DmError> {
        self.request(Cmd::DevSuspend, name, "", DM_SUSPEND_FLAG, &[], 0)
            .map(|_| ())
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), DmError> {
        self.request(Cmd::DevRemove, name, "", 0, &[], 0)
            .map(|_| ())
    }

    /// The device's info; `Ok(None)` when there is no such device.
    pub fn info(&mut self, name: &str) -> Result<Option<Info>, DmError> {
        match self.request(Cmd::DevStatus, name, "", 0, &[], 0) {
            Ok(b) => Ok(Some(Info {
                dev: b.dev(),
                open_count: b.open_count(),
                target_count: b.target_count(),
                suspended: b.flags() & DM_SUSPEND_FLAG != 0,
                active: b.flags() & DM_ACTIVE_PRESENT_FLAG != 0,
                inactive_table: b.flags() & DM_INACTIVE_PRESENT_FLAG != 0,
            })),
            Err(e) if e.errno == libc::ENXIO => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The name of the device whose device-mapper uuid is `uuid`; `Ok(None)` when there is none.
    pub fn name_of_uuid(&mut self, uuid: &str) -> Result<Option<String>, DmError> {
        // The kernel looks a device up by uuid when the name is empty (and refuses both at once).
        match self.request(Cmd::DevStatus, "", uuid, 0, &[], 0) {
            Ok(b) => Ok(Some(b.name())),
            Err(e) if e.errno == libc::ENXIO => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The live table (`table == true`) or status lines of `name`.
    pub fn table(&mut self, name: &str, table: bool) -> Result<Vec<Target>, DmError> {
        let flags = if table { DM_STATUS_TABLE_FLAG } else { 0 };
        let b = self.request_growing(Cmd::TableStatus, name, flags)?;
        decode_targets(b.data(), b.target_count()).map_err(|detail| DmError {
            cmd: Cmd::TableStatus.name(),
            name: name.to_owned(),
            errno: 0,
            detail,
        })
    }

    /// Every device-mapper device: `(name, (major, minor))`.
    pub fn list(&mut self) -> Result<Vec<NamedDevice>, DmError> {
        let b = self.request_growing(Cmd::ListDevices, "", 0)?;
        Ok(decode_names(b.data()))
    }

    /// Sends `message` to the target of `name` at sector 0 (`struct dm_target_msg`: the sector, then the
    /// NUL-terminated text); returns the target's text answer, "" when it has none. See
    /// [`message_growing`] for an answer that does not fit.
    pub fn message(&mut self, name: &str, message: &str) -> Result<String, DmError> {
        let data = encode_message(message).map_err(|detail| DmError {
            cmd: Cmd::TargetMsg.name(),
            name: name.to_owned(),
            errno: 0,
            detail,
        })?;
        message_growing(message, |room| {
            self.request(Cmd::TargetMsg, name, "", 0, &data, room)
        })
        .map_err(|e| DmError {
            name: name.to_owned(),
            ..e
        })
    }

    /// The names of the target types the kernel has registered (DM_LIST_VERSIONS).
    pub fn target_types(&mut self) -> Result<Vec<String>, DmError> {
        let b = self.request_growing(Cmd::ListVersions, "", 0)?;
        Ok(decode_versions(b.data()))
    }

    /// Creates device `name` (device-mapper uuid `uuid`), loads `targets` and resumes it; on a failure after
    /// the create, removes the half-made device again so that nothing is left behind. Then makes sure
    /// `/dev/mapper/<name>` exists (see the module documentation). Returns the device's numbers.
    pub fn create_device(
        &mut self,
        name: &str,
        uuid: &str,
        targets: &[Target],
    ) -> Result<(u32, u32), DmError> {
        let dev = self.create(name, uuid)?;
        if let Err(e) = self.load(name, targets).and_then(|()| self.resume(name)) {
            // The failure is what the caller must see; a failed clean-up is reported with it.
            if let Err(r) = self.remove(name) {
                return Err(DmError {
                    detail: format!(
                        "{}; removing the half-made device failed too ({}): run 'dmsetup remove {name}'",
                        e.detail, r.detail
                    ),
                    ..e
                });
            }
            return Err(e);
        }
        ensure_node(name, dev).map_err(|detail| DmError {
            cmd: "mknod",
            name: name.to_owned(),
            errno: 0,
            detail,
        })?;
        Ok(dev)
    }

    /// Removes device `name` and the `/dev/mapper/<name>` node if udev is not there to do it.
    pub fn remove_device(&mut self, name: &str) -> Result<(), DmError> {
        let dev = self.info(name)?.map(|i| i.dev);
        self.remove(name)?;
        if let Some(dev) = dev {
            drop_node(name, dev);
        }
        Ok(())
    }
}

/// Path of the node of device `name`.
pub fn node_path(name: &str) -> PathBuf {
    Path::new("/dev/mapper").join(name)
}

/// Whether udev is running (its control socket exists).
fn udev_running() -> bool {
    Path::new("/run/udev/control").exists()
}

/// Whether `path` is the block device `dev`.
fn is_node_of(path: &Path, dev: (u32, u32)) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_block_device() && rdev_numbers(m.rdev()) == dev)
        .unwrap_or(false)
}

/// Makes sure `/dev/mapper/<name>` is the device `dev`: waits up to 5 s for udev when it runs, else creates
/// the node itself.
fn ensure_node(name: &str, dev: (u32, u32)) -> Result<(), String> {
    let path = node_path(name);
    if udev_running() {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if is_node_of(&path, dev) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if is_node_of(&path, dev) {
        return Ok(());
    }
    if path.symlink_metadata().is_ok() {
        // A stale node of an earlier device with the same name: replace it.
        std::fs::remove_file(&path)
            .map_err(|e| format!("cannot replace the stale {}: {e}", path.display()))?;
    }
    mknod_block(&path, dev)
}

#[allow(unsafe_code)]
fn mknod_block(path: &Path, dev: (u32, u32)) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
    let rdev = libc::makedev(dev.0, dev.1);
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call; mknod reads nothing else.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, rdev) };
    if r != 0 {
        return Err(format!(
            "cannot create {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Removes `/dev/mapper/<name>` if it is still the removed device's node and udev is not there to do it.
fn drop_node(name: &str, dev: (u32, u32)) {
    let path = node_path(name);
    if udev_running() {
        return;
    }
    let is_plain_node = path
        .symlink_metadata()
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false);
    if is_plain_node && is_node_of(&path, dev) {
        // Best effort, as dmsetup does: a leftover node is harmless and replaced by the next create.
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// `struct dm_ioctl` of `linux/dm-ioctl.h`, field for field.
    #[repr(C)]
    #[allow(dead_code)]
    struct DmIoctl {
        version: [u32; 3],
        data_size: u32,
        data_start: u32,
        target_count: u32,
        open_count: i32,
        flags: u32,
        event_nr: u32,
        padding: u32,
        dev: u64,
        name: [u8; DM_NAME_LEN],
        uuid: [u8; DM_UUID_LEN],
        data: [u8; 7],
    }

    /// `struct dm_target_spec`.
    #[repr(C)]
    #[allow(dead_code)]
    struct DmTargetSpec {
        sector_start: u64,
        length: u64,
        status: i32,
        next: u32,
        target_type: [u8; DM_MAX_TYPE_NAME],
    }

    #[test]
    fn layout_matches_the_c_structs() {
        assert_eq!(size_of::<DmIoctl>(), DM_IOCTL_SIZE);
        assert_eq!(offset_of!(DmIoctl, version), OFF_VERSION);
        assert_eq!(offset_of!(DmIoctl, data_size), OFF_DATA_SIZE);
        assert_eq!(offset_of!(DmIoctl, data_start), OFF_DATA_START);
        assert_eq!(offset_of!(DmIoctl, target_count), OFF_TARGET_COUNT);
        assert_eq!(offset_of!(DmIoctl, open_count), OFF_OPEN_COUNT);
        assert_eq!(offset_of!(DmIoctl, flags), OFF_FLAGS);
        assert_eq!(offset_of!(DmIoctl, event_nr), OFF_EVENT_NR);
        assert_eq!(offset_of!(DmIoctl, dev), OFF_DEV);
        assert_eq!(offset_of!(DmIoctl, name), OFF_NAME);
        assert_eq!(offset_of!(DmIoctl, uuid), OFF_UUID);
        assert_eq!(size_of::<DmTargetSpec>(), DM_TARGET_SPEC_SIZE);
        assert_eq!(offset_of!(DmTargetSpec, next), 20);
        assert_eq!(offset_of!(DmTargetSpec, target_type), 24);
    }

    #[test]
    fn request_numbers_are_the_headers() {
        // Values of DM_VERSION, DM_DEV_CREATE, DM_TABLE_LOAD, DM_TABLE_STATUS on x86-64 (strace shows them).
        assert_eq!(Cmd::Version.request(), 0xc138_fd00);
        assert_eq!(Cmd::DevCreate.request(), 0xc138_fd03);
        assert_eq!(Cmd::DevRemove.request(), 0xc138_fd04);
        assert_eq!(Cmd::DevSuspend.request(), 0xc138_fd06);
        assert_eq!(Cmd::TableLoad.request(), 0xc138_fd09);
        assert_eq!(Cmd::TableStatus.request(), 0xc138_fd0c);
        assert_eq!(Cmd::TargetMsg.request(), 0xc138_fd0e);
        assert_eq!(Cmd::ListVersions.request(), 0xc138_fd0d);
    }

    #[test]
    fn header_fields_land_at_their_offsets() {
        let b = Buffer::new("r0", "DMREMAP-x", DM_SUSPEND_FLAG, b"abc", 5).unwrap();
        let bytes = b.bytes();
        assert_eq!(bytes.len(), 320, "312 + 3 + 5 rounded up to 8");
        assert_eq!(b.version(), [4, 0, 0]);
        assert_eq!(get_u32(bytes, OFF_DATA_SIZE), 320);
        assert_eq!(get_u32(bytes, OFF_DATA_START), 312);
        assert_eq!(b.flags(), DM_SUSPEND_FLAG);
        assert_eq!(&bytes[OFF_NAME..OFF_NAME + 3], b"r0\0");
        assert_eq!(b.name(), "r0");
        assert_eq!(&bytes[OFF_UUID..OFF_UUID + 10], b"DMREMAP-x\0");
        assert_eq!(&bytes[312..315], b"abc");
        assert_eq!(b.data(), &bytes[312..320]);
        assert!(Buffer::new(&"n".repeat(128), "", 0, &[], 0).is_err());
        assert!(Buffer::new(&"n".repeat(127), "", 0, &[], 0).is_ok());
        assert!(Buffer::new("", &"u".repeat(129), 0, &[], 0).is_err());
    }

    #[test]
    fn dev_numbers_round_trip() {
        for (ma, mi) in [(7, 0), (253, 1), (259, 300), (8, 1_048_575), (4095, 255)] {
            assert_eq!(decode_dev(encode_dev(ma, mi)), (ma, mi));
            assert_eq!(rdev_numbers(libc::makedev(ma, mi)), (ma, mi));
        }
        assert_eq!(encode_dev(253, 0), 0xfd00);
        assert_eq!(encode_dev(8, 256), 0x0010_0800);
    }

    #[test]
    fn target_specs_encode_and_decode() {
        let targets = vec![
            Target::parse("0 65536 dm-remap-v4 7:0 7:1 2 retries 3").unwrap(),
            Target::parse("65536 8 zero").unwrap(),
        ];
        assert_eq!(targets[0].params, "7:0 7:1 2 retries 3");
        assert_eq!(targets[1].params, "");
        let data = encode_targets(&targets).unwrap();
        // 40 + 20 + 1 -> 64; 40 + 0 + 1 -> 48.
        assert_eq!(data.len(), 112);
        assert_eq!(
            get_u32(&data, 20),
            64,
            "next of the first spec: relative to it"
        );
        assert_eq!(get_u32(&data, 64 + 20), 48);
        assert_eq!(get_u64(&data, 8), 65536);
        assert_eq!(&data[24..35], b"dm-remap-v4");
        assert_eq!(&data[40..60], b"7:0 7:1 2 retries 3\0");
        // The kernel's answers use offsets from the data start instead: rewrite and decode.
        let mut answer = data.clone();
        put_u32(&mut answer, 20, 64);
        put_u32(&mut answer, 64 + 20, 112);
        assert_eq!(decode_targets(&answer, 2).unwrap(), targets);
        assert!(decode_targets(&answer[..50], 2).is_err());
        assert!(Target::parse("0 x linear").is_err());
        assert!(encode_targets(&[Target {
            start: 0,
            length: 1,
            kind: "a-type-name-too-long".into(),
            params: String::new()
        }])
        .is_err());
    }

    /// The answer the kernel gives to a message: `flags`, and `text` at `data_start` with `data_size` set
    /// after it, as dm-ioctl's `target_message` does.
    #[allow(clippy::arithmetic_side_effects)]
    fn answer(room: usize, flags: u32, text: &str) -> Buffer {
        let mut b = Buffer::new("r", "", 0, &encode_message("list").unwrap(), room).unwrap();
        let bytes = b.bytes_mut();
        put_u32(bytes, OFF_FLAGS, flags);
        if flags & DM_BUFFER_FULL_FLAG == 0 && flags & DM_DATA_OUT_FLAG != 0 {
            let n = text.len().min(bytes.len() - DM_IOCTL_SIZE - 1);
            bytes[DM_IOCTL_SIZE..DM_IOCTL_SIZE + n].copy_from_slice(&text.as_bytes()[..n]);
            bytes[DM_IOCTL_SIZE + n] = 0;
            put_u32(bytes, OFF_DATA_SIZE, (DM_IOCTL_SIZE + n + 1) as u32);
        }
        b
    }

    #[test]
    fn messages_encode_as_dm_target_msg() {
        let data = encode_message("remap 100").unwrap();
        assert_eq!(&data[..8], &[0u8; 8], "sector 0");
        assert_eq!(&data[8..], b"remap 100\0");
        assert!(encode_message("a\0b").is_err());
        assert!(encode_message(" ").is_err());
        let b = Buffer::new("r", "", 0, &data, MESSAGE_ROOM).unwrap();
        assert_eq!(b.bytes().len(), align8(312 + 18 + MESSAGE_ROOM));
        assert_eq!(&b.bytes()[312..330], data.as_slice());
    }

    #[test]
    fn message_answers_read_the_flags() {
        let text = "100 0 2048 active\n200 - - pending\n";
        assert_eq!(
            message_answer(&answer(64, DM_DATA_OUT_FLAG, text)),
            MessageAnswer::Text(text.into())
        );
        assert_eq!(message_answer(&answer(64, 0, "")), MessageAnswer::Nothing);
        assert_eq!(
            message_answer(&answer(64, DM_DATA_OUT_FLAG | DM_BUFFER_FULL_FLAG, "")),
            MessageAnswer::Full
        );
        // BUFFER_FULL without DATA_OUT does not happen for messages; no text then.
        assert_eq!(
            message_answer(&answer(64, DM_BUFFER_FULL_FLAG, "")),
            MessageAnswer::Nothing
        );
    }

    #[test]
    fn a_list_that_does_not_fit_is_asked_again_with_more_room() {
        let mut rooms = Vec::new();
        let out = message_growing("list", |room| {
            rooms.push(room);
            Ok(if room < MESSAGE_ROOM * 16 {
                answer(room, DM_DATA_OUT_FLAG | DM_BUFFER_FULL_FLAG, "")
            } else {
                answer(room, DM_DATA_OUT_FLAG, "1 0 2 active\n")
            })
        })
        .unwrap();
        assert_eq!(out, "1 0 2 active\n");
        assert_eq!(rooms, [MESSAGE_ROOM, MESSAGE_ROOM * 4, MESSAGE_ROOM * 16]);
    }

    #[test]
    fn growing_is_bounded_and_a_changing_message_is_never_sent_twice() {
        let mut sends = 0usize;
        let e = message_growing("list 0 5", |room| {
            sends += 1;
            assert!(room <= MESSAGE_ROOM_MAX);
            Ok(answer(64, DM_DATA_OUT_FLAG | DM_BUFFER_FULL_FLAG, ""))
        })
        .unwrap_err();
        assert!(
            e.detail.contains("does not fit in 67108864 bytes"),
            "{}",
            e.detail
        );
        assert_eq!(sends, 7, "16 KiB, 64 KiB, ... 64 MiB");

        let mut sends = 0usize;
        let e = message_growing("remap 100", |_| {
            sends += 1;
            Ok(answer(64, DM_DATA_OUT_FLAG | DM_BUFFER_FULL_FLAG, ""))
        })
        .unwrap_err();
        assert_eq!(sends, 1);
        assert!(e.detail.contains("it is not sent again"), "{}", e.detail);
        assert!(repeatable("  list 5") && repeatable("spares") && !repeatable("unremap 3"));
        assert!(!repeatable("clear_pending 1") && !repeatable("clear_stats"));
        assert!(repeatable("scrub status") && !repeatable("scrub start") && !repeatable("scrub"));
        assert!(!repeatable("scrub rate 8192") && !repeatable("scrub stop"));
    }

    #[test]
    fn version_lists_decode() {
        // dm_target_versions: next (from this record), version[3], name; 8-aligned.
        let mut data = vec![0u8; 80];
        put_u32(&mut data, 0, 24);
        data[16..23].copy_from_slice(b"linear\0");
        put_u32(&mut data, 24, 32);
        data[40..52].copy_from_slice(b"dm-remap-v4\0");
        put_u32(&mut data, 56, 0);
        data[72..77].copy_from_slice(b"zero\0");
        assert_eq!(decode_versions(&data), ["linear", "dm-remap-v4", "zero"]);
        assert!(decode_versions(&[]).is_empty());
    }

    #[test]
    fn name_lists_decode() {
        // Two records: dev, next (from this record), name, 8-aligned.
        let mut data = vec![0u8; 64];
        put_u64(&mut data, 0, encode_dev(253, 0));
        put_u32(&mut data, 8, 24);
        data[12..15].copy_from_slice(b"r0\0");
        put_u64(&mut data, 24, encode_dev(253, 1));
        put_u32(&mut data, 32, 0);
        data[36..41].copy_from_slice(b"dust\0");
        assert_eq!(
            decode_names(&data),
            vec![("r0".into(), (253, 0)), ("dust".into(), (253, 1))]
        );
        assert!(decode_names(&[0u8; 16]).is_empty(), "dev 0: no devices");
    }
}
