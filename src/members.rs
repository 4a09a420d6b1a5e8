//! The spares of a table line: opening each one's metadata, checking that they form one setup, formatting new
//! ones and bringing every one up to date, so that each spare holds the whole remap table (losing a spare loses
//! only the data on it, never the map of the others).
//!
//! A spare's superblock records its member index and the number of spares in its setup, so the table may name
//! the spares in any order. Nothing is written before every spare has been checked: a table with a spare of
//! another setup, a missing member or damaged metadata changes nothing on disk.

use core::ffi::CStr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::str::CString;

use crate::dm::{CtrError, Device, TargetCtr};
use crate::imports::{
    check_min_spare, plan_format, random_uuid, LoadSink, Metadata, SparePool, SpareState,
};
use crate::loader::{claim_loaded_units, Loader};
use crate::logic::table::{TableArgs, MAX_SPARES};
use crate::md_abi::{
    OpenParams, OpenReport, RecordAbi, OPEN_ANY_MEMBER, OPEN_EXPECT_UUID, OPEN_FORMAT_FOREIGN,
    OPEN_FORMAT_IF_BLANK, SINK_OK,
};
use crate::table::RemapTable;

/// What a spare of a running setup is for, as the `spares` message shows it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SpareRole {
    /// New units may come from it.
    Active = 0,
    /// `drain` is moving its units elsewhere: no new units from it; its units stay readable.
    Draining = 1,
    /// Drained and recorded as removed from the setup: the next table may leave it out.
    Removed = 2,
    /// A write to its metadata failed while other spares took the commit: it gets no commit and no new
    /// unit, and its units are moved to the other spares where they can be read (`drain.rs`).
    Failed = 3,
}

impl SpareRole {
    /// The word for it in the `spares` message.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SpareRole::Active => "active",
            SpareRole::Draining => "draining",
            SpareRole::Removed => "removed",
            SpareRole::Failed => "failed",
        }
    }

    /// Whether its metadata takes commits.
    pub(crate) fn commits(self) -> bool {
        matches!(self, SpareRole::Active | SpareRole::Draining)
    }

    fn from_u32(n: u32) -> Self {
        match n {
            0 => SpareRole::Active,
            1 => SpareRole::Draining,
            2 => SpareRole::Removed,
            _ => SpareRole::Failed,
        }
    }
}

/// One spare device of a running setup.
pub(crate) struct SpareDev {
    /// Its member index: what remap entries and the allocator call it.
    pub(crate) member: u32,
    pub(crate) dev: Device,
    /// First sector of its pool, after the metadata region.
    pub(crate) pool_start: u64,
    /// Units in its pool.
    pub(crate) pool_units: u64,
    /// Units in use, mirrored from the pool after every change so that `status` never waits for the update
    /// mutex (held across slow I/O when a device misbehaves).
    pub(crate) used: AtomicU64,
    /// On the main device's disk (a partition of it): new units come from the other spares first.
    pub(crate) same_disk_as_main: bool,
    /// A [`SpareRole`]; changed under the remapper's update mutex, read without it.
    role: AtomicU32,
}

impl SpareDev {
    /// Units in use.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn role(&self) -> SpareRole {
        SpareRole::from_u32(self.role.load(Ordering::Relaxed))
    }

    /// Call with the remapper's update mutex held, after the allocator's state was set to match.
    pub(crate) fn set_role(&self, u: SpareRole) {
        self.role.store(u as u32, Ordering::Relaxed);
    }
}

/// The devices and the table line's settings: what the constructor hands the target's state, which keeps it
/// as it is.
pub(crate) struct Setup {
    pub(crate) main: Device,
    /// The spares of the table line, by member index; members removed from the setup are absent, so the
    /// position of a spare is its member index only until one is removed (see [`Setup::spare`]).
    pub(crate) spares: KVec<SpareDev>,
    /// Member index of each spare in table order, for the table line.
    pub(crate) table_order: KVec<u32>,
    /// The table's `main_id` option, as given.
    pub(crate) main_id: Option<CString>,
    /// The remap unit: the main device's logical block size.
    pub(crate) unit_bytes: u32,
    /// The table's `retries` option.
    pub(crate) retries: u32,
    /// The table's `min_spare_percent` option.
    pub(crate) min_spare_percent: u32,
    /// The table's `format_foreign` option.
    pub(crate) format_foreign: bool,
    /// The table's `scrub_rate` option, in KiB/s.
    pub(crate) scrub_rate_kib: u32,
    /// The table's `slow_threshold_ms` option.
    pub(crate) slow_threshold_ms: u32,
    /// Damaged superblock copies found, and rewritten, over every spare, when the table was loaded.
    pub(crate) bad_copies: u32,
    pub(crate) repaired: u32,
    /// Most entries every spare's metadata can hold (the smallest capacity: a spare that joined later may
    /// have been sized for more).
    pub(crate) capacity: u64,
    /// Spares the setup has had: member indices are below it (removed members included).
    pub(crate) member_count: u32,
}

impl Setup {
    /// The spare with member index `member`.
    pub(crate) fn spare(&self, member: u32) -> Option<&SpareDev> {
        let at = usize::try_from(member).ok()?;
        match self.spares.get(at) {
            Some(s) if s.member == member => Some(s),
            // Bounded by the spares (at most 16).
            _ => self.spares.iter().find(|s| s.member == member),
        }
    }
}

/// A setup whose spares are open and agree.
pub(crate) struct Assembled {
    pub(crate) setup: Setup,
    /// Each spare's metadata, by member index.
    pub(crate) metadata: KVec<Metadata>,
    pub(crate) table: RemapTable,
    pub(crate) pool: SparePool,
    /// Members to bring up to date before the table serves I/O.
    pub(crate) resync: Option<Resync>,
    /// Bit `i`: member `i` was removed from the setup.
    pub(crate) removed: u32,
}

/// Members that missed commits or do not know every member yet: at resume, each gets a checkpoint of the
/// whole table recorded under the setup's sequence and member count.
#[derive(Clone, Copy)]
pub(crate) struct Resync {
    pub(crate) seq: u64,
    pub(crate) members: u32,
    /// Bit `i`: member `i` was removed from the setup.
    pub(crate) removed: u32,
    /// Bit `i`: member `i`.
    pub(crate) mask: u32,
}

/// A spare of the table line while the setup is assembled.
struct Opened {
    dev: Device,
    /// `None` while the spare is blank.
    md: Option<(Metadata, OpenReport)>,
}

/// The records of a spare that is only checked, not loaded.
struct Discard;

impl LoadSink for Discard {
    fn record(&mut self, _rec: &RecordAbi) -> i32 {
        SINK_OK
    }
}

fn ctr_err(errno: Error, msg: &'static CStr) -> CtrError {
    CtrError::new(errno, msg)
}

/// Opens the metadata of `dev`, loading its records into the empty `table`.
fn load_into(
    table: &RemapTable,
    dev: &Device,
    params: &OpenParams,
) -> core::result::Result<(Metadata, OpenReport), (Error, &'static CStr)> {
    let mut loader = Loader::new(table);
    let opened = Metadata::open(dev, params, &mut loader)?;
    loader
        .finish()
        .map_err(|e| (e, c"Cannot build the remap table"))?;
    Ok(opened)
}

/// Names the spare a metadata error is about in the kernel log (`ti->error` is one static message).
fn spare_err(dev: &Device, (errno, msg): (Error, &'static CStr)) -> CtrError {
    pr_err!("spare {}: {}\n", dev.name(), msg.to_str().unwrap_or("?"));
    ctr_err(errno, msg)
}

/// Opens the spares of `line`, checks them, formats blank ones, loads the remap table from the newest and
/// says which others must be brought up to date. `base` carries the main device's identity.
pub(crate) fn assemble(
    ctr: &mut TargetCtr<'_>,
    line: &TableArgs<&CStr>,
    main: Device,
    base: OpenParams,
) -> Result<Assembled, CtrError> {
    let unit_bytes = base.main_logical_block_size;
    let mut opened: KVec<Opened> = KVec::with_capacity(line.spare_count, GFP_KERNEL)
        .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    for path in line.spares() {
        let dev = ctr
            .get_device(path)
            .map_err(|e| ctr_err(e, c"Cannot open spare device"))?;
        if main.same_as(&dev) {
            return Err(ctr_err(EINVAL, c"Spare device is the main device"));
        }
        if opened.iter().any(|o| o.dev.same_as(&dev)) {
            return Err(ctr_err(EINVAL, c"Spare device given twice"));
        }
        if dev.logical_block_size() != unit_bytes {
            return Err(ctr_err(
                EINVAL,
                c"Main and spare devices have different logical block sizes",
            ));
        }
        opened
            .push(Opened { dev, md: None }, GFP_KERNEL)
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    }

    // Check every spare, writing nothing but repairs of damaged superblock copies; the first spare with
    // metadata is loaded into the table, the others only read.
    let mut table =
        RemapTable::new().map_err(|e| ctr_err(e, c"Cannot allocate the remap table"))?;
    let mut loaded = None;
    let mut uuid = None;
    let check_params = |dev: &Device, uuid: Option<[u8; 16]>| {
        let mut p = base;
        p.spare_sectors = dev.nr_sectors();
        p.flags = OPEN_ANY_MEMBER;
        if let Some(u) = uuid {
            p.flags |= OPEN_EXPECT_UUID;
            p.expect_uuid = u;
        }
        p
    };
    for (pos, o) in opened.iter_mut().enumerate() {
        let p = check_params(&o.dev, uuid);
        let res = match loaded {
            None => load_into(&table, &o.dev, &p),
            Some(_) => Metadata::open(&o.dev, &p, &mut Discard),
        };
        match res {
            Ok((md, report)) => {
                uuid = Some(report.uuid);
                loaded = loaded.or(Some(pos));
                o.md = Some((md, report));
            }
            Err((e, _)) if e == ENODATA => {}
            // Foreign data (nothing of dm-remap-v4's, damaged or not): formatted below when the table says so.
            Err((e, _)) if e == EBUSY && line.format_foreign => {
                pr_warn!(
                    "spare {}: holds foreign data; format_foreign: formatting it\n",
                    o.dev.name()
                );
            }
            Err(e) => return Err(spare_err(&o.dev, e)),
        }
    }

    // Membership: every member of the setup present, each once.
    let mut present = [false; MAX_SPARES];
    let mut count = 0u32;
    let mut known = 0u32;
    let mut seq = 0u64;
    let mut newest = None;
    for (pos, (_, r)) in opened
        .iter()
        .enumerate()
        .filter_map(|(pos, o)| o.md.as_ref().map(|m| (pos, m)))
    {
        let seen = usize::try_from(r.member_index)
            .ok()
            .and_then(|i| present.get_mut(i))
            .ok_or(ctr_err(EINVAL, c"Spare records an impossible member index"))?;
        if *seen {
            return Err(ctr_err(
                EINVAL,
                c"Two spares are the same member of this setup",
            ));
        }
        *seen = true;
        count = count.max(r.member_count);
        known = known.saturating_add(1);
        if newest.is_none() || r.last_seq > seq {
            seq = r.last_seq;
            newest = Some(pos);
        }
    }
    // Members drained and removed from the setup (`drain`), as the newest member records them: never named
    // again, and not missing when left out.
    let removed = newest
        .and_then(|pos| opened.get(pos))
        .and_then(|o| o.md.as_ref())
        .map_or(0, |(_, r)| r.removed_members);
    let is_removed = |index: u32| {
        1u32.checked_shl(index)
            .is_some_and(|bit| removed & bit != 0)
    };
    for (o, r) in opened
        .iter()
        .filter_map(|o| o.md.as_ref().map(|(_, r)| (o, r)))
    {
        if is_removed(r.member_index) {
            pr_err!(
                "spare {} is member {} of this setup, which was drained and removed from it\n",
                o.dev.name(),
                r.member_index
            );
            return Err(ctr_err(
                EINVAL,
                c"A spare was removed from this setup; wipe its metadata region to add it again",
            ));
        }
    }
    let gone = (0..count).filter(|&i| is_removed(i)).count();
    if u32::try_from(gone)
        .ok()
        .and_then(|g| known.checked_add(g))
        .is_none_or(|k| k < count)
    {
        pr_err!(
            "the table names {} of the {} spares of this setup ({} removed)\n",
            known,
            count,
            gone
        );
        return Err(ctr_err(
            ENODEV,
            c"A spare of this setup is missing from the table",
        ));
    }

    // The table is loaded from the newest spare: one that missed commits must not hide them.
    if let (Some(best), true) = (newest, newest != loaded) {
        let o = opened
            .get_mut(best)
            .ok_or(ctr_err(EINVAL, c"Spare list changed"))?;
        drop(o.md.take());
        table = RemapTable::new().map_err(|e| ctr_err(e, c"Cannot allocate the remap table"))?;
        let p = check_params(&o.dev, uuid);
        let reopened = load_into(&table, &o.dev, &p).map_err(|e| spare_err(&o.dev, e))?;
        o.md = Some(reopened);
    }

    // New spares become the next members. Each holds the whole table, so a setup of several spares sizes
    // every region for all their units.
    let unit_sectors = base.unit_sectors;
    let blanks = opened.iter().filter(|o| o.md.is_none()).count();
    let members = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_add(blanks))
        .and_then(|c| u32::try_from(c).ok())
        .ok_or(ctr_err(EINVAL, c"Too many spare devices"))?;
    let capacity = if opened.len() > 1 {
        opened.iter().fold(0u64, |sum, o| {
            sum.saturating_add(o.dev.nr_sectors().checked_div(unit_sectors).unwrap_or(0))
        })
    } else {
        0
    };
    let setup_uuid = uuid.unwrap_or_else(random_uuid);
    let format_params = |dev: &Device, index: u32| {
        let mut p = base;
        p.spare_sectors = dev.nr_sectors();
        p.flags = OPEN_FORMAT_IF_BLANK;
        if line.format_foreign {
            p.flags |= OPEN_FORMAT_FOREIGN;
        }
        p.member_index = index;
        p.member_count = members;
        p.new_uuid = setup_uuid;
        p.capacity = capacity;
        p
    };

    // Sizing, before anything is formatted: each blank spare must hold its region and a unit, and all the
    // pools together what `min_spare_percent` asks.
    let mut pool_sectors = 0u64;
    for o in opened.iter() {
        let units = match &o.md {
            Some((_, r)) => r.pool_units,
            None => plan_format(&format_params(&o.dev, 0)).map_err(|(e, msg, needed)| {
                pr_err!(
                    "spare {}: {} sectors, needs at least {} for its metadata region and one unit\n",
                    o.dev.name(),
                    o.dev.nr_sectors(),
                    needed
                );
                ctr_err(e, msg)
            })?,
        };
        pool_sectors = pool_sectors.saturating_add(units.saturating_mul(unit_sectors));
    }
    if let Err(required) = check_min_spare(base.main_sectors, pool_sectors, line.min_spare_percent)
    {
        pr_err!(
            "the spares' pools hold {} sectors; min_spare_percent {} of the main device needs {}\n",
            pool_sectors,
            line.min_spare_percent,
            required
        );
        return Err(ctr_err(
            ENOSPC,
            c"Spare devices are smaller than min_spare_percent requires",
        ));
    }

    let mut next = count;
    for o in opened.iter_mut().filter(|o| o.md.is_none()) {
        let p = format_params(&o.dev, next);
        let formatted =
            Metadata::open(&o.dev, &p, &mut Discard).map_err(|e| spare_err(&o.dev, e))?;
        pr_info!(
            "formatted the metadata region of spare {} as member {} of {}\n",
            o.dev.name(),
            next,
            members
        );
        o.md = Some(formatted);
        next = next.saturating_add(1);
    }

    // Every member must record the same commit sequence and member count. A new setup is there already;
    // otherwise the members behind are brought up to date when the table is resumed, once a previous table
    // of this setup is suspended and can no longer commit (`Remapper::preresume`).
    let mut resync = None;
    if count > 0 {
        let mut mask = 0u32;
        for (_, r) in opened.iter().filter_map(|o| o.md.as_ref()) {
            if r.last_seq < seq || r.member_count < members || r.removed_members != removed {
                mask |= 1u32.checked_shl(r.member_index).unwrap_or(0);
            }
        }
        if mask != 0 {
            resync = Some(Resync {
                seq,
                members,
                removed,
                mask,
            });
        }
    }

    let mut table_order = KVec::with_capacity(opened.len(), GFP_KERNEL)
        .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    for o in opened.iter() {
        let index = o.md.as_ref().map_or(u32::MAX, |(_, r)| r.member_index);
        table_order
            .push(index, GFP_KERNEL)
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    }
    opened.sort_unstable_by_key(|o| o.md.as_ref().map_or(u32::MAX, |(_, r)| r.member_index));

    let mut spares = KVec::with_capacity(opened.len(), GFP_KERNEL)
        .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    let mut metadata = KVec::with_capacity(opened.len(), GFP_KERNEL)
        .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    let mut pool =
        SparePool::new().map_err(|e| ctr_err(e, c"Cannot allocate the spare pool allocator"))?;
    let (mut bad_copies, mut repaired) = (0u32, 0u32);
    let mut capacity = u64::MAX;
    // `opened` is sorted by member index and holds each member of 0..members once, but the removed ones. The
    // allocator numbers spares by member index: a removed member is an empty spare it never allocates from.
    let mut index = 0u32;
    for o in opened.drain_all() {
        let Some((md, r)) = o.md else {
            return Err(ctr_err(EINVAL, c"Spare list changed"));
        };
        // Bounded by the member index (below 16).
        while index < r.member_index && is_removed(index) {
            pool.add_spare(0, false)
                .and_then(|()| pool.set_state(index, SpareState::Missing))
                .map_err(|e| ctr_err(e, c"Cannot allocate the spare pool allocator"))?;
            index = index.saturating_add(1);
        }
        if r.member_index != index {
            return Err(ctr_err(
                EINVAL,
                c"Spare member indices of this setup are not contiguous",
            ));
        }
        index = index.saturating_add(1);
        if r.bad_copies != 0 {
            pr_warn!(
                "spare {}: {} damaged metadata superblock copies, {} rewritten\n",
                o.dev.name(),
                r.bad_copies,
                r.repaired
            );
        }
        bad_copies = bad_copies.saturating_add(r.bad_copies);
        capacity = capacity.min(r.capacity);
        repaired = repaired.saturating_add(r.repaired);
        let same_disk = o.dev.same_disk_as(&main);
        if same_disk {
            pr_info!(
                "spare {} is on the main device's disk: used only when the others are full\n",
                o.dev.name()
            );
        }
        pool.add_spare(r.pool_units, same_disk)
            .map_err(|e| ctr_err(e, c"Cannot allocate the spare pool allocator"))?;
        metadata
            .push(md, GFP_KERNEL)
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
        spares
            .push(
                SpareDev {
                    member: r.member_index,
                    role: AtomicU32::new(SpareRole::Active as u32),
                    dev: o.dev,
                    pool_start: r.pool_start,
                    pool_units: r.pool_units,
                    used: AtomicU64::new(0),
                    same_disk_as_main: same_disk,
                },
                GFP_KERNEL,
            )
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the spare list"))?;
    }
    let pool_units = |member: u32| {
        spares
            .iter()
            .find(|s| s.member == member)
            .map(|s: &SpareDev| s.pool_units)
    };
    claim_loaded_units(&table, &mut pool, pool_units).map_err(|e| {
        if e == EUCLEAN {
            ctr_err(e, c"Metadata holds a remap entry outside the spare pool")
        } else {
            ctr_err(e, c"Metadata maps two units to the same spare unit")
        }
    })?;
    let main_id = match line.main_id {
        Some(id) => Some(
            CString::try_from_fmt(fmt!("{}", id.to_str().unwrap_or("?")))
                .map_err(|e| ctr_err(e, c"Cannot allocate the main_id"))?,
        ),
        None => None,
    };
    Ok(Assembled {
        setup: Setup {
            main,
            spares,
            table_order,
            main_id,
            unit_bytes,
            retries: line.retries,
            min_spare_percent: line.min_spare_percent,
            format_foreign: line.format_foreign,
            scrub_rate_kib: line.scrub_rate_kib,
            slow_threshold_ms: line.slow_threshold_ms,
            bad_copies,
            repaired,
            capacity,
            member_count: members,
        },
        metadata,
        table,
        pool,
        resync,
        removed,
    })
}
