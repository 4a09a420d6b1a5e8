//! The `dm-remap-v4` target: constructor, I/O routing, status and messages.
//!
//! Every bio is routed over the remap table loaded from the spare's metadata: remapped units go to their
//! spare unit, everything else to the main device at its offset within the target (a bio spanning both is
//! split at the unit boundary). Flushes go to every device; completions are counted.

use core::ffi::CStr;
use core::fmt::Write;

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

use crate::dm::{
    Args, Bio, BlkStatus, CtrError, Device, DeviceVisitor, EndIo, MapResult, Op, QueueLimits,
    StatusKind, Target, TargetCtr, TargetInfo,
};
use crate::imports::{random_uuid, LoadSink, Metadata, RecordSource, SparePool};
use crate::logic::message::{parse_message, Message, HELP};
use crate::logic::outbuf::OutBuf;
use crate::logic::route::{route_first, Dest, Entry, Geometry, RemapLookup};
use crate::logic::status::{write_ima, write_info, write_table, StatusView};
use crate::logic::table::parse_table;
use crate::md_abi::{
    OpenParams, OpenReport, RecordAbi, OPEN_FORMAT_IF_BLANK, RECORD_ACTIVE, RECORD_PENDING,
    SINK_INVALID, SINK_NO_MEMORY, SINK_OK,
};
use crate::stats::{IoKind, IoStats};
use crate::table::{Entries, RemapTable};

const SECTOR_BYTES: u32 = 512;
const SECTOR_SHIFT: u32 = 9;
/// A unit is copied through one kmalloc'ed buffer that must not cross a page.
const MAX_UNIT_BYTES: u32 = 4096;

/// What changes the remap table: serialised by one mutex, used only in process context (never by `map()`).
struct Updates {
    metadata: Metadata,
    pool: SparePool,
    /// One unit of data on its way from main to the spare (kmalloc'ed, as block I/O needs).
    buf: KVec<u8>,
}

/// One `dm-remap-v4` table entry.
pub(crate) struct RemapTarget {
    /// Declared before the devices: fields drop in order, and the metadata handle uses the spare.
    updates: Pin<KBox<Mutex<Updates>>>,
    /// What opening the metadata found and did.
    md_report: OpenReport,
    main: Device,
    spare: Device,
    /// The remap unit: the main device's logical block size.
    unit_bytes: u32,
    table: RemapTable,
    stats: IoStats,
}

/// A record for the metadata journal, stamped with the current time.
fn record(main_unit: u64, spare_unit: u64, state: u32) -> RecordAbi {
    RecordAbi {
        main_unit,
        spare_unit,
        timestamp: crate::imports::now_seconds(),
        spare_index: 0,
        state,
    }
}

/// The whole table as records, with `extra` applied on top (it replaces the entry of its unit, or is added):
/// what a checkpoint written while committing `extra` must hold.
struct Snapshot<'a> {
    entries: Entries<'a>,
    extra: Option<RecordAbi>,
}

impl RecordSource for Snapshot<'_> {
    fn next_record(&mut self) -> Option<RecordAbi> {
        let Some((unit, entry)) = self.entries.next() else {
            return self.extra.take();
        };
        if self.extra.is_some_and(|e| e.main_unit == unit) {
            return self.extra.take();
        }
        Some(match entry {
            Entry::Remapped { spare, unit: su } => RecordAbi {
                spare_index: spare,
                ..record(unit, su, RECORD_ACTIVE)
            },
            Entry::Pending => record(unit, 0, RECORD_PENDING),
        })
    }
}

/// Fills the remap table from the records the metadata module loads.
struct Loader<'a> {
    table: &'a RemapTable,
    /// Highest spare unit seen, checked against the pool once its size is known.
    max_spare_unit: Option<u64>,
}

impl LoadSink for Loader<'_> {
    fn record(&mut self, rec: &RecordAbi) -> i32 {
        let entry = match rec.state {
            // One spare per setup so far: every entry must name spare 0.
            RECORD_ACTIVE if rec.spare_index == 0 => Entry::Remapped {
                spare: 0,
                unit: rec.spare_unit,
            },
            RECORD_PENDING => Entry::Pending,
            _ => return SINK_INVALID,
        };
        if rec.state == RECORD_ACTIVE {
            self.max_spare_unit = self.max_spare_unit.max(Some(rec.spare_unit));
        }
        match self.table.insert(rec.main_unit, entry) {
            Ok(()) => SINK_OK,
            Err(e) if e == ENOMEM => SINK_NO_MEMORY,
            Err(_) => SINK_INVALID,
        }
    }
}

/// Flush bio number device-mapper gives the copy meant for each device (`num_flush_bios`).
const FLUSH_MAIN: u32 = 0;
const FLUSH_SPARE: u32 = 1;

fn ctr_err(errno: Error, msg: &'static CStr) -> CtrError {
    CtrError::new(errno, msg)
}

/// Marks the spare units of the loaded remaps used, so they are never handed out again.
fn claim_loaded_units(table: &RemapTable, pool: &mut SparePool) -> Result {
    for (_, entry) in table.entries_from(0) {
        if let Entry::Remapped { unit, .. } = entry {
            pool.claim(unit)?;
        }
    }
    Ok(())
}

impl RemapTarget {
    /// `remap <sector>`: copies the unit to a new spare unit, commits the mapping durably, then switches
    /// reads and writes of the unit to the spare. Needs the device suspended, so that no write to the unit
    /// is in flight while it is copied. A unit main cannot read becomes pending instead (its next write heals
    /// it), and the output says so.
    fn remap_now(
        &self,
        ti: &TargetInfo,
        sector: u64,
        out: &mut OutBuf<'_>,
    ) -> Result<(), (Error, &'static CStr)> {
        if !ti.suspended() {
            return Err((
                EBUSY,
                c"suspend the device first (dmsetup suspend), then resume it",
            ));
        }
        if sector >= ti.len() {
            return Err((EINVAL, c"sector beyond the end of the device"));
        }
        let us = u64::from(self.unit_sectors());
        let unit = sector / us;
        if matches!(self.table.get(unit), Some(Entry::Remapped { .. })) {
            return Err((EEXIST, c"the unit is already remapped"));
        }
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        let main_sector = unit * us;
        if self.main.read_sync(main_sector, &mut u.buf).is_err() {
            let rec = record(unit, 0, RECORD_PENDING);
            u.metadata.commit(&[rec], &mut self.snapshot(rec))?;
            self.table
                .insert(unit, Entry::Pending)
                .map_err(|e| (e, c"cannot record the pending unit in memory"))?;
            let _ = writeln!(
                out,
                "pending {}: main cannot read it; the next write heals it",
                main_sector
            );
            return Ok(());
        }
        let spare_unit = u
            .pool
            .allocate()
            .map_err(|e| (e, c"no spare unit left (spare exhausted)"))?;
        let copied = (|| {
            let spare_sector = self
                .spare_sector(0, spare_unit)
                .ok_or((EINVAL, c"allocated spare unit outside the pool"))?;
            self.spare
                .write_sync(spare_sector, &mut u.buf)
                .map_err(|e| (e, c"writing the spare failed"))?;
            self.spare
                .flush_sync()
                .map_err(|e| (e, c"flushing the spare failed"))?;
            let rec = record(unit, spare_unit, RECORD_ACTIVE);
            u.metadata.commit(&[rec], &mut self.snapshot(rec))?;
            Ok(spare_sector)
        })();
        let spare_sector = match copied {
            Ok(s) => s,
            Err(e) => {
                // Nothing points at the unit: it is free again.
                let _ = u.pool.free(spare_unit);
                return Err(e);
            }
        };
        // Durable from here on: publish. Insertion can only fail for lack of memory; the remap is then
        // used from the next table load.
        self.table
            .insert(
                unit,
                Entry::Remapped {
                    spare: 0,
                    unit: spare_unit,
                },
            )
            .map_err(|e| {
                (
                    e,
                    c"remap committed but not yet in memory: reload the table",
                )
            })?;
        let _ = writeln!(
            out,
            "remapped {} to spare 0 sector {}",
            main_sector, spare_sector
        );
        Ok(())
    }

    /// The table with `extra` applied, for a checkpoint while committing it.
    fn snapshot(&self, extra: RecordAbi) -> Snapshot<'_> {
        Snapshot {
            entries: self.table.entries_from(0),
            extra: Some(extra),
        }
    }

    fn unit_sectors(&self) -> u32 {
        (self.unit_bytes / SECTOR_BYTES).max(1)
    }

    /// First sector of `unit` of spare `spare`; `None` for anything outside the pool.
    fn spare_sector(&self, spare: u32, unit: u64) -> Option<u64> {
        if spare != 0 || unit >= self.md_report.pool_units {
            return None;
        }
        unit.checked_mul(u64::from(self.unit_sectors()))?
            .checked_add(self.md_report.pool_start)
    }

    /// Writes up to `count` entries, from the unit holding `start_sector`, one per line.
    fn list(&self, start_sector: u64, count: u64, out: &mut OutBuf<'_>) {
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

impl Target for RemapTarget {
    const NAME: &'static CStr = c"dm-remap-v4";
    const VERSION: [u32; 3] = [0, 1, 0];

    fn new(ctr: &mut TargetCtr<'_>, args: Args<'_>) -> Result<Self, CtrError> {
        let table = parse_table(args).map_err(|e| ctr_err(EINVAL, e.message()))?;
        let main = ctr
            .get_device(table.main)
            .map_err(|e| ctr_err(e, c"Cannot open main device"))?;
        let spare = ctr
            .get_device(table.spare)
            .map_err(|e| ctr_err(e, c"Cannot open spare device"))?;
        if main.same_as(&spare) {
            return Err(ctr_err(EINVAL, c"Spare device is the main device"));
        }
        let unit_bytes = main.logical_block_size();
        if spare.logical_block_size() != unit_bytes {
            return Err(ctr_err(
                EINVAL,
                c"Main and spare devices have different logical block sizes",
            ));
        }
        if unit_bytes > MAX_UNIT_BYTES {
            return Err(ctr_err(
                EINVAL,
                c"Logical block sizes above 4096 bytes are not supported",
            ));
        }
        let info = ctr.info();
        if info.len() > main.nr_sectors() {
            return Err(ctr_err(EINVAL, c"Target length exceeds the main device"));
        }
        let unit_sectors = u64::from(unit_bytes / SECTOR_BYTES).max(1);
        if info.len() % unit_sectors != 0 {
            return Err(ctr_err(
                EINVAL,
                c"Target length is not a multiple of the logical block size",
            ));
        }
        let params = OpenParams {
            main_sectors: main.nr_sectors(),
            spare_sectors: spare.nr_sectors(),
            unit_sectors,
            main_logical_block_size: unit_bytes,
            member_index: 0,
            member_count: 1,
            flags: OPEN_FORMAT_IF_BLANK,
            new_uuid: random_uuid(),
            main_id: [0; 64],
        };
        let table =
            RemapTable::new().map_err(|e| ctr_err(e, c"Cannot allocate the remap table"))?;
        let mut loader = Loader {
            table: &table,
            max_spare_unit: None,
        };
        let (metadata, md_report) = Metadata::open(&spare, &params, &mut loader)
            .map_err(|(errno, msg)| ctr_err(errno, msg))?;
        if loader
            .max_spare_unit
            .is_some_and(|u| u >= md_report.pool_units)
        {
            return Err(ctr_err(
                EUCLEAN,
                c"Metadata holds a remap entry outside the spare pool",
            ));
        }
        let mut pool = SparePool::new(md_report.pool_units)
            .map_err(|e| ctr_err(e, c"Cannot allocate the spare pool allocator"))?;
        claim_loaded_units(&table, &mut pool)
            .map_err(|e| ctr_err(e, c"Metadata maps two units to the same spare unit"))?;
        let mut buf = KVec::with_capacity(unit_bytes as usize, GFP_KERNEL)
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the copy buffer"))?;
        buf.resize(unit_bytes as usize, 0, GFP_KERNEL)
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the copy buffer"))?;
        let updates = KBox::pin_init(
            new_mutex!(Updates {
                metadata,
                pool,
                buf
            }),
            GFP_KERNEL,
        )
        .map_err(|e| ctr_err(e, c"Cannot allocate the update state"))?;
        if md_report.formatted != 0 {
            pr_info!("formatted the metadata region of spare {}\n", spare.name());
        }
        if md_report.bad_copies != 0 {
            pr_warn!(
                "spare {}: {} damaged metadata superblock copies, {} rewritten\n",
                spare.name(),
                md_report.bad_copies,
                md_report.repaired
            );
        }
        // A flush must reach every device that may hold acknowledged data.
        ctr.set_num_flush_bios(2);
        ctr.set_num_discard_bios(1);
        ctr.set_num_write_zeroes_bios(1);
        Ok(Self {
            updates,
            md_report,
            main,
            spare,
            unit_bytes,
            table,
            stats: IoStats::default(),
        })
    }

    fn map(&self, ti: &TargetInfo, bio: &mut Bio) -> MapResult {
        if bio.bytes() == 0 {
            // Empty flush: one copy per device.
            let dev = match bio.target_bio_nr() {
                FLUSH_MAIN => &self.main,
                FLUSH_SPARE => &self.spare,
                _ => return MapResult::Kill,
            };
            bio.remap(dev, 0);
            return MapResult::Remapped;
        }
        let offset = bio.sector().wrapping_sub(ti.begin());
        if self.table.is_empty() {
            bio.remap(&self.main, offset);
            return MapResult::Remapped;
        }
        let sectors = bio.bytes() >> SECTOR_SHIFT;
        let is_write = matches!(bio.op(), Op::Write | Op::WriteZeroes);
        let geo = Geometry {
            unit_sectors: self.unit_sectors(),
        };
        let spare_sector = |spare: u32, unit: u64| self.spare_sector(spare, unit);
        let Some(piece) = route_first(geo, &self.table, offset, sectors, is_write, spare_sector)
        else {
            return MapResult::Kill;
        };
        if piece.sectors < sectors {
            bio.accept_partial(piece.sectors);
        }
        match piece.dest {
            Dest::Main { sector } => bio.remap(&self.main, sector),
            Dest::Spare { sector, .. } => bio.remap(&self.spare, sector),
            // Until writes to pending units get their own spare unit (remap path), they go to main, as they
            // would on a plain disk: a drive may reallocate the sector itself on write.
            Dest::Defer => bio.remap(&self.main, offset),
        }
        MapResult::Remapped
    }

    fn end_io(&self, _ti: &TargetInfo, bio: &mut Bio, status: &mut BlkStatus) -> EndIo {
        // The bio's iterator is consumed by now (its size reads 0): tell flushes from data writes by the flag.
        // Device-mapper strips REQ_PREFLUSH from a data write after sending the flush separately.
        let kind = match bio.op() {
            Op::Read => Some(IoKind::Read),
            Op::Write if bio.is_preflush() => {
                // Count a dm-level flush once, not once per device.
                (bio.target_bio_nr() == FLUSH_MAIN).then_some(IoKind::Flush)
            }
            Op::Write => Some(IoKind::Write),
            Op::Discard => Some(IoKind::Discard),
            _ => None,
        };
        if let Some(kind) = kind {
            self.stats.record(kind, status.is_ok());
        }
        EndIo::Done
    }

    fn status(&self, _ti: &TargetInfo, kind: StatusKind, out: &mut OutBuf<'_>) {
        let (spare_used, spare_total) = self.updates.lock().pool.counts();
        let view = StatusView {
            name: "dm-remap-v4",
            version: Self::VERSION,
            main: self.main.name(),
            spare: self.spare.name(),
            unit_bytes: self.unit_bytes,
            spare_used,
            spare_total,
            remapped: self.table.remapped(),
            pending: self.table.pending(),
            metadata: if self.md_report.repaired < self.md_report.bad_copies {
                "degraded"
            } else {
                "ok"
            },
            metadata_repaired: self.md_report.repaired,
            metadata_version: self.md_report.meta_version,
            io: self.stats.snapshot(),
        };
        // Overflow is recorded in `out` and reported to userspace as a full buffer.
        let _ = match kind {
            StatusKind::Info => write_info(out, &view),
            StatusKind::Table => write_table(out, &view),
            StatusKind::Ima => write_ima(out, &view),
        };
    }

    fn message(&self, ti: &TargetInfo, args: Args<'_>, out: &mut OutBuf<'_>) -> Result {
        match parse_message(args) {
            Ok(Message::Help) => {
                let _ = out.write_str(HELP);
                Ok(())
            }
            Ok(Message::List {
                start_sector,
                count,
            }) => {
                self.list(start_sector, count, out);
                Ok(())
            }
            Ok(Message::Remap { sector }) => self.remap_now(ti, sector, out).map_err(|(e, why)| {
                if crate::dm::log_ratelimit() {
                    pr_warn!(
                        "remap {} refused: {}\n",
                        sector,
                        why.to_str().unwrap_or("?")
                    );
                }
                e
            }),
            Err(e) => {
                if crate::dm::log_ratelimit() {
                    pr_warn!(
                        "message rejected: {}\n",
                        e.message().to_str().unwrap_or("?")
                    );
                }
                Err(EINVAL)
            }
        }
    }

    fn iterate_devices(&self, ti: &TargetInfo, visitor: &mut DeviceVisitor) -> i32 {
        let r = visitor.visit(&self.main, 0, ti.len());
        if r != 0 {
            return r;
        }
        visitor.visit(&self.spare, 0, self.spare.nr_sectors())
    }

    fn io_hints(&self, _ti: &TargetInfo, limits: &mut QueueLimits<'_>) {
        // Never let the stack issue I/O smaller than a remap unit.
        limits.stack_block_size(self.unit_bytes);
    }
}
