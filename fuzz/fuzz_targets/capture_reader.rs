#![no_main]
//! Every capture format reader, over arbitrary bytes from a stream.

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tlscensus::source::compressed::Compression;
use tlscensus::source::CaptureReader;

fuzz_target!(|data: &[u8]| {
    // Compressed input may rightly yield frames longer than itself: the `decompress` target
    // covers it.
    if Compression::detect(data).is_some() {
        return;
    }
    let input = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader("fuzz".into(), input) else {
        return;
    };
    let mut frames = 0u64;
    let mut last_number = 0;
    while let Ok(Some(packet)) = reader.next_packet() {
        assert!(
            packet.data.len() <= data.len(),
            "a frame longer than the file"
        );
        assert!(
            packet.frame_number > last_number,
            "frame numbers go backwards"
        );
        last_number = packet.frame_number;
        frames += 1;
    }
    assert!(reader.bytes_consumed() <= data.len() as u64);
    assert!(frames <= data.len() as u64);
});
