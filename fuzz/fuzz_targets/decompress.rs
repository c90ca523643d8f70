#![no_main]
//! The decompressors in front of the capture readers (gzip, zstd, lz4 frames), over
//! arbitrary bytes: the first byte picks the format's magic number, the rest follows it, so
//! the fuzzer spends its time inside the decoders rather than finding the magic.

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tlscensus::source::{CaptureReader, MAX_CAPLEN};

const MAGICS: [&[u8]; 3] = [
    &[0x1f, 0x8b],
    &[0x28, 0xb5, 0x2f, 0xfd],
    &[0x04, 0x22, 0x4d, 0x18],
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut input = MAGICS[usize::from(pick) % MAGICS.len()].to_vec();
    input.extend_from_slice(rest);
    let Ok(mut reader) = CaptureReader::from_reader("fuzz".into(), Box::new(Cursor::new(input)))
    else {
        return;
    };
    let mut frames = 0u64;
    while let Ok(Some(packet)) = reader.next_packet() {
        assert!(
            packet.data.len() <= MAX_CAPLEN as usize,
            "a frame over the size limit"
        );
        frames += 1;
        if frames > 1 << 20 {
            break;
        }
    }
});
