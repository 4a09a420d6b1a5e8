//! The device-mapper work of `list`, `remap` and `unremap`, and the target-type check of `create` and
//! `assemble`, over the ioctls of [`crate::dm_ioctl`] (no `dmsetup`). The logic is written against the
//! [`DeviceMapper`] trait, which [`Control`] implements, so that the unit tests drive it with a fake kernel:
//! which requests are made in which order, that a suspended device is always resumed, and what the user
//! reads when something fails.

use std::io;
use std::process::{Command, Stdio};

use crate::create::dm_failure;
use crate::dm_ioctl::{Control, DmError, Info, Target};
use crate::error::CliError;
use crate::status::TARGET;

/// The device-mapper requests used here.
pub trait DeviceMapper {
    /// DM_DEV_STATUS: the device's info, `None` when there is no such device.
    fn info(&mut self, name: &str) -> Result<Option<Info>, DmError>;
    /// DM_DEV_SUSPEND with `DM_SUSPEND_FLAG`.
    fn suspend(&mut self, name: &str) -> Result<(), DmError>;
    /// DM_DEV_SUSPEND without it: resume.
    fn resume(&mut self, name: &str) -> Result<(), DmError>;
    /// DM_TARGET_MSG: the target's answer.
    fn message(&mut self, name: &str, message: &str) -> Result<String, DmError>;
    /// DM_TABLE_STATUS: the status lines of the live table.
    fn status(&mut self, name: &str) -> Result<Vec<Target>, DmError>;
    /// DM_LIST_VERSIONS: the registered target types.
    fn target_types(&mut self) -> Result<Vec<String>, DmError>;
}

impl DeviceMapper for Control {
    fn info(&mut self, name: &str) -> Result<Option<Info>, DmError> {
        Control::info(self, name)
    }
    fn suspend(&mut self, name: &str) -> Result<(), DmError> {
        Control::suspend(self, name)
    }
    fn resume(&mut self, name: &str) -> Result<(), DmError> {
        Control::resume(self, name)
    }
    fn message(&mut self, name: &str, message: &str) -> Result<String, DmError> {
        Control::message(self, name, message)
    }
    fn status(&mut self, name: &str) -> Result<Vec<Target>, DmError> {
        self.table(name, false)
    }
    fn target_types(&mut self) -> Result<Vec<String>, DmError> {
        Control::target_types(self)
    }
}

/// Opens `/dev/mapper/control`; `name` is the device the command is about (for the error).
pub fn open(name: &str) -> Result<Control, CliError> {
    Control::open().map_err(|e| dm_failure(name, &e))
}

/// The user's error for a failed request about `name` other than a table load: no such device and
/// permissions as [`dm_failure`] says them, anything else as `<name>: <what> failed: <reason>`.
fn request_failure(name: &str, what: &str, e: &DmError) -> CliError {
    match e.errno {
        libc::ENXIO | libc::EACCES | libc::EPERM => dm_failure(name, e),
        _ => CliError::failed(format!("{name}: {what} failed: {}", e.detail)),
    }
}

/// Checks that `name` exists and is a dm-remap-v4 device.
pub fn check_is_remap<D: DeviceMapper>(dm: &mut D, name: &str) -> Result<(), CliError> {
    let targets = dm
        .status(name)
        .map_err(|e| request_failure(name, "reading the status", &e))?;
    if targets.iter().any(|t| t.kind == TARGET) {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{name} is not a {TARGET} device (see 'dmsetup table {name}')"
        )))
    }
}

/// Sends `words` as a message to the target of `name`, returns its answer. A refusal points at the kernel
/// log, where the target logs the reason.
pub fn message<D: DeviceMapper>(
    dm: &mut D,
    name: &str,
    words: &[&str],
) -> Result<String, CliError> {
    let msg = words.join(" ");
    dm.message(name, &msg).map_err(|e| match e.errno {
        libc::ENXIO | libc::EACCES | libc::EPERM => dm_failure(name, &e),
        0 => CliError::failed(format!("{name}: message '{msg}': {}", e.detail)),
        _ => CliError::failed(format!(
            "{name}: the target refused '{msg}' ({}); the reason is in the kernel log (dmesg | grep \
             dm_remap_v4)",
            e.detail
        )),
    })
}

/// The `list` message for `--start` and `--count`: `list`, `list <start>` or `list <start> <count>`.
pub fn list_words(start: Option<u64>, count: Option<u64>) -> Vec<String> {
    let mut words = vec!["list".to_owned()];
    if start.is_some() || count.is_some() {
        words.push(start.unwrap_or(0).to_string());
    }
    if let Some(c) = count {
        words.push(c.to_string());
    }
    words
}

/// `list`: checks that `name` is a dm-remap-v4 device and returns the target's answer to the list message.
pub fn list<D: DeviceMapper>(
    dm: &mut D,
    name: &str,
    start: Option<u64>,
    count: Option<u64>,
) -> Result<String, CliError> {
    check_is_remap(dm, name)?;
    let words = list_words(start, count);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    message(dm, name, &words)
}

/// Runs `f` with `name` suspended, and resumes it afterwards whatever `f` returned. A device that was
/// already suspended (by someone else) is left suspended, as it was found.
pub fn with_suspended<D: DeviceMapper, T>(
    dm: &mut D,
    name: &str,
    f: impl FnOnce(&mut D) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let info = dm
        .info(name)
        .map_err(|e| request_failure(name, "reading its state", &e))?
        .ok_or_else(|| {
            CliError::failed(format!(
                "there is no device-mapper device named '{name}'; 'dmremap status' lists the dm-remap-v4 devices"
            ))
        })?;
    let was_suspended = info.suspended;
    if !was_suspended {
        dm.suspend(name)
            .map_err(|e| request_failure(name, "suspending it", &e))?;
    }
    let result = f(dm);
    if !was_suspended {
        if let Err(e) = dm.resume(name) {
            let done = match &result {
                Ok(_) => "the operation itself succeeded".to_owned(),
                Err(r) => format!("the operation itself failed too: {r}"),
            };
            return Err(CliError::failed(format!(
                "{name}: resuming it failed: {}; {name} is still suspended: run 'dmsetup resume {name}' now \
                 ({done})",
                e.detail
            )));
        }
    }
    result
}

/// `remap` or `unremap` of the unit holding `sector`: checks that `name` is a dm-remap-v4 device,
/// suspends it, sends the message, and always resumes it. Returns the target's output line.
pub fn move_unit<D: DeviceMapper>(
    dm: &mut D,
    name: &str,
    verb: &str,
    sector: u64,
) -> Result<String, CliError> {
    check_is_remap(dm, name)?;
    let sector = sector.to_string();
    let out = with_suspended(dm, name, |dm| message(dm, name, &[verb, &sector]))?;
    Ok(out.trim().to_owned())
}

/// The target's answer to `remap`: `remapped <sector> to spare <n> sector <m>` is success; `pending <sector>:
/// ...` means main could not read the unit, which is now pending instead (an error for the caller).
pub fn remap_outcome(name: &str, output: &str) -> Result<(), CliError> {
    if output.starts_with("pending") {
        Err(CliError::failed(format!(
            "{name}: main could not read the unit, so it was recorded as pending instead of remapped; its \
             next write moves it to the spare"
        )))
    } else {
        Ok(())
    }
}

/// Whether the kernel knows the dm-remap-v4 target type.
fn has_target<D: DeviceMapper>(dm: &mut D) -> Result<bool, CliError> {
    dm.target_types()
        .map(|types| types.iter().any(|t| t == TARGET))
        .map_err(|e| dm_failure("device-mapper", &e))
}

/// Loads the dm-remap-v4 module with `modprobe` unless the target type is already registered.
pub fn ensure_target<D: DeviceMapper>(
    dm: &mut D,
    modprobe: impl FnOnce() -> Result<(), CliError>,
) -> Result<(), CliError> {
    if has_target(dm)? {
        return Ok(());
    }
    modprobe()?;
    if has_target(dm)? {
        Ok(())
    } else {
        Err(CliError::environment(format!(
            "'modprobe {TARGET}' succeeded but the kernel does not list the {TARGET} target type"
        )))
    }
}

/// Runs `modprobe dm-remap-v4` (`LC_ALL=C`, standard input closed), looking in `/usr/sbin` and `/sbin`
/// too when `PATH` lacks them.
pub fn modprobe() -> Result<(), CliError> {
    for program in ["modprobe", "/usr/sbin/modprobe", "/sbin/modprobe"] {
        let out = Command::new(program)
            .arg(TARGET)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let first = stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("no message");
                return Err(CliError::environment(format!(
                    "the {TARGET} kernel module is not loaded and 'modprobe {TARGET}' failed ({first}); \
                     install the module (dm-remap-dkms, or make modules_install) for the running kernel"
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CliError::environment(format!("cannot run modprobe: {e}"))),
        }
    }
    Err(CliError::environment(format!(
        "the {TARGET} kernel module is not loaded and modprobe is not installed; install it (Debian: \
         apt-get install kmod) or load the module by hand"
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake kernel: records every request, answers from its fields.
    pub(crate) struct Fake {
        pub calls: Vec<String>,
        /// Status lines per device; a device not here does not exist (ENXIO).
        pub devices: Vec<(String, Vec<Target>)>,
        pub suspended: bool,
        /// The answer to messages, or the errno refusing them.
        pub answer: Result<String, i32>,
        pub resume_fails: bool,
        pub types: Vec<String>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Self {
                calls: Vec::new(),
                devices: Vec::new(),
                suspended: false,
                answer: Ok(String::new()),
                resume_fails: false,
                types: Vec::new(),
            }
        }
    }

    fn err(cmd: &'static str, name: &str, errno: i32) -> DmError {
        DmError {
            cmd,
            name: name.to_owned(),
            errno,
            detail: io::Error::from_raw_os_error(errno).to_string(),
        }
    }

    impl Fake {
        fn remap_device(name: &str) -> Self {
            Self {
                devices: vec![(
                    name.to_owned(),
                    vec![
                        Target::parse("0 65536 dm-remap-v4 unit_bytes=512 remapped=0 state=ok")
                            .unwrap(),
                    ],
                )],
                ..Self::default()
            }
        }

        fn exists(&self, name: &str) -> bool {
            self.devices.iter().any(|(n, _)| n == name)
        }
    }

    impl DeviceMapper for Fake {
        fn info(&mut self, name: &str) -> Result<Option<Info>, DmError> {
            self.calls.push(format!("info {name}"));
            Ok(self.exists(name).then_some(Info {
                dev: (253, 0),
                open_count: 0,
                target_count: 1,
                suspended: self.suspended,
                active: true,
                inactive_table: false,
            }))
        }
        fn suspend(&mut self, name: &str) -> Result<(), DmError> {
            self.calls.push(format!("suspend {name}"));
            self.suspended = true;
            Ok(())
        }
        fn resume(&mut self, name: &str) -> Result<(), DmError> {
            self.calls.push(format!("resume {name}"));
            if self.resume_fails {
                return Err(err("DM_DEV_SUSPEND", name, libc::EINVAL));
            }
            self.suspended = false;
            Ok(())
        }
        fn message(&mut self, name: &str, message: &str) -> Result<String, DmError> {
            self.calls.push(format!("message {name} {message}"));
            self.answer
                .clone()
                .map_err(|errno| err("DM_TARGET_MSG", name, errno))
        }
        fn status(&mut self, name: &str) -> Result<Vec<Target>, DmError> {
            self.calls.push(format!("status {name}"));
            self.devices
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| err("DM_TABLE_STATUS", name, libc::ENXIO))
        }
        fn target_types(&mut self) -> Result<Vec<String>, DmError> {
            self.calls.push("versions".into());
            Ok(self.types.clone())
        }
    }

    fn calls(dm: &Fake) -> Vec<&str> {
        dm.calls.iter().map(String::as_str).collect()
    }

    #[test]
    fn remap_suspends_messages_and_resumes() {
        let mut dm = Fake {
            answer: Ok("remapped 100 to spare 0 sector 2048\n".into()),
            ..Fake::remap_device("r")
        };
        let out = move_unit(&mut dm, "r", "remap", 100).unwrap();
        assert_eq!(out, "remapped 100 to spare 0 sector 2048");
        assert_eq!(
            calls(&dm),
            [
                "status r",
                "info r",
                "suspend r",
                "message r remap 100",
                "resume r"
            ]
        );
        assert!(!dm.suspended);
        assert_eq!(remap_outcome("r", &out), Ok(()));
    }

    #[test]
    fn a_refused_message_still_resumes() {
        let mut dm = Fake {
            answer: Err(libc::EEXIST),
            ..Fake::remap_device("r")
        };
        let e = move_unit(&mut dm, "r", "unremap", 7).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.message
                .starts_with("r: the target refused 'unremap 7' (File exists"),
            "{}",
            e.message
        );
        assert!(e.message.contains("dmesg | grep dm_remap_v4"));
        assert_eq!(calls(&dm).last(), Some(&"resume r"));
        assert!(!dm.suspended);
    }

    #[test]
    fn a_failed_resume_says_what_to_do() {
        let mut dm = Fake {
            answer: Ok("remapped 1 to spare 0 sector 2049".into()),
            resume_fails: true,
            ..Fake::remap_device("r")
        };
        let e = move_unit(&mut dm, "r", "remap", 1).unwrap_err();
        assert!(
            e.message.contains("run 'dmsetup resume r' now"),
            "{}",
            e.message
        );
        assert!(e.message.contains("the operation itself succeeded"));
        assert!(e.message.starts_with("r: resuming it failed: "));
    }

    #[test]
    fn a_device_suspended_by_someone_else_stays_suspended() {
        let mut dm = Fake {
            answer: Ok("unremapped 5 from spare 0 sector 2048".into()),
            suspended: true,
            ..Fake::remap_device("r")
        };
        move_unit(&mut dm, "r", "unremap", 5).unwrap();
        assert!(!calls(&dm)
            .iter()
            .any(|c| c.starts_with("suspend") || c.starts_with("resume")));
        assert!(dm.suspended);
    }

    #[test]
    fn other_targets_and_missing_devices_are_refused_before_suspending() {
        let mut dm = Fake {
            devices: vec![("lin".into(), vec![Target::parse("0 100 linear").unwrap()])],
            ..Fake::default()
        };
        let e = move_unit(&mut dm, "lin", "remap", 0).unwrap_err();
        assert_eq!(
            e.message,
            "lin is not a dm-remap-v4 device (see 'dmsetup table lin')"
        );
        assert_eq!(calls(&dm), ["status lin"]);

        let e = move_unit(&mut dm, "nope", "remap", 0).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "there is no device-mapper device named 'nope'; 'dmremap status' lists the dm-remap-v4 devices"
        );
        let e = list(&mut dm, "nope", None, None).unwrap_err();
        assert!(e.message.contains("no device-mapper device named 'nope'"));
    }

    #[test]
    fn list_sends_start_and_count() {
        assert_eq!(list_words(None, None), ["list"]);
        assert_eq!(list_words(Some(8), None), ["list", "8"]);
        assert_eq!(list_words(None, Some(3)), ["list", "0", "3"]);
        assert_eq!(list_words(Some(8), Some(3)), ["list", "8", "3"]);
        let mut dm = Fake {
            answer: Ok("100 0 2048 active\n".into()),
            ..Fake::remap_device("r")
        };
        assert_eq!(
            list(&mut dm, "r", Some(100), Some(1)).unwrap(),
            "100 0 2048 active\n"
        );
        assert_eq!(calls(&dm), ["status r", "message r list 100 1"]);
    }

    #[test]
    fn permissions_and_cut_answers_read_as_sentences() {
        let mut dm = Fake {
            answer: Err(libc::EACCES),
            ..Fake::remap_device("r")
        };
        let e = list(&mut dm, "r", None, None).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e.message.ends_with("run as root"), "{}", e.message);
        let e = message(
            &mut Fake {
                answer: Err(0),
                ..Fake::remap_device("r")
            },
            "r",
            &["list"],
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("r: message 'list': "),
            "{}",
            e.message
        );
    }

    #[test]
    fn pending_answer_is_a_failure() {
        let e = remap_outcome(
            "r",
            "pending 300: main cannot read it; the next write heals it",
        )
        .unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.message.contains("recorded as pending"));
    }

    #[test]
    fn modprobe_only_when_the_target_is_missing() {
        let mut dm = Fake {
            types: vec!["linear".into(), TARGET.into()],
            ..Fake::default()
        };
        let mut ran = false;
        ensure_target(&mut dm, || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(!ran);
        assert_eq!(calls(&dm), ["versions"]);

        let mut dm = Fake {
            types: vec!["linear".into()],
            ..Fake::default()
        };
        let e = ensure_target(&mut dm, || Err(CliError::environment("no module"))).unwrap_err();
        assert_eq!(e.message, "no module");
        // modprobe "succeeds" but the type is still missing.
        let e = ensure_target(&mut dm, || Ok(())).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e.message.contains("does not list"));
        assert_eq!(calls(&dm), ["versions", "versions", "versions"]);
    }
}
