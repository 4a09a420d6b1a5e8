//! `dmremap stats`: the target's `stats` message (`DM_TARGET_MSG`, see [`crate::device::message`]): the I/O,
//! error, remap-table, remap and commit counters, one `key=value` per line, then the main device's latency
//! histogram as `main_latency_us_ge_<floor>=<count>` lines (one per non-empty power-of-two bucket of
//! microseconds, `docs/admin-guide.md`, "Messages"). Parser, human and JSON forms.
//!
//! Keys are only ever added: a key this version does not know is kept, in the order the target printed it
//! (a number in JSON when it is one, else a string). A line that is not `key=value`, a known counter that is
//! not a number and a malformed histogram line are errors naming the line.

use std::fmt::Write as _;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::device::{self, DeviceMapper};
use crate::error::CliError;

/// The counters the target prints, in its order; each must be a decimal number.
pub const COUNTERS: [&str; 14] = [
    "reads",
    "writes",
    "flushes",
    "discards",
    "read_errors",
    "write_errors",
    "device_errors",
    "table_run_entries",
    "table_changes",
    "table_run_bytes",
    "remaps_auto",
    "remaps_manual",
    "remaps_proactive",
    "md_commits",
];

/// Prefix of a latency histogram line: `main_latency_us_ge_<floor>=<count>`.
pub const LATENCY_PREFIX: &str = "main_latency_us_ge_";

/// Floor of the kernel's last latency bucket (2^23 µs, about 8.4 s): it holds everything from there on.
pub const LAST_BUCKET_FLOOR_US: u64 = 1 << 23;

/// A value of the answer: a number, or (for a key this version does not know) the text as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A decimal number.
    Number(u64),
    /// Anything else.
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_u64(*n),
            Self::Text(t) => s.serialize_str(t),
        }
    }
}

/// One bucket of the main device's latency histogram: I/Os that took from `ge` µs up to the next bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// The bucket's floor in microseconds (0, then powers of two).
    pub ge: u64,
    /// Completed I/Os in the bucket.
    pub count: u64,
}

/// The answer to `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every `key=value` but the histogram, in the target's order (a key given twice keeps its place and
    /// its last value).
    pub counters: Vec<(String, Value)>,
    /// The histogram's non-empty buckets, by floor.
    pub latency: Vec<Bucket>,
}

impl Stats {
    /// The value of counter `key`, when it is a number.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.counters.iter().find_map(|(k, v)| match v {
            Value::Number(n) if k == key => Some(*n),
            _ => None,
        })
    }
}

/// Parses the answer to `stats` (see the module's documentation for what is an error).
pub fn parse(output: &str) -> Result<Stats, String> {
    let mut s = Stats::default();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "the answer to 'stats' has the line '{line}', not key=value"
            ));
        };
        if let Some(floor) = key.strip_prefix(LATENCY_PREFIX) {
            let (Ok(ge), Ok(count)) = (floor.parse::<u64>(), value.parse::<u64>()) else {
                return Err(format!(
                    "the answer to 'stats' has '{line}', not {LATENCY_PREFIX}<floor>=<count> in numbers"
                ));
            };
            match s.latency.iter_mut().find(|b| b.ge == ge) {
                Some(b) => b.count = count,
                None => s.latency.push(Bucket { ge, count }),
            }
            continue;
        }
        let value = match value.parse::<u64>() {
            Ok(n) => Value::Number(n),
            Err(_) if COUNTERS.contains(&key) => {
                return Err(format!("the answer to 'stats' has '{line}', not a number"))
            }
            Err(_) => Value::Text(value.to_owned()),
        };
        match s.counters.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => s.counters.push((key.to_owned(), value)),
        }
    }
    s.latency.sort_by_key(|b| b.ge);
    Ok(s)
}

/// The range of latencies a bucket holds, for people: `0-1 us` for the first bucket, `<f>-<2f-1> us` for the
/// power-of-two floor `f`, `<f>+ us` for the last bucket (and for a floor that is not a power of two, whose
/// end this version cannot know).
pub fn bucket_range(ge: u64) -> String {
    if ge == 0 {
        return "0-1 us".into();
    }
    match ge.checked_mul(2).and_then(|d| d.checked_sub(1)) {
        Some(last) if ge.is_power_of_two() && ge < LAST_BUCKET_FLOOR_US => {
            format!("{ge}-{last} us")
        }
        _ => format!("{ge}+ us"),
    }
}

/// The human form: the counters as an aligned `key: value` table, then the histogram as its own section
/// (`no I/O completed` when it is empty).
pub fn render_human(name: &str, s: &Stats) -> String {
    let mut out = String::new();
    let width = s
        .counters
        .iter()
        .map(|(k, _)| k.chars().count())
        .chain(std::iter::once("device".len()))
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let mut pair = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{:<width$} {v}", format!("{k}:"), width = width);
    };
    pair("device", &name);
    for (k, v) in &s.counters {
        pair(k, v);
    }
    out.push('\n');
    if s.latency.is_empty() {
        out.push_str("main device latency: no I/O completed\n");
        return out;
    }
    out.push_str("main device latency (completed I/Os per bucket):\n");
    let ranges: Vec<String> = s.latency.iter().map(|b| bucket_range(b.ge)).collect();
    let w = ranges.iter().map(String::len).max().unwrap_or(0);
    for (r, b) in ranges.iter().zip(&s.latency) {
        let _ = writeln!(out, "  {r:<w$}  {}", b.count);
    }
    out
}

/// The JSON form: `device`, every counter in the target's order, then `main_latency_us`.
struct Json<'a> {
    name: &'a str,
    stats: &'a Stats,
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("device", self.name)?;
        for (k, v) in &self.stats.counters {
            // A key of the target named like ours would make the object ambiguous: ours win.
            if k != "device" && k != "main_latency_us" {
                m.serialize_entry(k, v)?;
            }
        }
        m.serialize_entry("main_latency_us", &self.stats.latency)?;
        m.end()
    }
}

/// `--json`: one object, `device`, the counters (unknown keys included: numbers when they are, else
/// strings), and `main_latency_us`, an array of `{"ge": <floor µs>, "count": <n>}` by floor.
pub fn render_json(name: &str, s: &Stats) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&Json { name, stats: s })
}

/// Checks that `name` is a dm-remap-v4 device, sends `stats` and parses the answer.
pub fn stats<D: DeviceMapper>(dm: &mut D, name: &str) -> Result<Stats, CliError> {
    device::check_is_remap(dm, name)?;
    let out = device::message(dm, name, &["stats"])?;
    parse(&out).map_err(|e| CliError::failed(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::tests::Fake;
    use crate::dm_ioctl::Target;

    /// The example of docs/admin-guide.md, "Messages".
    const ANSWER: &str =
        "reads=0\nwrites=0\nflushes=0\ndiscards=0\nread_errors=0\nwrite_errors=0\n\
        device_errors=0\ntable_run_entries=2\ntable_changes=0\ntable_run_bytes=48\nremaps_auto=2\n\
        remaps_manual=0\nremaps_proactive=0\nmd_commits=1\nmain_latency_us_ge_64=12\n\
        main_latency_us_ge_128=3\n";

    #[test]
    fn parses_the_counters_in_order_and_the_histogram() {
        let s = parse(ANSWER).unwrap();
        let keys: Vec<&str> = s.counters.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, COUNTERS);
        assert_eq!(s.get("remaps_auto"), Some(2));
        assert_eq!(s.get("md_commits"), Some(1));
        assert_eq!(s.get("table_run_bytes"), Some(48));
        assert_eq!(s.get("nope"), None);
        assert_eq!(
            s.latency,
            [Bucket { ge: 64, count: 12 }, Bucket { ge: 128, count: 3 }]
        );
    }

    #[test]
    fn unknown_keys_are_kept_in_order_numbers_or_text() {
        let text = format!("{ANSWER}future_count=7\nfuture_mode=fast\nreads=5\n");
        let s = parse(&text).unwrap();
        assert_eq!(s.counters.len(), 16);
        assert_eq!(
            s.counters[14],
            ("future_count".to_owned(), Value::Number(7))
        );
        assert_eq!(
            s.counters[15],
            ("future_mode".to_owned(), Value::Text("fast".into()))
        );
        // A key given twice keeps its place, with the last value.
        assert_eq!(s.counters[0], ("reads".to_owned(), Value::Number(5)));
        // An older module without some counters: what it has.
        let s = parse("reads=1\nwrites=2\n").unwrap();
        assert_eq!((s.get("reads"), s.get("md_commits")), (Some(1), None));
        assert!(s.latency.is_empty());
        assert_eq!(parse("").unwrap(), Stats::default());
    }

    #[test]
    fn malformed_lines_are_errors_naming_them() {
        assert_eq!(
            parse("reads=1\ngarbage\n").unwrap_err(),
            "the answer to 'stats' has the line 'garbage', not key=value"
        );
        assert_eq!(
            parse("md_commits=lots").unwrap_err(),
            "the answer to 'stats' has 'md_commits=lots', not a number"
        );
        assert_eq!(
            parse("main_latency_us_ge_x=3").unwrap_err(),
            "the answer to 'stats' has 'main_latency_us_ge_x=3', not main_latency_us_ge_<floor>=<count> in \
             numbers"
        );
        assert!(parse("main_latency_us_ge_64=-1").is_err());
    }

    #[test]
    fn histogram_is_sorted_by_floor() {
        let s =
            parse("main_latency_us_ge_1024=1\nmain_latency_us_ge_0=4\nmain_latency_us_ge_2=9\n")
                .unwrap();
        let floors: Vec<u64> = s.latency.iter().map(|b| b.ge).collect();
        assert_eq!(floors, [0, 2, 1024]);
        assert!(s.counters.is_empty());
    }

    #[test]
    fn bucket_ranges() {
        assert_eq!(bucket_range(0), "0-1 us");
        assert_eq!(bucket_range(2), "2-3 us");
        assert_eq!(bucket_range(64), "64-127 us");
        assert_eq!(bucket_range(128), "128-255 us");
        assert_eq!(bucket_range(4_194_304), "4194304-8388607 us");
        // The kernel's last bucket holds everything from 2^23 µs on.
        assert_eq!(bucket_range(8_388_608), "8388608+ us");
        assert_eq!(bucket_range(1 << 40), "1099511627776+ us");
        assert_eq!(bucket_range(100), "100+ us");
        assert_eq!(bucket_range(u64::MAX), "18446744073709551615+ us");
    }

    #[test]
    fn human_form() {
        let text = format!(
            "{ANSWER}main_latency_us_ge_0=5\nmain_latency_us_ge_8388608=1\nfuture_mode=fast\n"
        );
        assert_eq!(
            render_human("r0", &parse(&text).unwrap()),
            "device:            r0\n\
             reads:             0\n\
             writes:            0\n\
             flushes:           0\n\
             discards:          0\n\
             read_errors:       0\n\
             write_errors:      0\n\
             device_errors:     0\n\
             table_run_entries: 2\n\
             table_changes:     0\n\
             table_run_bytes:   48\n\
             remaps_auto:       2\n\
             remaps_manual:     0\n\
             remaps_proactive:  0\n\
             md_commits:        1\n\
             future_mode:       fast\n\
             \n\
             main device latency (completed I/Os per bucket):\n\
             \x20 0-1 us       5\n\
             \x20 64-127 us    12\n\
             \x20 128-255 us   3\n\
             \x20 8388608+ us  1\n"
        );
        assert_eq!(
            render_human("r", &parse("reads=0\n").unwrap()),
            "device: r\nreads:  0\n\nmain device latency: no I/O completed\n"
        );
    }

    #[test]
    fn json_form() {
        let text = format!("{ANSWER}future_count=7\nfuture_mode=fast\n");
        let out = render_json("r0", &parse(&text).unwrap()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "device": "r0", "reads": 0, "writes": 0, "flushes": 0, "discards": 0, "read_errors": 0,
                "write_errors": 0, "device_errors": 0, "table_run_entries": 2, "table_changes": 0,
                "table_run_bytes": 48, "remaps_auto": 2, "remaps_manual": 0, "remaps_proactive": 0,
                "md_commits": 1, "future_count": 7, "future_mode": "fast",
                "main_latency_us": [{"ge": 64, "count": 12}, {"ge": 128, "count": 3}]
            })
        );
        // The target's order is kept in the text.
        let (reads, md, lat) = (
            out.find("\"reads\"").unwrap(),
            out.find("\"md_commits\"").unwrap(),
            out.find("\"main_latency_us\"").unwrap(),
        );
        assert!(out.find("\"device\"").unwrap() < reads && reads < md && md < lat);
        // Keys of ours are not repeated from the target's answer.
        let odd = parse("device=9\nmain_latency_us=1\n").unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&render_json("r", &odd).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"device": "r", "main_latency_us": []})
        );
    }

    #[test]
    fn sends_stats_to_a_remap_device_only() {
        let mut dm = Fake {
            devices: vec![(
                "r".into(),
                vec![Target::parse("0 8 dm-remap-v4 state=ok").unwrap()],
            )],
            answer: Ok(ANSWER.into()),
            ..Fake::default()
        };
        assert_eq!(stats(&mut dm, "r").unwrap().get("md_commits"), Some(1));
        assert_eq!(dm.calls, ["status r", "message r stats"]);
        dm.answer = Ok("bad line\n".into());
        let e = stats(&mut dm, "r").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                1,
                "r: the answer to 'stats' has the line 'bad line', not key=value"
            )
        );
        let e = stats(&mut dm, "nope").unwrap_err();
        assert!(e.message.contains("no device-mapper device named 'nope'"));
    }
}
