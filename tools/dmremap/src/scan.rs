//! `dmremap scan`: find the spares of every setup by their superblocks, find each setup's main device, and
//! judge with the `reassembly` crate (the kernel's own scoring code) whether the devices belong together.
//!
//! [`probe`] does the I/O (sysfs, superblock reads through the format crate); [`build`] is pure and turns
//! what was found into [`Setup`]s, so the grouping and the choice of the main are tested without devices.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use dm_remap_v4_metadata::layout::SUPERBLOCK_COPIES;
use dm_remap_v4_reassembly::score::{
    IDENTIFIER_MATCH, IDENTIFIER_MISMATCH, IDENTIFIER_UNKNOWN, NO, YES,
};
use dm_remap_v4_reassembly::{
    assess, calculate_confidence_score, summarize, Inputs, Reason, Verdict,
};
use serde::Serialize;

use crate::identity::{self, BlockDev, Roots};
use crate::image::FileIo;
use crate::inspect::{self, index_list, Inspection, Unloadable};

/// A device-mapper device holding a spare (the setup is active).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Kernel name (`dm-3`).
    pub kernel: String,
    /// Device-mapper name.
    pub dm_name: Option<String>,
    /// Kernel names of the devices its table uses.
    pub slaves: Vec<String>,
}

/// A device whose superblock copies carry dm-remap-v4's magic.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The device.
    pub device: BlockDev,
    /// Its metadata, or why it does not load.
    pub outcome: Result<Inspection, Unloadable>,
    /// The devices holding it.
    pub holders: Vec<Holder>,
}

/// How the main device was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MainMatch {
    /// Size, block size and the recorded identifier match.
    Match,
    /// Size and block size match; no identifier to compare (none recorded, or none readable).
    Unknown,
    /// Size and block size match, the identifier differs: not this setup's main.
    IdentifierMismatch,
    /// Size matches, the logical block size differs.
    BlockSizeMismatch,
    /// The device the active table uses.
    Active,
}

/// The main device of a setup, when one was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MainFound {
    /// Node path.
    pub device: String,
    /// `major:minor`.
    pub numbers: String,
    /// Size in sectors.
    pub sectors: u64,
    /// Its identifier, if it has one.
    pub main_id: Option<String>,
    /// How it matched.
    #[serde(rename = "match")]
    pub how: MainMatch,
}

/// What the newest metadata records about the main device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedMain {
    /// Size in sectors.
    pub sectors: u64,
    /// Logical block size in bytes.
    pub logical_block_size: u32,
    /// Identifier; empty when none was recorded.
    pub main_id: String,
}

/// One spare of a setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpareFound {
    /// Its member index.
    pub member_index: u32,
    /// Node path.
    pub device: String,
    /// `major:minor`.
    pub numbers: String,
    /// Sequence number of its last commit.
    pub last_seq: u64,
    /// Its metadata version.
    pub meta_version: u64,
    /// Superblock copies that are current.
    pub copies_current: u32,
    /// Its shutdown mark against its loaded metadata: `clean`, `dirty`, `stale` or `none` (see `inspect`).
    pub shutdown: &'static str,
    /// Its member index is in the newest metadata's removed members: it was drained and removed from the
    /// setup, so it is not part of the table and not counted as expected.
    pub removed: bool,
}

/// What to do with a setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// In use by a device-mapper device already: not assembled twice.
    Active,
    /// Complete and current: assemble.
    Assemble,
    /// Assemble; the kernel repairs what is behind (a superblock copy, a stale member).
    Degraded,
    /// Do not assemble.
    Refuse,
}

/// One setup: its members, its main, the confidence and the decision.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Setup UUID.
    pub uuid: String,
    /// Assemble, degraded, refuse or active.
    pub decision: Decision,
    /// Why it is refused (one sentence), or `None`.
    pub reason: Option<String>,
    /// Device-mapper name of the device using it, when active.
    pub active_as: Option<String>,
    /// The reassembly crate's confidence score, 0..=100.
    pub confidence: u8,
    /// The threshold it was judged against.
    pub threshold: u8,
    /// Every spare found (not removed) records a clean shutdown at the metadata it holds: the scoring
    /// code's `clean_shutdown`.
    pub clean_shutdown: bool,
    /// The main device found, if any.
    pub main: Option<MainFound>,
    /// What the metadata records about the main.
    pub recorded_main: RecordedMain,
    /// Spares in the setup, from the newest metadata (removed members included: indices are never reused).
    pub member_count: u32,
    /// Members removed from the setup, from the newest metadata: never missing, never in the table.
    pub removed_members: Vec<u32>,
    /// The spares found, by member index (a duplicated index is listed twice), removed ones included.
    pub spares: Vec<SpareFound>,
    /// What is missing: `main`, `spare <n>`.
    pub missing: Vec<String>,
    /// Other findings, one sentence each.
    pub notes: Vec<String>,
    /// The inputs given to the scoring code.
    #[serde(skip)]
    pub inputs: Inputs,
}

impl Setup {
    /// Whether `assemble` may create it.
    pub fn assemblable(&self) -> bool {
        matches!(self.decision, Decision::Assemble | Decision::Degraded)
    }
}

/// A device with dm-remap-v4 magic whose metadata does not load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unusable {
    /// Node path.
    pub device: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// Everything a scan found.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    /// The setups, by UUID.
    pub setups: Vec<Setup>,
    /// Devices with dm-remap-v4 magic but no loadable metadata.
    pub unusable: Vec<Unusable>,
}

/// Whether `device`'s superblock copies carry dm-remap-v4's magic (valid, corrupt or newer-format copies);
/// blank and foreign ones do not. Read errors count as no magic: the device is left alone.
fn has_magic(io: &mut FileIo) -> bool {
    inspect::raw_copies(io)
        .iter()
        .any(|c| !matches!(c.status, "blank" | "foreign" | "unreadable"))
}

/// The device-mapper devices holding `dev`, from sysfs.
fn holders(roots: &Roots, dev: &BlockDev) -> Vec<Holder> {
    dev.holders
        .iter()
        .map(|h| {
            let dir = roots.sys.join("class/block").join(h);
            let dm_name = std::fs::read_to_string(dir.join("dm/name"))
                .ok()
                .map(|s| s.trim().to_owned());
            let slaves = std::fs::read_dir(dir.join("slaves"))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            Holder {
                kernel: h.clone(),
                dm_name,
                slaves,
            }
        })
        .collect()
}

/// Reads the superblocks of `devices`; returns the devices carrying dm-remap-v4 metadata, and the ones that
/// could not be opened (with the reason). Opening is read-only with `O_DIRECT`, as `inspect` does.
pub fn probe(roots: &Roots, devices: &[BlockDev]) -> (Vec<Probe>, Vec<(String, String)>) {
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for d in devices {
        let mut io = match FileIo::open_read_only(&d.path) {
            Ok(io) => io,
            Err(e) => {
                failed.push((d.display(), e.message));
                continue;
            }
        };
        if !has_magic(&mut io) {
            continue;
        }
        let size = io.sectors();
        found.push(Probe {
            device: d.clone(),
            outcome: inspect::inspect(&mut io, Some(size)),
            holders: holders(roots, d),
        });
    }
    (found, failed)
}

/// The devices to look at: every block device, or the ones named.
pub fn devices(roots: &Roots, named: &[impl AsRef<Path>]) -> Result<Vec<BlockDev>, String> {
    if named.is_empty() {
        return Ok(identity::all_devices(roots));
    }
    named
        .iter()
        .map(|p| identity::device_at(roots, p.as_ref()))
        .collect()
}

/// The main candidates' ranking for one setup (see [`choose_main`]).
enum MainChoice {
    One(BlockDev, MainMatch),
    Ambiguous(Vec<BlockDev>),
    Missing,
}

/// Picks the main device for `recorded` among `free` devices (not holding metadata, not in use): the same
/// size and logical block size, and the recorded identifier when one was recorded. A device of the right
/// size whose identifier differs is reported as such (the scoring code vetoes it) rather than as missing,
/// so that a spare offered with the wrong main is refused with the reason.
fn choose_main(recorded: &RecordedMain, free: &[&BlockDev]) -> MainChoice {
    let sized: Vec<&BlockDev> = free
        .iter()
        .copied()
        .filter(|d| d.sectors == recorded.sectors)
        .collect();
    let good: Vec<&BlockDev> = sized
        .iter()
        .copied()
        .filter(|d| d.logical_block_size == recorded.logical_block_size)
        .collect();
    let pick = |v: Vec<&BlockDev>, how: MainMatch| match v.as_slice() {
        [] => None,
        [one] => Some(MainChoice::One((*one).clone(), how)),
        more => Some(MainChoice::Ambiguous(
            more.iter().map(|d| (*d).clone()).collect(),
        )),
    };
    let recorded_id = (!recorded.main_id.is_empty()).then_some(recorded.main_id.as_str());
    if let Some(id) = recorded_id {
        let same: Vec<&BlockDev> = good
            .iter()
            .copied()
            .filter(|d| d.main_id.as_deref() == Some(id))
            .collect();
        if let Some(c) = pick(same, MainMatch::Match) {
            return c;
        }
    }
    // No identifier to compare: one on neither side, or the device reports none today.
    let unknown: Vec<&BlockDev> = good
        .iter()
        .copied()
        .filter(|d| recorded_id.is_none() || d.main_id.is_none())
        .collect();
    if let Some(c) = pick(unknown, MainMatch::Unknown) {
        return c;
    }
    if let Some(d) = good.first() {
        return MainChoice::One((*d).clone(), MainMatch::IdentifierMismatch);
    }
    if let Some(d) = sized.first() {
        return MainChoice::One((*d).clone(), MainMatch::BlockSizeMismatch);
    }
    MainChoice::Missing
}

fn main_found(d: &BlockDev, how: MainMatch) -> MainFound {
    MainFound {
        device: d.display(),
        numbers: d.numbers(),
        sectors: d.sectors,
        main_id: d.main_id.clone(),
        how,
    }
}

fn describe_recorded(r: &RecordedMain) -> String {
    let id = if r.main_id.is_empty() {
        String::new()
    } else {
        format!(" and identifier {}", r.main_id)
    };
    format!(
        "{} sectors, logical block size {}{id}",
        r.sectors, r.logical_block_size
    )
}

/// Groups the probes by setup UUID, finds each setup's main among `devices` and judges it against
/// `threshold`; `now` is the current time in seconds since the epoch (for the metadata's age).
pub fn build(probes: &[Probe], devices: &[BlockDev], threshold: u8, now: u64) -> Scan {
    let mut unusable = Vec::new();
    let mut groups: BTreeMap<String, Vec<(&Probe, &Inspection)>> = BTreeMap::new();
    for p in probes {
        match &p.outcome {
            Ok(i) => groups
                .entry(i.superblock.uuid.clone())
                .or_default()
                .push((p, i)),
            Err(u) => unusable.push(Unusable {
                device: p.device.display(),
                reason: u.message(),
            }),
        }
    }
    // Devices that cannot be a main: the spares, whatever holds a spare (the dm-remap devices themselves),
    // and anything in use (held by a device-mapper table or an md array).
    let ours: BTreeSet<&str> = probes.iter().map(|p| p.device.name.as_str()).collect();
    let holding: BTreeSet<&str> = probes
        .iter()
        .flat_map(|p| p.holders.iter().map(|h| h.kernel.as_str()))
        .collect();
    let free: Vec<&BlockDev> = devices
        .iter()
        .filter(|d| {
            !ours.contains(d.name.as_str())
                && !holding.contains(d.name.as_str())
                && d.holders.is_empty()
        })
        .collect();
    let mut setups: Vec<Setup> = groups
        .into_iter()
        .map(|(uuid, members)| judge(uuid, &members, &free, devices, threshold, now))
        .collect();
    refuse_shared_mains(&mut setups);
    Scan { setups, unusable }
}

/// A device chosen as the main of several inactive setups (none of them recorded an identifier that tells
/// them apart) could be assembled twice: device-mapper lets several tables open one device. Every setup
/// involved is refused instead.
fn refuse_shared_mains(setups: &mut [Setup]) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for s in setups.iter().filter(|s| s.decision != Decision::Active) {
        if let Some(m) = &s.main {
            let n = count.entry(m.device.clone()).or_insert(0);
            *n = n.saturating_add(1);
        }
    }
    for s in setups.iter_mut().filter(|s| s.decision != Decision::Active) {
        let Some(dev) = s.main.as_ref().map(|m| m.device.clone()) else {
            continue;
        };
        if count.get(&dev).copied().unwrap_or(0) > 1 {
            let msg = format!(
                "{dev} could be the main of several setups and no recorded identifier tells which; name the \
                 right devices (dmremap assemble --device ...)"
            );
            s.notes.push(msg.clone());
            if s.decision != Decision::Refuse {
                s.decision = Decision::Refuse;
                s.reason = Some(msg);
            }
        }
    }
}

/// Judges one setup (see [`build`]).
fn judge(
    uuid: String,
    members: &[(&Probe, &Inspection)],
    free: &[&BlockDev],
    devices: &[BlockDev],
    threshold: u8,
    now: u64,
) -> Setup {
    let mut notes = Vec::new();
    let mut refusal: Option<String> = None;
    // The newest member's superblock speaks for the setup (every spare holds the whole metadata).
    let newest = members
        .iter()
        .max_by_key(|(_, i)| (i.load.last_seq, i.superblock.meta_version))
        .map(|(_, i)| *i);
    let Some(newest) = newest else {
        // `build` makes groups from members only; an empty one cannot occur, but is refused if it did.
        return empty_setup(uuid, threshold);
    };
    let sb = &newest.superblock;
    let recorded = RecordedMain {
        sectors: sb.main_sectors,
        logical_block_size: sb.main_logical_block_size,
        main_id: sb.main_id.clone(),
    };
    let member_count = sb.member_count;
    // Removed members only ever grow, so the newest metadata's list is the setup's.
    let removed_members = sb.removed_members.clone();
    let is_removed = |index: u32| removed_members.contains(&index);

    let mut spares: Vec<SpareFound> = members
        .iter()
        .map(|(p, i)| SpareFound {
            member_index: i.superblock.member_index,
            device: p.device.display(),
            numbers: p.device.numbers(),
            last_seq: i.load.last_seq,
            meta_version: i.superblock.meta_version,
            copies_current: u32::try_from(
                i.copies.iter().filter(|c| c.status == "current").count(),
            )
            .unwrap_or(0),
            shutdown: i.shutdown.status,
            removed: is_removed(i.superblock.member_index),
        })
        .collect();
    spares.sort_by(|a, b| (a.member_index, &a.device).cmp(&(b.member_index, &b.device)));

    // A removed spare stopped receiving commits when it was removed: it may record an older member count.
    for (p, i) in members
        .iter()
        .filter(|(_, i)| !is_removed(i.superblock.member_index))
    {
        let s = &i.superblock;
        if s.member_count != member_count
            || s.main_sectors != recorded.sectors
            || s.main_logical_block_size != recorded.logical_block_size
            || s.main_id != recorded.main_id
        {
            let msg = format!(
                "spare {} disagrees with the newest metadata about the setup (member count or main device)",
                p.device.display()
            );
            refusal.get_or_insert_with(|| msg.clone());
            notes.push(msg);
        }
    }
    for (p, i) in members {
        let s = &i.superblock;
        if is_removed(s.member_index) {
            notes.push(format!(
                "{} is spare {} of this setup, which was drained and removed from it: it is not part of \
                 the table",
                p.device.display(),
                s.member_index
            ));
        } else if i.load.last_seq == newest.load.last_seq && s.removed_members != removed_members {
            notes.push(format!(
                "spare {} records other removed members ({}) than the newest metadata ({}): was a removal \
                 interrupted?",
                p.device.display(),
                index_list(&s.removed_members),
                index_list(&removed_members)
            ));
        }
    }
    // The members the table needs: every index but the removed ones.
    let expected_spares = u32::try_from(removed_members.len())
        .ok()
        .and_then(|r| member_count.checked_sub(r))
        .unwrap_or(0);
    if expected_spares == 0 {
        let msg = "every spare of this setup was removed from it: there is nothing to assemble"
            .to_owned();
        refusal.get_or_insert_with(|| msg.clone());
        notes.push(msg);
    }
    let mut by_index: BTreeMap<u32, Vec<&SpareFound>> = BTreeMap::new();
    for s in spares.iter().filter(|s| !s.removed) {
        by_index.entry(s.member_index).or_default().push(s);
    }
    for (index, list) in &by_index {
        if let [first, second, ..] = list.as_slice() {
            let msg = format!(
                "{} and {} both hold spare {index} of this setup (is one a copy of the other?); detach the \
                 wrong one",
                first.device, second.device
            );
            refusal.get_or_insert_with(|| msg.clone());
            notes.push(msg);
        }
    }
    let mut missing: Vec<String> = (0..member_count)
        .filter(|i| !by_index.contains_key(i) && !is_removed(*i))
        .map(|i| format!("spare {i}"))
        .collect();

    // Active: a device-mapper device holds a spare; its table's other device is the main. A removed spare is
    // no longer part of the setup, whatever holds it now.
    let holder = members
        .iter()
        .filter(|(_, i)| !is_removed(i.superblock.member_index))
        .find_map(|(p, _)| p.holders.first());
    let spare_names: BTreeSet<&str> = members
        .iter()
        .map(|(p, _)| p.device.name.as_str())
        .collect();
    let (main, how) = if let Some(h) = holder {
        let main = h
            .slaves
            .iter()
            .find(|s| !spare_names.contains(s.as_str()))
            .and_then(|s| devices.iter().find(|d| &d.name == s));
        (
            main.map(|d| main_found(d, MainMatch::Active)),
            MainMatch::Active,
        )
    } else {
        match choose_main(&recorded, free) {
            MainChoice::One(d, how) => (Some(main_found(&d, how)), how),
            MainChoice::Ambiguous(list) => {
                let names: Vec<String> = list.iter().map(BlockDev::display).collect();
                let msg = format!(
                    "several devices could be the main ({}): same size and no identifier tells them apart; \
                     name the right devices (dmremap assemble --device ...)",
                    names.join(", ")
                );
                refusal.get_or_insert_with(|| msg.clone());
                notes.push(msg);
                (None, MainMatch::Unknown)
            }
            MainChoice::Missing => {
                missing.insert(0, "main".into());
                (None, MainMatch::Unknown)
            }
        }
    };

    // The reassembly crate's inputs. Members are the main and the spares not removed (a removed spare, found
    // or not, is neither expected nor counted: it stopped receiving commits when it was removed); the main
    // holds no metadata and is current by definition, so it counts as at the highest sequence when found.
    let distinct: Vec<&SpareFound> = by_index
        .values()
        .filter_map(|v| v.first().copied())
        .collect();
    let seqs: Vec<u64> = distinct.iter().map(|s| s.last_seq).collect();
    let summary = summarize(&seqs);
    let main_present = main.is_some();
    let spares_found = u32::try_from(distinct.len()).unwrap_or(u32::MAX);
    let newest_record = newest.entries.iter().map(|e| e.timestamp).max();
    let clean_shutdown = !distinct.is_empty() && distinct.iter().all(|s| s.shutdown == "clean");
    let inputs = Inputs {
        highest_sequence: summary.map_or(0, |s| s.highest),
        max_sequence_lag: summary.map_or(0, |s| s.max_lag),
        // The format keeps no commit time; the newest entry's timestamp is the best evidence of age, and a
        // setup without entries counts as fresh.
        age_seconds: newest_record.map_or(0, |t| now.saturating_sub(t)),
        copies_valid: distinct.iter().map(|s| s.copies_current).sum(),
        copies_total: spares_found.saturating_mul(SUPERBLOCK_COPIES as u32),
        members_found: spares_found.saturating_add(u32::from(main_present)),
        members_expected: expected_spares.saturating_add(1),
        members_at_highest: summary
            .map_or(0, |s| s.at_highest)
            .saturating_add(u32::from(main_present)),
        main_size_matches: YES,
        main_block_size_matches: if how == MainMatch::BlockSizeMismatch {
            NO
        } else {
            YES
        },
        main_identifier: match how {
            MainMatch::Match => IDENTIFIER_MATCH,
            MainMatch::IdentifierMismatch => IDENTIFIER_MISMATCH,
            MainMatch::Active if !recorded.main_id.is_empty() => IDENTIFIER_MATCH,
            _ => IDENTIFIER_UNKNOWN,
        },
        uuid_agree: YES,
        // Clean only when every spare found says so for the metadata it holds: a spare behind, a dirty one
        // (power cut while live) or one without a mark (older version) costs the 5 points.
        clean_shutdown: if clean_shutdown { YES } else { NO },
        reserved: [0; 3],
    };
    let confidence = calculate_confidence_score(&inputs);
    let verdict = assess(&inputs, threshold);

    let found_id = main
        .as_ref()
        .map(|m| m.main_id.clone().unwrap_or_else(|| "none".into()))
        .unwrap_or_default();
    let detail = |r: Reason| -> String {
        match r {
            Reason::MainIdentifierMismatch => format!(
                "{}: recorded {}, {} has {found_id}",
                r.message(),
                recorded.main_id,
                main.as_ref().map_or(String::new(), |m| m.device.clone())
            ),
            Reason::MainBlockSizeMismatch => format!(
                "{}: recorded {} bytes, {} differs",
                r.message(),
                recorded.logical_block_size,
                main.as_ref().map_or(String::new(), |m| m.device.clone())
            ),
            Reason::MemberMissing => format!("{}: {}", r.message(), missing.join(", ")),
            _ => r.message().to_owned(),
        }
    };

    let active_as = holder.map(|h| h.dm_name.clone().unwrap_or_else(|| h.kernel.clone()));
    let (decision, reason) = if active_as.is_some() {
        (Decision::Active, None)
    } else if let Some(r) = refusal {
        (Decision::Refuse, Some(r))
    } else if let Verdict::Refuse(r) = verdict {
        (Decision::Refuse, Some(detail(r)))
    } else if missing.first().map(String::as_str) == Some("main") {
        (
            Decision::Refuse,
            Some(format!(
                "{}: main device not found (no free block device of {})",
                Reason::MemberMissing.message(),
                describe_recorded(&recorded)
            )),
        )
    } else if !missing.is_empty() {
        // The scoring code may call this degraded, but the target needs every spare to serve the remaps.
        (
            Decision::Refuse,
            Some(format!(
                "{}: {} not found, and the target needs every spare of the setup",
                Reason::MemberMissing.message(),
                missing.join(", ")
            )),
        )
    } else if verdict == Verdict::Degraded {
        (Decision::Degraded, None)
    } else {
        (Decision::Assemble, None)
    };
    if verdict == Verdict::Degraded && decision == Decision::Degraded {
        notes.push(
            "degraded: a superblock copy is not current or a spare is behind; the kernel repairs the copies \
             when it loads the table"
                .into(),
        );
    }
    Setup {
        uuid,
        decision,
        reason,
        active_as,
        confidence,
        threshold,
        clean_shutdown,
        main,
        recorded_main: recorded,
        member_count,
        removed_members,
        spares,
        missing,
        notes,
        inputs,
    }
}

fn empty_setup(uuid: String, threshold: u8) -> Setup {
    Setup {
        uuid,
        decision: Decision::Refuse,
        reason: Some(Reason::NoMembers.message().into()),
        active_as: None,
        confidence: 0,
        threshold,
        clean_shutdown: false,
        main: None,
        recorded_main: RecordedMain {
            sectors: 0,
            logical_block_size: 0,
            main_id: String::new(),
        },
        member_count: 0,
        removed_members: Vec::new(),
        spares: Vec::new(),
        missing: Vec::new(),
        notes: Vec::new(),
        inputs: Inputs::default(),
    }
}

fn decision_name(d: &Decision) -> &'static str {
    match d {
        Decision::Active => "active",
        Decision::Assemble => "assemble",
        Decision::Degraded => "degraded",
        Decision::Refuse => "refuse",
    }
}

fn match_name(m: MainMatch) -> &'static str {
    match m {
        MainMatch::Match => "identifier matches",
        MainMatch::Unknown => "no identifier to compare",
        MainMatch::IdentifierMismatch => "IDENTIFIER DIFFERS",
        MainMatch::BlockSizeMismatch => "LOGICAL BLOCK SIZE DIFFERS",
        MainMatch::Active => "in the active table",
    }
}

/// The human report: a paragraph per setup, then the devices that do not load.
pub fn render_human(scan: &Scan) -> String {
    let mut out = String::new();
    if scan.setups.is_empty() && scan.unusable.is_empty() {
        out.push_str("no dm-remap-v4 spares found\n");
    }
    for s in &scan.setups {
        let _ = writeln!(out, "setup {}", s.uuid);
        let verdict = match (&s.decision, &s.reason, &s.active_as) {
            (Decision::Active, _, Some(name)) => format!("active as {name} (not assembled again)"),
            (d, Some(r), _) => format!("{}: {r}", decision_name(d)),
            (d, None, _) => decision_name(d).to_owned(),
        };
        let _ = writeln!(out, "  verdict:     {verdict}");
        let _ = writeln!(
            out,
            "  confidence:  {} (threshold {})",
            s.confidence, s.threshold
        );
        let _ = writeln!(
            out,
            "  shutdown:    {}",
            if s.clean_shutdown {
                "clean"
            } else {
                "not clean (a spare is dirty, behind or unmarked)"
            }
        );
        match &s.main {
            Some(m) => {
                let id = m.main_id.as_deref().unwrap_or("no identifier");
                let _ = writeln!(
                    out,
                    "  main:        {} ({}, {} sectors, {id}: {})",
                    m.device,
                    m.numbers,
                    m.sectors,
                    match_name(m.how)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  main:        missing (recorded: {})",
                    describe_recorded(&s.recorded_main)
                );
            }
        }
        for sp in &s.spares {
            let removed = if sp.removed {
                "; removed from the setup, not in the table"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  spare {}:     {} ({}, last commit {}, {}/{} superblock copies current, shutdown {}{removed})",
                sp.member_index,
                sp.device,
                sp.numbers,
                sp.last_seq,
                sp.copies_current,
                SUPERBLOCK_COPIES,
                sp.shutdown
            );
        }
        if !s.removed_members.is_empty() {
            let _ = writeln!(
                out,
                "  removed:     {} (drained; never missing, never in the table)",
                s.removed_members
                    .iter()
                    .map(|i| format!("spare {i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for m in s.missing.iter().filter(|m| m.starts_with("spare")) {
            let _ = writeln!(out, "  {m}:     missing");
        }
        if !s.missing.is_empty() {
            let _ = writeln!(out, "  missing:     {}", s.missing.join(", "));
        }
        for n in &s.notes {
            let _ = writeln!(out, "  note:        {n}");
        }
    }
    for u in &scan.unusable {
        let _ = writeln!(out, "unusable {}: {}", u.device, u.reason);
    }
    out
}

/// `--json`: one object, `{"setups": [...], "unusable": [...]}`.
pub fn render_json(scan: &Scan) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::tests::image;
    use dm_remap_v4_metadata::layout::{Layout, BLOCK_SIZE};
    use dm_remap_v4_metadata::superblock::MainIdentity;
    use dm_remap_v4_metadata::{EntryState, FormatParams, Record, Shutdown, Store};
    use std::path::PathBuf;

    const NOW: u64 = 1_700_000_100;

    fn dev(name: &str, minor: u32, sectors: u64, id: Option<&str>) -> BlockDev {
        BlockDev {
            name: name.into(),
            path: PathBuf::from(format!("/dev/{name}")),
            dev: (7, minor),
            sectors,
            logical_block_size: 512,
            holders: Vec::new(),
            slaves: Vec::new(),
            dm_name: None,
            main_id: id.map(str::to_owned),
        }
    }

    /// A spare of setup `uuid` (one byte repeated), member `index` of `count`, for a main of `sectors` with
    /// identifier `id`, holding `commits` one-record commits.
    /// A blank spare of 8192 sectors formatted as member `index` of `count` of setup `uuid`, whose main has
    /// `sectors` sectors and the identifier `id`.
    fn formatted(
        uuid: u8,
        index: u32,
        count: u32,
        sectors: u64,
        id: &str,
    ) -> (crate::image::MemIo, Store) {
        let mut io = crate::image::MemIo::blank(8192);
        let mut buf = vec![0u8; BLOCK_SIZE];
        let mut main_id = [0u8; 64];
        main_id[..id.len()].copy_from_slice(id.as_bytes());
        let params = FormatParams {
            uuid: [uuid; 16],
            member_index: index,
            member_count: count,
            main: MainIdentity {
                sectors,
                logical_block_size: 512,
                id: main_id,
            },
            spare_sectors: 8192,
            unit_sectors: 1,
            layout: Layout::for_spare(8192, 1).unwrap(),
        };
        let store = Store::format(&mut io, &mut buf, &params, 7).unwrap();
        (io, store)
    }

    /// One commit of one active entry: main unit `n` on spare unit `n` of member `index`.
    fn commit_one(store: &mut Store, io: &mut crate::image::MemIo, index: u32, n: u64) {
        let r = Record {
            main_unit: n,
            spare_index: index,
            spare_unit: n,
            state: EntryState::Active,
            timestamp: 1_700_000_000,
        };
        store.commit(io, &mut vec![0u8; BLOCK_SIZE], &[r]).unwrap();
    }

    #[allow(clippy::too_many_arguments)]
    fn spare(
        name: &str,
        minor: u32,
        uuid: u8,
        index: u32,
        count: u32,
        sectors: u64,
        id: &str,
        commits: u64,
    ) -> Probe {
        let (mut io, mut store) = formatted(uuid, index, count, sectors, id);
        for n in 0..commits {
            commit_one(&mut store, &mut io, index, n);
        }
        Probe {
            device: dev(name, minor, 8192, None),
            outcome: inspect::inspect(&mut io, Some(8192)),
            holders: Vec::new(),
        }
    }

    /// Spare `index` of a setup of `count` (UUID 0xaa, main of 65536 sectors, no identifier) that holds
    /// `before` one-record commits, then records the removal of the members in `removed` (a resync moving
    /// their units to the first member left), then holds `after` more commits (none if it was removed itself).
    fn removal_member(
        name: &str,
        minor: u32,
        index: u32,
        count: u32,
        removed: u32,
        before: u64,
        after: u64,
    ) -> Probe {
        let mut io = crate::image::MemIo::blank(8192);
        let mut buf = vec![0u8; BLOCK_SIZE];
        let params = FormatParams {
            uuid: [0xaa; 16],
            member_index: index,
            member_count: count,
            main: MainIdentity {
                sectors: 65536,
                logical_block_size: 512,
                id: [0; 64],
            },
            spare_sectors: 8192,
            unit_sectors: 1,
            layout: Layout::for_spare(8192, 1).unwrap(),
        };
        let is_removed = |i: u32| removed & (1 << i) != 0;
        let kept = (0..count).find(|&i| !is_removed(i)).unwrap_or(0);
        let rec = |n: u64, spare_index: u32| Record {
            main_unit: n,
            spare_index,
            spare_unit: n,
            state: EntryState::Active,
            timestamp: 1_700_000_000,
        };
        let mut store = Store::format(&mut io, &mut buf, &params, 7).unwrap();
        for n in 0..before {
            store
                .commit(
                    &mut io,
                    &mut buf,
                    &[rec(
                        n,
                        u32::try_from(n).unwrap().checked_rem(count).unwrap(),
                    )],
                )
                .unwrap();
        }
        let table: Vec<Record> = (0..before)
            .map(|n| {
                let on = u32::try_from(n).unwrap().checked_rem(count).unwrap();
                rec(n, if is_removed(on) { kept } else { on })
            })
            .collect();
        let seq = store.last_seq();
        store
            .resync(&mut io, &mut buf, seq, count, removed, table)
            .unwrap();
        if !is_removed(index) {
            for n in 0..after {
                store
                    .commit(&mut io, &mut buf, &[rec(n.wrapping_add(100), kept)])
                    .unwrap();
            }
        }
        Probe {
            device: dev(name, minor, 8192, None),
            outcome: inspect::inspect(&mut io, Some(8192)),
            holders: Vec::new(),
        }
    }

    #[test]
    fn a_removed_spare_is_listed_as_removed_and_never_missing() {
        let devices = vec![dev("loop3", 3, 65536, None)];
        // Member 1 of 3 was removed; its spare is still attached, and behind (it saw no later commits).
        let probes = vec![
            removal_member("loop5", 5, 0, 3, 0b010, 6, 2),
            removal_member("loop6", 6, 1, 3, 0b010, 6, 0),
            removal_member("loop7", 7, 2, 3, 0b010, 6, 2),
        ];
        let scan = build(&probes, &devices, 70, NOW);
        let s = only(&scan);
        assert_eq!(s.decision, Decision::Assemble, "{s:?}");
        assert!(s.missing.is_empty());
        assert_eq!(s.removed_members, [1]);
        assert_eq!(
            s.spares
                .iter()
                .map(|x| (x.member_index, x.removed, x.last_seq))
                .collect::<Vec<_>>(),
            [(0, false, 8), (1, true, 6), (2, false, 8)]
        );
        // Only the main and the two members left are expected; the removed spare's lag does not count.
        assert_eq!(
            (
                s.inputs.members_expected,
                s.inputs.members_found,
                s.inputs.members_at_highest,
                s.inputs.max_sequence_lag,
                s.inputs.copies_total
            ),
            (3, 3, 3, 0, 4)
        );
        assert_eq!(s.confidence, 85, "as a complete two-spare setup");
        let p = crate::assemble::plan(s, None).unwrap();
        assert_eq!(p.line(), "0 65536 dm-remap-v4 7:3 7:5 2 spare 7:7");
        let text = render_human(&scan);
        assert!(
            text.contains(
                "  spare 1:     /dev/loop6 (7:6, last commit 6, 2/2 superblock copies current, shutdown none; \
                 removed from the setup, not in the table)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  removed:     spare 1 (drained; never missing, never in the table)\n")
        );
        assert!(
            !text.contains("missing:") && !text.contains(":     missing"),
            "{text}"
        );
        assert!(s
            .notes
            .iter()
            .any(|n| n
                .contains("/dev/loop6 is spare 1 of this setup, which was drained and removed")));
        let json: serde_json::Value = serde_json::from_str(&render_json(&scan).unwrap()).unwrap();
        let j = &json["setups"][0];
        assert_eq!(j["removed_members"], serde_json::json!([1]));
        assert_eq!(j["spares"][1]["removed"], true);
        assert_eq!(j["spares"][0]["removed"], false);
        assert_eq!(j["missing"], serde_json::json!([]));

        // Without the removed spare: nothing is missing either.
        let without = [probes[0].clone(), probes[2].clone()];
        let scan = build(&without, &devices, 70, NOW);
        let s = only(&scan);
        assert_eq!(s.decision, Decision::Assemble, "{s:?}");
        assert!(s.missing.is_empty());
        assert_eq!(
            crate::assemble::plan(s, None).unwrap().line(),
            "0 65536 dm-remap-v4 7:3 7:5 2 spare 7:7"
        );

        // A member that was not removed is still missing, and the removed one is not named with it.
        let scan = build(&probes[..2], &devices, 70, NOW);
        let s = only(&scan);
        assert_eq!(s.missing, ["spare 2"]);
        assert_eq!(s.decision, Decision::Refuse);
        assert_eq!((s.inputs.members_expected, s.inputs.members_found), (3, 2));
    }

    #[test]
    fn removal_edge_cases() {
        let devices = vec![dev("loop3", 3, 65536, None)];
        // Interrupted removal: member 0 recorded it, member 1 (at the same commit) did not. The newest
        // metadata decides, and the disagreement is noted.
        let probes = vec![
            removal_member("loop5", 5, 0, 3, 0b100, 4, 0),
            removal_member("loop6", 6, 1, 3, 0, 4, 0),
        ];
        let scan = build(&probes, &devices, 70, NOW);
        let s = only(&scan);
        let noted = s
            .notes
            .iter()
            .any(|n| n.contains("was a removal interrupted?"));
        assert!(noted, "{:?}", s.notes);
        // A removed spare now held by some other device does not make the setup active.
        let mut held = vec![
            removal_member("loop5", 5, 0, 2, 0b10, 3, 1),
            removal_member("loop6", 6, 1, 2, 0b10, 3, 0),
        ];
        held[1].holders = vec![Holder {
            kernel: "dm-4".into(),
            dm_name: Some("other".into()),
            slaves: vec!["loop6".into()],
        }];
        let scan = build(&held, &devices, 70, NOW);
        let s = only(&scan);
        assert_eq!(s.decision, Decision::Assemble, "{s:?}");
        assert_eq!(s.main.as_ref().unwrap().device, "/dev/loop3");
        // Every member removed: nothing to assemble.
        let gone = vec![removal_member("loop5", 5, 0, 1, 0b1, 0, 0)];
        let scan = build(&gone, &devices, 70, NOW);
        let s = only(&scan);
        assert_eq!(s.decision, Decision::Refuse);
        assert!(s
            .reason
            .as_deref()
            .unwrap()
            .starts_with("every spare of this setup was removed"));
        assert!(s.missing.is_empty());
    }

    /// Member `index` of `count` of setup 0xaa (main of 65536 sectors with identifier `loop:/x/a.img`)
    /// holding three one-record commits, then given the shutdown marks `marks` in order, then `after` more
    /// commits: the image a clean or a dirty shutdown leaves.
    fn marked_spare(index: u32, count: u32, marks: &[Shutdown], after: u64) -> Probe {
        let (mut io, mut store) = formatted(0xaa, index, count, 65536, "loop:/x/a.img");
        let mut buf = vec![0u8; BLOCK_SIZE];
        for n in 0..3 {
            commit_one(&mut store, &mut io, index, n);
        }
        for &m in marks {
            store.write_shutdown_mark(&mut io, &mut buf, m).unwrap();
        }
        for n in 3..after.saturating_add(3) {
            commit_one(&mut store, &mut io, index, n);
        }
        let minor = index.saturating_add(5);
        Probe {
            device: dev(&format!("loop{minor}"), minor, 8192, None),
            outcome: inspect::inspect(&mut io, Some(8192)),
            holders: Vec::new(),
        }
    }

    #[test]
    fn a_clean_shutdown_scores_100_and_a_dirty_one_does_not() {
        use Shutdown::{Clean, Dirty};
        let devices = vec![dev("loop3", 3, 65536, Some("loop:/x/a.img"))];
        let judged = |probes: Vec<Probe>| only(&build(&probes, &devices, 70, NOW)).clone();
        // Marked dirty when it went live, clean when it was removed.
        let clean = judged(vec![marked_spare(0, 1, &[Dirty, Clean], 0)]);
        assert_eq!(
            (
                clean.confidence,
                clean.clean_shutdown,
                clean.spares[0].shutdown
            ),
            (100, true, "clean"),
            "{clean:?}"
        );
        assert_eq!(clean.inputs.clean_shutdown, YES);
        assert_eq!(clean.decision, Decision::Assemble);
        let text = render_human(&Scan {
            setups: vec![clean.clone()],
            unusable: Vec::new(),
        });
        assert!(
            text.contains("  confidence:  100 (threshold 70)\n  shutdown:    clean\n"),
            "{text}"
        );
        assert!(
            text.contains("2/2 superblock copies current, shutdown clean)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::to_value(&clean).unwrap();
        assert_eq!(json["clean_shutdown"], true);
        assert_eq!(json["spares"][0]["shutdown"], "clean");
        // Power cut while live: the dirty mark is the newest; or a clean mark followed by a change (a lost
        // dirty mark); or no mark at all (an older version): 95, still assembled.
        for (marks, after, status) in [
            (&[Clean, Dirty][..], 0, "dirty"),
            (&[Dirty][..], 2, "dirty"),
            (&[Dirty, Clean][..], 1, "stale"),
            (&[][..], 0, "none"),
        ] {
            let s = judged(vec![marked_spare(0, 1, marks, after)]);
            assert_eq!(
                (s.confidence, s.clean_shutdown, s.spares[0].shutdown),
                (95, false, status),
                "{marks:?} then {after} commits"
            );
            assert_eq!(s.decision, Decision::Assemble);
            assert!(render_human(&Scan {
                setups: vec![s],
                unusable: Vec::new()
            })
            .contains("  shutdown:    not clean"));
        }
        // Two spares: clean only if both are.
        let both = judged(vec![
            marked_spare(0, 2, &[Dirty, Clean], 0),
            marked_spare(1, 2, &[Dirty, Clean], 0),
        ]);
        assert_eq!((both.confidence, both.clean_shutdown), (100, true));
        let one = judged(vec![
            marked_spare(0, 2, &[Dirty, Clean], 0),
            marked_spare(1, 2, &[Dirty], 0),
        ]);
        assert_eq!((one.confidence, one.clean_shutdown), (95, false));
    }

    fn only(scan: &Scan) -> &Setup {
        assert_eq!(scan.setups.len(), 1, "{scan:?}");
        &scan.setups[0]
    }

    #[test]
    fn two_setups_with_equal_mains_are_told_apart_by_identifier() {
        let probes = vec![
            spare("loop5", 5, 0xaa, 0, 1, 65536, "loop:/x/a.img", 2),
            spare("loop1", 1, 0xbb, 0, 1, 65536, "loop:/x/b.img", 1),
        ];
        let devices = vec![
            dev("loop0", 0, 65536, Some("loop:/x/b.img")),
            probes[1].device.clone(),
            dev("loop2", 2, 32768, Some("loop:/x/other.img")),
            dev("loop3", 3, 65536, Some("loop:/x/a.img")),
            probes[0].device.clone(),
        ];
        let scan = build(&probes, &devices, 70, NOW);
        assert_eq!(scan.setups.len(), 2);
        let a = &scan.setups[0];
        assert_eq!(a.uuid, "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa");
        assert_eq!(a.decision, Decision::Assemble, "{a:?}");
        let m = a.main.as_ref().unwrap();
        assert_eq!((m.device.as_str(), m.how), ("/dev/loop3", MainMatch::Match));
        assert_eq!(a.spares.len(), 1);
        assert_eq!(a.spares[0].device, "/dev/loop5");
        assert_eq!(a.spares[0].last_seq, 2);
        // Everything present and current, identifier matches; no clean-shutdown record: 100 - 5.
        assert_eq!(a.confidence, 95);
        let b = &scan.setups[1];
        assert_eq!(b.main.as_ref().unwrap().device, "/dev/loop0");
        assert_eq!(b.decision, Decision::Assemble);
        assert!(render_human(&scan).contains(
            "main:        /dev/loop3 (7:3, 65536 sectors, loop:/x/a.img: identifier matches)"
        ));
    }

    #[test]
    fn a_spare_offered_with_another_setups_main_is_refused() {
        let probes = vec![spare("loop5", 5, 0xaa, 0, 1, 65536, "loop:/x/a.img", 1)];
        let devices = vec![dev("loop0", 0, 65536, Some("loop:/x/b.img"))];
        let s = build(&probes, &devices, 70, NOW);
        let s = only(&s);
        assert_eq!(s.decision, Decision::Refuse);
        assert_eq!(s.confidence, 0, "a veto");
        assert_eq!(s.main.as_ref().unwrap().how, MainMatch::IdentifierMismatch);
        let r = s.reason.as_deref().unwrap();
        assert!(r.starts_with("main device WWN/serial differs from the recorded one: recorded loop:/x/a.img, /dev/loop0 has loop:/x/b.img"), "{r}");
    }

    #[test]
    fn missing_main_and_missing_spare_are_reported_and_refused() {
        let probes = vec![spare("loop5", 5, 0xaa, 0, 2, 65536, "loop:/x/a.img", 1)];
        let devices = vec![dev("loop3", 3, 65536, Some("loop:/x/a.img"))];
        let s = build(&probes, &devices, 70, NOW);
        let s = only(&s);
        assert_eq!(s.missing, ["spare 1"]);
        assert_eq!(s.decision, Decision::Refuse);
        // 30 copies + 20 members + 6 agreement + 10 lag + 10 id + 0 clean + 5 age: above 70, yet refused.
        assert_eq!(s.confidence, 81);
        assert!(s
            .reason
            .as_deref()
            .unwrap()
            .starts_with("member missing: spare 1 not found"));
        assert!(render_human(&build(&probes, &devices, 70, NOW)).contains("  spare 1:     missing"));

        let s = build(&probes, &[], 70, NOW);
        let s = only(&s);
        assert_eq!(s.missing, ["main", "spare 1"]);
        assert!(s.main.is_none());
        assert_eq!(s.decision, Decision::Refuse);
        assert_eq!(
            s.reason.as_deref(),
            Some("member missing: main, spare 1"),
            "below the threshold: the crate's reason"
        );
    }

    #[test]
    fn a_complete_two_spare_setup_assembles_and_a_stale_one_is_degraded() {
        let probes = vec![
            spare("loop6", 6, 0xaa, 1, 2, 65536, "", 3),
            spare("loop5", 5, 0xaa, 0, 2, 65536, "", 3),
        ];
        let devices = vec![dev("loop3", 3, 65536, None)];
        let s = build(&probes, &devices, 70, NOW);
        let s = only(&s);
        assert_eq!(s.decision, Decision::Assemble, "{s:?}");
        assert_eq!(s.main.as_ref().unwrap().how, MainMatch::Unknown);
        assert_eq!(
            s.spares
                .iter()
                .map(|x| (x.member_index, x.device.as_str()))
                .collect::<Vec<_>>(),
            [(0, "/dev/loop5"), (1, "/dev/loop6")]
        );
        assert_eq!(s.confidence, 85, "no identifier: 10 points fewer");
        let stale = vec![
            spare("loop6", 6, 0xaa, 1, 2, 65536, "", 2),
            spare("loop5", 5, 0xaa, 0, 2, 65536, "", 3),
        ];
        let s = build(&stale, &devices, 70, NOW);
        assert_eq!(only(&s).decision, Decision::Degraded);
        assert_eq!(only(&s).inputs.max_sequence_lag, 1);
        // A higher threshold refuses it, with the first deficiency as the reason.
        let s = build(&stale, &devices, 90, NOW);
        assert_eq!(only(&s).decision, Decision::Refuse);
        assert_eq!(only(&s).reason.as_deref(), Some("member metadata is stale"));
    }

    #[test]
    fn ambiguous_mains_duplicates_and_active_setups() {
        let probes = vec![spare("loop5", 5, 0xaa, 0, 1, 65536, "", 1)];
        let devices = vec![dev("loop3", 3, 65536, None), dev("loop4", 4, 65536, None)];
        let s = build(&probes, &devices, 70, NOW);
        assert_eq!(only(&s).decision, Decision::Refuse);
        assert!(only(&s)
            .reason
            .as_deref()
            .unwrap()
            .starts_with("several devices could be the main (/dev/loop3, /dev/loop4)"));

        // A held device is not free: the other one is the main.
        let mut held = devices.clone();
        held[0].holders = vec!["dm-0".into()];
        assert_eq!(
            only(&build(&probes, &held, 70, NOW))
                .main
                .as_ref()
                .unwrap()
                .device,
            "/dev/loop4"
        );

        // Two setups without identifiers, one device of their mains' size: neither may take it.
        let two = vec![
            spare("loop5", 5, 0xaa, 0, 1, 65536, "", 1),
            spare("loop6", 6, 0xbb, 0, 1, 65536, "", 1),
        ];
        let s = build(&two, &devices[..1], 70, NOW);
        assert_eq!(s.setups.len(), 2);
        for setup in &s.setups {
            assert_eq!(setup.decision, Decision::Refuse);
            assert!(setup
                .reason
                .as_deref()
                .unwrap()
                .starts_with("/dev/loop3 could be the main of several setups"));
        }

        let dup = vec![
            spare("loop5", 5, 0xaa, 0, 1, 65536, "", 1),
            spare("loop6", 6, 0xaa, 0, 1, 65536, "", 1),
        ];
        let s = build(&dup, &devices[..1], 70, NOW);
        assert!(only(&s)
            .reason
            .as_deref()
            .unwrap()
            .contains("both hold spare 0"));

        let mut active = probes.clone();
        active[0].holders = vec![Holder {
            kernel: "dm-1".into(),
            dm_name: Some("r0".into()),
            slaves: vec!["loop3".into(), "loop5".into()],
        }];
        let s = build(&active, &devices, 70, NOW);
        let s = only(&s);
        assert_eq!(s.decision, Decision::Active);
        assert_eq!(s.active_as.as_deref(), Some("r0"));
        assert_eq!(s.main.as_ref().unwrap().device, "/dev/loop3");
        assert!(!s.assemblable());
    }

    #[test]
    fn unloadable_spares_are_listed_and_json_has_the_fields() {
        let mut io = image(&[]);
        crate::inspect::tests::corrupt_copy(&mut io, 0);
        crate::inspect::tests::corrupt_copy(&mut io, 1);
        let bad = Probe {
            device: dev("loop9", 9, 8192, None),
            outcome: inspect::inspect(&mut io, Some(8192)),
            holders: Vec::new(),
        };
        let scan = build(&[bad], &[], 70, NOW);
        assert!(scan.setups.is_empty());
        assert_eq!(scan.unusable[0].device, "/dev/loop9");
        assert!(scan.unusable[0]
            .reason
            .contains("every superblock copy is corrupt"));
        let probes = vec![spare("loop5", 5, 0xaa, 0, 1, 65536, "loop:/a", 1)];
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&build(&probes, &[], 70, NOW)).unwrap()).unwrap();
        let s = &json["setups"][0];
        assert_eq!(s["decision"], "refuse");
        assert_eq!(s["missing"][0], "main");
        assert_eq!(s["spares"][0]["member_index"], 0);
        assert_eq!(s["recorded_main"]["main_id"], "loop:/a");
        assert!(s["main"].is_null());
    }
}
