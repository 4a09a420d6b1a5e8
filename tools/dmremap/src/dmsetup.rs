//! Talking to device-mapper through the `dmsetup` command (and `modprobe`).
//!
//! Shelling out keeps this first version free of C libraries: the `devicemapper` crate needs libdevmapper's
//! development files (pkg-config `devmapper`) at build time. Every command runs with `LC_ALL=C`, standard input
//! closed, and its standard output returned; a failure keeps its standard error for the message.

use std::io;
use std::process::{Command, Stdio};

use crate::error::CliError;
use crate::status::{self, DeviceStatus, TARGET};

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// The program is not installed.
    Missing {
        /// Program name.
        program: String,
    },
    /// It could not be started.
    Spawn {
        /// Program name.
        program: String,
        /// The OS error.
        error: String,
    },
    /// It ran and failed.
    Failed {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Its standard error, trimmed.
        stderr: String,
    },
}

/// Runs a program and returns its standard output.
pub trait Exec {
    /// Runs `program` with `args`.
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, CmdError>;
}

/// The real thing: `std::process::Command`, looking in `/usr/sbin` and `/sbin` too when `PATH` lacks them.
#[derive(Debug, Default)]
pub struct System;

impl Exec for System {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, CmdError> {
        let candidates = [
            program.to_owned(),
            format!("/usr/sbin/{program}"),
            format!("/sbin/{program}"),
        ];
        for candidate in &candidates {
            let out = Command::new(candidate)
                .args(args)
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(out) if out.status.success() => {
                    return Ok(String::from_utf8_lossy(&out.stdout).into_owned())
                }
                Ok(out) => {
                    return Err(CmdError::Failed {
                        code: out.status.code(),
                        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(CmdError::Spawn {
                        program: program.to_owned(),
                        error: e.to_string(),
                    })
                }
            }
        }
        Err(CmdError::Missing {
            program: program.to_owned(),
        })
    }
}

/// Turns a failed command about device `name` into the user's error; `what` says what was attempted.
fn failure(name: &str, what: &str, e: CmdError) -> CliError {
    match e {
        CmdError::Missing { program } => CliError::environment(format!(
            "{program} is not installed; install it (Debian: apt-get install {})",
            if program == "modprobe" {
                "kmod"
            } else {
                "dmsetup"
            }
        )),
        CmdError::Spawn { program, error } => {
            CliError::environment(format!("cannot run {program}: {error}"))
        }
        CmdError::Failed { stderr, .. } => {
            let s = stderr.to_lowercase();
            if s.contains("failure to communicate with kernel device-mapper driver") {
                CliError::environment(
                    "cannot talk to the kernel's device-mapper driver; load it (modprobe dm_mod) and run \
                     as root",
                )
            } else if s.contains("permission denied") || s.contains("must be root") {
                CliError::environment(format!(
                    "{name}: {what} needs access to device-mapper; run as root"
                ))
            } else if s.contains("does not exist") || s.contains("no such device or address") {
                CliError::failed(format!(
                    "there is no device-mapper device named '{name}'; see 'dmsetup ls'"
                ))
            } else {
                CliError::failed(format!("{name}: {what} failed: {}", first_line(&stderr)))
            }
        }
    }
}

/// The first informative line of a command's error output (`dmsetup` ends with a bare `Command failed.`).
fn first_line(stderr: &str) -> &str {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && *l != "Command failed.")
        .unwrap_or("no message")
}

/// device-mapper through `dmsetup`.
#[derive(Debug)]
pub struct Dm<E: Exec> {
    /// How commands are run.
    pub exec: E,
}

impl<E: Exec> Dm<E> {
    fn dmsetup(&mut self, name: &str, what: &str, args: &[&str]) -> Result<String, CliError> {
        self.exec
            .run("dmsetup", args)
            .map_err(|e| failure(name, what, e))
    }

    /// The status of device `name` (which must be a dm-remap-v4 device), or of every dm-remap-v4 device.
    pub fn status(&mut self, name: Option<&str>) -> Result<Vec<DeviceStatus>, CliError> {
        match name {
            Some(n) => {
                let out = self.dmsetup(n, "reading the status", &["status", n])?;
                let devices = status::parse_dmsetup_output(Some(n), &out);
                if devices.is_empty() {
                    return Err(CliError::failed(format!(
                        "{n} is not a {TARGET} device (see 'dmsetup table {n}')"
                    )));
                }
                Ok(devices)
            }
            None => {
                let out = self.dmsetup(
                    "device-mapper",
                    "listing the devices",
                    &["status", "--target", TARGET],
                )?;
                Ok(status::parse_dmsetup_output(None, &out))
            }
        }
    }

    /// Sends `words` as a message to the target of `name`, returns the target's output.
    pub fn message(&mut self, name: &str, words: &[&str]) -> Result<String, CliError> {
        let mut args = vec!["message", name, "0"];
        args.extend_from_slice(words);
        let msg = words.join(" ");
        self.dmsetup(name, &format!("message '{msg}'"), &args)
            .map_err(|e| {
                if e.code == crate::error::exit::FAILED
                    && !e.message.contains("no device-mapper device")
                {
                    CliError::failed(format!(
                        "{}; the reason is in the kernel log (dmesg | grep dm_remap_v4)",
                        e.message
                    ))
                } else {
                    e
                }
            })
    }

    /// Whether `name` is suspended (`State: SUSPENDED` in `dmsetup info`).
    pub fn is_suspended(&mut self, name: &str) -> Result<bool, CliError> {
        let out = self.dmsetup(name, "reading its state", &["info", name])?;
        Ok(out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("State:"))
            .any(|s| s.contains("SUSPENDED")))
    }

    /// Runs `f` with `name` suspended, and resumes it afterwards whatever `f` returned. A device that was
    /// already suspended (by someone else) is left suspended, as it was found.
    pub fn with_suspended<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let was_suspended = self.is_suspended(name)?;
        if !was_suspended {
            self.dmsetup(name, "suspend", &["suspend", name])?;
        }
        let result = f(self);
        if !was_suspended {
            if let Err(e) = self.dmsetup(name, "resume", &["resume", name]) {
                let done = match &result {
                    Ok(_) => "the operation itself succeeded".to_owned(),
                    Err(r) => format!("the operation itself failed too: {r}"),
                };
                return Err(CliError::failed(format!(
                    "{e}; {name} is still suspended: run 'dmsetup resume {name}' now ({done})"
                )));
            }
        }
        result
    }

    /// `remap` or `unremap` of the unit holding `sector`: checks that `name` is a dm-remap-v4 device,
    /// suspends it, sends the message, and always resumes it. Returns the target's output line.
    pub fn move_unit(&mut self, name: &str, verb: &str, sector: u64) -> Result<String, CliError> {
        self.status(Some(name))?;
        let sector = sector.to_string();
        let out = self.with_suspended(name, |dm| dm.message(name, &[verb, &sector]))?;
        Ok(out.trim().to_owned())
    }

    /// Whether the kernel knows the dm-remap-v4 target type.
    pub fn has_target(&mut self) -> Result<bool, CliError> {
        let out = self.dmsetup("device-mapper", "listing the target types", &["targets"])?;
        Ok(out
            .lines()
            .any(|l| l.split_whitespace().next() == Some(TARGET)))
    }

    /// Loads the dm-remap-v4 module unless the target type is already registered.
    pub fn ensure_target(&mut self) -> Result<(), CliError> {
        if self.has_target()? {
            return Ok(());
        }
        self.exec.run("modprobe", &[TARGET]).map_err(|e| match e {
            CmdError::Failed { stderr, .. } => CliError::environment(format!(
                "the {TARGET} kernel module is not loaded and 'modprobe {TARGET}' failed ({}); install the \
                 module (make modules_install) for the running kernel",
                first_line(&stderr)
            )),
            other => failure(TARGET, "modprobe", other),
        })?;
        if self.has_target()? {
            Ok(())
        } else {
            Err(CliError::environment(format!(
                "'modprobe {TARGET}' succeeded but the kernel does not list the {TARGET} target type"
            )))
        }
    }

    /// Creates device `name` with the one-line `table`.
    pub fn create(&mut self, name: &str, table: &str) -> Result<(), CliError> {
        self.dmsetup(name, "create", &["create", name, "--table", table])
            .map(|_| ())
            .map_err(|e| {
                if e.code == crate::error::exit::FAILED {
                    CliError::failed(format!(
                        "{}; the kernel log says why (dmesg | grep -i dm-remap)",
                        e.message
                    ))
                } else {
                    e
                }
            })
    }

    /// Removes device `name`, which must be a dm-remap-v4 device.
    pub fn remove(&mut self, name: &str) -> Result<(), CliError> {
        self.status(Some(name))?;
        self.dmsetup(name, "remove", &["remove", name])
            .map(|_| ())
            .map_err(|e| {
                if e.message.to_lowercase().contains("busy") {
                    CliError::failed(format!(
                        "{name} is in use (mounted or held open); unmount or close it, then remove it"
                    ))
                } else {
                    e
                }
            })
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Records every command; answers from a script of `(args prefix, result)`, first match wins, else "".
    #[derive(Default)]
    pub(crate) struct Fake {
        pub calls: Vec<String>,
        pub script: Vec<(String, Result<String, CmdError>)>,
    }

    impl Fake {
        pub fn on(mut self, prefix: &str, r: Result<&str, &str>) -> Self {
            let r = r.map(str::to_owned).map_err(|e| CmdError::Failed {
                code: Some(1),
                stderr: e.to_owned(),
            });
            self.script.push((prefix.to_owned(), r));
            self
        }
    }

    impl Exec for Fake {
        fn run(&mut self, program: &str, args: &[&str]) -> Result<String, CmdError> {
            let call = format!("{program} {}", args.join(" "));
            self.calls.push(call.clone());
            self.script
                .iter()
                .find(|(p, _)| call.starts_with(p.as_str()))
                .map_or(Ok(String::new()), |(_, r)| r.clone())
        }
    }

    const STATUS: &str = "0 65536 dm-remap-v4 unit_bytes=512 remapped=0 state=ok\n";
    const ACTIVE: &str = "Name:              r\nState:             ACTIVE\nOpen count:        0\n";
    const SUSPENDED: &str = "Name:              r\nState:             SUSPENDED\n";

    fn calls(dm: &Dm<Fake>) -> Vec<&str> {
        dm.exec.calls.iter().map(String::as_str).collect()
    }

    #[test]
    fn remap_suspends_messages_and_resumes() {
        let fake = Fake::default()
            .on("dmsetup status r", Ok(STATUS))
            .on("dmsetup info r", Ok(ACTIVE))
            .on(
                "dmsetup message r 0 remap 100",
                Ok("remapped 100 to spare 0 sector 2048\n"),
            );
        let mut dm = Dm { exec: fake };
        let out = dm.move_unit("r", "remap", 100).unwrap();
        assert_eq!(out, "remapped 100 to spare 0 sector 2048");
        assert_eq!(
            calls(&dm),
            [
                "dmsetup status r",
                "dmsetup info r",
                "dmsetup suspend r",
                "dmsetup message r 0 remap 100",
                "dmsetup resume r"
            ]
        );
        assert_eq!(remap_outcome("r", &out), Ok(()));
    }

    #[test]
    fn a_refused_message_still_resumes() {
        let fake = Fake::default()
            .on("dmsetup status r", Ok(STATUS))
            .on("dmsetup info r", Ok(ACTIVE))
            .on(
                "dmsetup message",
                Err("device-mapper: message ioctl on r  failed: File exists\nCommand failed."),
            );
        let mut dm = Dm { exec: fake };
        let e = dm.move_unit("r", "unremap", 7).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e
            .message
            .contains("r: message 'unremap 7' failed: device-mapper: message ioctl"));
        assert!(e.message.contains("dmesg"));
        assert_eq!(calls(&dm).last(), Some(&"dmsetup resume r"));
    }

    #[test]
    fn a_failed_resume_says_what_to_do() {
        let fake = Fake::default()
            .on("dmsetup status r", Ok(STATUS))
            .on("dmsetup info r", Ok(ACTIVE))
            .on("dmsetup message", Ok("remapped 1 to spare 0 sector 2049"))
            .on("dmsetup resume", Err("resume ioctl failed"));
        let mut dm = Dm { exec: fake };
        let e = dm.move_unit("r", "remap", 1).unwrap_err();
        assert!(
            e.message.contains("run 'dmsetup resume r' now"),
            "{}",
            e.message
        );
        assert!(e.message.contains("the operation itself succeeded"));
    }

    #[test]
    fn a_device_suspended_by_someone_else_stays_suspended() {
        let fake = Fake::default()
            .on("dmsetup status r", Ok(STATUS))
            .on("dmsetup info r", Ok(SUSPENDED))
            .on(
                "dmsetup message",
                Ok("unremapped 5 from spare 0 sector 2048"),
            );
        let mut dm = Dm { exec: fake };
        dm.move_unit("r", "unremap", 5).unwrap();
        assert!(!calls(&dm)
            .iter()
            .any(|c| c.contains("suspend r") || c.contains("resume")));
    }

    #[test]
    fn other_targets_and_missing_devices_are_refused_before_suspending() {
        let fake = Fake::default().on("dmsetup status lin", Ok("0 100 linear 8:0 0\n"));
        let mut dm = Dm { exec: fake };
        let e = dm.move_unit("lin", "remap", 0).unwrap_err();
        assert_eq!(
            e.message,
            "lin is not a dm-remap-v4 device (see 'dmsetup table lin')"
        );
        assert_eq!(calls(&dm), ["dmsetup status lin"]);

        let fake = Fake::default().on(
            "dmsetup status",
            Err("Device does not exist.\nCommand failed."),
        );
        let mut dm = Dm { exec: fake };
        let e = dm.remove("nope").unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.message.contains("no device-mapper device named 'nope'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn no_device_mapper_driver_is_an_environment_error() {
        let stderr = "/dev/mapper/control: open failed: No such device\n\
            Failure to communicate with kernel device-mapper driver.\n\
            Check that device-mapper is available in the kernel.\n\
            Command failed.";
        let fake = Fake::default().on("dmsetup", Err(stderr));
        let e = Dm { exec: fake }.status(None).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e.message.contains("modprobe dm_mod"), "{}", e.message);
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
        let fake = Fake::default().on(
            "dmsetup targets",
            Ok("dm-remap-v4      v0.1.0\nlinear v1.4.0\n"),
        );
        let mut dm = Dm { exec: fake };
        dm.ensure_target().unwrap();
        assert_eq!(calls(&dm), ["dmsetup targets"]);

        let fake = Fake::default()
            .on("dmsetup targets", Ok("linear v1.4.0\n"))
            .on(
                "modprobe",
                Err("modprobe: FATAL: Module dm-remap-v4 not found"),
            );
        let mut dm = Dm { exec: fake };
        let e = dm.ensure_target().unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e.message.contains("Module dm-remap-v4 not found"));
        assert_eq!(calls(&dm), ["dmsetup targets", "modprobe dm-remap-v4"]);
    }

    #[test]
    fn status_of_all_devices_and_missing_dmsetup() {
        let fake = Fake::default().on(
            "dmsetup status --target dm-remap-v4",
            Ok("a: 0 8 dm-remap-v4 state=ok\nb: 0 8 dm-remap-v4 state=failed\n"),
        );
        let mut dm = Dm { exec: fake };
        let all = dm.status(None).unwrap();
        assert_eq!(all.len(), 2);

        struct NoDmsetup;
        impl Exec for NoDmsetup {
            fn run(&mut self, program: &str, _: &[&str]) -> Result<String, CmdError> {
                Err(CmdError::Missing {
                    program: program.to_owned(),
                })
            }
        }
        let e = Dm { exec: NoDmsetup }.status(None).unwrap_err();
        assert_eq!(e.code, 3);
        assert!(e.message.contains("dmsetup is not installed"));
    }

    #[test]
    fn create_passes_the_table_and_points_at_the_kernel_log() {
        let fake = Fake::default().on(
            "dmsetup create",
            Err("device-mapper: reload ioctl on r  failed: Invalid argument"),
        );
        let mut dm = Dm { exec: fake };
        let e = dm.create("r", "0 8 dm-remap-v4 /dev/a /dev/b").unwrap_err();
        assert!(e.message.contains("Invalid argument"));
        assert!(e.message.contains("dmesg"));
        assert_eq!(
            calls(&dm),
            ["dmsetup create r --table 0 8 dm-remap-v4 /dev/a /dev/b"]
        );
    }
}
