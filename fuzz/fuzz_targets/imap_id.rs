#![no_main]
//! The IMAP ID parameter list reader (RFC 2971), over arbitrary bytes: never panics, and
//! what it returns is bounded by the input.

use libfuzzer_sys::fuzz_target;
use tlscensus::proto::imap_id;

fuzz_target!(|data: &[u8]| {
    if let Some(text) = imap_id::software(data) {
        // Name and version, each at most the input (invalid UTF-8 may widen to U+FFFD).
        assert!(text.len() <= 3 * data.len() + 1);
    }
});
