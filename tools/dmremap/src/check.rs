//! `dmremap check`: verify a spare's metadata region, like `thin_check`, and optionally repair what the
//! format crate can repair safely (damaged superblock copies).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::{BlockIo, EntryState, Expect, Store};

use crate::inspect::{self, Inspection, Table, Unloadable};

/// The outcome of a check, which is also its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// 0: the metadata is consistent.
    Clean = 0,
    /// 1: the metadata loads, but problems were found (or remain after `--repair`).
    Problems = 1,
    /// 2: nothing loadable: blank, foreign, every superblock copy corrupt, damaged checkpoint, newer format.
    Unusable = 2,
    /// 3: usage or I/O error (the device cannot be opened or read).
    Error = 3,
}

impl Verdict {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Problems => 1,
            Self::Unusable => 2,
            Self::Error => 3,
        }
    }
}

/// One problem found in a loadable region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Whether `check --repair` can fix it.
    pub repairable: bool,
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The region, when it loads.
    pub inspection: Option<Inspection>,
    /// Why it does not load, otherwise.
    pub unloadable: Option<Unloadable>,
    /// Problems of a loadable region.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// The verdict: unusable, I/O error, problems or clean.
    pub fn verdict(&self) -> Verdict {
        match &self.unloadable {
            Some(u) if u.is_io() => Verdict::Error,
            Some(_) => Verdict::Unusable,
            None if self.problems.is_empty() => Verdict::Clean,
            None => Verdict::Problems,
        }
    }
}

/// Checks the region on `io` (never writes). `size_sectors` is the device's size, when known.
pub fn check<I: BlockIo>(io: &mut I, size_sectors: Option<u64>) -> CheckReport {
    match inspect::inspect(io, size_sectors) {
        Err(u) => CheckReport {
            inspection: None,
            unloadable: Some(u),
            problems: Vec::new(),
        },
        Ok(i) => CheckReport {
            problems: problems(&i),
            inspection: Some(i),
            unloadable: None,
        },
    }
}

/// The problems of a loaded region.
fn problems(i: &Inspection) -> Vec<Problem> {
    let sb = &i.superblock;
    let mut out = Vec::new();
    for c in i.copies.iter().filter(|c| c.status != "current") {
        let why = match c.status {
            "stale" => "holds an older state (an interrupted checkpoint)",
            "conflict" => "holds a valid superblock that disagrees with the loaded one",
            "corrupt" => "is corrupt (bad checksum or misplaced)",
            "blank" => "is blank (all zeros)",
            "foreign" => "holds foreign data",
            _ => "cannot be read",
        };
        out.push(Problem {
            message: format!(
                "superblock copy {} (sector {}) {why}; --repair rewrites it from copy {}",
                c.index, c.sector, i.load.chosen_copy
            ),
            repairable: true,
        });
    }
    if let Some(size) = i.size_sectors {
        let end = sb
            .pool_units
            .checked_mul(sb.unit_sectors)
            .and_then(|s| s.checked_add(sb.pool_start));
        if end.is_none_or(|end| end > size) {
            out.push(Problem {
                message: format!(
                    "the pool ({} units of {} sectors from sector {}) extends past the end of the device \
                     ({size} sectors); was the device shrunk or the image truncated?",
                    sb.pool_units, sb.unit_sectors, sb.pool_start
                ),
                repairable: false,
            });
        }
    }
    let live = u64::try_from(i.records.len()).unwrap_or(u64::MAX);
    if live > sb.capacity {
        out.push(Problem {
            message: format!(
                "{live} entries exceed the checkpoint capacity of {}; the next checkpoint will fail",
                sb.capacity
            ),
            repairable: false,
        });
    }
    let mut owners: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    for r in i.records.iter().filter(|r| r.state == EntryState::Active) {
        let main_sector = r.main_unit.saturating_mul(sb.unit_sectors);
        if r.spare_index == sb.member_index && r.spare_unit >= sb.pool_units {
            out.push(Problem {
                message: format!(
                    "the entry for main sector {main_sector} names spare unit {}, outside the pool of {} \
                     units; its data cannot be found",
                    r.spare_unit, sb.pool_units
                ),
                repairable: false,
            });
        }
        if let Some(first) = owners.insert((r.spare_index, r.spare_unit), main_sector) {
            out.push(Problem {
                message: format!(
                    "main sectors {first} and {main_sector} both use unit {} of spare {}; one of them \
                     holds the other's data",
                    r.spare_unit, r.spare_index
                ),
                repairable: false,
            });
        }
    }
    out
}

/// What `--repair` did.
#[derive(Debug, Clone)]
pub struct RepairOutcome {
    /// Superblock copies rewritten.
    pub rewritten: usize,
    /// The check of the region after the repair.
    pub after: CheckReport,
    /// Why the repair itself failed, if it did.
    pub failure: Option<String>,
}

/// Rewrites the damaged superblock copies of the region on `io` (the format crate's [`Store::repair`], the
/// same repair the kernel does when it loads a table), then checks again. Writes nothing when `before` found
/// no repairable problem.
pub fn repair<I: BlockIo>(
    io: &mut I,
    size_sectors: Option<u64>,
    before: &CheckReport,
) -> RepairOutcome {
    let mut rewritten = 0;
    let mut failure = None;
    if before.unloadable.is_none() && before.problems.iter().any(|p| p.repairable) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        let expect = Expect {
            uuid: None,
            main: None,
            member_index: None,
        };
        let salt = inspect::session_salt();
        match Store::load(io, &mut buf, &expect, salt, &mut Table::default()) {
            Ok((mut store, _)) => match store.repair(io, &mut buf) {
                Ok(n) => rewritten = n,
                Err(e) => failure = Some(format!("rewriting the superblock copies failed: {e}")),
            },
            Err(e) => failure = Some(format!("the metadata no longer loads: {e}")),
        }
    }
    RepairOutcome {
        rewritten,
        after: check(io, size_sectors),
        failure,
    }
}

/// The human report of a check of `device`.
pub fn render(device: &str, r: &CheckReport) -> String {
    let mut out = String::new();
    if let Some(u) = &r.unloadable {
        let _ = writeln!(out, "{device}: {}", u.message());
        if let Unloadable::Format { copies, .. } = u {
            for c in copies {
                let _ = writeln!(
                    out,
                    "  superblock copy {} (sector {}): {}",
                    c.index, c.sector, c.status
                );
            }
        }
        return out;
    }
    if let Some(i) = &r.inspection {
        let _ = writeln!(
            out,
            "{device}: dm-remap-v4 metadata, uuid {}, metadata version {}, {} entries ({} active, {} pending)",
            i.superblock.uuid,
            i.superblock.meta_version,
            i.entries.len(),
            i.active,
            i.pending
        );
    }
    for p in &r.problems {
        let _ = writeln!(out, "problem: {}", p.message);
    }
    let repairable = r.problems.iter().filter(|p| p.repairable).count();
    let _ = match r.problems.len() {
        0 => writeln!(out, "no problems found"),
        n => writeln!(
            out,
            "{n} problem{} found, {repairable} repairable with --repair",
            if n == 1 { "" } else { "s" }
        ),
    };
    out
}

#[cfg(test)]
mod tests {
    use dm_remap_v4_metadata::EntryState::{Active, PendingReadFailure};

    use super::*;
    use crate::image::MemIo;
    use crate::inspect::tests::{corrupt_copy, image, rec, POOL_START, SPARE_SECTORS};

    #[test]
    fn clean_image_exits_0() {
        let mut io = image(&[&[rec(1, 0, Active), rec(2, 1, PendingReadFailure)]]);
        io.writes = 0;
        let r = check(&mut io, Some(SPARE_SECTORS));
        assert_eq!(r.verdict(), Verdict::Clean);
        assert_eq!(r.verdict().code(), 0);
        assert_eq!(io.writes, 0);
        assert!(render("img", &r).contains("no problems found"));
    }

    #[test]
    fn shared_spare_unit_and_out_of_pool_entry_are_problems() {
        let pool = SPARE_SECTORS - POOL_START;
        let mut io = image(&[&[rec(1, 5, Active), rec(2, 5, Active), rec(3, pool, Active)]]);
        let r = check(&mut io, Some(SPARE_SECTORS));
        assert_eq!(r.verdict(), Verdict::Problems);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0]
            .message
            .contains("main sectors 1 and 2 both use unit 5"));
        assert!(r.problems[1].message.contains("outside the pool"));
        assert!(r.problems.iter().all(|p| !p.repairable));
        // Nothing --repair can do: it writes nothing and the problems stay.
        io.writes = 0;
        let out = repair(&mut io, Some(SPARE_SECTORS), &r);
        assert_eq!((out.rewritten, io.writes), (0, 0));
        assert_eq!(out.after.verdict(), Verdict::Problems);
    }

    #[test]
    fn truncated_image_is_a_problem() {
        let mut io = image(&[]);
        let r = check(&mut io, Some(SPARE_SECTORS - 1));
        assert_eq!(r.verdict(), Verdict::Problems);
        assert!(r.problems[0].message.contains("extends past the end"));
    }

    #[test]
    fn damaged_copy_is_repairable_and_repair_fixes_it() {
        let mut io = image(&[&[rec(7, 3, Active)]]);
        corrupt_copy(&mut io, 1);
        io.writes = 0;
        let r = check(&mut io, Some(SPARE_SECTORS));
        assert_eq!(io.writes, 0, "check without --repair never writes");
        assert_eq!(r.verdict(), Verdict::Problems);
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].repairable);
        assert!(r.problems[0]
            .message
            .contains("copy 1 (sector 64) is corrupt"));
        let out = repair(&mut io, Some(SPARE_SECTORS), &r);
        assert_eq!(out.failure, None);
        assert_eq!(out.rewritten, 1);
        assert_eq!(out.after.verdict(), Verdict::Clean);
        assert_eq!(out.after.inspection.unwrap().entries.len(), 1);
    }

    #[test]
    fn both_copies_corrupt_or_blank_is_unusable() {
        let mut io = image(&[]);
        corrupt_copy(&mut io, 0);
        corrupt_copy(&mut io, 1);
        let r = check(&mut io, Some(SPARE_SECTORS));
        assert_eq!(r.verdict(), Verdict::Unusable);
        let text = render("img", &r);
        assert!(text.contains("every superblock copy is corrupt"), "{text}");
        assert!(
            text.contains("superblock copy 1 (sector 64): corrupt"),
            "{text}"
        );
        // Repair refuses to touch an unloadable region.
        io.writes = 0;
        let out = repair(&mut io, Some(SPARE_SECTORS), &r);
        assert_eq!((out.rewritten, io.writes), (0, 0));

        let mut blank = MemIo::blank(SPARE_SECTORS);
        assert_eq!(
            check(&mut blank, Some(SPARE_SECTORS)).verdict(),
            Verdict::Unusable
        );
    }

    #[test]
    fn blank_file_on_disk_is_unusable() {
        let dir = std::env::temp_dir().join(format!("dmremap-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blank.img");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(SPARE_SECTORS * 512).unwrap();
        let mut io = crate::image::FileIo::open_read_only(&path).unwrap();
        let size = io.sectors();
        assert_eq!(check(&mut io, Some(size)).verdict(), Verdict::Unusable);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_device_is_an_io_error() {
        // A device whose reads all fail: every copy unreadable.
        struct Failing;
        impl BlockIo for Failing {
            fn read(&mut self, _: u64, _: &mut [u8]) -> Result<(), dm_remap_v4_metadata::IoError> {
                Err(dm_remap_v4_metadata::IoError)
            }
            fn write(&mut self, _: u64, _: &[u8]) -> Result<(), dm_remap_v4_metadata::IoError> {
                Err(dm_remap_v4_metadata::IoError)
            }
            fn flush(&mut self) -> Result<(), dm_remap_v4_metadata::IoError> {
                Err(dm_remap_v4_metadata::IoError)
            }
        }
        let r = check(&mut Failing, None);
        assert_eq!(r.verdict(), Verdict::Error);
        assert_eq!(r.verdict().code(), 3);
    }
}
