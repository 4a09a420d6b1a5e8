//! The verdict: assemble, assemble degraded, or refuse with a reason.

use super::score::{calculate_confidence_score, veto, Inputs, IDENTIFIER_MATCH, YES};

/// A threshold that assembles a complete, current setup even after an unclean shutdown, with
/// an unknown WWN/serial and year-old metadata (score 80), and a two-member setup with one
/// member missing (80), but refuses when half the metadata copies and half the members are
/// gone (65).
pub const DEFAULT_THRESHOLD: u8 = 70;

/// Metadata at most this old earns full age points (one day).
const FRESH_SECONDS: u64 = 86_400;

/// Why a setup is refused. The vetoes come first, then what lowered the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// The caller's inputs contradict each other.
    InconsistentInputs = 1,
    /// A member records a different setup UUID.
    ForeignMember = 2,
    /// The main device's size differs from the recorded size.
    MainSizeMismatch = 3,
    /// The main device's logical block size differs from the recorded one.
    MainBlockSizeMismatch = 4,
    /// The main device's WWN/serial differs from the recorded one.
    MainIdentifierMismatch = 5,
    /// No member of the setup was found.
    NoMembers = 6,
    /// No metadata copy passed its checks.
    NoValidMetadata = 7,
    /// A member is missing (score below threshold).
    MemberMissing = 8,
    /// Some metadata copies are corrupt (score below threshold).
    CorruptMetadata = 9,
    /// A member's metadata is behind the newest (score below threshold).
    StaleMember = 10,
    /// The main's WWN/serial could not be checked (score below threshold).
    IdentityUnconfirmed = 11,
    /// The setup was not shut down cleanly (score below threshold).
    UncleanShutdown = 12,
    /// The newest metadata is old (score below threshold).
    OldMetadata = 13,
    /// The score is below the threshold with nothing else to blame (threshold above 100).
    LowConfidence = 14,
}

impl Reason {
    /// A short static English description, fit for a log line or `ti->error`.
    pub fn message(&self) -> &'static str {
        match self {
            Reason::InconsistentInputs => "reassembly inputs are inconsistent",
            Reason::ForeignMember => "spare belongs to another setup",
            Reason::MainSizeMismatch => "main device size differs from the recorded size",
            Reason::MainBlockSizeMismatch => {
                "main device logical block size differs from the recorded one"
            }
            Reason::MainIdentifierMismatch => {
                "main device WWN/serial differs from the recorded one"
            }
            Reason::NoMembers => "no member of the setup found",
            Reason::NoValidMetadata => "no valid metadata copy found",
            Reason::MemberMissing => "member missing",
            Reason::CorruptMetadata => "metadata copies corrupt",
            Reason::StaleMember => "member metadata is stale",
            Reason::IdentityUnconfirmed => "main device identity cannot be confirmed",
            Reason::UncleanShutdown => "setup was not shut down cleanly",
            Reason::OldMetadata => "metadata is old",
            Reason::LowConfidence => "reassembly confidence below threshold",
        }
    }
}

/// What to do with the devices found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything is there and current: assemble normally.
    Assemble,
    /// Confident enough, but a member is missing, a copy is corrupt or a member is stale:
    /// assemble and repair (rewrite copies, resync or replace members).
    Degraded,
    /// Do not assemble.
    Refuse(Reason),
}

/// The first thing that cost points, for a refusal below the threshold.
fn deficiency(inputs: &Inputs) -> Reason {
    if inputs.members_found < inputs.members_expected {
        Reason::MemberMissing
    } else if inputs.copies_valid < inputs.copies_total {
        Reason::CorruptMetadata
    } else if inputs.members_at_highest < inputs.members_found || inputs.max_sequence_lag > 0 {
        Reason::StaleMember
    } else if inputs.main_identifier != IDENTIFIER_MATCH {
        Reason::IdentityUnconfirmed
    } else if inputs.clean_shutdown != YES {
        Reason::UncleanShutdown
    } else if inputs.age_seconds > FRESH_SECONDS {
        Reason::OldMetadata
    } else {
        Reason::LowConfidence
    }
}

/// Whether something needs repair after assembly.
fn needs_repair(inputs: &Inputs) -> bool {
    inputs.members_found < inputs.members_expected
        || inputs.copies_valid < inputs.copies_total
        || inputs.members_at_highest < inputs.members_found
        || inputs.max_sequence_lag > 0
}

/// Decides from `inputs` and a `threshold` (0..=100; see [`DEFAULT_THRESHOLD`]): vetoes refuse
/// outright; a score below the threshold refuses with the first deficiency as the reason;
/// otherwise assemble, degraded if anything needs repair.
pub fn assess(inputs: &Inputs, threshold: u8) -> Verdict {
    if let Some(reason) = veto(inputs) {
        return Verdict::Refuse(reason);
    }
    if calculate_confidence_score(inputs) < threshold {
        return Verdict::Refuse(deficiency(inputs));
    }
    if needs_repair(inputs) {
        Verdict::Degraded
    } else {
        Verdict::Assemble
    }
}
