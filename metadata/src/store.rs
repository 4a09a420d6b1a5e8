//! The store: formatting, loading, committing, checkpointing and repairing one spare's metadata region.
//!
//! Protocol summary (details and crash-safety arguments in `docs/metadata-format.md`):
//!
//! - **commit**: write the batch into fresh journal blocks, then flush (or FUA for a one-block batch).
//! - **checkpoint**: write the whole table into the inactive area, flush, then rewrite the superblock
//!   copies one at a time with FUA, copies not holding the current state first. The journal restarts
//!   empty under a new nonce.
//! - **load**: read every superblock copy, take the newest valid one, replay its checkpoint and then the
//!   journal up to the first incomplete commit. Load never writes.

use core::cmp::Reverse;

use super::block::{self, as_block, Block};
use super::checkpoint;
use super::error::Error;
use super::io::BlockIo;
use super::journal::{self, Position};
use super::layout::{Layout, SUPERBLOCK_COPIES};
use super::record::{Limits, Record, RecordSink};
use super::scrub::ShutdownMark;
use super::superblock::{
    removed_within, MainIdentity, Superblock, SuperblockFault, FORMAT_VERSION,
};

/// What the caller knows about a new setup member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatParams {
    /// Setup UUID: 16 random bytes generated once for the setup.
    pub uuid: [u8; 16],
    /// This spare's index among the setup's spares.
    pub member_index: u32,
    /// Number of spares in the setup.
    pub member_count: u32,
    /// The main device.
    pub main: MainIdentity,
    /// Size of this spare device in sectors.
    pub spare_sectors: u64,
    /// Remap unit size in sectors.
    pub unit_sectors: u64,
    /// Region layout, from [`Layout::for_spare`], [`Layout::for_capacity`] or [`Layout::new`].
    pub layout: Layout,
}

/// What the region must match to be loaded; `None` accepts anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// Setup UUID ([`Error::OtherSetup`] otherwise).
    pub uuid: Option<[u8; 16]>,
    /// Main device ([`MainIdentity::check_against`]).
    pub main: Option<MainIdentity>,
    /// Member index ([`Error::MemberMismatch`] otherwise).
    pub member_index: Option<u32>,
}

/// What load found in one superblock copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyStatus {
    /// Valid and identical to the chosen copy.
    Current,
    /// Valid but an older state of the same setup (a checkpoint was interrupted).
    Stale,
    /// All zeros.
    Blank,
    /// Not a superblock.
    Foreign,
    /// Superblock magic, but bad checksum or misplaced copy.
    Corrupt,
    /// The read failed.
    Unreadable,
    /// Valid, but disagrees with the chosen copy in a way an interrupted checkpoint cannot explain.
    Conflict,
}

/// What load found, for logging and for [`Store::repair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Status of each superblock copy.
    pub copies: [CopyStatus; SUPERBLOCK_COPIES],
    /// Index of the copy that was loaded.
    pub chosen: usize,
    /// Metadata version of the loaded superblock.
    pub meta_version: u64,
    /// Entries replayed from the checkpoint.
    pub checkpoint_entries: u64,
    /// Commits replayed from the journal.
    pub journal_commits: u64,
    /// Records replayed from the journal.
    pub journal_records: u64,
    /// Journal blocks in use.
    pub journal_blocks_used: u64,
    /// Sequence number of the last commit loaded (0 if none ever).
    pub last_seq: u64,
}

impl LoadReport {
    /// Number of superblock copies that [`Store::repair`] would rewrite.
    pub fn bad_copies(&self) -> usize {
        self.copies
            .iter()
            .filter(|&&c| c != CopyStatus::Current)
            .count()
    }
}

/// What a store knows of the two scrub-state copies (blocks 1 and 9, see `scrub.rs`): which one holds the
/// newest valid state, so that a save writes the other. Kept here because the store is what the caller holds;
/// the scrub state is otherwise independent of the remap table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrubCursor {
    /// Not read since the store was made: the next save reads both copies first.
    Unknown,
    /// Neither copy holds a valid state of this setup: the next save writes copy 0 with sequence 1.
    Empty,
    /// Copy `copy` holds the newest valid state, with sequence number `seq`.
    Newest {
        /// Sequence number of that state.
        seq: u64,
        /// The copy holding it (0 or 1).
        copy: usize,
    },
}

/// An open metadata region: the current superblock and the journal's position.
#[derive(Clone, Copy, Debug)]
pub struct Store {
    sb: Superblock,
    layout: Layout,
    limits: Limits,
    salt: u64,
    pos: Position,
    current: [bool; SUPERBLOCK_COPIES],
    poisoned: bool,
    scrub: ScrubCursor,
    /// The shutdown mark this store last wrote; every scrub-state save carries it (`scrub.rs`).
    mark: ShutdownMark,
}

/// Nonce of the journal generation started by superblock version `meta_version` in a session with
/// `salt`. Distinct versions give distinct nonces within a session (the mix is a bijection), and a random
/// salt makes them unpredictable across sessions and re-formats.
fn journal_nonce(salt: u64, meta_version: u64) -> u64 {
    // SplitMix64 finalizer.
    let mut z = (salt ^ meta_version.rotate_left(32)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ z.wrapping_shr(30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ z.wrapping_shr(27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ z.wrapping_shr(31)
}

/// Checks the fields of a superblock that passed its checksum; returns its layout and record limits.
///
/// The one definition of a self-consistent superblock: the loader and reassembly's integrity check use it.
pub fn check_superblock(sb: &Superblock) -> Result<(Layout, Limits), Error> {
    let layout =
        Layout::new(sb.capacity, sb.journal_blocks).map_err(|_| Error::SuperblockInvalid)?;
    let main_units = sb.main.sectors.checked_div(sb.unit_sectors).unwrap_or(0);
    let sane = layout.region_sectors == sb.region_sectors
        && sb.pool_start == sb.region_sectors
        && sb.pool_units != 0
        && main_units != 0
        && sb.member_index < sb.member_count
        && removed_within(sb.removed_members, sb.member_count)
        && sb.active_area <= 1
        && sb.checkpoint_entries <= sb.capacity
        && sb.meta_version != 0
        && sb.commit_seq != u64::MAX;
    if !sane {
        return Err(Error::SuperblockInvalid);
    }
    Ok((
        layout,
        Limits {
            member_count: sb.member_count,
            removed_members: sb.removed_members,
            main_units: sb.main.sectors.div_ceil(sb.unit_sectors),
        },
    ))
}

/// Writes superblock `sb` as copy `copy`, durably.
fn write_copy<I: BlockIo>(
    io: &mut I,
    blk: &mut Block,
    sb: &Superblock,
    copy: usize,
    fua: bool,
) -> Result<(), Error> {
    let sector = Layout::superblock_sector(copy).ok_or(Error::BadGeometry)?;
    Superblock {
        copy_index: u32::try_from(copy).map_err(|_| Error::BadGeometry)?,
        ..*sb
    }
    .encode(blk);
    block::write(io, sector, blk, fua)
}

impl Store {
    /// Writes a fresh, empty metadata region for a new setup member.
    ///
    /// Overwrites whatever is there: call it only after [`Store::load`] returned [`Error::Blank`] or on
    /// explicit request. `salt` must be random (e.g. `get_random_u64()`); it keeps journal blocks of earlier
    /// formats and sessions from being replayed.
    pub fn format<I: BlockIo>(
        io: &mut I,
        buf: &mut [u8],
        params: &FormatParams,
        salt: u64,
    ) -> Result<Self, Error> {
        let blk = as_block(buf)?;
        let layout = params.layout;
        if Layout::new(layout.capacity, layout.journal_blocks) != Ok(layout)
            || params.member_index >= params.member_count
            || params.main.sectors.checked_div(params.unit_sectors) == Some(0)
        {
            return Err(Error::BadGeometry);
        }
        let pool_units = layout.pool_units(params.spare_sectors, params.unit_sectors)?;
        let sb = Superblock {
            version: FORMAT_VERSION,
            copy_index: 0,
            incompat: 0,
            compat: 0,
            uuid: params.uuid,
            member_index: params.member_index,
            member_count: params.member_count,
            removed_members: 0,
            main: params.main,
            region_sectors: layout.region_sectors,
            pool_start: layout.region_sectors,
            pool_units,
            unit_sectors: params.unit_sectors,
            capacity: layout.capacity,
            journal_blocks: layout.journal_blocks,
            meta_version: 1,
            commit_seq: 0,
            journal_nonce: journal_nonce(salt, 1),
            checkpoint_entries: 0,
            checkpoint_crc: super::crc32c::crc32c(&[]),
            active_area: 0,
        };
        let (layout, limits) = check_superblock(&sb)?;
        for copy in 0..SUPERBLOCK_COPIES {
            write_copy(io, blk, &sb, copy, false)?;
        }
        block::flush(io)?;
        Ok(Self {
            sb,
            layout,
            limits,
            salt,
            pos: Position {
                block: 0,
                seq: 1,
                chain: 0,
            },
            current: [true; SUPERBLOCK_COPIES],
            poisoned: false,
            // Format does not touch the scrub-state blocks: a save must look at what they hold (a region
            // re-formatted with its setup's own UUID may keep a valid, higher-numbered state there).
            scrub: ScrubCursor::Unknown,
            mark: ShutdownMark::default(),
        })
    }

    /// Loads the region: picks the newest valid superblock, replays its checkpoint and journal into `sink`,
    /// and reports on every copy. Never writes. On error the sink may hold a partial table: discard it.
    ///
    /// `salt` is this session's random salt (see [`Store::format`]).
    pub fn load<I: BlockIo, S: RecordSink>(
        io: &mut I,
        buf: &mut [u8],
        expect: &Expect,
        salt: u64,
        sink: &mut S,
    ) -> Result<(Self, LoadReport), Error> {
        let blk = as_block(buf)?;
        let mut copies = [CopyStatus::Unreadable; SUPERBLOCK_COPIES];
        let mut found: [Option<Superblock>; SUPERBLOCK_COPIES] = [None; SUPERBLOCK_COPIES];
        for (copy, (status, slot)) in copies.iter_mut().zip(found.iter_mut()).enumerate() {
            let sector = Layout::superblock_sector(copy).ok_or(Error::BadGeometry)?;
            if block::read(io, sector, blk).is_err() {
                continue;
            }
            *status = match Superblock::decode(blk) {
                Ok(sb) if usize::try_from(sb.copy_index) == Ok(copy) => {
                    *slot = Some(sb);
                    CopyStatus::Current
                }
                Ok(_) | Err(SuperblockFault::Corrupt) => CopyStatus::Corrupt,
                Err(SuperblockFault::Zero) => CopyStatus::Blank,
                Err(SuperblockFault::Foreign) => CopyStatus::Foreign,
                // A copy we cannot interpret may be the newest state: never fall back past it.
                Err(SuperblockFault::Version) => return Err(Error::UnsupportedVersion),
                Err(SuperblockFault::Incompat) => return Err(Error::IncompatFeatures),
            };
        }
        let best = found
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .filter(|(_, s)| expect.uuid.is_none_or(|u| u == s.uuid))
            .max_by_key(|&(i, s)| (s.meta_version, Reverse(i)));
        let Some((chosen, sb)) = best else {
            return Err(no_superblock(&copies, &found));
        };
        if let Some(main) = expect.main {
            main.check_against(&sb.main)?;
        }
        if expect.member_index.is_some_and(|m| m != sb.member_index) {
            return Err(Error::MemberMismatch);
        }
        for (status, other) in copies.iter_mut().zip(found.iter()) {
            if let Some(o) = other {
                *status = if o.same_state(&sb) {
                    CopyStatus::Current
                } else if o.uuid == sb.uuid && o.meta_version < sb.meta_version {
                    CopyStatus::Stale
                } else {
                    CopyStatus::Conflict
                };
            }
        }
        let (layout, limits) = check_superblock(&sb)?;
        let want = checkpoint::Expected {
            area: sb.active_area,
            stamp: (sb.meta_version, sb.journal_nonce),
            entries: sb.checkpoint_entries,
            crc: sb.checkpoint_crc,
        };
        checkpoint::replay(io, blk, &layout, &want, &limits, sink)?;
        let start = Position {
            block: 0,
            seq: sb.commit_seq.checked_add(1).ok_or(Error::Overflow)?,
            chain: 0,
        };
        let replayed = journal::replay(io, blk, &layout, sb.journal_nonce, start, &limits, sink)?;
        let report = LoadReport {
            copies,
            chosen,
            meta_version: sb.meta_version,
            checkpoint_entries: sb.checkpoint_entries,
            journal_commits: replayed.commits,
            journal_records: replayed.records,
            journal_blocks_used: replayed.end.block,
            last_seq: replayed.end.seq.saturating_sub(1),
        };
        let store = Self {
            sb,
            layout,
            limits,
            salt,
            pos: replayed.end,
            current: copies.map(|c| c == CopyStatus::Current),
            poisoned: false,
            scrub: ScrubCursor::Unknown,
            mark: ShutdownMark::default(),
        };
        Ok((store, report))
    }

    /// Durably appends `records` as one commit and returns its sequence number; returns only after the
    /// records are on stable media. Concurrent callers should be batched into one call (group commit).
    ///
    /// On [`Error::JournalFull`] nothing was written: write a [`Store::checkpoint`] of the table including
    /// these records, which commits them too. A write or flush failure poisons the store.
    pub fn commit<I: BlockIo>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
        records: &[Record],
    ) -> Result<u64, Error> {
        self.usable()?;
        let blk = as_block(buf)?;
        if records.is_empty() {
            return Ok(self.last_seq());
        }
        if !records.iter().all(|r| self.limits.allows(r)) {
            return Err(Error::BadRecord);
        }
        let seq = self.pos.seq;
        let written = journal::write_commit(
            io,
            blk,
            &self.layout,
            &self.pos,
            self.sb.journal_nonce,
            self.salt,
            records,
        );
        self.pos = self.poison_on_io(written)?;
        Ok(seq)
    }

    /// Durably replaces the journal with a checkpoint of the whole table, pulled from `entries` (every
    /// entry exactly once, reflecting every commit made so far).
    ///
    /// Fails without changing the metadata on [`Error::TableFull`] or [`Error::BadRecord`]. A failure while
    /// switching the superblocks poisons the store. The member count and the removed members stay as they are.
    pub fn checkpoint<I: BlockIo, E: IntoIterator<Item = Record>>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
        entries: E,
    ) -> Result<(), Error> {
        let (seq, members, removed) = (
            self.last_seq(),
            self.sb.member_count,
            self.sb.removed_members,
        );
        self.rewrite(io, buf, seq, members, removed, entries)
    }

    /// Brings this member of a setup of several spares up to date: a checkpoint of the whole table (as
    /// [`Store::checkpoint`]) that also adopts the setup's sequence number `seq`, member count and removed
    /// members (bit `i` of `removed_members`: member `i` was removed from the setup), so that every member
    /// records the same state under the same number. Used for a member that missed commits (it was behind
    /// when the setup was loaded), a member just formatted for a running setup, every member when a spare
    /// joins, and every member (the removed one included) when a drained spare is removed.
    ///
    /// `seq` below this member's own, a member count that would drop a member, a mask that would clear a
    /// removed member's bit (removed members stay removed) or that names a member at or above
    /// `member_count` is [`Error::BadGeometry`] and changes nothing.
    pub fn resync<I: BlockIo, E: IntoIterator<Item = Record>>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
        seq: u64,
        member_count: u32,
        removed_members: u32,
        entries: E,
    ) -> Result<(), Error> {
        let kept = self.sb.removed_members;
        if seq < self.last_seq()
            || member_count < self.sb.member_count
            || removed_members & kept != kept
            || !removed_within(removed_members, member_count)
        {
            return Err(Error::BadGeometry);
        }
        self.rewrite(io, buf, seq, member_count, removed_members, entries)
    }

    /// The checkpoint itself: the table into the inactive area, then the superblocks, recording commit
    /// sequence `seq`, `member_count` and `removed_members`.
    fn rewrite<I: BlockIo, E: IntoIterator<Item = Record>>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
        seq: u64,
        member_count: u32,
        removed_members: u32,
        entries: E,
    ) -> Result<(), Error> {
        self.usable()?;
        let blk = as_block(buf)?;
        let meta_version = self.sb.meta_version.checked_add(1).ok_or(Error::Overflow)?;
        let next_seq = seq.checked_add(1).ok_or(Error::Overflow)?;
        let nonce = journal_nonce(self.salt, meta_version);
        let area = self.sb.active_area ^ 1;
        let members = Superblock {
            member_count,
            removed_members,
            ..self.sb
        };
        // The records are checked against the member count and removed members they are written under.
        let (_, limits) = check_superblock(&members)?;
        // The inactive area is scratch until a superblock points to it: failures here change nothing.
        let written = checkpoint::write(
            io,
            blk,
            &self.layout,
            area,
            (meta_version, nonce),
            &limits,
            entries.into_iter(),
        )?;
        block::flush(io)?;
        let sb = Superblock {
            meta_version,
            commit_seq: seq,
            journal_nonce: nonce,
            checkpoint_entries: written.entries,
            checkpoint_crc: written.crc,
            active_area: area,
            ..members
        };
        // Copies not holding the current state go first, so until the last write at least one intact copy
        // holds the current state and every newer copy holds the new, already durable, one.
        let order = self.write_order();
        for copy in order.iter().flatten().copied() {
            let done = write_copy(io, blk, &sb, copy, true);
            self.poison_on_io(done)?;
        }
        self.sb = sb;
        self.limits = limits;
        self.current = [true; SUPERBLOCK_COPIES];
        self.pos = Position {
            block: 0,
            seq: next_seq,
            chain: 0,
        };
        Ok(())
    }

    /// Checks that nobody else wrote to the region since this store loaded it or last wrote to it: no newer
    /// superblock of this setup, and no commit after this store's last one in its journal generation.
    /// [`Error::ChangedSinceLoad`] otherwise: the caller's table misses what was committed, and writing
    /// through this store would overwrite it.
    ///
    /// Used when a table reload is resumed: the new table loaded the metadata while the previous table was
    /// still live and may have committed after that. A block that cannot be read proves nothing either way
    /// and is passed over: the check never refuses a region for an I/O error alone.
    pub fn check_unchanged<I: BlockIo>(&self, io: &mut I, buf: &mut [u8]) -> Result<(), Error> {
        let blk = as_block(buf)?;
        // What was read ahead at load predates the writes this check looks for.
        io.forget_reads();
        for copy in 0..SUPERBLOCK_COPIES {
            let sector = Layout::superblock_sector(copy).ok_or(Error::BadGeometry)?;
            if block::read(io, sector, blk).is_err() {
                continue;
            }
            if let Ok(sb) = Superblock::decode(blk) {
                if sb.uuid == self.sb.uuid && sb.meta_version > self.sb.meta_version {
                    return Err(Error::ChangedSinceLoad);
                }
            }
        }
        struct Count(u64);
        impl RecordSink for Count {
            fn apply(&mut self, _rec: &Record) -> Result<(), Error> {
                self.0 = self.0.saturating_add(1);
                Ok(())
            }
        }
        let mut count = Count(0);
        let replayed = journal::replay(
            io,
            blk,
            &self.layout,
            self.sb.journal_nonce,
            self.pos,
            &self.limits,
            &mut count,
        );
        match replayed {
            Ok(r) if r.commits == 0 => Ok(()),
            Err(Error::ReadFailed) => Ok(()),
            _ => Err(Error::ChangedSinceLoad),
        }
    }

    /// Rewrites every superblock copy that load did not find current; returns how many were rewritten.
    pub fn repair<I: BlockIo>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<usize, Error> {
        self.usable()?;
        let blk = as_block(buf)?;
        let mut repaired = 0usize;
        for copy in 0..SUPERBLOCK_COPIES {
            if self.current.get(copy) == Some(&false) {
                let done = write_copy(io, blk, &self.sb, copy, true);
                self.poison_on_io(done)?;
                if let Some(c) = self.current.get_mut(copy) {
                    *c = true;
                }
                repaired = repaired.saturating_add(1);
            }
        }
        Ok(repaired)
    }

    /// The superblock the store works from.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Members removed from the setup, as recorded (bit `i`: member `i`).
    pub fn removed_members(&self) -> u32 {
        self.sb.removed_members
    }

    /// The region layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Sequence number of the last commit (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.pos.seq.saturating_sub(1)
    }

    /// Free journal blocks; a commit of k records needs `journal::blocks_for(k)`.
    pub fn journal_free_blocks(&self) -> u64 {
        self.layout.journal_blocks.saturating_sub(self.pos.block)
    }

    /// Whether an earlier write failure requires a reload before further changes.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// What the store knows of the scrub-state copies (maintained by `scrub.rs`).
    pub fn scrub_cursor(&self) -> ScrubCursor {
        self.scrub
    }

    /// Records what was read from, or durably written to, the scrub-state copies. Only `scrub.rs` calls it;
    /// a wrong cursor could make a save overwrite the newest state.
    pub fn set_scrub_cursor(&mut self, cursor: ScrubCursor) {
        self.scrub = cursor;
    }

    /// The shutdown mark this store last wrote durably (none until it writes one).
    pub fn shutdown_mark(&self) -> ShutdownMark {
        self.mark
    }

    /// Records the shutdown mark just written durably. Only `scrub.rs` calls it.
    pub fn set_shutdown_mark(&mut self, mark: ShutdownMark) {
        self.mark = mark;
    }

    /// [`Error::Poisoned`] once a write failed.
    fn usable(&self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Passes `r` through, poisoning the store if it failed after something may have been written.
    fn poison_on_io<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if matches!(r, Err(Error::WriteFailed | Error::FlushFailed)) {
            self.poisoned = true;
        }
        r
    }

    /// Superblock copies in the order a checkpoint rewrites them: non-current ones first.
    fn write_order(&self) -> [Option<usize>; SUPERBLOCK_COPIES] {
        let mut order = [None; SUPERBLOCK_COPIES];
        let stale = (0..SUPERBLOCK_COPIES).filter(|&c| self.current.get(c) == Some(&false));
        let fresh = (0..SUPERBLOCK_COPIES).filter(|&c| self.current.get(c) == Some(&true));
        for (slot, copy) in order.iter_mut().zip(stale.chain(fresh)) {
            *slot = Some(copy);
        }
        order
    }
}

/// The error for a region where no superblock copy matched.
fn no_superblock(
    copies: &[CopyStatus; SUPERBLOCK_COPIES],
    found: &[Option<Superblock>; SUPERBLOCK_COPIES],
) -> Error {
    let any = |s: CopyStatus| copies.contains(&s);
    if found.iter().any(Option::is_some) {
        Error::OtherSetup
    } else if any(CopyStatus::Corrupt) {
        Error::SuperblockCorrupt
    } else if any(CopyStatus::Unreadable) {
        Error::ReadFailed
    } else if copies.iter().all(|&c| c == CopyStatus::Blank) {
        Error::Blank
    } else {
        Error::Foreign
    }
}
