#![no_main]
//! The server's Certificate message: the chain walk and the leaf's X.509 decoding on any
//! bytes, and the message's path through the TLS stream (after a ServerHello, in records
//! cut anywhere). Input: one control byte (low nibble: how many piece sizes follow), the
//! piece sizes, then the Certificate message body.

use libfuzzer_sys::fuzz_target;
use tlscensus::tls::certificate;
use tlscensus::tls::stream::{Event, TlsStream};
use tlscensus_fuzz::{pieces, Bytes};

/// A TLS 1.2 ServerHello record (no extensions), then the Certificate message in
/// handshake records of at most 2^14 bytes.
fn server_flight(body: &[u8]) -> Vec<u8> {
    let mut hello = vec![2, 0, 0, 38, 3, 3];
    hello.extend_from_slice(&[0x11; 32]);
    hello.extend_from_slice(&[0, 0x00, 0x2f, 0]);
    let mut flight = vec![22, 3, 3, 0, hello.len() as u8];
    flight.extend_from_slice(&hello);
    let len = body.len() as u32;
    let mut message = vec![11, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    message.extend_from_slice(body);
    for record in message.chunks(1 << 14) {
        flight.extend_from_slice(&[22, 3, 3]);
        flight.extend_from_slice(&(record.len() as u16).to_be_bytes());
        flight.extend_from_slice(record);
    }
    flight
}

fn certificates(chunks: &[&[u8]]) -> Vec<Event> {
    let mut stream = TlsStream::new();
    let mut events = Vec::new();
    for chunk in chunks {
        stream.feed(chunk, &mut |e| events.push(e));
    }
    if let Some(cut) = stream.unfinished_certificate() {
        events.push(Event::Certificate(Box::new(cut)));
    }
    events.retain(|e| matches!(e, Event::Certificate(_)));
    events
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let control = input.u8();
    let sizes = input.take(usize::from(control & 0x0f));
    let body = input.rest();

    let whole = certificate::parse_chain(body, body.len(), true);
    if whole.leaf.is_some() {
        assert!(whole.leaf_error.is_none());
    }
    // Any prefix of the message, read as not seen whole, never claims a chain length.
    let cut = certificate::parse_chain(&body[..body.len() / 2], body.len(), false);
    assert!(cut.chain_length.is_none() && !cut.seen_whole);
    let _ = certificate::leaf(body);

    // Through the stream, cut anywhere: exactly the message's own reading.
    let flight = server_flight(body);
    let one = certificates(&[&flight]);
    let split = certificates(&pieces(&flight, sizes));
    assert_eq!(one, split, "the certificate depends on piece sizes");
    assert_eq!(one.len(), 1);
    if body.len() <= tlscensus::tls::stream::CERTIFICATE_CAP {
        assert_eq!(one[0], Event::Certificate(Box::new(whole)));
    }
});
