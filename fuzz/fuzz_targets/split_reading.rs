#![no_main]
//! Workers reading or mapping their share of a pcap file against one reader thread: the same
//! records (in the same order), the same errors and the same frame count, however the file
//! is cut into blocks and however many workers share it. The first byte picks the block
//! size (1 to 833 bytes, so that records straddle blocks; a mapped block is walked as up to
//! 16 chains from guessed record starts) and the number of workers (1 to 3); the rest is
//! the file, as written to a temporary file (the workers read or map it by position).

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use tlscensus::engine::Config;
use tlscensus::pipeline::{self, Options, Reading};

/// One run: records as JSON lines, errors as shown, frames counted.
fn run(
    file: &PathBuf,
    reading: Reading,
    threads: usize,
    block: usize,
) -> (Vec<String>, Vec<String>, u64) {
    let options = Options {
        engine: Config::default(),
        threads,
        reading,
    };
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    let outcome = pipeline::run_in_blocks(
        std::slice::from_ref(file),
        &options,
        block,
        &mut |r| records.push(serde_json::to_string(&r).expect("a record serialises")),
        &mut |e| errors.push(e.to_string()),
    );
    (records, errors, outcome.stats.frames)
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, file)) = data.split_first() else {
        return;
    };
    let block = 1 + usize::from(shape >> 2) * 13;
    let threads = 1 + usize::from(shape & 3) % 3;
    let path =
        std::env::temp_dir().join(format!("tlscensus-fuzz-split-{}.pcap", std::process::id()));
    std::fs::write(&path, file).expect("write the capture to a temporary file");
    let one = run(&path, Reading::OneReader, 1, block);
    for reading in [Reading::Split, Reading::Map] {
        let split = run(&path, reading, threads, block);
        assert!(
            one == split,
            "{reading:?}, {threads} workers, {block}-byte blocks: {split:?}\n\
             against one reader: {one:?}"
        );
    }
});
