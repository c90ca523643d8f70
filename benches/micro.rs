//! Criterion micro-benchmarks of the hot stages, on real bytes from `pcaps/`: frame decode,
//! reassembly of a ClientHello split over several segments, and hello parsing. Each asserts
//! what it measured, so a bench cannot silently measure nothing.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use tlscensus::decode;
use tlscensus::flow::reassembly::Reassembler;
use tlscensus::record::ClientHelloRecord;
use tlscensus::source::CaptureReader;
use tlscensus::tls::fingerprint::{self, Transport};
use tlscensus::tls::hello_fingerprints;
use tlscensus::tls::stream::{Event, TlsStream};

/// Frames of a capture in `pcaps/`: (link type, bytes).
fn frames(name: &str) -> Vec<(u32, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name);
    let mut reader = CaptureReader::open(&path).expect("capture");
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().expect("readable") {
        out.push((p.link_type, p.data.to_vec()));
    }
    out
}

/// The client's TCP segments of the first connection: (seq, payload), in capture order.
fn client_segments(name: &str) -> Vec<(u32, Vec<u8>)> {
    let mut segments = Vec::new();
    let mut client = None;
    for (link, frame) in frames(name) {
        let seg = decode::decode(link, &frame).expect("TCP");
        if seg.flags.syn && !seg.flags.ack {
            client = Some((seg.src, seg.sport));
        }
        if client == Some((seg.src, seg.sport)) && !seg.payload.is_empty() {
            segments.push((seg.seq, seg.payload.to_vec()));
        }
    }
    segments
}

fn bench_decode(c: &mut Criterion) {
    let frames = frames("multi_version.pcapng");
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("ethernet_ipv4_tcp", |b| {
        b.iter(|| {
            let mut tcp = 0;
            for (link, frame) in &frames {
                tcp += usize::from(decode::decode(*link, black_box(frame)).is_ok());
            }
            assert!(tcp > 0);
            tcp
        })
    });
    group.finish();
}

fn bench_split_hello(c: &mut Criterion) {
    let segments = client_segments("split_hello.pcap");
    assert!(
        segments.len() > 3,
        "the hello is split over several segments"
    );
    let isn = segments[0].0.wrapping_sub(1);
    let mut group = c.benchmark_group("reassembly");
    group.throughput(Throughput::Elements(segments.len() as u64));
    group.bench_function("split_client_hello", |b| {
        b.iter(|| {
            let mut reassembler = Reassembler::default();
            let mut tls = TlsStream::new();
            let mut hellos = 0;
            reassembler.syn(isn);
            for (seq, payload) in &segments {
                reassembler.accept(*seq, payload, |bytes| {
                    tls.feed(bytes, &mut |e| {
                        hellos += usize::from(matches!(e, Event::ClientHello(_)))
                    })
                });
            }
            assert_eq!(hellos, 1);
            hellos
        })
    });
    group.finish();
}

fn bench_hello_parse(c: &mut Criterion) {
    let stream: Vec<u8> = client_segments("tls13.pcap")
        .into_iter()
        .flat_map(|(_, p)| p)
        .collect();
    let mut group = c.benchmark_group("hello");
    group.throughput(Throughput::Elements(1));
    group.bench_function("client_hello_tls13", |b| {
        b.iter(|| {
            let mut tls = TlsStream::new();
            let mut hellos = 0;
            tls.feed(black_box(&stream), &mut |e| {
                hellos += usize::from(matches!(e, Event::ClientHello(_)))
            });
            assert_eq!(hellos, 1);
            hellos
        })
    });
    group.finish();
}

/// What a record carries for a ClientHello: its fingerprints built from scratch (what every
/// connection paid before issue 27) against the per-thread memo a repeated hello hits.
fn bench_hello_record(c: &mut Criterion) {
    let stream: Vec<u8> = client_segments("tls13.pcap")
        .into_iter()
        .flat_map(|(_, p)| p)
        .collect();
    let mut hello = None;
    TlsStream::new().feed(&stream, &mut |e| {
        if let Event::ClientHello(h) = e {
            hello = Some(h);
        }
    });
    let hello = hello.expect("a ClientHello in tls13.pcap");
    let mut group = c.benchmark_group("hello_record");
    group.throughput(Throughput::Elements(1));
    group.bench_function("fingerprints_computed", |b| {
        b.iter(|| {
            let hello = black_box(&*hello);
            let ja3_full = fingerprint::ja3_string(hello);
            let ja3 = fingerprint::ja3_of_string(&ja3_full);
            let ja4 = fingerprint::ja4(hello, Transport::Tcp);
            assert_eq!(ja3.len(), 32);
            (ja3_full, ja3, ja4)
        })
    });
    group.bench_function("fingerprints_memoised", |b| {
        b.iter(|| {
            let prints = hello_fingerprints::client(black_box(&*hello), Transport::Tcp);
            assert_eq!(prints.ja3.len(), 32);
            prints
        })
    });
    group.bench_function("client_hello_record", |b| {
        b.iter(|| {
            let record = ClientHelloRecord::from_hello(black_box(&*hello).clone(), Transport::Tcp);
            assert!(!record.ja4.is_empty());
            record
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_decode,
    bench_split_hello,
    bench_hello_parse,
    bench_hello_record
);
criterion_main!(benches);
