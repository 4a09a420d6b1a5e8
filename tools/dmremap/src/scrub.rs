//! `dmremap scrub`: the target's background scrub through its `scrub start|stop|rate|status` messages
//! (`DM_TARGET_MSG`, see [`crate::device::message`]): the parser of the `scrub status` answer, its human and
//! JSON forms, and the wait for a pass to complete (`start --wait`), written against
//! [`DeviceMapper`] so that the unit tests drive it with a fake kernel.

use std::fmt::Write as _;

use serde::Serialize;

use crate::device::{self, DeviceMapper};
use crate::error::CliError;
use crate::image::SECTOR_BYTES;

/// Smallest scrub rate the target accepts, in KiB/s (message `scrub rate`, table option `scrub_rate`).
pub const MIN_RATE_KIB: u32 = 1;
/// Largest scrub rate the target accepts, in KiB/s (1 GiB/s).
pub const MAX_RATE_KIB: u32 = 1_048_576;
/// Smallest `slow_threshold_ms` the target accepts.
pub const MIN_SLOW_THRESHOLD_MS: u32 = 1;
/// Largest `slow_threshold_ms` the target accepts (one minute).
pub const MAX_SLOW_THRESHOLD_MS: u32 = 60_000;
/// How often `start --wait` asks for the scrub's status, in milliseconds.
pub const POLL_MS: u64 = 500;

/// The target's answer to `scrub status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrubStatus {
    /// `running` or `stopped` (a later kernel may add states: kept as they are).
    pub state: String,
    /// Next sector of the main device the scrub reads, relative to the target's start.
    pub position: u64,
    /// Length of the target in sectors.
    pub total: u64,
    /// `position * 100 / total`, rounded down (integer arithmetic; 0 when `total` is 0).
    pub percent: u64,
    /// Full passes completed (persisted in the metadata).
    pub passes: u64,
    /// Bytes the scrub read since the table was loaded.
    pub scanned_bytes: u64,
    /// Units the scrub found unreadable (now pending; persisted).
    pub found_pending: u64,
    /// Units relocated because they kept reading slowly (persisted).
    pub relocated: u64,
    /// The scrub's rate limit in KiB/s.
    pub rate_kib: u64,
    /// A read slower than this counts as slow, in milliseconds.
    pub slow_threshold_ms: u64,
}

impl ScrubStatus {
    /// Whether the scrub is running.
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// `position * 100 / total`, rounded down, at most 100; 0 for a total of 0.
pub fn percent(position: u64, total: u64) -> u64 {
    u128::from(position.min(total))
        .saturating_mul(100)
        .checked_div(u128::from(total))
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(0)
}

/// The keys of `scrub status`, in the order the target prints them; `state` is a word, the others numbers.
const KEYS: [&str; 9] = [
    "state",
    "position",
    "total",
    "passes",
    "scanned_bytes",
    "found_pending",
    "relocated",
    "rate_kib",
    "slow_threshold_ms",
];

/// Parses the answer to `scrub status` (one `key=value` per line). Unknown keys are ignored (keys are only
/// added); a missing key or a malformed number is an error naming it.
pub fn parse_status(output: &str) -> Result<ScrubStatus, String> {
    let mut values: [Option<&str>; 9] = [None; 9];
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if let Some(slot) = KEYS
            .iter()
            .position(|k| *k == key)
            .and_then(|i| values.get_mut(i))
        {
            *slot = Some(value);
        }
    }
    let text = |i: usize| -> Result<&str, String> {
        let key = KEYS.get(i).copied().unwrap_or("?");
        values
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("the answer to 'scrub status' has no '{key}='"))
    };
    let num = |i: usize| -> Result<u64, String> {
        let v = text(i)?;
        v.parse().map_err(|_| {
            format!(
                "the answer to 'scrub status' has '{}={v}', not a number",
                KEYS.get(i).copied().unwrap_or("?")
            )
        })
    };
    let (position, total) = (num(1)?, num(2)?);
    Ok(ScrubStatus {
        state: text(0)?.to_owned(),
        position,
        total,
        percent: percent(position, total),
        passes: num(3)?,
        scanned_bytes: num(4)?,
        found_pending: num(5)?,
        relocated: num(6)?,
        rate_kib: num(7)?,
        slow_threshold_ms: num(8)?,
    })
}

/// `n` bytes as a short human size with one decimal (integer arithmetic): B, KiB, MiB, GiB, TiB.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0usize;
    let mut scale = 1u64;
    while unit.saturating_add(1) < UNITS.len() && n.checked_div(scale).unwrap_or(0) >= 1024 {
        unit = unit.saturating_add(1);
        scale = scale.saturating_mul(1024);
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        return format!("{n} {name}");
    }
    let tenths = u128::from(n)
        .saturating_mul(10)
        .checked_div(u128::from(scale))
        .unwrap_or(0);
    format!("{}.{} {name}", tenths / 10, tenths % 10)
}

/// The human summary of `scrub status` for device `name`.
pub fn render_human(name: &str, s: &ScrubStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "device:         {name}");
    let _ = writeln!(out, "scrub:          {}", s.state);
    let _ = writeln!(
        out,
        "progress:       {}% of the pass (sector {} of {})",
        s.percent, s.position, s.total
    );
    let _ = writeln!(out, "passes:         {}", s.passes);
    let _ = writeln!(out, "found pending:  {}", s.found_pending);
    let _ = writeln!(out, "relocated:      {}", s.relocated);
    let _ = writeln!(out, "rate:           {} KiB/s", s.rate_kib);
    let _ = writeln!(out, "slow threshold: {} ms", s.slow_threshold_ms);
    let _ = writeln!(
        out,
        "read:           {} since the table was loaded",
        size(s.scanned_bytes)
    );
    out
}

/// The JSON form: the fields of [`ScrubStatus`] after `device`.
#[derive(Serialize)]
struct Named<'a> {
    device: &'a str,
    #[serde(flatten)]
    status: &'a ScrubStatus,
}

/// `--json`: one object, `device` then the fields of `scrub status` and `percent`.
pub fn render_json(name: &str, s: &ScrubStatus) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&Named {
        device: name,
        status: s,
    })
}

/// The one line `start`, `stop` and `rate` print once done.
pub fn summary(name: &str, s: &ScrubStatus) -> String {
    format!(
        "{name}: scrub {} at sector {} of {} ({}%), {} pass{} completed, {} unreadable unit{} found, rate {} \
         KiB/s",
        s.state,
        s.position,
        s.total,
        s.percent,
        s.passes,
        if s.passes == 1 { "" } else { "es" },
        s.found_pending,
        if s.found_pending == 1 { "" } else { "s" },
        s.rate_kib
    )
}

/// Sends `scrub status` to `name` and parses the answer; an answer that does not parse means a module
/// without the scrub (or a newer, incompatible one).
pub fn status<D: DeviceMapper>(dm: &mut D, name: &str) -> Result<ScrubStatus, CliError> {
    let out = device::message(dm, name, &["scrub", "status"])?;
    parse_status(&out).map_err(|e| {
        CliError::failed(format!(
            "{name}: {e}; the loaded dm-remap-v4 module may not support the scrub (see 'modinfo dm-remap-v4')"
        ))
    })
}

/// What `scrub` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `scrub start`.
    Start,
    /// `scrub stop`.
    Stop,
    /// `scrub rate <KiB/s>`.
    Rate(u32),
}

/// The message words of `action`; a rate out of range is a usage error.
pub fn words(action: Action) -> Result<Vec<String>, CliError> {
    Ok(match action {
        Action::Start => vec!["scrub".into(), "start".into()],
        Action::Stop => vec!["scrub".into(), "stop".into()],
        Action::Rate(kib) => {
            check_rate(kib)?;
            vec!["scrub".into(), "rate".into(), kib.to_string()]
        }
    })
}

/// Checks a scrub rate against the target's range.
pub fn check_rate(kib: u32) -> Result<(), CliError> {
    if (MIN_RATE_KIB..=MAX_RATE_KIB).contains(&kib) {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "scrub rate {kib} KiB/s is out of range: the target accepts {MIN_RATE_KIB} to {MAX_RATE_KIB}"
        )))
    }
}

/// Sends `action` to the scrub of `name` (which must be a dm-remap-v4 device) and returns the scrub's
/// status afterwards.
pub fn act<D: DeviceMapper>(
    dm: &mut D,
    name: &str,
    action: Action,
) -> Result<ScrubStatus, CliError> {
    let words = words(action)?;
    device::check_is_remap(dm, name)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    device::message(dm, name, &words)?;
    status(dm, name)
}

/// What a poll of `start --wait` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Still scanning the pass.
    Scanning,
    /// A pass completed since the wait began.
    Complete,
    /// The scrub stopped before completing a pass.
    Stopped,
}

/// Judges one poll: complete once `passes` exceeds its value when the wait began, else stopped when the
/// scrub no longer runs, else scanning.
pub fn step(passes_at_start: u64, s: &ScrubStatus) -> Step {
    if s.passes > passes_at_start {
        Step::Complete
    } else if s.running() {
        Step::Scanning
    } else {
        Step::Stopped
    }
}

/// The error of a scrub that stopped during `start --wait`.
pub fn stopped_error(name: &str, s: &ScrubStatus) -> CliError {
    CliError::failed(format!(
        "{name}: the scrub stopped at sector {} of {} ({}%) before completing a pass (stopped by someone \
         else, or by the target: see 'dmesg | grep dm_remap_v4'); run 'dmremap scrub {name} start --wait' to \
         resume it",
        s.position, s.total, s.percent
    ))
}

/// `start --wait`: reads the status (the passes before), starts the scrub, then polls its status, calling
/// `sleep` between polls and `show` with each status, until a pass completes (returns the last status) or
/// the scrub stops (an error). The status is read before the start so that a pass completing at once on a
/// small device is not missed.
pub fn start_and_wait<D: DeviceMapper>(
    dm: &mut D,
    name: &str,
    mut sleep: impl FnMut(),
    mut show: impl FnMut(&ScrubStatus),
) -> Result<ScrubStatus, CliError> {
    device::check_is_remap(dm, name)?;
    let before = status(dm, name)?;
    show(&before);
    device::message(dm, name, &["scrub", "start"])?;
    loop {
        let now = status(dm, name)?;
        show(&now);
        match step(before.passes, &now) {
            Step::Complete => return Ok(now),
            Step::Stopped => return Err(stopped_error(name, &now)),
            Step::Scanning => sleep(),
        }
    }
}

/// A position in sectors as bytes, for the progress display.
pub fn sectors_to_bytes(sectors: u64) -> u64 {
    sectors.saturating_mul(SECTOR_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm_ioctl::{DmError, Info, Target};

    const ANSWER: &str =
        "state=running\nposition=24576\ntotal=65536\npasses=2\nscanned_bytes=12582912\n\
        found_pending=3\nrelocated=1\nrate_kib=8192\nslow_threshold_ms=1000\n";

    fn sample() -> ScrubStatus {
        parse_status(ANSWER).unwrap()
    }

    #[test]
    fn parses_every_key() {
        assert_eq!(
            sample(),
            ScrubStatus {
                state: "running".into(),
                position: 24576,
                total: 65536,
                percent: 37,
                passes: 2,
                scanned_bytes: 12_582_912,
                found_pending: 3,
                relocated: 1,
                rate_kib: 8192,
                slow_threshold_ms: 1000,
            }
        );
        assert!(sample().running());
    }

    #[test]
    fn unknown_keys_and_order_do_not_matter() {
        let mut lines: Vec<&str> = ANSWER.lines().rev().collect();
        lines.insert(3, "future_key=7");
        lines.insert(0, "a line without a value");
        let s = parse_status(&lines.join("\n")).unwrap();
        assert_eq!(s, sample());
    }

    #[test]
    fn missing_or_malformed_keys_are_errors_naming_them() {
        let without = ANSWER.replace("passes=2\n", "");
        assert_eq!(
            parse_status(&without).unwrap_err(),
            "the answer to 'scrub status' has no 'passes='"
        );
        let bad = ANSWER.replace("total=65536", "total=lots");
        assert_eq!(
            parse_status(&bad).unwrap_err(),
            "the answer to 'scrub status' has 'total=lots', not a number"
        );
        assert_eq!(
            parse_status("").unwrap_err(),
            "the answer to 'scrub status' has no 'position='"
        );
    }

    #[test]
    fn percent_is_integer_and_bounded() {
        assert_eq!(percent(0, 65536), 0);
        assert_eq!(percent(24576, 65536), 37);
        assert_eq!(percent(65535, 65536), 99);
        assert_eq!(percent(65536, 65536), 100);
        assert_eq!(percent(70000, 65536), 100);
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
        assert_eq!(percent(u64::MAX / 2, u64::MAX), 49);
    }

    #[test]
    fn sizes_have_one_decimal() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(12_582_912), "12.0 MiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(size(u64::MAX), "16777215.9 TiB");
    }

    #[test]
    fn human_and_json_forms() {
        assert_eq!(
            render_human("r0", &sample()),
            "device:         r0\n\
             scrub:          running\n\
             progress:       37% of the pass (sector 24576 of 65536)\n\
             passes:         2\n\
             found pending:  3\n\
             relocated:      1\n\
             rate:           8192 KiB/s\n\
             slow threshold: 1000 ms\n\
             read:           12.0 MiB since the table was loaded\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json("r0", &sample()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "device": "r0", "state": "running", "position": 24576, "total": 65536, "percent": 37,
                "passes": 2, "scanned_bytes": 12_582_912, "found_pending": 3, "relocated": 1,
                "rate_kib": 8192, "slow_threshold_ms": 1000
            })
        );
        assert_eq!(
            summary("r0", &sample()),
            "r0: scrub running at sector 24576 of 65536 (37%), 2 passes completed, 3 unreadable units found, \
             rate 8192 KiB/s"
        );
        let one = ScrubStatus {
            passes: 1,
            found_pending: 1,
            state: "stopped".into(),
            ..sample()
        };
        assert!(summary("r0", &one).contains(
            "stopped at sector 24576 of 65536 (37%), 1 pass completed, 1 unreadable unit found"
        ));
    }

    #[test]
    fn message_words_and_rate_range() {
        assert_eq!(words(Action::Start).unwrap(), ["scrub", "start"]);
        assert_eq!(words(Action::Stop).unwrap(), ["scrub", "stop"]);
        assert_eq!(
            words(Action::Rate(65536)).unwrap(),
            ["scrub", "rate", "65536"]
        );
        assert_eq!(words(Action::Rate(1)).unwrap(), ["scrub", "rate", "1"]);
        assert_eq!(
            words(Action::Rate(1_048_576)).unwrap(),
            ["scrub", "rate", "1048576"]
        );
        let e = words(Action::Rate(0)).unwrap_err();
        assert_eq!(e.code, 2);
        assert_eq!(
            e.message,
            "scrub rate 0 KiB/s is out of range: the target accepts 1 to 1048576"
        );
        assert_eq!(words(Action::Rate(1_048_577)).unwrap_err().code, 2);
    }

    #[test]
    fn steps_of_the_wait() {
        let s = |state: &str, passes| ScrubStatus {
            state: state.into(),
            passes,
            ..sample()
        };
        assert_eq!(step(2, &s("running", 2)), Step::Scanning);
        assert_eq!(step(2, &s("running", 3)), Step::Complete);
        assert_eq!(step(2, &s("stopped", 3)), Step::Complete);
        assert_eq!(step(2, &s("stopped", 2)), Step::Stopped);
        assert_eq!(step(2, &s("paused", 2)), Step::Stopped);
    }

    /// A fake kernel for the scrub: one dm-remap-v4 device `r`, `scrub status` answered from a script (the
    /// last answer repeats), every message recorded.
    struct Scripted {
        calls: Vec<String>,
        statuses: Vec<String>,
        next: usize,
        refuse: Option<i32>,
    }

    impl Scripted {
        fn new(statuses: &[String]) -> Self {
            Self {
                calls: Vec::new(),
                statuses: statuses.to_vec(),
                next: 0,
                refuse: None,
            }
        }
    }

    impl DeviceMapper for Scripted {
        fn info(&mut self, _: &str) -> Result<Option<Info>, DmError> {
            unreachable!("the scrub never asks for the device's info")
        }
        fn suspend(&mut self, _: &str) -> Result<(), DmError> {
            unreachable!("the scrub never suspends")
        }
        fn resume(&mut self, _: &str) -> Result<(), DmError> {
            unreachable!("the scrub never resumes")
        }
        fn message(&mut self, name: &str, message: &str) -> Result<String, DmError> {
            self.calls.push(format!("message {name} {message}"));
            if let Some(errno) = self.refuse {
                return Err(DmError {
                    cmd: "DM_TARGET_MSG",
                    name: name.into(),
                    errno,
                    detail: std::io::Error::from_raw_os_error(errno).to_string(),
                });
            }
            if message != "scrub status" {
                return Ok(String::new());
            }
            let i = self.next.min(self.statuses.len().saturating_sub(1));
            self.next = self.next.saturating_add(1);
            Ok(self.statuses[i].clone())
        }
        fn status(&mut self, name: &str) -> Result<Vec<Target>, DmError> {
            self.calls.push(format!("status {name}"));
            Ok(vec![Target::parse("0 65536 dm-remap-v4 state=ok").unwrap()])
        }
        fn target_types(&mut self) -> Result<Vec<String>, DmError> {
            unreachable!()
        }
    }

    fn answer(state: &str, position: u64, passes: u64) -> String {
        format!(
            "state={state}\nposition={position}\ntotal=65536\npasses={passes}\nscanned_bytes=0\n\
             found_pending=2\nrelocated=0\nrate_kib=65536\nslow_threshold_ms=1000\n"
        )
    }

    #[test]
    fn wait_polls_until_a_pass_completes() {
        let mut dm = Scripted::new(&[
            answer("stopped", 32768, 4),
            answer("running", 40000, 4),
            answer("running", 65000, 4),
            answer("running", 100, 5),
        ]);
        let mut sleeps = 0;
        let mut seen = Vec::new();
        let last = start_and_wait(&mut dm, "r", || sleeps += 1, |s| seen.push(s.position)).unwrap();
        assert_eq!(
            (last.passes, last.position, last.found_pending),
            (5, 100, 2)
        );
        assert_eq!(seen, [32768, 40000, 65000, 100]);
        assert_eq!(sleeps, 2);
        assert_eq!(
            dm.calls,
            [
                "status r",
                "message r scrub status",
                "message r scrub start",
                "message r scrub status",
                "message r scrub status",
                "message r scrub status"
            ]
        );
    }

    #[test]
    fn wait_fails_when_the_scrub_stops() {
        let mut dm = Scripted::new(&[
            answer("stopped", 0, 0),
            answer("running", 16384, 0),
            answer("stopped", 32768, 0),
        ]);
        let e = start_and_wait(&mut dm, "r", || {}, |_| {}).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "r: the scrub stopped at sector 32768 of 65536 (50%) before completing a pass (stopped by \
             someone else, or by the target: see 'dmesg | grep dm_remap_v4'); run 'dmremap scrub r start \
             --wait' to resume it"
        );
    }

    #[test]
    fn actions_send_the_message_then_read_the_status() {
        let mut dm = Scripted::new(&[answer("running", 8, 0)]);
        let s = act(&mut dm, "r", Action::Rate(65536)).unwrap();
        assert_eq!(s.rate_kib, 65536);
        assert_eq!(
            dm.calls,
            [
                "status r",
                "message r scrub rate 65536",
                "message r scrub status"
            ]
        );
        let mut dm = Scripted::new(&[answer("stopped", 8, 0)]);
        assert_eq!(act(&mut dm, "r", Action::Stop).unwrap().state, "stopped");
        assert_eq!(dm.calls[1], "message r scrub stop");
        // A bad rate is refused before any request.
        let mut dm = Scripted::new(&[answer("stopped", 8, 0)]);
        assert_eq!(act(&mut dm, "r", Action::Rate(0)).unwrap_err().code, 2);
        assert!(dm.calls.is_empty());
    }

    #[test]
    fn an_old_module_and_a_refusal_read_as_sentences() {
        let mut dm = Scripted::new(&["state=running\n".to_owned()]);
        let e = status(&mut dm, "r").unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "r: the answer to 'scrub status' has no 'position='; the loaded dm-remap-v4 module may not \
             support the scrub (see 'modinfo dm-remap-v4')"
        );
        let mut dm = Scripted::new(&[answer("running", 0, 0)]);
        dm.refuse = Some(libc::EINVAL);
        let e = act(&mut dm, "r", Action::Start).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.message
                .starts_with("r: the target refused 'scrub start' (Invalid argument"),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("(dmesg | grep dm_remap_v4)"));
    }
}
