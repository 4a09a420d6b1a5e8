//! The background scrub's persisted state: where the scrub of the main device stands, kept in two copies
//! (blocks 1 and 9 of the region) apart from the remap table.
//!
//! Saving is one FUA block write to the copy that does not hold the newest state (ping-pong), so a torn or
//! failed write can only damage the copy being written while the other keeps the previous state. Loading
//! takes the valid copy with the highest sequence number. The state is advisory: losing it only restarts the
//! scrub, so a damaged copy is reported, never an error. Format and crash-safety argument in
//! `docs/metadata-format.md`, "Scrub state (blocks 1 and 9)".

use super::abi::ScrubStateAbi;
use super::block::{self, as_block, Block, Seal, ENVELOPE_SIZE};
use super::error::Error;
use super::io::BlockIo;
use super::layout::SECTORS_PER_BLOCK;
use super::le::{Reader, Writer};
use super::store::{ScrubCursor, Store};

/// Magic of a scrub-state block: "DMRS" in the first four bytes.
pub const SCRUB_MAGIC: u32 = u32::from_le_bytes(*b"DMRS");
/// Version of the scrub-state block written and understood by this code.
pub const SCRUB_VERSION: u32 = 1;
/// Number of scrub-state copies.
pub const SCRUB_COPIES: usize = 2;
/// Block number of each scrub-state copy, next to each superblock copy (32 KiB apart).
pub const SCRUB_BLOCKS: [u64; SCRUB_COPIES] = [1, 9];
/// Offset in a scrub-state block of the shutdown mark (a compatible addition: older code ignores it).
pub const SHUTDOWN_MARK_OFFSET: usize = 112;

/// What the shutdown mark of a scrub-state block says (its `shutdown` field, a u32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shutdown {
    /// 0: no mark (written by older code, or by a save before any mark). Also what any value this code does
    /// not know decodes to: never taken as clean.
    #[default]
    None,
    /// 1: the setup was live (or changing its metadata) when this was written.
    Dirty,
    /// 2: the setup was shut down cleanly at the recorded metadata version and commit sequence.
    Clean,
}

impl Shutdown {
    /// The on-disk value.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Dirty => 1,
            Self::Clean => 2,
        }
    }

    /// The on-disk value decoded; unknown values are [`Shutdown::None`].
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Dirty,
            2 => Self::Clean,
            _ => Self::None,
        }
    }
}

/// The shutdown mark kept in every scrub-state block at [`SHUTDOWN_MARK_OFFSET`]: whether the setup was shut
/// down cleanly, and the metadata it was clean at. Format in `docs/metadata-format.md`, "Shutdown mark".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownMark {
    /// Dirty, clean or none.
    pub shutdown: Shutdown,
    /// The superblock's `meta_version` when the mark was written.
    pub meta_version: u64,
    /// The sequence number of the last commit when the mark was written.
    pub commit_seq: u64,
}

/// What a member's newest shutdown mark means for the metadata loaded from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownStatus {
    /// A clean mark recording exactly the loaded metadata version and commit sequence.
    Clean,
    /// A dirty mark: the setup was live, or changing its metadata, when it stopped.
    Dirty,
    /// A clean mark for other metadata than what loaded (it changed after the mark, or a commit was lost).
    Stale,
    /// No mark (never marked, older code, no scrub state).
    None,
}

impl ShutdownStatus {
    /// Lower-case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Dirty => "dirty",
            Self::Stale => "stale",
            Self::None => "none",
        }
    }
}

impl ShutdownMark {
    /// Writes the mark into `out` at [`SHUTDOWN_MARK_OFFSET`] (before the block is sealed); flags are zero.
    fn write(&self, out: &mut Block) {
        let Some(at) = out.get_mut(SHUTDOWN_MARK_OFFSET..) else {
            return;
        };
        let mut w = Writer::new(at);
        w.u32(self.shutdown.to_u32());
        w.u32(0);
        w.u64(self.meta_version);
        w.u64(self.commit_seq);
    }

    /// The mark of a valid scrub-state block (flags are ignored).
    pub fn read(blk: &Block) -> Self {
        let Some(at) = blk.get(SHUTDOWN_MARK_OFFSET..) else {
            return Self::default();
        };
        let mut r = Reader::new(at);
        let shutdown = Shutdown::from_u32(r.u32());
        let _flags = r.u32();
        Self {
            shutdown,
            meta_version: r.u64(),
            commit_seq: r.u64(),
        }
    }

    /// What this mark says about metadata loaded at `meta_version` and `commit_seq`: clean only if it is a
    /// clean mark recording exactly those.
    pub fn status(&self, meta_version: u64, commit_seq: u64) -> ShutdownStatus {
        match self.shutdown {
            Shutdown::Clean
                if self.meta_version == meta_version && self.commit_seq == commit_seq =>
            {
                ShutdownStatus::Clean
            }
            Shutdown::Clean => ShutdownStatus::Stale,
            Shutdown::Dirty => ShutdownStatus::Dirty,
            Shutdown::None => ShutdownStatus::None,
        }
    }
}

/// The scrub's persisted state, as saved and loaded. Units as in [`ScrubStateAbi`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubState {
    /// The next main-device unit the scrub reads (the core clamps it to the device; the format does not).
    pub position: u64,
    /// Full passes over the main device completed.
    pub passes: u64,
    /// Units found unreadable (recorded as pending), over every pass.
    pub found_pending: u64,
    /// Units relocated because they kept reading slowly, over every pass.
    pub relocated: u64,
    /// Seconds since the epoch when the current pass began (0: none began).
    pub pass_started: u64,
    /// Scrub rate in KiB/s in effect when saved.
    pub rate_kib: u32,
    /// Whether the scrub was running when saved.
    pub running: bool,
    /// Units found unreadable or slow so far in the pass under way.
    pub pass_found: u64,
    /// Units found unreadable or slow by the last complete pass.
    pub last_pass_found: u64,
    /// Units found unreadable or slow by the pass before it.
    pub prev_pass_found: u64,
}

impl ScrubState {
    /// The state the C ABI describes; `None` if `running` is neither 0 nor 1.
    pub fn from_abi(a: &ScrubStateAbi) -> Option<Self> {
        let running = match a.running {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some(Self {
            position: a.position,
            passes: a.passes,
            found_pending: a.found_pending,
            relocated: a.relocated,
            pass_started: a.pass_started,
            rate_kib: a.rate_kib,
            running,
            pass_found: a.pass_found,
            last_pass_found: a.last_pass_found,
            prev_pass_found: a.prev_pass_found,
        })
    }

    /// The state as the C ABI describes it.
    pub fn to_abi(&self) -> ScrubStateAbi {
        ScrubStateAbi {
            position: self.position,
            passes: self.passes,
            found_pending: self.found_pending,
            relocated: self.relocated,
            pass_started: self.pass_started,
            rate_kib: self.rate_kib,
            running: u32::from(self.running),
            pass_found: self.pass_found,
            last_pass_found: self.last_pass_found,
            prev_pass_found: self.prev_pass_found,
        }
    }

    /// Encodes into `out` (whole block, sealed) as copy `copy_index` of setup `uuid`, numbered `seq`, with no
    /// shutdown mark.
    pub fn encode(&self, copy_index: u32, uuid: &[u8; 16], seq: u64, out: &mut Block) {
        self.encode_marked(copy_index, uuid, seq, &ShutdownMark::default(), out);
    }

    /// As [`ScrubState::encode`], with the shutdown mark `mark`.
    pub fn encode_marked(
        &self,
        copy_index: u32,
        uuid: &[u8; 16],
        seq: u64,
        mark: &ShutdownMark,
        out: &mut Block,
    ) {
        out.fill(0);
        let (_, body) = out.split_at_mut(ENVELOPE_SIZE);
        let mut w = Writer::new(body);
        w.u32(SCRUB_VERSION);
        w.u32(copy_index);
        w.bytes(*uuid);
        w.u64(seq);
        w.u64(self.position);
        w.u64(self.passes);
        w.u64(self.found_pending);
        w.u64(self.relocated);
        w.u64(self.pass_started);
        w.u32(self.rate_kib);
        w.u32(u32::from(self.running));
        w.u64(self.pass_found);
        w.u64(self.last_pass_found);
        w.u64(self.prev_pass_found);
        mark.write(out);
        block::seal(out, SCRUB_MAGIC);
    }

    /// Decodes `blk` read from the position of copy `copy_index`: its sequence number and state, or `None`
    /// unless the envelope is valid, the version is [`SCRUB_VERSION`], the copy index is `copy_index`, the
    /// UUID is `uuid` and `running` is 0 or 1. Bytes after the last field are ignored (a compatible
    /// extension may use them; the CRC still covers them).
    pub fn decode(blk: &Block, copy_index: u32, uuid: &[u8; 16]) -> Option<(u64, Self)> {
        if block::check(blk, SCRUB_MAGIC) != Seal::Valid {
            return None;
        }
        let (_, body) = blk.split_at(ENVELOPE_SIZE);
        let mut r = Reader::new(body);
        if r.u32() != SCRUB_VERSION || r.u32() != copy_index || r.bytes::<16>() != *uuid {
            return None;
        }
        let seq = r.u64();
        let mut state = Self {
            position: r.u64(),
            passes: r.u64(),
            found_pending: r.u64(),
            relocated: r.u64(),
            pass_started: r.u64(),
            rate_kib: r.u32(),
            ..Self::default()
        };
        state.running = match r.u32() {
            0 => false,
            1 => true,
            _ => return None,
        };
        state.pass_found = r.u64();
        state.last_pass_found = r.u64();
        state.prev_pass_found = r.u64();
        Some((seq, state))
    }
}

/// Sector of scrub-state copy `copy`.
pub fn scrub_sector(copy: usize) -> Option<u64> {
    SCRUB_BLOCKS
        .get(copy)
        .and_then(|b| b.checked_mul(SECTORS_PER_BLOCK))
}

/// What [`Store::load_scrub_state`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrubLoad {
    /// The newest valid state, if any copy holds one.
    pub state: Option<ScrubState>,
    /// Its sequence number (0 when there is none).
    pub seq: u64,
    /// The copy it was read from.
    pub copy: Option<usize>,
    /// The shutdown mark of that copy (none when there is no state).
    pub mark: ShutdownMark,
    /// Copies that were unreadable, or neither all zeros nor a valid state of this setup (damaged, torn,
    /// another setup's, unknown version). An older valid copy is not bad: it is the previous state.
    pub bad_copies: u32,
}

impl ScrubLoad {
    /// The cursor a store keeps after reading this.
    fn cursor(&self) -> ScrubCursor {
        match self.copy {
            Some(copy) => ScrubCursor::Newest {
                seq: self.seq,
                copy,
            },
            None => ScrubCursor::Empty,
        }
    }
}

/// Reads both copies and picks the newest valid state of setup `uuid`. Fails only if neither copy could be
/// read ([`Error::ReadFailed`]).
pub fn read_scrub_state<I: BlockIo>(
    io: &mut I,
    blk: &mut Block,
    uuid: &[u8; 16],
) -> Result<ScrubLoad, Error> {
    // Anything read ahead earlier (e.g. with the superblock at load) may predate the last save.
    io.forget_reads();
    let mut found = ScrubLoad {
        state: None,
        seq: 0,
        copy: None,
        mark: ShutdownMark::default(),
        bad_copies: 0,
    };
    let mut unreadable = 0usize;
    for (copy, ci) in (0..SCRUB_COPIES).zip(0u32..) {
        let sector = scrub_sector(copy).ok_or(Error::BadGeometry)?;
        if block::read(io, sector, blk).is_err() {
            unreadable = unreadable.saturating_add(1);
            found.bad_copies = found.bad_copies.saturating_add(1);
            continue;
        }
        match ScrubState::decode(blk, ci, uuid) {
            Some((seq, state)) => {
                if found.copy.is_none() || seq > found.seq {
                    found.state = Some(state);
                    found.seq = seq;
                    found.copy = Some(copy);
                    found.mark = ShutdownMark::read(blk);
                }
            }
            None => {
                if blk.iter().any(|&b| b != 0) {
                    found.bad_copies = found.bad_copies.saturating_add(1);
                }
            }
        }
    }
    if unreadable == SCRUB_COPIES {
        return Err(Error::ReadFailed);
    }
    Ok(found)
}

impl Store {
    /// Loads the scrub state of this setup from blocks 1 and 9: the newest valid copy, or `state: None`
    /// when neither holds one (the scrub starts at 0). Never writes. A damaged copy is counted in
    /// `bad_copies`, not an error; only when neither copy can be read is the result
    /// [`Error::ReadFailed`]. Remembers which copy holds the newest state, for [`Store::save_scrub_state`].
    ///
    /// Works on a poisoned store too: the scrub state does not depend on the remap table.
    pub fn load_scrub_state<I: BlockIo>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
    ) -> Result<ScrubLoad, Error> {
        let blk = as_block(buf)?;
        let uuid = self.superblock().uuid;
        let found = read_scrub_state(io, blk, &uuid)?;
        self.set_scrub_cursor(found.cursor());
        Ok(found)
    }

    /// Durably saves `state`: one FUA write of the copy that does not hold the newest state (copy 0 when
    /// neither is valid), numbered one above the newest. If the store has not read the copies yet, it reads
    /// them first. Touches no other block and never the remap table.
    ///
    /// A failed write returns [`Error::WriteFailed`] and does not poison the store (the remap table is
    /// unaffected, and the other copy still holds the previous state); the next save writes the same copy
    /// again. A poisoned store refuses with [`Error::Poisoned`], like every other write: it must be reloaded.
    pub fn save_scrub_state<I: BlockIo>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
        state: &ScrubState,
    ) -> Result<(), Error> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let blk = as_block(buf)?;
        let uuid = self.superblock().uuid;
        let cursor = match self.scrub_cursor() {
            ScrubCursor::Unknown => {
                let cursor = read_scrub_state(io, blk, &uuid)?.cursor();
                self.set_scrub_cursor(cursor);
                cursor
            }
            known => known,
        };
        let (seq, copy) = match cursor {
            ScrubCursor::Unknown | ScrubCursor::Empty => (1, 0),
            ScrubCursor::Newest { seq, copy } => (
                seq.checked_add(1).ok_or(Error::Overflow)?,
                if copy == 0 { 1 } else { 0 },
            ),
        };
        let sector = scrub_sector(copy).ok_or(Error::BadGeometry)?;
        let copy_index = u32::try_from(copy).map_err(|_| Error::BadGeometry)?;
        let mark = self.shutdown_mark();
        state.encode_marked(copy_index, &uuid, seq, &mark, blk);
        block::write(io, sector, blk, true)?;
        self.set_scrub_cursor(ScrubCursor::Newest { seq, copy });
        Ok(())
    }

    /// Durably writes a dirty shutdown mark (see [`Store::write_shutdown_mark`]): before the first change of
    /// the metadata after a load or a clean mark, so that a crash from then on leaves the setup marked dirty.
    pub fn mark_dirty<I: BlockIo>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<(), Error> {
        self.write_shutdown_mark(io, buf, Shutdown::Dirty)
    }

    /// Durably writes a clean shutdown mark recording the current metadata version and commit sequence (see
    /// [`Store::write_shutdown_mark`]): once the setup stopped changing its metadata.
    pub fn mark_clean<I: BlockIo>(&mut self, io: &mut I, buf: &mut [u8]) -> Result<(), Error> {
        self.write_shutdown_mark(io, buf, Shutdown::Clean)
    }

    /// Writes the shutdown mark `shutdown`, recording this store's metadata version and last commit sequence:
    /// reads both scrub-state copies (another table of the device may have saved since this store last
    /// looked), then writes the newest scrub state again, unchanged, with the new mark, into the other copy
    /// with the next sequence number, as one FUA write: the same ping-pong as [`Store::save_scrub_state`], so
    /// a crash during it leaves the previous state and mark. With no scrub state yet, the state written is
    /// the empty one (the scrub starts at unit 0, as without a state). Later scrub saves carry the mark.
    /// A poisoned store refuses ([`Error::Poisoned`]): its metadata is not known to be consistent.
    pub fn write_shutdown_mark<I: BlockIo>(
        &mut self,
        io: &mut I,
        buf: &mut [u8],
        shutdown: Shutdown,
    ) -> Result<(), Error> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let blk = as_block(buf)?;
        let uuid = self.superblock().uuid;
        let found = read_scrub_state(io, blk, &uuid)?;
        self.set_scrub_cursor(found.cursor());
        let state = found.state.unwrap_or_default();
        let mark = ShutdownMark {
            shutdown,
            meta_version: self.superblock().meta_version,
            commit_seq: self.last_seq(),
        };
        let (seq, copy) = match found.copy {
            None => (1, 0),
            Some(copy) => (
                found.seq.checked_add(1).ok_or(Error::Overflow)?,
                if copy == 0 { 1 } else { 0 },
            ),
        };
        let sector = scrub_sector(copy).ok_or(Error::BadGeometry)?;
        let copy_index = u32::try_from(copy).map_err(|_| Error::BadGeometry)?;
        state.encode_marked(copy_index, &uuid, seq, &mark, blk);
        block::write(io, sector, blk, true)?;
        self.set_scrub_cursor(ScrubCursor::Newest { seq, copy });
        self.set_shutdown_mark(mark);
        Ok(())
    }
}
