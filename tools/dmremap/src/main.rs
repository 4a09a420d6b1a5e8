//! `dmremap`: the command line. Each subcommand parses its arguments, calls the library, prints, and turns
//! the outcome into the documented exit code.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use std::time::Duration;

use dm_remap_v4_reassembly::DEFAULT_THRESHOLD;
use dmremap::assemble;
use dmremap::check::{self, Verdict};
use dmremap::create;
use dmremap::device;
use dmremap::dm_ioctl::Control;
use dmremap::error::{exit, CliError};
use dmremap::identity::Roots;
use dmremap::image::FileIo;
use dmremap::inspect;
use dmremap::list;
use dmremap::progress::{Meter, MeteredIo, Style, AUTO_MIN_BYTES};
use dmremap::scan::{self, Decision};
use dmremap::scrub::{
    self, Action, ScrubStatus, MAX_RATE_KIB, MAX_SLOW_THRESHOLD_MS, MIN_RATE_KIB,
};
use dmremap::spares::{self, MAX_INDEX};
use dmremap::stats;
use dmremap::status;

const EXIT_CODES: &str = "\
Exit codes (every subcommand but check):
  0  success
  1  the kernel or the target refused or failed the operation (the reason is printed, and for the target
     also in the kernel log); for inspect: the metadata does not load; for scrub start --wait: the scrub
     stopped before completing a pass
  2  usage error (bad arguments)
  3  I/O or environment problem: a device cannot be opened or read, device-mapper or the module is
     missing, not root

check has its own codes: 0 clean, 1 problems found, 2 unusable, 3 usage or I/O error (see 'dmremap check --help').";

const CHECK_EXIT_CODES: &str = "\
Exit codes:
  0  clean: the metadata loads and is consistent (with --repair: after the repair)
  1  problems found: e.g. a damaged or stale superblock copy (repairable with --repair), two entries sharing
     a spare unit, an entry outside the pool, a pool past the end of the device (not repairable)
  2  unusable: nothing loadable (blank, foreign data, every superblock copy corrupt, damaged checkpoint,
     written by a newer version); the kernel refuses such a spare (a blank one it formats)
  3  usage or I/O error: bad arguments, the device cannot be opened or read, or is in use (--repair)";

/// dm-remap-v4 administration: report status, counters and spares, create, remove and (after a reboot)
/// assemble devices, move units to and from the spares by hand, drain a spare, drive the background scrub,
/// inspect and check a spare's metadata.
#[derive(Debug, Parser)]
#[command(name = "dmremap", version, after_help = EXIT_CODES, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dump the metadata region of a spare device or image (read-only).
    ///
    /// Loads the metadata with the same format crate as the kernel and prints the superblock (identity,
    /// versions, geometry), what the load replayed (checkpoint, journal), the state of each superblock copy,
    /// and every remap entry. Never writes. On a spare in use the result is a snapshot that may be a commit
    /// behind.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// Spare block device or image file.
        device: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify the metadata of a spare device or image, like thin_check.
    ///
    /// Never writes without --repair. --repair only rewrites damaged or stale superblock copies from the
    /// loaded one (the format crate's repair, the same one the kernel does when it loads a table); it needs
    /// the spare not in use (a block device is opened exclusively). Other problems are reported as not
    /// repairable. On a terminal, reading a large metadata region (64 MiB or more) shows a progress bar on
    /// standard error.
    #[command(after_help = CHECK_EXIT_CODES)]
    Check {
        /// Spare block device or image file.
        device: PathBuf,
        /// Rewrite damaged superblock copies.
        #[arg(long)]
        repair: bool,
        /// Show the progress on standard error whatever the size: a bar on a terminal, else a line per 10%.
        #[arg(long)]
        progress: bool,
    },
    /// Show the status of one dm-remap-v4 device, or of all of them.
    ///
    /// Reads the status lines (DM_TABLE_STATUS, as 'dmsetup status') and shows, per device: state, health
    /// score, the background scrub (state and percent of its pass), remapped and pending units, spare units
    /// left, read/write/device errors and metadata health. Keys the kernel adds later are kept (JSON
    /// "other"); keys an older module lacks show as '-' (JSON null, no Prometheus sample).
    #[command(after_help = EXIT_CODES)]
    Status {
        /// Device-mapper name; all dm-remap-v4 devices when absent.
        name: Option<String>,
        /// JSON: an object for a named device, an array of objects otherwise.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Prometheus text exposition format (for node_exporter's textfile collector).
        #[arg(long)]
        prometheus: bool,
    },
    /// List the remapped and pending units of a device.
    #[command(after_help = EXIT_CODES)]
    List {
        /// Device-mapper name.
        name: String,
        /// Start at the unit holding this sector.
        #[arg(long, value_name = "SECTOR")]
        start: Option<u64>,
        /// List at most this many entries.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move the unit holding <SECTOR> to a new spare unit.
    ///
    /// Suspends the device, sends 'remap <SECTOR>' to the target, and always resumes the device afterwards
    /// (a device that was already suspended is left suspended). Prints the target's answer.
    #[command(after_help = EXIT_CODES)]
    Remap {
        /// Device-mapper name.
        name: String,
        /// A sector of the unit to move (relative to the device).
        sector: u64,
    },
    /// Move the unit holding <SECTOR> back to the main device.
    ///
    /// Suspends the device, sends 'unremap <SECTOR>' to the target (which copies the unit back, verifies it
    /// and drops the entry), and always resumes the device afterwards. Prints the target's answer.
    #[command(after_help = EXIT_CODES)]
    Unremap {
        /// Device-mapper name.
        name: String,
        /// A sector of the unit to move back.
        sector: u64,
    },
    /// Show the target's I/O, error, remap and metadata-commit counters and the main device's latency.
    ///
    /// Sends 'stats' to the target (DM_TARGET_MSG, as 'dmsetup message <name> 0 stats') and prints its
    /// counters as an aligned table (in the target's order; keys this version does not know are printed too),
    /// then the main device's latency histogram, one line per non-empty bucket of microseconds ('64-127 us').
    /// The counters start at zero when the table is loaded (or on 'dmsetup message <name> 0 clear_stats').
    #[command(after_help = EXIT_CODES)]
    Stats {
        /// Device-mapper name.
        name: String,
        /// Print one JSON object: device, the counters (unknown keys too: numbers when they are, else
        /// strings), and main_latency_us, an array of {"ge": <floor in µs>, "count": <n>}.
        #[arg(long)]
        json: bool,
    },
    /// List the spares of a device: member index, device, units used and in all, state, same disk as main.
    ///
    /// Sends 'spares' to the target. STATE is active (new units may come from it), draining (a drain is
    /// moving its units, or stopped before it could move them all), failed (the spare failed; the device's
    /// state is then degraded), or removed (drained: the next table must leave it out). The member index is
    /// what 'dmremap drain' takes.
    #[command(after_help = EXIT_CODES)]
    Spares {
        /// Device-mapper name.
        name: String,
        /// Print a JSON array of {index, device, used, total, state, same_disk_as_main}.
        #[arg(long)]
        json: bool,
    },
    /// Move every unit of a spare to the other spares, then remove it from the setup.
    ///
    /// Sends 'drain <INDEX>' to the target while the device stays live (no suspend) and prints its line once
    /// the drain is done: 'drained spare <INDEX> (<major:minor>): <n> units moved; removed from the setup, load
    /// a table without it'. The other active spares need room for all its units. A refusal (no such member,
    /// removed already, too little room, units that cannot be read, a write that did not complete in time)
    /// exits 1 with what the error means; the reason is in the kernel log.
    ///
    /// Next step: load a table without the spare (dmsetup reload <name> --table '...' without it, then
    /// dmsetup suspend and resume <name>); a table that still names it is refused. After a reboot, 'dmremap
    /// assemble' leaves removed spares out of the table by itself.
    #[command(after_help = EXIT_CODES)]
    Drain {
        /// Device-mapper name.
        name: String,
        /// The spare's member index, 0 to 15, as 'dmremap spares' shows it.
        #[arg(value_name = "INDEX",
            value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_INDEX)))]
        index: u32,
    },
    /// Create a dm-remap-v4 device over a main and one or more spare devices.
    ///
    /// Checks they are distinct block devices, loads the dm-remap-v4 module if the target type is missing,
    /// and creates (through the device-mapper ioctls) the table '0 <main sectors> dm-remap-v4 <main> <first
    /// spare> [<#opt_args> [retries N] [scrub_rate KiB/s] [slow_threshold_ms MS] [spare <dev>]... [main_id
    /// <id>]]': the tuning options only when given, a 'spare <dev>' for each further --spare, and main_id
    /// when the main has a stable identifier (WWN, serial, loop backing file, device-mapper uuid or name, md
    /// uuid, a partition's disk; see docs/dmremap.md). A blank spare is formatted by the kernel, which records
    /// main_id in it, so that 'dmremap scan' finds the right main after a reboot; a spare that recorded another
    /// main_id is refused, and so is one holding another setup's metadata.
    #[command(after_help = EXIT_CODES)]
    Create {
        /// Device-mapper name of the new device (/dev/mapper/<NAME>).
        name: String,
        /// The main (failing) block device.
        #[arg(long, value_name = "DEV")]
        main: String,
        /// A spare block device; repeat for more spares (the first is spare 0).
        #[arg(long, value_name = "DEV", required = true)]
        spare: Vec<String>,
        /// Extra attempts of a failed unit before it counts as bad (0 to 8; the target's default is 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=8))]
        retries: Option<u32>,
        /// Rate of the background scrub in KiB/s (1 to 1048576; the target's default is 8192): table
        /// option scrub_rate.
        #[arg(long, value_name = "KiB/s",
            value_parser = clap::value_parser!(u32).range(i64::from(MIN_RATE_KIB)..=i64::from(MAX_RATE_KIB)))]
        scrub_rate: Option<u32>,
        /// A read slower than this many milliseconds counts as slow (1 to 60000; the target's default is
        /// 1000): table option slow_threshold_ms.
        #[arg(long, value_name = "MS",
            value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SLOW_THRESHOLD_MS)))]
        slow_threshold_ms: Option<u32>,
    },
    /// Start, stop, pace or show the target's background scrub of the main device.
    ///
    /// The scrub reads the whole main device in the background at a bounded rate: a unit it cannot read
    /// becomes pending (its next write moves it to the spare), a unit that keeps reading slowly is relocated.
    /// Its position, passes and findings are kept in the spare's metadata, so 'start' resumes where it
    /// stopped. Sends 'scrub start|stop|rate <KiB/s>|status' to the target (DM_TARGET_MSG, as 'dmsetup
    /// message <name> 0 scrub ...'). start, stop and rate print the scrub's state afterwards in one line.
    #[command(after_help = SCRUB_EXIT_CODES)]
    Scrub {
        /// Device-mapper name.
        name: String,
        #[command(subcommand)]
        action: ScrubCommand,
    },
    /// Remove a dm-remap-v4 device (the remaps stay on the spares).
    #[command(after_help = EXIT_CODES)]
    Remove {
        /// Device-mapper name.
        name: String,
    },
    /// Find the spares of every setup by their metadata, and the main device each was made for.
    ///
    /// Reads the superblock copies of every block device (or of the devices named), groups the spares by
    /// setup UUID, looks for the main among the free block devices (recorded size, logical block size and
    /// identifier), and judges each setup with the kernel's reassembly scoring: confidence 0..100 and a
    /// verdict (assemble, degraded, refuse with the reason, or active when a device already uses it).
    /// Never writes.
    #[command(after_help = EXIT_CODES)]
    Scan {
        /// Look only at these block devices (default: every block device).
        devices: Vec<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Confidence needed for the verdict 'assemble' (0..=100).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_THRESHOLD,
            value_parser = clap::value_parser!(u8).range(0..=100))]
        threshold: u8,
    },
    /// Create the device of a setup found by scan (or of every setup) from its metadata.
    ///
    /// Scans like 'dmremap scan', then for each chosen setup that is not active: refuses it if scan's
    /// verdict is refuse (below the threshold, a member missing, the wrong main, ...), and otherwise
    /// creates /dev/mapper/<name> with the table '0 <main sectors> dm-remap-v4 <main> <spare 0>
    /// [<#opt_args> [spare <dev>]... [main_id <id>]]', naming devices by major:minor. The default name is
    /// remap-<uuid>; the device-mapper uuid is DMREMAP-<uuid>, so a setup is never assembled twice.
    #[command(after_help = EXIT_CODES)]
    Assemble {
        /// Setup UUID, or a unique prefix of it (see 'dmremap scan').
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        uuid: Option<String>,
        /// Every setup found.
        #[arg(long)]
        all: bool,
        /// Confidence needed to assemble (0..=100).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_THRESHOLD,
            value_parser = clap::value_parser!(u8).range(0..=100))]
        threshold: u8,
        /// Device-mapper name (only with one UUID; default remap-<uuid>).
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        name: Option<String>,
        /// Print what would be created, create nothing.
        #[arg(long)]
        dry_run: bool,
        /// Look only at these block devices (default: every block device); repeatable.
        #[arg(long = "device", value_name = "DEV")]
        devices: Vec<PathBuf>,
    },
}

const SCRUB_EXIT_CODES: &str = "\
Exit codes:
  0  success; for start --wait: a pass completed
  1  the kernel or the target refused or failed the operation (no such device, not a dm-remap-v4 device,
     a module without the scrub, message refused: the reason is in the kernel log); for start --wait: the
     scrub stopped before completing a pass
  2  usage error (bad arguments, a rate out of 1..=1048576)
  3  I/O or environment problem: device-mapper or the module is missing, not root

With --wait, Ctrl-C ends the wait and leaves the scrub running ('dmremap scrub <name> stop' stops it).";

#[derive(Debug, Subcommand)]
enum ScrubCommand {
    /// Start the scrub, from where it last stopped.
    ///
    /// With --wait, follows it until a pass over the whole device completes (a progress bar on a terminal,
    /// else a line per 10% on standard error), then prints the scrub's state; exits 1 if the scrub stops
    /// before that. Ctrl-C ends the wait and leaves the scrub running.
    #[command(after_help = SCRUB_EXIT_CODES)]
    Start {
        /// Wait until a pass completes, showing the progress.
        #[arg(long)]
        wait: bool,
        /// Print the scrub's status as one JSON object (as 'scrub <name> status --json') once started
        /// (with --wait: once the pass completed).
        #[arg(long)]
        json: bool,
    },
    /// Stop the scrub; its position is kept, and 'start' resumes from it.
    #[command(after_help = SCRUB_EXIT_CODES)]
    Stop,
    /// Show the scrub: state, how far the pass is, passes completed, unreadable units found, units
    /// relocated for slowness, rate.
    #[command(after_help = SCRUB_EXIT_CODES)]
    Status {
        /// Print one JSON object: device, state, position, total, percent, passes, scanned_bytes,
        /// found_pending, relocated, rate_kib, slow_threshold_ms.
        #[arg(long)]
        json: bool,
    },
    /// Set the scrub's rate in KiB/s (1 to 1048576), running or not.
    #[command(after_help = SCRUB_EXIT_CODES)]
    Rate {
        /// KiB per second.
        #[arg(value_name = "KiB/s",
            value_parser = clap::value_parser!(u32).range(i64::from(MIN_RATE_KIB)..=i64::from(MAX_RATE_KIB)))]
        kib: u32,
    },
}

/// Writes `text` to standard output; a closed pipe (`dmremap status | head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::environment(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

fn line(text: &str) -> Result<(), CliError> {
    emit(&format!("{text}\n"))
}

fn json_error(e: &serde_json::Error) -> CliError {
    CliError::environment(format!("cannot encode JSON: {e}"))
}

fn run_inspect(device: &Path, json: bool) -> Result<(), CliError> {
    let name = device.display().to_string();
    let mut io = FileIo::open_read_only(device)?;
    let size = io.sectors();
    match inspect::inspect(&mut io, Some(size)) {
        Ok(i) => {
            if json {
                line(&inspect::render_json(&name, &i).map_err(|e| json_error(&e))?)
            } else {
                emit(&inspect::render_human(&name, &i))
            }
        }
        Err(u) => {
            let msg = format!("{name}: {}", u.message());
            Err(if u.is_io() {
                CliError::environment(msg)
            } else {
                CliError::failed(msg)
            })
        }
    }
}

fn run_check(device: &Path, repair: bool, progress: bool) -> Result<Verdict, CliError> {
    let name = device.display().to_string();
    let mut io = if repair {
        FileIo::open_for_repair(device)?
    } else {
        FileIo::open_read_only(device)?
    };
    let size = Some(io.sectors());
    let before = {
        let stderr = io::stderr();
        let (style, min) = match (stderr.is_terminal(), progress) {
            (true, forced) => (Style::Bar, if forced { 0 } else { AUTO_MIN_BYTES }),
            (false, true) => (Style::Lines, 0),
            (false, false) => (Style::Lines, u64::MAX),
        };
        let meter = Meter::new(format!("check {name}"), style, min);
        let mut metered = MeteredIo::new(&mut io, meter, stderr);
        let report = check::check(&mut metered, size);
        metered.finish();
        report
    };
    emit(&check::render(&name, &before))?;
    let verdict = before.verdict();
    if !repair || verdict == Verdict::Clean {
        if repair {
            line("nothing to repair")?;
        }
        return Ok(verdict);
    }
    if before.unloadable.is_some() {
        line("repair is not available: the metadata does not load, and dmremap never formats a spare")?;
        return Ok(verdict);
    }
    if !before.problems.iter().any(|p| p.repairable) {
        line("repair is not available for these problems: the format crate offers no safe repair for them")?;
        return Ok(verdict);
    }
    let outcome = check::repair(&mut io, size, &before);
    line(&format!(
        "rewrote {} superblock cop{}",
        outcome.rewritten,
        if outcome.rewritten == 1 { "y" } else { "ies" }
    ))?;
    if let Some(f) = &outcome.failure {
        return Err(CliError::environment(format!("{name}: {f}")));
    }
    line("after repair:")?;
    emit(&check::render(&name, &outcome.after))?;
    let remaining = outcome
        .after
        .problems
        .iter()
        .filter(|p| !p.repairable)
        .count();
    if remaining != 0 {
        line(&format!(
            "{remaining} problem{} cannot be repaired by dmremap: the format crate offers no safe repair for \
             {}",
            if remaining == 1 { "" } else { "s" },
            if remaining == 1 { "it" } else { "them" }
        ))?;
    }
    Ok(outcome.after.verdict())
}

fn run(command: Command) -> Result<u8, CliError> {
    match command {
        Command::Inspect { device, json } => run_inspect(&device, json).map(|()| exit::OK),
        Command::Check {
            device,
            repair,
            progress,
        } => run_check(&device, repair, progress).map(Verdict::code),
        Command::Status {
            name,
            json,
            prometheus,
        } => {
            let devices = run_status(name.as_deref())?;
            if json {
                let text =
                    status::render_json(&devices, name.is_some()).map_err(|e| json_error(&e))?;
                line(&text)?;
            } else if prometheus {
                emit(&status::render_prometheus(&devices))?;
            } else {
                emit(&status::render_human(&devices))?;
            }
            Ok(exit::OK)
        }
        Command::List {
            name,
            start,
            count,
            json,
        } => {
            let out = device::list(&mut device::open(&name)?, &name, start, count)?;
            let entries =
                list::parse(&out).map_err(|e| CliError::failed(format!("{name}: {e}")))?;
            if json {
                line(&list::render_json(&entries).map_err(|e| json_error(&e))?)?;
            } else {
                emit(&list::render_human(&entries))?;
            }
            Ok(exit::OK)
        }
        Command::Remap { name, sector } => {
            let out = device::move_unit(&mut device::open(&name)?, &name, "remap", sector)?;
            line(&out)?;
            device::remap_outcome(&name, &out)?;
            Ok(exit::OK)
        }
        Command::Stats { name, json } => {
            let s = stats::stats(&mut device::open(&name)?, &name)?;
            if json {
                line(&stats::render_json(&name, &s).map_err(|e| json_error(&e))?)?;
            } else {
                emit(&stats::render_human(&name, &s))?;
            }
            Ok(exit::OK)
        }
        Command::Spares { name, json } => {
            let list = spares::spares(&mut device::open(&name)?, &name)?;
            if json {
                line(&spares::render_json(&list).map_err(|e| json_error(&e))?)?;
            } else {
                emit(&spares::render_human(&list))?;
            }
            Ok(exit::OK)
        }
        Command::Drain { name, index } => {
            line(&spares::drain(&mut device::open(&name)?, &name, index)?)?;
            Ok(exit::OK)
        }
        Command::Unremap { name, sector } => {
            let out = device::move_unit(&mut device::open(&name)?, &name, "unremap", sector)?;
            line(&out)?;
            Ok(exit::OK)
        }
        Command::Scrub { name, action } => run_scrub(&name, action),
        Command::Create {
            name,
            main,
            spare,
            retries,
            scrub_rate,
            slow_threshold_ms,
        } => {
            let tuning = create::Tuning {
                retries,
                scrub_rate,
                slow_threshold_ms,
            };
            let table = create::plan(&main, &spare, tuning)?;
            create::create(&name, &table)?;
            line(&format!("created /dev/mapper/{name}: {table}"))?;
            Ok(exit::OK)
        }
        Command::Remove { name } => {
            create::remove(&name)?;
            line(&format!("removed {name}"))?;
            Ok(exit::OK)
        }
        Command::Scan {
            devices,
            json,
            threshold,
        } => {
            let found = run_scan(&devices, threshold)?;
            if json {
                line(&scan::render_json(&found).map_err(|e| json_error(&e))?)?;
            } else {
                emit(&scan::render_human(&found))?;
            }
            Ok(exit::OK)
        }
        Command::Assemble {
            uuid,
            all,
            threshold,
            name,
            dry_run,
            devices,
        } => run_assemble(
            uuid.as_deref(),
            all,
            threshold,
            name.as_deref(),
            dry_run,
            &devices,
        ),
    }
}

/// Prints a scrub status as JSON or as the one summary line.
fn scrub_outcome(name: &str, s: &ScrubStatus, json: bool) -> Result<(), CliError> {
    if json {
        line(&scrub::render_json(name, s).map_err(|e| json_error(&e))?)
    } else {
        line(&scrub::summary(name, s))
    }
}

/// `dmremap scrub <name> ...`.
fn run_scrub(name: &str, action: ScrubCommand) -> Result<u8, CliError> {
    let mut c = device::open(name)?;
    match action {
        ScrubCommand::Status { json } => {
            device::check_is_remap(&mut c, name)?;
            let s = scrub::status(&mut c, name)?;
            if json {
                line(&scrub::render_json(name, &s).map_err(|e| json_error(&e))?)?;
            } else {
                emit(&scrub::render_human(name, &s))?;
            }
        }
        ScrubCommand::Start { wait: false, json } => {
            scrub_outcome(name, &scrub::act(&mut c, name, Action::Start)?, json)?;
        }
        ScrubCommand::Start { wait: true, json } => {
            let stderr = io::stderr();
            let style = if stderr.is_terminal() {
                Style::Bar
            } else {
                Style::Lines
            };
            let mut meter =
                Meter::new(format!("scrub {name}"), style, 0).subject("the device", true);
            let mut err = stderr.lock();
            let mut passes_before: Option<u64> = None;
            let mut show = |text: Option<String>| {
                if let Some(t) = text {
                    let _ = err.write_all(t.as_bytes());
                    let _ = err.flush();
                }
            };
            let result = scrub::start_and_wait(
                &mut c,
                name,
                || std::thread::sleep(Duration::from_millis(scrub::POLL_MS)),
                |s| {
                    // Once the pass is complete the position starts again from 0: show the end of the pass.
                    let base = *passes_before.get_or_insert(s.passes);
                    let at = if s.passes > base { s.total } else { s.position };
                    show(meter.set_total(scrub::sectors_to_bytes(s.total)));
                    show(meter.set_done(scrub::sectors_to_bytes(at)));
                },
            );
            show(meter.end());
            drop(err);
            let s = result?;
            if json {
                scrub_outcome(name, &s, true)?;
            } else {
                line(&format!(
                    "{name}: scrub pass {} complete: {} unreadable unit{} found, {} relocated for slowness so \
                     far",
                    s.passes,
                    s.found_pending,
                    if s.found_pending == 1 { "" } else { "s" },
                    s.relocated
                ))?;
            }
        }
        ScrubCommand::Stop => scrub_outcome(name, &scrub::act(&mut c, name, Action::Stop)?, false)?,
        ScrubCommand::Rate { kib } => {
            scrub_outcome(name, &scrub::act(&mut c, name, Action::Rate(kib))?, false)?;
        }
    }
    Ok(exit::OK)
}

/// The status of one dm-remap-v4 device or of all, through the device-mapper ioctls.
fn run_status(name: Option<&str>) -> Result<Vec<status::DeviceStatus>, CliError> {
    let who = name.unwrap_or("device-mapper");
    let mut c = Control::open().map_err(|e| create::dm_failure(who, &e))?;
    let devices = status::collect(&mut c, name).map_err(|e| create::dm_failure(who, &e))?;
    if let (Some(n), true) = (name, devices.is_empty()) {
        return Err(CliError::failed(format!(
            "{n} is not a dm-remap-v4 device (see 'dmsetup table {n}')"
        )));
    }
    Ok(devices)
}

/// Scans `devices` (every block device when empty) and judges the setups against `threshold`.
fn run_scan(devices: &[PathBuf], threshold: u8) -> Result<scan::Scan, CliError> {
    let roots = Roots::system();
    let devs = scan::devices(&roots, devices)
        .map_err(|e| CliError::environment(format!("{e}; give the path of a block device")))?;
    let (probes, failed) = scan::probe(&roots, &devs);
    // A device named on the command line that cannot be read is an error; others are skipped (a CD drive
    // without a disc, a device only root can read) since they cannot be spares we could use anyway.
    if let Some((dev, why)) = failed.first().filter(|_| !devices.is_empty()) {
        return Err(CliError::environment(format!("{dev}: {why}")));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(scan::build(&probes, &devs, threshold, now))
}

fn run_assemble(
    uuid: Option<&str>,
    all: bool,
    threshold: u8,
    name: Option<&str>,
    dry_run: bool,
    devices: &[PathBuf],
) -> Result<u8, CliError> {
    let found = run_scan(devices, threshold)?;
    let chosen = assemble::select(&found.setups, uuid, all).map_err(CliError::failed)?;
    if chosen.is_empty() {
        line("no dm-remap-v4 setups found")?;
    }
    let mut refused = 0usize;
    let mut control: Option<Control> = None;
    for s in chosen {
        if s.decision == Decision::Active {
            line(&format!(
                "setup {} is already active as {}; not assembled again",
                s.uuid,
                s.active_as.as_deref().unwrap_or("a device-mapper device")
            ))?;
            continue;
        }
        if !s.assemblable() {
            refused = refused.saturating_add(1);
            eprintln!(
                "dmremap: setup {} refused (confidence {}, threshold {}): {}",
                s.uuid,
                s.confidence,
                s.threshold,
                s.reason.as_deref().unwrap_or("no reason given")
            );
            continue;
        }
        let plan = assemble::plan(s, name).map_err(CliError::failed)?;
        if dry_run {
            line(&format!(
                "would create /dev/mapper/{} (setup {}, {}, confidence {}): {}",
                plan.name,
                s.uuid,
                if s.decision == Decision::Degraded {
                    "degraded"
                } else {
                    "complete"
                },
                s.confidence,
                plan.line()
            ))?;
            continue;
        }
        let c = match control.as_mut() {
            Some(c) => c,
            None => {
                let mut c = device::open(&plan.name)?;
                device::ensure_target(&mut c, device::modprobe)?;
                control.insert(c)
            }
        };
        match c.create_device(
            &plan.name,
            &plan.dm_uuid,
            std::slice::from_ref(&plan.target),
        ) {
            Ok(_) => line(&format!(
                "assembled /dev/mapper/{} (setup {}, confidence {}): {}",
                plan.name,
                s.uuid,
                s.confidence,
                plan.line()
            ))?,
            // Another run (two udev events at once) made it between our scan and our create: the kernel
            // keeps dm uuids unique, so a device with this setup's uuid is the setup, active.
            Err(e) if e.cmd == "DM_DEV_CREATE" && e.errno == libc::EBUSY => {
                match c.name_of_uuid(&plan.dm_uuid) {
                    Ok(Some(other)) => line(&format!(
                        "setup {} is already active as {other}; not assembled again",
                        s.uuid
                    ))?,
                    _ => {
                        refused = refused.saturating_add(1);
                        eprintln!(
                            "dmremap: setup {}: {}",
                            s.uuid,
                            create::dm_failure(&plan.name, &e)
                        );
                    }
                }
            }
            Err(e) => {
                refused = refused.saturating_add(1);
                eprintln!(
                    "dmremap: setup {}: {}",
                    s.uuid,
                    create::dm_failure(&plan.name, &e)
                );
            }
        }
    }
    Ok(if refused == 0 { exit::OK } else { exit::FAILED })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => exit::OK,
                // check documents 3 for usage errors, like thin_check; everything else uses 2.
                _ if std::env::args().nth(1).as_deref() == Some("check") => Verdict::Error.code(),
                _ => exit::USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("dmremap: {e}");
            ExitCode::from(e.code)
        }
    }
}
