#![no_main]
//! The MS-XCA plain LZ77 decompressor of ETW buffers, over arbitrary bytes: never a panic,
//! never more output than the limit.

use libfuzzer_sys::fuzz_target;
use tlscensus::source::etl::xpress;

fuzz_target!(|data: &[u8]| {
    let limit = 1 << 20;
    let mut out = Vec::new();
    let result = xpress::decompress(data, &mut out, limit);
    assert!(out.len() <= limit);
    if result.is_ok() {
        // Literals copy at most the input; matches add at most the limit.
        assert!(out.len() <= limit);
    }
});
