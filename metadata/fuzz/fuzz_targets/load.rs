//! Arbitrary bytes as a metadata region and as single blocks: decoding and loading must never panic, and a
//! region that loads must accept a commit and load again with it.
#![no_main]

use std::collections::BTreeMap;

use dm_remap_v4_metadata::block::{seal, Block};
use dm_remap_v4_metadata::checkpoint::{CheckpointHeader, CHECKPOINT_MAGIC};
use dm_remap_v4_metadata::journal::{JournalHeader, JOURNAL_MAGIC};
use dm_remap_v4_metadata::layout::BLOCK_SIZE;
use dm_remap_v4_metadata::superblock::SUPERBLOCK_MAGIC;
use dm_remap_v4_metadata::{
    BlockIo, EntryState, Error, Expect, IoError, Record, RecordSink, Store, Superblock,
};
use libfuzzer_sys::fuzz_target;

/// The fuzz input as the start of a spare device (zeros after it), with writes kept aside.
struct Region<'a> {
    input: &'a [u8],
    written: BTreeMap<u64, Vec<u8>>,
}

impl BlockIo for Region<'_> {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if let Some(w) = self.written.get(&sector) {
            buf.copy_from_slice(w);
            return Ok(());
        }
        buf.fill(0);
        let start = usize::try_from(sector)
            .map_err(|_| IoError)?
            .saturating_mul(512);
        if let Some(src) = self.input.get(start..) {
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.written.insert(sector, buf.to_vec());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

#[derive(Default)]
struct Sink(BTreeMap<u64, Record>);

impl RecordSink for Sink {
    fn apply(&mut self, rec: &Record) -> Result<(), Error> {
        self.0.insert(rec.main_unit, *rec);
        Ok(())
    }
}

const ANY: Expect = Expect {
    uuid: None,
    main: None,
    member_index: None,
};

fn decode_block(bytes: &[u8]) {
    let mut blk: Block = [0; BLOCK_SIZE];
    let n = bytes.len().min(BLOCK_SIZE);
    blk[..n].copy_from_slice(&bytes[..n]);
    let _ = Superblock::decode(&blk);
    let _ = CheckpointHeader::decode(&blk);
    let _ = JournalHeader::decode(&blk);
    for chunk in blk.chunks_exact(32) {
        let _ = Record::decode(chunk.try_into().unwrap());
    }
}

/// Re-seals every block that carries a known magic, so the fuzzer explores past the checksums.
fn reseal(input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for chunk in out.chunks_exact_mut(BLOCK_SIZE) {
        let blk: &mut Block = chunk.try_into().unwrap();
        let magic = u32::from_le_bytes(blk[..4].try_into().unwrap());
        if [SUPERBLOCK_MAGIC, CHECKPOINT_MAGIC, JOURNAL_MAGIC].contains(&magic) {
            seal(blk, magic);
        }
    }
    out
}

fn load_and_commit(input: &[u8]) {
    let mut region = Region {
        input,
        written: BTreeMap::new(),
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    let mut sink = Sink::default();
    let Ok((mut store, _report)) = Store::load(&mut region, &mut buf, &ANY, 1, &mut sink) else {
        return;
    };
    let _ = store.repair(&mut region, &mut buf);
    let rec = Record {
        main_unit: 0,
        spare_index: 0,
        spare_unit: 7,
        state: EntryState::Active,
        timestamp: 9,
    };
    if store.commit(&mut region, &mut buf, &[rec]).is_ok() {
        let mut again = Sink::default();
        Store::load(&mut region, &mut buf, &ANY, 2, &mut again).expect("reload after commit");
        assert_eq!(again.0.get(&0), Some(&rec), "committed record lost");
    }
}

fuzz_target!(|data: &[u8]| {
    decode_block(data);
    load_and_commit(data);
    load_and_commit(&reseal(data));
});
