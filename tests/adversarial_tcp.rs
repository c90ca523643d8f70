//! Hostile and unlucky TCP, built segment by segment around a real handshake.
//!
//! The ClientHello and ServerHello records are the ones OpenSSL sent in `pcaps/tls12.pcap`
//! (read back at test time with the crate's own reader and decoder); the expected SNI,
//! versions and cipher are what `openssl s_client` said about that handshake
//! (`pcaps/expected.json`). Every test re-cuts those bytes into hand-made IPv4/TCP frames:
//! sequence numbers that wrap past 2^32, 1-byte segments in random order, retransmissions
//! that disagree with the first copy, windows of missing data, a hello claiming 16 MiB,
//! and endless handshake records. Outcomes are held against the record format in the
//! README ("The record").

mod common;

use serde_json::Value;
use tlscensus::decode;
use tlscensus::engine::{Config, Engine, Stats};
use tlscensus::record::{Outcome, Record};
use tlscensus::source::{CaptureReader, Packet};

const CLIENT: ([u8; 4], u16) = ([192, 0, 2, 10], 50012);
const SERVER: ([u8; 4], u16) = ([198, 51, 100, 20], 443);

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// The tls12 handshake's two hello records and what the tools said about it.
struct Handshake {
    /// The TLS record holding the ClientHello, header included.
    client_hello: Vec<u8>,
    /// The TLS record holding the ServerHello, header included.
    server_hello: Vec<u8>,
    expected: Value,
}

/// The first TLS record of a direction's bytes.
fn first_record(stream: &[u8]) -> Vec<u8> {
    assert!(stream.len() >= 5, "no TLS record");
    let len = usize::from(u16::from_be_bytes([stream[3], stream[4]]));
    stream[..5 + len].to_vec()
}

fn tls12() -> Handshake {
    let text = std::fs::read_to_string(common::pcaps_dir().join("expected.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    let expected = all
        .into_iter()
        .find(|e| e["file"] == "tls12.pcap")
        .expect("tls12.pcap in expected.json");
    let client_port = expected["client_port"].as_u64().unwrap() as u16;
    let mut reader = CaptureReader::open(&common::pcaps_dir().join("tls12.pcap")).unwrap();
    let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
    while let Some(packet) = reader.next_packet().unwrap() {
        let Ok(seg) = decode::decode(packet.link_type, packet.data) else {
            continue;
        };
        // Loopback, one connection, no loss: capture order is stream order.
        if seg.sport == client_port {
            from_client.extend_from_slice(seg.payload);
        } else {
            from_server.extend_from_slice(seg.payload);
        }
    }
    let client_hello = first_record(&from_client);
    let server_hello = first_record(&from_server);
    assert_eq!(
        (client_hello[0], client_hello[5]),
        (22, 1),
        "ClientHello record"
    );
    assert_eq!(
        (server_hello[0], server_hello[5]),
        (22, 2),
        "ServerHello record"
    );
    Handshake {
        client_hello,
        server_hello,
        expected,
    }
}

/// An Ethernet + IPv4 + TCP frame (checksums zero: the tool does not check them).
fn frame(from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = if from_client {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (40 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// One connection's frames, with each direction's initial sequence number.
struct Conn {
    frames: Vec<Vec<u8>>,
    client_isn: u32,
    server_isn: u32,
}

impl Conn {
    /// SYN, SYN-ACK, ACK.
    fn open(client_isn: u32, server_isn: u32) -> Conn {
        let mut c = Conn {
            frames: Vec::new(),
            client_isn,
            server_isn,
        };
        let (cs, ss) = (client_isn.wrapping_add(1), server_isn.wrapping_add(1));
        c.frames.push(frame(true, client_isn, 0, SYN, &[]));
        c.frames.push(frame(false, server_isn, cs, SYN | ACK, &[]));
        c.frames.push(frame(true, cs, ss, ACK, &[]));
        c
    }

    /// Data at `offset` bytes into a direction's stream.
    fn data(&mut self, from_client: bool, offset: usize, payload: &[u8]) {
        let frame = self.data_frame(from_client, offset, payload);
        self.frames.push(frame);
    }

    fn data_frame(&self, from_client: bool, offset: usize, payload: &[u8]) -> Vec<u8> {
        let (isn, peer) = if from_client {
            (self.client_isn, self.server_isn)
        } else {
            (self.server_isn, self.client_isn)
        };
        let seq = isn.wrapping_add(1).wrapping_add(offset as u32);
        frame(from_client, seq, peer.wrapping_add(1), PSH | ACK, payload)
    }
}

/// Feed frames to one engine, as `tlscensus read` would from a capture file.
fn run_frames(config: Config, frames: impl IntoIterator<Item = Vec<u8>>) -> (Vec<Record>, Stats) {
    let mut engine = Engine::new(config);
    engine.begin_file("adversarial.pcap");
    let mut records = Vec::new();
    for (i, data) in frames.into_iter().enumerate() {
        let packet = Packet {
            ts_nanos: 1_700_000_000_000_000_000 + i as i64 * 1_000,
            link_type: 1,
            data: &data,
            orig_len: data.len() as u32,
            frame_number: i as u64 + 1,
            interface: None,
            direction: None,
        };
        engine.packet(i as u64, &packet, &mut |e| records.push(e.record));
    }
    engine.finish(&mut |e| records.push(e.record));
    (records, engine.stats())
}

fn run(conn: Conn) -> (Record, Stats) {
    let (mut records, stats) = run_frames(Config::default(), conn.frames);
    assert_eq!(records.len(), 1, "one connection, one record: {records:?}");
    (records.remove(0), stats)
}

/// The record says what the tools said: SNI, highest offered version, negotiated version
/// and cipher.
fn assert_negotiated_as_the_tools_said(record: &Record, hs: &Handshake) {
    let want = &hs.expected;
    assert_eq!(record.outcome, Outcome::Negotiated);
    let ch = record.client_hello.as_ref().expect("ClientHello");
    assert_eq!(ch.sni.as_deref(), want["sni"].as_str());
    assert_eq!(ch.max_version.name(), want["max_offered"].as_str().unwrap());
    assert_server_hello_as_the_tools_said(record, hs);
}

fn assert_server_hello_as_the_tools_said(record: &Record, hs: &Handshake) {
    let want = &hs.expected;
    let sh = record.server_hello.as_ref().expect("ServerHello");
    assert_eq!(
        sh.version.name(),
        want["negotiated_version"].as_str().unwrap()
    );
    assert_eq!(
        format!("{:#06x}", sh.cipher_suite),
        want["cipher_suite"].as_str().unwrap()
    );
}

/// Deterministic xorshift shuffle.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Where the SNI host name sits in the ClientHello record.
fn sni_at(hs: &Handshake) -> usize {
    let sni = hs.expected["sni"].as_str().unwrap().as_bytes();
    hs.client_hello
        .windows(sni.len())
        .position(|w| w == sni)
        .expect("SNI in the ClientHello")
}

/// Peak resident memory of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn sequence_numbers_wrap_inside_both_hellos() {
    let hs = tls12();
    let ch = &hs.client_hello;
    // The client's 2^32 boundary falls 100 bytes into the ClientHello, the server's 3 bytes
    // into the ServerHello.
    let mut conn = Conn::open(u32::MAX - 100, u32::MAX - 3);
    conn.data(true, 0, &ch[..80]);
    conn.data(true, 80, &ch[80..150]);
    conn.data(true, 150, &ch[150..]);
    conn.data(false, 0, &hs.server_hello);
    let (record, stats) = run(conn);
    assert_negotiated_as_the_tools_said(&record, &hs);
    assert_eq!(stats.dropped_segments, 0);
    assert_eq!(stats.out_of_order_segments, 0);

    // The same with the segment after the wrap arriving first.
    let mut conn = Conn::open(u32::MAX - 100, u32::MAX - 3);
    conn.data(true, 80, &ch[80..150]);
    conn.data(true, 150, &ch[150..]);
    conn.data(true, 0, &ch[..80]);
    conn.data(false, 0, &hs.server_hello);
    let (record, stats) = run(conn);
    assert_negotiated_as_the_tools_said(&record, &hs);
    assert_eq!(stats.out_of_order_segments, 2);
    assert_eq!(stats.dropped_segments, 0);
}

#[test]
fn hellos_in_one_byte_segments_in_random_order() {
    let hs = tls12();
    let mut conn = Conn::open(0x8000_0000, 0x1234_5678);
    let mut client: Vec<Vec<u8>> = (0..hs.client_hello.len())
        .map(|i| conn.data_frame(true, i, &hs.client_hello[i..=i]))
        .collect();
    let mut server: Vec<Vec<u8>> = (0..hs.server_hello.len())
        .map(|i| conn.data_frame(false, i, &hs.server_hello[i..=i]))
        .collect();
    shuffle(&mut client, 0x9e37_79b9_7f4a_7c15);
    shuffle(&mut server, 0x2545_f491_4f6c_dd1d);
    conn.frames.extend(client);
    conn.frames.extend(server);
    let (record, stats) = run(conn);
    assert_negotiated_as_the_tools_said(&record, &hs);
    assert_eq!(stats.dropped_segments, 0);
    assert_eq!(stats.retransmitted_segments, 0);
}

#[test]
fn retransmission_with_different_bytes_after_delivery_first_copy_wins() {
    let hs = tls12();
    let at = sni_at(&hs);
    let mut conn = Conn::open(1000, 2000);
    conn.data(true, 0, &hs.client_hello);
    // A retransmission of 40 bytes around the host name, with the name changed.
    let mut forged = hs.client_hello[at - 10..at + 30].to_vec();
    forged[10..14].copy_from_slice(b"evil");
    conn.data(true, at - 10, &forged);
    // And one that repeats the same bytes: a plain retransmission.
    conn.data(true, at - 10, &hs.client_hello[at - 10..at + 30]);
    conn.data(false, 0, &hs.server_hello);
    let (record, stats) = run(conn);
    assert_negotiated_as_the_tools_said(&record, &hs);
    assert_eq!(stats.retransmitted_segments, 2);
    assert_eq!(stats.inconsistent_retransmissions, 1);
}

#[test]
fn overlap_with_held_bytes_first_copy_wins_either_way() {
    let hs = tls12();
    let ch = &hs.client_hello;
    let at = sni_at(&hs);
    let mut forged = ch.clone();
    forged[at..at + 4].copy_from_slice(b"evil");
    let forged_sni =
        String::from_utf8(forged[at..at + hs.expected["sni"].as_str().unwrap().len()].to_vec())
            .unwrap();

    // The genuine tail arrives first (held behind a 10-byte gap), then a forged copy of the
    // whole hello fills the gap: the held, genuine bytes win.
    let mut conn = Conn::open(5000, 6000);
    conn.data(true, 10, &ch[10..]);
    conn.data(true, 0, &forged);
    conn.data(false, 0, &hs.server_hello);
    let (record, stats) = run(conn);
    assert_negotiated_as_the_tools_said(&record, &hs);
    assert_eq!(stats.inconsistent_retransmissions, 1);

    // The forged tail arrives first: then it is the first copy, and it wins. Which copy is
    // genuine cannot be known on the wire; the count says there was a disagreement.
    let mut conn = Conn::open(5000, 6000);
    conn.data(true, 10, &forged[10..]);
    conn.data(true, 0, ch);
    conn.data(false, 0, &hs.server_hello);
    let (record, stats) = run(conn);
    let sni = record.client_hello.as_ref().unwrap().sni.clone();
    assert_eq!(sni.as_deref(), Some(forged_sni.as_str()));
    assert_eq!(stats.inconsistent_retransmissions, 1);
}

#[test]
fn window_missing_inside_the_client_hello_is_incomplete() {
    let hs = tls12();
    let ch = &hs.client_hello;
    let mut conn = Conn::open(77, 88);
    conn.data(true, 0, &ch[..50]);
    conn.data(true, 80, &ch[80..]); // bytes 50..80 never captured
    let (record, _) = run(conn);
    assert_eq!(record.outcome, Outcome::Incomplete);
    assert!(record.client_hello.is_none(), "a hello was guessed");
    assert!(record.server_hello.is_none());
}

#[test]
fn window_missing_before_the_client_hello() {
    let hs = tls12();
    let ch = &hs.client_hello;
    // The first 20 bytes of the client's stream are lost: no byte of it can be read.
    let mut conn = Conn::open(77, 88);
    conn.data(true, 20, &ch[20..]);
    let frames = conn.frames.clone();
    // On a port named with --tls-port the connection is reported anyway: incomplete.
    let mut config = Config::default();
    config.services.tls_ports.insert(SERVER.1);
    let (records, _) = run_frames(config, frames);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Incomplete);
    assert!(records[0].client_hello.is_none());

    // When the server's ServerHello is seen whole, it is reported as seen (README: the
    // ServerHello selected a version and suite), and the ClientHello stays unknown.
    conn.data(false, 0, &hs.server_hello);
    let (record, _) = run(conn);
    assert!(record.client_hello.is_none(), "a hello was guessed");
    assert_server_hello_as_the_tools_said(&record, &hs);
    assert_eq!(record.outcome, Outcome::Negotiated);
}

#[test]
fn window_missing_inside_the_server_hello_is_incomplete() {
    let hs = tls12();
    let sh = &hs.server_hello;
    let mut conn = Conn::open(77, 88);
    conn.data(true, 0, &hs.client_hello);
    conn.data(false, 0, &sh[..30]);
    conn.data(false, 40, &sh[40..]); // bytes 30..40 never captured
    let (record, _) = run(conn);
    // The server did answer, so not no_server_hello; its answer was never seen whole.
    assert_eq!(record.outcome, Outcome::Incomplete);
    assert!(record.server_hello.is_none(), "a ServerHello was guessed");
    let ch = record
        .client_hello
        .as_ref()
        .expect("the ClientHello was whole");
    assert_eq!(ch.sni.as_deref(), hs.expected["sni"].as_str());
}

/// Frames of one direction's stream cut into `mss`-byte segments, made one at a time.
fn segments<'a>(
    conn: &'a Conn,
    from_client: bool,
    start: usize,
    stream: impl Iterator<Item = u8> + 'a,
    mss: usize,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    let mut stream = stream.peekable();
    let mut offset = start;
    std::iter::from_fn(move || {
        stream.peek()?;
        let payload: Vec<u8> = stream.by_ref().take(mss).collect();
        let f = conn.data_frame(from_client, offset, &payload);
        offset += payload.len();
        Some(f)
    })
}

#[test]
fn hello_claiming_16_mib_is_incomplete_in_bounded_memory() {
    // A handshake record whose ClientHello header claims 2^24 - 1 bytes, then 16 MiB more
    // in full-size handshake records. Frames are made one at a time, so the test itself
    // holds next to nothing.
    let mut head = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff];
    head.resize(5 + 0x4000, 0x41);
    let record: Vec<u8> = [0x16, 0x03, 0x01, 0x40, 0x00]
        .into_iter()
        .chain(std::iter::repeat_n(0x41, 0x4000))
        .collect();
    let conn = Conn::open(u32::MAX - 5000, 42);
    let body = head
        .into_iter()
        .chain((0..1024).flat_map(|_| record.clone()));
    let frames = conn
        .frames
        .clone()
        .into_iter()
        .chain(segments(&conn, true, 0, body, 1448));
    let before = peak_rss_kib();
    let (records, stats) = run_frames(Config::default(), frames);
    let after = peak_rss_kib();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Incomplete);
    assert!(records[0].client_hello.is_none());
    assert_eq!(stats.dropped_segments, 0);
    if let (Some(before), Some(after)) = (before, after) {
        assert!(
            after - before < 12 << 10,
            "peak memory grew by {} MiB",
            (after - before) >> 10
        );
    }
}

#[test]
fn endless_handshake_records_do_not_grow_memory() {
    let hs = tls12();
    // After the real hellos, each side sends 100 000 records, each holding one empty
    // handshake message of an unassigned type (99).
    let tiny = [0x16, 0x03, 0x03, 0x00, 0x04, 99, 0, 0, 0];
    let endless = || (0..100_000).flat_map(move |_| tiny);
    let mut conn = Conn::open(3_000_000_000, 4_000_000_000);
    conn.data(true, 0, &hs.client_hello);
    conn.data(false, 0, &hs.server_hello);
    let (ch_len, sh_len) = (hs.client_hello.len(), hs.server_hello.len());
    let frames = conn
        .frames
        .clone()
        .into_iter()
        .chain(segments(&conn, true, ch_len, endless(), 1448))
        .chain(segments(&conn, false, sh_len, endless(), 1448));
    let before = peak_rss_kib();
    let (records, stats) = run_frames(Config::default(), frames);
    let after = peak_rss_kib();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_negotiated_as_the_tools_said(&records[0], &hs);
    assert_eq!(stats.dropped_segments, 0);
    if let (Some(before), Some(after)) = (before, after) {
        assert!(
            after - before < 12 << 10,
            "peak memory grew by {} MiB",
            (after - before) >> 10
        );
    }
}
