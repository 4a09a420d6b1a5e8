//! `md-fixture`: a test fixture for the VM tests, not an administration tool.
//!
//! It opens the metadata region of a spare device (or image) that the kernel module formatted, with the same
//! format crate the module uses, and either prints its geometry or commits remap records to it, so that a
//! test can put known remaps on disk and check that the kernel loads and routes them. Run it only while no
//! dm-remap-v4 table uses the spare.
//!
//!     md-fixture info <spare>
//!     md-fixture add <spare> <main_unit>:<spare_unit>[:pending]...
//!     md-fixture fill-journal <spare>    (commits units 1000..1126 -> spare units 100..226, one record per
//!                                         commit, until the journal is full: one record per block keeps the
//!                                         load that replays it cheap)
//!     md-fixture times <spare>           (the metadata version, then each entry's main unit and timestamp)
//!     md-fixture spread <spare> <count> <step>   (a checkpoint of units 0, step, 2*step... -> spare units 0..count)
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)] // a test fixture, not kernel code

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::{BlockIo, EntryState, Expect, IoError, Record, RecordSink, Store};

/// The spare, and whether flushes wait for the end (`fill-journal`: a fixture need not survive a crash, and
/// one flush per commit made filling the journal slow in the VM).
struct FileIo(File, bool);

impl BlockIo for FileIo {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = sector.checked_mul(512).ok_or(IoError)?;
        self.0.seek(SeekFrom::Start(at)).map_err(|_| IoError)?;
        self.0.read_exact(buf).map_err(|_| IoError)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let at = sector.checked_mul(512).ok_or(IoError)?;
        self.0.seek(SeekFrom::Start(at)).map_err(|_| IoError)?;
        self.0.write_all(buf).map_err(|_| IoError)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        if self.1 {
            return Ok(());
        }
        self.0.sync_all().map_err(|_| IoError)
    }
}

/// The loaded table's timestamps by main unit (`times`), or nothing.
struct Times(Option<BTreeMap<u64, u64>>);

impl RecordSink for Times {
    fn apply(&mut self, rec: &Record) -> Result<(), dm_remap_v4_metadata::Error> {
        if let Some(map) = self.0.as_mut() {
            match rec.state {
                EntryState::Cleared => map.remove(&rec.main_unit),
                _ => map.insert(rec.main_unit, rec.timestamp),
            };
        }
        Ok(())
    }
}

fn parse_record(arg: &str) -> Option<Record> {
    let mut parts = arg.split(':');
    let main_unit = parts.next()?.parse().ok()?;
    let spare_unit = parts.next()?.parse().ok()?;
    let state = match parts.next() {
        None => EntryState::Active,
        Some("pending") => EntryState::PendingReadFailure,
        Some(_) => return None,
    };
    parts.next().is_none().then_some(Record {
        main_unit,
        spare_index: 0,
        spare_unit,
        state,
        timestamp: 1,
    })
}

fn run(args: &[String]) -> Result<(), String> {
    let (cmd, path) = match args {
        [cmd, path, ..] => (cmd.as_str(), path),
        _ => {
            return Err(
                "usage: md-fixture info|add <spare> [<main_unit>:<spare_unit>[:pending]...]".into(),
            )
        }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(cmd != "info" && cmd != "times")
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut io = FileIo(file, false);
    let mut buf = vec![0u8; BLOCK_SIZE];
    let expect = Expect {
        uuid: None,
        main: None,
        member_index: None,
    };
    let mut times = Times((cmd == "times").then(BTreeMap::new));
    let (mut store, _) = Store::load(&mut io, &mut buf, &expect, 0x5eed, &mut times)
        .map_err(|e| format!("{path}: {e}"))?;
    match cmd {
        "info" => {
            let sb = store.superblock();
            println!(
                "pool_start={} pool_units={} unit_sectors={} meta_version={} last_seq={}",
                sb.pool_start,
                sb.pool_units,
                sb.unit_sectors,
                sb.meta_version,
                store.last_seq()
            );
            Ok(())
        }
        "times" => {
            println!("version {}", store.superblock().meta_version);
            for (unit, t) in times.0.unwrap_or_default() {
                println!("{unit} {t}");
            }
            Ok(())
        }
        "add" => {
            let records = args
                .iter()
                .skip(2)
                .map(|a| parse_record(a).ok_or(format!("bad record '{a}'")))
                .collect::<Result<Vec<_>, _>>()?;
            store
                .commit(&mut io, &mut buf, &records)
                .map(|_| ())
                .map_err(|e| format!("{path}: {e}"))
        }
        "fill-journal" => {
            io.1 = true;
            let mut commits = 0u64;
            loop {
                let i = commits % 126;
                let rec = parse_record(&format!("{}:{}", 1000 + i, 100 + i))
                    .ok_or("bad fixture record")?;
                match store.commit(&mut io, &mut buf, &[rec]) {
                    Ok(_) => commits += 1,
                    Err(dm_remap_v4_metadata::Error::JournalFull) => break,
                    Err(e) => return Err(format!("{path}: {e}")),
                }
            }
            io.0.sync_all().map_err(|e| format!("{path}: {e}"))?;
            println!("commits={commits}");
            Ok(())
        }
        "spread" => {
            let number = |i: usize| -> Result<u64, String> {
                args.get(i)
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| "usage: md-fixture spread <spare> <count> <step>".to_string())
            };
            let (count, step) = (number(2)?, number(3)?);
            let records = (0..count).map(|i| Record {
                main_unit: i * step,
                spare_index: 0,
                spare_unit: i,
                state: EntryState::Active,
                timestamp: 1,
            });
            store
                .checkpoint(&mut io, &mut buf, records)
                .map_err(|e| format!("{path}: {e}"))
        }
        _ => Err(format!("unknown command '{cmd}'")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("md-fixture: {e}");
            ExitCode::FAILURE
        }
    }
}
