//! OpenVPN over TCP: real captures → our reader and decoder → per-direction reassembly →
//! [`OpenVpnStream`] → [`TlsStream`], checked against tshark's dissection of the same hellos
//! (`tests/corpus/truth/*.jsonl`, an independent implementation).
//!
//! Also: every truncation and random garbage must never panic.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;
use tlscensus::proto::openvpn::{Detect, End, OpenVpnStream};
use tlscensus::source::CaptureReader;
use tlscensus::tls::hello::{ClientHello, ServerHello};
use tlscensus::tls::stream::{End as TlsEnd, Event, TlsStream};

/// The corpus captures holding OpenVPN over TCP.
const FILES: &[&str] = &[
    "nDPI/tests/cfgs/default/pcap/openvpn.pcap",
    "nDPI/tests/cfgs/default/pcap/openvpn_nohmac_tcp.pcapng",
    "nDPI/tests/cfgs/default/pcap/443-opvn.pcap",
    "mercury/unit_tests/pcaps/openvpn_tcp_multi.pcap",
];

type Endpoint = (IpAddr, u16);

/// One direction of a TCP connection: (seq, payload) as captured, plus the SYN's seq.
#[derive(Default)]
struct Direction {
    isn: Option<u32>,
    segments: Vec<(u32, Vec<u8>)>,
}

impl Direction {
    /// The direction's bytes in sequence order, retransmissions and overlaps removed. These
    /// captures have no holes; a hole would fail the test.
    fn bytes(&self) -> Vec<u8> {
        let Some(first) = self.segments.first() else {
            return Vec::new();
        };
        let base = self.isn.map_or(first.0, |isn| isn.wrapping_add(1));
        let mut segments: Vec<(i64, &[u8])> = self
            .segments
            .iter()
            .map(|(seq, p)| (i64::from(seq.wrapping_sub(base) as i32), p.as_slice()))
            .collect();
        segments.sort_by_key(|(rel, _)| *rel);
        let mut out = Vec::new();
        for (rel, payload) in segments {
            let next = out.len() as i64;
            assert!(rel <= next, "hole in the capture at offset {next}");
            let skip = (next - rel) as usize;
            if skip < payload.len() {
                out.extend_from_slice(&payload[skip..]);
            }
        }
        out
    }
}

/// Every TCP direction of a capture, read with the crate's own reader and decoder.
fn directions(rel: &str) -> BTreeMap<(Endpoint, Endpoint), Direction> {
    let path = common::corpus_dir().join(rel);
    let mut reader = CaptureReader::open(&path).unwrap();
    let mut dirs: BTreeMap<(Endpoint, Endpoint), Direction> = BTreeMap::new();
    while let Some(packet) = reader.next_packet().unwrap() {
        let Ok(seg) = tlscensus::decode::decode(packet.link_type, packet.data) else {
            continue;
        };
        let dir = dirs
            .entry(((seg.src, seg.sport), (seg.dst, seg.dport)))
            .or_default();
        if seg.flags.syn {
            dir.isn = Some(seg.seq);
        }
        if !seg.payload.is_empty() {
            assert!(!seg.payload_truncated);
            dir.segments.push((seg.seq, seg.payload.to_vec()));
        }
    }
    dirs
}

/// What one direction gave: the OpenVPN stream's end state and the TLS hellos in it.
#[derive(Default)]
struct Seen {
    end: Option<End>,
    hmac: Option<usize>,
    tls_bytes: usize,
    /// Where the TLS parser stopped: at the first encrypted record when the unwrapped bytes
    /// are exact, whole records and all.
    tls_end: Option<TlsEnd>,
    client_hellos: Vec<ClientHello>,
    server_hellos: Vec<ServerHello>,
}

/// Unwrap one direction's bytes, fed in pieces of `piece` bytes (0: all at once).
fn unwrap(bytes: &[u8], piece: usize) -> (Seen, Vec<u8>) {
    let mut ovpn = OpenVpnStream::new();
    let mut tls_bytes = Vec::new();
    let chunks: Vec<&[u8]> = if piece == 0 {
        vec![bytes]
    } else {
        bytes.chunks(piece).collect()
    };
    for chunk in chunks {
        ovpn.feed(chunk, &mut |b| tls_bytes.extend_from_slice(b));
    }
    let mut seen = Seen {
        end: ovpn.end(),
        hmac: ovpn.hmac_len(),
        tls_bytes: tls_bytes.len(),
        ..Seen::default()
    };
    let mut tls = TlsStream::new();
    tls.feed(&tls_bytes, &mut |event| match event {
        Event::ClientHello(h) => seen.client_hellos.push(*h),
        Event::ServerHello(h) => seen.server_hellos.push(*h),
        _ => {}
    });
    seen.tls_end = tls.end();
    (seen, tls_bytes)
}

fn hex(v: &Value) -> u16 {
    u16::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn hex_list(v: &Value) -> Vec<u16> {
    v.as_array().unwrap().iter().map(hex).collect()
}

fn int_list(v: &Value) -> Vec<u16> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u16)
        .collect()
}

fn check_client_hello(ours: &ClientHello, truth: &Value, what: &str) {
    assert_eq!(ours.legacy_version, hex(&truth["client_version"]), "{what}");
    assert_eq!(ours.record_version, hex(&truth["record_version"]), "{what}");
    assert_eq!(
        ours.supported_versions,
        hex_list(&truth["supported_versions"]),
        "{what}"
    );
    assert_eq!(
        ours.cipher_suites,
        hex_list(&truth["cipher_suites"]),
        "{what}"
    );
    assert_eq!(ours.extensions, int_list(&truth["extensions"]), "{what}");
    assert_eq!(ours.sni.as_deref(), truth["sni"].as_str(), "{what}");
    assert_eq!(
        ours.supported_groups,
        hex_list(&truth["supported_groups"]),
        "{what}"
    );
}

fn check_server_hello(ours: &ServerHello, truth: &Value, what: &str) {
    assert_eq!(ours.legacy_version, hex(&truth["server_version"]), "{what}");
    assert_eq!(
        ours.selected_version(),
        hex(&truth["selected_version"]),
        "{what}"
    );
    assert_eq!(ours.cipher_suite, hex(&truth["cipher_suite"]), "{what}");
    assert_eq!(ours.extensions, int_list(&truth["extensions"]), "{what}");
}

/// tshark's TCP hellos of a capture, by direction (src, dst).
fn truth(rel: &str) -> BTreeMap<(Endpoint, Endpoint), Vec<Value>> {
    let path = common::corpus_dir()
        .join("truth")
        .join(format!("{rel}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out: BTreeMap<(Endpoint, Endpoint), Vec<Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["transport"] != "tcp" {
            continue;
        }
        let end = |ip: &str, port: &str| -> Endpoint {
            (
                v[ip].as_str().unwrap().parse().unwrap(),
                v[port].as_u64().unwrap() as u16,
            )
        };
        out.entry((end("src", "sport"), end("dst", "dport")))
            .or_default()
            .push(v);
    }
    out
}

/// Per file: (OpenVPN connections, client hellos matched, server hellos matched).
fn check_file(rel: &str) -> (usize, usize, usize) {
    let dirs = directions(rel);
    let mut truth = truth(rel);
    let (mut openvpn, mut chs, mut shs) = (0, 0, 0);
    for ((src, dst), dir) in &dirs {
        let bytes = dir.bytes();
        let what = format!("{rel} {src:?} -> {dst:?}");
        let detect = OpenVpnStream::detect(&bytes);
        let expected = truth.remove(&(*src, *dst)).unwrap_or_default();
        if detect != Detect::Yes {
            assert!(
                expected.is_empty(),
                "{what}: tshark found hellos, detect said {detect:?}"
            );
            continue;
        }
        // Count connections once, by their client direction.
        if bytes.get(2).is_some_and(|b| matches!(b >> 3, 1 | 7 | 10)) {
            openvpn += 1;
        }
        let (seen, tls_bytes) = unwrap(&bytes, 0);
        // Any piece size gives the same TLS bytes.
        for piece in [1, 2, 3, 7, 100, 1000] {
            assert_eq!(
                unwrap(&bytes, piece).1,
                tls_bytes,
                "{what}: pieces of {piece}"
            );
        }
        if seen.end == Some(End::Encrypted) {
            assert!(
                expected.is_empty(),
                "{what}: tshark decoded hellos in tls-crypt"
            );
            assert_eq!(seen.tls_bytes, 0);
            continue;
        }
        assert_eq!(seen.end, None, "{what}: stream ended");
        assert!(seen.tls_bytes > 0, "{what}: no TLS");
        assert_eq!(seen.tls_end, Some(TlsEnd::Encrypted), "{what}");
        let (mut ch_i, mut sh_i) = (0, 0);
        for v in &expected {
            match v["msg"].as_str().unwrap() {
                "client_hello" => {
                    let ours = seen.client_hellos.get(ch_i).expect("missing ClientHello");
                    check_client_hello(ours, v, &what);
                    ch_i += 1;
                }
                "server_hello" => {
                    let ours = seen.server_hellos.get(sh_i).expect("missing ServerHello");
                    check_server_hello(ours, v, &what);
                    sh_i += 1;
                }
                other => panic!("{what}: unexpected truth message {other}"),
            }
        }
        chs += ch_i;
        shs += sh_i;
        let truth_ch = expected.iter().filter(|v| v["msg"] == "client_hello");
        let truth_sh = expected.iter().filter(|v| v["msg"] == "server_hello");
        if !expected.is_empty() {
            assert_eq!(seen.client_hellos.len(), truth_ch.count(), "{what}");
            assert_eq!(seen.server_hellos.len(), truth_sh.count(), "{what}");
        }
        eprintln!(
            "{what}: hmac {:?}, {} TLS bytes, {} CH, {} SH",
            seen.hmac,
            seen.tls_bytes,
            seen.client_hellos.len(),
            seen.server_hellos.len()
        );
    }
    assert!(
        truth.is_empty(),
        "{rel}: hellos on no OpenVPN direction: {truth:?}"
    );
    (openvpn, chs, shs)
}

#[test]
fn openvpn_nohmac_tcp() {
    assert_eq!(check_file(FILES[1]), (1, 1, 1));
}

#[test]
fn openvpn_443_tls_auth() {
    assert_eq!(check_file(FILES[2]), (1, 1, 1));
}

#[test]
fn openvpn_tcp_multi() {
    assert_eq!(check_file(FILES[3]), (2, 2, 2));
}

/// `openvpn.pcap` has three OpenVPN TCP connections: the no-HMAC one on 1194 that tshark
/// decoded, one with --tls-auth on port 443 that tshark left alone (it took it for TLS), and
/// one with --tls-crypt on 443.
#[test]
fn openvpn_pcap() {
    let rel = FILES[0];
    assert_eq!(check_file(rel), (3, 1, 1));

    let dirs = directions(rel);
    let ep = |ip: &str, port: u16| -> Endpoint { (ip.parse().unwrap(), port) };

    // --tls-crypt: recognised, nothing to read.
    let client = ep("127.0.0.1", 36138);
    let server = ep("127.0.0.1", 443);
    for key in [(client, server), (server, client)] {
        let (seen, _) = unwrap(&dirs[&key].bytes(), 0);
        assert_eq!(seen.end, Some(End::Encrypted));
    }

    // --tls-auth with HMAC-SHA1 on port 443. Expected values from
    // `tshark -d tcp.port==443,openvpn` (tshark 4.0.17): frames 226 (ClientHello) and 259
    // (ServerHello).
    let client = ep("192.168.1.77", 60140);
    let server = ep("46.101.231.218", 443);
    let (seen, _) = unwrap(&dirs[&(client, server)].bytes(), 0);
    assert_eq!(seen.hmac, Some(20));
    let [ch] = &seen.client_hellos[..] else {
        panic!("one ClientHello expected, got {}", seen.client_hellos.len());
    };
    let ch_truth = serde_json::json!({
        "record_version": "0x0301",
        "client_version": "0x0303",
        "supported_versions": [],
        "sni": null,
        "cipher_suites": [
            "0xc030", "0xc02c", "0xc028", "0xc024", "0xc014", "0xc00a", "0x00a5", "0x00a3",
            "0x00a1", "0x009f", "0x006b", "0x006a", "0x0069", "0x0068", "0x0039", "0x0038",
            "0x0037", "0x0036", "0x0088", "0x0087", "0x0086", "0x0085", "0xc032", "0xc02e",
            "0xc02a", "0xc026", "0xc00f", "0xc005", "0xc02f", "0xc02b", "0xc027", "0xc023",
            "0xc013", "0xc009", "0x00a4", "0x00a2", "0x00a0", "0x009e", "0x0067", "0x0040",
            "0x003f", "0x003e", "0x0033", "0x0032", "0x0031", "0x0030", "0x0045", "0x0044",
            "0x0043", "0x0042", "0xc031", "0xc02d", "0xc029", "0xc025", "0xc00e", "0xc004",
            "0xc012", "0xc008", "0x0016", "0x0013", "0x0010", "0x000d", "0xc00d", "0xc003",
            "0x00ff"
        ],
        "extensions": [11, 10, 13, 15],
        "supported_groups": null
    });
    check_client_hello_partial(ch, &ch_truth);
    let (seen, _) = unwrap(&dirs[&(server, client)].bytes(), 0);
    assert_eq!(seen.hmac, Some(20));
    let [sh] = &seen.server_hellos[..] else {
        panic!("one ServerHello expected, got {}", seen.server_hellos.len());
    };
    check_server_hello(
        sh,
        &serde_json::json!({
            "server_version": "0x0301",
            "selected_version": "0x0301",
            "cipher_suite": "0xc014",
            "extensions": [65281, 11, 15]
        }),
        "openvpn.pcap tls-auth on 443",
    );
}

/// Like [`check_client_hello`], for the hand-copied truth (no supported_groups there).
fn check_client_hello_partial(ours: &ClientHello, truth: &Value) {
    let mut truth = truth.clone();
    truth["supported_groups"] = serde_json::json!(ours
        .supported_groups
        .iter()
        .map(|g| format!("0x{g:04x}"))
        .collect::<Vec<_>>());
    check_client_hello(ours, &truth, "openvpn.pcap tls-auth on 443");
}

/// A small deterministic generator (xorshift64*), enough for garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Feed through both layers; only the absence of panics (and the bounds) is checked.
fn feed_all(pieces: &[&[u8]]) {
    let mut ovpn = OpenVpnStream::new();
    let mut tls = TlsStream::new();
    for piece in pieces {
        let _ = OpenVpnStream::detect(piece);
        ovpn.feed(piece, &mut |b| tls.feed(b, &mut |_| {}));
    }
}

/// Real streams cut at every length, with the rest fed after a one-byte hole, and the first
/// kilobytes with every byte replaced in turn: no panic.
#[test]
fn truncated_and_corrupted_real_streams_never_panic() {
    for rel in FILES {
        for dir in directions(rel).values() {
            let bytes = dir.bytes();
            if OpenVpnStream::detect(&bytes) != Detect::Yes {
                continue;
            }
            let head = &bytes[..bytes.len().min(3000)];
            for cut in 0..=head.len() {
                let _ = OpenVpnStream::detect(&head[..cut]);
                feed_all(&[&head[..cut]]);
                feed_all(&[&head[..cut], head.get(cut + 1..).unwrap_or_default()]);
            }
            let mut rng = Rng(0x0123_4567_89ab_cdef ^ bytes.len() as u64);
            let mut mutated = head.to_vec();
            for i in 0..mutated.len() {
                let old = mutated[i];
                mutated[i] = rng.next() as u8;
                feed_all(&[&mutated]);
                mutated[i] = old;
            }
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let len = rng.below(4096);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the time, start like a client hard reset so the control path is exercised.
        if round % 2 == 0 && data.len() > 16 {
            let reset_len = 14 + rng.below(60);
            data[..2].copy_from_slice(&(reset_len as u16).to_be_bytes());
            data[2] = 7 << 3;
        }
        let mut pieces = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(300));
            pieces.push(&rest[..n]);
            rest = &rest[n..];
        }
        feed_all(&pieces);
    }
}

/// Well-formed framing with random packets inside: the control path sees every opcode, key id
/// and header length.
#[test]
fn random_packets_after_a_valid_reset_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let hmac = [0usize, 16, 20, 32, 64][rng.below(5)];
        let mut reset = vec![7 << 3];
        reset.extend_from_slice(&[5; 8]);
        if hmac > 0 {
            reset.extend(std::iter::repeat_n(0xaa, hmac));
            reset.extend_from_slice(&[0, 0, 0, 1, 0x60, 0, 0, 0]);
        }
        reset.extend_from_slice(&[0, 0, 0, 0, 0]);
        let mut stream = (reset.len() as u16).to_be_bytes().to_vec();
        stream.extend(&reset);
        for _ in 0..rng.below(30) {
            let len = rng.below(200);
            let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len > 9 && rng.below(2) == 0 {
                p[0] = (4 << 3) | (rng.below(2) as u8);
                p[1..9].copy_from_slice(&[5; 8]);
            }
            stream.extend((len as u16).to_be_bytes());
            stream.extend(p);
        }
        let mut ovpn = OpenVpnStream::new();
        ovpn.feed(&stream, &mut |_| {});
        assert_eq!(OpenVpnStream::detect(&stream), Detect::Yes);
    }
}
