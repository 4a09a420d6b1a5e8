//! The state of one target and everything that changes its remap table, all in process context: relocating
//! units whose write failed, recording units whose read failed as pending, healing writes to pending units,
//! and the `remap` message.
//!
//! `map()` and `end_io()` (in `target.rs`) never sleep; they hand a bio that needs any of this to the worker
//! (`dm::BioWorker`), which calls [`Remapper::handle`]. Every change is committed to the spare's metadata
//! before it is published in the table, and before the bio that caused it completes.

use core::ffi::CStr;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::time::{Instant, Monotonic};

use crate::dm::{BioIter, BioList, BlkStatus, Device, HandleBio, Op, OwnedBio};
use crate::gate::{Ticket, WriteGate};
use crate::imports::{Metadata, RecordSource, SparePool, SpareState};
use crate::logic::outbuf::OutBuf;
use crate::logic::route::{Entry, RemapLookup};
use crate::logic::scrub::proactive_allowed;
use crate::logic::snapshot::{BatchRecord, Overlay};
use crate::md_abi::{RecordAbi, RECORD_ACTIVE, RECORD_CLEARED, RECORD_PENDING};
use crate::members::{Resync, Setup, SpareDev, SpareRole};
use crate::spare_writes::SpareWrites;
use crate::stats::{IoStats, RemapCause};
use crate::table::{stamp_of, RemapTable, Stamped};

pub(crate) const SECTOR_BYTES: u32 = 512;

/// Fresh spare units tried for one unit before giving up on it: each failed one is retired.
pub(crate) const SPARE_ATTEMPTS: u32 = 3;

/// Where `map()` sent a bio, kept with the bio (device-mapper's per-bio data).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Route {
    /// Flushes, discards and anything else the error path leaves alone.
    #[default]
    Other,
    /// The main device.
    Main,
    /// A spare unit.
    Spare,
}

/// The per-bio data.
#[derive(Clone, Copy, Default)]
pub(crate) struct BioState {
    /// The bio's data as routed: completion consumes the bio's own iterator.
    pub(crate) iter: BioIter,
    /// First sector of the piece, relative to the start of the target.
    pub(crate) offset: u64,
    pub(crate) route: Route,
    /// Set when the target took the bio over: its next completion is the final one.
    pub(crate) taken: bool,
    /// When a data bio was sent to the main device, for its latency.
    pub(crate) started: Option<Instant<Monotonic>>,
    /// What the worker made of the bio, kept until its group's commit decides how it completes.
    pub(crate) outcome: Outcome,
    /// A write's place in the write gate, until it completes.
    pub(crate) ticket: Ticket,
}

/// How a taken bio fared before its group's commit.
#[derive(Clone, Copy, Default)]
pub(crate) struct Outcome {
    /// Every unit was read or written.
    ok: bool,
    /// It staged a change: it completes well only if the commit that holds the change succeeds.
    staged: bool,
    /// Its bit in the group (see [`SpareWrites::bio`]).
    bit: u32,
}

/// What changes the remap table: serialised by one mutex.
pub(crate) struct Updates {
    /// Each spare's metadata, by member index: every spare holds the whole table.
    pub(crate) metadata: KVec<Metadata>,
    pub(crate) pool: SparePool,
    /// One unit of data in transit (kmalloc'ed, as block I/O needs).
    pub(crate) buf: KVec<u8>,
    /// A second unit, to verify a copy against.
    pub(crate) check: KVec<u8>,
    /// Changes staged for one journal commit (group commit): at most [`MAX_BATCH`], in ascending unit order,
    /// one per unit. Relocated data is on its spare unit, not yet flushed, or waits in `spare_writes`. Empty
    /// between the worker's groups of bios and between messages.
    pub(crate) batch: KVec<RecordAbi>,
    /// The worker's relocated units waiting to be written together before the commit.
    pub(crate) spare_writes: SpareWrites,
    /// Changes staged so far (wrapping): tells which bio of a group staged one.
    pub(crate) staged: u64,
    /// Why a commit failed since the worker's current group of bios began.
    pub(crate) commit_failure: Option<&'static CStr>,
    /// Members to bring up to date at the first resume.
    pub(crate) resync: Option<Resync>,
    /// Bit `i`: member `i` was removed from the setup (grows when a drain completes).
    pub(crate) removed: u32,
    /// Why the staged relocations are made (for the remap counters).
    pub(crate) cause: RemapCause,
    /// The committing spares carry a dirty shutdown mark written by this table (set before the first
    /// metadata change after the load or after a clean mark; cleared by the clean mark at suspend).
    pub(crate) marked_dirty: bool,
}

/// What the scrub's relocation of a slow unit did.
pub(crate) enum ScrubFix {
    /// The unit now lives on the spare.
    Relocated { spare: u32, spare_sector: u64 },
    /// Main could not read it after all: it is pending.
    Pending,
    /// It has an entry already.
    Skipped,
}

/// Longest the scrub waits for writes in flight to a unit it is about to relocate; a disk that slow gets the
/// unit relocated on a later pass.
pub(crate) const GATE_TIMEOUT_MS: i64 = 10_000;

/// Records in one group commit: what one journal block holds.
pub(crate) const MAX_BATCH: usize = 126;

/// A zeroed, kmalloc'ed buffer of one unit (block I/O needs direct-mapped memory).
pub(crate) fn unit_buffer(unit_bytes: u32) -> Result<KVec<u8>> {
    let len = usize::try_from(unit_bytes).map_err(|_| EINVAL)?;
    Ok(KVec::from_elem(0u8, len, GFP_KERNEL)?)
}

/// The target's state.
#[pin_data]
pub(crate) struct Remapper {
    /// Declared before the devices: fields drop in order, and the metadata handles use the spares.
    #[pin]
    pub(crate) updates: Mutex<Updates>,
    /// The devices and the table line's settings.
    pub(crate) setup: Setup,
    pub(crate) table: RemapTable,
    pub(crate) stats: IoStats,
    /// Holds a unit the scrub or a drain moves while the device is live.
    pub(crate) gate: WriteGate,
    /// Taken around a hold of the gate, which has one holder at a time.
    #[pin]
    pub(crate) holder: Mutex<()>,
    /// A unit needed a spare unit and none was left.
    exhausted: AtomicBool,
    /// A metadata commit failed: the on-disk state is unknown, so nothing more is relocated.
    pub(crate) md_failed: AtomicBool,
    /// The metadata version after the last commit (a checkpoint raises it), for `status` without the mutex.
    pub(crate) md_version: AtomicU64,
    /// Bit `i`: member `i` failed and its units wait to be moved.
    pub(crate) evacuate: AtomicU32,
}

/// A record for the metadata journal, stamped with the current time.
fn record(main_unit: u64, spare_unit: u64, state: u32) -> RecordAbi {
    RecordAbi {
        timestamp: crate::imports::now_seconds(),
        ..record_at(main_unit, spare_unit, state, 0)
    }
}

/// The record of an entry made at `stamp` (seconds since the epoch).
fn record_at(main_unit: u64, spare_unit: u64, state: u32, stamp: u32) -> RecordAbi {
    RecordAbi {
        main_unit,
        spare_unit,
        timestamp: u64::from(stamp),
        spare_index: 0,
        state,
    }
}

/// The record of `main_unit` now living in unit `spare_unit` of spare `spare`.
fn relocated(main_unit: u64, spare: u32, spare_unit: u64) -> RecordAbi {
    RecordAbi {
        spare_index: spare,
        ..record(main_unit, spare_unit, RECORD_ACTIVE)
    }
}

/// The whole table as records with `batch` applied on top (a batch record replaces the entry of its unit, is
/// added, or, when cleared, drops it): what a checkpoint written while committing `batch` must hold. `batch`
/// is in ascending unit order (see [`Updates::batch`]). Each entry of the table is written with the time it
/// was made, not the time of this checkpoint.
pub(crate) struct Snapshot<'a> {
    table: &'a RemapTable,
    overlay: Overlay<'a, Stamped<'a>, RecordAbi>,
}

impl BatchRecord for RecordAbi {
    fn unit(&self) -> u64 {
        self.main_unit
    }

    fn live(&self) -> bool {
        self.state != RECORD_CLEARED
    }
}

impl<'a> Snapshot<'a> {
    /// The whole table with `batch` applied on top.
    pub(crate) fn new(table: &'a RemapTable, batch: &'a [RecordAbi]) -> Self {
        Self {
            table,
            overlay: Overlay::new(table.stamped_from(0), batch),
        }
    }
}

impl RecordSource for Snapshot<'_> {
    fn next_record(&mut self) -> Option<RecordAbi> {
        let table = self.table;
        self.overlay.next_record(
            |unit, (entry, stamp)| match entry {
                Entry::Remapped { spare, unit: su } => RecordAbi {
                    spare_index: spare,
                    ..record_at(unit, su, RECORD_ACTIVE, stamp)
                },
                Entry::Pending => record_at(unit, 0, RECORD_PENDING, stamp),
            },
            |unit| table.get(unit).is_some(),
        )
    }
}

fn warn(args: core::fmt::Arguments<'_>) {
    if crate::dm::log_ratelimit() {
        pr_warn!("{}\n", args);
    }
}

impl Remapper {
    /// The metadata version after the last commit (`status`).
    pub(crate) fn metadata_version(&self) -> u64 {
        self.md_version.load(Ordering::Relaxed)
    }

    pub(crate) fn new(
        updates: Updates,
        setup: Setup,
        table: RemapTable,
        stats: IoStats,
    ) -> impl PinInit<Self, Error> {
        let mut updates = updates;
        let md_version = updates.metadata.first().map_or(0, |m| m.version());
        for spare in setup.spares.iter() {
            let used = updates.pool.counts(spare.member).0;
            spare.used.store(used, Ordering::Relaxed);
        }
        try_pin_init!(Self {
            updates <- kernel::new_mutex!(updates, "dm-remap-v4 updates"),
            setup,
            table,
            stats,
            gate: WriteGate::new(),
            holder <- kernel::new_mutex!((), "dm-remap-v4 gate holder"),
            exhausted: AtomicBool::new(false),
            md_failed: AtomicBool::new(false),
            md_version: AtomicU64::new(md_version),
            evacuate: AtomicU32::new(0),
        }? Error)
    }

    pub(crate) fn unit_sectors(&self) -> u32 {
        (self.setup.unit_bytes / SECTOR_BYTES).max(1)
    }

    /// The spare with member index `spare`.
    pub(crate) fn spare(&self, spare: u32) -> Option<&SpareDev> {
        self.setup.spare(spare)
    }

    /// First sector of `unit` of spare `spare`; `None` for anything outside its pool.
    pub(crate) fn spare_sector(&self, spare: u32, unit: u64) -> Option<u64> {
        let s = self.spare(spare)?;
        if unit >= s.pool_units {
            return None;
        }
        unit.checked_mul(u64::from(self.unit_sectors()))?
            .checked_add(s.pool_start)
    }

    /// `(spare_used, spare_total)` in units over every spare, without locking.
    pub(crate) fn spare_counts(&self) -> (u64, u64) {
        self.setup
            .spares
            .iter()
            .fold((0u64, 0u64), |(used, total), s| {
                (
                    used.saturating_add(s.used()),
                    total.saturating_add(s.pool_units),
                )
            })
    }

    /// Mirrors the pool's counts after a change (see [`SpareDev::used`]).
    pub(crate) fn note_pool(&self, u: &mut Updates) {
        for spare in self.setup.spares.iter() {
            spare
                .used
                .store(u.pool.counts(spare.member).0, Ordering::Relaxed);
        }
    }

    /// `state=` of the status line.
    pub(crate) fn state(&self) -> &'static str {
        if self.md_failed.load(Ordering::Relaxed) {
            "failed"
        } else if self.exhausted.load(Ordering::Relaxed) {
            "spare_exhausted"
        } else if self
            .setup
            .spares
            .iter()
            .any(|s| s.role() == SpareRole::Failed)
        {
            "degraded"
        } else {
            "ok"
        }
    }

    /// Takes `spare` out of commits and allocation after an I/O failure, and asks for its units to be moved
    /// to the other spares (`drain.rs`, after the worker's current group of bios). Only while another spare
    /// takes commits: the last one stays, and a failed commit then stops all changes (`state=failed`).
    pub(crate) fn fail_spare(&self, u: &mut Updates, spare: &SpareDev, why: &CStr) {
        let others = self
            .setup
            .spares
            .iter()
            .any(|s| s.member != spare.member && s.role().commits());
        if spare.role() == SpareRole::Failed || !others {
            return;
        }
        let _ = u.pool.set_state(spare.member, SpareState::Failed);
        spare.set_role(SpareRole::Failed);
        if let Some(bit) = 1u32.checked_shl(spare.member) {
            self.evacuate.fetch_or(bit, Ordering::Relaxed);
        }
        pr_err!(
            "spare {} (member {}) failed: {}; it gets no new unit, and its units move to the other spares\n",
            spare.dev.name(),
            spare.member,
            why.to_str().unwrap_or("?")
        );
    }

    /// `metadata=` of the status line.
    pub(crate) fn metadata_health(&self) -> &'static str {
        if self.md_failed.load(Ordering::Relaxed) {
            "failed"
        } else if self.setup.repaired < self.setup.bad_copies {
            "degraded"
        } else {
            "ok"
        }
    }

    /// Stages `rec`; when the batch is full, commits it first. A new entry beyond what every spare's metadata
    /// can hold is refused like a full spare (a checkpoint of a larger table would fail and stop all commits).
    fn stage(&self, u: &mut Updates, rec: RecordAbi) -> Result<(), (Error, &'static CStr)> {
        if rec.state != RECORD_CLEARED {
            // Counts a batch record that replaces an entry twice: errs on the side of refusing.
            let entries = self
                .table
                .remapped()
                .saturating_add(self.table.pending())
                .saturating_add(u64::try_from(u.batch.len()).unwrap_or(u64::MAX));
            if entries >= self.setup.capacity {
                self.exhausted.store(true, Ordering::Relaxed);
                return Err((ENOSPC, c"the metadata holds no more entries"));
            }
        }
        // The batch stays sorted; a unit already in it commits the batch first, so its changes keep their order.
        let mut slot = u
            .batch
            .binary_search_by_key(&rec.main_unit, |r| r.main_unit);
        if slot.is_ok() || u.batch.len() >= MAX_BATCH {
            self.commit_batch(u)?;
            slot = Err(0);
        }
        let (Ok(at) | Err(at)) = slot;
        u.batch
            .push_within_capacity(rec)
            .map_err(|_| (ENOMEM, c"group commit batch full"))?;
        if let Some(tail) = u.batch.get_mut(at..) {
            tail.rotate_right(1);
        }
        u.staged = u.staged.wrapping_add(1);
        Ok(())
    }

    /// Commits the batch if it holds a change of `unit`: the table does not show staged changes, so the unit
    /// must not be read or written before they are published.
    fn commit_if_staged(&self, u: &mut Updates, unit: u64) -> Result<(), (Error, &'static CStr)> {
        if u.batch.binary_search_by_key(&unit, |r| r.main_unit).is_ok() {
            self.commit_batch(u)?;
        }
        Ok(())
    }

    /// Commits the staged changes durably, in one journal commit after one flush of the spare, then publishes
    /// them. A failed commit frees the staged spare units and stops all further changes (`state=failed`): what
    /// is on disk is then unknown.
    pub(crate) fn commit_batch(&self, u: &mut Updates) -> Result<(), (Error, &'static CStr)> {
        self.write_waiting(u);
        if u.batch.is_empty() {
            return Ok(());
        }
        let done = self.commit_staged(u);
        if let Err((_, why)) = done {
            for r in u.batch.iter().filter(|r| r.state == RECORD_ACTIVE) {
                let _ = u.pool.free(r.spare_index, r.spare_unit);
            }
            self.note_pool(u);
            u.commit_failure = Some(why);
        }
        u.batch.clear();
        done
    }

    fn commit_staged(&self, u: &mut Updates) -> Result<(), (Error, &'static CStr)> {
        self.refuse_if_md_failed()?;
        self.mark_dirty(u);
        // Relocated data must be durable before the mapping that points at it, and each spare's metadata
        // flush covers only that spare.
        for spare in self.setup.spares.iter() {
            let holds_data = u
                .batch
                .iter()
                .any(|r| r.state == RECORD_ACTIVE && r.spare_index == spare.member);
            if holds_data && spare.dev.flush_sync().is_err() {
                self.stats.device_error();
                // Its new units are lost with this commit; later ones go to the other spares.
                self.fail_spare(u, spare, c"flushing it failed");
                return Err((EIO, c"flushing a spare failed"));
            }
        }
        // Every spare holds the whole table. A failure part-way leaves the later spares one commit behind;
        // the next table load takes the newest spare and brings the others up to date. A removed spare keeps
        // the state that removed it. A spare that fails the commit while another takes it is failed: the
        // setup goes on, degraded, on the others.
        let mut failure = None;
        let mut committed = 0u32;
        for (spare, md) in self.setup.spares.iter().zip(u.metadata.iter_mut()) {
            if !spare.role().commits() {
                continue;
            }
            let mut snapshot = Snapshot::new(&self.table, &u.batch);
            match md.commit(&u.batch, &mut snapshot) {
                Ok(()) => {
                    if committed == 0 {
                        self.md_version.store(md.version(), Ordering::Relaxed);
                    }
                    committed = committed.saturating_add(1);
                }
                Err(e) => failure = Some((spare, e)),
            }
        }
        if committed == 0 {
            self.md_failed.store(true, Ordering::Relaxed);
            return Err(failure.map_or((EIO, c"no spare takes commits"), |(_, e)| e));
        }
        if let Some((spare, e)) = failure {
            self.fail_spare(u, spare, e.1);
        }
        self.stats.committed();
        let moved = u.batch.iter().filter(|r| r.state == RECORD_ACTIVE).count();
        self.stats
            .remapped(u64::try_from(moved).unwrap_or(u64::MAX), u.cause);
        // Durable from here on. Insertion can only fail for lack of memory; the entry is then used from the
        // next table load.
        let mut published = Ok(());
        let mut freed = false;
        for r in u.batch.iter() {
            let entry = match r.state {
                RECORD_ACTIVE => {
                    // A unit moved off a draining spare gives its old unit back (the spare hands out none, so
                    // a read still in flight there is safe); elsewhere an old unit was retired by its failure.
                    if let Some(Entry::Remapped { spare, unit }) = self.table.get(r.main_unit) {
                        if self
                            .spare(spare)
                            .is_some_and(|s| s.role() != SpareRole::Active)
                        {
                            freed |= u.pool.free(spare, unit).is_ok();
                        }
                    }
                    Entry::Remapped {
                        spare: r.spare_index,
                        unit: r.spare_unit,
                    }
                }
                RECORD_PENDING => Entry::Pending,
                _ => {
                    if let Err(e) = self.table.remove(r.main_unit) {
                        published =
                            Err((e, c"change committed but not in memory: reload the table"));
                    }
                    continue;
                }
            };
            if let Err(e) = self.table.insert(r.main_unit, entry, stamp_of(r.timestamp)) {
                published = Err((e, c"change committed but not in memory: reload the table"));
            }
        }
        if freed {
            self.note_pool(u);
        }
        // Failing to merge (memory) only leaves the changes where they are, still correct; try next time.
        let _ = self.table.compact_if_due();
        published
    }

    /// Gives `unit` a fresh spare unit holding `u.buf` and stages the mapping; returns the spare and sector. A
    /// spare unit that fails the write is retired (left allocated, never handed out again).
    pub(crate) fn stage_relocation(
        &self,
        u: &mut Updates,
        unit: u64,
    ) -> Result<(u32, u64), (Error, &'static CStr)> {
        self.refuse_if_md_failed()?;
        let (spare, spare_unit, sector) = self.write_to_fresh_unit(u, SPARE_ATTEMPTS)?;
        self.stage_new(u, unit, spare, spare_unit)?;
        Ok((spare, sector))
    }

    pub(crate) fn refuse_if_md_failed(&self) -> Result<(), (Error, &'static CStr)> {
        if self.md_failed.load(Ordering::Relaxed) {
            return Err((EIO, c"an earlier metadata commit failed; reload the table"));
        }
        Ok(())
    }

    /// Takes a fresh spare unit: `(spare, unit, first sector)`.
    pub(crate) fn claim_spare_unit(
        &self,
        u: &mut Updates,
    ) -> Result<(u32, u64, u64), (Error, &'static CStr)> {
        let (spare, spare_unit) = u.pool.allocate().map_err(|e| {
            self.exhausted.store(true, Ordering::Relaxed);
            (e, c"no spare unit left (spare exhausted)")
        })?;
        self.note_pool(u);
        let sector = self
            .spare_sector(spare, spare_unit)
            .ok_or((EINVAL, c"allocated spare unit outside the pool"))?;
        Ok((spare, spare_unit, sector))
    }

    /// Writes `u.buf` to fresh spare units until one takes it, at most `attempts`; each that fails is retired.
    pub(crate) fn write_to_fresh_unit(
        &self,
        u: &mut Updates,
        attempts: u32,
    ) -> Result<(u32, u64, u64), (Error, &'static CStr)> {
        for _ in 0..attempts {
            let (spare, spare_unit, sector) = self.claim_spare_unit(u)?;
            if self.write_spare_unit(spare, sector, &mut u.buf) {
                return Ok((spare, spare_unit, sector));
            }
            self.spare_write_failed(spare, spare_unit);
        }
        Err((EIO, c"every spare unit tried failed"))
    }

    /// Writes `buf` at `sector` of spare `spare`, synchronously.
    pub(crate) fn write_spare_unit(&self, spare: u32, sector: u64, buf: &mut KVec<u8>) -> bool {
        self.spare(spare)
            .is_some_and(|s| s.dev.write_sync(sector, buf).is_ok())
    }

    /// Counts and reports a spare unit whose write failed; it stays allocated, never handed out again.
    pub(crate) fn spare_write_failed(&self, spare: u32, spare_unit: u64) {
        self.stats.device_error();
        warn(format_args!(
            "spare {} unit {} failed a write; retired",
            spare, spare_unit
        ));
    }

    /// Stages the mapping of `unit` to a spare unit just claimed; gives the spare unit back when it cannot.
    pub(crate) fn stage_new(
        &self,
        u: &mut Updates,
        unit: u64,
        spare: u32,
        spare_unit: u64,
    ) -> Result<(), (Error, &'static CStr)> {
        self.stage(u, relocated(unit, spare, spare_unit))
            .inspect_err(|_| {
                let _ = u.pool.free(spare, spare_unit);
                self.note_pool(u);
            })
    }

    /// Reports that the data of a write to `unit` is lost.
    pub(crate) fn write_lost(&self, unit: u64, why: &CStr) {
        warn(format_args!(
            "sector {}: write lost: {}",
            unit.saturating_mul(u64::from(self.unit_sectors())),
            why.to_str().unwrap_or("?")
        ));
    }

    /// Writes `u.buf` as the new data of `unit` where the unit lives; on main, once more plus `retries` times.
    /// Relocates the unit when that fails, and a pending unit straight away (staged: the caller commits).
    fn write_unit(
        &self,
        u: &mut Updates,
        unit: u64,
        fua: bool,
    ) -> Result<(), (Error, &'static CStr)> {
        let written = |dev: &Device, sector: u64, buf: &mut KVec<u8>| {
            dev.write_sync(sector, buf).is_ok() && (!fua || dev.flush_sync().is_ok())
        };
        let entry = self.table.get(unit);
        match entry {
            Some(Entry::Remapped { spare, unit: su }) => {
                let (Some(dev), Some(sector)) = (self.spare(spare), self.spare_sector(spare, su))
                else {
                    return Err((EINVAL, c"remap entry outside the pool"));
                };
                // A unit of a spare being drained moves with its next write (its old unit stays claimed on
                // the drained spare, which hands out no unit again).
                if dev.role() == SpareRole::Active {
                    if written(&dev.dev, sector, &mut u.buf) {
                        return Ok(());
                    }
                    self.stats.device_error();
                    warn(format_args!(
                        "spare {} unit {} failed a write; retired",
                        spare, su
                    ));
                }
            }
            Some(Entry::Pending) => {}
            None => {
                let sector = unit
                    .checked_mul(u64::from(self.unit_sectors()))
                    .ok_or((EINVAL, c"unit beyond the device"))?;
                // Once on its own (the bio may have failed for another unit's sake), then `retries` more.
                for _ in 0..=self.setup.retries {
                    if written(&self.setup.main, sector, &mut u.buf) {
                        return Ok(());
                    }
                    self.stats.device_error();
                }
            }
        }
        let (spare, spare_sector) = self.stage_relocation_batched(u, unit)?;
        let why = match entry {
            Some(Entry::Pending) => "pending unit written",
            Some(Entry::Remapped { .. }) => "spare unit written",
            None => "write failed",
        };
        warn(format_args!(
            "sector {}: {}; relocating to spare {} sector {}",
            unit.saturating_mul(u64::from(self.unit_sectors())),
            why,
            spare,
            spare_sector
        ));
        Ok(())
    }

    /// Writes a bio that failed below, or a write to pending units, unit by unit; the changes are staged for
    /// the group's commit. False when a unit's write is lost.
    fn complete_write(&self, u: &mut Updates, bio: &OwnedBio<BioState>, st: &BioState) -> bool {
        let Some((first, units)) = self.units_of(st) else {
            return false;
        };
        let zeroes = bio.op() == Op::WriteZeroes;
        let fua = bio.is_fua();
        let mut ok = true;
        for i in 0..units {
            let unit = first.saturating_add(u64::from(i));
            let filled = self.commit_if_staged(u, unit).and_then(|()| {
                if zeroes {
                    u.buf.fill(0);
                    Ok(())
                } else {
                    bio.copy_out(
                        &st.iter,
                        i.saturating_mul(self.setup.unit_bytes),
                        &mut u.buf,
                    )
                    .map_err(|e| (e, c"cannot copy the bio's data"))
                }
            });
            if let Err((_, why)) = filled.and_then(|()| self.write_unit(u, unit, fua)) {
                ok = false;
                self.write_lost(unit, why);
            }
        }
        ok
    }

    /// Reads a bio that failed below again, each unit on its own, so the units that do read are returned and
    /// each one that does not is staged as pending. False if any unit failed: data is never invented.
    fn complete_read(&self, u: &mut Updates, bio: &mut OwnedBio<BioState>, st: &BioState) -> bool {
        let Some((first, units)) = self.units_of(st) else {
            return false;
        };
        let us = u64::from(self.unit_sectors());
        let mut ok = true;
        for i in 0..units {
            let unit = first.saturating_add(u64::from(i));
            if self.commit_if_staged(u, unit).is_err() {
                ok = false;
                continue;
            }
            let entry = self.table.get(unit);
            let (dev, sector) = match entry {
                Some(Entry::Remapped { spare, unit: su }) => {
                    match (self.spare(spare), self.spare_sector(spare, su)) {
                        (Some(d), Some(s)) => (&d.dev, s),
                        _ => {
                            ok = false;
                            continue;
                        }
                    }
                }
                _ => (&self.setup.main, unit.saturating_mul(us)),
            };
            let mut read = false;
            for _ in 0..=self.setup.retries {
                if dev.read_sync(sector, &mut u.buf).is_ok() {
                    read = true;
                    break;
                }
                self.stats.device_error();
            }
            let skip = i.saturating_mul(self.setup.unit_bytes);
            if read && bio.copy_in(&st.iter, skip, &u.buf).is_ok() {
                continue;
            }
            ok = false;
            if read || entry.is_some() {
                continue;
            }
            match self.stage(u, record(unit, 0, RECORD_PENDING)) {
                Ok(()) => warn(format_args!(
                    "sector {}: unreadable on main; pending until it is written",
                    unit.saturating_mul(us)
                )),
                Err((_, why)) => warn(format_args!(
                    "sector {}: unreadable on main, not recorded: {}",
                    unit.saturating_mul(us),
                    why.to_str().unwrap_or("?")
                )),
            }
        }
        ok
    }

    /// First unit and number of units of a taken bio; `None` for a bio not made of whole units.
    fn units_of(&self, st: &BioState) -> Option<(u64, u32)> {
        let us = u64::from(self.unit_sectors());
        let bytes = st.iter.bytes();
        if st.offset % us != 0 || bytes == 0 || bytes % self.setup.unit_bytes != 0 {
            return None;
        }
        Some((st.offset / us, bytes / self.setup.unit_bytes))
    }

    /// `remap <sector>`: copies the unit to a new spare unit, commits the mapping durably, then switches
    /// reads and writes of the unit to the spare. The caller makes sure no write is in flight (the device is
    /// suspended). A unit main cannot read becomes pending instead (its next write heals it), and the output
    /// says so.
    pub(crate) fn remap_now(
        &self,
        sector: u64,
        out: &mut OutBuf<'_>,
    ) -> Result<(), (Error, &'static CStr)> {
        let us = u64::from(self.unit_sectors());
        let unit = sector / us;
        if matches!(self.table.get(unit), Some(Entry::Remapped { .. })) {
            return Err((EEXIST, c"the unit is already remapped"));
        }
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        let main_sector = unit.saturating_mul(us);
        if self.setup.main.read_sync(main_sector, &mut u.buf).is_err() {
            if self.table.get(unit).is_none() {
                self.stage(u, record(unit, 0, RECORD_PENDING))?;
                self.commit_batch(u)?;
            }
            let _ = writeln!(
                out,
                "pending {}: main cannot read it; the next write heals it",
                main_sector
            );
            return Ok(());
        }
        // Counted as manual by the commit; a batch is empty between bios, so this one holds only this unit.
        u.cause = RemapCause::Manual;
        let staged = self
            .stage_relocation(u, unit)
            .and_then(|at| self.commit_batch(u).map(|()| at));
        u.cause = RemapCause::Auto;
        let (spare, spare_sector) = staged?;
        let _ = writeln!(
            out,
            "remapped {} to spare {} sector {}",
            main_sector, spare, spare_sector
        );
        Ok(())
    }

    /// `unremap <sector>`: copies the unit back from its spare unit to main, reads it back to verify, then
    /// commits and drops the entry and frees the spare unit. The caller makes sure no write is in flight (the
    /// device is suspended). If main cannot take the data back, the unit stays remapped.
    pub(crate) fn unremap_now(
        &self,
        sector: u64,
        out: &mut OutBuf<'_>,
    ) -> Result<(), (Error, &'static CStr)> {
        let us = u64::from(self.unit_sectors());
        let unit = sector / us;
        let (spare, su) = match self.table.get(unit) {
            Some(Entry::Remapped { spare, unit }) => (spare, unit),
            Some(Entry::Pending) => {
                return Err((
                    EINVAL,
                    c"the unit is pending, not remapped (see clear_pending)",
                ))
            }
            None => return Err((ENOENT, c"the unit is not remapped")),
        };
        let (Some(dev), Some(spare_sector)) = (self.spare(spare), self.spare_sector(spare, su))
        else {
            return Err((EINVAL, c"remap entry outside the pool"));
        };
        let main_sector = unit.saturating_mul(us);
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        dev.dev
            .read_sync(spare_sector, &mut u.buf)
            .map_err(|e| (e, c"cannot read the spare unit; the unit stays remapped"))?;
        let written = self.setup.main.write_sync(main_sector, &mut u.buf).is_ok()
            && self.setup.main.flush_sync().is_ok()
            && self.setup.main.read_sync(main_sector, &mut u.check).is_ok();
        if !written {
            self.stats.device_error();
            return Err((EIO, c"main still fails the unit; it stays remapped"));
        }
        if u.check[..] != u.buf[..] {
            return Err((EIO, c"main read back other data; the unit stays remapped"));
        }
        self.stage(u, record(unit, 0, RECORD_CLEARED))?;
        self.commit_batch(u)?;
        // Nothing refers to the spare unit any more.
        let _ = u.pool.free(spare, su);
        self.note_pool(u);
        let _ = writeln!(
            out,
            "unremapped {} from spare {} sector {}",
            main_sector, spare, spare_sector
        );
        Ok(())
    }

    /// `clear_pending <sector>`: forgets a failed read, durably: reads and writes of the unit go to main again.
    pub(crate) fn clear_pending(&self, sector: u64) -> Result<(), (Error, &'static CStr)> {
        let unit = sector / u64::from(self.unit_sectors());
        let mut guard = self.updates.lock();
        match self.table.get(unit) {
            Some(Entry::Pending) => {}
            Some(Entry::Remapped { .. }) => {
                return Err((EINVAL, c"the unit is remapped, not pending (see unremap)"))
            }
            None => return Err((ENOENT, c"the unit is not pending")),
        }
        self.stage(&mut guard, record(unit, 0, RECORD_CLEARED))?;
        self.commit_batch(&mut guard)
    }

    /// Before the table serves I/O (every resume): refuses to go on when another table wrote to a spare's
    /// metadata since this one loaded it, since this table's map would miss those remaps and its next commit
    /// would overwrite them; then brings the members that are behind up to date. Both need any previous table
    /// of the device suspended, which device-mapper guarantees here.
    pub(crate) fn preresume(&self) -> Result {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        for (spare, md) in self.setup.spares.iter().zip(u.metadata.iter_mut()) {
            if !spare.role().commits() {
                continue;
            }
            if let Err((e, why)) = md.check_unchanged() {
                pr_err!(
                    "spare {}: {}; load the table again\n",
                    spare.dev.name(),
                    why.to_str().unwrap_or("?")
                );
                return Err(e);
            }
        }
        // The table goes live: a crash from now on is not a clean shutdown.
        self.mark_dirty(u);
        let Some(r) = u.resync else {
            return Ok(());
        };
        for (spare, md) in self.setup.spares.iter().zip(u.metadata.iter_mut()) {
            let wanted = 1u32
                .checked_shl(spare.member)
                .is_some_and(|bit| r.mask & bit != 0);
            if !wanted {
                continue;
            }
            let table = &mut Snapshot::new(&self.table, &[]);
            if let Err((e, why)) = md.resync(r.seq, r.members, r.removed, table) {
                self.md_failed.store(true, Ordering::Relaxed);
                pr_err!(
                    "spare {}: bringing its metadata up to date failed: {}\n",
                    spare.dev.name(),
                    why.to_str().unwrap_or("?")
                );
                return Err(e);
            }
            pr_info!(
                "spare {} (member {}) brought up to date: sequence {}, {} spares\n",
                spare.dev.name(),
                spare.member,
                r.seq,
                r.members
            );
        }
        u.resync = None;
        if let Some(md) = u.metadata.first() {
            self.md_version.store(md.version(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes a dirty shutdown mark on every committing spare, unless this table did since the load or the
    /// last clean mark. Called before any change of the metadata and when the table goes live, so that a crash
    /// after it (even one that loses a commit and leaves the old sequence) never looks like a clean shutdown.
    /// A spare that fails the write is only warned about: the mark is advisory, and a clean mark counts only
    /// for exactly the metadata it recorded, which the next commit changes anyway.
    pub(crate) fn mark_dirty(&self, u: &mut Updates) {
        if u.marked_dirty {
            return;
        }
        u.marked_dirty = true;
        for (spare, md) in self.setup.spares.iter().zip(u.metadata.iter_mut()) {
            if !spare.role().commits() {
                continue;
            }
            if let Err((_, why)) = md.mark_dirty() {
                pr_warn!(
                    "spare {}: {}\n",
                    spare.dev.name(),
                    why.to_str().unwrap_or("?")
                );
            }
        }
    }

    /// Once the device has suspended (no bio in flight, no change under way): writes a clean shutdown mark,
    /// recording the metadata version and commit sequence, on every committing spare that this table marked
    /// dirty. Nothing after a failed commit (the metadata on disk is then unknown: it stays dirty), and
    /// nothing when this table never marked the setup dirty (it changed nothing, and its mark may be stale).
    pub(crate) fn mark_clean(&self) {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        if !u.marked_dirty || self.md_failed.load(Ordering::Relaxed) || !u.batch.is_empty() {
            return;
        }
        u.marked_dirty = false;
        for (spare, md) in self.setup.spares.iter().zip(u.metadata.iter_mut()) {
            if !spare.role().commits() {
                continue;
            }
            if let Err((_, why)) = md.mark_clean() {
                pr_warn!(
                    "spare {}: {}\n",
                    spare.dev.name(),
                    why.to_str().unwrap_or("?")
                );
            }
        }
    }

    /// The scrub could not read `unit` on main: records it as pending, like a failed read, unless it has an
    /// entry already. True when it was recorded.
    pub(crate) fn scrub_unreadable(&self, unit: u64) -> Result<bool, (Error, &'static CStr)> {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        if self.table.get(unit).is_some() {
            return Ok(false);
        }
        self.stage(u, record(unit, 0, RECORD_PENDING))?;
        self.commit_batch(u)?;
        Ok(true)
    }

    /// The scrub found `unit` slow but readable: copies it to a new spare unit while the device is live,
    /// holding writes to the unit meanwhile (`gate.rs`), and commits the mapping before the hold ends.
    pub(crate) fn scrub_relocate(&self, unit: u64) -> Result<ScrubFix, (Error, &'static CStr)> {
        if self.table.get(unit).is_some() {
            return Ok(ScrubFix::Skipped);
        }
        let (used, total) = self.spare_counts();
        if !proactive_allowed(used, total) {
            return Err((
                ENOSPC,
                c"the spares are nearly full; their last tenth is kept for units that fail",
            ));
        }
        let _holder = self.holder.lock();
        if !self.gate.hold(unit, GATE_TIMEOUT_MS) {
            return Err((EBUSY, c"writes to the unit did not complete in time"));
        }
        let done = self.relocate_held(unit);
        self.gate.release();
        done
    }

    fn relocate_held(&self, unit: u64) -> Result<ScrubFix, (Error, &'static CStr)> {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        if self.table.get(unit).is_some() {
            return Ok(ScrubFix::Skipped);
        }
        let sector = unit.saturating_mul(u64::from(self.unit_sectors()));
        if self.setup.main.read_sync(sector, &mut u.buf).is_err() {
            self.stats.device_error();
            self.stage(u, record(unit, 0, RECORD_PENDING))?;
            self.commit_batch(u)?;
            return Ok(ScrubFix::Pending);
        }
        u.cause = RemapCause::Proactive;
        let staged = self
            .stage_relocation(u, unit)
            .and_then(|at| self.commit_batch(u).map(|()| at));
        u.cause = RemapCause::Auto;
        let (spare, spare_sector) = staged?;
        Ok(ScrubFix::Relocated {
            spare,
            spare_sector,
        })
    }

    /// The `spares` message: one line per spare, by member index.
    pub(crate) fn list_spares(&self, out: &mut OutBuf<'_>) {
        for s in self.setup.spares.iter() {
            // Bounded by the spares; stops once the output buffer is full.
            if writeln!(
                out,
                "{} {} used={} total={} state={} same_disk_as_main={}",
                s.member,
                s.dev.name(),
                s.used(),
                s.pool_units,
                s.role().name(),
                u8::from(s.same_disk_as_main)
            )
            .is_err()
            {
                break;
            }
        }
    }

    /// Writes up to `count` entries, from the unit holding `start_sector`, one per line.
    pub(crate) fn list(&self, start_sector: u64, count: u64, out: &mut OutBuf<'_>) {
        let us = u64::from(self.unit_sectors());
        let entries = self.table.entries_from(start_sector / us);
        // Bounded by `count`, by the table and by the output buffer (a write fails once it is full).
        for (unit, entry) in entries.take(usize::try_from(count).unwrap_or(usize::MAX)) {
            let sector = unit.saturating_mul(us);
            let line = match entry {
                Entry::Remapped { spare, unit: su } => writeln!(
                    out,
                    "{} {} {} active",
                    sector,
                    spare,
                    self.spare_sector(spare, su).unwrap_or(u64::MAX)
                ),
                Entry::Pending => writeln!(out, "{} - - pending", sector),
            };
            if line.is_err() {
                break;
            }
        }
    }
}

impl HandleBio for Remapper {
    type PerBio = BioState;

    /// Handles a group of bios under one lock and commits what they staged together: one flush of each spare
    /// that received data and one journal commit for the group. A bio that staged a change completes after
    /// that commit, and fails if any commit of the group failed.
    fn handle(&self, mut bios: BioList<BioState>) {
        let mut done = BioList::new();
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        u.commit_failure = None;
        u.spare_writes.lost = 0;
        let mut bit = 1u32;
        // Bounded by the group: each step takes one bio off it.
        while let Some(mut bio) = bios.pop() {
            let st = *bio.per_bio();
            let staged = u.staged;
            u.spare_writes.bio = bit;
            let ok = match bio.op() {
                Op::Read => self.complete_read(u, &mut bio, &st),
                Op::Write | Op::WriteZeroes => self.complete_write(u, &bio, &st),
                _ => false,
            };
            bio.per_bio_mut().outcome = Outcome {
                ok,
                staged: u.staged != staged,
                bit,
            };
            done.push(bio);
            // A group has at most 32 bios; were there more, the rest would write their units at once.
            bit = bit.wrapping_shl(1);
        }
        let _ = self.commit_batch(u);
        u.spare_writes.bio = 0;
        let failure = u.commit_failure;
        let lost_units = u.spare_writes.lost;
        drop(guard);
        while let Some(bio) = done.pop() {
            let (st, op) = (*bio.per_bio(), bio.op());
            let lost = st.outcome.staged && failure.is_some();
            // A unit whose data no spare unit took was reported (`write lost`) where that was found.
            let ok = st.outcome.ok && lost_units & st.outcome.bit == 0;
            if let (true, Some(why)) = (lost, failure) {
                let what = if op == Op::Read {
                    "pending units of the read"
                } else {
                    "write"
                };
                warn(format_args!(
                    "{} at sector {} not recorded: {}",
                    what,
                    st.offset,
                    why.to_str().unwrap_or("?")
                ));
            }
            bio.end(if ok && !lost {
                BlkStatus::OK
            } else {
                BlkStatus::IOERR
            });
        }
        self.evacuate_failed();
    }
}
