#![no_main]
//! OpenVPN-over-TCP framing: detection, and the TLS bytes carried by the control channel,
//! which must not depend on how TCP cut the stream into pieces.

use libfuzzer_sys::fuzz_target;
use tlscensus::proto::openvpn::{Detect, OpenVpnStream, MAX_RESET_LEN};
use tlscensus_fuzz::{pieces, Bytes};

fn run(chunks: &[&[u8]]) -> (Vec<u8>, Option<tlscensus::proto::openvpn::End>, bool) {
    let mut stream = OpenVpnStream::new();
    let mut tls = Vec::new();
    for chunk in chunks {
        stream.feed(chunk, &mut |bytes| tls.extend_from_slice(bytes));
    }
    (tls, stream.end(), stream.mid_packet())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let control = input.u8();
    let sizes = input.take(usize::from(control & 0x0f));
    let stream = input.rest();
    let detect = OpenVpnStream::detect(stream);
    if stream.len() >= 2 + MAX_RESET_LEN {
        assert_ne!(detect, Detect::NeedMore, "NeedMore past the longest reset");
    }
    // Detection on a prefix never contradicts detection on the whole.
    let prefix = &stream[..usize::from(control >> 4).min(stream.len())];
    match OpenVpnStream::detect(prefix) {
        Detect::NeedMore => {}
        answer => assert_eq!(answer, detect, "prefix decided differently"),
    }
    let whole = run(&[stream]);
    let split = run(&pieces(stream, sizes));
    assert_eq!(whole, split, "OpenVPN framing depends on piece sizes");
});
