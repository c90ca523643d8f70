#![no_main]
//! Packet decode of every link type: never a panic, the payload is always a slice of the
//! frame, and the fixed-offset fast path agrees with the general decoder.

use libfuzzer_sys::fuzz_target;
use tlscensus::decode::{decode, decode_general};
use tlscensus::source::linktype;

const LINKS: [u32; 10] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::PPP,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    147, // a link type we do not decode
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(selector) % LINKS.len()];
    let decoded = decode(link, frame);
    assert_eq!(decoded, decode_general(link, frame));
    if let Ok(segment) = decoded {
        let start = frame.as_ptr() as usize;
        let at = segment.payload.as_ptr() as usize;
        assert!(at >= start && at + segment.payload.len() <= start + frame.len());
    }
});
