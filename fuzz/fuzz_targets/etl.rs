#![no_main]
//! The ETW `.etl` reader over arbitrary bytes: buffers, decompression, the merge, NDIS
//! fragments and pktmon copies. Seeds: the `.etl` files under tests/etl (fuzz/seed.sh).

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tlscensus::source::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let input = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader("fuzz.etl".into(), input) else {
        return;
    };
    let mut frames = 0u64;
    let mut last_number = 0;
    while let Ok(Some(packet)) = reader.next_packet() {
        // A frame is at most one decompressed buffer, or a packet joined from fragments.
        assert!(
            packet.data.len() <= 64 << 20,
            "a frame longer than a buffer"
        );
        assert!(packet.orig_len as usize >= packet.data.len());
        assert!(
            packet.frame_number > last_number,
            "frame numbers go backwards"
        );
        last_number = packet.frame_number;
        let addr = packet.data.as_ptr() as usize;
        let len = packet.data.len();
        assert!(
            reader.block_of(addr, len).is_some(),
            "a frame outside its block"
        );
        frames += 1;
    }
    assert!(reader.bytes_consumed() <= data.len() as u64);
    if reader.format() == "etl" {
        let counters = reader.counters();
        let events = counters[0].1;
        assert!(frames <= events, "more frames than packet events");
    }
});
