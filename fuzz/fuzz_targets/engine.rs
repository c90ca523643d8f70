#![no_main]
//! The whole engine over a small generated capture: one client and one server, whose
//! segments (direction, flags, sequence jumps, payload) come from the input. Frames go
//! through the pcap reader, decode, reassembly, framing, the mail dialogue and TLS parsing,
//! and every record is serialised.
//!
//! Input: a port selector byte, then segments: a flags byte (bit 0: from the server; SYN,
//! FIN, RST, ACK in bits 1-4; bit 5: a signed 16-bit sequence jump follows), a 16-bit
//! payload length, the jump if any, and the payload.

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tlscensus::engine::{Config, Engine};
use tlscensus::source::CaptureReader;
use tlscensus_fuzz::{pcap, tcp_frame, Bytes, ACK, FIN, RST, SYN};

const PORTS: [u16; 8] = [443, 25, 587, 143, 110, 1194, 3389, 8443];
const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let server = ([10, 0, 0, 2], PORTS[usize::from(input.u8()) % PORTS.len()]);
    // Client ISN just below 2^32, so its sequence numbers wrap early.
    let mut next = [0xffff_ff00u32, 0x1000_0000u32];
    let mut frames = Vec::new();
    let mut ts = 1_700_000_000_000_000u64;
    while !input.is_empty() && frames.len() < 256 {
        let flags = input.u8();
        let len = usize::from(input.u16());
        let from_server = usize::from(flags & 1);
        if flags & 0x20 != 0 {
            let jump = input.u16() as i16;
            next[from_server] = next[from_server].wrapping_add(jump as i32 as u32);
        }
        let payload = input.take(len);
        let tcp_flags = (if flags & 2 != 0 { SYN } else { 0 })
            | (if flags & 4 != 0 { FIN } else { 0 })
            | (if flags & 8 != 0 { RST } else { 0 })
            | (if flags & 0x10 != 0 { ACK } else { 0 });
        let (src, dst) = if from_server == 1 {
            (server, CLIENT)
        } else {
            (CLIENT, server)
        };
        let seq = next[from_server];
        let ack = next[1 - from_server];
        frames.push((ts, tcp_frame(src, dst, seq, ack, tcp_flags, payload)));
        let consumed = payload.len() as u32 + u32::from(tcp_flags & (SYN | FIN) != 0);
        next[from_server] = seq.wrapping_add(consumed);
        ts += 1000;
    }
    let file = pcap(&frames);
    let mut reader = CaptureReader::from_reader("fuzz.pcap".into(), Box::new(Cursor::new(file)))
        .expect("our own pcap header");
    let mut engine = Engine::new(Config::default());
    engine.begin_file("fuzz.pcap");
    let mut records = Vec::new();
    let mut index = 0;
    loop {
        match reader.next_packet() {
            Ok(Some(packet)) => {
                engine.packet(index, &packet, &mut |e| records.push(e.record));
                index += 1;
            }
            Ok(None) => break,
            Err(e) => panic!("our own pcap is unreadable: {e}"),
        }
    }
    engine.finish(&mut |e| records.push(e.record));
    let stats = engine.stats();
    assert_eq!(stats.frames, frames.len() as u64);
    assert_eq!(
        stats.tcp_segments,
        frames.len() as u64,
        "a well-formed frame was skipped"
    );
    assert!(records.len() as u64 <= stats.connections_tracked);
    for record in &records {
        serde_json::to_string(record).unwrap();
        if record.outcome.name() == "negotiated" {
            assert!(record.server_hello.is_some());
        }
    }
});
