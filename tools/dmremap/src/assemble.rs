//! `dmremap assemble`: the table of a scanned setup, its device-mapper name, and the kernel's reason when
//! it refuses a table.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use crate::dm_ioctl::Target;
use crate::identity::MAIN_ID_MAX;
use crate::scan::Setup;
use crate::status::TARGET;

/// Prefix of the device-mapper uuid of an assembled device: `DMREMAP-<setup uuid>`. The kernel keeps dm
/// uuids unique, so the same setup can never be assembled twice, even by two `dmremap` runs at once.
pub const DM_UUID_PREFIX: &str = "DMREMAP-";

/// The default device-mapper name of a setup: `remap-<setup uuid>`. Derived from the UUID alone, so it is
/// the same on every boot and on every machine, and two setups never collide.
pub fn default_name(uuid: &str) -> String {
    format!("remap-{uuid}")
}

/// The device-mapper uuid of a setup's device.
pub fn dm_uuid(uuid: &str) -> String {
    format!("{DM_UUID_PREFIX}{uuid}")
}

/// Whether `id` is a `main_id` the target accepts: 1..64 bytes of printable ASCII without spaces.
pub fn valid_main_id(id: &str) -> bool {
    (1..=MAIN_ID_MAX).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The optional arguments of a table line, counted: `<#opt_args> <opt_args>...`, empty when there are none.
pub fn optional_args(words: &[String]) -> String {
    if words.is_empty() {
        String::new()
    } else {
        format!(" {} {}", words.len(), words.join(" "))
    }
}

/// What `assemble` creates for one setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Device-mapper name.
    pub name: String,
    /// Device-mapper uuid.
    pub dm_uuid: String,
    /// The one target.
    pub target: Target,
}

impl Plan {
    /// The table line, as `dmsetup table` prints it.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.target.start, self.target.length, self.target.kind, self.target.params
        )
    }
}

/// The plan for an assemblable `setup`: `0 <main sectors> dm-remap-v4 <main> <first spare>` and the optional
/// arguments `spare <dev>` for every further spare and `main_id <id>` when one is recorded (so the kernel
/// checks the identity itself). Devices are named by `major:minor`, which cannot change under the table.
/// Spares removed from the setup are left out, found or not: the table names every other member.
pub fn plan(setup: &Setup, name: Option<&str>) -> Result<Plan, String> {
    let main = setup
        .main
        .as_ref()
        .ok_or_else(|| format!("setup {}: no main device found", setup.uuid))?;
    let mut spares: Vec<_> = setup.spares.iter().filter(|s| !s.removed).collect();
    spares.sort_by_key(|s| s.member_index);
    let indices: Vec<u32> = spares.iter().map(|s| s.member_index).collect();
    let expected: Vec<u32> = (0..setup.member_count)
        .filter(|i| !setup.removed_members.contains(i))
        .collect();
    if indices != expected {
        return Err(format!(
            "setup {}: spares {indices:?} found, {expected:?} needed",
            setup.uuid
        ));
    }
    let (first, rest) = spares
        .split_first()
        .ok_or_else(|| format!("setup {}: no spare found", setup.uuid))?;
    let mut opts: Vec<String> = Vec::new();
    for s in rest {
        opts.push("spare".into());
        opts.push(s.numbers.clone());
    }
    let id = &setup.recorded_main.main_id;
    if valid_main_id(id) {
        opts.push("main_id".into());
        opts.push(id.clone());
    }
    let name = name.map_or_else(|| default_name(&setup.uuid), str::to_owned);
    Ok(Plan {
        name,
        dm_uuid: dm_uuid(&setup.uuid),
        target: Target {
            start: 0,
            length: main.sectors,
            kind: TARGET.into(),
            params: format!("{} {}{}", main.numbers, first.numbers, optional_args(&opts)),
        },
    })
}

/// The setups named by `uuid` (the full UUID or a unique prefix of it), or all with `all`.
pub fn select<'a>(
    setups: &'a [Setup],
    uuid: Option<&str>,
    all: bool,
) -> Result<Vec<&'a Setup>, String> {
    if all {
        return Ok(setups.iter().collect());
    }
    let Some(u) = uuid else {
        return Err("give a setup UUID (see 'dmremap scan') or --all".into());
    };
    let u = u.to_ascii_lowercase();
    let hits: Vec<&Setup> = setups.iter().filter(|s| s.uuid.starts_with(&u)).collect();
    match hits.as_slice() {
        [] => Err(format!(
            "no setup with UUID {u} found among the devices scanned; 'dmremap scan' lists what was found"
        )),
        [_] => Ok(hits),
        _ => Err(format!(
            "{u} is the start of several setup UUIDs; give more of it"
        )),
    }
}

/// The kernel's last device-mapper table error (`device-mapper: table: 253:2: dm-remap-v4: <reason>`), read
/// from `/dev/kmsg` without blocking; `None` if there is none or the log cannot be read.
pub fn kernel_reason() -> Option<String> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut last = None;
    let mut buf = vec![0u8; 8192];
    // One record per read; the end of the log is EAGAIN. Bounded so a busy log cannot keep us here.
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[]));
                if let Some(msg) = table_error(&rec) {
                    last = Some(msg);
                }
            }
            // EPIPE: a record was overwritten while reading; keep going.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    last
}

/// The reason in a `/dev/kmsg` record `pri,seq,time,flags;device-mapper: table: <dev>: <type>: <reason>`.
pub fn table_error(record: &str) -> Option<String> {
    let msg = record.split_once(';')?.1.lines().next()?;
    let rest = msg.strip_prefix("device-mapper: table: ")?;
    let (_dev, rest) = rest.split_once(": ")?;
    let reason = rest.strip_prefix(&format!("{TARGET}: ")).unwrap_or(rest);
    Some(reason.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Decision, MainFound, MainMatch, RecordedMain, SpareFound};
    use dm_remap_v4_reassembly::Inputs;

    fn setup(spares: &[(u32, &str)], count: u32, main_id: &str) -> Setup {
        Setup {
            uuid: "5a5a5a5a-0000-1111-2222-333333333333".into(),
            decision: Decision::Assemble,
            reason: None,
            active_as: None,
            confidence: 100,
            threshold: 70,
            clean_shutdown: true,
            main: Some(MainFound {
                device: "/dev/loop3".into(),
                numbers: "7:3".into(),
                sectors: 65536,
                main_id: None,
                how: MainMatch::Match,
            }),
            recorded_main: RecordedMain {
                sectors: 65536,
                logical_block_size: 512,
                main_id: main_id.into(),
            },
            member_count: count,
            removed_members: Vec::new(),
            spares: spares
                .iter()
                .map(|&(i, n)| SpareFound {
                    member_index: i,
                    device: format!("/dev/x{i}"),
                    numbers: n.into(),
                    last_seq: 1,
                    meta_version: 1,
                    copies_current: 2,
                    shutdown: "clean",
                    removed: false,
                })
                .collect(),
            missing: Vec::new(),
            notes: Vec::new(),
            inputs: Inputs::default(),
        }
    }

    #[test]
    fn tables_name_devices_by_number_and_spares_by_member_index() {
        let p = plan(&setup(&[(0, "7:5")], 1, ""), None).unwrap();
        assert_eq!(p.line(), "0 65536 dm-remap-v4 7:3 7:5");
        assert_eq!(p.name, "remap-5a5a5a5a-0000-1111-2222-333333333333");
        assert_eq!(p.dm_uuid, "DMREMAP-5a5a5a5a-0000-1111-2222-333333333333");
        // Found in any order: spare 0 is the table's spare, the others follow as `spare`, in index order.
        let p = plan(
            &setup(&[(2, "7:9"), (0, "7:5"), (1, "7:8")], 3, "loop:/x/a.img"),
            Some("r0"),
        )
        .unwrap();
        assert_eq!(
            p.line(),
            "0 65536 dm-remap-v4 7:3 7:5 6 spare 7:8 spare 7:9 main_id loop:/x/a.img"
        );
        assert_eq!(p.name, "r0");
        // A missing member: no table.
        assert!(plan(&setup(&[(0, "7:5")], 2, ""), None)
            .unwrap_err()
            .contains("[0] found, [0, 1] needed"));
        // A recorded identifier the table cannot carry is left out (the kernel then does not check it).
        let p = plan(&setup(&[(0, "7:5")], 1, "with space"), None).unwrap();
        assert_eq!(p.line(), "0 65536 dm-remap-v4 7:3 7:5");
    }

    #[test]
    fn removed_spares_are_left_out_of_the_table() {
        // Member 1 was removed; its spare is still attached and found.
        let mut s = setup(&[(0, "7:5"), (1, "7:6"), (2, "7:7")], 3, "");
        s.removed_members = vec![1];
        s.spares[1].removed = true;
        let p = plan(&s, None).unwrap();
        assert_eq!(p.line(), "0 65536 dm-remap-v4 7:3 7:5 2 spare 7:7");
        // Not found: not needed either.
        s.spares.remove(1);
        assert_eq!(plan(&s, None).unwrap().line(), p.line());
        // Member 0 removed: the first member left is the table's spare.
        let mut s = setup(&[(0, "7:5"), (1, "7:6")], 2, "");
        s.removed_members = vec![0];
        s.spares[0].removed = true;
        assert_eq!(
            plan(&s, None).unwrap().line(),
            "0 65536 dm-remap-v4 7:3 7:6"
        );
        // Another member missing is still refused, the removed one not listed as needed.
        let mut s = setup(&[(0, "7:5")], 3, "");
        s.removed_members = vec![1];
        assert!(plan(&s, None)
            .unwrap_err()
            .contains("[0] found, [0, 2] needed"));
    }

    #[test]
    fn main_id_rule_and_optional_args() {
        assert!(valid_main_id("wwn:naa.5000"));
        assert!(!valid_main_id(""));
        assert!(!valid_main_id("a b"));
        assert!(!valid_main_id(&"x".repeat(65)));
        assert!(valid_main_id(&"x".repeat(64)));
        assert_eq!(optional_args(&[]), "");
        assert_eq!(
            optional_args(&["retries".into(), "2".into()]),
            " 2 retries 2"
        );
    }

    #[test]
    fn selection_by_uuid_prefix_or_all() {
        let a = setup(&[(0, "7:5")], 1, "");
        let mut b = a.clone();
        b.uuid = "5a5a5a5b-0000-1111-2222-333333333333".into();
        let both = [a, b];
        assert_eq!(select(&both, None, true).unwrap().len(), 2);
        assert_eq!(
            select(&both, Some("5A5A5A5B"), false).unwrap()[0].uuid,
            both[1].uuid
        );
        assert!(select(&both, Some("5a5a5a5"), false)
            .unwrap_err()
            .contains("several"));
        assert!(select(&both, Some("ff"), false)
            .unwrap_err()
            .contains("no setup"));
        assert!(select(&both, None, false).is_err());
    }

    #[test]
    fn kernel_table_errors_are_extracted() {
        assert_eq!(
            table_error("3,1234,5678,-;device-mapper: table: 253:2: dm-remap-v4: main device identifier differs from the recorded one\n").as_deref(),
            Some("main device identifier differs from the recorded one")
        );
        assert_eq!(
            table_error("3,1,2,-;device-mapper: table: 253:0: linear: Device lookup failed")
                .as_deref(),
            Some("linear: Device lookup failed")
        );
        assert_eq!(table_error("6,1,2,-;loop0: detected capacity change"), None);
        assert_eq!(table_error("garbage"), None);
    }
}
