//! One remap entry, its 32-byte encoding, and the caller's side of loading.

use super::error::Error;
use super::le::{Reader, Writer};

/// Bytes of one encoded record.
pub const RECORD_SIZE: usize = 32;

/// State of a remapped unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// The unit is remapped and its data lives on the spare.
    Active,
    /// The unit is remapped but its old data could not be read from the main device; reads fail until the
    /// unit is written again.
    PendingReadFailure,
    /// The unit's entry is dropped (`unremap`, `clear_pending`). Only in the journal: a checkpoint holds the
    /// live entries alone.
    Cleared,
}

impl EntryState {
    /// On-disk code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Active => 1,
            Self::PendingReadFailure => 2,
            Self::Cleared => 3,
        }
    }

    /// The state with on-disk code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Active),
            2 => Some(Self::PendingReadFailure),
            3 => Some(Self::Cleared),
            _ => None,
        }
    }
}

/// One remap: unit `main_unit` of the main device lives in unit `spare_unit` of spare `spare_index`.
///
/// A record is an upsert keyed by `main_unit`: a later record for the same unit replaces the earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unit index on the main device (main LBA / unit size).
    pub main_unit: u64,
    /// Index of the spare device among the setup's members.
    pub spare_index: u32,
    /// Unit index within that spare's pool.
    pub spare_unit: u64,
    /// State of the remap.
    pub state: EntryState,
    /// When the remap was made or last changed, in seconds, as supplied by the caller.
    pub timestamp: u64,
}

impl Record {
    /// Encodes into the 32 bytes at the start of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        let mut w = Writer::new(out);
        w.u64(self.main_unit);
        w.u64(self.spare_unit);
        w.u64(self.timestamp);
        w.u32(self.spare_index);
        w.u8(self.state.code());
        w.bytes([0u8; 3]);
    }

    /// The encoding as an array.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        self.encode(&mut b);
        b
    }

    /// Decodes 32 bytes; `None` for an unknown state or non-zero reserved bytes.
    pub fn decode(bytes: &[u8; RECORD_SIZE]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let main_unit = r.u64();
        let spare_unit = r.u64();
        let timestamp = r.u64();
        let spare_index = r.u32();
        let state = EntryState::from_code(r.u8())?;
        if r.bytes::<3>() != [0; 3] {
            return None;
        }
        Some(Self {
            main_unit,
            spare_index,
            spare_unit,
            state,
            timestamp,
        })
    }
}

/// Bounds a record must respect in a given setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Number of members (spares) of the setup.
    pub member_count: u32,
    /// Members removed from the setup (bit `i`: member `i`); no record may name one.
    pub removed_members: u32,
    /// Number of units of the main device.
    pub main_units: u64,
}

impl Limits {
    /// Whether `rec` names an existing main unit and a spare that is a member and, for a unit that lives
    /// there, was not removed (a pending or cleared record names no spare: its index is 0 by convention).
    pub fn allows(&self, rec: &Record) -> bool {
        rec.spare_index < self.member_count
            && (rec.state != EntryState::Active
                || !super::superblock::is_removed(self.removed_members, rec.spare_index))
            && rec.main_unit < self.main_units
    }
}

/// The caller's in-memory table, filled by [`super::store::Store::load`].
pub trait RecordSink {
    /// Applies one record (insert or replace by `main_unit`; a [`EntryState::Cleared`] record removes the
    /// unit's entry), in on-disk order: checkpoint entries first, then journal records oldest first. An error stops the load and is returned from it; use
    /// [`Error::TableFull`] when the table has no room.
    fn apply(&mut self, rec: &Record) -> Result<(), Error>;
}
