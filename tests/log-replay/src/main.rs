//! `log-replay`: the crash-consistency test's tool (tests/vm/t-crash-replay.sh), not an administration tool.
//!
//! It reads the log that the kernel's dm-log-writes target wrote (format: `drivers/md/dm-log-writes.c`; a
//! super block, then per logged write one header block followed by the data), replays a prefix of it onto an
//! image of the logged device, picks the replay points worth checking, and judges the remap table and the data
//! that dm-remap-v4 loads from a replayed main + spare against the states the target acknowledged. The logged
//! device is one disk holding both: main is its first <size> bytes (see `judge`), the spare the rest, so one
//! log orders the writes of both.
//!
//!     log-replay entries <log>
//!         every entry: `<index> <kind> <sector> <sectors> [<mark>]`
//!     log-replay points <log> [--max N] [--torn N] [--keep-sectors S,S...]
//!         the replay points: `<end> <ack> <kind>`: replay entries [0, end); `ack` is n of the last mark
//!         `ack-<n>...` before `end` (0 if none); kind `torn` means entries [0, end-1) plus the first half of
//!         entry end-1. Every flush and FUA point if there are at most N (default 60), otherwise N evenly
//!         spaced ones plus every FUA write to a keep-sector and the flush before it; always every mark.
//!         Of points with no write between them (the same image) only the last is listed.
//!     log-replay replay <log> <image> <from> <to> [--tear-last] [--lose-data-from SECTOR]
//!         applies entries [from, to) to <image>. --tear-last writes only the first half of the last entry.
//!         --lose-data-from (a deliberately wrong replay, to prove the check can fail) drops writes at or above
//!         SECTOR that the flush before the last FUA write (a commit) made durable, as if the target had not
//!         flushed its data before committing.
//!     log-replay images <log> <spec> <out> <size>
//!         one disk image of <size> bytes per line of <spec> (`<end> <ack> <kind> [<label> [<n>...]]`, the
//!         `points` output plus deliberately wrong replays), one after another in <out> (sparse: blocks of
//!         zeros are not written): kind `torn` as above; `lost-data` replays [0, end) from blank with
//!         --lose-data-from <n1>; `lost-main` replays [0, end) from blank without the writes of entries
//!         [<n1>, end) below sector <n2> (main's, as if the target had not flushed main before its commit or
//!         acknowledgement); `no-commit` replays [0, end) from blank, to be judged as if operation <ack>
//!         (whose commit is entry <end>) was acknowledged; anything else replays [0, end).
//!     log-replay judge <spec> <status> <lists> <states> <unit_bytes> <size> <first_minor>
//!         the oracle (`check`, `check_status`) for the targets loaded from those images, see `judge`.
#![allow(
    clippy::print_stdout,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)] // a test tool

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

const LOG_MAGIC: u64 = 0x006a_7366_7773_6872;
const LOG_FLUSH: u64 = 1 << 0;
const LOG_FUA: u64 = 1 << 1;
const LOG_DISCARD: u64 = 1 << 2;
const LOG_MARK: u64 = 1 << 3;

/// One logged entry. `sector` and `sectors` are in units of the logged device's logical block size.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    sector: u64,
    sectors: u64,
    flags: u64,
    mark: Option<String>,
    /// Byte offset of the entry's data in the log.
    data_at: u64,
}

impl Entry {
    fn kind(&self) -> &'static str {
        match self.flags & (LOG_FLUSH | LOG_FUA | LOG_DISCARD | LOG_MARK) {
            f if f & LOG_MARK != 0 => "mark",
            f if f & LOG_DISCARD != 0 => "discard",
            f if f & (LOG_FLUSH | LOG_FUA) == LOG_FLUSH | LOG_FUA => "flush+fua",
            f if f & LOG_FLUSH != 0 && self.sectors == 0 => "flush",
            f if f & LOG_FLUSH != 0 => "flush+write",
            f if f & LOG_FUA != 0 => "fua",
            _ => "write",
        }
    }
    /// A point after this entry is a crash state the device promised: every earlier entry is durable.
    fn durable_point(&self) -> bool {
        self.flags & (LOG_FLUSH | LOG_FUA) != 0
    }
    fn pure_flush(&self) -> bool {
        self.flags & LOG_FLUSH != 0 && self.sectors == 0
    }
    fn writes_data(&self) -> bool {
        self.flags & (LOG_MARK | LOG_DISCARD) == 0 && self.sectors > 0
    }
}

struct Log {
    file: File,
    sectorsize: u64,
    entries: Vec<Entry>,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at(file: &mut File, at: u64, buf: &mut [u8]) -> Result<(), String> {
    file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    file.read_exact(buf)
        .map_err(|e| format!("read at byte {at}: {e}"))
}

impl Log {
    fn open(path: &str) -> Result<Log, String> {
        let mut file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
        let mut sb = [0u8; 512];
        read_at(&mut file, 0, &mut sb)?;
        if le64(&sb, 0) != LOG_MAGIC || le64(&sb, 8) != 1 {
            return Err(format!("{path}: not a dm-log-writes log (version 1)"));
        }
        let count = le64(&sb, 16);
        let sectorsize = u64::from(u32::from_le_bytes([sb[24], sb[25], sb[26], sb[27]]));
        if !(512..=65536).contains(&sectorsize) || !sectorsize.is_power_of_two() {
            return Err(format!("{path}: bad sector size {sectorsize}"));
        }
        let mut entries = Vec::new();
        let mut at = sectorsize;
        let mut header = vec![0u8; sectorsize as usize];
        for i in 0..count {
            read_at(&mut file, at, &mut header).map_err(|e| format!("entry {i}: {e}"))?;
            let (sector, sectors, flags, data_len) = (
                le64(&header, 0),
                le64(&header, 8),
                le64(&header, 16),
                le64(&header, 24),
            );
            let mark = (flags & LOG_MARK != 0).then(|| {
                let end = (32 + data_len as usize).min(header.len());
                String::from_utf8_lossy(&header[32..end]).into_owned()
            });
            at += sectorsize;
            entries.push(Entry {
                sector,
                sectors,
                flags,
                mark,
                data_at: at,
            });
            if flags & LOG_DISCARD == 0 {
                at += sectors * sectorsize;
            }
        }
        Ok(Log {
            file,
            sectorsize,
            entries,
        })
    }

    /// Applies entries [from, to) to `image`, without those `lost` drops; see the module documentation for
    /// `tear_last`.
    fn replay(
        &mut self,
        image: &mut [u8],
        from: usize,
        to: usize,
        tear_last: bool,
        lost: &Loss,
    ) -> Result<(), String> {
        if from > to || to > self.entries.len() {
            return Err(format!(
                "range {from}..{to} outside 0..{}",
                self.entries.len()
            ));
        }
        for i in from..to {
            let e = self.entries[i].clone();
            if lost.entries.contains(&i) && lost.sectors.contains(&e.sector) {
                continue;
            }
            let mut sectors = e.sectors;
            if tear_last && i + 1 == to {
                sectors /= 2;
            }
            let at = (e.sector * self.sectorsize) as usize;
            let len = (sectors * self.sectorsize) as usize;
            let dst = image
                .get_mut(at..at + len)
                .ok_or(format!("entry {i}: beyond the end of the image"))?;
            if e.writes_data() {
                read_at(&mut self.file, e.data_at, dst)?;
            } else if e.flags & LOG_DISCARD != 0 {
                dst.fill(0); // what a discarded range reads as is undefined: zeros will do
            }
        }
        Ok(())
    }

    /// Writes the spare image of every line of `spec` (see `images` in the module documentation) to `out`,
    /// one after another, each `size` bytes.
    fn images(&mut self, spec: &[Spec], size: usize, out: &mut File) -> Result<(), String> {
        let mut running = vec![0u8; size];
        let mut cur = 0;
        for (n, p) in spec.iter().enumerate() {
            let arg = |j: usize| {
                p.args.get(j).copied().ok_or(format!(
                    "{} needs {} numbers after its label",
                    p.kind,
                    j + 1
                ))
            };
            let image = match p.kind.as_str() {
                "lost-data" | "lost-main" | "no-commit" => {
                    let lost = match p.kind.as_str() {
                        "lost-data" => Loss::data_before_commit(&self.entries[..p.end], arg(0)?),
                        "lost-main" => Loss {
                            entries: usize::try_from(arg(0)?).unwrap_or(usize::MAX)..p.end,
                            sectors: 0..arg(1)?,
                        },
                        _ => Loss::NONE,
                    };
                    let mut img = vec![0u8; size];
                    self.replay(&mut img, 0, p.end, false, &lost)?;
                    img
                }
                "torn" => {
                    let whole = p.end.saturating_sub(1).max(cur);
                    self.replay(&mut running, cur, whole, false, &Loss::NONE)?;
                    cur = whole;
                    let mut img = running.clone();
                    self.replay(&mut img, whole, p.end, true, &Loss::NONE)?;
                    img
                }
                _ => {
                    self.replay(&mut running, cur, p.end, false, &Loss::NONE)?;
                    cur = p.end;
                    running.clone()
                }
            };
            write_sparse(out, (n * size) as u64, &image)
                .map_err(|e| format!("writing image {n}: {e}"))?;
        }
        out.set_len((spec.len() * size) as u64)
            .map_err(|e| format!("sizing the images: {e}"))
    }
}

/// Writes the blocks of `image` that are not all zeros at `at` in `out` (a new file reads zeros elsewhere):
/// the images are mostly blank, and they live in the guest's memory.
fn write_sparse(out: &mut File, at: u64, image: &[u8]) -> std::io::Result<()> {
    const BLOCK: usize = 4096;
    for (j, block) in image.chunks(BLOCK).enumerate() {
        if block.iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(at + (j * BLOCK) as u64))?;
            out.write_all(block)?;
        }
    }
    Ok(())
}

/// The writes a deliberately wrong replay drops: those of the entries `entries` to sectors in `sectors`.
struct Loss {
    entries: std::ops::Range<usize>,
    sectors: std::ops::Range<u64>,
}

impl Loss {
    const NONE: Loss = Loss {
        entries: 0..0,
        sectors: 0..0,
    };
    /// The writes at or above `sector` that the flush before the last commit made durable.
    fn data_before_commit(entries: &[Entry], sector: u64) -> Loss {
        Loss {
            entries: lost_range(entries),
            sectors: sector..u64::MAX,
        }
    }
}

/// One line of an `images`/`judge` spec: `<end> <ack> <kind> [<label> [<n>...]]`.
struct Spec {
    end: usize,
    ack: u64,
    kind: String,
    label: String,
    args: Vec<u64>,
}

fn parse_spec(text: &str) -> Result<Vec<Spec>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match (
                f.first().and_then(|x| x.parse().ok()),
                f.get(1).and_then(|x| x.parse().ok()),
                f.get(2),
            ) {
                (Some(end), Some(ack), Some(kind)) => Ok(Spec {
                    end,
                    ack,
                    kind: (*kind).to_string(),
                    label: f.get(3).map_or(String::new(), |x| (*x).to_string()),
                    args: f.iter().skip(4).map_while(|x| x.parse().ok()).collect(),
                }),
                _ => Err(format!("bad spec line '{l}'")),
            }
        })
        .collect()
}

/// The entries that the flush before the last FUA write made durable (those after the flush before it):
/// the data a commit (a FUA journal write) depends on.
fn lost_range(entries: &[Entry]) -> std::ops::Range<usize> {
    let last_fua = entries
        .iter()
        .rposition(|e| e.flags & LOG_FUA != 0 && e.writes_data())
        .unwrap_or(0);
    let flushes: Vec<usize> = (0..last_fua).filter(|&i| entries[i].pure_flush()).collect();
    match flushes.as_slice() {
        [.., before, last] => before + 1..*last,
        [last] => 0..*last,
        [] => 0..0,
    }
}

/// n of a mark named `ack-<n>` or `ack-<n>-<anything>`.
fn ack_number(mark: &str) -> Option<u64> {
    let rest = mark.strip_prefix("ack-")?;
    rest.split('-').next()?.parse().ok()
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    end: usize,
    /// Torn points sort before the whole point at the same end: they need the image at end - 1.
    whole: bool,
    ack: u64,
    kind: String,
}

fn points(entries: &[Entry], max: usize, torn: usize, keep: &[u64]) -> Vec<Point> {
    let mut acks = Vec::with_capacity(entries.len() + 1);
    let mut ack = 0;
    acks.push(0);
    for e in entries {
        if let Some(n) = e.mark.as_deref().and_then(ack_number) {
            ack = n;
        }
        acks.push(ack);
    }
    let durable: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].durable_point())
        .collect();
    let mut chosen = BTreeSet::new();
    if durable.len() <= max {
        chosen.extend(durable.iter().copied());
    } else if max > 0 {
        let n = durable.len() - 1;
        let m = max.max(2) - 1;
        chosen.extend((0..=m).map(|j| durable[j * n / m]));
        // The superblock writes of a checkpoint, and the flush that made its checkpoint blocks durable.
        for (pos, &i) in durable.iter().enumerate() {
            if entries[i].flags & LOG_FUA != 0 && keep.contains(&entries[i].sector) {
                chosen.insert(i);
                if let Some(&prev) = pos.checked_sub(1).and_then(|p| durable.get(p)) {
                    chosen.insert(prev);
                }
            }
        }
    }
    let marks = (0..entries.len()).filter(|&i| entries[i].mark.is_some());
    let mut out: Vec<Point> = chosen
        .iter()
        .copied()
        .chain(marks)
        .collect::<BTreeSet<usize>>()
        .into_iter()
        .map(|i| Point {
            end: i + 1,
            whole: true,
            ack: acks[i + 1],
            kind: entries[i].kind().into(),
        })
        .collect();
    // Points with no write between them replay the same image: judge it once, against the latest
    // acknowledgement (the strictest: it requires the most).
    let same_image_as_next: Vec<bool> = out
        .windows(2)
        .map(|w| !entries[w[0].end..w[1].end].iter().any(Entry::writes_data))
        .chain([false])
        .collect();
    let mut keep = same_image_as_next.iter().map(|same| !same);
    out.retain(|_| keep.next().unwrap_or(true));
    // Torn: a multi-sector durable write of the chosen ones, cut in half (the crash hit it in flight).
    let tearable: Vec<usize> = chosen
        .iter()
        .copied()
        .filter(|&i| entries[i].writes_data() && entries[i].sectors >= 2)
        .collect();
    if torn > 0 && !tearable.is_empty() {
        let n = tearable.len();
        let picks: BTreeSet<usize> = (0..torn.min(n))
            .map(|j| tearable[j * n / torn.min(n)])
            .collect();
        out.extend(picks.into_iter().map(|i| Point {
            end: i + 1,
            whole: false,
            ack: acks[i],
            kind: "torn".into(),
        }));
    }
    out.sort();
    out
}

/// One line of `dmsetup message <dev> 0 list`: `<sector> <spare> <spare_sector> active` or
/// `<sector> - - pending`, keyed by sector.
type Table = BTreeMap<u64, String>;

fn parse_list(text: &str) -> Result<Table, String> {
    let mut t = Table::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let sector = f.first().and_then(|s| s.parse().ok());
        match (sector, f.len()) {
            (Some(s), 4) => {
                t.insert(s, f[1..].join(" "));
            }
            _ => return Err(format!("bad list line '{line}'")),
        }
    }
    Ok(t)
}

/// The oracle. `acked` is the table the target reported after the last operation acknowledged before the
/// replay point, `next` after the operation that was in flight (equal to `acked` at the end of the log).
/// Every unit's loaded entry must be its acknowledged one or its in-flight one: nothing acknowledged is lost,
/// nothing appears that the target never had. Every active unit must read, through the target, the data of
/// that entry: an acknowledged mapping the acknowledged data (or the in-flight overwrite of it), a mapping
/// that only the in-flight operation made exactly the data that operation wrote (no mapping to a spare unit
/// whose data was not yet durable). Every other unit of the device (`actual` is all of it) reads from main
/// and must hold the acknowledged or the in-flight data: main's writes, a plain overwrite or the copy back
/// of an `unremap`, were durable before the operation was acknowledged or its mapping cleared. Returns the
/// violations.
fn check<'d>(
    unit_bytes: usize,
    loaded: &Table,
    acked: &Table,
    next: &Table,
    data: [&'d [u8]; 3],
) -> Vec<String> {
    let [actual, acked_img, next_img] = data;
    let mut bad = Vec::new();
    let units: BTreeSet<u64> = loaded
        .keys()
        .chain(acked.keys())
        .chain(next.keys())
        .copied()
        .chain(0..(actual.len() / unit_bytes) as u64)
        .collect();
    let show = |e: Option<&String>| e.map_or("none".to_string(), |s| format!("'{s}'"));
    for u in units {
        let (l, a, n) = (loaded.get(&u), acked.get(&u), next.get(&u));
        if l != a && l != n {
            bad.push(format!(
                "unit {u}: loaded entry {}, acknowledged {}, in flight {}",
                show(l),
                show(a),
                show(n)
            ));
            continue;
        }
        let at = u as usize * unit_bytes;
        let unit = |img: &'d [u8]| img.get(at..at + unit_bytes);
        let got = unit(actual);
        if !l.is_some_and(|e| e.ends_with(" active")) {
            if got.is_none() || (got != unit(acked_img) && got != unit(next_img)) {
                bad.push(format!(
                    "unit {u} ({}, on main): data through the target is neither the acknowledged nor the \
                     in-flight data",
                    show(l)
                ));
            }
            continue;
        }
        let ok = if l == a {
            got.is_some() && (got == unit(acked_img) || got == unit(next_img))
        } else {
            got.is_some() && got == unit(next_img)
        };
        if !ok {
            bad.push(format!(
                "unit {u} ({}): data through the target is not what was {}",
                show(l),
                if l == a {
                    "acknowledged"
                } else {
                    "written before its mapping was committed"
                }
            ));
        }
    }
    bad
}

/// `dmsetup status` of the target: metadata and state `ok`, and as many entries as the list has.
fn check_status(status: &str, entries: usize) -> Vec<String> {
    let field = |key: &str| {
        status
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let mut bad = Vec::new();
    for key in ["metadata", "state"] {
        if field(key) != Some("ok") {
            bad.push(format!("status {key}={}", field(key).unwrap_or("missing")));
        }
    }
    let count = |key: &str| field(key).and_then(|v| v.parse::<usize>().ok());
    match (count("remapped"), count("pending")) {
        (Some(r), Some(p)) if r + p == entries => {}
        (r, p) => bad.push(format!(
            "status remapped={r:?} pending={p:?}, but {entries} listed"
        )),
    }
    bad
}

/// The first `len` bytes of a block device, read with O_DIRECT (past the target's page cache).
fn read_direct(path: &str, len: usize) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    const O_DIRECT: i32 = 0o40000; // x86_64, the only architecture the VM tests run on
    const ALIGN: usize = 4096;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(O_DIRECT)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut buf = vec![0u8; len + ALIGN];
    let skew = buf.as_ptr() as usize % ALIGN;
    let start = (ALIGN - skew) % ALIGN;
    file.read_exact(&mut buf[start..start + len])
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(buf[start..start + len].to_vec())
}

/// Judges the targets loaded from the disk images of `spec` (main: the first `size` bytes, the size of the
/// target): target n is `cr<n>`, device `/dev/dm-<first_minor + 3n + 2>` (its main and spare slices are the
/// two minors before), its `list` output in `<lists>/<n>.list`; state k is `<states>/<k>.list` and the latest
/// `<states>/<j>.img` with j <= k. Prints one line per verdict; `FAIL:` lines are failures: a violation at a
/// replay point, or none at a deliberately wrong one (kinds `lost-data`, `lost-main`, `no-commit`).
fn judge(
    spec: &[Spec],
    status: &str,
    lists: &str,
    states: &str,
    n: [usize; 3],
) -> Result<bool, String> {
    let [unit_bytes, size, first_minor] = n;
    let state = |k: u64| -> Result<(Table, Vec<u8>), String> {
        let list = read_file(&format!("{states}/{k}.list"))?;
        let img = (0..=k)
            .rev()
            .find_map(|j| std::fs::read(format!("{states}/{j}.img")).ok())
            .ok_or(format!("no image for state {k}"))?;
        Ok((parse_list(&String::from_utf8_lossy(&list))?, img))
    };
    let (mut ok, mut points, mut torn, mut caught, mut sabotaged) = (true, 0, 0, 0, 0);
    for (i, p) in spec.iter().enumerate() {
        let name = format!("cr{i}: ");
        let line = status.lines().find_map(|l| l.strip_prefix(&name));
        let (acked, acked_img) = state(p.ack)?;
        let (next, next_img) = state(p.ack + 1).or_else(|_| state(p.ack))?;
        let bad = match line {
            None => vec!["no target: the replayed spare was refused".to_string()],
            Some(line) => {
                let loaded = parse_list(&String::from_utf8_lossy(&read_file(&format!(
                    "{lists}/{i}.list"
                ))?))?;
                let actual = read_direct(&format!("/dev/dm-{}", first_minor + 3 * i + 2), size)?;
                let mut bad = check_status(line, loaded.len());
                bad.extend(check(
                    unit_bytes,
                    &loaded,
                    &acked,
                    &next,
                    [&actual, &acked_img, &next_img],
                ));
                bad
            }
        };
        let at = format!(
            "log entries 0..{} ({}, after operation {})",
            p.end, p.kind, p.ack
        );
        match (p.kind.as_str(), bad.first()) {
            ("lost-data" | "lost-main" | "no-commit", Some(why)) => {
                sabotaged += 1;
                caught += 1;
                println!("caught {} ({at}): {why}", p.label);
            }
            ("lost-data" | "lost-main" | "no-commit", None) => {
                sabotaged += 1;
                ok = false;
                println!("FAIL: the oracle accepted {} ({at})", p.label);
            }
            (kind, _) => {
                if kind == "torn" {
                    torn += 1;
                } else {
                    points += 1;
                }
                if !bad.is_empty() {
                    ok = false;
                    let shown: Vec<&str> = bad.iter().take(5).map(String::as_str).collect();
                    println!("FAIL: {at}: {} violations: {}", bad.len(), shown.join("; "));
                }
            }
        }
    }
    println!("judged {points} replay points and {torn} torn writes; caught {caught} of {sabotaged} wrong replays");
    Ok(ok)
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn run(args: &[String]) -> Result<bool, String> {
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or("missing argument (see the source)")
    };
    let num = |i: usize| -> Result<usize, String> {
        arg(i)?
            .parse()
            .map_err(|_| format!("'{}' is not a number", args[i]))
    };
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    match arg(0)? {
        "entries" => {
            for (i, e) in Log::open(arg(1)?)?.entries.iter().enumerate() {
                let mark = e.mark.as_deref().unwrap_or("");
                println!("{i} {} {} {} {mark}", e.kind(), e.sector, e.sectors);
            }
            Ok(true)
        }
        "points" => {
            let log = Log::open(arg(1)?)?;
            let parse = |s: &String| s.parse::<usize>().map_err(|_| format!("bad number '{s}'"));
            let max = option("--max").map(parse).transpose()?.unwrap_or(60);
            let torn = option("--torn").map(parse).transpose()?.unwrap_or(0);
            let keep: Vec<u64> = match option("--keep-sectors") {
                Some(s) => s
                    .split(',')
                    .map(|x| x.parse::<u64>().map_err(|_| format!("bad sector '{x}'")))
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            for p in points(&log.entries, max, torn, &keep) {
                println!("{} {} {}", p.end, p.ack, p.kind);
            }
            Ok(true)
        }
        "replay" => {
            let mut log = Log::open(arg(1)?)?;
            let mut image = read_file(arg(2)?)?;
            let lose = option("--lose-data-from")
                .map(|s| s.parse::<u64>().map_err(|_| format!("bad sector '{s}'")))
                .transpose()?;
            let tear = args.iter().any(|a| a == "--tear-last");
            let (from, to) = (num(3)?, num(4)?);
            let lost = match lose {
                Some(sector) => {
                    Loss::data_before_commit(&log.entries[..to.min(log.entries.len())], sector)
                }
                None => Loss::NONE,
            };
            log.replay(&mut image, from, to, tear, &lost)?;
            std::fs::write(arg(2)?, &image).map_err(|e| format!("{}: {e}", args[2]))?;
            Ok(true)
        }
        "images" => {
            let mut log = Log::open(arg(1)?)?;
            let spec = parse_spec(&String::from_utf8_lossy(&read_file(arg(2)?)?))?;
            let mut out = File::create(arg(3)?).map_err(|e| format!("{}: {e}", args[3]))?;
            log.images(&spec, num(4)?, &mut out)?;
            Ok(true)
        }
        "judge" => {
            let spec = parse_spec(&String::from_utf8_lossy(&read_file(arg(1)?)?))?;
            let status = String::from_utf8_lossy(&read_file(arg(2)?)?).into_owned();
            let (lists, states) = (arg(3)?, arg(4)?);
            let (unit_bytes, size, first_minor) = (num(5)?, num(6)?, num(7)?);
            judge(
                &spec,
                &status,
                lists,
                states,
                [unit_bytes, size, first_minor],
            )
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("log-replay: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sector: u64, sectors: u64, flags: u64, mark: Option<&str>) -> Entry {
        Entry {
            sector,
            sectors,
            flags,
            mark: mark.map(str::to_string),
            data_at: 0,
        }
    }

    #[test]
    fn ack_numbers() {
        assert_eq!(ack_number("ack-12-remap"), Some(12));
        assert_eq!(ack_number("ack-3"), Some(3));
        assert_eq!(ack_number("dm-log-writes-end"), None);
    }

    #[test]
    fn points_take_every_durable_entry_and_mark_with_the_ack_before_them() {
        let log = [
            entry(4096, 1, 0, None),
            entry(0, 0, LOG_FLUSH, None),
            entry(300, 8, LOG_FUA, None),
            entry(0, 0, LOG_MARK, Some("ack-1-x")),
            entry(4097, 1, 0, None),
        ];
        let p = points(&log, 60, 1, &[]);
        let got: Vec<(usize, u64, &str)> =
            p.iter().map(|p| (p.end, p.ack, p.kind.as_str())).collect();
        // The FUA point and the mark after it replay the same image: judged once, after the mark.
        assert_eq!(got, [(2, 0, "flush"), (3, 0, "torn"), (4, 1, "mark")]);
    }

    #[test]
    fn many_points_are_sampled_but_keep_superblock_writes() {
        let mut log = Vec::new();
        for i in 0..200 {
            log.push(entry(4096 + i, 1, 0, None));
            log.push(entry(0, 0, LOG_FLUSH, None));
            log.push(entry(300, 8, LOG_FUA, None));
        }
        log.push(entry(0, 8, LOG_FUA, None));
        let p = points(&log, 10, 0, &[0, 64]);
        assert!(p.len() >= 5 && p.len() <= 12, "{}", p.len());
        assert!(p.iter().any(|p| p.end == log.len()));
        assert!(
            p.iter().any(|p| p.end == log.len() - 1),
            "the point before the superblock write"
        );
    }

    #[test]
    fn lost_range_is_what_the_last_flush_made_durable() {
        let log = [
            entry(4096, 1, 0, None),
            entry(0, 0, LOG_FLUSH, None),
            entry(4097, 1, 0, None),
            entry(0, 0, LOG_FLUSH, None),
            entry(300, 8, LOG_FUA, None),
            entry(0, 0, LOG_FLUSH, None),
        ];
        assert_eq!(lost_range(&log), 2..3);
    }

    fn table(lines: &str) -> Table {
        parse_list(lines).unwrap_or_default()
    }

    #[test]
    fn the_oracle_accepts_acknowledged_and_in_flight_states_only() {
        let acked = table("1 0 4096 active\n");
        let next = table("1 0 4096 active\n2 0 4097 active\n3 - - pending\n");
        let mut img = vec![0u8; 8 * 512];
        img[512..1024].fill(1);
        let mut next_img = img.clone();
        next_img[1024..1536].fill(2);
        // Acknowledged state, in-flight state, and a mix of the two (an operation of several commits).
        for (loaded, actual) in [
            (&acked, &img),
            (&next, &next_img),
            (&table("1 0 4096 active\n3 - - pending\n"), &img),
        ] {
            assert!(check(512, loaded, &acked, &next, [actual, &img, &next_img]).is_empty());
        }
        // An acknowledged mapping lost.
        assert_eq!(
            check(512, &Table::new(), &acked, &next, [&img, &img, &next_img]).len(),
            1
        );
        // A mapping nobody made.
        assert_eq!(
            check(
                512,
                &table("1 0 4099 active\n"),
                &acked,
                &next,
                [&img, &img, &next_img]
            )
            .len(),
            1
        );
        // The new mapping committed before its data was durable.
        assert_eq!(
            check(512, &next, &acked, &next, [&img, &img, &next_img]).len(),
            1
        );
        // Acknowledged data lost.
        assert_eq!(
            check(
                512,
                &acked,
                &acked,
                &next,
                [&vec![0u8; 4096], &img, &next_img]
            )
            .len(),
            1
        );
    }

    #[test]
    fn the_oracle_checks_every_unit_on_main() {
        let none = Table::new();
        let mut acked_img = vec![0u8; 8 * 512];
        acked_img[5 * 512..6 * 512].fill(7);
        let mut next_img = acked_img.clone();
        next_img[6 * 512..7 * 512].fill(8);
        // Main holds the acknowledged data, or the in-flight overwrite of a unit.
        for actual in [&acked_img, &next_img] {
            assert!(check(512, &none, &none, &none, [actual, &acked_img, &next_img]).is_empty());
        }
        // An acknowledged overwrite on main lost (never flushed), whatever the table says.
        let blank = vec![0u8; 8 * 512];
        let bad = check(512, &none, &none, &none, [&blank, &acked_img, &next_img]);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].starts_with("unit 5 (none, on main)"), "{bad:?}");
        // An unremap committed (the mapping cleared) before its copy back to main was durable.
        let mapped = table("5 0 4096 active\n");
        assert_eq!(
            check(512, &none, &mapped, &none, [&blank, &acked_img, &acked_img]).len(),
            1
        );
        // The same before the commit: the unit still reads from the spare, whose data is there.
        assert!(check(
            512,
            &mapped,
            &mapped,
            &none,
            [&acked_img, &acked_img, &acked_img]
        )
        .is_empty());
    }

    /// A dm-log-writes log (version 1, 512-byte sectors) of `entries` (sector, sectors, flags, mark); the
    /// data of a write is its entry's index + 1 in every byte.
    fn log_file(name: &str, entries: &[(u64, u64, u64, &str)]) -> String {
        let path = std::env::temp_dir()
            .join(format!("log-replay-{}-{name}", std::process::id()))
            .to_string_lossy()
            .into_owned();
        let mut b = vec![0u8; 512];
        b[0..8].copy_from_slice(&LOG_MAGIC.to_le_bytes());
        b[8..16].copy_from_slice(&1u64.to_le_bytes());
        b[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
        b[24..28].copy_from_slice(&512u32.to_le_bytes());
        for (i, &(sector, sectors, flags, mark)) in entries.iter().enumerate() {
            let mut h = vec![0u8; 512];
            h[0..8].copy_from_slice(&sector.to_le_bytes());
            h[8..16].copy_from_slice(&sectors.to_le_bytes());
            h[16..24].copy_from_slice(&flags.to_le_bytes());
            h[24..32].copy_from_slice(&(mark.len() as u64).to_le_bytes());
            h[32..32 + mark.len()].copy_from_slice(mark.as_bytes());
            b.extend(h);
            b.extend(vec![i as u8 + 1; (sectors * 512) as usize]);
        }
        std::fs::write(&path, b).unwrap_or_else(|e| panic!("{path}: {e}"));
        path
    }

    #[test]
    fn images_replay_main_and_spare_and_drop_what_a_wrong_replay_loses() {
        // A disk of 16 sectors: main 0..8, spare 8..16 (pool from 12).
        let log = log_file(
            "images",
            &[
                (2, 1, 0, ""),             // 0: a write to main
                (13, 1, 0, ""),            // 1: pool data on the spare
                (0, 0, LOG_FLUSH, ""),     // 2
                (8, 1, LOG_FUA, ""),       // 3: the commit
                (0, 0, LOG_MARK, "ack-1"), // 4
                (3, 2, 0, ""),             // 5: main again (an unremap's copy back)
                (0, 0, LOG_FLUSH, ""),     // 6
                (9, 1, LOG_FUA, ""),       // 7: the commit
            ],
        );
        let spec = parse_spec(
            "5 1 mark\n8 1 torn\n8 1 fua\n8 1 lost-main x 5 8\n4 0 lost-data y 12\n5 1 no-commit z\n",
        )
        .unwrap_or_default();
        assert_eq!(spec[3].args, [5, 8]);
        let out_path = format!("{log}.out");
        let mut log_ = Log::open(&log).unwrap_or_else(|e| panic!("{e}"));
        let mut out = File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
        log_.images(&spec, 16 * 512, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let all = std::fs::read(&out_path).unwrap_or_default();
        let _ = (std::fs::remove_file(&log), std::fs::remove_file(&out_path));
        assert_eq!(all.len(), 6 * 16 * 512);
        let sectors = |n: usize| -> Vec<u8> { (0..16).map(|s| all[(n * 16 + s) * 512]).collect() };
        assert_eq!(sectors(0), [0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0]);
        // Torn: the last entry is one sector; half of it is nothing.
        assert_eq!(sectors(1), [0, 0, 1, 6, 6, 0, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(sectors(2), [0, 0, 1, 6, 6, 0, 0, 0, 4, 8, 0, 0, 0, 2, 0, 0]);
        // Main's writes after entry 5 lost; the earlier one and the spare's kept.
        assert_eq!(sectors(3), [0, 0, 1, 0, 0, 0, 0, 0, 4, 8, 0, 0, 0, 2, 0, 0]);
        // The pool write the flush before the commit made durable lost; main's kept.
        assert_eq!(sectors(4), [0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sectors(5), sectors(0));
    }

    #[test]
    fn the_status_must_be_healthy_and_count_the_listed_entries() {
        let ok = "0 8192 dm-remap-v4 unit_bytes=512 remapped=2 pending=1 metadata=ok state=ok";
        assert!(check_status(ok, 3).is_empty());
        assert_eq!(check_status(ok, 2).len(), 1);
        assert_eq!(
            check_status(&ok.replace("metadata=ok", "metadata=failed"), 3).len(),
            1
        );
    }
}
