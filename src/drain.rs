//! Draining a spare (`drain <member>`): moves every unit that lives on it to the other spares while the
//! device is live, then records in every member's metadata that it was removed from the setup, so that the
//! next table may leave it out (`members.rs` accepts a removed member's absence and refuses its return).
//!
//! - Each unit moves like the scrub's relocation of a slow unit: the write gate holds it, so a write to it
//!   waits in the worker until the copy is committed (`gate.rs`).
//! - A draining spare hands out no unit; the units moved off it are given back to it. A unit whose copy on it
//!   cannot be read stays there (its reads fail, as they did); its next write moves it, since `map()` sends
//!   writes to a draining spare to the worker.
//! - The drain runs in the message's context and returns when it is done: it is bounded by the units on the
//!   spare, and a table swap waits for it. A reload or a failed step ends it; the spare is then active again
//!   after the reload, and `drain` may be sent again (the units moved so far stay moved).

use core::ffi::CStr;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::imports::SpareState;
use crate::logic::outbuf::OutBuf;
use crate::logic::route::{Entry, RemapLookup};
use crate::members::{SpareDev, SpareRole};
use crate::remapper::{Remapper, Snapshot, GATE_TIMEOUT_MS};
use crate::stats::RemapCause;

type Refusal = (Error, &'static CStr);

/// What became of one unit of the drained spare.
enum Moved {
    Yes,
    /// Its copy on the spare could not be read: it stays.
    Unreadable,
    /// It no longer lives on the spare (a write moved it meanwhile).
    Gone,
}

fn on_spare(entry: Entry, member: u32) -> bool {
    matches!(entry, Entry::Remapped { spare, .. } if spare == member)
}

impl Remapper {
    /// `drain <member>`: see the module documentation. The output names what was moved; a refusal changes
    /// nothing but the units moved before it.
    pub(crate) fn drain(&self, member: u32, out: &mut OutBuf<'_>) -> Result<(), Refusal> {
        let spare = self.spare(member).ok_or((
            ENODEV,
            c"no spare has that member index (see the spares message)",
        ))?;
        if spare.role() == SpareRole::Removed {
            return Err((EINVAL, c"the spare was drained and removed already"));
        }
        self.start_drain(spare)?;
        let (moved, unreadable) = self.move_all(member)?;
        if unreadable != 0 {
            pr_warn!(
                "drain of spare {} ({}): {} units moved, {} could not be read from it and stay there\n",
                member,
                spare.dev.name(),
                moved,
                unreadable
            );
            return Err((
                EIO,
                c"units of the spare could not be read; they stay on it until written, then drain again",
            ));
        }
        self.remove_member(spare)?;
        pr_info!(
            "spare {} ({}) drained: {} units moved; removed from the setup\n",
            member,
            spare.dev.name(),
            moved
        );
        let _ = writeln!(
            out,
            "drained spare {} ({}): {} units moved; removed from the setup, load a table without it",
            member,
            spare.dev.name(),
            moved
        );
        Ok(())
    }

    /// Moves every unit of spare `member` that can be read to the other spares: `(moved, unreadable)`.
    fn move_all(&self, member: u32) -> Result<(u64, u64), Refusal> {
        let (mut moved, mut unreadable) = (0u64, 0u64);
        let mut next = Some(0u64);
        // Bounded by the table: each step moves past at least one unit.
        while let Some(from) = next {
            let Some(unit) = self
                .table
                .entries_from(from)
                .find_map(|(unit, e)| on_spare(e, member).then_some(unit))
            else {
                break;
            };
            next = unit.checked_add(1);
            match self.move_unit(member, unit)? {
                Moved::Yes => moved = moved.saturating_add(1),
                Moved::Unreadable => unreadable = unreadable.saturating_add(1),
                Moved::Gone => {}
            }
        }
        Ok((moved, unreadable))
    }

    /// Moves the units of the spares that failed since the last call (`Remapper::fail_spare`), where they can
    /// be read. Called by the worker after a group of bios, and after messages.
    pub(crate) fn evacuate_failed(&self) {
        let mask = self.evacuate.swap(0, Ordering::Relaxed);
        // Bounded by the spares (at most 16).
        for spare in self.setup.spares.iter().filter(|s| {
            1u32.checked_shl(s.member)
                .is_some_and(|bit| mask & bit != 0)
        }) {
            match self.move_all(spare.member) {
                Ok((moved, unreadable)) => pr_warn!(
                    "failed spare {} ({}): {} units moved to the other spares, {} could not be read and stay \
                     (their reads fail until they are written)\n",
                    spare.member,
                    spare.dev.name(),
                    moved,
                    unreadable
                ),
                Err((_, why)) => pr_warn!(
                    "failed spare {} ({}): moving its units stopped: {}\n",
                    spare.member,
                    spare.dev.name(),
                    why.to_str().unwrap_or("?")
                ),
            }
        }
    }

    /// Checks that the other active spares can take the spare's units, and stops handing out its units.
    fn start_drain(&self, spare: &SpareDev) -> Result<(), Refusal> {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        if self.md_failed.load(Ordering::Relaxed) {
            return Err((EIO, c"an earlier metadata commit failed; reload the table"));
        }
        let room = self
            .setup
            .spares
            .iter()
            .filter(|s| s.member != spare.member && s.role() == SpareRole::Active)
            .fold(0u64, |sum, s| {
                sum.saturating_add(s.pool_units.saturating_sub(s.used()))
            });
        if room < spare.used() {
            pr_warn!(
                "drain of spare {}: it holds {} units, the other active spares have {} free\n",
                spare.member,
                spare.used(),
                room
            );
            return Err((
                ENOSPC,
                c"the other spares have too few free units for the spare's units",
            ));
        }
        // Without another active spare, new failures would have nowhere to go, and a removal of the last
        // spare that takes commits would leave none.
        if !self
            .setup
            .spares
            .iter()
            .any(|s| s.member != spare.member && s.role() == SpareRole::Active)
        {
            return Err((ENOSPC, c"no other active spare to take over from it"));
        }
        // A failed spare stays failed: it takes no commit either.
        if spare.role() == SpareRole::Active {
            u.pool
                .set_state(spare.member, SpareState::Draining)
                .map_err(|e| (e, c"cannot change the spare's state in the allocator"))?;
            spare.set_role(SpareRole::Draining);
        }
        Ok(())
    }

    /// Moves `unit` off spare `member`, holding writes to it meanwhile.
    fn move_unit(&self, member: u32, unit: u64) -> Result<Moved, Refusal> {
        let _holder = self.holder.lock();
        if !self.gate.hold(unit, GATE_TIMEOUT_MS) {
            return Err((
                EBUSY,
                c"writes to a unit of the spare did not complete in time; drain again",
            ));
        }
        let done = self.move_held(member, unit);
        self.gate.release();
        done
    }

    fn move_held(&self, member: u32, unit: u64) -> Result<Moved, Refusal> {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        let Some(Entry::Remapped { spare, unit: su }) = self.table.get(unit) else {
            return Ok(Moved::Gone);
        };
        if spare != member {
            return Ok(Moved::Gone);
        }
        let (Some(dev), Some(sector)) = (self.spare(spare), self.spare_sector(spare, su)) else {
            return Err((EINVAL, c"remap entry outside the pool"));
        };
        let mut read = false;
        for _ in 0..=self.setup.retries {
            if dev.dev.read_sync(sector, &mut u.buf).is_ok() {
                read = true;
                break;
            }
            self.stats.device_error();
        }
        if !read {
            return Ok(Moved::Unreadable);
        }
        u.cause = RemapCause::Moved;
        let staged = self
            .stage_relocation(u, unit)
            .and_then(|at| self.commit_batch(u).map(|()| at));
        u.cause = RemapCause::Auto;
        // The commit gave the old unit back.
        staged?;
        Ok(Moved::Yes)
    }

    /// Records in every member's metadata that `spare`, now empty, was removed from the setup: a checkpoint
    /// under the next sequence number, so that a member the crash left behind is brought up to date from
    /// the others at the next load. The removed spare gets it last; its failure is only logged, as the
    /// others already record the removal.
    fn remove_member(&self, spare: &SpareDev) -> Result<(), Refusal> {
        let mut guard = self.updates.lock();
        let u = &mut *guard;
        self.commit_batch(u)?;
        if self
            .table
            .entries_from(0)
            .any(|(_, e)| on_spare(e, spare.member))
        {
            return Err((EBUSY, c"a unit lives on the spare again; drain again"));
        }
        let bit = 1u32
            .checked_shl(spare.member)
            .ok_or((EINVAL, c"impossible member index"))?;
        let removed = u.removed | bit;
        let live = |s: &SpareDev| s.role().commits();
        let seq = self
            .setup
            .spares
            .iter()
            .zip(u.metadata.iter())
            .filter(|(s, _)| live(s))
            .fold(0u64, |seq, (_, md)| seq.max(md.last_seq()))
            .checked_add(1)
            .ok_or((EOVERFLOW, c"commit sequence overflow"))?;
        let members = self.setup.member_count;
        self.mark_dirty(u);
        // The others first: once one records the removal, the setup has it.
        for last in [false, true] {
            for (s, md) in self.setup.spares.iter().zip(u.metadata.iter_mut()) {
                let ours = s.member == spare.member;
                if ours != last || !(ours || live(s)) {
                    continue;
                }
                let done = md.resync(seq, members, removed, &mut Snapshot::new(&self.table, &[]));
                match done {
                    Ok(()) => {}
                    Err((_, why)) if last => pr_warn!(
                        "spare {}: recording its own removal failed: {}\n",
                        s.dev.name(),
                        why.to_str().unwrap_or("?")
                    ),
                    Err(e) => {
                        self.md_failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
        u.removed = removed;
        u.pool
            .set_state(spare.member, SpareState::Missing)
            .map_err(|e| (e, c"cannot change the spare's state in the allocator"))?;
        spare.set_role(SpareRole::Removed);
        if let Some(md) = self
            .setup
            .spares
            .iter()
            .zip(u.metadata.iter())
            .find(|(s, _)| live(s))
            .map(|(_, md)| md)
        {
            self.md_version.store(md.version(), Ordering::Relaxed);
        }
        Ok(())
    }
}
