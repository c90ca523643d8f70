//! Every TCP hello that tshark decoded in the test corpus must appear in our records, on the
//! right connection, with the same versions, SNI and cipher suites.
//!
//! The expected values are tshark 4.0's dissection (`tests/corpus/truth/*.jsonl`), an
//! independent implementation. Our records are read back as JSON, so the test also holds the
//! public record format.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;
use tlscensus::record::Version;

/// Captures where tshark's dissection differs from the wire for a documented reason, and
/// what we accept there instead of an exact match. Each entry names the file and why.
const ALLOWED: &[(&str, &str)] = &[
    (
        "arkime/tests/pcap/arkime_synthetic.pcap",
        "crafted ServerHello whose supported_versions extension is empty: tshark reads the next \
         extension's type (0x002c) as the version; we report the legacy version field",
    ),
    (
        "mercury/test/afl_data/corner-cases.pcap",
        "crafted ServerHello of length 0: tshark reports version 0x0000; there is no version \
         to report, so we do not invent one",
    ),
    (
        "nDPI/tests/cfgs/default/pcap/tls_cipher_lens.pcap",
        "two ClientHellos whose cipher-suite length overruns the message (tshark flags them \
         Malformed and salvages a truncated list); we report the connection with the hello \
         as unreadable rather than guess its ciphers",
    ),
    (
        "mercury/test/afl_data/encrypted_handshake_cert_false_positive.pcap",
        "crafted ServerHello of length 0 (as above)",
    ),
];

/// One TCP connection as tshark saw it.
#[derive(Debug, Default)]
struct TruthStream {
    client: Option<(String, u64)>,
    server: Option<(String, u64)>,
    first_frame: u64,
    client_hello: Option<Value>,
    /// The last ServerHello that is not a HelloRetryRequest.
    server_hello: Option<Value>,
    hrr: bool,
}

fn version_name(hex: &Value) -> String {
    let code = u16::from_str_radix(hex.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    Version(code).name().into_owned()
}

fn hex_list(values: &Value) -> Vec<u64> {
    values
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_grease(v: u64) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Highest version a tshark ClientHello offered (RFC 8446 4.2.1: supported_versions wins).
fn truth_max_version(ch: &Value) -> String {
    let offered: Vec<u64> = hex_list(&ch["supported_versions"])
        .into_iter()
        .filter(|v| !is_grease(*v))
        .collect();
    match offered.iter().max() {
        Some(max) => Version(*max as u16).name().into_owned(),
        None => version_name(&ch["client_version"]),
    }
}

fn load_truth(local_path: &str) -> BTreeMap<u64, TruthStream> {
    let path = common::corpus_dir()
        .join("truth")
        .join(format!("{local_path}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut streams: BTreeMap<u64, TruthStream> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let msg: Value = serde_json::from_str(line).unwrap();
        if msg["transport"] != "tcp" {
            continue;
        }
        let kind = msg["msg"].as_str().unwrap_or_default();
        if !matches!(
            kind,
            "client_hello" | "server_hello" | "hello_retry_request" | "ssl2_client_hello"
        ) {
            continue;
        }
        let stream = streams
            .entry(msg["tcp_stream"].as_u64().unwrap())
            .or_default();
        let src = (
            msg["src"].as_str().unwrap().to_string(),
            msg["sport"].as_u64().unwrap(),
        );
        let dst = (
            msg["dst"].as_str().unwrap().to_string(),
            msg["dport"].as_u64().unwrap(),
        );
        if stream.first_frame == 0 {
            stream.first_frame = msg["frame"].as_u64().unwrap();
        }
        match kind {
            "client_hello" | "ssl2_client_hello" => {
                stream.client.get_or_insert(src);
                stream.server.get_or_insert(dst);
                stream.client_hello.get_or_insert(msg);
            }
            _ => {
                stream.client.get_or_insert(dst);
                stream.server.get_or_insert(src);
                if kind == "hello_retry_request" || msg["hrr"] == true {
                    stream.hrr = true;
                } else {
                    stream.server_hello = Some(msg);
                }
            }
        }
    }
    streams
}

/// Compare one file; returns the mismatches found, one line each.
fn check_file(local_path: &str) -> (Vec<String>, usize) {
    let truth = load_truth(local_path);
    if truth.is_empty() {
        return (Vec::new(), 0);
    }
    let mut by_tuple = common::corpus_records_by_endpoints(local_path);
    let mut problems = Vec::new();
    for (id, stream) in &truth {
        let (Some(client), Some(server)) = (&stream.client, &stream.server) else {
            continue;
        };
        let label = format!(
            "{local_path} tcp.stream {id} {}:{} -> {}:{}",
            client.0, client.1, server.0, server.1
        );
        let candidates = by_tuple
            .get_mut(&(client.clone(), server.clone()))
            .filter(|c| !c.is_empty());
        let Some(candidates) = candidates else {
            problems.push(format!(
                "{label}: no record for this connection (client/server as tshark saw them)"
            ));
            continue;
        };
        // Port reuse: prefer the record whose first hello is tshark's first hello frame.
        let pick = candidates
            .iter()
            .position(|r| r["capture"]["frame"].as_u64() == Some(stream.first_frame))
            .unwrap_or(0);
        let record = candidates.remove(pick);
        let mut expect = |what: &str, want: Value, got: &Value| {
            if &want != got {
                problems.push(format!("{label}: {what}: tshark {want}, ours {got}"));
            }
        };
        if let Some(ch) = &stream.client_hello {
            let ours = &record["client_hello"];
            if ours.is_null() {
                expect(
                    "ClientHello",
                    Value::from("present"),
                    &Value::from("missing"),
                );
            } else {
                expect(
                    "max_version",
                    Value::from(truth_max_version(ch)),
                    &ours["max_version"],
                );
                expect(
                    "legacy_version",
                    Value::from(version_name(&ch["client_version"])),
                    &ours["legacy_version"],
                );
                if ch["msg"] == "client_hello" {
                    expect("sni", ch["sni"].clone(), &ours["sni"]);
                    expect(
                        "cipher_suites",
                        Value::from(hex_list(&ch["cipher_suites"])),
                        &ours["cipher_suites"],
                    );
                    expect("extensions", ch["extensions"].clone(), &ours["extensions"]);
                } else {
                    expect("sslv2_format", Value::from(true), &ours["sslv2_format"]);
                }
            }
        }
        if let Some(sh) = &stream.server_hello {
            let ours = &record["server_hello"];
            if ours.is_null() {
                expect(
                    "ServerHello",
                    Value::from("present"),
                    &Value::from("missing"),
                );
            } else {
                expect(
                    "selected version",
                    Value::from(version_name(&sh["selected_version"])),
                    &ours["version"],
                );
                expect(
                    "cipher_suite",
                    Value::from(hex_list(&Value::from(vec![sh["cipher_suite"].clone()]))[0]),
                    &ours["cipher_suite"],
                );
            }
        }
        if stream.hrr {
            expect("hrr", Value::from(true), &record["server_hello"]["hrr"]);
        }
    }
    (problems, truth.len())
}

#[test]
fn every_tcp_hello_tshark_decoded_is_in_our_records() {
    let mut problems = Vec::new();
    let mut streams = 0;
    let mut files = 0;
    for (local_path, _) in common::manifest() {
        let (mut found, n) = check_file(&local_path);
        if let Some((_, why)) = ALLOWED.iter().find(|(f, _)| *f == local_path) {
            if !found.is_empty() {
                eprintln!("allowed difference in {local_path} ({why}): {found:?}");
                found.clear();
            }
        }
        streams += n;
        files += usize::from(n > 0);
        problems.extend(found);
    }
    eprintln!("compared {streams} TCP connections with hellos in {files} corpus files");
    assert!(streams > 500, "too few connections compared: {streams}");
    assert!(
        problems.is_empty(),
        "{} mismatches against tshark:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
