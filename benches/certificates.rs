//! What reading the server's Certificate message costs (issue 26): the leaf decoded with
//! `x509-parser` and hashed, and a whole TLS 1.2 server flight (ServerHello, Certificate,
//! ServerKeyExchange, ServerHelloDone) through the stream parser, on the real bytes of
//! `pcaps/cert_normal.pcap` (a 2-certificate chain from `openssl s_server`). The leaf
//! summary is cached per thread by fingerprint, so `parse_chain` and the flight measure the
//! repeat (cached) path and `decode_leaf_uncached` a first sight. Each asserts what it
//! measured. Figures and their reading: benches/NOTES.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use tlscensus::decode;
use tlscensus::source::CaptureReader;
use tlscensus::tls::certificate;
use tlscensus::tls::stream::{Event, TlsStream};

/// The server's payload bytes of the capture's connection, in order, up to its first
/// ChangeCipherSpec record: the flight tlscensus parses.
fn server_flight(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name);
    let mut reader = CaptureReader::open(&path).expect("capture");
    let mut server = None;
    let mut bytes = Vec::new();
    while let Some(p) = reader.next_packet().expect("readable") {
        let seg = decode::decode(p.link_type, p.data).expect("TCP");
        if seg.flags.syn && seg.flags.ack {
            server = Some((seg.src, seg.sport));
        }
        if server == Some((seg.src, seg.sport)) {
            bytes.extend_from_slice(seg.payload);
        }
    }
    bytes
}

/// The Certificate message's body: walk the records, gather handshake bytes, find type 11.
fn certificate_body(flight: &[u8]) -> Vec<u8> {
    let mut handshake = Vec::new();
    let mut at = 0;
    while at + 5 <= flight.len() && flight[at] == 22 {
        let len = usize::from(u16::from_be_bytes([flight[at + 3], flight[at + 4]]));
        handshake.extend_from_slice(&flight[at + 5..at + 5 + len]);
        at += 5 + len;
    }
    let mut at = 0;
    while at + 4 <= handshake.len() {
        let len = usize::from(handshake[at + 1]) << 16
            | usize::from(handshake[at + 2]) << 8
            | usize::from(handshake[at + 3]);
        if handshake[at] == 11 {
            return handshake[at + 4..at + 4 + len].to_vec();
        }
        at += 4 + len;
    }
    panic!("no Certificate message");
}

fn bench_certificates(c: &mut Criterion) {
    let flight = server_flight("cert_normal.pcap");
    let body = certificate_body(&flight);
    let mut group = c.benchmark_group("certificate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_chain_2_certs", |b| {
        b.iter(|| {
            let chain = certificate::parse_chain(black_box(&body), body.len(), true);
            assert_eq!(chain.chain_length, Some(2));
            chain
        })
    });
    // The leaf's DER: after the list's and the first entry's 3-byte lengths.
    let leaf_len = usize::from(body[3]) << 16 | usize::from(body[4]) << 8 | usize::from(body[5]);
    let der = &body[6..6 + leaf_len];
    let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        der,
    ))
    .into();
    group.bench_function("decode_leaf_uncached", |b| {
        b.iter(|| {
            let leaf = certificate::decode_leaf(black_box(der), &digest).expect("decodes");
            assert_eq!(leaf.key_bits, 2048);
            leaf
        })
    });
    group.bench_function("server_flight_through_stream", |b| {
        b.iter(|| {
            let mut stream = TlsStream::new();
            let mut certificates = 0;
            stream.feed(black_box(&flight), &mut |e| {
                certificates += usize::from(matches!(e, Event::Certificate(_)))
            });
            assert_eq!(certificates, 1);
            certificates
        })
    });
    group.finish();
}

criterion_group!(benches, bench_certificates);
criterion_main!(benches);
