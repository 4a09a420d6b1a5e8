//! The background scrub: reads the main device in chunks at a set rate, so that bad and slow sectors are
//! found before a user needs their data.
//!
//! - A unit main cannot read (after `retries` more tries) becomes pending, as if a user's read had failed:
//!   reported, and healed by its next write.
//! - A unit whose every one of [`SLOW_READS`] reads is slower than `slow_threshold_ms` is relocated while it
//!   is still readable (`Remapper::scrub_relocate`, live, through the write gate).
//! - Units with an entry are skipped: their data lives on a spare, or is known unreadable.
//!
//! One pass runs from where the last one stopped to the end of the device, then the scrub stops (run it
//! again with `scrub start`, say from a timer). Its state is saved in the spares' metadata (blocks 1 and 9,
//! `docs/metadata-format.md`) every [`SAVE_INTERVAL_SECONDS`], when it stops, when a pass ends and when the
//! device is suspended, and read back at the table's first resume: a scrub that was running continues where
//! it was, also after a reboot.
//!
//! The scrub runs as one work item on a workqueue of its own, sleeping between chunks on a condition
//! variable so that `scrub stop` and a suspend end the sleep at once. It stops before the device suspends
//! (`presuspend`), so it never does I/O while another table may be taking over.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};
use kernel::time::{msecs_to_jiffies, Instant, Monotonic};
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

use crate::dm::{BioWorker, NoIoScope, OwnedQueue};
use crate::logic::route::RemapLookup;
use crate::logic::scrub::{
    chunk_at, chunk_units, is_slow, pace_micros, resume_position, ScrubView, BUSY_SLOWDOWN,
    BUSY_WINDOW_MS, CHUNK_BYTES, SAVE_INTERVAL_SECONDS, SLOW_READS,
};
use crate::md_abi::ScrubStateAbi;
use crate::remapper::{Remapper, ScrubFix};

/// How far the scrub may fall behind its rate before its pacing starts over, instead of catching up.
const MAX_LAG_MICROS: u64 = 1_000_000;

/// What starts and stops the scrub, under [`Scrubber::ctl`].
struct Ctl {
    /// `scrub start` was sent (or the saved state said so) and the pass has not ended.
    enabled: bool,
    /// The device is suspended (or being destroyed): no I/O of ours.
    suspended: bool,
    /// The saved state was read (at the first resume).
    loaded: bool,
}

/// The scrub's buffers, used only by the work item.
struct ScrubIo {
    /// One chunk; empty until the first run, and when it could not be allocated (then units are read one by
    /// one).
    chunk: KVec<u8>,
    /// One unit.
    unit: KVec<u8>,
}

/// The scrub of one target.
#[pin_data]
pub(crate) struct Scrubber {
    #[pin]
    ctl: Mutex<Ctl>,
    /// Ends the work item's sleep between chunks early.
    #[pin]
    wake: CondVar,
    #[pin]
    io: Mutex<ScrubIo>,
    #[pin]
    work: Work<Scrubber>,
    worker: Arc<BioWorker<Remapper>>,
    queue: OwnedQueue,
    /// Units in the target.
    total_units: u64,
    /// Lock-free copies for `status` and `scrub status`.
    running: AtomicBool,
    position: AtomicU64,
    passes: AtomicU64,
    scanned_bytes: AtomicU64,
    found_pending: AtomicU64,
    relocated: AtomicU64,
    pass_started: AtomicU64,
    rate_kib: AtomicU32,
    /// Units found (unreadable or slow) in the pass under way, by the last complete pass, and by the one
    /// before it: the health score's trend.
    pass_found: AtomicU64,
    last_pass_found: AtomicU64,
    prev_pass_found: AtomicU64,
}

impl_has_work! {
    impl HasWork<Self> for Scrubber { self.work }
}

fn warn(args: core::fmt::Arguments<'_>) {
    if crate::dm::log_ratelimit() {
        pr_warn!("{}\n", args);
    }
}

impl Scrubber {
    /// A stopped scrub of the `len_sectors` of the target behind `worker`; `name` names its workqueue.
    pub(crate) fn new(
        name: &CStr,
        worker: Arc<BioWorker<Remapper>>,
        len_sectors: u64,
    ) -> Result<Arc<Self>> {
        let r = worker.handler();
        let total_units = len_sectors / u64::from(r.unit_sectors());
        let rate = r.setup.scrub_rate_kib;
        let unit = KVec::from_elem(0u8, usize::try_from(r.setup.unit_bytes)?, GFP_KERNEL)?;
        let queue = OwnedQueue::new(name)?;
        Arc::pin_init(
            try_pin_init!(Self {
                ctl <- new_mutex!(Ctl {
                    enabled: false,
                    suspended: true,
                    loaded: false,
                }),
                wake <- new_condvar!("dm-remap-v4 scrub"),
                io <- new_mutex!(ScrubIo {
                    chunk: KVec::new(),
                    unit,
                }),
                work <- new_work!("dm-remap-v4 scrub"),
                worker,
                queue,
                total_units,
                running: AtomicBool::new(false),
                position: AtomicU64::new(0),
                passes: AtomicU64::new(0),
                scanned_bytes: AtomicU64::new(0),
                found_pending: AtomicU64::new(0),
                relocated: AtomicU64::new(0),
                pass_started: AtomicU64::new(0),
                rate_kib: AtomicU32::new(rate),
                pass_found: AtomicU64::new(0),
                last_pass_found: AtomicU64::new(0),
                prev_pass_found: AtomicU64::new(0),
            }? Error),
            GFP_KERNEL,
        )
    }

    fn r(&self) -> &Remapper {
        self.worker.handler()
    }

    /// `scrub start`: runs a pass from the saved position (the device's start after a completed pass).
    pub(crate) fn start(self: &Arc<Self>) {
        let kick = {
            let mut ctl = self.ctl.lock();
            if ctl.enabled {
                return;
            }
            ctl.enabled = true;
            self.running.store(true, Relaxed);
            if self.position.load(Relaxed) == 0 {
                self.pass_started
                    .store(crate::imports::now_seconds(), Relaxed);
            }
            !ctl.suspended
        };
        self.save();
        if kick {
            let _ = self.queue.get().enqueue(self.clone());
        }
    }

    /// `scrub stop`: stops after the chunk being read; the position is kept and saved.
    pub(crate) fn stop(&self) {
        {
            let mut ctl = self.ctl.lock();
            if !ctl.enabled {
                return;
            }
            ctl.enabled = false;
            self.running.store(false, Relaxed);
        }
        self.wake.notify_all();
        self.queue.flush();
        self.save();
    }

    /// `scrub rate <KiB/s>`: applies from the next chunk.
    pub(crate) fn set_rate(&self, kib: u32) {
        self.rate_kib.store(kib, Relaxed);
        self.wake.notify_all();
    }

    /// Before the device suspends: stops the work item and saves the state of a running scrub; it continues
    /// at resume. A stopped scrub's state was saved when it stopped: a load and remove write nothing.
    pub(crate) fn presuspend(&self) {
        let running = {
            let mut ctl = self.ctl.lock();
            let running = !ctl.suspended && ctl.enabled;
            ctl.suspended = true;
            running
        };
        self.wake.notify_all();
        self.queue.flush();
        if running {
            self.save();
        }
    }

    /// The table serves I/O: the first time, reads the saved state; then continues a running scrub.
    pub(crate) fn resume(self: &Arc<Self>) {
        let first = !self.ctl.lock().loaded;
        if first {
            self.load();
        }
        let kick = {
            let mut ctl = self.ctl.lock();
            ctl.loaded = true;
            ctl.suspended = false;
            ctl.enabled
        };
        if kick {
            let _ = self.queue.get().enqueue(self.clone());
        }
    }

    /// Before the target goes: no more I/O. Saves nothing: a newer table may own the metadata by now.
    pub(crate) fn shut_down(&self) {
        self.ctl.lock().suspended = true;
        self.wake.notify_all();
        self.queue.flush();
    }

    /// Reads the saved state from the first spare that has one.
    fn load(&self) {
        let mut found = None;
        {
            let mut u = self.r().updates.lock();
            for md in u.metadata.iter_mut() {
                match md.scrub_load() {
                    Ok(Some(s)) => {
                        found = Some(s);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => warn(format_args!(
                        "scrub: reading its saved state failed ({:?}); trying the next spare",
                        e
                    )),
                }
            }
        }
        let Some(s) = found else {
            return;
        };
        self.position
            .store(resume_position(s.position, self.total_units), Relaxed);
        self.passes.store(s.passes, Relaxed);
        self.found_pending.store(s.found_pending, Relaxed);
        self.relocated.store(s.relocated, Relaxed);
        self.pass_started.store(s.pass_started, Relaxed);
        self.pass_found.store(s.pass_found, Relaxed);
        self.last_pass_found.store(s.last_pass_found, Relaxed);
        self.prev_pass_found.store(s.prev_pass_found, Relaxed);
        let running = s.running == 1;
        self.ctl.lock().enabled = running;
        self.running.store(running, Relaxed);
        if running {
            pr_info!(
                "scrub of {} continues at sector {}\n",
                self.r().setup.main.name(),
                self.sector(self.position.load(Relaxed))
            );
        }
    }

    /// Saves the state on every spare (one block each, written with FUA).
    fn save(&self) {
        let state = ScrubStateAbi {
            position: self.position.load(Relaxed),
            passes: self.passes.load(Relaxed),
            found_pending: self.found_pending.load(Relaxed),
            relocated: self.relocated.load(Relaxed),
            pass_started: self.pass_started.load(Relaxed),
            rate_kib: self.rate_kib.load(Relaxed),
            running: u32::from(self.running.load(Relaxed)),
            pass_found: self.pass_found.load(Relaxed),
            last_pass_found: self.last_pass_found.load(Relaxed),
            prev_pass_found: self.prev_pass_found.load(Relaxed),
        };
        let mut u = self.r().updates.lock();
        for md in u.metadata.iter_mut() {
            if let Err((_, why)) = md.scrub_save(&state) {
                warn(format_args!(
                    "scrub: saving its position failed: {}",
                    why.to_str().unwrap_or("?")
                ));
            }
        }
    }

    fn sector(&self, unit: u64) -> u64 {
        unit.saturating_mul(u64::from(self.r().unit_sectors()))
    }

    /// `scrub status`.
    pub(crate) fn view(&self) -> ScrubView {
        let r = self.r();
        ScrubView {
            running: self.running.load(Relaxed),
            position_sector: self.sector(self.position.load(Relaxed)),
            total_sectors: self.sector(self.total_units),
            passes: self.passes.load(Relaxed),
            scanned_bytes: self.scanned_bytes.load(Relaxed),
            found_pending: self.found_pending.load(Relaxed),
            relocated: self.relocated.load(Relaxed),
            rate_kib: self.rate_kib.load(Relaxed),
            slow_threshold_ms: r.setup.slow_threshold_ms,
            pass_found: self.pass_found.load(Relaxed),
            last_pass_found: self.last_pass_found.load(Relaxed),
            prev_pass_found: self.prev_pass_found.load(Relaxed),
        }
    }

    /// True while the work item should go on.
    fn should_run(&self) -> bool {
        let ctl = self.ctl.lock();
        ctl.enabled && !ctl.suspended
    }

    /// Sleeps `micros` µs, or until stopped.
    fn pause(&self, micros: u64) {
        let ms = u32::try_from(micros.div_ceil(1000)).unwrap_or(u32::MAX);
        if ms == 0 {
            return;
        }
        let mut ctl = self.ctl.lock();
        if ctl.enabled && !ctl.suspended {
            let _ = self
                .wake
                .wait_interruptible_timeout(&mut ctl, msecs_to_jiffies(ms));
        }
    }

    /// The pass is complete: counts it, rewinds, stops and saves.
    fn end_pass(&self) {
        let passes = self.passes.fetch_add(1, Relaxed).saturating_add(1);
        self.position.store(0, Relaxed);
        self.prev_pass_found
            .store(self.last_pass_found.load(Relaxed), Relaxed);
        self.last_pass_found
            .store(self.pass_found.swap(0, Relaxed), Relaxed);
        {
            let mut ctl = self.ctl.lock();
            ctl.enabled = false;
            self.running.store(false, Relaxed);
        }
        self.save();
        pr_info!(
            "scrub of {}: pass {} complete; {} units found unreadable, {} relocated as slow (all passes)\n",
            self.r().setup.main.name(),
            passes,
            self.found_pending.load(Relaxed),
            self.relocated.load(Relaxed)
        );
    }

    /// Reads units `first..first + n`, and each on its own when the chunk fails, is slow, or holds units with
    /// an entry.
    fn scrub_chunk(&self, io: &mut ScrubIo, first: u64, n: u32) {
        let r = self.r();
        let last = first.saturating_add(u64::from(n));
        let has_entry = r.table.next_entry(first, last.saturating_sub(1)).is_some();
        let bytes = usize::try_from(n.saturating_mul(r.setup.unit_bytes)).unwrap_or(0);
        if !has_entry && bytes != 0 && bytes <= io.chunk.capacity() {
            // Only the device's last chunk is shorter; the buffer is filled once, when it first grows.
            io.chunk.truncate(bytes);
            let _ = io.chunk.resize(bytes, 0, GFP_KERNEL);
            let started = Instant::<Monotonic>::now();
            let read = r.setup.main.read_sync(self.sector(first), &mut io.chunk);
            let micros = u64::try_from(started.elapsed().as_micros_ceil()).unwrap_or(0);
            if read.is_ok() && !is_slow(micros, r.setup.slow_threshold_ms) {
                return;
            }
            if read.is_err() {
                r.stats.device_error();
            }
        }
        // Bounded by the chunk.
        for unit in first..last {
            if !self.should_run() {
                return;
            }
            self.scrub_unit(&mut io.unit, unit);
        }
    }

    /// Reads one unit: pending when it keeps failing, relocated when it keeps being slow.
    fn scrub_unit(&self, buf: &mut KVec<u8>, unit: u64) {
        let r = self.r();
        if r.table.get(unit).is_some() {
            return;
        }
        let sector = self.sector(unit);
        let (mut failures, mut slow) = (0u32, 0u32);
        // Bounded: every round returns or counts a failure (at most `retries` + 1) or a slow read (at most
        // `SLOW_READS`).
        loop {
            let started = Instant::<Monotonic>::now();
            let read = r.setup.main.read_sync(sector, buf);
            let micros = u64::try_from(started.elapsed().as_micros_ceil()).unwrap_or(0);
            if read.is_err() {
                r.stats.device_error();
                failures = failures.saturating_add(1);
                if failures > r.setup.retries {
                    self.unreadable(unit, sector);
                    return;
                }
                continue;
            }
            if !is_slow(micros, r.setup.slow_threshold_ms) {
                return;
            }
            slow = slow.saturating_add(1);
            if slow >= SLOW_READS {
                self.slow(unit, sector, micros);
                return;
            }
        }
    }

    fn unreadable(&self, unit: u64, sector: u64) {
        match self.r().scrub_unreadable(unit) {
            Ok(true) => {
                self.found_pending.fetch_add(1, Relaxed);
                self.pass_found.fetch_add(1, Relaxed);
                warn(format_args!(
                    "scrub: sector {} unreadable on main; pending until it is written",
                    sector
                ));
            }
            Ok(false) => {}
            Err((_, why)) => warn(format_args!(
                "scrub: sector {} unreadable on main, not recorded: {}",
                sector,
                why.to_str().unwrap_or("?")
            )),
        }
        // Its commit may have failed a spare.
        self.r().evacuate_failed();
    }

    fn slow(&self, unit: u64, sector: u64, micros: u64) {
        match self.r().scrub_relocate(unit) {
            Ok(ScrubFix::Relocated {
                spare,
                spare_sector,
            }) => {
                self.relocated.fetch_add(1, Relaxed);
                self.pass_found.fetch_add(1, Relaxed);
                warn(format_args!(
                    "scrub: sector {} slow ({} reads, the last {} us); relocated to spare {} sector {}",
                    sector, SLOW_READS, micros, spare, spare_sector
                ));
            }
            Ok(ScrubFix::Pending) => {
                self.found_pending.fetch_add(1, Relaxed);
                self.pass_found.fetch_add(1, Relaxed);
                warn(format_args!(
                    "scrub: sector {} slow, then unreadable; pending until it is written",
                    sector
                ));
            }
            Ok(ScrubFix::Skipped) => {}
            Err((_, why)) => warn(format_args!(
                "scrub: sector {} slow, not relocated: {}",
                sector,
                why.to_str().unwrap_or("?")
            )),
        }
        self.r().evacuate_failed();
    }

    /// Foreground bios completed so far, to tell whether users are busy.
    fn foreground(&self) -> u64 {
        let io = self.r().stats.snapshot();
        io.reads.saturating_add(io.writes)
    }

    /// The work item's body: chunks until stopped, suspended or the pass ends.
    fn run_pass(&self) {
        let r = self.r();
        let chunk = chunk_units(r.setup.unit_bytes);
        let mut guard = self.io.lock();
        let io = &mut *guard;
        if io.chunk.capacity() == 0 {
            // A chunk is 16 pages; without them, units are read one by one.
            let _ = io
                .chunk
                .reserve(usize::try_from(CHUNK_BYTES).unwrap_or(0), GFP_KERNEL);
        }
        let mut saved = Instant::<Monotonic>::now();
        let mut seen = self.foreground();
        let mut busy_at: Option<Instant<Monotonic>> = None;
        // Pacing is cumulative, so that sleeps rounded to jiffies do not add up to a slower rate: `budget` is
        // the µs the bytes read so far should have taken since `paced`.
        let mut paced = Instant::<Monotonic>::now();
        let mut budget = 0u64;
        let save_ms = i64::try_from(SAVE_INTERVAL_SECONDS.saturating_mul(1000)).unwrap_or(i64::MAX);
        // Bounded by the device: each round moves the position forward by one chunk, or ends the pass.
        while self.should_run() {
            let Some((first, n)) = chunk_at(self.position.load(Relaxed), self.total_units, chunk)
            else {
                drop(guard);
                self.end_pass();
                return;
            };
            self.scrub_chunk(io, first, n);
            if !self.should_run() {
                // Stopped inside the chunk: read it again next time.
                break;
            }
            self.position
                .store(first.saturating_add(u64::from(n)), Relaxed);
            let bytes = u64::from(n).saturating_mul(u64::from(r.setup.unit_bytes));
            self.scanned_bytes.fetch_add(bytes, Relaxed);
            if saved.elapsed().as_millis() >= save_ms {
                self.save();
                saved = Instant::<Monotonic>::now();
            }
            let now = self.foreground();
            if now != seen {
                seen = now;
                busy_at = Some(Instant::<Monotonic>::now());
            }
            let busy = busy_at.is_some_and(|t| t.elapsed().as_millis() < BUSY_WINDOW_MS);
            let slowdown = if busy { BUSY_SLOWDOWN } else { 1 };
            budget = budget.saturating_add(
                pace_micros(bytes, self.rate_kib.load(Relaxed)).saturating_mul(slowdown),
            );
            let spent = u64::try_from(paced.elapsed().as_micros_ceil()).unwrap_or(0);
            if spent > budget.saturating_add(MAX_LAG_MICROS) {
                // Far behind (slow reads, a slow disk): start over rather than read in a burst to catch up.
                paced = Instant::<Monotonic>::now();
                budget = 0;
            }
            self.pause(budget.saturating_sub(spent));
        }
    }
}

impl WorkItem for Scrubber {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        // The scrub takes the remapper's lock, which the worker completing reclaim's I/O needs.
        let _noio = NoIoScope::enter();
        this.run_pass();
    }
}
