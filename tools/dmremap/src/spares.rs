//! `dmremap spares` and `dmremap drain`: the target's `spares` and `drain <index>` messages
//! (`DM_TARGET_MSG`, `docs/admin-guide.md`, "Messages" and "Removing a spare"): the parser of the `spares`
//! answer, its table and JSON forms, and the drain with its refusals in words.

use serde::Serialize;

use crate::create::dm_failure;
use crate::device::{self, DeviceMapper};
use crate::error::CliError;
use crate::tabular;

/// Largest member index the target has (16 spares at most).
pub const MAX_INDEX: u32 = 15;

/// One line of the `spares` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spare {
    /// Member index (what `drain` takes); removed members left out of the table leave gaps.
    pub index: u32,
    /// The spare device as `major:minor`.
    pub device: String,
    /// Units in use on it.
    pub used: u64,
    /// Units in all on it.
    pub total: u64,
    /// `active`, `draining`, `failed` or `removed` (a later kernel may add states: kept as they are).
    pub state: String,
    /// Whether it is on the main device's disk (`null` from a module that does not say).
    pub same_disk_as_main: Option<bool>,
}

/// Parses one line `<index> <major:minor> used=<units> total=<units> state=<state> [same_disk_as_main=<0|1>]`;
/// other `key=value` words (added by a later kernel) are ignored.
pub fn parse_line(line: &str) -> Result<Spare, String> {
    let bad = |why: &str| format!("the answer to 'spares' has the line '{line}': {why}");
    let mut words = line.split_whitespace();
    let index = words
        .next()
        .and_then(|w| w.parse::<u32>().ok())
        .ok_or_else(|| bad("no member index first"))?;
    let device = words
        .next()
        .filter(|w| !w.contains('='))
        .ok_or_else(|| bad("no device after the index"))?
        .to_owned();
    let (mut used, mut total, mut state, mut same) = (None, None, None, None);
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        let num = || {
            v.parse::<u64>()
                .map_err(|_| bad(&format!("'{w}' is not a number")))
        };
        match k {
            "used" => used = Some(num()?),
            "total" => total = Some(num()?),
            "state" => state = Some(v.to_owned()),
            "same_disk_as_main" => {
                same = Some(match v {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad(&format!("'{w}' is not 0 or 1"))),
                })
            }
            _ => {}
        }
    }
    Ok(Spare {
        index,
        device,
        used: used.ok_or_else(|| bad("no used="))?,
        total: total.ok_or_else(|| bad("no total="))?,
        state: state.ok_or_else(|| bad("no state="))?,
        same_disk_as_main: same,
    })
}

/// Parses the answer to `spares`, one spare per line.
pub fn parse(output: &str) -> Result<Vec<Spare>, String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(parse_line)
        .collect()
}

/// The table: INDEX DEVICE USED TOTAL STATE SAME_DISK (`yes`, `no`, `-` when the module does not say).
pub fn render_human(spares: &[Spare]) -> String {
    let rows: Vec<Vec<String>> = spares
        .iter()
        .map(|s| {
            vec![
                s.index.to_string(),
                s.device.clone(),
                s.used.to_string(),
                s.total.to_string(),
                s.state.clone(),
                match s.same_disk_as_main {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    tabular::render(
        &["INDEX", "DEVICE", "USED", "TOTAL", "STATE", "SAME_DISK"],
        &rows,
    )
}

/// `--json`: an array of {`index`, `device`, `used`, `total`, `state`, `same_disk_as_main`}.
pub fn render_json(spares: &[Spare]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(spares)
}

/// Checks that `name` is a dm-remap-v4 device, sends `spares` and parses the answer.
pub fn spares<D: DeviceMapper>(dm: &mut D, name: &str) -> Result<Vec<Spare>, CliError> {
    device::check_is_remap(dm, name)?;
    let out = device::message(dm, name, &["spares"])?;
    parse(&out).map_err(|e| CliError::failed(format!("{name}: {e}")))
}

/// What the target's refusal of `drain` means, by errno (`docs/admin-guide.md`, "Messages").
pub fn refusal_meaning(errno: i32, index: u32, name: &str) -> Option<String> {
    Some(match errno {
        libc::ENODEV => {
            format!("no spare has member index {index} (see 'dmremap spares {name}')")
        }
        libc::EINVAL => format!(
            "spare {index} was drained and removed already, or {index} is not a member index"
        ),
        libc::ENOSPC => {
            "the other active spares cannot take its units (too few free units, or none left)"
                .into()
        }
        libc::EIO => {
            "units of the spare could not be read and stay on it until written (the others \
                      were moved; drain again once they are written), or a metadata write failed"
                .into()
        }
        libc::EBUSY => "a write to one of its units did not complete in time; drain again".into(),
        _ => return None,
    })
}

/// `drain <index>`: checks that `name` is a dm-remap-v4 device, sends the message (the device stays live;
/// it returns when the drain is done) and returns the target's line. A refusal is one sentence naming the
/// device, what the errno means for a drain, and where the reason is.
pub fn drain<D: DeviceMapper>(dm: &mut D, name: &str, index: u32) -> Result<String, CliError> {
    device::check_is_remap(dm, name)?;
    let msg = format!("drain {index}");
    let out = dm.message(name, &msg).map_err(|e| match e.errno {
        libc::ENXIO | libc::EACCES | libc::EPERM => dm_failure(name, &e),
        0 => CliError::failed(format!("{name}: message '{msg}': {}", e.detail)),
        errno => {
            let meaning = refusal_meaning(errno, index, name)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            CliError::failed(format!(
                "{name}: the target refused '{msg}' ({}){meaning}; the reason is in the kernel log (dmesg | \
                 grep dm_remap_v4)",
                e.detail
            ))
        }
    })?;
    Ok(out.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::tests::Fake;
    use crate::dm_ioctl::Target;

    /// The example of docs/admin-guide.md, "Messages".
    const ANSWER: &str = "0 7:1 used=480 total=480 state=active same_disk_as_main=0\n\
        1 7:2 used=416 total=480 state=draining same_disk_as_main=1\n";

    fn remap_device() -> Fake {
        Fake {
            devices: vec![(
                "r".into(),
                vec![Target::parse("0 8 dm-remap-v4 state=ok").unwrap()],
            )],
            ..Fake::default()
        }
    }

    #[test]
    fn parses_every_field() {
        assert_eq!(
            parse(ANSWER).unwrap(),
            [
                Spare {
                    index: 0,
                    device: "7:1".into(),
                    used: 480,
                    total: 480,
                    state: "active".into(),
                    same_disk_as_main: Some(false),
                },
                Spare {
                    index: 1,
                    device: "7:2".into(),
                    used: 416,
                    total: 480,
                    state: "draining".into(),
                    same_disk_as_main: Some(true),
                },
            ]
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn unknown_keys_and_states_are_kept_or_ignored() {
        // A later kernel's keys are ignored; new states are kept; an older module without same_disk_as_main.
        let s = parse_line("3 8:16 future=1 state=failed used=0 total=9 flag").unwrap();
        assert_eq!(
            s,
            Spare {
                index: 3,
                device: "8:16".into(),
                used: 0,
                total: 9,
                state: "failed".into(),
                same_disk_as_main: None,
            }
        );
    }

    #[test]
    fn malformed_lines_are_errors_naming_them() {
        assert_eq!(
            parse("x 7:1 used=1 total=2 state=active").unwrap_err(),
            "the answer to 'spares' has the line 'x 7:1 used=1 total=2 state=active': no member index first"
        );
        assert_eq!(
            parse_line("0 used=1 total=2 state=active").unwrap_err(),
            "the answer to 'spares' has the line '0 used=1 total=2 state=active': no device after the index"
        );
        assert!(parse_line("0 7:1 used=a total=2 state=active")
            .unwrap_err()
            .ends_with("'used=a' is not a number"));
        assert!(parse_line("0 7:1 total=2 state=active")
            .unwrap_err()
            .ends_with("no used="));
        assert!(parse_line("0 7:1 used=1 total=2")
            .unwrap_err()
            .ends_with("no state="));
        assert!(
            parse_line("0 7:1 used=1 total=2 state=active same_disk_as_main=2")
                .unwrap_err()
                .ends_with("'same_disk_as_main=2' is not 0 or 1")
        );
    }

    #[test]
    fn table_and_json() {
        let mut spares = parse(ANSWER).unwrap();
        spares.push(parse_line("2 8:32 used=0 total=100 state=removed").unwrap());
        assert_eq!(
            render_human(&spares),
            "INDEX  DEVICE  USED  TOTAL  STATE     SAME_DISK\n\
             0      7:1     480   480    active    no\n\
             1      7:2     416   480    draining  yes\n\
             2      8:32    0     100    removed   -\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&spares).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"index": 0, "device": "7:1", "used": 480, "total": 480, "state": "active",
                 "same_disk_as_main": false},
                {"index": 1, "device": "7:2", "used": 416, "total": 480, "state": "draining",
                 "same_disk_as_main": true},
                {"index": 2, "device": "8:32", "used": 0, "total": 100, "state": "removed",
                 "same_disk_as_main": null}
            ])
        );
        assert_eq!(render_json(&[]).unwrap(), "[]");
    }

    #[test]
    fn spares_asks_a_remap_device() {
        let mut dm = Fake {
            answer: Ok(ANSWER.into()),
            ..remap_device()
        };
        assert_eq!(spares(&mut dm, "r").unwrap().len(), 2);
        assert_eq!(dm.calls, ["status r", "message r spares"]);
        dm.answer = Ok("0 7:1\n".into());
        let e = spares(&mut dm, "r").unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "r: the answer to 'spares' has the line '0 7:1': no used="
        );
    }

    #[test]
    fn drain_sends_the_message_without_suspending() {
        let line = "drained spare 0 (7:1): 16 units moved; removed from the setup, load a table without it";
        let mut dm = Fake {
            answer: Ok(format!("{line}\n")),
            ..remap_device()
        };
        assert_eq!(drain(&mut dm, "r", 0).unwrap(), line);
        assert_eq!(dm.calls, ["status r", "message r drain 0"]);
    }

    #[test]
    fn drain_refusals_say_what_the_errno_means() {
        let cases = [
            (
                libc::ENODEV,
                "r: the target refused 'drain 7' (No such device (os error 19)): no spare has member index \
                 7 (see 'dmremap spares r'); the reason is in the kernel log (dmesg | grep dm_remap_v4)",
            ),
            (
                libc::EINVAL,
                "r: the target refused 'drain 7' (Invalid argument (os error 22)): spare 7 was drained and \
                 removed already, or 7 is not a member index; the reason is in the kernel log (dmesg | grep \
                 dm_remap_v4)",
            ),
            (
                libc::ENOSPC,
                "r: the target refused 'drain 7' (No space left on device (os error 28)): the other active \
                 spares cannot take its units (too few free units, or none left); the reason is in the \
                 kernel log (dmesg | grep dm_remap_v4)",
            ),
        ];
        for (errno, text) in cases {
            let mut dm = Fake {
                answer: Err(errno),
                ..remap_device()
            };
            let e = drain(&mut dm, "r", 7).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (1, text));
        }
        for errno in [libc::EIO, libc::EBUSY] {
            let e = drain(
                &mut Fake {
                    answer: Err(errno),
                    ..remap_device()
                },
                "r",
                1,
            )
            .unwrap_err();
            assert!(e.message.contains("drain again"), "{}", e.message);
            assert!(e.message.ends_with("(dmesg | grep dm_remap_v4)"));
        }
        // An errno with no drain meaning: the generic sentence.
        let e = drain(
            &mut Fake {
                answer: Err(libc::ENOMEM),
                ..remap_device()
            },
            "r",
            1,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "r: the target refused 'drain 1' (Cannot allocate memory (os error 12)); the reason is in the \
             kernel log (dmesg | grep dm_remap_v4)"
        );
        // Permissions and missing devices as for every request.
        let e = drain(
            &mut Fake {
                answer: Err(libc::EACCES),
                ..remap_device()
            },
            "r",
            1,
        )
        .unwrap_err();
        assert_eq!(e.code, 3);
        let mut dm = remap_device();
        let e = drain(&mut dm, "nope", 1).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.message.contains("no device-mapper device named 'nope'"));
        assert_eq!(dm.calls, ["status nope"]);
    }
}
