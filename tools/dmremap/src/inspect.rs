//! `dmremap inspect`: load a spare's metadata region read-only with the format crate and describe it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dm_remap_v4_metadata::block::{self, as_block};
use dm_remap_v4_metadata::layout::{Layout, BLOCK_SIZE, SECTORS_PER_BLOCK, SUPERBLOCK_COPIES};
use dm_remap_v4_metadata::store::CopyStatus;
use dm_remap_v4_metadata::superblock::{Superblock, SuperblockFault};
use dm_remap_v4_metadata::{
    BlockIo, EntryState, Error, Expect, Record, RecordSink, ScrubLoad, ShutdownStatus, Store,
};
use serde::Serialize;

use crate::image::SECTOR_BYTES;
use crate::tabular;

/// The live remap table, built the way the kernel builds it: a later record for a unit replaces the earlier
/// one, a cleared record drops the entry.
#[derive(Debug, Default)]
pub struct Table(pub BTreeMap<u64, Record>);

impl RecordSink for Table {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        if rec.state == EntryState::Cleared {
            self.0.remove(&rec.main_unit);
        } else {
            self.0.insert(rec.main_unit, *rec);
        }
        Ok(())
    }
}

/// Identity and geometry from the loaded superblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuperblockInfo {
    /// Format version.
    pub version: u32,
    /// Setup UUID, `8-4-4-4-12` hex.
    pub uuid: String,
    /// Metadata version (grows with every superblock rewrite).
    pub meta_version: u64,
    /// Sequence number of the last commit in the checkpoint.
    pub commit_seq: u64,
    /// This spare's index among the setup's spares.
    pub member_index: u32,
    /// Number of spares in the setup (removed members included: their indices are never reused).
    pub member_count: u32,
    /// Members removed from the setup (drained), by index, ascending; may include this spare's own index.
    pub removed_members: Vec<u32>,
    /// Main device size in sectors.
    pub main_sectors: u64,
    /// Main device logical block size in bytes.
    pub main_logical_block_size: u32,
    /// Main device identifier: the text if it is printable ASCII, else hex; empty when unknown.
    pub main_id: String,
    /// Size of the metadata region in sectors.
    pub region_sectors: u64,
    /// First sector of the spare pool.
    pub pool_start: u64,
    /// Units in the spare pool.
    pub pool_units: u64,
    /// Unit size in sectors.
    pub unit_sectors: u64,
    /// Unit size in bytes.
    pub unit_bytes: u64,
    /// Entry capacity of each checkpoint area.
    pub capacity: u64,
    /// Journal size in blocks.
    pub journal_blocks: u64,
    /// Checkpoint area holding the current checkpoint: `A` or `B`.
    pub active_area: String,
    /// Compatible feature bits.
    pub compat: u64,
    /// Incompatible feature bits.
    pub incompat: u64,
}

/// What loading found beyond the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoadInfo {
    /// Superblock copy that was loaded.
    pub chosen_copy: usize,
    /// Entries replayed from the checkpoint.
    pub checkpoint_entries: u64,
    /// Commits replayed from the journal.
    pub journal_commits: u64,
    /// Records replayed from the journal.
    pub journal_records: u64,
    /// Journal blocks in use.
    pub journal_blocks_used: u64,
    /// Sequence number of the last commit loaded.
    pub last_seq: u64,
}

/// The shutdown mark kept with the scrub state: was the setup shut down cleanly at the metadata loaded?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShutdownInfo {
    /// `clean` (a clean mark for exactly the loaded metadata version and commit sequence), `dirty` (the setup
    /// was live or changing when it stopped: a crash or power cut), `stale` (a clean mark for other metadata)
    /// or `none` (no mark: never marked, or written by an older version).
    pub status: &'static str,
    /// The metadata version the mark recorded.
    pub meta_version: Option<u64>,
    /// The commit sequence the mark recorded.
    pub commit_seq: Option<u64>,
}

impl ShutdownInfo {
    fn from_load(loaded: &Result<ScrubLoad, Error>, meta_version: u64, last_seq: u64) -> Self {
        let mark = loaded.as_ref().map(|l| l.mark).unwrap_or_default();
        let status = mark.status(meta_version, last_seq);
        let recorded = status != ShutdownStatus::None;
        Self {
            status: status.name(),
            meta_version: recorded.then_some(mark.meta_version),
            commit_seq: recorded.then_some(mark.commit_seq),
        }
    }

    /// The human report's line (without the label).
    fn line(&self) -> String {
        let at = match (self.meta_version, self.commit_seq) {
            (Some(v), Some(s)) => format!(" (marked at version {v}, commit {s})"),
            _ => String::new(),
        };
        let what = match self.status {
            "clean" => "clean",
            "dirty" => "dirty (not shut down cleanly)",
            "stale" => "dirty (the clean mark is for other metadata)",
            _ => "unknown (no mark)",
        };
        format!("{what}{at}")
    }
}

/// The background scrub's saved state (blocks 1 and 9 of the region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScrubInfo {
    /// `saved` (a valid state was found), `none` (no copy holds one: the scrub starts at unit 0) or
    /// `unreadable` (neither copy could be read).
    pub status: &'static str,
    /// Copies unreadable, damaged or of another setup (an older valid copy is not counted).
    pub bad_copies: u32,
    /// Sequence number of the state (grows by one with every save).
    pub seq: Option<u64>,
    /// Copy the state was read from (0: block 1, 1: block 9).
    pub copy: Option<usize>,
    /// The next main-device unit the scrub reads.
    pub position: Option<u64>,
    /// Full passes over the main device completed.
    pub passes: Option<u64>,
    /// Units the scrub found unreadable (recorded as pending), over every pass.
    pub found_pending: Option<u64>,
    /// Units the scrub relocated because they kept reading slowly, over every pass.
    pub relocated: Option<u64>,
    /// Seconds since the epoch when the current pass began (0: none began).
    pub pass_started: Option<u64>,
    /// Scrub rate in KiB/s when saved.
    pub rate_kib: Option<u32>,
    /// Whether the scrub was running when saved (it starts again when the table is loaded).
    pub running: Option<bool>,
}

impl ScrubInfo {
    fn from_load(loaded: Result<ScrubLoad, Error>) -> Self {
        let empty = Self {
            status: "none",
            bad_copies: 0,
            seq: None,
            copy: None,
            position: None,
            passes: None,
            found_pending: None,
            relocated: None,
            pass_started: None,
            rate_kib: None,
            running: None,
        };
        let Ok(l) = loaded else {
            return Self {
                status: "unreadable",
                bad_copies: 2,
                ..empty
            };
        };
        let Some(st) = l.state else {
            return Self {
                bad_copies: l.bad_copies,
                ..empty
            };
        };
        Self {
            status: "saved",
            bad_copies: l.bad_copies,
            seq: Some(l.seq),
            copy: l.copy,
            position: Some(st.position),
            passes: Some(st.passes),
            found_pending: Some(st.found_pending),
            relocated: Some(st.relocated),
            pass_started: Some(st.pass_started),
            rate_kib: Some(st.rate_kib),
            running: Some(st.running),
        }
    }

    /// The human report's line (without the label).
    fn line(&self) -> String {
        let bad = match self.bad_copies {
            0 => String::new(),
            1 => "; 1 copy damaged".into(),
            n => format!("; {n} copies damaged"),
        };
        match (self.status, self.position) {
            ("saved", Some(position)) => format!(
                "{}, at unit {position}, {} passes, {} found pending, {} relocated, {} KiB/s \
                 (pass started {}, save {} in copy {}){bad}",
                if self.running == Some(true) {
                    "running"
                } else {
                    "stopped"
                },
                opt(self.passes),
                opt(self.found_pending),
                opt(self.relocated),
                opt(self.rate_kib),
                opt(self.pass_started),
                opt(self.seq),
                opt(self.copy),
            ),
            ("unreadable", _) => "state unreadable (both copies)".into(),
            _ => format!("no saved state (starts at unit 0){bad}"),
        }
    }
}

/// One superblock copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyInfo {
    /// Copy number (0 or 1).
    pub index: usize,
    /// First sector of the copy on the spare.
    pub sector: u64,
    /// `current`, `stale`, `conflict`, `corrupt`, `blank`, `foreign` or `unreadable` after a load; for a region
    /// that does not load also `valid`, `unsupported_version` or `unknown_incompat_features`.
    pub status: &'static str,
    /// The copy's metadata version, when its checksum is valid.
    pub meta_version: Option<u64>,
}

/// One live remap entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryInfo {
    /// Unit index on the main device.
    pub main_unit: u64,
    /// First sector of the unit on the main device (`main_unit * unit_sectors`).
    pub main_sector: u64,
    /// `active` (the data lives on the spare) or `pending` (a read failed on main; no spare unit yet).
    pub state: &'static str,
    /// Spare holding the unit (`null` when pending).
    pub spare_index: Option<u32>,
    /// Unit in that spare's pool (`null` when pending).
    pub spare_unit: Option<u64>,
    /// Sector of that unit on the spare, `pool_start + spare_unit * unit_sectors` (`null` when pending or when
    /// the entry names another spare of the setup).
    pub spare_sector: Option<u64>,
    /// When the remap was made or last changed, in seconds since the epoch.
    pub timestamp: u64,
}

/// Everything `inspect` reports about a loadable region.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Size of the spare device or image in sectors, when known.
    pub size_sectors: Option<u64>,
    /// The loaded superblock.
    pub superblock: SuperblockInfo,
    /// What the load replayed.
    pub load: LoadInfo,
    /// Every superblock copy.
    pub copies: Vec<CopyInfo>,
    /// The background scrub's saved state.
    pub scrub: ScrubInfo,
    /// The shutdown mark, judged against the loaded metadata.
    pub shutdown: ShutdownInfo,
    /// Active entries.
    pub active: usize,
    /// Pending entries.
    pub pending: usize,
    /// The live entries, by main unit.
    pub entries: Vec<EntryInfo>,
    /// The raw records, for `check`.
    #[serde(skip)]
    pub records: Vec<Record>,
}

/// Why a region cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unloadable {
    /// The device is too small to hold both superblock copies.
    TooSmall {
        /// Its size in sectors.
        sectors: u64,
    },
    /// The format crate refused the region.
    Format {
        /// The crate's error.
        error: Error,
        /// What each superblock copy holds.
        copies: Vec<CopyInfo>,
    },
}

impl Unloadable {
    /// One sentence: what is wrong (the caller puts the device name in front).
    pub fn message(&self) -> String {
        match self {
            Self::TooSmall { sectors } => format!(
                "too small ({sectors} sectors) to hold dm-remap-v4 metadata; is it the right device?"
            ),
            Self::Format { error, .. } => match error {
                Error::Blank => "holds no dm-remap-v4 metadata (all zeros); the kernel formats it \
                                 when a table is loaded with it as the spare"
                    .into(),
                Error::Foreign => "holds data that is not dm-remap-v4 metadata; is it the right device?"
                    .into(),
                Error::SuperblockCorrupt => "every superblock copy is corrupt; the metadata cannot be \
                                             loaded and the kernel refuses this spare"
                    .into(),
                Error::UnsupportedVersion | Error::IncompatFeatures => {
                    format!("{error}: it was written by a newer dm-remap-v4; use a newer dmremap")
                }
                Error::ReadFailed | Error::UnstableRead => {
                    format!("{error}; check the device (dmesg) and that nothing is writing to it")
                }
                other => format!("{other}; the kernel refuses this spare"),
            },
        }
    }

    /// Whether the failure is an I/O error rather than a verdict on the data.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            Self::Format {
                error: Error::ReadFailed | Error::UnstableRead,
                ..
            }
        )
    }
}

/// Sectors a device needs to hold both superblock copies.
fn min_sectors() -> u64 {
    Layout::superblock_sector(SUPERBLOCK_COPIES.saturating_sub(1))
        .unwrap_or(0)
        .saturating_add(SECTORS_PER_BLOCK)
}

/// Loads the region on `io` read-only (the format crate's loader never writes) and describes it.
/// `size_sectors` is the device's size, when known.
pub fn inspect<I: BlockIo>(
    io: &mut I,
    size_sectors: Option<u64>,
) -> Result<Inspection, Unloadable> {
    if let Some(sectors) = size_sectors.filter(|&s| s < min_sectors()) {
        return Err(Unloadable::TooSmall { sectors });
    }
    let mut buf = vec![0u8; BLOCK_SIZE];
    let expect = Expect {
        uuid: None,
        main: None,
        member_index: None,
    };
    let mut table = Table::default();
    let loaded = Store::load(io, &mut buf, &expect, session_salt(), &mut table);
    let raw = raw_copies(io);
    let (mut store, report) = match loaded {
        Ok(ok) => ok,
        Err(error) => return Err(Unloadable::Format { error, copies: raw }),
    };
    // Reads only: loading the scrub state never writes.
    let scrub_load = store.load_scrub_state(io, &mut buf);
    let sb = store.superblock();
    let shutdown = ShutdownInfo::from_load(&scrub_load, sb.meta_version, store.last_seq());
    let scrub = ScrubInfo::from_load(scrub_load);
    let copies = raw
        .into_iter()
        .zip(report.copies)
        .map(|(c, status)| CopyInfo {
            status: copy_status_name(status),
            ..c
        })
        .collect();
    let records: Vec<Record> = table.0.into_values().collect();
    let entries: Vec<EntryInfo> = records.iter().map(|r| entry_info(sb, r)).collect();
    let active = entries.iter().filter(|e| e.state == "active").count();
    Ok(Inspection {
        size_sectors,
        superblock: superblock_info(sb),
        load: LoadInfo {
            chosen_copy: report.chosen,
            checkpoint_entries: report.checkpoint_entries,
            journal_commits: report.journal_commits,
            journal_records: report.journal_records,
            journal_blocks_used: report.journal_blocks_used,
            last_seq: report.last_seq,
        },
        copies,
        scrub,
        shutdown,
        active,
        pending: entries.len().saturating_sub(active),
        entries,
        records,
    })
}

/// A salt for the session: only used if the store later writes (repair rewrites superblocks, which keep
/// their nonce), but the format crate asks for a random one.
pub fn session_salt() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

/// What each superblock copy holds on its own, without choosing between them.
pub fn raw_copies<I: BlockIo>(io: &mut I) -> Vec<CopyInfo> {
    let mut buf = vec![0u8; BLOCK_SIZE];
    (0..SUPERBLOCK_COPIES)
        .map(|index| {
            let sector = Layout::superblock_sector(index).unwrap_or(0);
            let (status, meta_version) = match as_block(&mut buf) {
                Ok(blk) => match block::read(io, sector, blk) {
                    Err(_) => ("unreadable", None),
                    Ok(()) => match Superblock::decode(blk) {
                        Ok(sb) if usize::try_from(sb.copy_index) == Ok(index) => {
                            ("valid", Some(sb.meta_version))
                        }
                        Ok(_) | Err(SuperblockFault::Corrupt) => ("corrupt", None),
                        Err(SuperblockFault::Zero) => ("blank", None),
                        Err(SuperblockFault::Foreign) => ("foreign", None),
                        Err(SuperblockFault::Version) => ("unsupported_version", None),
                        Err(SuperblockFault::Incompat) => ("unknown_incompat_features", None),
                    },
                },
                Err(_) => ("unreadable", None),
            };
            CopyInfo {
                index,
                sector,
                status,
                meta_version,
            }
        })
        .collect()
}

/// The name used in reports for a copy's status.
pub fn copy_status_name(s: CopyStatus) -> &'static str {
    match s {
        CopyStatus::Current => "current",
        CopyStatus::Stale => "stale",
        CopyStatus::Blank => "blank",
        CopyStatus::Foreign => "foreign",
        CopyStatus::Corrupt => "corrupt",
        CopyStatus::Unreadable => "unreadable",
        CopyStatus::Conflict => "conflict",
    }
}

/// The UUID as `8-4-4-4-12` lowercase hex.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The main device identifier: printable ASCII as text, anything else as hex; trailing zeros dropped.
fn format_main_id(id: &[u8]) -> String {
    let len = id
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |p| p.saturating_add(1));
    let used = id.get(..len).unwrap_or(&[]);
    if used.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        used.iter().map(|&b| char::from(b)).collect()
    } else {
        used.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

fn superblock_info(sb: &Superblock) -> SuperblockInfo {
    SuperblockInfo {
        version: sb.version,
        uuid: format_uuid(&sb.uuid),
        meta_version: sb.meta_version,
        commit_seq: sb.commit_seq,
        member_index: sb.member_index,
        member_count: sb.member_count,
        removed_members: removed_list(sb.removed_members),
        main_sectors: sb.main.sectors,
        main_logical_block_size: sb.main.logical_block_size,
        main_id: format_main_id(&sb.main.id),
        region_sectors: sb.region_sectors,
        pool_start: sb.pool_start,
        pool_units: sb.pool_units,
        unit_sectors: sb.unit_sectors,
        unit_bytes: sb.unit_sectors.saturating_mul(SECTOR_BYTES),
        capacity: sb.capacity,
        journal_blocks: sb.journal_blocks,
        active_area: if sb.active_area == 0 { "A" } else { "B" }.into(),
        compat: sb.compat,
        incompat: sb.incompat,
    }
}

/// The member indices whose bits are set in a removed-members mask, ascending.
pub fn removed_list(mask: u32) -> Vec<u32> {
    (0..u32::BITS)
        .filter(|&i| dm_remap_v4_metadata::superblock::is_removed(mask, i))
        .collect()
}

/// A list of member indices for a report: `1, 3`, or `none`.
pub fn index_list(indices: &[u32]) -> String {
    if indices.is_empty() {
        return "none".into();
    }
    indices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sector of unit `spare_unit` of this spare's pool; `None` outside the pool or past `u64`.
pub fn spare_sector(sb: &Superblock, spare_unit: u64) -> Option<u64> {
    if spare_unit >= sb.pool_units {
        return None;
    }
    spare_unit
        .checked_mul(sb.unit_sectors)
        .and_then(|s| s.checked_add(sb.pool_start))
}

fn entry_info(sb: &Superblock, r: &Record) -> EntryInfo {
    let active = r.state == EntryState::Active;
    let here = active && r.spare_index == sb.member_index;
    EntryInfo {
        main_unit: r.main_unit,
        main_sector: r.main_unit.saturating_mul(sb.unit_sectors),
        state: if active { "active" } else { "pending" },
        spare_index: active.then_some(r.spare_index),
        spare_unit: active.then_some(r.spare_unit),
        spare_sector: if here {
            spare_sector(sb, r.spare_unit)
        } else {
            None
        },
        timestamp: r.timestamp,
    }
}

fn opt(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The human report: a short header, then one table line per entry.
pub fn render_human(device: &str, i: &Inspection) -> String {
    let sb = &i.superblock;
    let mut out = String::new();
    let size = i
        .size_sectors
        .map_or_else(String::new, |s| format!(" ({s} sectors)"));
    let _ = writeln!(out, "spare:             {device}{size}");
    let _ = writeln!(out, "uuid:              {}", sb.uuid);
    let _ = writeln!(
        out,
        "versions:          format {}, metadata {}, last commit {}",
        sb.version, sb.meta_version, i.load.last_seq
    );
    let own = if sb.removed_members.contains(&sb.member_index) {
        " (removed from the setup)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "member:            {} of {}{own}",
        sb.member_index, sb.member_count
    );
    let _ = writeln!(
        out,
        "removed members:   {}",
        index_list(&sb.removed_members)
    );
    let id = if sb.main_id.is_empty() {
        String::new()
    } else {
        format!(", id {}", sb.main_id)
    };
    let _ = writeln!(
        out,
        "main device:       {} sectors, logical block {} bytes{id}",
        sb.main_sectors, sb.main_logical_block_size
    );
    let _ = writeln!(
        out,
        "unit:              {} sectors ({} bytes)",
        sb.unit_sectors, sb.unit_bytes
    );
    let _ = writeln!(
        out,
        "pool:              {} units from sector {}",
        sb.pool_units, sb.pool_start
    );
    let _ = writeln!(
        out,
        "checkpoint:        area {}, {} of {} entries",
        sb.active_area, i.load.checkpoint_entries, sb.capacity
    );
    let _ = writeln!(
        out,
        "journal:           {} of {} blocks used ({} commits, {} records)",
        i.load.journal_blocks_used,
        sb.journal_blocks,
        i.load.journal_commits,
        i.load.journal_records
    );
    let copies: Vec<String> = i
        .copies
        .iter()
        .map(|c| {
            let v = c
                .meta_version
                .map_or_else(String::new, |v| format!(", version {v}"));
            let chosen = if c.index == i.load.chosen_copy {
                ", loaded"
            } else {
                ""
            };
            format!("{} {}{v}{chosen}", c.index, c.status)
        })
        .collect();
    let _ = writeln!(out, "superblock copies: {}", copies.join("; "));
    let _ = writeln!(out, "scrub:             {}", i.scrub.line());
    let _ = writeln!(out, "shutdown:          {}", i.shutdown.line());
    let _ = writeln!(
        out,
        "entries:           {} ({} active, {} pending)",
        i.entries.len(),
        i.active,
        i.pending
    );
    if !i.entries.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = i
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.main_sector.to_string(),
                    e.state.to_string(),
                    opt(e.spare_index),
                    opt(e.spare_unit),
                    opt(e.spare_sector),
                    e.timestamp.to_string(),
                ]
            })
            .collect();
        out.push_str(&tabular::render(
            &[
                "MAIN_SECTOR",
                "STATE",
                "SPARE",
                "SPARE_UNIT",
                "SPARE_SECTOR",
                "TIMESTAMP",
            ],
            &rows,
        ));
    }
    out
}

/// The `--json` report: one object.
pub fn render_json(device: &str, i: &Inspection) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Doc<'a> {
        device: &'a str,
        #[serde(flatten)]
        inspection: &'a Inspection,
    }
    serde_json::to_string_pretty(&Doc {
        device,
        inspection: i,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use dm_remap_v4_metadata::superblock::MainIdentity;
    use dm_remap_v4_metadata::FormatParams;

    use super::*;
    use crate::image::MemIo;

    /// Spare of the test images: 4 MiB with 512-byte units; `Layout::for_spare` gives it a 2 MiB region.
    pub(crate) const SPARE_SECTORS: u64 = 8192;
    pub(crate) const POOL_START: u64 = 4096;
    pub(crate) const MAIN_SECTORS: u64 = 65536;

    pub(crate) fn rec(main_unit: u64, spare_unit: u64, state: EntryState) -> Record {
        Record {
            main_unit,
            spare_index: 0,
            spare_unit,
            state,
            timestamp: 1_700_000_000,
        }
    }

    /// The format parameters of the test images: member `member_index` of `member_count`.
    fn params(member_index: u32, member_count: u32) -> FormatParams {
        FormatParams {
            uuid: *b"0123456789abcdef",
            member_index,
            member_count,
            main: MainIdentity {
                sectors: MAIN_SECTORS,
                logical_block_size: 512,
                id: [0; 64],
            },
            spare_sectors: SPARE_SECTORS,
            unit_sectors: 1,
            layout: Layout::for_spare(SPARE_SECTORS, 1).unwrap(),
        }
    }

    /// A formatted image holding `commits`, each committed as one batch.
    pub(crate) fn image(commits: &[&[Record]]) -> MemIo {
        let mut io = MemIo::blank(SPARE_SECTORS);
        let mut buf = vec![0u8; BLOCK_SIZE];
        let mut store = Store::format(&mut io, &mut buf, &params(0, 1), 42).unwrap();
        for batch in commits {
            store.commit(&mut io, &mut buf, batch).unwrap();
        }
        io
    }

    /// Overwrites one byte of superblock copy `copy`, which breaks its checksum.
    pub(crate) fn corrupt_copy(io: &mut MemIo, copy: usize) {
        let sector = Layout::superblock_sector(copy).unwrap();
        let at =
            usize::try_from(sector.checked_mul(512).unwrap().checked_add(100).unwrap()).unwrap();
        io.data[at] ^= 0xff;
    }

    #[test]
    fn inspects_entries_and_geometry_without_writing() {
        let mut io = image(&[
            &[
                rec(10, 0, EntryState::Active),
                rec(20, 1, EntryState::Active),
            ],
            &[
                rec(30, 0, EntryState::PendingReadFailure),
                rec(20, 1, EntryState::Cleared),
            ],
            &[rec(40, 2, EntryState::Active)],
        ]);
        io.writes = 0;
        let size = io.sectors();
        let i = inspect(&mut io, Some(size)).unwrap();
        assert_eq!(io.writes, 0, "inspect must never write");
        assert_eq!(i.superblock.uuid, "30313233-3435-3637-3839-616263646566");
        assert_eq!(i.superblock.pool_start, POOL_START);
        assert_eq!(i.superblock.pool_units, SPARE_SECTORS - POOL_START);
        assert_eq!(i.superblock.unit_bytes, 512);
        assert_eq!(i.superblock.main_sectors, MAIN_SECTORS);
        assert_eq!(i.load.journal_commits, 3);
        assert_eq!(i.load.journal_records, 5);
        assert_eq!(i.load.last_seq, 3);
        assert_eq!((i.active, i.pending), (2, 1));
        assert_eq!(
            i.copies.iter().map(|c| c.status).collect::<Vec<_>>(),
            ["current", "current"]
        );
        let e: Vec<(u64, &str, Option<u64>)> = i
            .entries
            .iter()
            .map(|e| (e.main_sector, e.state, e.spare_sector))
            .collect();
        assert_eq!(
            e,
            [
                (10, "active", Some(POOL_START)),
                (30, "pending", None),
                (40, "active", Some(POOL_START + 2))
            ]
        );
        let text = render_human("spare.img", &i);
        assert!(text.contains("entries:           3 (2 active, 1 pending)"));
        assert!(text.contains("MAIN_SECTOR  STATE"));
        assert!(text.contains("30           pending  -"));
        let json: serde_json::Value =
            serde_json::from_str(&render_json("spare.img", &i).unwrap()).unwrap();
        assert_eq!(json["device"], "spare.img");
        assert_eq!(json["superblock"]["pool_start"], POOL_START);
        assert_eq!(json["entries"][0]["spare_sector"], POOL_START);
        assert_eq!(json["entries"][1]["state"], "pending");
        assert!(json["entries"][1]["spare_unit"].is_null());
        assert_eq!(json["copies"][1]["status"], "current");
        assert_eq!(json["load"]["journal_blocks_used"], 3);
        assert_eq!(json["scrub"]["status"], "none");
        assert!(json["scrub"]["position"].is_null());
        assert_eq!(json["superblock"]["removed_members"], serde_json::json!([]));
        assert!(text.contains("member:            0 of 1\nremoved members:   none\n"));
        assert!(text.contains("scrub:             no saved state (starts at unit 0)\n"));
        assert!(
            text.contains("shutdown:          unknown (no mark)\n"),
            "{text}"
        );
        assert_eq!(json["shutdown"]["status"], "none");
        assert!(json["shutdown"]["commit_seq"].is_null());
    }

    /// `image(commits)`, loaded as the kernel would (any setup, any member) to change it further.
    fn loaded(commits: &[&[Record]]) -> (MemIo, Store) {
        let mut io = image(commits);
        let expect = Expect {
            uuid: None,
            main: None,
            member_index: None,
        };
        let mut buf = vec![0u8; BLOCK_SIZE];
        let (store, _) = Store::load(&mut io, &mut buf, &expect, 1, &mut Table::default()).unwrap();
        (io, store)
    }

    #[test]
    fn reports_the_shutdown_mark() {
        let (mut io, mut store) = loaded(&[&[rec(1, 0, EntryState::Active)]]);
        let mut buf = vec![0u8; BLOCK_SIZE];
        store.mark_dirty(&mut io, &mut buf).unwrap();
        let i = inspect(&mut io, None).unwrap();
        let v = i.superblock.meta_version;
        assert_eq!(
            (
                i.shutdown.status,
                i.shutdown.meta_version,
                i.shutdown.commit_seq
            ),
            ("dirty", Some(v), Some(1))
        );
        assert!(render_human("spare.img", &i).contains(&format!(
            "shutdown:          dirty (not shut down cleanly) (marked at version {v}, commit 1)\n"
        )));
        store.mark_clean(&mut io, &mut buf).unwrap();
        io.writes = 0;
        let i = inspect(&mut io, None).unwrap();
        assert_eq!(io.writes, 0, "inspect must never write");
        assert_eq!(i.shutdown.status, "clean");
        assert!(render_human("spare.img", &i).contains(&format!(
            "shutdown:          clean (marked at version {v}, commit 1)\n"
        )));
        let json: serde_json::Value =
            serde_json::from_str(&render_json("spare.img", &i).unwrap()).unwrap();
        assert_eq!(json["shutdown"]["status"], "clean");
        assert_eq!(json["shutdown"]["commit_seq"], 1);
        // The scrub state is still there (none was saved: the empty one).
        assert_eq!(i.scrub.status, "saved");
    }

    #[test]
    fn reports_the_saved_scrub_state() {
        use dm_remap_v4_metadata::ScrubState;
        let (mut io, mut store) = loaded(&[&[rec(1, 0, EntryState::Active)]]);
        let mut buf = vec![0u8; BLOCK_SIZE];
        for (position, running) in [(100, false), (12345, true)] {
            let state = ScrubState {
                position,
                passes: 2,
                found_pending: 7,
                relocated: 3,
                pass_started: 1_700_000_500,
                rate_kib: 8192,
                running,
                ..ScrubState::default()
            };
            store.save_scrub_state(&mut io, &mut buf, &state).unwrap();
        }
        io.writes = 0;
        let i = inspect(&mut io, None).unwrap();
        assert_eq!(io.writes, 0, "inspect must never write");
        assert_eq!(i.scrub.status, "saved");
        assert_eq!(i.scrub.position, Some(12345));
        assert_eq!(
            (i.scrub.seq, i.scrub.copy, i.scrub.bad_copies),
            (Some(2), Some(1), 0)
        );
        let text = render_human("spare.img", &i);
        assert!(
            text.contains(
                "scrub:             running, at unit 12345, 2 passes, 7 found pending, 3 relocated, \
                 8192 KiB/s (pass started 1700000500, save 2 in copy 1)\n"
            ),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json("spare.img", &i).unwrap()).unwrap();
        let scrub = &json["scrub"];
        assert_eq!(scrub["status"], "saved");
        assert_eq!(scrub["position"], 12345);
        assert_eq!(scrub["passes"], 2);
        assert_eq!(scrub["found_pending"], 7);
        assert_eq!(scrub["relocated"], 3);
        assert_eq!(scrub["rate_kib"], 8192);
        assert_eq!(scrub["running"], true);
        assert_eq!(scrub["pass_started"], 1_700_000_500);
        // The newest copy (block 9) damaged: the previous state, and the damage reported.
        io.data[9 * 4096 + 60] ^= 0xff;
        let i = inspect(&mut io, None).unwrap();
        assert_eq!(
            (i.scrub.position, i.scrub.running),
            (Some(100), Some(false))
        );
        assert_eq!(i.scrub.bad_copies, 1);
        assert!(render_human("spare.img", &i).contains("stopped, at unit 100,"));
        assert!(render_human("spare.img", &i).contains("; 1 copy damaged\n"));
    }

    #[test]
    fn reports_the_removed_members() {
        let mut io = MemIo::blank(SPARE_SECTORS);
        let mut buf = vec![0u8; BLOCK_SIZE];
        let mut store = Store::format(&mut io, &mut buf, &params(1, 4), 42).unwrap();
        let mut r = rec(5, 0, EntryState::Active);
        r.spare_index = 2;
        store.resync(&mut io, &mut buf, 3, 4, 0b1010, [r]).unwrap();
        let i = inspect(&mut io, None).unwrap();
        assert_eq!(i.superblock.removed_members, [1, 3]);
        let text = render_human("spare.img", &i);
        assert!(
            text.contains(
                "member:            1 of 4 (removed from the setup)\nremoved members:   1, 3\n"
            ),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render_json("spare.img", &i).unwrap()).unwrap();
        assert_eq!(
            json["superblock"]["removed_members"],
            serde_json::json!([1, 3])
        );
        assert_eq!(removed_list(0), Vec::<u32>::new());
        assert_eq!(removed_list(1 << 31 | 1), [0, 31]);
        assert_eq!(index_list(&[]), "none");
    }

    #[test]
    fn damaged_copy_is_reported_and_the_other_loaded() {
        let mut io = image(&[&[rec(1, 0, EntryState::Active)]]);
        corrupt_copy(&mut io, 0);
        let i = inspect(&mut io, None).unwrap();
        assert_eq!(i.copies[0].status, "corrupt");
        assert_eq!(i.copies[1].status, "current");
        assert_eq!(i.load.chosen_copy, 1);
        assert_eq!(i.entries.len(), 1);
    }

    #[test]
    fn blank_and_tiny_devices_do_not_load() {
        let mut io = MemIo::blank(SPARE_SECTORS);
        let e = inspect(&mut io, Some(SPARE_SECTORS)).unwrap_err();
        assert!(matches!(
            e,
            Unloadable::Format {
                error: Error::Blank,
                ..
            }
        ));
        assert!(e.message().contains("no dm-remap-v4 metadata"));
        assert!(!e.is_io());
        let mut tiny = MemIo::blank(16);
        let e = inspect(&mut tiny, Some(16)).unwrap_err();
        assert_eq!(e, Unloadable::TooSmall { sectors: 16 });
    }

    #[test]
    fn main_id_is_text_or_hex() {
        let mut id = [0u8; 64];
        id[..6].copy_from_slice(b"WD-123");
        assert_eq!(format_main_id(&id), "WD-123");
        id[1] = 0x01;
        assert_eq!(format_main_id(&id), "57012d313233");
        assert_eq!(format_main_id(&[0; 64]), "");
    }
}
