//! The `dm-remap-v4` target: constructor, I/O routing, status and messages.
//!
//! Every bio is routed over the remap table loaded from the spare's metadata: remapped units go to their
//! spare unit, everything else to the main device at its offset within the target (a bio spanning both is
//! split at the unit boundary). Flushes go to every device; completions are counted.
//!
//! A data bio that fails below, and a write to a pending unit, is handed to the worker, which redoes it unit by
//! unit (`remapper.rs`): failed writes are relocated to the spare, failed reads recorded as pending.

use core::ffi::CStr;
use core::fmt::Write;

use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::Arc;
use kernel::time::{Instant, Monotonic};

use crate::dm::{
    Args, Bio, BioWorker, BlkStatus, CtrError, DeviceVisitor, EndIo, MapResult, Op, OwnedBio,
    QueueLimits, StatusKind, Target, TargetCtr, TargetInfo,
};
use crate::gate::Ticket;
use crate::logic::health::{health_score, write_latency, HealthInputs};
use crate::logic::message::{parse_message, Message, HELP};
use crate::logic::outbuf::OutBuf;
use crate::logic::route::{route_first, Dest, Geometry};
use crate::logic::scrub::write_scrub_status;
use crate::logic::status::{
    write_ima, write_info, write_stats, write_table, write_table_memory, StatusView,
};
use crate::logic::table::parse_table;
use crate::logic::table::MAX_SPARES;
use crate::md_abi::{OpenParams, MAIN_ID_SIZE};
use crate::members::{assemble, Assembled, SpareRole};
use crate::remapper::{unit_buffer, BioState, Remapper, Route, Updates, MAX_BATCH, SECTOR_BYTES};
use crate::scrub::Scrubber;
use crate::spare_writes::SpareWrites;
use crate::stats::{IoKind, IoStats, RemapCause};

const SECTOR_SHIFT: u32 = 9;
/// A unit is copied through one kmalloc'ed buffer that must not cross a page.
const MAX_UNIT_BYTES: u32 = 4096;

/// One `dm-remap-v4` table entry: the state, shared with the worker that completes the bios `map()` and
/// `end_io()` hand over.
pub(crate) struct RemapTarget {
    worker: Arc<BioWorker<Remapper>>,
    scrub: Arc<Scrubber>,
}

impl Drop for RemapTarget {
    fn drop(&mut self) {
        // Device-mapper has waited for every bio; stop the scrub and let the worker finish with the last bio
        // before the devices (inside the shared state) are put, here in the destructor.
        self.scrub.shut_down();
        self.worker.drain();
    }
}

/// Flush bio number device-mapper gives the copy meant for the main device (`num_flush_bios`); spare `i`
/// gets number `i + 1`.
const FLUSH_MAIN: u32 = 0;

fn ctr_err(errno: Error, msg: &'static CStr) -> CtrError {
    CtrError::new(errno, msg)
}

/// Checks a message's sector; `quiesced` for messages that copy data, which no write may race with.
fn sector_check(
    ti: &TargetInfo,
    sector: u64,
    quiesced: bool,
) -> Result<(), (Error, &'static CStr)> {
    if quiesced && !ti.suspended() {
        // A write in flight to the unit while it is copied would be lost.
        return Err((
            EBUSY,
            c"suspend the device first (dmsetup suspend), then resume it",
        ));
    }
    if sector >= ti.len() {
        return Err((EINVAL, c"sector beyond the end of the device"));
    }
    Ok(())
}

/// Logs why a message was refused and returns its errno. Not rate-limited: each line answers an
/// administrator's command, and device-mapper's shared limit may be spent on I/O errors just then.
fn refused(what: &str, sector: u64, done: Result<(), (Error, &'static CStr)>) -> Result {
    done.map_err(|(e, why)| {
        pr_warn!(
            "{} {} refused: {}\n",
            what,
            sector,
            why.to_str().unwrap_or("?")
        );
        e
    })
}

impl RemapTarget {
    fn r(&self) -> &Remapper {
        self.worker.handler()
    }

    /// Carries out a message (`Target::message`).
    fn answer(&self, ti: &TargetInfo, args: Args<'_>, out: &mut OutBuf<'_>) -> Result {
        let r = self.r();
        match parse_message(args) {
            Ok(Message::Help) => {
                let _ = out.write_str(HELP);
                Ok(())
            }
            Ok(Message::List {
                start_sector,
                count,
            }) => {
                r.list(start_sector, count, out);
                Ok(())
            }
            Ok(Message::Stats) => {
                let (auto, manual, proactive) = r.stats.remaps();
                let _ = write_stats(out, &r.stats.snapshot())
                    .and_then(|()| write_table_memory(out, &r.table.memory()))
                    .and_then(|()| writeln!(out, "remaps_auto={}\nremaps_manual={}", auto, manual))
                    .and_then(|()| writeln!(out, "remaps_proactive={}", proactive))
                    .and_then(|()| writeln!(out, "md_commits={}", r.stats.commits()))
                    .and_then(|()| write_latency(out, &r.stats.main_latency_snapshot()));
                Ok(())
            }
            Ok(Message::ClearStats) => {
                r.stats.clear();
                Ok(())
            }
            Ok(Message::Spares) => {
                r.list_spares(out);
                Ok(())
            }
            Ok(Message::Drain { member }) => {
                let done = r.drain(member, out);
                refused("drain of spare", u64::from(member), done)
            }
            Ok(Message::ScrubStart) => {
                self.scrub.start();
                Ok(())
            }
            Ok(Message::ScrubStop) => {
                self.scrub.stop();
                Ok(())
            }
            Ok(Message::ScrubRate { kib }) => {
                self.scrub.set_rate(kib);
                Ok(())
            }
            Ok(Message::ScrubStatus) => {
                let _ = write_scrub_status(out, &self.scrub.view());
                Ok(())
            }
            Ok(Message::Remap { sector }) => {
                let done = sector_check(ti, sector, true).and_then(|()| r.remap_now(sector, out));
                refused("remap", sector, done)
            }
            Ok(Message::Unremap { sector }) => {
                let done = sector_check(ti, sector, true).and_then(|()| r.unremap_now(sector, out));
                refused("unremap", sector, done)
            }
            Ok(Message::ClearPending { sector }) => {
                let done = sector_check(ti, sector, false).and_then(|()| r.clear_pending(sector));
                refused("clear_pending", sector, done)
            }
            Err(e) => {
                // Not rate-limited, as in `refused`.
                pr_warn!(
                    "message rejected: {}\n",
                    e.message().to_str().unwrap_or("?")
                );
                Err(EINVAL)
            }
        }
    }
}

impl Target for RemapTarget {
    const NAME: &'static CStr = c"dm-remap-v4";
    const VERSION: [u32; 3] = [0, 2, 0];
    type PerBio = BioState;

    fn new(ctr: &mut TargetCtr<'_>, args: Args<'_>) -> Result<Self, CtrError> {
        let line = parse_table(args).map_err(|e| ctr_err(EINVAL, e.message()))?;
        let main = ctr
            .get_device(line.main)
            .map_err(|e| ctr_err(e, c"Cannot open main device"))?;
        let unit_bytes = main.logical_block_size();
        if unit_bytes > MAX_UNIT_BYTES {
            return Err(ctr_err(
                EINVAL,
                c"Logical block sizes above 4096 bytes are not supported",
            ));
        }
        let info = ctr.info();
        let len_sectors = info.len();
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
        let mut main_id = [0u8; MAIN_ID_SIZE];
        if let Some(id) = line.main_id {
            // The parser allows at most MAIN_ID_SIZE bytes.
            for (d, s) in main_id.iter_mut().zip(id.to_bytes()) {
                *d = *s;
            }
        }
        let base = OpenParams {
            main_sectors: main.nr_sectors(),
            spare_sectors: 0,
            unit_sectors,
            capacity: 0,
            main_logical_block_size: unit_bytes,
            member_index: 0,
            member_count: 1,
            flags: 0,
            new_uuid: [0; 16],
            expect_uuid: [0; 16],
            main_id,
        };
        let wq_name = CString::try_from_fmt(fmt!("{}", main.name()))
            .map_err(|e| ctr_err(e, c"Cannot allocate the worker name"))?;
        let Assembled {
            setup,
            metadata,
            table,
            pool,
            resync,
            removed,
        } = assemble(ctr, &line, main, base)?;
        let buf =
            unit_buffer(unit_bytes).map_err(|e| ctr_err(e, c"Cannot allocate the copy buffer"))?;
        let check =
            unit_buffer(unit_bytes).map_err(|e| ctr_err(e, c"Cannot allocate the copy buffer"))?;
        let batch = KVec::with_capacity(MAX_BATCH, GFP_KERNEL)
            .map_err(|e| ctr_err(e.into(), c"Cannot allocate the commit batch"))?;
        let spare_writes = SpareWrites::new(unit_bytes)
            .map_err(|e| ctr_err(e, c"Cannot allocate the relocation buffers"))?;
        // A flush must reach every device that may hold acknowledged data: the main and each spare.
        let flush_bios = u32::try_from(setup.spares.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or(ctr_err(EINVAL, c"Too many spare devices"))?;
        ctr.set_num_flush_bios(flush_bios);
        ctr.set_num_discard_bios(1);
        ctr.set_num_write_zeroes_bios(1);
        let updates = Updates {
            metadata,
            pool,
            buf,
            check,
            batch,
            spare_writes,
            resync,
            removed,
            cause: RemapCause::Auto,
            staged: 0,
            commit_failure: None,
            marked_dirty: false,
        };
        let stats = IoStats::new().map_err(|e| ctr_err(e, c"Cannot allocate the I/O counters"))?;
        let state = Remapper::new(updates, setup, table, stats);
        let worker = BioWorker::new(&wq_name, state)
            .map_err(|e| ctr_err(e, c"Cannot allocate the worker"))?;
        let scrub_name = CString::try_from_fmt(fmt!("{}-scrub", wq_name.to_str().unwrap_or("?")))
            .map_err(|e| ctr_err(e, c"Cannot allocate the scrub's name"))?;
        let scrub = Scrubber::new(&scrub_name, worker.clone(), len_sectors)
            .map_err(|e| ctr_err(e, c"Cannot allocate the scrub"))?;
        Ok(Self { worker, scrub })
    }

    fn map(&self, ti: &TargetInfo, bio: &mut Bio, pb: &mut BioState) -> MapResult {
        let r = self.r();
        if bio.bytes() == 0 {
            // Empty flush: one copy per device, the main's first.
            let dev = match bio.target_bio_nr() {
                FLUSH_MAIN => &r.setup.main,
                n => match n
                    .checked_sub(1)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| r.setup.spares.get(i))
                {
                    Some(s) => &s.dev,
                    None => return MapResult::Kill,
                },
            };
            bio.remap(dev, 0);
            return MapResult::Remapped;
        }
        let offset = bio.sector().wrapping_sub(ti.begin());
        let sectors = bio.bytes() >> SECTOR_SHIFT;
        // Counted in before the table is read: the scrub may be about to relocate a unit it writes (gate.rs).
        // Discards are not: what a discarded sector reads back is undefined anyway.
        let writes = matches!(bio.op(), Op::Write | Op::WriteZeroes);
        let mut ticket = if writes {
            r.gate.enter()
        } else {
            Ticket::default()
        };
        let mut piece_sectors = sectors;
        let dest = if r.table.is_empty() {
            Dest::Main { sector: offset }
        } else {
            let is_write = matches!(bio.op(), Op::Write | Op::WriteZeroes);
            let geo = Geometry {
                unit_sectors: r.unit_sectors(),
            };
            let spare_sector = |spare: u32, unit: u64| r.spare_sector(spare, unit);
            let Some(piece) = route_first(geo, &r.table, offset, sectors, is_write, spare_sector)
            else {
                r.gate.exit(&mut ticket);
                return MapResult::Kill;
            };
            if piece.sectors < sectors {
                bio.accept_partial(piece.sectors);
                piece_sectors = piece.sectors;
            }
            piece.dest
        };
        // Saved after any split: what the error path needs to redo this piece unit by unit.
        pb.iter = bio.iter();
        pb.offset = offset;
        let data = matches!(bio.op(), Op::Read | Op::Write | Op::WriteZeroes);
        if writes && !matches!(dest, Dest::Defer) {
            let us = u64::from(r.unit_sectors());
            let last = offset.saturating_add(u64::from(piece_sectors.saturating_sub(1))) / us;
            if r.gate.blocks(offset / us, last) {
                // Its unit is being copied to a spare: the worker writes it where the copy leaves it.
                r.gate.exit(&mut ticket);
                pb.taken = true;
                return MapResult::Take;
            }
            pb.ticket = ticket;
        }
        match dest {
            Dest::Main { sector } => {
                pb.route = if data { Route::Main } else { Route::Other };
                // One clock read per data bio to main, for the latency histogram.
                pb.started = data.then(Instant::<Monotonic>::now);
                bio.remap(&r.setup.main, sector);
            }
            Dest::Spare { spare, sector } => {
                let Some(s) = r.spare(spare) else {
                    r.gate.exit(&mut pb.ticket);
                    return MapResult::Kill;
                };
                if writes && s.role() != SpareRole::Active {
                    // A unit of a draining spare moves with its next write.
                    r.gate.exit(&mut pb.ticket);
                    pb.taken = true;
                    return MapResult::Take;
                }
                pb.route = if data { Route::Spare } else { Route::Other };
                bio.remap(&s.dev, sector);
            }
            // A write to pending units: each gets a fresh spare unit, committed before the write completes.
            Dest::Defer => {
                r.gate.exit(&mut ticket);
                pb.taken = true;
                return MapResult::Take;
            }
        }
        MapResult::Remapped
    }

    fn end_io(
        &self,
        _ti: &TargetInfo,
        bio: &mut Bio,
        pb: &mut BioState,
        status: &mut BlkStatus,
    ) -> EndIo {
        let r = self.r();
        r.gate.exit(&mut pb.ticket);
        if let Some(started) = pb.started.take() {
            r.stats
                .main_latency(u64::try_from(started.elapsed().as_micros_ceil()).unwrap_or(0));
        }
        if !pb.taken && !status.is_ok() {
            r.stats.device_error();
            // Data the error path can redo unit by unit: the worker completes it.
            if pb.route != Route::Other {
                pb.taken = true;
                return EndIo::Take;
            }
        }
        // The bio's iterator is consumed by now (its size reads 0): tell flushes from data writes by the flag.
        // Device-mapper strips REQ_PREFLUSH from a data write after sending the flush separately.
        let kind = match bio.op() {
            Op::Read => Some(IoKind::Read),
            Op::Write if bio.is_preflush() => {
                // Count a dm-level flush once, not once per device.
                (bio.target_bio_nr() == FLUSH_MAIN).then_some(IoKind::Flush)
            }
            Op::Write | Op::WriteZeroes => Some(IoKind::Write),
            Op::Discard => Some(IoKind::Discard),
            _ => None,
        };
        if let Some(kind) = kind {
            r.stats.record(kind, status.is_ok());
        }
        EndIo::Done
    }

    fn take(&self, bio: OwnedBio<BioState>) {
        self.worker.defer(bio);
    }

    fn status(&self, _ti: &TargetInfo, kind: StatusKind, out: &mut OutBuf<'_>) {
        let r = self.r();
        let (spare_used, spare_total) = r.spare_counts();
        // Spare names in table order (the table line reproduces what was loaded).
        let mut names = [""; MAX_SPARES];
        let mut n = 0;
        for (slot, index) in names.iter_mut().zip(r.setup.table_order.iter()) {
            *slot = r.spare(*index).map_or("-", |s| s.dev.name());
            n += 1;
        }
        let io = r.stats.snapshot();
        let scrub = self.scrub.view();
        let health = health_score(&HealthInputs {
            ios: io.reads.saturating_add(io.writes),
            device_errors: io.device_errors,
            pending: r.table.pending(),
            spare_used,
            spare_total,
            scrub_growth: scrub.growth(),
        });
        let view = StatusView {
            name: "dm-remap-v4",
            version: Self::VERSION,
            main: r.setup.main.name(),
            spares: names.get(..n).unwrap_or(&[]),
            main_id: r.setup.main_id.as_deref().and_then(|id| id.to_str().ok()),
            unit_bytes: r.setup.unit_bytes,
            spare_used,
            spare_total,
            remapped: r.table.remapped(),
            pending: r.table.pending(),
            state: r.state(),
            metadata: r.metadata_health(),
            metadata_repaired: r.setup.repaired,
            metadata_version: r.metadata_version(),
            retries: r.setup.retries,
            min_spare_percent: r.setup.min_spare_percent,
            format_foreign: r.setup.format_foreign,
            io,
            health,
            scrub_rate_kib: r.setup.scrub_rate_kib,
            slow_threshold_ms: r.setup.slow_threshold_ms,
            scrub_running: scrub.running,
            scrub_sector: scrub.position_sector,
            remaps: {
                let (auto, manual, proactive) = r.stats.remaps();
                [auto, manual, proactive]
            },
        };
        // Overflow is recorded in `out` and reported to userspace as a full buffer.
        let _ = match kind {
            StatusKind::Info => write_info(out, &view),
            StatusKind::Table => write_table(out, &view),
            StatusKind::Ima => write_ima(out, &view),
        };
    }

    fn message(&self, ti: &TargetInfo, args: Args<'_>, out: &mut OutBuf<'_>) -> Result {
        let done = self.answer(ti, args, out);
        // A commit of the message may have failed a spare.
        self.r().evacuate_failed();
        // A change made while suspended (remap, unremap, ...) marked the setup dirty; it is quiescent again,
        // so a suspended device stays marked clean (a no-op when nothing was marked dirty).
        if ti.suspended() {
            self.r().mark_clean();
        }
        done
    }

    fn iterate_devices(&self, ti: &TargetInfo, visitor: &mut DeviceVisitor) -> i32 {
        let r = self.r();
        let res = visitor.visit(&r.setup.main, 0, ti.len());
        if res != 0 {
            return res;
        }
        for s in r.setup.spares.iter() {
            let res = visitor.visit(&s.dev, 0, s.dev.nr_sectors());
            if res != 0 {
                return res;
            }
        }
        0
    }

    fn preresume(&self, _ti: &TargetInfo) -> Result {
        self.r().preresume()
    }

    fn presuspend(&self, _ti: &TargetInfo) {
        self.scrub.presuspend();
    }

    fn postsuspend(&self, _ti: &TargetInfo) {
        self.r().mark_clean();
    }

    fn resume(&self, _ti: &TargetInfo) {
        self.scrub.resume();
    }

    fn io_hints(&self, _ti: &TargetInfo, limits: &mut QueueLimits<'_>) {
        // Never let the stack issue I/O smaller than a remap unit.
        limits.stack_block_size(self.r().setup.unit_bytes);
    }
}
