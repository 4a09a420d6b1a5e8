//! What a checkpoint written while committing a batch must hold: every entry of the table with the batch
//! applied on top, in unit order, each entry as the record that keeps the time it was made.
//!
//! The kernel's `Snapshot` (`remapper.rs`) feeds the table's entries (with their times) and the batch of
//! records through [`Overlay`]; the host tests check it against a model.

/// A record of a commit batch, as the overlay needs to see it.
pub trait BatchRecord: Copy {
    /// The main unit it is about.
    fn unit(&self) -> u64;
    /// False for a record that clears the unit's entry.
    fn live(&self) -> bool;
}

/// The table's entries (`(unit, entry)` in ascending unit order) with `batch` (ascending units, distinct)
/// applied on top: a batch record replaces the entry of its unit, is added, or, when not live, drops it.
pub struct Overlay<'a, I, R> {
    entries: I,
    batch: &'a [R],
    /// Position in `batch` of the second pass, over the units the table does not hold.
    added: usize,
}

impl<'a, I, T, R> Overlay<'a, I, R>
where
    I: Iterator<Item = (u64, T)>,
    R: BatchRecord,
{
    /// The overlay of `batch` on `entries`.
    pub fn new(entries: I, batch: &'a [R]) -> Self {
        Self {
            entries,
            batch,
            added: 0,
        }
    }

    /// The next record: a table entry not in the batch as `to_record(unit, entry)` (which must keep what the
    /// entry records, its time included), then the batch's live records for units `in_table` says the table
    /// does not hold. Bounded by the table, then by the batch: every step consumes one of either.
    pub fn next_record(
        &mut self,
        mut to_record: impl FnMut(u64, T) -> R,
        in_table: impl Fn(u64) -> bool,
    ) -> Option<R> {
        for (unit, entry) in self.entries.by_ref() {
            if let Ok(i) = self.batch.binary_search_by_key(&unit, |r| r.unit()) {
                match self.batch.get(i).filter(|r| r.live()) {
                    Some(r) => return Some(*r),
                    None => continue,
                }
            }
            return Some(to_record(unit, entry));
        }
        while let Some(r) = self.batch.get(self.added) {
            self.added = self.added.saturating_add(1);
            if r.live() && !in_table(r.unit()) {
                return Some(*r);
            }
        }
        None
    }
}
