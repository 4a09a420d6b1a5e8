//! Progress of `dmremap check` on a large spare (how much of the metadata region has been read), and of
//! `dmremap scrub --wait` (how far the scrub's pass over the main device is).
//!
//! The amount the load reads is known only once the superblock is: the superblock copies, the checkpoint
//! blocks of its `checkpoint_entries`, and the journal, which the load scans up to its last valid block (at
//! most `journal_blocks`). The total shown is that upper bound ("of at most"), so the display may stop short
//! of 100% before saying `done`. On a terminal it is a bar redrawn in place; otherwise plain lines, one per
//! 10%, for logs. [`Meter`] decides what to print and is pure; [`MeteredIo`] counts the reads of the format
//! crate and writes the meter's text.

use std::io::Write;

use dm_remap_v4_metadata::checkpoint::ENTRIES_PER_BLOCK;
use dm_remap_v4_metadata::layout::{
    BLOCK_SIZE, SECTORS_PER_BLOCK, SUPERBLOCK_BLOCKS, SUPERBLOCK_COPIES,
};
use dm_remap_v4_metadata::{BlockIo, IoError, Superblock};

/// How the progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A bar redrawn in place with `\r` (a terminal).
    Bar,
    /// A plain line per 10% (a log, a pipe).
    Lines,
}

/// Below this many bytes to read, progress is not shown unless asked for: the check is over in a moment.
pub const AUTO_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// Width of the bar, in characters.
const BAR: u64 = 30;

/// The progress of reading `total` bytes (once known), and what to print when.
#[derive(Debug, Clone)]
pub struct Meter {
    label: String,
    style: Style,
    /// Show nothing when the total is below this.
    min_total: u64,
    total: Option<u64>,
    done: u64,
    /// The last step printed: a percentage (bar) or a multiple of 10 (lines).
    shown: Option<u64>,
    /// What is read, in the plain lines (`the metadata`, `the device`).
    subject: String,
    /// Whether the total is exact (`of 32.0 MiB`) or an upper bound (`of at most 32.0 MiB`).
    exact: bool,
}

/// `n` bytes in MiB with one decimal, integer arithmetic only.
fn mib(n: u64) -> String {
    let tenths = n / (1024 * 1024 / 10);
    format!("{}.{}", tenths / 10, tenths % 10)
}

impl Meter {
    /// A meter labelled `label` (e.g. `check /dev/sdc`), silent for totals below `min_total` bytes.
    pub fn new(label: impl Into<String>, style: Style, min_total: u64) -> Self {
        Self {
            label: label.into(),
            style,
            min_total,
            total: None,
            done: 0,
            shown: None,
            subject: "the metadata".into(),
            exact: false,
        }
    }

    /// Names what is read in the plain lines (default `the metadata`), and whether the total is exact
    /// rather than an upper bound (default: an upper bound, `of at most`).
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>, exact: bool) -> Self {
        self.subject = subject.into();
        self.exact = exact;
        self
    }

    /// Sets the amount done so far to `done` bytes (a position rather than a count of reads). Returns
    /// what to print.
    pub fn set_done(&mut self, done: u64) -> Option<String> {
        self.done = done;
        self.update()
    }

    /// Sets the total; the first call wins. Returns what to print.
    pub fn set_total(&mut self, total: u64) -> Option<String> {
        if self.total.is_none() {
            self.total = Some(total.max(1));
            return self.update();
        }
        None
    }

    /// Whether anything is shown.
    fn active(&self) -> bool {
        self.total.is_some_and(|t| t >= self.min_total)
    }

    fn percent(&self) -> u64 {
        let total = self.total.unwrap_or(1).max(1);
        self.done
            .min(total)
            .saturating_mul(100)
            .checked_div(total)
            .unwrap_or(0)
    }

    /// Counts `bytes` more read. Returns what to print.
    pub fn add(&mut self, bytes: u64) -> Option<String> {
        self.done = self.done.saturating_add(bytes);
        self.update()
    }

    fn update(&mut self) -> Option<String> {
        if !self.active() {
            return None;
        }
        let pct = self.percent();
        let step = match self.style {
            Style::Bar => pct,
            Style::Lines => pct.saturating_sub(pct % 10),
        };
        if self.shown == Some(step) {
            return None;
        }
        self.shown = Some(step);
        let total = self.total.unwrap_or(0);
        Some(match self.style {
            Style::Bar => {
                let filled = pct.saturating_mul(BAR) / 100;
                format!(
                    "\r{}: [{}{}] {pct:>3}% {}/{} MiB",
                    self.label,
                    "#".repeat(usize::try_from(filled).unwrap_or(0)),
                    " ".repeat(usize::try_from(BAR.saturating_sub(filled)).unwrap_or(0)),
                    mib(self.done),
                    mib(total)
                )
            }
            Style::Lines => format!(
                "{}: {step}% of {} read ({} of {}{} MiB)\n",
                self.label,
                self.subject,
                mib(self.done),
                if self.exact { "" } else { "at most " },
                mib(total)
            ),
        })
    }

    /// The end: the amount read, on its own line (after the bar, which it ends). Nothing if nothing was shown.
    pub fn finish(&mut self) -> Option<String> {
        if !self.active() {
            return None;
        }
        let lead = if self.style == Style::Bar { "\n" } else { "" };
        Some(format!(
            "{lead}{}: done, {} MiB read\n",
            self.label,
            mib(self.done)
        ))
    }

    /// Ends the display without a summary: the newline that ends a bar, nothing for plain lines (or when
    /// nothing was shown). For a display whose caller prints its own conclusion.
    pub fn end(&self) -> Option<String> {
        (self.active() && self.style == Style::Bar && self.shown.is_some()).then(|| "\n".to_owned())
    }
}

/// The most the format crate's load reads for `sb`, in bytes: every superblock copy, the checkpoint blocks
/// holding `checkpoint_entries`, and the whole journal.
pub fn load_bytes(sb: &Superblock) -> u64 {
    let per_block = u64::try_from(ENTRIES_PER_BLOCK).unwrap_or(1).max(1);
    let blocks = (SUPERBLOCK_COPIES as u64)
        .saturating_add(sb.checkpoint_entries.div_ceil(per_block))
        .saturating_add(sb.journal_blocks);
    blocks.saturating_mul(BLOCK_SIZE as u64)
}

/// A [`BlockIo`] that counts what is read into a [`Meter`] and writes its text to `out` (best effort: a
/// progress display that cannot be written is not an error of the check). The total is set from the first
/// superblock copy read that decodes.
pub struct MeteredIo<'a, I: BlockIo, W: Write> {
    inner: &'a mut I,
    meter: Meter,
    out: W,
}

impl<'a, I: BlockIo, W: Write> MeteredIo<'a, I, W> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut I, meter: Meter, out: W) -> Self {
        Self { inner, meter, out }
    }

    fn show(&mut self, text: Option<String>) {
        if let Some(t) = text {
            let _ = self.out.write_all(t.as_bytes());
            let _ = self.out.flush();
        }
    }

    /// Ends the display.
    pub fn finish(mut self) {
        let t = self.meter.finish();
        self.show(t);
    }
}

impl<I: BlockIo, W: Write> BlockIo for MeteredIo<'_, I, W> {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.inner.read(sector, buf)?;
        let is_superblock = SUPERBLOCK_BLOCKS
            .iter()
            .any(|b| b.saturating_mul(SECTORS_PER_BLOCK) == sector);
        if is_superblock {
            let sb = <&[u8; BLOCK_SIZE]>::try_from(&*buf)
                .ok()
                .and_then(|blk| Superblock::decode(blk).ok());
            if let Some(sb) = sb {
                let t = self.meter.set_total(load_bytes(&sb));
                self.show(t);
            }
        }
        let t = self.meter.add(u64::try_from(buf.len()).unwrap_or(u64::MAX));
        self.show(t);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.inner.write(sector, buf)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.inner.flush()
    }

    fn write_fua(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.inner.write_fua(sector, buf)
    }

    fn forget_reads(&mut self) {
        self.inner.forget_reads();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn lines_every_ten_percent_once_the_total_is_known() {
        let mut m = Meter::new("check img", Style::Lines, 0);
        assert_eq!(m.add(MIB), None, "no total yet");
        assert_eq!(
            m.set_total(10 * MIB).as_deref(),
            Some("check img: 10% of the metadata read (1.0 of at most 10.0 MiB)\n")
        );
        assert_eq!(m.set_total(99 * MIB), None, "the first total stays");
        assert_eq!(m.add(MIB / 2), None, "15%: still the 10% step");
        assert_eq!(
            m.add(MIB / 2).as_deref(),
            Some("check img: 20% of the metadata read (2.0 of at most 10.0 MiB)\n")
        );
        let out: Vec<String> = (0..20).filter_map(|_| m.add(MIB)).collect();
        assert_eq!(out.len(), 8, "30% .. 100%, then nothing past the total");
        assert!(out[7].starts_with("check img: 100% "));
        assert_eq!(
            m.finish().as_deref(),
            Some("check img: done, 22.0 MiB read\n")
        );
    }

    #[test]
    fn a_bar_redrawn_in_place() {
        let mut m = Meter::new("check /dev/sdc", Style::Bar, 0);
        let first = m.set_total(4 * MIB).unwrap();
        assert_eq!(
            first,
            format!("\rcheck /dev/sdc: [{}]   0% 0.0/4.0 MiB", " ".repeat(30))
        );
        let half = m.add(2 * MIB).unwrap();
        assert_eq!(
            half,
            format!(
                "\rcheck /dev/sdc: [{}{}]  50% 2.0/4.0 MiB",
                "#".repeat(15),
                " ".repeat(15)
            )
        );
        assert_eq!(m.add(1), None, "same percentage: not redrawn");
        assert_eq!(
            m.finish().as_deref(),
            Some("\ncheck /dev/sdc: done, 2.0 MiB read\n")
        );
    }

    #[test]
    fn small_regions_show_nothing_unless_asked() {
        let mut m = Meter::new("check img", Style::Bar, AUTO_MIN_BYTES);
        assert_eq!(m.set_total(2 * MIB), None);
        assert_eq!(m.add(2 * MIB), None);
        assert_eq!(m.finish(), None);
        let mut m = Meter::new("check img", Style::Lines, AUTO_MIN_BYTES);
        assert!(m.set_total(AUTO_MIN_BYTES).is_some());
    }

    #[test]
    fn a_position_with_an_exact_total_and_a_plain_end() {
        let mut m = Meter::new("scrub r0", Style::Lines, 0).subject("the device", true);
        assert_eq!(
            m.set_total(32 * MIB).as_deref(),
            Some("scrub r0: 0% of the device read (0.0 of 32.0 MiB)\n")
        );
        assert_eq!(
            m.set_done(16 * MIB).as_deref(),
            Some("scrub r0: 50% of the device read (16.0 of 32.0 MiB)\n")
        );
        assert_eq!(m.set_done(17 * MIB), None, "53%: still the 50% step");
        assert_eq!(m.end(), None, "plain lines need no ending");
        let mut b = Meter::new("scrub r0", Style::Bar, 0).subject("the device", true);
        assert_eq!(b.end(), None, "nothing shown yet");
        assert_eq!(
            b.set_total(4 * MIB).as_deref(),
            Some(format!("\rscrub r0: [{}]   0% 0.0/4.0 MiB", " ".repeat(30)).as_str())
        );
        assert_eq!(
            b.set_done(MIB).as_deref(),
            Some(
                format!(
                    "\rscrub r0: [{}{}]  25% 1.0/4.0 MiB",
                    "#".repeat(7),
                    " ".repeat(23)
                )
                .as_str()
            )
        );
        assert_eq!(b.end().as_deref(), Some("\n"));
    }

    #[test]
    fn mib_has_one_decimal() {
        assert_eq!(mib(0), "0.0");
        assert_eq!(mib(MIB / 2), "0.5");
        assert_eq!(mib(1536 * 1024 * 1024), "1536.0");
    }
}
