#![no_main]
//! A client's counts on a service as a JSON report holds them (what `tlscensus merge` and
//! `report --from` read), over arbitrary bytes: reading never panics, and counts that were
//! read write back to text that reads back to the same counts and the same text. The
//! first/last seen times over arbitrary text: each reads back as exactly its text, and two
//! compare as their texts do (the census keeps the usual form packed, any other as text).

use libfuzzer_sys::fuzz_target;
use tlscensus::census::{Seen, ServiceCountsInner};

fuzz_target!(|data: &[u8]| {
    if let Ok(counts) = serde_json::from_slice::<ServiceCountsInner>(data) {
        let text = serde_json::to_string(&counts).expect("counts always serialise");
        let back: ServiceCountsInner = serde_json::from_str(&text).expect("written, so read");
        assert_eq!(back, counts);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let mut merged = ServiceCountsInner::default();
        merged.merge(&counts);
        assert_eq!(merged.connections, counts.connections);
        assert_eq!(merged.first_seen(), counts.first_seen());
        assert_eq!(merged.last_seen(), counts.last_seen());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two times: the first 27 bytes (the usual form's length) and the rest.
    let cut = text.len().min(27);
    if !text.is_char_boundary(cut) {
        return;
    }
    let (a, b) = text.split_at(cut);
    for t in [a, b] {
        assert_eq!(&*Seen::of(t).text(), t);
    }
    assert_eq!(Seen::of(a).cmp(&Seen::of(b)), a.cmp(b));
    let mut counts = ServiceCountsInner::default();
    counts.see(a);
    counts.see(b);
    assert_eq!(
        counts.first_seen().map(|t| t.to_string()).as_deref(),
        Some(a.min(b))
    );
    assert_eq!(
        counts.last_seen().map(|t| t.to_string()).as_deref(),
        Some(a.max(b))
    );
});
