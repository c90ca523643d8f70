//! TLS inside QUIC Initial packets: every ClientHello and ServerHello that tshark decrypted
//! and dissected in the corpus (`truth/*.jsonl` entries with `"quic": true`) must be in our
//! records, on the right connection, with tshark's versions, SNI, cipher suites, extensions
//! and ALPN. tshark 4.0 decrypts Initials with its own implementation of RFC 9001/9369, so
//! this holds our key derivation, header protection, AEAD and CRYPTO reassembly against an
//! independent one.

mod common;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use tlscensus::pipeline::Reading;
use tlscensus::record::Version;

/// One QUIC connection as tshark saw it (by `udp_stream`).
#[derive(Debug, Default)]
struct TruthConnection {
    client: Option<Endpoint>,
    server: Option<Endpoint>,
    client_hello: Option<Value>,
    /// The last ServerHello that is not a HelloRetryRequest.
    server_hello: Option<Value>,
    hrr: bool,
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn version_name(v: &Value) -> String {
    Version(hex(v) as u16).name().into_owned()
}

fn hex_list(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().map(hex).collect())
        .unwrap_or_default()
}

fn is_grease(v: u64) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// An address and port as text and number.
type Endpoint = (String, u64);

fn endpoint(v: &Value, ip: &str, port: &str) -> Endpoint {
    (
        v[ip].as_str().unwrap().to_string(),
        v[port].as_u64().unwrap(),
    )
}

fn load_truth(local_path: &str) -> BTreeMap<u64, TruthConnection> {
    let path = common::corpus_dir()
        .join("truth")
        .join(format!("{local_path}.jsonl"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut connections: BTreeMap<u64, TruthConnection> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let msg: Value = serde_json::from_str(line).unwrap();
        if msg["transport"] != "udp" || msg["quic"] != true {
            continue;
        }
        let kind = msg["msg"].as_str().unwrap_or_default();
        let conn = connections
            .entry(msg["udp_stream"].as_u64().unwrap())
            .or_default();
        let (src, dst) = (
            endpoint(&msg, "src", "sport"),
            endpoint(&msg, "dst", "dport"),
        );
        match kind {
            "client_hello" => {
                conn.client.get_or_insert(src);
                conn.server.get_or_insert(dst);
                conn.client_hello.get_or_insert(msg);
            }
            "server_hello" | "hello_retry_request" => {
                conn.client.get_or_insert(dst);
                conn.server.get_or_insert(src);
                if kind == "hello_retry_request" || msg["hrr"] == true {
                    conn.hrr = true;
                } else {
                    conn.server_hello = Some(msg);
                }
            }
            _ => {}
        }
    }
    connections
}

/// Compare one capture; returns (mismatches, client hellos compared, server hellos compared).
fn check_file(local_path: &str) -> (Vec<String>, usize, usize) {
    let truth = load_truth(local_path);
    if truth.is_empty() {
        return (Vec::new(), 0, 0);
    }
    let run = common::run_file(&common::corpus_dir().join(local_path));
    let records: Vec<Value> = run
        .records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .filter(|r| r["transport"] == "udp")
        .collect();
    let mut by_tuple: HashMap<(Endpoint, Endpoint), &Value> = HashMap::new();
    for r in &records {
        let key = (
            endpoint(&r["client"], "ip", "port"),
            endpoint(&r["server"], "ip", "port"),
        );
        by_tuple.entry(key).or_insert(r);
    }
    let (mut problems, mut hellos, mut server_hellos) = (Vec::new(), 0, 0);
    for (id, conn) in &truth {
        let (Some(client), Some(server)) = (&conn.client, &conn.server) else {
            continue;
        };
        let label = format!(
            "{local_path} udp.stream {id} {}:{} -> {}:{}",
            client.0, client.1, server.0, server.1
        );
        let Some(record) = by_tuple.get(&(client.clone(), server.clone())) else {
            problems.push(format!("{label}: no QUIC record for this connection"));
            continue;
        };
        let mut expect = |what: &str, want: Value, got: &Value| {
            if &want != got {
                problems.push(format!("{label}: {what}: tshark {want}, ours {got}"));
            }
        };
        if let Some(ch) = &conn.client_hello {
            hellos += 1;
            let ours = &record["client_hello"];
            let offered: Vec<u64> = hex_list(&ch["supported_versions"]);
            let max = offered.iter().copied().filter(|v| !is_grease(*v)).max();
            let max = max.map_or_else(
                || version_name(&ch["client_version"]),
                |v| Version(v as u16).name().into_owned(),
            );
            let versions: Vec<String> = offered
                .iter()
                .filter(|v| !is_grease(**v))
                .map(|v| Version(*v as u16).name().into_owned())
                .collect();
            expect("max_version", Value::from(max), &ours["max_version"]);
            expect(
                "legacy_version",
                Value::from(version_name(&ch["client_version"])),
                &ours["legacy_version"],
            );
            expect(
                "supported_versions",
                Value::from(versions),
                &ours["supported_versions"],
            );
            expect("sni", ch["sni"].clone(), &ours["sni"]);
            expect(
                "cipher_suites",
                Value::from(hex_list(&ch["cipher_suites"])),
                &ours["cipher_suites"],
            );
            expect("extensions", ch["extensions"].clone(), &ours["extensions"]);
            expect("alpn", ch["alpn"].clone(), &ours["alpn"]);
            expect(
                "supported_groups",
                Value::from(hex_list(&ch["supported_groups"])),
                &ours["supported_groups"],
            );
            let ja4 = ours["ja4"].as_str().unwrap_or_default();
            expect(
                "JA4 transport",
                Value::from("q"),
                &Value::from(ja4.get(..1).unwrap_or_default()),
            );
        }
        if let Some(sh) = &conn.server_hello {
            server_hellos += 1;
            let ours = &record["server_hello"];
            expect(
                "selected version",
                Value::from(version_name(&sh["selected_version"])),
                &ours["version"],
            );
            expect(
                "cipher_suite",
                Value::from(hex(&sh["cipher_suite"])),
                &ours["cipher_suite"],
            );
            expect(
                "server extensions",
                sh["extensions"].clone(),
                &ours["extensions"],
            );
            let alpn = sh["alpn"].as_array().and_then(|a| a.first()).cloned();
            expect("server alpn", alpn.unwrap_or(Value::Null), &ours["alpn"]);
        }
        if conn.hrr {
            expect("hrr", Value::from(true), &record["server_hello"]["hrr"]);
        }
        expect("transport", Value::from("udp"), &record["transport"]);
        let service = if server.1 == 443 {
            "https/quic".to_string()
        } else {
            format!("udp/{}", server.1)
        };
        expect("service", Value::from(service), &record["service"]);
    }
    (problems, hellos, server_hellos)
}

#[test]
fn every_quic_hello_tshark_decoded_is_in_our_records() {
    let (mut problems, mut hellos, mut server_hellos, mut files) = (Vec::new(), 0, 0, 0);
    for (local_path, _) in common::manifest() {
        let (found, n, m) = check_file(&local_path);
        hellos += n;
        server_hellos += m;
        files += usize::from(n + m > 0);
        problems.extend(found);
    }
    eprintln!(
        "compared {hellos} QUIC ClientHellos and {server_hellos} ServerHellos in {files} files"
    );
    assert!(
        hellos > 500 && server_hellos > 20,
        "too few hellos compared"
    );
    assert!(
        problems.is_empty(),
        "{} mismatches against tshark:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Handshakes made by a real QUIC stack (aioquic, `pcaps/make_quic.sh`): QUIC v1 and v2, a
/// restricted cipher suite, and a ClientHello spread over several Initial packets. Expected
/// values are what each client was told to offer and what aioquic says was negotiated
/// (`pcaps/expected_quic.json`).
#[test]
fn aioquic_handshakes_on_loopback() {
    let run = common::run_file(&common::pcaps_dir().join("quic.pcap"));
    assert_eq!(run.stats.quic_undecryptable, 0);
    check_aioquic_records(&run.records, "");
}

/// The records of the aioquic capture (or of a copy of it) against what each client was
/// told to offer and what aioquic negotiated (`pcaps/expected_quic.json`).
fn check_aioquic_records(records: &[tlscensus::record::Record], context: &str) {
    let facts = common::expected_script("expected_quic.json");
    let records: Vec<Value> = records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        facts.len(),
        "{context}: one record per handshake"
    );
    for fact in &facts {
        let name = &format!("{context} {}", fact["name"].as_str().unwrap());
        let record = records
            .iter()
            .find(|r| r["client"]["port"] == fact["client_port"])
            .unwrap_or_else(|| panic!("{name}: no record"));
        let ch = &record["client_hello"];
        let sh = &record["server_hello"];
        assert_eq!(record["transport"], "udp", "{name}");
        assert_eq!(record["server"]["port"], fact["server_port"], "{name}");
        let service = match fact["server_port"].as_u64().unwrap() {
            443 => "https/quic".to_string(),
            port => format!("udp/{port}"),
        };
        assert_eq!(record["service"], Value::from(service), "{name}");
        assert_eq!(record["outcome"], "negotiated", "{name}");
        assert_eq!(ch["sni"], fact["sni"], "{name}");
        assert_eq!(ch["alpn"], fact["alpn_offered"], "{name}");
        assert_eq!(ch["max_version"], "TLSv1.3", "{name}");
        if !fact["cipher_suites_offered"].is_null() {
            assert_eq!(ch["cipher_suites"], fact["cipher_suites_offered"], "{name}");
        }
        assert_eq!(sh["version"], "TLSv1.3", "{name}");
        assert_eq!(sh["cipher_suite"], fact["cipher_suite"], "{name}");
        // JA4.md: `q` for QUIC, then the TLS version, `d` for a domain SNI.
        assert!(
            ch["ja4"].as_str().unwrap().starts_with("q13d"),
            "{name}: {}",
            ch["ja4"]
        );
    }
}

/// One stream of FoxIO's snapshot (`tests/corpus/foxio/expected/*.snap`): the YAML their
/// Rust `ja4` tool printed for the capture.
#[derive(Debug, Default)]
struct FoxioStream {
    transport: String,
    client_port: u64,
    ja4: Option<String>,
    ja4s: Option<String>,
}

fn foxio_streams(snapshot: &str) -> Vec<FoxioStream> {
    let mut streams: Vec<FoxioStream> = Vec::new();
    for line in snapshot.lines() {
        if line.starts_with("- stream:") {
            streams.push(FoxioStream::default());
        }
        let Some(stream) = streams.last_mut() else {
            continue;
        };
        let Some((key, value)) = line.trim_start_matches("- ").trim().split_once(": ") else {
            continue;
        };
        match key {
            "transport" => stream.transport = value.to_string(),
            "src_port" => stream.client_port = value.parse().unwrap(),
            "ja4" => stream.ja4 = Some(value.to_string()),
            "ja4s" => stream.ja4s = Some(value.to_string()),
            _ => {}
        }
    }
    streams
}

/// JA4 and JA4S of FoxIO's own QUIC captures equal the values FoxIO's `ja4` tool published
/// for them (its insta snapshots), TCP streams included where the capture has them.
#[test]
fn ja4_equals_foxio_published_values() {
    let dir = common::corpus_dir().join("foxio");
    let mut compared = 0;
    for name in [
        "quic-tls-handshake.pcapng",
        "quic-with-several-tls-frames.pcapng",
        "chrome-cloudflare-quic-with-secrets.pcapng",
    ] {
        let snapshot =
            std::fs::read_to_string(dir.join("expected").join(format!("ja4__insta@{name}.snap")))
                .unwrap();
        let run = common::run_file(&dir.join("pcap").join(name));
        let records: Vec<Value> = run
            .records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        for stream in foxio_streams(&snapshot) {
            let Some(ja4) = &stream.ja4 else { continue };
            let record = records
                .iter()
                .find(|r| {
                    r["transport"] == stream.transport.as_str()
                        && r["client"]["port"] == stream.client_port
                })
                .unwrap_or_else(|| panic!("{name}: no record for {stream:?}"));
            assert_eq!(record["client_hello"]["ja4"], ja4.as_str(), "{name}");
            if let Some(ja4s) = &stream.ja4s {
                assert_eq!(record["server_hello"]["ja4s"], ja4s.as_str(), "{name}");
            }
            compared += 1;
        }
    }
    assert_eq!(
        compared, 4,
        "FoxIO's snapshots name four streams with a JA4"
    );
}

/// The census counts QUIC beside TCP: Chrome's two connections to cloudflare-quic.com in
/// FoxIO's capture (one over TCP, one over QUIC, both port 443 as FoxIO's snapshot lists
/// them) are one client with two services, `https` and `https/quic`, each negotiated.
#[test]
fn census_counts_quic_beside_tcp() {
    let path = common::corpus_dir().join("foxio/pcap/chrome-cloudflare-quic-with-secrets.pcapng");
    let run = common::run_file(&path);
    let mut census = tlscensus::census::Census::default();
    for record in &run.records {
        census.add(record);
    }
    let client: std::net::IpAddr = "2001:db8:1::1".parse().unwrap();
    let (_, counts) = census
        .clients
        .iter()
        .find(|(key, _)| key.ip == client)
        .expect("the client is in the census");
    let services: Vec<&str> = counts.services.keys().map(String::as_str).collect();
    assert_eq!(services, ["https", "https/quic"]);
    for service in counts.services.values() {
        assert_eq!(service.connections, 1);
        assert_eq!(service.negotiated.get("TLSv1.3"), Some(1));
    }
}

/// The frames of a classic pcap file: (record header offset, captured length).
fn pcap_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((at, caplen));
        at += 16 + caplen;
    }
    out
}

/// Damaged Initials are counted and never panic: the aioquic capture (Ethernet, IPv4, UDP:
/// the datagram starts at byte 42 of a frame) with one byte flipped 100 bytes into every
/// datagram, inside its first packet's protected payload (RFC 9001 5.3: the AEAD must then
/// refuse it), then with every frame cut to 200 bytes (a snap length).
#[test]
fn damaged_initials_are_counted() {
    let original = std::fs::read(common::pcaps_dir().join("quic.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut flipped = original.clone();
    for (at, caplen) in pcap_records(&original) {
        if caplen > 42 + 100 {
            flipped[at + 16 + 42 + 100] ^= 0x01;
        }
    }
    let path = dir.path().join("flipped.pcap");
    std::fs::write(&path, &flipped).unwrap();
    let run = common::run_file(&path);
    assert!(run.stats.quic_initials > 0);
    assert!(run.stats.quic_undecryptable > 0);
    assert!(
        run.records.is_empty(),
        "no hello decrypts: {:?}",
        run.records
    );

    let mut cut = original[..24].to_vec();
    for (at, caplen) in pcap_records(&original) {
        let keep = caplen.min(200);
        let mut header = original[at..at + 16].to_vec();
        header[8..12].copy_from_slice(&(keep as u32).to_le_bytes());
        cut.extend_from_slice(&header);
        cut.extend_from_slice(&original[at + 16..at + 16 + keep]);
    }
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &cut).unwrap();
    let run = common::run_file(&path);
    assert!(run.stats.quic_short > 0, "{:?}", run.stats);
    assert!(run.stats.truncated_frames > 0);
    assert!(run.records.iter().all(|r| r.client_hello.is_none()));
}

/// RFC 1071: the IPv4 header checksum.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// QUIC datagrams that rode in IP fragments go through the reassembler to the QUIC engine:
/// the aioquic capture with every datagram over 512 bytes of IPv4 payload (each client
/// Initial, padded to 1,200 bytes per RFC 9000 14.1) cut into 512-byte fragments per RFC 791
/// (offsets in 8-byte units, More Fragments on all but the last, Don't Fragment cleared),
/// sent last fragment first. The records must still be what aioquic says, whatever the
/// threads and the way of reading.
#[test]
fn quic_in_ip_fragments_is_reassembled() {
    const PIECE: usize = 512;
    let original = std::fs::read(common::pcaps_dir().join("quic.pcap")).unwrap();
    let mut fragmented = original[..24].to_vec();
    let mut datagrams_cut = 0u64;
    let mut fragment_frames = 0u64;
    for (at, caplen) in pcap_records(&original) {
        let header = &original[at..at + 16];
        let frame = &original[at + 16..at + 16 + caplen];
        // Ethernet (14 bytes), then IPv4 without options (the capture's every frame).
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(frame[14], 0x45);
        let payload = &frame[34..];
        if payload.len() <= PIECE {
            fragmented.extend_from_slice(header);
            fragmented.extend_from_slice(frame);
            continue;
        }
        datagrams_cut += 1;
        let pieces: Vec<(usize, &[u8])> = payload
            .chunks(PIECE)
            .enumerate()
            .map(|(i, piece)| (i * PIECE, piece))
            .collect();
        for &(offset, piece) in pieces.iter().rev() {
            let more = offset + piece.len() < payload.len();
            let mut ip = frame[14..34].to_vec();
            ip[2..4].copy_from_slice(&((20 + piece.len()) as u16).to_be_bytes());
            let flags_offset = (u16::from(more) << 13) | (offset / 8) as u16;
            ip[6..8].copy_from_slice(&flags_offset.to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            let checksum = ipv4_checksum(&ip);
            ip[10..12].copy_from_slice(&checksum.to_be_bytes());
            let len = (14 + 20 + piece.len()) as u32;
            fragmented.extend_from_slice(&header[..8]);
            fragmented.extend_from_slice(&len.to_le_bytes());
            fragmented.extend_from_slice(&len.to_le_bytes());
            fragmented.extend_from_slice(&frame[..14]);
            fragmented.extend_from_slice(&ip);
            fragmented.extend_from_slice(piece);
            fragment_frames += 1;
        }
    }
    assert!(datagrams_cut >= 4, "every client Initial is cut");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quic_fragmented.pcap");
    std::fs::write(&path, &fragmented).unwrap();
    for (threads, reading) in [
        (1, Reading::OneReader),
        (2, Reading::OneReader),
        (2, Reading::Map),
        (3, Reading::Split),
    ] {
        let context = format!("{threads} threads, {reading:?}");
        let run = common::run_reading(
            std::slice::from_ref(&path),
            Default::default(),
            threads,
            reading,
        );
        assert!(run.errors.is_empty(), "{context}: {:?}", run.errors);
        assert_eq!(run.stats.fragments.fragments, fragment_frames, "{context}");
        assert_eq!(run.stats.fragments.reassembled, datagrams_cut, "{context}");
        assert_eq!(run.stats.quic_undecryptable, 0, "{context}");
        check_aioquic_records(&run.records, &context);
    }
}

/// `report --from` reads records back from their lines (`sink::record_in`): a QUIC record
/// read back writes the same line, `transport` included, and a line from before QUIC (no
/// `transport` key) reads as TCP.
#[test]
fn quic_records_read_back_to_the_same_line() {
    use tlscensus::sink::record_in;
    let run = common::run_file(&common::pcaps_dir().join("quic.pcap"));
    assert!(!run.records.is_empty());
    for record in &run.records {
        let line = serde_json::to_string(record).unwrap();
        let back = record_in::parse(&line).unwrap();
        assert_eq!(back.transport, "udp");
        assert_eq!(serde_json::to_string(&back).unwrap(), line);
        let mut old: serde_json::Map<String, Value> = serde_json::from_str(&line).unwrap();
        old.remove("transport");
        let old_line = serde_json::to_string(&old).unwrap();
        assert_eq!(record_in::parse(&old_line).unwrap().transport, "tcp");
        let other = line.replace(r#""transport":"udp""#, r#""transport":"sctp""#);
        assert!(record_in::parse(&other).is_err(), "an unknown transport");
    }
}
