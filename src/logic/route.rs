//! Routing a bio over the remap table: which device and sector each piece of it goes to.
//!
//! A bio may cover remapped and unremapped units. `map()` routes only the first piece of a bio: the part up to
//! the next unit boundary where the destination changes. Device-mapper is then told to accept only that many
//! sectors (`dm_accept_partial_bio`) and calls `map()` again for the rest, so no bio is ever routed by its first
//! sector alone, and each piece goes to exactly one device at the right offset.

/// What the remap table says about one unit of the main device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The unit's data lives in unit `unit` of spare `spare`.
    Remapped {
        /// Index of the spare among the setup's spares.
        spare: u32,
        /// Unit index within that spare's pool.
        unit: u64,
    },
    /// A read of the unit failed on main and nothing has healed it yet: reads still go to main (and get the
    /// error, or the data if the sector recovered); the next write must go to a freshly allocated spare unit.
    Pending,
}

/// Packing of an [`Entry`] into one integer of at most 62 bits (what an XArray value entry holds):
/// bit 61 set for `Pending`, otherwise bits 57..61 the spare index and bits 0..57 the spare unit.
const PENDING_BIT: u64 = 1 << 61;
const SPARE_SHIFT: u32 = 57;
/// Largest spare index a packed entry holds.
pub const MAX_SPARE_INDEX: u32 = 15;
/// Largest spare unit a packed entry holds.
pub const MAX_SPARE_UNIT: u64 = (1 << SPARE_SHIFT) - 1;

impl Entry {
    /// The packed form, or `None` when the entry's numbers do not fit.
    pub fn pack(self) -> Option<u64> {
        match self {
            Self::Pending => Some(PENDING_BIT),
            Self::Remapped { spare, unit }
                if spare <= MAX_SPARE_INDEX && unit <= MAX_SPARE_UNIT =>
            {
                Some((u64::from(spare) << SPARE_SHIFT) | unit)
            }
            Self::Remapped { .. } => None,
        }
    }

    /// The entry a packed value stands for.
    pub fn unpack(v: u64) -> Self {
        if v & PENDING_BIT != 0 {
            return Self::Pending;
        }
        Self::Remapped {
            // At most 4 bits remain after the shift and mask.
            spare: u32::try_from((v >> SPARE_SHIFT) & u64::from(MAX_SPARE_INDEX)).unwrap_or(0),
            unit: v & MAX_SPARE_UNIT,
        }
    }
}

/// The lookups `map()` may make: both must be lock-free and must not sleep (RCU, in the kernel).
pub trait RemapLookup {
    /// The entry of `unit`, if it has one.
    fn get(&self, unit: u64) -> Option<Entry>;
    /// The first unit in `first..=last` that has an entry. It may also return a unit whose entry was just
    /// removed (the table's removals are lazy): that costs a needless split, never a wrong route.
    fn next_entry(&self, first: u64, last: u64) -> Option<u64>;
}

/// Where a piece goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// The main device, at `sector`.
    Main {
        /// Sector on the main device.
        sector: u64,
    },
    /// A spare device, at `sector`.
    Spare {
        /// Index of the spare.
        spare: u32,
        /// Sector on that spare device.
        sector: u64,
    },
    /// A write to a pending unit: the target must allocate a spare unit and commit the mapping before the
    /// write may proceed, which cannot happen in `map()`; the piece is handed to a worker.
    Defer,
}

/// The first piece of a bio and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Destination.
    pub dest: Dest,
    /// Length in sectors (at most the bio's).
    pub sectors: u32,
}

/// Geometry the routing needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Sectors per remap unit (a power of two, at least 1).
    pub unit_sectors: u32,
}

/// Routes the first piece of a bio of `sectors` sectors (at least 1) at `offset`, a sector relative to the
/// start of the target. `spare_sector(spare, unit)` gives the first sector of a spare unit; `None` (a corrupt
/// entry) makes the piece fail rather than go anywhere wrong.
pub fn route_first<L, S>(
    geo: Geometry,
    table: &L,
    offset: u64,
    sectors: u32,
    is_write: bool,
    spare_sector: S,
) -> Option<Piece>
where
    L: RemapLookup,
    S: Fn(u32, u64) -> Option<u64>,
{
    let unit_sectors = u64::from(geo.unit_sectors);
    if unit_sectors == 0 || sectors == 0 {
        return None;
    }
    let unit = offset.checked_div(unit_sectors)?;
    let within = offset.checked_rem(unit_sectors)?;
    // Sectors left in this unit, capped by the bio.
    let in_unit = u32::try_from(unit_sectors.checked_sub(within)?)
        .unwrap_or(u32::MAX)
        .min(sectors);
    match table.get(unit) {
        Some(Entry::Remapped { spare, unit: su }) => {
            let sector = spare_sector(spare, su)?.checked_add(within)?;
            Some(Piece {
                dest: Dest::Spare { spare, sector },
                sectors: in_unit,
            })
        }
        Some(Entry::Pending) if is_write => Some(Piece {
            dest: Dest::Defer,
            sectors: in_unit,
        }),
        // Unremapped, or a read of a pending unit: main, up to the next unit with an entry.
        Some(Entry::Pending) => Some(Piece {
            dest: Dest::Main { sector: offset },
            sectors: in_unit,
        }),
        None => {
            let end = offset.checked_add(u64::from(sectors))?;
            let last = end.checked_sub(1)?.checked_div(unit_sectors)?;
            let len = match unit
                .checked_add(1)
                .filter(|&next| next <= last)
                .and_then(|next| table.next_entry(next, last))
            {
                Some(next) => next.checked_mul(unit_sectors)?.checked_sub(offset)?,
                None => u64::from(sectors),
            };
            Some(Piece {
                dest: Dest::Main { sector: offset },
                sectors: u32::try_from(len).ok()?,
            })
        }
    }
}
