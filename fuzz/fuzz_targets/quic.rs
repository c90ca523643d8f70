#![no_main]
//! QUIC Initial handling on arbitrary bytes: the datagram walk and packet opening (with keys
//! from the packet's own DCID, so header parsing, header protection and the AEAD failure path
//! all run), and, since fuzzed bytes rarely decrypt, the frame walk, CRYPTO reassembly and
//! hello parsing directly on the input as if it were a decrypted payload.
//!
//! Input: a selector byte (bit 0: crypto frame type 0x08 instead of 0x06; bit 1: server
//! keys), then the bytes.

use libfuzzer_sys::fuzz_target;
use tlscensus::quic::crypto_stream::CryptoStream;
use tlscensus::quic::frames::{self, Frame};
use tlscensus::quic::keys::{InitialKeys, Sender};
use tlscensus::quic::packet;
use tlscensus::quic::version::Version;
use tlscensus::tls::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let sender = if selector & 2 != 0 {
        Sender::Server
    } else {
        Sender::Client
    };
    let mut plaintext = Vec::new();
    let _ = tlscensus::quic::looks_like_initial_datagram(bytes);
    for found in packet::long_packets(bytes).take(16) {
        let Ok(found) = found else { break };
        if let Some(version) = Version::of(found.version) {
            let keys = InitialKeys::new(&version, found.dcid, sender);
            let _ = packet::open_initial(&found, &keys, None, &mut plaintext);
        }
    }
    let crypto_frame = if selector & 1 != 0 { 0x08 } else { 0x06 };
    let mut stream = CryptoStream::default();
    let _ = frames::walk(bytes, crypto_frame, &mut |frame| {
        if let Frame::Crypto { offset, data } = frame {
            stream.insert(offset, data);
        }
    });
    assert!(stream.held() <= tlscensus::quic::crypto_stream::CRYPTO_BUDGET);
    while let Some((kind, body)) = stream.next_message() {
        match kind {
            1 => drop(parse::client_hello(body, 0)),
            2 => drop(parse::server_hello(body, 0)),
            _ => {}
        }
    }
    let _ = stream.mid_message();
});
