#![no_main]
//! The walk of a mapped block over several chains from guessed record starts
//! (`source::walk::Walker`) against the plain walk from record to record: the same records
//! and the same end (done, short or corrupt, at the same offset), over arbitrary bytes.
//! The input is a pcap file header (its magic picks the byte order and time unit), two
//! bytes that pick the sub-range length (1 to 256) and where the walk starts (0 to 255),
//! and the records' bytes; the walk ends at a point the start byte also moves.

use libfuzzer_sys::fuzz_target;
use tlscensus::source::pcap::RecordLayout;
use tlscensus::source::walk::{walk_serial, Walker};

fuzz_target!(|data: &[u8]| {
    let Some(layout) = data.get(..24).and_then(RecordLayout::from_file_header) else {
        return;
    };
    let (Some(&sub), Some(&first)) = (data.get(24), data.get(25)) else {
        return;
    };
    let bytes = &data[26..];
    let first = usize::from(first);
    for end in [bytes.len(), bytes.len() / 2 + first, bytes.len() + 3] {
        let (mut serial, mut chained) = (Vec::new(), Vec::new());
        let expected = walk_serial(layout, bytes, first, end, &mut serial);
        let mut walker = Walker::new(usize::from(sub) + 1);
        let got = walker.walk(layout, bytes, first, end, &mut chained);
        assert_eq!(
            got,
            expected,
            "sub-range {}, first {first}, end {end}",
            sub + 1
        );
        assert_eq!(
            chained,
            serial,
            "sub-range {}, first {first}, end {end}",
            sub + 1
        );
    }
});
