//! Captures that hold only part of what was on the wire: a short snap length
//! (`pcaps/snaplen96.pcap`, `tcpdump -s 96`, made by `pcaps/make_snaplen.sh`) and files cut
//! in the middle of a packet. A hello that could not be seen whole is `incomplete`, and no
//! version or cipher is guessed for it; hellos before the damage are read as if nothing
//! happened. Expected values come from the tools that made the captures
//! (`pcaps/expected_snaplen.json`, `pcaps/expected.json`).

mod common;

use std::path::PathBuf;

use serde_json::Value;
use tlscensus::decode;
use tlscensus::record::{Outcome, Record};
use tlscensus::source::CaptureReader;

fn expected(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(common::pcaps_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn record_of(records: &[Record], client_port: u64) -> Option<&Record> {
    records
        .iter()
        .find(|r| u64::from(r.client.port) == client_port)
}

/// A copy of `pcaps/NAME` cut after `len` bytes, in the temporary directory.
fn cut_copy(name: &str, len: usize) -> PathBuf {
    let bytes = std::fs::read(common::pcaps_dir().join(name)).unwrap();
    let path =
        std::env::temp_dir().join(format!("tlscensus-cut-{}-{len}-{name}", std::process::id()));
    std::fs::write(&path, &bytes[..len]).unwrap();
    path
}

/// The byte range in the file of the first frame carrying TCP payload from `sport` whose
/// stream offset is `nth` among that port's data frames (0 = first).
fn data_frame_range(name: &str, sport: u16, nth: usize) -> (usize, usize) {
    let mut reader = CaptureReader::open(&common::pcaps_dir().join(name)).unwrap();
    let mut seen = 0;
    loop {
        let start = reader.bytes_consumed() as usize;
        let packet = reader.next_packet().unwrap().expect("the frame exists");
        let Ok(seg) = decode::decode(packet.link_type, packet.data) else {
            continue;
        };
        if seg.sport == sport && !seg.payload.is_empty() {
            if seen == nth {
                return (start, reader.bytes_consumed() as usize);
            }
            seen += 1;
        }
    }
}

fn assert_matches_tools(record: &Record, want: &Value) {
    let scenario = &want["scenario"];
    assert_eq!(record.outcome, Outcome::Negotiated, "{scenario}");
    let ch = record.client_hello.as_ref().expect("ClientHello");
    assert_eq!(ch.sni.as_deref(), want["sni"].as_str(), "{scenario}");
    let sh = record.server_hello.as_ref().expect("ServerHello");
    assert_eq!(
        sh.version.name(),
        want["negotiated_version"].as_str().unwrap(),
        "{scenario}"
    );
    assert_eq!(
        format!("{:#06x}", sh.cipher_suite),
        want["cipher_suite"].as_str().unwrap(),
        "{scenario}"
    );
}

#[test]
fn snap_length_96_is_incomplete_never_guessed() {
    let want = &expected("expected_snaplen.json")[0];
    let file = common::pcaps_dir().join(want["file"].as_str().unwrap());
    // The file really is cut: every frame that carried TLS bytes kept at most the snap
    // length, less than it had on the wire.
    let snaplen = want["snaplen"].as_u64().unwrap() as usize;
    let mut reader = CaptureReader::open(&file).unwrap();
    let mut cut = 0;
    while let Some(p) = reader.next_packet().unwrap() {
        assert!(p.data.len() <= snaplen);
        if (p.orig_len as usize) > p.data.len() {
            cut += 1;
        }
    }
    assert!(cut >= 2, "the hellos' frames were cut ({cut})");

    let run = common::run_file(&file);
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert!(run.stats.truncated_frames >= 2);
    assert_eq!(run.records.len(), 1, "{:?}", run.records);
    let record = &run.records[0];
    assert_eq!(u64::from(record.client.port), want["client_port"]);
    assert_eq!(u64::from(record.server.port), want["server_port"]);
    // s_client negotiated TLS 1.2 with a cipher, but the capture cannot show it.
    assert_eq!(want["negotiated_version"], "TLSv1.2");
    assert_eq!(record.outcome, Outcome::Incomplete);
    assert!(record.client_hello.is_none(), "a ClientHello was guessed");
    assert!(record.server_hello.is_none(), "a ServerHello was guessed");
    assert_eq!(record.handshake_us, None);
}

#[test]
fn file_cut_inside_a_hello_split_over_segments() {
    // split_hello.pcap: the ClientHello came in segments of 3, 100, 100 and 73 bytes. Cut
    // the file halfway through the third: 103 bytes of the hello were captured.
    let want = expected("expected.json")
        .into_iter()
        .find(|e| e["file"] == "split_hello.pcap")
        .unwrap();
    let port = want["client_port"].as_u64().unwrap();
    let (start, end) = data_frame_range("split_hello.pcap", port as u16, 2);
    let path = cut_copy("split_hello.pcap", (start + end) / 2);
    let run = common::run_file(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!(run.errors.len(), 1, "the cut is reported");
    assert!(run.errors[0].to_string().contains("ends in the middle"));
    let record = record_of(&run.records, port).expect("the cut connection is reported");
    assert_eq!(record.outcome, Outcome::Incomplete);
    assert!(record.client_hello.is_none(), "a ClientHello was guessed");
    assert!(record.server_hello.is_none());

    // The whole file, for contrast: the tools' handshake.
    let run = common::run_file(&common::pcaps_dir().join("split_hello.pcap"));
    assert_matches_tools(record_of(&run.records, port).unwrap(), &want);
}

#[test]
fn file_cut_mid_packet_keeps_the_hellos_before_the_cut() {
    // multi_version.pcapng holds five handshakes one after another (client ports
    // 50050..50054). Cut it in the middle of the fourth connection's ClientHello frame.
    let entries: Vec<Value> = expected("expected.json")
        .into_iter()
        .filter(|e| e["file"] == "multi_version.pcapng")
        .collect();
    assert_eq!(entries.len(), 5);
    let cut_port = entries[3]["client_port"].as_u64().unwrap();
    let (start, end) = data_frame_range("multi_version.pcapng", cut_port as u16, 0);
    let path = cut_copy("multi_version.pcapng", (start + end) / 2);
    let run = common::run_file(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!(run.errors.len(), 1, "the cut is reported");
    for want in &entries[..3] {
        let port = want["client_port"].as_u64().unwrap();
        let record = record_of(&run.records, port).expect("a connection before the cut");
        assert_matches_tools(record, want);
    }
    // The cut connection's hello frame was not read at all: nothing may be claimed for it.
    if let Some(record) = record_of(&run.records, cut_port) {
        assert!(record.client_hello.is_none() && record.server_hello.is_none());
        assert_eq!(record.outcome, Outcome::Incomplete);
    }
    let last = entries[4]["client_port"].as_u64().unwrap();
    assert!(record_of(&run.records, last).is_none(), "after the cut");
}
