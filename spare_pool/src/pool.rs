//! The pool of spares: up to [`MAX_SPARES`] spare devices, each with a state and a bitmap, and
//! the allocation order policy.
//!
//! Policy (see `docs/spare-pool.md`): only `Active` spares are allocated from. Spares on a
//! different physical device than the main come first; a spare sharing the main's physical
//! device is a last resort (it shares the main's fate, but is still better than failing the
//! write). Within each tier the pool *fills first*: the lowest-index spare with a free unit.

use super::bitmap::{Bitmap, Counts, PriorState};
use super::error::Error;

/// Most spares one setup can have; the caller's array may be shorter.
pub const MAX_SPARES: usize = 16;

/// The state of one spare device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SpareState {
    /// Healthy: new remaps may go here.
    Active = 0,
    /// Being emptied for removal: existing remaps stay readable, no new ones.
    Draining = 1,
    /// Failed I/O: no new remaps; existing ones must be moved if they can be read.
    Failed = 2,
    /// Not present at assembly: nothing can be read or written.
    Missing = 3,
}

impl SpareState {
    /// The state numbered `n` (its discriminant), as the kernel module's ABI passes it.
    pub fn from_u32(n: u32) -> Option<Self> {
        match n {
            0 => Some(SpareState::Active),
            1 => Some(SpareState::Draining),
            2 => Some(SpareState::Failed),
            3 => Some(SpareState::Missing),
            _ => None,
        }
    }

    /// Whether new units may be handed out from a spare in this state.
    pub fn allocatable(self) -> bool {
        self == SpareState::Active
    }
}

/// One spare device as the pool sees it.
#[derive(Debug)]
pub struct Spare<'a> {
    /// The spare's free-space bitmap.
    pub bitmap: Bitmap<'a>,
    /// The spare's state; only `Active` spares are allocated from.
    pub state: SpareState,
    /// Set by the caller when the spare lives on the main's physical device (e.g. another
    /// partition of the same disk); such spares are used only when no other spare has room.
    pub same_device_as_main: bool,
}

impl<'a> Spare<'a> {
    /// A spare with the given bitmap, state and same-device flag.
    pub fn new(bitmap: Bitmap<'a>, state: SpareState, same_device_as_main: bool) -> Self {
        Spare {
            bitmap,
            state,
            same_device_as_main,
        }
    }
}

/// What the allocation order policy looks at in one spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The spare's state; only `Active` spares are allocated from.
    pub state: SpareState,
    /// The spare lives on the main's physical device.
    pub same_device_as_main: bool,
    /// Free units in the spare.
    pub free: u64,
}

/// The allocation order policy (the one definition, also used by the kernel module's handle): the index
/// of the spare the next unit comes from. First an `Active` spare with a free unit on another physical
/// device than the main, lowest index first; else one on the main's device; `None` when no spare has room.
pub fn pick_spare<I>(spares: I) -> Option<usize>
where
    I: Iterator<Item = Candidate> + Clone,
{
    let room = |c: &Candidate| c.state.allocatable() && c.free > 0;
    let pick = |same_device: bool| {
        spares
            .clone()
            .position(|c| c.same_device_as_main == same_device && room(&c))
    };
    pick(false).or_else(|| pick(true))
}

/// Where a remapped block lives: a spare index and a unit within that spare's pool area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Index of the spare in the pool's array.
    pub spare: usize,
    /// Unit within the spare's pool area.
    pub unit: u64,
}

/// The pool of spares over a caller-provided array of per-spare state.
#[derive(Debug)]
pub struct Pool<'s, 'a> {
    spares: &'s mut [Spare<'a>],
}

impl<'s, 'a> Pool<'s, 'a> {
    /// A pool over the caller's spares, refusing more than [`MAX_SPARES`].
    pub fn new(spares: &'s mut [Spare<'a>]) -> Result<Self, Error> {
        if spares.len() > MAX_SPARES {
            return Err(Error::TooManySpares);
        }
        Ok(Pool { spares })
    }

    /// Number of spares in the pool.
    pub fn len(&self) -> usize {
        self.spares.len()
    }

    /// Whether the pool has no spares at all.
    pub fn is_empty(&self) -> bool {
        self.spares.is_empty()
    }

    /// The spare at `index`.
    pub fn spare(&self, index: usize) -> Option<&Spare<'a>> {
        self.spares.get(index)
    }

    /// The spare at `index`, or [`Error::NoSuchSpare`].
    fn spare_mut(&mut self, index: usize) -> Result<&mut Spare<'a>, Error> {
        self.spares.get_mut(index).ok_or(Error::NoSuchSpare)
    }

    /// Sets the state of spare `index`.
    pub fn set_state(&mut self, index: usize, state: SpareState) -> Result<(), Error> {
        self.spare_mut(index)?.state = state;
        Ok(())
    }

    /// The spare the policy picks next: first spare with room on another physical device,
    /// else first spare with room on the main's device.
    pub fn next_spare(&self) -> Option<usize> {
        pick_spare(self.spares.iter().map(|s| Candidate {
            state: s.state,
            same_device_as_main: s.same_device_as_main,
            free: s.bitmap.counts().free,
        }))
    }

    /// Hands out a unit according to the order policy; [`Error::NoSpace`] when no `Active`
    /// spare has a free unit.
    pub fn allocate(&mut self) -> Result<Allocation, Error> {
        let spare = self.next_spare().ok_or(Error::NoSpace)?;
        let unit = self.spare_mut(spare)?.bitmap.allocate()?;
        Ok(Allocation { spare, unit })
    }

    /// Frees an allocation (unremap), in any spare state, so the counts stay exact.
    pub fn free(&mut self, at: Allocation) -> Result<(), Error> {
        self.spare_mut(at.spare)?.bitmap.free(at.unit)
    }

    /// Marks a specific unit used, for replaying recorded remaps at assembly, in any state.
    pub fn claim(&mut self, at: Allocation) -> Result<(), Error> {
        self.spare_mut(at.spare)?.bitmap.claim(at.unit)
    }

    /// Retires a failed unit, in any spare state; returns what it held.
    pub fn retire(&mut self, at: Allocation) -> Result<PriorState, Error> {
        self.spare_mut(at.spare)?.bitmap.retire(at.unit)
    }

    /// Counts of spare `index`.
    pub fn spare_counts(&self, index: usize) -> Result<Counts, Error> {
        self.spare(index)
            .map(|s| s.bitmap.counts())
            .ok_or(Error::NoSuchSpare)
    }

    /// Counts over all spares, whatever their state.
    pub fn counts(&self) -> Counts {
        self.spares
            .iter()
            .fold(Counts::default(), |acc, s| acc.sum(s.bitmap.counts()))
    }

    /// Free units that can be handed out now (on `Active` spares only).
    pub fn allocatable(&self) -> u64 {
        self.spares
            .iter()
            .filter(|s| s.state.allocatable())
            .fold(0u64, |acc, s| acc.saturating_add(s.bitmap.counts().free))
    }
}
