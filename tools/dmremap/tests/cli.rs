//! The `dmremap` binary against small spare images written with the real format crate: output and exit codes
//! of `inspect` and `check`, and the usage exit codes. Needs no kernel and no root.

// Tests fail by panicking; the workspace's no-panic lints are for the code that runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dm_remap_v4_metadata::layout::{Layout, BLOCK_SIZE};
use dm_remap_v4_metadata::superblock::MainIdentity;
use dm_remap_v4_metadata::{BlockIo, EntryState, FormatParams, IoError, Record, Store};

const SPARE_SECTORS: u64 = 8192;

struct FileIo(File);

impl BlockIo for FileIo {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.0
            .read_exact_at(buf, sector.checked_mul(512).ok_or(IoError)?)
            .map_err(|_| IoError)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.0
            .write_all_at(buf, sector.checked_mul(512).ok_or(IoError)?)
            .map_err(|_| IoError)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dmremap-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn blank(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        File::create(&path)
            .unwrap()
            .set_len(SPARE_SECTORS * 512)
            .unwrap();
        path
    }
    /// A formatted image with remaps of main units 5 and 9, and unit 12 pending.
    fn image(&self, name: &str) -> PathBuf {
        let path = self.blank(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut io = FileIo(file);
        let mut buf = vec![0u8; BLOCK_SIZE];
        let params = FormatParams {
            uuid: [0xab; 16],
            member_index: 0,
            member_count: 1,
            main: MainIdentity {
                sectors: 65536,
                logical_block_size: 512,
                id: [0; 64],
            },
            spare_sectors: SPARE_SECTORS,
            unit_sectors: 1,
            layout: Layout::for_spare(SPARE_SECTORS, 1).unwrap(),
        };
        let mut store = Store::format(&mut io, &mut buf, &params, 7).unwrap();
        let rec = |main_unit, spare_unit, state| Record {
            main_unit,
            spare_index: 0,
            spare_unit,
            state,
            timestamp: 1_700_000_000,
        };
        store
            .commit(
                &mut io,
                &mut buf,
                &[
                    rec(5, 0, EntryState::Active),
                    rec(9, 1, EntryState::Active),
                    rec(12, 0, EntryState::PendingReadFailure),
                ],
            )
            .unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dmremap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmremap"))
        .args(args)
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = dmremap(args);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Flips a byte of superblock copy 1 (block 8), breaking its checksum.
fn corrupt_copy_1(path: &Path) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let at = 8 * 4096 + 200;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0xff;
    f.write_all_at(&b, at).unwrap();
}

#[test]
fn inspect_human_and_json() {
    let dir = Scratch::new("inspect");
    let img = dir.image("spare.img");
    let (code, out, err) = run(&["inspect", s(&img)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uuid:              abababab-abab-abab-abab-abababababab"));
    assert!(out.contains("entries:           3 (2 active, 1 pending)"));
    assert!(out.contains("superblock copies: 0 current, version 1, loaded; 1 current, version 1"));
    assert!(out.contains("scrub:             no saved state (starts at unit 0)"));
    let (code, out, _) = run(&["inspect", "--json", s(&img)]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["superblock"]["pool_start"], 4096);
    assert_eq!(v["superblock"]["unit_sectors"], 1);
    assert_eq!(v["entries"].as_array().unwrap().len(), 3);
    assert_eq!(v["entries"][1]["main_sector"], 9);
    assert_eq!(v["entries"][1]["spare_sector"], 4097);
    assert_eq!(v["load"]["journal_commits"], 1);
    assert_eq!(v["scrub"]["status"], "none");
    assert_eq!(v["scrub"]["bad_copies"], 0);
}

#[test]
fn check_exit_codes() {
    let dir = Scratch::new("check");
    let img = dir.image("spare.img");
    let before = std::fs::read(&img).unwrap();
    let (code, out, _) = run(&["check", s(&img)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no problems found"));

    corrupt_copy_1(&img);
    let damaged = std::fs::read(&img).unwrap();
    assert_ne!(before, damaged);
    let (code, out, _) = run(&["check", s(&img)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("superblock copy 1 (sector 64) is corrupt"));
    assert_eq!(
        std::fs::read(&img).unwrap(),
        damaged,
        "check without --repair wrote"
    );

    let (code, out, _) = run(&["check", "--repair", s(&img)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rewrote 1 superblock copy"));
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "repair restores the copy"
    );

    let blank = dir.blank("blank.img");
    let (code, out, _) = run(&["check", s(&blank)]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no dm-remap-v4 metadata"));
    let (code, out, _) = run(&["check", "--repair", s(&blank)]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("repair is not available"));
    assert!(std::fs::read(&blank).unwrap().iter().all(|&b| b == 0));

    let (code, _, err) = run(&["check", "/nonexistent/dmremap-spare"]);
    assert_eq!(code, 3);
    assert!(err.contains("/nonexistent/dmremap-spare: cannot open"));
    let (code, _, _) = run(&["check"]);
    assert_eq!(code, 3, "usage errors of check exit 3");
}

#[test]
fn inspect_of_unusable_spare_and_usage_errors() {
    let dir = Scratch::new("usage");
    let blank = dir.blank("blank.img");
    let (code, _, err) = run(&["inspect", s(&blank)]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!(
        "dmremap: {}: holds no dm-remap-v4 metadata",
        s(&blank)
    )));
    assert_eq!(run(&["inspect"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&["status", "--json", "--prometheus"]).0, 2);
    assert_eq!(run(&["--help"]).0, 0);
    let (code, _, err) = run(&["create", "r", "--main", "/dev/null", "--spare", "/dev/null"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("main device /dev/null is not a block device"),
        "{err}"
    );
}

#[test]
fn scan_and_assemble_usage_errors() {
    // Neither a UUID nor --all; --name with --all; a threshold outside 0..=100.
    assert_eq!(run(&["assemble"]).0, 2);
    assert_eq!(run(&["assemble", "--all", "--name", "x"]).0, 2);
    assert_eq!(run(&["assemble", "abc", "--all"]).0, 2);
    assert_eq!(run(&["scan", "--threshold", "101"]).0, 2);
    // A named device that is not a block device: an environment error naming it.
    let (code, _, err) = run(&["scan", "/dev/null"]);
    assert_eq!(code, 3);
    assert!(err.contains("/dev/null is not a block device"), "{err}");
    let (code, _, err) = run(&["assemble", "--all", "--device", "/dev/null"]);
    assert_eq!(code, 3);
    assert!(err.contains("/dev/null is not a block device"), "{err}");
}

#[test]
fn stats_spares_and_drain_usage_errors_and_help() {
    // No name; an index out of 0..=15 or not a number; an option the subcommand does not have.
    assert_eq!(run(&["stats"]).0, 2);
    assert_eq!(run(&["spares"]).0, 2);
    assert_eq!(run(&["drain", "r0"]).0, 2);
    let (code, _, err) = run(&["drain", "r0", "16"]);
    assert_eq!(code, 2);
    assert!(err.contains("16 is not in 0..=15"), "{err}");
    assert_eq!(run(&["drain", "r0", "-1"]).0, 2);
    assert_eq!(run(&["drain", "r0", "one"]).0, 2);
    assert_eq!(run(&["drain", "r0", "0", "--json"]).0, 2);
    assert_eq!(run(&["stats", "r0", "--prometheus"]).0, 2);
    // drain's help says what to do next.
    let (code, out, _) = run(&["drain", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: dmremap drain <NAME> <INDEX>"), "{out}");
    assert!(out.contains("load a table without the spare"), "{out}");
    assert!(
        out.contains("'dmremap assemble' leaves removed spares out"),
        "{out}"
    );
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["stats", "spares", "drain"] {
        assert!(out.contains(&format!("\n  {sub} ")), "{sub}: {out}");
    }
}

#[test]
fn scrub_and_create_option_usage_errors() {
    // No action, an unknown action, a rate out of 1..=1048576 or not a number, --wait on another action.
    assert_eq!(run(&["scrub", "r0"]).0, 2);
    assert_eq!(run(&["scrub", "r0", "pause"]).0, 2);
    assert_eq!(run(&["scrub", "r0", "rate"]).0, 2);
    let (code, _, err) = run(&["scrub", "r0", "rate", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("0 is not in 1..=1048576"), "{err}");
    assert_eq!(run(&["scrub", "r0", "rate", "1048577"]).0, 2);
    assert_eq!(run(&["scrub", "r0", "rate", "fast"]).0, 2);
    assert_eq!(run(&["scrub", "r0", "stop", "--wait"]).0, 2);
    assert_eq!(run(&["scrub", "r0", "status", "--wait"]).0, 2);
    // --help of the subcommand and of an action: exit 0, with the exit codes.
    let (code, out, _) = run(&["scrub", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Usage: dmremap scrub <NAME> <COMMAND>"),
        "{out}"
    );
    assert!(out.contains("for start --wait: a pass completed"), "{out}");
    let (code, out, _) = run(&["scrub", "r0", "start", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--wait"), "{out}");
    assert!(
        out.contains("Ctrl-C ends the wait and leaves the scrub running"),
        "{out}"
    );
    // create's table options are checked before any device is looked at.
    for (flag, bad) in [
        ("--scrub-rate", "0"),
        ("--scrub-rate", "1048577"),
        ("--slow-threshold-ms", "0"),
        ("--slow-threshold-ms", "60001"),
    ] {
        let (code, _, err) = run(&["create", "r", "--main", "/x", "--spare", "/y", flag, bad]);
        assert_eq!(code, 2, "{flag} {bad}: {err}");
        assert!(err.contains(flag), "{err}");
    }
    // In range: parsed, then the missing main device is an environment error.
    let (code, _, err) = run(&[
        "create",
        "r",
        "--main",
        "/nonexistent/dmremap-main",
        "--spare",
        "/y",
        "--scrub-rate",
        "1048576",
        "--slow-threshold-ms",
        "60000",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("dmremap: main device /nonexistent/dmremap-main:"),
        "{err}"
    );
}

#[test]
fn check_progress_is_plain_lines_off_a_terminal() {
    let dir = Scratch::new("progress");
    let img = dir.image("spare.img");
    // stderr is a pipe here: without --progress nothing is shown, the report alone.
    let (code, out, err) = run(&["check", s(&img)]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(err, "");
    let (code, out2, err) = run(&["check", "--progress", s(&img)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out2, out, "the report on stdout is the same");
    let label = format!("check {}: ", s(&img));
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&label) && !l.contains('\r')),
        "{err}"
    );
    // Steps of 10%, increasing, each once; then the amount read.
    let steps: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            let pct = l[label.len()..].split('%').next().unwrap();
            pct.parse().unwrap()
        })
        .collect();
    assert!(steps.iter().all(|p| p % 10 == 0 && *p <= 100), "{err}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{err}");
    assert!(lines[0].contains("of the metadata read ("), "{err}");
    assert!(lines[0].contains(" of at most "), "{err}");
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with(&format!("{label}done, ")) && last.ends_with(" MiB read"),
        "{err}"
    );
}
