//! Metadata versions (commit sequence numbers): strictly increasing, never wrapping.
//!
//! Every metadata commit carries the next version; after a reboot the member with the highest
//! version holds the newest metadata. Version `0` means "never committed".

use core::cmp::Ordering;

use super::error::Error;

/// The version of the next commit after `current`; refuses to wrap, since a wrapped version
/// would make the newest metadata look the oldest.
pub fn next_version(current: u64) -> Result<u64, Error> {
    current.checked_add(1).ok_or(Error::VersionOverflow)
}

/// Orders two versions: `Greater` when `a` is newer than `b`.
///
/// Plain numeric order, on purpose: versions never wrap (see [`next_version`]), so no
/// serial-number arithmetic is needed and a corrupt huge version cannot appear "older".
pub fn compare_versions(a: u64, b: u64) -> Ordering {
    a.cmp(&b)
}

/// Index of the member with the newest version; the first one on ties (a stable, predictable
/// choice), `None` for no members.
pub fn newest(versions: &[u64]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (index, &version) in versions.iter().enumerate() {
        match best {
            Some((_, top)) if compare_versions(version, top) != Ordering::Greater => {}
            _ => best = Some((index, version)),
        }
    }
    best.map(|(index, _)| index)
}

/// How far the members' versions agree: the sequence inputs of [`super::score::Inputs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceSummary {
    /// The highest version seen.
    pub highest: u64,
    /// How many members carry the highest version.
    pub at_highest: u32,
    /// How far the oldest member lags behind the highest version.
    pub max_lag: u64,
}

/// Summarizes the versions of the members found; `None` for no members.
pub fn summarize(versions: &[u64]) -> Option<SequenceSummary> {
    let highest = versions.iter().copied().max()?;
    let lowest = versions.iter().copied().min()?;
    let at_highest = versions.iter().filter(|&&v| v == highest).count();
    Some(SequenceSummary {
        highest,
        at_highest: u32::try_from(at_highest).unwrap_or(u32::MAX),
        max_lag: highest.saturating_sub(lowest),
    })
}
