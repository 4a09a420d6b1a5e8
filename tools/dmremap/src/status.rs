//! The target's `dmsetup status` line (`docs/status.md`): parser and the human, JSON and Prometheus renderers.
//!
//! The line is `<start> <len> dm-remap-v4` followed by space-separated `key=value` tokens. Keys are only ever
//! added: unknown keys are kept (JSON `other`) and otherwise ignored, never an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::tabular;

/// The device-mapper target type name.
pub const TARGET: &str = "dm-remap-v4";

/// The status of one dm-remap-v4 target (one table line of a device).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// Device-mapper device name.
    pub device: String,
    /// First sector of the target in the device.
    pub start: u64,
    /// Length of the target in sectors.
    pub length: u64,
    /// `ok`, `degraded` (a spare failed), `spare_exhausted` or `failed` (`null` if the kernel did not report
    /// it; a state a later kernel adds is kept as it is).
    pub state: Option<String>,
    /// Metadata health: `ok`, `degraded` or `failed`.
    pub metadata: Option<String>,
    /// The kernel's health score, 0 (failing) to 100 (docs/status.md, "Health").
    pub health: Option<u64>,
    /// Number of spare devices.
    pub spares: Option<u64>,
    /// Units whose data lives on the spare.
    pub remapped: Option<u64>,
    /// Units whose read failed and that wait for a write.
    pub pending: Option<u64>,
    /// Spare units in use.
    pub spare_used: Option<u64>,
    /// Spare units in all.
    pub spare_total: Option<u64>,
    /// `spare_total - spare_used`.
    pub spare_left: Option<u64>,
    /// `spare_left * 100 / spare_total`, rounded down (integer arithmetic).
    pub spare_left_percent: Option<u64>,
    /// The remap unit in bytes.
    pub unit_bytes: Option<u64>,
    /// Damaged superblock copies rewritten when the table was loaded.
    pub metadata_repaired: Option<u64>,
    /// Version of the spare's metadata superblock.
    pub metadata_version: Option<u64>,
    /// Read bios completed.
    pub reads: Option<u64>,
    /// Write bios completed.
    pub writes: Option<u64>,
    /// Flushes completed.
    pub flushes: Option<u64>,
    /// Discards completed.
    pub discards: Option<u64>,
    /// Reads that completed with an error.
    pub read_errors: Option<u64>,
    /// Writes that completed with an error.
    pub write_errors: Option<u64>,
    /// Errors the devices below returned, recovered or not.
    pub device_errors: Option<u64>,
    /// The background scrub: `running` or `stopped` (`null` from a module without the scrub).
    pub scrub: Option<String>,
    /// Next sector the scrub reads, relative to the target's start.
    pub scrub_sector: Option<u64>,
    /// `scrub_sector * 100 / length`, rounded down, at most 100 (integer arithmetic).
    pub scrub_percent: Option<u64>,
    /// Tokens this version does not know, as they were (a known key with a malformed value lands here too).
    pub other: BTreeMap<String, String>,
}

impl DeviceStatus {
    fn set(&mut self, key: &str, value: &str) {
        let num = || value.parse::<u64>().ok();
        let slot = match key {
            "state" => {
                self.state = Some(value.to_owned());
                return;
            }
            "metadata" => {
                self.metadata = Some(value.to_owned());
                return;
            }
            "scrub" => {
                self.scrub = Some(value.to_owned());
                return;
            }
            "scrub_sector" => &mut self.scrub_sector,
            "health" => &mut self.health,
            "spares" => &mut self.spares,
            "remapped" => &mut self.remapped,
            "pending" => &mut self.pending,
            "spare_used" => &mut self.spare_used,
            "spare_total" => &mut self.spare_total,
            "unit_bytes" => &mut self.unit_bytes,
            "metadata_repaired" => &mut self.metadata_repaired,
            "metadata_version" => &mut self.metadata_version,
            "reads" => &mut self.reads,
            "writes" => &mut self.writes,
            "flushes" => &mut self.flushes,
            "discards" => &mut self.discards,
            "read_errors" => &mut self.read_errors,
            "write_errors" => &mut self.write_errors,
            "device_errors" => &mut self.device_errors,
            _ => {
                self.other.insert(key.to_owned(), value.to_owned());
                return;
            }
        };
        match num() {
            Some(n) => *slot = Some(n),
            None => {
                self.other.insert(key.to_owned(), value.to_owned());
            }
        }
    }

    fn derive(&mut self) {
        if let (Some(used), Some(total)) = (self.spare_used, self.spare_total) {
            let left = total.saturating_sub(used);
            self.spare_left = Some(left);
            self.spare_left_percent = u128::from(left)
                .saturating_mul(100)
                .checked_div(u128::from(total))
                .and_then(|p| u64::try_from(p).ok());
        }
        if let Some(sector) = self.scrub_sector {
            self.scrub_percent = Some(crate::scrub::percent(sector, self.length));
        }
    }
}

/// Parses the parameters of one status line (everything after `<start> <len> dm-remap-v4`).
pub fn parse_params(device: &str, start: u64, length: u64, params: &str) -> DeviceStatus {
    let mut s = DeviceStatus {
        device: device.to_owned(),
        start,
        length,
        ..DeviceStatus::default()
    };
    for token in params.split_whitespace() {
        match token.split_once('=') {
            Some((k, v)) => s.set(k, v),
            None => {
                s.other.insert(token.to_owned(), String::new());
            }
        }
    }
    s.derive();
    s
}

/// Parses one line `<start> <len> <target> <params...>`; `None` for another target type or a line that is
/// not a status line.
pub fn parse_line(device: &str, line: &str) -> Option<DeviceStatus> {
    let line = line.trim_start();
    let (start, rest) = line.split_once(' ')?;
    let (length, rest) = rest.trim_start().split_once(' ')?;
    let rest = rest.trim_start();
    let (target, params) = rest.split_once(' ').unwrap_or((rest, ""));
    if target != TARGET {
        return None;
    }
    Some(parse_params(
        device,
        start.parse().ok()?,
        length.parse().ok()?,
        params,
    ))
}

/// Parses the output of `dmsetup status <name>` (`name` given: lines without a name) or of `dmsetup status
/// [--target dm-remap-v4]` (`name` absent: `<name>: <line>` per target). Lines of other targets, and
/// `No devices found`, are skipped.
pub fn parse_dmsetup_output(name: Option<&str>, output: &str) -> Vec<DeviceStatus> {
    output
        .lines()
        .filter_map(|line| match name {
            Some(n) => parse_line(n, line),
            None => {
                let (n, rest) = line.split_once(": ")?;
                parse_line(n, rest)
            }
        })
        .collect()
}

/// The status of device `name` (`Some`) or of every device (`None`) through the ioctls, as the text `dmsetup
/// status` prints (`<start> <length> <type> <status>`, prefixed with `<name>: ` for every device), so that
/// both paths share [`parse_dmsetup_output`]. A device removed while the list is read is skipped.
pub fn collect(
    c: &mut crate::dm_ioctl::Control,
    name: Option<&str>,
) -> Result<Vec<DeviceStatus>, crate::dm_ioctl::DmError> {
    let line =
        |t: &crate::dm_ioctl::Target| format!("{} {} {} {}", t.start, t.length, t.kind, t.params);
    match name {
        Some(n) => {
            let text: Vec<String> = c.table(n, false)?.iter().map(line).collect();
            Ok(parse_dmsetup_output(Some(n), &text.join("\n")))
        }
        None => {
            let mut names: Vec<String> = c.list()?.into_iter().map(|(n, _)| n).collect();
            names.sort();
            let mut text = Vec::new();
            for n in names {
                match c.table(&n, false) {
                    Ok(targets) => text.extend(targets.iter().map(|t| format!("{n}: {}", line(t)))),
                    Err(e) if e.errno == libc::ENXIO => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(parse_dmsetup_output(None, &text.join("\n")))
        }
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn opt_str(v: Option<&String>) -> String {
    v.map_or_else(|| "-".into(), Clone::clone)
}

/// The human form: one table line per device, what a person wants first on the left.
pub fn render_human(devices: &[DeviceStatus]) -> String {
    if devices.is_empty() {
        return "no dm-remap-v4 devices\n".into();
    }
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            let left = match (d.spare_left, d.spare_total, d.spare_left_percent) {
                (Some(l), Some(t), Some(p)) => format!("{l}/{t} ({p}%)"),
                (Some(l), Some(t), None) => format!("{l}/{t}"),
                _ => "-".into(),
            };
            let name = if d.start == 0 {
                d.device.clone()
            } else {
                format!("{}@{}", d.device, d.start)
            };
            let scrub = match (&d.scrub, d.scrub_percent) {
                (Some(s), Some(p)) => format!("{s} {p}%"),
                (Some(s), None) => s.clone(),
                (None, _) => "-".into(),
            };
            vec![
                name,
                opt_str(d.state.as_ref()),
                opt(d.health),
                scrub,
                opt(d.remapped),
                opt(d.pending),
                left,
                opt(d.read_errors),
                opt(d.write_errors),
                opt(d.device_errors),
                opt_str(d.metadata.as_ref()),
            ]
        })
        .collect();
    tabular::render(
        &[
            "DEVICE",
            "STATE",
            "HEALTH",
            "SCRUB",
            "REMAPPED",
            "PENDING",
            "SPARE_LEFT",
            "READ_ERR",
            "WRITE_ERR",
            "DEV_ERR",
            "METADATA",
        ],
        &rows,
    )
}

/// `--json`: one object for a named device, an array of objects for all devices.
pub fn render_json(devices: &[DeviceStatus], named: bool) -> Result<String, serde_json::Error> {
    match (named, devices) {
        (true, [one]) => serde_json::to_string_pretty(one),
        _ => serde_json::to_string_pretty(devices),
    }
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The labels identifying a device: `device`, plus `start` for a device with several dm-remap-v4 targets.
fn labels(d: &DeviceStatus, all: &[DeviceStatus]) -> String {
    let segments = all.iter().filter(|o| o.device == d.device).count();
    if segments > 1 {
        format!(
            "device=\"{}\",start=\"{}\"",
            escape_label(&d.device),
            d.start
        )
    } else {
        format!("device=\"{}\"", escape_label(&d.device))
    }
}

/// A numeric metric family: name, type, help, and where its value is.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&DeviceStatus) -> Option<u64>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "dmremap_remapped_units",
        kind: "gauge",
        help: "Units whose data lives on the spare.",
        value: |d| d.remapped,
    },
    Family {
        name: "dmremap_pending_units",
        kind: "gauge",
        help: "Units whose read failed on main and that wait for a write.",
        value: |d| d.pending,
    },
    Family {
        name: "dmremap_spare_used_units",
        kind: "gauge",
        help: "Spare units in use.",
        value: |d| d.spare_used,
    },
    Family {
        name: "dmremap_spare_total_units",
        kind: "gauge",
        help: "Spare units in all.",
        value: |d| d.spare_total,
    },
    Family {
        name: "dmremap_spare_left_units",
        kind: "gauge",
        help: "Spare units left (spare_total - spare_used).",
        value: |d| d.spare_left,
    },
    Family {
        name: "dmremap_health",
        kind: "gauge",
        help: "Health score, 0 (failing) to 100 (no sign of trouble).",
        value: |d| d.health,
    },
    Family {
        name: "dmremap_scrub_running",
        kind: "gauge",
        help: "1 while the background scrub runs, 0 when it is stopped.",
        value: |d| d.scrub.as_deref().map(|s| u64::from(s == "running")),
    },
    Family {
        name: "dmremap_scrub_position_sectors",
        kind: "gauge",
        help: "Next sector the scrub reads, relative to the start of the target.",
        value: |d| d.scrub_sector,
    },
    Family {
        name: "dmremap_size_sectors",
        kind: "gauge",
        help: "Length of the target in sectors.",
        value: |d| Some(d.length),
    },
    Family {
        name: "dmremap_spares",
        kind: "gauge",
        help: "Number of spare devices.",
        value: |d| d.spares,
    },
    Family {
        name: "dmremap_unit_bytes",
        kind: "gauge",
        help: "Size of a remap unit in bytes.",
        value: |d| d.unit_bytes,
    },
    Family {
        name: "dmremap_metadata_repaired_copies",
        kind: "gauge",
        help: "Damaged superblock copies rewritten when the table was loaded.",
        value: |d| d.metadata_repaired,
    },
    Family {
        name: "dmremap_metadata_version",
        kind: "gauge",
        help: "Version of the spare's metadata superblock.",
        value: |d| d.metadata_version,
    },
    Family {
        name: "dmremap_reads_total",
        kind: "counter",
        help: "Read bios completed since the table was loaded.",
        value: |d| d.reads,
    },
    Family {
        name: "dmremap_writes_total",
        kind: "counter",
        help: "Write bios with data completed since the table was loaded.",
        value: |d| d.writes,
    },
    Family {
        name: "dmremap_flushes_total",
        kind: "counter",
        help: "Flushes completed since the table was loaded.",
        value: |d| d.flushes,
    },
    Family {
        name: "dmremap_discards_total",
        kind: "counter",
        help: "Discard bios completed since the table was loaded.",
        value: |d| d.discards,
    },
    Family {
        name: "dmremap_read_errors_total",
        kind: "counter",
        help: "Reads that completed with an error.",
        value: |d| d.read_errors,
    },
    Family {
        name: "dmremap_write_errors_total",
        kind: "counter",
        help: "Writes that completed with an error.",
        value: |d| d.write_errors,
    },
    Family {
        name: "dmremap_device_errors_total",
        kind: "counter",
        help: "Errors the devices below returned, including those the target recovered from.",
        value: |d| d.device_errors,
    },
];

/// Known values of `state` and `metadata`; an unknown value reported by a newer kernel is added as it is.
const STATES: &[&str] = &["ok", "degraded", "spare_exhausted", "failed"];
const METADATA_STATES: &[&str] = &["ok", "degraded", "failed"];

fn write_state_family(
    out: &mut String,
    name: &str,
    help: &str,
    known: &[&str],
    devices: &[DeviceStatus],
    value: fn(&DeviceStatus) -> Option<&String>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for d in devices {
        let Some(current) = value(d) else { continue };
        let l = labels(d, devices);
        let mut names: Vec<&str> = known.to_vec();
        if !names.contains(&current.as_str()) {
            names.push(current);
        }
        for s in names {
            let v = u8::from(s == current);
            let _ = writeln!(out, "{name}{{{l},state=\"{}\"}} {v}", escape_label(s));
        }
    }
}

/// `--prometheus`: the text exposition format, every family with its `# HELP` and `# TYPE` lines.
pub fn render_prometheus(devices: &[DeviceStatus]) -> String {
    let mut out = String::new();
    write_state_family(
        &mut out,
        "dmremap_state",
        "Target state: 1 for the current one (ok, degraded, spare_exhausted, failed).",
        STATES,
        devices,
        |d| d.state.as_ref(),
    );
    write_state_family(
        &mut out,
        "dmremap_metadata_state",
        "Metadata health: 1 for the current one (ok, degraded, failed).",
        METADATA_STATES,
        devices,
        |d| d.metadata.as_ref(),
    );
    for f in FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for d in devices {
            if let Some(v) = (f.value)(d) {
                let _ = writeln!(out, "{}{{{}}} {v}", f.name, labels(d, devices));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line in the format of `docs/status.md`, as `dmsetup status <name>` prints it.
    const LINE: &str = "0 65536 dm-remap-v4 unit_bytes=512 remapped=3 pending=1 spare_used=4 \
        spare_total=24576 metadata=ok metadata_repaired=0 metadata_version=1 reads=10 writes=20 flushes=1 \
        discards=0 read_errors=1 write_errors=0 device_errors=5 state=ok spares=1 health=90";

    /// The same line from a module without the scrub keys.
    fn sample() -> DeviceStatus {
        parse_line("r0", LINE).unwrap()
    }

    /// The line of a module with the scrub: `scrub=` and `scrub_sector=` at the end.
    fn current() -> DeviceStatus {
        parse_line("r0", &format!("{LINE} scrub=running scrub_sector=24576")).unwrap()
    }

    #[test]
    fn parses_the_scrub_keys_and_their_percentage() {
        let d = current();
        assert_eq!(d.scrub.as_deref(), Some("running"));
        assert_eq!((d.scrub_sector, d.scrub_percent), (Some(24576), Some(37)));
        assert!(d.other.is_empty(), "unparsed: {:?}", d.other);
        // Everything else as without them.
        assert_eq!(
            DeviceStatus {
                scrub: None,
                scrub_sector: None,
                scrub_percent: None,
                ..d
            },
            sample()
        );
        let old = sample();
        assert_eq!(
            (old.scrub, old.scrub_sector, old.scrub_percent),
            (None, None, None)
        );
        let d = parse_line("r", "0 8 dm-remap-v4 scrub=stopped scrub_sector=8").unwrap();
        assert_eq!(
            (d.scrub.as_deref(), d.scrub_percent),
            (Some("stopped"), Some(100))
        );
        let d = parse_line("r", "0 0 dm-remap-v4 scrub=stopped scrub_sector=0").unwrap();
        assert_eq!(d.scrub_percent, Some(0));
        let d = parse_line("r", "0 8 dm-remap-v4 scrub=running scrub_sector=x").unwrap();
        assert_eq!((d.scrub_sector, d.scrub_percent), (None, None));
        assert_eq!(d.other.get("scrub_sector").map(String::as_str), Some("x"));
    }

    #[test]
    fn parses_every_documented_key() {
        let d = sample();
        assert_eq!((d.device.as_str(), d.start, d.length), ("r0", 0, 65536));
        assert_eq!(d.state.as_deref(), Some("ok"));
        assert_eq!(d.metadata.as_deref(), Some("ok"));
        assert_eq!(d.unit_bytes, Some(512));
        assert_eq!((d.remapped, d.pending), (Some(3), Some(1)));
        assert_eq!((d.spare_used, d.spare_total), (Some(4), Some(24576)));
        assert_eq!(d.spare_left, Some(24572));
        assert_eq!(d.spare_left_percent, Some(99));
        assert_eq!((d.health, d.spares), (Some(90), Some(1)));
        assert!(d.other.is_empty(), "unparsed: {:?}", d.other);
        assert_eq!(
            (d.metadata_repaired, d.metadata_version),
            (Some(0), Some(1))
        );
        assert_eq!(
            (d.reads, d.writes, d.flushes, d.discards),
            (Some(10), Some(20), Some(1), Some(0))
        );
        assert_eq!(
            (d.read_errors, d.write_errors, d.device_errors),
            (Some(1), Some(0), Some(5))
        );
        assert!(d.other.is_empty());
    }

    #[test]
    fn unknown_keys_are_kept_and_never_an_error() {
        let line = format!("{LINE} future_key=7 flag remapped_bytes=1536");
        let d = parse_line("r0", &line).unwrap();
        assert_eq!(d.remapped, Some(3));
        assert_eq!(d.other.get("future_key").map(String::as_str), Some("7"));
        assert_eq!(
            d.other.get("remapped_bytes").map(String::as_str),
            Some("1536")
        );
        assert_eq!(d.other.get("flag").map(String::as_str), Some(""));
        // A known key with a malformed value is kept as it is, not an error.
        let d = parse_line("r0", "0 8 dm-remap-v4 remapped=x").unwrap();
        assert_eq!(d.remapped, None);
        assert_eq!(d.other.get("remapped").map(String::as_str), Some("x"));
    }

    #[test]
    fn spare_left_percent_is_integer_and_safe() {
        let d = parse_line("r", "0 8 dm-remap-v4 spare_used=1 spare_total=3").unwrap();
        assert_eq!((d.spare_left, d.spare_left_percent), (Some(2), Some(66)));
        let d = parse_line("r", "0 8 dm-remap-v4 spare_used=0 spare_total=0").unwrap();
        assert_eq!((d.spare_left, d.spare_left_percent), (Some(0), None));
        let d = parse_line(
            "r",
            "0 8 dm-remap-v4 spare_used=0 spare_total=18446744073709551615",
        )
        .unwrap();
        assert_eq!(d.spare_left_percent, Some(100));
        let d = parse_line("r", "0 8 dm-remap-v4 spare_used=9 spare_total=3").unwrap();
        assert_eq!((d.spare_left, d.spare_left_percent), (Some(0), Some(0)));
    }

    #[test]
    fn dmsetup_output_named_and_all() {
        assert_eq!(
            parse_dmsetup_output(Some("r0"), &format!("{LINE}\n")),
            [sample()]
        );
        let all =
            format!("r0: {LINE}\nother: 0 100 linear 8:0 0\nr1: 0 8 dm-remap-v4 state=failed\n");
        let devs = parse_dmsetup_output(None, &all);
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[0], sample());
        assert_eq!(devs[1].device, "r1");
        assert_eq!(devs[1].state.as_deref(), Some("failed"));
        assert!(parse_dmsetup_output(None, "No devices found\n").is_empty());
        assert!(parse_line("x", "0 100 linear 8:0 0").is_none());
        assert!(parse_line("x", "garbage").is_none());
    }

    #[test]
    fn human_form_puts_the_essentials_first() {
        let text = render_human(&[sample()]);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("DEVICE  STATE  HEALTH  SCRUB  REMAPPED  PENDING  SPARE_LEFT"));
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            [
                "r0",
                "ok",
                "90",
                "-",
                "3",
                "1",
                "24572/24576",
                "(99%)",
                "1",
                "0",
                "5",
                "ok"
            ]
        );
        // A module without the scrub: '-'.
        assert_eq!(
            text,
            "DEVICE  STATE  HEALTH  SCRUB  REMAPPED  PENDING  SPARE_LEFT         READ_ERR  WRITE_ERR  DEV_ERR  \
             METADATA\n\
             r0      ok     90      -      3         1        24572/24576 (99%)  1         0          5        \
             ok\n"
        );
        // The example of docs/dmremap.md.
        let stopped = parse_line(
            "r1",
            "0 65536 dm-remap-v4 state=ok health=100 scrub=stopped scrub_sector=0",
        )
        .unwrap();
        assert_eq!(
            render_human(&[current(), stopped]),
            "DEVICE  STATE  HEALTH  SCRUB        REMAPPED  PENDING  SPARE_LEFT         READ_ERR  WRITE_ERR  \
             DEV_ERR  METADATA\n\
             r0      ok     90      running 37%  3         1        24572/24576 (99%)  1         0          \
             5        ok\n\
             r1      ok     100     stopped 0%   -         -        -                  -         -          \
             -        -\n"
        );
        assert_eq!(render_human(&[]), "no dm-remap-v4 devices\n");
    }

    #[test]
    fn json_has_the_fields() {
        let one: serde_json::Value =
            serde_json::from_str(&render_json(&[sample()], true).unwrap()).unwrap();
        assert_eq!(one["device"], "r0");
        assert_eq!(one["state"], "ok");
        assert_eq!(one["remapped"], 3);
        assert_eq!(one["pending"], 1);
        assert_eq!(one["spare_left"], 24572);
        assert_eq!(one["spare_left_percent"], 99);
        assert_eq!(one["device_errors"], 5);
        assert_eq!(one["metadata"], "ok");
        assert!(one["other"].as_object().unwrap().is_empty());
        // A module without the scrub: null.
        assert!(
            one["scrub"].is_null()
                && one["scrub_sector"].is_null()
                && one["scrub_percent"].is_null()
        );
        let now: serde_json::Value =
            serde_json::from_str(&render_json(&[current()], true).unwrap()).unwrap();
        assert_eq!(now["scrub"], "running");
        assert_eq!(now["scrub_sector"], 24576);
        assert_eq!(now["scrub_percent"], 37);
        assert_eq!(now["health"], 90);
        assert_eq!(now["length"], 65536);
        let all: serde_json::Value =
            serde_json::from_str(&render_json(&[sample(), sample()], false).unwrap()).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 2);
        let none: serde_json::Value =
            serde_json::from_str(&render_json(&[], false).unwrap()).unwrap();
        assert_eq!(none, serde_json::json!([]));
    }

    /// Checks the text exposition format: every sample follows its family's HELP and TYPE lines, names
    /// and labels are well-formed, values are integers, families are not repeated.
    fn assert_well_formed(text: &str) {
        let mut families: Vec<String> = Vec::new();
        let mut typed: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(!families.contains(&name), "family {name} repeated");
                families.push(name);
                typed = None;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(Some(name), families.last().map(String::as_str));
                assert!(kind == "gauge" || kind == "counter", "{line}");
                if kind == "counter" {
                    assert!(
                        name.ends_with("_total"),
                        "counter {name} must end in _total"
                    );
                }
                typed = Some(name.to_owned());
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                value.parse::<u64>().unwrap();
                let (name, labels) = series.split_once('{').unwrap();
                assert_eq!(Some(name), typed.as_deref(), "{line}");
                assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                let labels = labels.strip_suffix('}').unwrap();
                for pair in labels.split(',') {
                    let (k, v) = pair.split_once('=').unwrap();
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "{line}"
                    );
                }
            }
        }
    }

    #[test]
    fn prometheus_is_well_formed() {
        let text = render_prometheus(&[sample()]);
        assert_well_formed(&text);
        assert!(text.contains("dmremap_remapped_units{device=\"r0\"} 3\n"));
        assert!(text.contains("dmremap_pending_units{device=\"r0\"} 1\n"));
        assert!(text.contains("dmremap_spare_left_units{device=\"r0\"} 24572\n"));
        assert!(text.contains("dmremap_state{device=\"r0\",state=\"ok\"} 1\n"));
        assert!(text.contains("dmremap_health{device=\"r0\"} 90\n"));
        assert!(text.contains("dmremap_state{device=\"r0\",state=\"failed\"} 0\n"));
        assert!(text.contains("dmremap_metadata_state{device=\"r0\",state=\"degraded\"} 0\n"));
        assert!(text.contains("# TYPE dmremap_device_errors_total counter\n"));
        assert!(text.contains("dmremap_device_errors_total{device=\"r0\"} 5\n"));
        assert!(text.contains("dmremap_reads_total{device=\"r0\"} 10\n"));
        assert!(text.contains("dmremap_size_sectors{device=\"r0\"} 65536\n"));
        // A module without the scrub: the families, no samples.
        assert!(text.contains("# TYPE dmremap_scrub_running gauge\n"));
        assert!(!text.contains("dmremap_scrub_running{"));
        assert!(!text.contains("dmremap_scrub_position_sectors{"));
    }

    #[test]
    fn prometheus_scrub_gauges() {
        let stopped = parse_line("r1", "0 8 dm-remap-v4 scrub=stopped scrub_sector=4").unwrap();
        let text = render_prometheus(&[current(), stopped]);
        assert_well_formed(&text);
        let scrub: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("dmremap_scrub_") || l.contains(" dmremap_scrub_"))
            .collect();
        assert_eq!(
            scrub,
            [
                "# HELP dmremap_scrub_running 1 while the background scrub runs, 0 when it is stopped.",
                "# TYPE dmremap_scrub_running gauge",
                "dmremap_scrub_running{device=\"r0\"} 1",
                "dmremap_scrub_running{device=\"r1\"} 0",
                "# HELP dmremap_scrub_position_sectors Next sector the scrub reads, relative to the start of the \
                 target.",
                "# TYPE dmremap_scrub_position_sectors gauge",
                "dmremap_scrub_position_sectors{device=\"r0\"} 24576",
                "dmremap_scrub_position_sectors{device=\"r1\"} 4",
            ]
        );
        assert!(text.contains("dmremap_health{device=\"r0\"} 90\n"));
        assert!(text.contains("dmremap_size_sectors{device=\"r1\"} 8\n"));
    }

    #[test]
    fn degraded_is_a_known_state_everywhere() {
        let d = parse_line("r", &LINE.replace("state=ok", "state=degraded")).unwrap();
        assert_eq!(d.state.as_deref(), Some("degraded"));
        assert!(d.other.is_empty(), "unparsed: {:?}", d.other);
        let row = render_human(std::slice::from_ref(&d));
        assert_eq!(
            row.lines().nth(1).unwrap().split_whitespace().nth(1),
            Some("degraded")
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json(std::slice::from_ref(&d), true).unwrap()).unwrap();
        assert_eq!(json["state"], "degraded");
        let text = render_prometheus(&[d, sample()]);
        assert_well_formed(&text);
        let states: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("dmremap_state{"))
            .collect();
        assert_eq!(
            states,
            [
                "dmremap_state{device=\"r\",state=\"ok\"} 0",
                "dmremap_state{device=\"r\",state=\"degraded\"} 1",
                "dmremap_state{device=\"r\",state=\"spare_exhausted\"} 0",
                "dmremap_state{device=\"r\",state=\"failed\"} 0",
                "dmremap_state{device=\"r0\",state=\"ok\"} 1",
                "dmremap_state{device=\"r0\",state=\"degraded\"} 0",
                "dmremap_state{device=\"r0\",state=\"spare_exhausted\"} 0",
                "dmremap_state{device=\"r0\",state=\"failed\"} 0",
            ]
        );
        assert!(text.contains(
            "# HELP dmremap_state Target state: 1 for the current one (ok, degraded, spare_exhausted, failed).\n"
        ));
    }

    #[test]
    fn prometheus_escapes_labels_and_handles_new_states_and_segments() {
        let mut a = parse_line("we\"ird\\", "0 8 dm-remap-v4 state=rebuilding remapped=1").unwrap();
        let b = parse_line("two", "0 8 dm-remap-v4 remapped=2").unwrap();
        let c = parse_line("two", "8 8 dm-remap-v4 remapped=3").unwrap();
        a.metadata = None;
        let text = render_prometheus(&[a, b, c]);
        assert_well_formed(&text);
        assert!(text.contains("dmremap_remapped_units{device=\"we\\\"ird\\\\\"} 1\n"));
        assert!(text.contains("dmremap_state{device=\"we\\\"ird\\\\\",state=\"rebuilding\"} 1\n"));
        assert!(text.contains("dmremap_state{device=\"we\\\"ird\\\\\",state=\"ok\"} 0\n"));
        assert!(text.contains("dmremap_remapped_units{device=\"two\",start=\"8\"} 3\n"));
        // Missing values produce no sample.
        assert!(!text.contains("dmremap_reads_total{"));
        assert_well_formed(&render_prometheus(&[]));
    }
}
