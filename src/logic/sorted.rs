//! The sorted run: the bulk of the remap table, as two parallel arrays sorted by main unit.
//!
//! An XArray costs one 576-byte node per scattered entry and one allocation per insert, which made a table of
//! 1,000,000 entries slow to load and far above the 32 bytes per entry the project promises. So the table
//! keeps most entries in a sorted run, 16 bytes per entry plus a fence (a directory by the units' high bits
//! and every 16th key: 0.75 to 1 byte per entry) and a filter (half a byte to a byte per entry), both built
//! once at load and rebuilt after [`merge`] when enough changes have piled up; only recent changes live in an
//! XArray. This file holds the run's lookups and the merge: pure functions on slices, the same code on the
//! host and in the kernel, where the caller owns the memory and publishes runs under RCU.

/// Keys per leaf: the lower fence level holds every `LEAF`th key, and a lookup whose bucket of the directory
/// holds many keys searches one leaf of keys, 128 bytes (two cache lines).
pub const LEAF: usize = 16;
/// Keys per directory bucket on average, at least: the directory has between `len / (2 * DIR_KEYS)` and
/// `len / DIR_KEYS` buckets (8 to 16 keys each when the keys are spread evenly), one `u32` each: a quarter
/// to half a byte per entry.
pub const DIR_KEYS: usize = 8;

/// Filter bits per key, at least: the filter has the next power of two of `FILTER_BITS * len` bits (at least
/// 64), so 4 to 8 bits per key, and about 12–22% of the units without an entry find their bit set. A power
/// of two keeps the hash a shift, and the array a size that kmalloc and vmalloc do not round up further.
pub const FILTER_BITS: usize = 4;

/// Filter words for a run of `len` keys (none for an empty run, or one too large to count).
pub const fn filter_len(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    match len.checked_mul(FILTER_BITS) {
        Some(bits) => match bits.checked_next_power_of_two() {
            Some(bits) if bits > 64 => bits / 64,
            Some(_) => 1,
            None => 0,
        },
        None => 0,
    }
}

/// The word and bit mask of `unit` in a filter of `words` words (a power of two): the top bits of a
/// multiplicative hash, so units close together land far apart.
fn filter_bit(unit: u64, words: usize) -> (usize, u64) {
    let h = unit.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // log2 of the filter's bits: `words` is a power of two, so its trailing zeros, plus 6 for 64 bits a word.
    let bits_log2 = words.trailing_zeros().saturating_add(6);
    let index = h.checked_shr(64u32.saturating_sub(bits_log2)).unwrap_or(0);
    let word = usize::try_from(index / 64).unwrap_or(0);
    (word, 1u64 << (index % 64))
}

/// The directory's shift for `len` keys from `first` to `last`: the smallest that puts the span in at most
/// `len / DIR_KEYS` (rounded up) buckets of `1 << shift` units, so keys spread evenly land a few per bucket.
fn dir_shift(len: usize, first: u64, last: u64) -> u32 {
    let span = last.wrapping_sub(first);
    let target = u64::try_from(len.div_ceil(DIR_KEYS)).unwrap_or(u64::MAX);
    // Bits of `span` beyond those of `target`, then one more if that still leaves more than `target` buckets.
    let shift = target.leading_zeros().saturating_sub(span.leading_zeros());
    match span.checked_shr(shift) {
        Some(b) if b >= target => shift.saturating_add(1),
        _ => shift,
    }
}

/// The directory's bucket of `unit` in a run from `first` with `shift` (None below `first`).
fn bucket(unit: u64, first: u64, shift: u32) -> Option<usize> {
    let b = unit.checked_sub(first)?.checked_shr(shift).unwrap_or(0);
    usize::try_from(b).ok()
}

/// Buckets of the directory of a run from `first` to `last` with `shift`.
fn dir_buckets(first: u64, last: u64, shift: u32) -> usize {
    bucket(last, first, shift).map_or(1, |b| b.saturating_add(1))
}

/// Fence words sorted `keys` need: a header (the directory's shift), the lower level (`keys[j * LEAF]`), and
/// the directory (`buckets + 1` positions, two `u32` a word). None for an empty run, and none for one of
/// more than `u32::MAX` keys, whose positions a `u32` cannot hold (a [`Run`] refuses it).
pub fn fence_len(keys: &[u64]) -> usize {
    let (Some(&first), Some(&last)) = (keys.first(), keys.last()) else {
        return 0;
    };
    if u32::try_from(keys.len()).is_err() {
        return 0;
    }
    let buckets = dir_buckets(first, last, dir_shift(keys.len(), first, last));
    1usize
        .saturating_add(keys.len().div_ceil(LEAF))
        .saturating_add(buckets.saturating_add(2) / 2)
}

/// A sorted run, borrowed: `keys` strictly ascending, `vals[i]` the packed entry of `keys[i]`, `fence` as
/// [`build_fence`] makes it, and `filter` a bit set for every key ([`build_filter`]). [`Run::new`] checks all
/// of it.
///
/// A lookup reads one bucket of the directory (two `u32`, in cache: 256–512 KiB at 1,000,000 entries), which
/// gives the positions of the keys whose units share the unit's high bits: with keys spread evenly, 8–16 of
/// them, one or two cache lines of keys, then one value. A bucket of more than two leaves (keys clustered in
/// a few regions) is narrowed with the lower level first. [`Run::get`] of a unit whose filter bit is clear
/// reads one word. A binary search over all the keys took 16 scattered cache misses at 1,000,000 entries,
/// and a two-level fence three (the lower level, the keys, the value) after a search of its top level.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    keys: &'a [u64],
    vals: &'a [u64],
    /// `keys[j * LEAF]`.
    lower: &'a [u64],
    /// Bucket `b` at `u32` number `b`: how many keys lie in the buckets before `b`, the units from `keys[0]`
    /// shifted right by `shift`.
    dir: &'a [u64],
    shift: u32,
    /// A bit set for every key ([`filter_bit`]); a map of a unit to a bit, so other units share them.
    filter: &'a [u64],
}

/// The lower level, the directory and its shift in a fence that [`build_fence`] made for `len` keys. Only
/// what a lookup needs is checked here, in a few instructions (the kernel makes a [`Run`] for every lookup):
/// a fence too short to hold a directory gives none, and the lookup searches all the keys. [`Run::new`] checks
/// the rest, once.
fn split_fence(fence: &[u64], len: usize) -> Option<(&[u64], &[u64], u32)> {
    let (&shift, rest) = fence.split_first()?;
    let (lower, dir) = rest.split_at_checked(len.div_ceil(LEAF))?;
    if dir.is_empty() {
        return None;
    }
    Some((lower, dir, u32::try_from(shift).ok()?))
}

/// Directory entry `i` (`u32` number `i` of `dir`, low half of a word first).
fn dir_entry(dir: &[u64], i: usize) -> Option<usize> {
    let word = dir.get(i / 2)?;
    let half = if i % 2 == 0 { *word } else { word >> 32 };
    usize::try_from(half & u64::from(u32::MAX)).ok()
}

/// Why a run or a merge was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// Keys out of order or repeated, or arrays of different lengths, or a fence that does not match.
    Malformed,
    /// The output arrays are too short for the merged entries.
    TooSmall,
}

impl<'a> Run<'a> {
    /// The empty run.
    pub const EMPTY: Run<'static> = Run {
        keys: &[],
        vals: &[],
        lower: &[],
        dir: &[],
        shift: 0,
        filter: &[],
    };

    /// A run over arrays that satisfy the invariants above (checked, in one pass over each).
    pub fn new(
        keys: &'a [u64],
        vals: &'a [u64],
        fence: &'a [u64],
        filter: &'a [u64],
    ) -> Result<Self, RunError> {
        if keys.is_empty() {
            return if vals.is_empty() && fence.is_empty() && filter.is_empty() {
                Ok(Run::EMPTY)
            } else {
                Err(RunError::Malformed)
            };
        }
        if fence.len() != fence_len(keys) {
            return Err(RunError::Malformed);
        }
        let (lower, dir, shift) = split_fence(fence, keys.len()).ok_or(RunError::Malformed)?;
        let first = keys.first().copied().unwrap_or(0);
        let well_formed = keys.len() == vals.len()
            && filter.len() == filter_len(keys.len())
            && keys.windows(2).all(|w| matches!(w, [a, b] if a < b))
            && shift == dir_shift(keys.len(), first, keys.last().copied().unwrap_or(0))
            && lower.iter().eq(keys.iter().step_by(LEAF))
            && dir_matches(dir, keys, first, shift)
            && keys.iter().all(|&k| may_hold(filter, k));
        if well_formed {
            Ok(Self {
                keys,
                vals,
                lower,
                dir,
                shift,
                filter,
            })
        } else {
            Err(RunError::Malformed)
        }
    }

    /// A run over arrays the caller built to the invariants (sorted by [`merge`] or checked once by
    /// [`Run::new`]). Not checked here: a lookup must not cost a pass over the table. Broken invariants give
    /// wrong answers, never undefined behaviour or a panic; a filter of the wrong length, or a fence too short
    /// for a directory, is not used.
    pub fn new_unchecked(
        keys: &'a [u64],
        vals: &'a [u64],
        fence: &'a [u64],
        filter: &'a [u64],
    ) -> Self {
        let (lower, dir, shift) = split_fence(fence, keys.len()).unwrap_or((&[], &[], 0));
        // A filter of another length was built for other keys: without it the keys decide.
        let filter = if filter.len() == filter_len(keys.len()) {
            filter
        } else {
            &[]
        };
        Self {
            keys,
            vals,
            lower,
            dir,
            shift,
            filter,
        }
    }

    /// Entries in the run.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the run holds nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Index of the first key `>= unit` (the run's length when there is none).
    pub fn lower_bound(&self, unit: u64) -> usize {
        let Some(&first) = self.keys.first() else {
            return 0;
        };
        let Some(b) = bucket(unit, first, self.shift) else {
            return 0;
        };
        // Keys of earlier buckets are below `unit` and keys of later ones above it, so the answer is in
        // `lo..=hi`. Past the last bucket `unit` is above every key; without a directory (a fence too short
        // for one) the answer may be anywhere.
        let (lo, hi) = match (
            dir_entry(self.dir, b),
            dir_entry(self.dir, b.saturating_add(1)),
        ) {
            (Some(lo), Some(hi)) => (lo, hi),
            _ if self.dir.is_empty() => (0, self.keys.len()),
            _ => return self.keys.len(),
        };
        let (lo, hi) = self.narrow(unit, lo, hi);
        lo.saturating_add(
            window(self.keys, lo, hi.saturating_sub(lo)).partition_point(|&k| k < unit),
        )
    }

    /// `lo..hi`, narrowed to the one leaf that holds the first key `>= unit` (or ends just before it) when it
    /// spans more than two leaves: the last leaf in it whose first key is `<= unit`.
    fn narrow(&self, unit: u64, lo: usize, hi: usize) -> (usize, usize) {
        if hi.saturating_sub(lo) <= 2 * LEAF || self.lower.is_empty() {
            return (lo, hi);
        }
        let first_leaf = lo / LEAF;
        let leaves = hi.div_ceil(LEAF).saturating_sub(first_leaf);
        let leaf = first_leaf.saturating_add(
            window(self.lower, first_leaf, leaves)
                .partition_point(|&f| f <= unit)
                .saturating_sub(1),
        );
        let start = leaf.saturating_mul(LEAF).max(lo);
        (
            start,
            leaf.saturating_add(1)
                .saturating_mul(LEAF)
                .min(hi)
                .max(start),
        )
    }

    /// The packed entry of `unit`, if the run has one. Most units have none (`map()` looks up every bio's
    /// first unit), and the filter answers for most of those from one word instead of the keys' cache misses.
    pub fn get(&self, unit: u64) -> Option<u64> {
        if !may_hold(self.filter, unit) {
            return None;
        }
        let i = self.lower_bound(unit);
        match self.keys.get(i) {
            Some(&k) if k == unit => self.vals.get(i).copied(),
            _ => None,
        }
    }

    /// The first key in `first..=last`.
    pub fn next_key(&self, first: u64, last: u64) -> Option<u64> {
        self.keys
            .get(self.lower_bound(first))
            .copied()
            .filter(|&k| k <= last)
    }

    /// The entries from index `i` on, as `(unit, packed)` pairs.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = (u64, u64)> + 'a {
        let keys: &'a [u64] = self.keys.get(i..).unwrap_or(&[]);
        let vals: &'a [u64] = self.vals.get(i..).unwrap_or(&[]);
        keys.iter().copied().zip(vals.iter().copied())
    }
}

/// False only when `unit` has no entry: its bit in `filter` is clear. An empty filter (an empty run, or one
/// of the wrong length given to [`Run::new_unchecked`]) says nothing, so the keys decide.
fn may_hold(filter: &[u64], unit: u64) -> bool {
    if filter.is_empty() {
        return true;
    }
    let (word, mask) = filter_bit(unit, filter.len());
    filter.get(word).is_none_or(|w| w & mask != 0)
}

/// `len` items of `s` from `start`, fewer at its end.
fn window(s: &[u64], start: usize, len: usize) -> &[u64] {
    let start = start.min(s.len());
    let end = start.saturating_add(len).min(s.len());
    s.get(start..end).unwrap_or(&[])
}

/// True when `dir` holds, for every bucket of a run of `keys` from `first` with `shift`, how many keys lie
/// in the buckets before it, the last entry (and an odd one out) the run's length: one pass over each.
fn dir_matches(dir: &[u64], keys: &[u64], first: u64, shift: u32) -> bool {
    let mut i = 0usize;
    (0..dir.len().saturating_mul(2)).all(|b| {
        i = keys_before(keys, first, shift, i, b);
        dir_entry(dir, b) == Some(i)
    })
}

/// How many `keys` (a run from `first` with `shift`) lie in the buckets before `b`, counting on from `i`,
/// the count before an earlier bucket.
fn keys_before(keys: &[u64], first: u64, shift: u32, mut i: usize, b: usize) -> usize {
    while keys
        .get(i)
        .is_some_and(|&k| bucket(k, first, shift).is_some_and(|kb| kb < b))
    {
        i = i.saturating_add(1);
    }
    i
}

/// Fills `fence` for sorted `keys` (`fence.len()` must be `fence_len(keys)`): the directory's shift, the
/// lower level, the directory.
pub fn build_fence(keys: &[u64], fence: &mut [u64]) -> Result<(), RunError> {
    if fence.len() != fence_len(keys) {
        return Err(RunError::Malformed);
    }
    let (Some(&first), Some(&last)) = (keys.first(), keys.last()) else {
        return Ok(());
    };
    let shift = dir_shift(keys.len(), first, last);
    let (header, rest) = fence.split_first_mut().ok_or(RunError::Malformed)?;
    *header = u64::from(shift);
    let (lower, dir) = rest
        .split_at_mut_checked(keys.len().div_ceil(LEAF))
        .ok_or(RunError::Malformed)?;
    for (f, k) in lower.iter_mut().zip(keys.iter().step_by(LEAF)) {
        *f = *k;
    }
    // Entry `b`: the keys before bucket `b`. One pass over the keys and the buckets.
    dir.fill(0);
    let mut i = 0usize;
    for b in 0..dir.len().saturating_mul(2) {
        i = keys_before(keys, first, shift, i, b);
        let count = u64::try_from(i).map_err(|_| RunError::Malformed)?;
        let word = dir.get_mut(b / 2).ok_or(RunError::Malformed)?;
        *word |= if b % 2 == 0 { count } else { count << 32 };
    }
    Ok(())
}

/// Fills `filter` for `keys` (`filter.len()` must be `filter_len(keys.len())`): the bit of every key set.
pub fn build_filter(keys: &[u64], filter: &mut [u64]) -> Result<(), RunError> {
    if filter.len() != filter_len(keys.len()) {
        return Err(RunError::Malformed);
    }
    filter.fill(0);
    let words = filter.len();
    for &k in keys {
        let (word, mask) = filter_bit(k, words);
        if let Some(w) = filter.get_mut(word) {
            *w |= mask;
        }
    }
    Ok(())
}

/// Merges `run` with `changes` (ascending, distinct units; a value of `tombstone` deletes the unit) into
/// `keys`/`vals`, returning how many entries were written. A change replaces the run's entry of its unit.
pub fn merge<I>(
    run: Run<'_>,
    changes: I,
    tombstone: u64,
    keys: &mut [u64],
    vals: &mut [u64],
) -> Result<usize, RunError>
where
    I: Iterator<Item = (u64, u64)>,
{
    let mut out = keys.iter_mut().zip(vals.iter_mut());
    merge_by(
        run.iter_from(0).map(|(k, v)| (k, v, ())),
        changes.map(|(k, v)| (k, v, ())),
        tombstone,
        |k, v, ()| {
            let (ok, ov) = out.next().ok_or(RunError::TooSmall)?;
            *ok = k;
            *ov = v;
            Ok(())
        },
    )
}

/// [`merge`] of a run whose entry `i` carries `run_stamps[i]` (when it was made, in seconds) with `changes`
/// that carry theirs: every entry keeps its own stamp, a change replacing the run's entry brings its own.
/// `stamps` receives the stamp of each entry written to `keys`/`vals`. `Malformed` when `run_stamps` does not
/// match the run's length.
pub fn merge_stamped<I>(
    run: Run<'_>,
    run_stamps: &[u32],
    changes: I,
    tombstone: u64,
    keys: &mut [u64],
    vals: &mut [u64],
    stamps: &mut [u32],
) -> Result<usize, RunError>
where
    I: Iterator<Item = (u64, u64, u32)>,
{
    if run_stamps.len() != run.len() {
        return Err(RunError::Malformed);
    }
    let old = run
        .iter_from(0)
        .zip(run_stamps.iter().copied())
        .map(|((k, v), s)| (k, v, s));
    let mut out = keys.iter_mut().zip(vals.iter_mut()).zip(stamps.iter_mut());
    merge_by(old, changes, tombstone, |k, v, s| {
        let ((ok, ov), os) = out.next().ok_or(RunError::TooSmall)?;
        *ok = k;
        *ov = v;
        *os = s;
        Ok(())
    })
}

/// The merge itself: `old` and `new` ascending by unit, `new` winning on equal units and dropping units whose
/// value is `tombstone`; `put` writes one entry out. Returns the entries written.
fn merge_by<T, A, B>(
    old: A,
    new: B,
    tombstone: u64,
    mut put: impl FnMut(u64, u64, T) -> Result<(), RunError>,
) -> Result<usize, RunError>
where
    A: Iterator<Item = (u64, u64, T)>,
    B: Iterator<Item = (u64, u64, T)>,
{
    let mut old = old.peekable();
    let mut new = new.peekable();
    let mut written: usize = 0;
    let mut last: Option<u64> = None;
    loop {
        let next = match (old.peek(), new.peek()) {
            (None, None) => return Ok(written),
            (Some(_), None) => old.next(),
            (None, Some(_)) => new.next(),
            (Some(&(ko, _, _)), Some(&(kn, _, _))) => {
                if ko == kn {
                    old.next();
                }
                if ko < kn {
                    old.next()
                } else {
                    new.next()
                }
            }
        };
        let Some((k, v, t)) = next else {
            return Ok(written);
        };
        // Changes out of order would make an unsorted run: refuse rather than publish it.
        if last.is_some_and(|l| l >= k) {
            return Err(RunError::Malformed);
        }
        last = Some(k);
        if v == tombstone {
            continue;
        }
        put(k, v, t)?;
        written = written.saturating_add(1);
    }
}
