//! The sorted run: the bulk of the remap table, as two parallel arrays sorted by main unit.
//!
//! An XArray costs one 576-byte node per scattered entry and one allocation per insert, which made a table of
//! 1,000,000 entries slow to load and far above the 32 bytes per entry the project promises. So the table
//! keeps most entries in a sorted run, 16 bytes per entry plus a two-level fence (half a byte per entry) and a
//! filter (half a byte to a byte per entry), both built once at load and rebuilt after [`merge`] when enough
//! changes have piled up; only recent changes live in an XArray. This file holds the run's lookups and the
//! merge: pure functions on slices, the same code on the host and in the kernel, where the caller owns the
//! memory and publishes runs under RCU.

/// Keys per leaf: the last step of a lookup searches one leaf of keys, 128 bytes (two cache lines).
pub const LEAF: usize = 16;
/// Keys per stride: the top fence level holds every `FENCE_STRIDE`th key (small enough to stay in cache) and
/// leads to the [`LEAF`]-spaced keys of one stride in the lower level, again 128 bytes.
pub const FENCE_STRIDE: usize = 256;

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

/// Fence words a run of `len` keys needs: the top level, then the lower level.
pub const fn fence_len(len: usize) -> usize {
    len.div_ceil(FENCE_STRIDE)
        .saturating_add(len.div_ceil(LEAF))
}

/// A sorted run, borrowed: `keys` strictly ascending, `vals[i]` the packed entry of `keys[i]`, and `fence`
/// the top level (`keys[j * FENCE_STRIDE]`) followed by the lower level (`keys[j * LEAF]`), and `filter` a
/// bit set for every key ([`build_filter`]). A lookup thus reads a few cached fence words, 128 bytes of the
/// lower level, 128 bytes of keys and one value, instead of a binary search's scattered cache lines;
/// [`Run::get`] of a unit whose filter bit is clear reads one word. [`Run::new`] checks all of it.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    keys: &'a [u64],
    vals: &'a [u64],
    /// `keys[j * FENCE_STRIDE]`.
    top: &'a [u64],
    /// `keys[j * LEAF]`.
    lower: &'a [u64],
    /// A bit set for every key ([`filter_bit`]); a map of a unit to a bit, so other units share them.
    filter: &'a [u64],
}

/// The two fence levels of a run of `len` keys, if `fence` has the right length.
fn split_fence(fence: &[u64], len: usize) -> Option<(&[u64], &[u64])> {
    if fence.len() != fence_len(len) {
        return None;
    }
    fence.split_at_checked(len.div_ceil(FENCE_STRIDE))
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
        top: &[],
        lower: &[],
        filter: &[],
    };

    /// A run over arrays that satisfy the invariants above (checked, in one pass).
    pub fn new(
        keys: &'a [u64],
        vals: &'a [u64],
        fence: &'a [u64],
        filter: &'a [u64],
    ) -> Result<Self, RunError> {
        let (top, lower) = split_fence(fence, keys.len()).ok_or(RunError::Malformed)?;
        let well_formed = keys.len() == vals.len()
            && filter.len() == filter_len(keys.len())
            && keys.windows(2).all(|w| matches!(w, [a, b] if a < b))
            && top.iter().eq(keys.iter().step_by(FENCE_STRIDE))
            && lower.iter().eq(keys.iter().step_by(LEAF))
            && keys.iter().all(|&k| may_hold(filter, k));
        if well_formed {
            Ok(Self {
                keys,
                vals,
                top,
                lower,
                filter,
            })
        } else {
            Err(RunError::Malformed)
        }
    }

    /// A run over arrays the caller built to the invariants (sorted by [`merge`] or checked once by
    /// [`Run::new`]). Not checked here: a lookup must not cost a pass over the table. Broken invariants give
    /// wrong answers, never undefined behaviour.
    pub fn new_unchecked(
        keys: &'a [u64],
        vals: &'a [u64],
        fence: &'a [u64],
        filter: &'a [u64],
    ) -> Self {
        let (top, lower) = split_fence(fence, keys.len()).unwrap_or((&[], &[]));
        // A filter of another length was built for other keys: without it the keys decide.
        let filter = if filter.len() == filter_len(keys.len()) {
            filter
        } else {
            &[]
        };
        Self {
            keys,
            vals,
            top,
            lower,
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
        // The last leaf whose first key is <= unit holds the answer, or it is the next leaf's first key. That
        // leaf is in the last stride whose first key is <= unit.
        let stride = self.top.partition_point(|&f| f <= unit).saturating_sub(1);
        let leaves_per_stride = FENCE_STRIDE / LEAF;
        let first_leaf = stride.saturating_mul(leaves_per_stride);
        let leaf = first_leaf.saturating_add(
            window(self.lower, first_leaf, leaves_per_stride)
                .partition_point(|&f| f <= unit)
                .saturating_sub(1),
        );
        let start = leaf.saturating_mul(LEAF).min(self.keys.len());
        start.saturating_add(window(self.keys, start, LEAF).partition_point(|&k| k < unit))
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

/// Fills `fence` for `keys` (`fence.len()` must be `fence_len(keys.len())`).
pub fn build_fence(keys: &[u64], fence: &mut [u64]) -> Result<(), RunError> {
    if fence.len() != fence_len(keys.len()) {
        return Err(RunError::Malformed);
    }
    let (top, lower) = fence
        .split_at_mut_checked(keys.len().div_ceil(FENCE_STRIDE))
        .ok_or(RunError::Malformed)?;
    for (f, k) in top.iter_mut().zip(keys.iter().step_by(FENCE_STRIDE)) {
        *f = *k;
    }
    for (f, k) in lower.iter_mut().zip(keys.iter().step_by(LEAF)) {
        *f = *k;
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
