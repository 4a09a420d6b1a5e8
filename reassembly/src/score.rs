//! The confidence score: how sure we are that the devices found after a reboot are one setup.
//!
//! The caller (a kernel module) gathers [`Inputs`] from the devices' metadata; this file turns
//! them into vetoes and a score of 0..=100 with integer math only. The formula is documented in
//! `docs/reassembly.md`; the weights below are its single source.

use super::verdict::Reason;

/// Value of a yes/no field meaning "no". Only [`YES`] counts as yes: any other byte is treated
/// as "no", so garbage from a caller errs towards refusing.
pub const NO: u8 = 0;
/// Value of a yes/no field meaning "yes".
pub const YES: u8 = 1;

/// `main_identifier`: the device reports no WWN/serial, or none was recorded.
pub const IDENTIFIER_UNKNOWN: u8 = 0;
/// `main_identifier`: the WWN/serial matches the recorded one.
pub const IDENTIFIER_MATCH: u8 = 1;
/// `main_identifier`: the WWN/serial differs from the recorded one (a veto).
pub const IDENTIFIER_MISMATCH: u8 = 2;

/// Points for valid metadata copies, scaled by `copies_valid / copies_total`.
pub const COPIES_POINTS: u64 = 30;
/// Points for members present, scaled by `members_found / members_expected`.
pub const MEMBERS_POINTS: u64 = 30;
/// Points for members at the highest sequence, scaled by `members_at_highest / members_expected`.
pub const AGREEMENT_POINTS: u64 = 10;
/// Points for sequence lag: full at lag 0, one less per commit of lag, none from this lag on.
pub const LAG_POINTS: u64 = 10;
/// Points for the main's WWN/serial: full on a match, none when unknown (nothing confirmed).
pub const IDENTIFIER_POINTS: u64 = 10;
/// Points for a clean shutdown.
pub const SHUTDOWN_POINTS: u64 = 5;
/// Points for recent metadata, see [`AGE_STEPS`].
pub const AGE_POINTS: u64 = 5;

/// Age steps: metadata at most `.0` seconds old earns `.1` points (first match wins).
pub const AGE_STEPS: [(u64, u64); 5] = [
    (DAY, 5),
    (7 * DAY, 4),
    (30 * DAY, 3),
    (90 * DAY, 2),
    (365 * DAY, 1),
];

/// Seconds in a day.
const DAY: u64 = 86_400;

/// What the caller found, in a fixed C layout: it crosses the ABI between kernel modules.
///
/// Members are the main device and the spares of one setup. Yes/no fields are `u8` holding
/// [`YES`] or [`NO`]; all counts are plain integers. Fields are ordered widest first so the
/// layout has no hidden padding (56 bytes, 8-aligned).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inputs {
    /// Highest metadata commit sequence seen on any member.
    pub highest_sequence: u64,
    /// How far the most out-of-date member lags behind `highest_sequence`, in commits.
    pub max_sequence_lag: u64,
    /// Seconds since the newest metadata commit (the caller's clock against the recorded time).
    pub age_seconds: u64,
    /// Metadata copies that passed their checks, over all members found.
    pub copies_valid: u32,
    /// Metadata copies that should exist on the members found.
    pub copies_total: u32,
    /// Members (main and spares) found.
    pub members_found: u32,
    /// Members the newest metadata records.
    pub members_expected: u32,
    /// Members found whose sequence is `highest_sequence`.
    pub members_at_highest: u32,
    /// [`YES`] when the main device's size matches the recorded size.
    pub main_size_matches: u8,
    /// [`YES`] when the main device's logical block size matches the recorded one.
    pub main_block_size_matches: u8,
    /// [`IDENTIFIER_MATCH`], [`IDENTIFIER_UNKNOWN`] or [`IDENTIFIER_MISMATCH`] for the main's
    /// WWN/serial.
    pub main_identifier: u8,
    /// [`YES`] when every member found records the same setup UUID.
    pub uuid_agree: u8,
    /// [`YES`] when the newest metadata records a clean shutdown.
    pub clean_shutdown: u8,
    /// Must be zero; keeps the size a multiple of 8 explicitly.
    pub reserved: [u8; 3],
}

// The C side mirrors this layout; a change here must be a deliberate ABI change.
const _: () = assert!(core::mem::size_of::<Inputs>() == 56);
const _: () = assert!(core::mem::align_of::<Inputs>() == 8);

impl Inputs {
    /// Whether the counts make sense together; inconsistent inputs are a caller bug, refused.
    pub fn is_consistent(&self) -> bool {
        let flag = |v: u8| v == YES || v == NO;
        self.copies_total > 0
            && self.copies_valid <= self.copies_total
            && self.members_expected > 0
            && self.members_found <= self.members_expected
            && self.members_at_highest <= self.members_found
            // Someone found must carry the highest sequence.
            && (self.members_found == 0 || self.members_at_highest > 0)
            && self.max_sequence_lag <= self.highest_sequence
            && flag(self.main_size_matches)
            && flag(self.main_block_size_matches)
            && flag(self.uuid_agree)
            && flag(self.clean_shutdown)
            && self.main_identifier <= IDENTIFIER_MISMATCH
            && self.reserved == [0; 3]
    }
}

/// The hard mismatches: any of these makes the score 0 and the verdict a refusal, whatever
/// else looks good, because assembling would write to the wrong device or mix setups.
pub fn veto(inputs: &Inputs) -> Option<Reason> {
    if !inputs.is_consistent() {
        Some(Reason::InconsistentInputs)
    } else if inputs.uuid_agree != YES {
        Some(Reason::ForeignMember)
    } else if inputs.main_size_matches != YES {
        Some(Reason::MainSizeMismatch)
    } else if inputs.main_block_size_matches != YES {
        Some(Reason::MainBlockSizeMismatch)
    } else if inputs.main_identifier == IDENTIFIER_MISMATCH {
        Some(Reason::MainIdentifierMismatch)
    } else if inputs.members_found == 0 {
        Some(Reason::NoMembers)
    } else if inputs.copies_valid == 0 {
        Some(Reason::NoValidMetadata)
    } else {
        None
    }
}

/// `points * num / den`, floored; 0 for a zero denominator (the vetoes exclude it anyway).
fn scaled(points: u64, num: u32, den: u32) -> u64 {
    points
        .saturating_mul(u64::from(num))
        .checked_div(u64::from(den))
        .unwrap_or(0)
}

/// Points for metadata `age_seconds` old.
fn age_points(age_seconds: u64) -> u64 {
    AGE_STEPS
        .iter()
        .find(|&&(limit, _)| age_seconds <= limit)
        .map_or(0, |&(_, points)| points)
}

/// The confidence score, 0..=100: 0 on any [`veto`], 100 only when every copy is valid, every
/// member is present and at the same sequence, the main's WWN/serial matches, the last
/// shutdown was clean and the metadata is at most a day old.
pub fn calculate_confidence_score(inputs: &Inputs) -> u8 {
    if veto(inputs).is_some() {
        return 0;
    }
    let identifier = if inputs.main_identifier == IDENTIFIER_MATCH {
        IDENTIFIER_POINTS
    } else {
        0
    };
    let shutdown = if inputs.clean_shutdown == YES {
        SHUTDOWN_POINTS
    } else {
        0
    };
    let parts = [
        scaled(COPIES_POINTS, inputs.copies_valid, inputs.copies_total),
        scaled(
            MEMBERS_POINTS,
            inputs.members_found,
            inputs.members_expected,
        ),
        scaled(
            AGREEMENT_POINTS,
            inputs.members_at_highest,
            inputs.members_expected,
        ),
        LAG_POINTS.saturating_sub(inputs.max_sequence_lag),
        identifier,
        shutdown,
        age_points(inputs.age_seconds),
    ];
    let total = parts.iter().fold(0u64, |acc, p| acc.saturating_add(*p));
    // Each part is at most its weight and the weights sum to 100; min() only guards that.
    u8::try_from(total.min(100)).unwrap_or(100)
}
