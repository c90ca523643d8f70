//! Server certificates (issue 26): the captures of `pcaps/make_cert_pcaps.sh`, where
//! `openssl s_server` presented openssl-made certificates (expired, RSA-1024, SHA-1,
//! self-signed, normal, split over records and segments, over the 64 KiB budget) to
//! `openssl s_client`. Every expected value is openssl's (`pcaps/expected_certs.json`).

mod common;

use serde_json::Value;
use tlscensus::record::Record;

fn expected() -> Vec<Value> {
    common::expected_script("expected_certs.json")
}

fn record_of<'a>(records: &'a [Record], want: &Value) -> &'a Record {
    records
        .iter()
        .find(|r| {
            u64::from(r.client.port) == want["client_port"]
                && u64::from(r.server.port) == want["server_port"]
        })
        .unwrap_or_else(|| panic!("{}: no record", want["file"]))
}

#[test]
fn leaf_certificates_match_openssl() {
    let mut problems = Vec::new();
    let all = expected();
    assert_eq!(all.len(), 7, "make_cert_pcaps.sh writes seven captures");
    for want in &all {
        let file = want["file"].as_str().unwrap();
        let run = common::run_file(&common::pcaps_dir().join(file));
        assert!(run.errors.is_empty(), "{file}: {:?}", run.errors);
        let record = record_of(&run.records, want);
        let cert = record
            .certificate
            .as_ref()
            .unwrap_or_else(|| panic!("{file}: no certificate"));
        let leaf = cert
            .leaf
            .as_ref()
            .unwrap_or_else(|| panic!("{file}: no leaf: {:?}", cert.leaf_error));
        let mut check = |what: &str, ours: Value| {
            if ours != want[what] {
                problems.push(format!(
                    "{file}: {what}: openssl {}, ours {ours}",
                    want[what]
                ));
            }
        };
        check("subject", leaf.subject.clone().into());
        check("issuer", leaf.issuer.clone().into());
        check("serial", leaf.serial.clone().into());
        check("not_before", leaf.not_before.clone().into());
        check("not_after", leaf.not_after.clone().into());
        check("sha256", leaf.sha256.clone().into());
        check("san_dns", leaf.san_dns.clone().into());
        check("san_ip", leaf.san_ip.clone().into());
        check("key_type", leaf.key_type.clone().into());
        check("key_bits", leaf.key_bits.into());
        check(
            "signature_algorithm",
            leaf.signature_algorithm.clone().into(),
        );
        check("self_signed", leaf.self_signed.into());
        check("message_length", cert.message_length.into());
        if file != "cert_too_large.pcap" {
            check("chain_length", cert.chain_length.into());
            assert!(cert.seen_whole, "{file}: not seen whole");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// 91 certificates, some 80 KB: past the 64 KiB budget. The record says so, and still
/// carries the leaf, which lies whole in the part kept.
#[test]
fn a_chain_over_the_budget_is_not_seen_whole() {
    let want = expected()
        .into_iter()
        .find(|e| e["file"] == "cert_too_large.pcap")
        .unwrap();
    assert!(want["message_length"].as_u64().unwrap() > 64 * 1024);
    assert_eq!(want["chain_length"], 91);
    let run = common::run_file(&common::pcaps_dir().join("cert_too_large.pcap"));
    let record = record_of(&run.records, &want);
    let cert = record.certificate.as_ref().unwrap();
    assert!(!cert.seen_whole);
    assert_eq!(cert.chain_length, None);
    assert_eq!(
        cert.leaf.as_ref().map(|l| l.sha256.as_str()),
        want["sha256"].as_str()
    );
    // The handshake itself was followed to its end.
    assert_eq!(record.outcome.name(), "negotiated");
}

/// The split capture: 512-byte records (s_server -max_send_frag) in 100-byte segments (the
/// relay). Cut in the middle of the server's Certificate message, the record says the
/// certificate was not seen whole; the whole capture gives the whole chain.
#[test]
fn a_certificate_cut_by_the_capture_end_is_not_seen_whole() {
    let want = expected()
        .into_iter()
        .find(|e| e["file"] == "cert_split.pcap")
        .unwrap();
    let path = common::pcaps_dir().join("cert_split.pcap");
    let bytes = std::fs::read(&path).unwrap();
    let server_port = want["server_port"].as_u64().unwrap() as u16;
    // The server's first flight opens with a ServerHello of well under 200 bytes; the
    // Certificate message follows it. Keep the frames until half of that message is sent.
    let half = 200 + want["message_length"].as_u64().unwrap() as usize / 2;
    let cut = keep_server_bytes(&bytes, server_port, half);
    let dir = tempfile::tempdir().unwrap();
    let cut_path = dir.path().join("cut.pcap");
    std::fs::write(&cut_path, cut).unwrap();

    let whole = common::run_file(&path);
    let whole = record_of(&whole.records, &want)
        .certificate
        .clone()
        .unwrap();
    assert!(whole.seen_whole);
    assert_eq!(Some(2), want["chain_length"].as_u64().map(|n| n as u32));
    assert_eq!(whole.chain_length, Some(2));

    let run = common::run_file(&cut_path);
    let record = record_of(&run.records, &want);
    let cert = record.certificate.as_ref().expect("the part seen");
    assert!(!cert.seen_whole, "{cert:?}");
    assert_eq!(cert.chain_length, None);
    assert_eq!(u64::from(cert.message_length), want["message_length"]);
}

/// A classic pcap (Ethernet, IPv4, TCP) cut after the frame that brings the TCP payload
/// sent from `server_port` to `limit` bytes or more.
fn keep_server_bytes(pcap: &[u8], server_port: u16, limit: usize) -> Vec<u8> {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    let mut out = pcap[..24].to_vec();
    let (mut at, mut sent) = (24, 0usize);
    while at + 16 <= pcap.len() && sent < limit {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[at + 16..at + 16 + caplen];
        out.extend_from_slice(&pcap[at..at + 16 + caplen]);
        at += 16 + caplen;
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = &ip[ihl..];
        let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
        let payload = total - ihl - usize::from(tcp[12] >> 4) * 4;
        if sport == server_port {
            sent += payload;
        }
    }
    assert!(at < pcap.len(), "the cut must leave frames out");
    out
}

/// The flag names the README documents.
const ALL_FLAGS: [&str; 6] = [
    "expired",
    "expiring_30d",
    "expiring_60d",
    "rsa_below_2048",
    "sha1_signature",
    "self_signed",
];

/// What each certificate must be flagged with, from openssl's view of it and the capture's
/// last packet (tcpdump): expiry against that time, key size, signature, self-signed.
fn openssl_flags(want: &Value) -> Vec<String> {
    let end = want["capture_end_unix"].as_f64().unwrap() as i64;
    let not_after = unix_of(want["not_after"].as_str().unwrap());
    let day = 86_400;
    let mut flags = Vec::new();
    if not_after < end {
        flags.push("expired");
    } else {
        if not_after <= end + 30 * day {
            flags.push("expiring_30d");
        }
        if not_after <= end + 60 * day {
            flags.push("expiring_60d");
        }
    }
    if want["key_type"] == "RSA" && want["key_bits"].as_u64().unwrap() < 2048 {
        flags.push("rsa_below_2048");
    }
    if want["signature_algorithm"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("sha1")
    {
        flags.push("sha1_signature");
    }
    if want["self_signed"] == true {
        flags.push("self_signed");
    }
    flags.into_iter().map(String::from).collect()
}

/// Unix seconds of `2026-12-07T14:18:24Z`, by `date -u -d ... +%s` (GNU coreutils).
fn unix_of(rfc3339: &str) -> i64 {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", rfc3339, "+%s"])
        .output()
        .expect("run date");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn tlscensus(args: &[&str]) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "tlscensus {args:?}");
}

/// Each capture's census flags its certificate as openssl's dates, key and signature say,
/// in the JSON report, the certificate CSV (read back with the csv crate), Markdown, HTML
/// and the terminal table; a merge of the JSON reports keeps every certificate.
#[test]
fn the_inventory_flags_what_openssl_describes_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let mut jsons = Vec::new();
    for want in expected() {
        let file = want["file"].as_str().unwrap();
        let stem = file.trim_end_matches(".pcap");
        let pcap = common::pcaps_dir().join(file);
        let (json, csv, md, html, txt) = (
            d(&format!("{stem}.json")),
            d(&format!("{stem}.csv")),
            d(&format!("{stem}.md")),
            d(&format!("{stem}.html")),
            d(&format!("{stem}.txt")),
        );
        tlscensus(&[
            "read",
            pcap.to_str().unwrap(),
            "--report",
            &json,
            "--report",
            &csv,
            "--report",
            &md,
            "--report",
            &html,
            "--report",
            &txt,
        ]);
        let flags = openssl_flags(&want);
        let sha256 = want["sha256"].as_str().unwrap();

        let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let servers = report["certificates"]["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 1, "{file}");
        assert_eq!(
            servers[0]["service"],
            format!("tcp/{}", want["server_port"])
        );
        let ours = &servers[0]["certificates"][sha256];
        assert_eq!(ours["flags"], serde_json::json!(flags), "{file}");
        assert_eq!(ours["not_after"], want["not_after"], "{file}");
        let not_whole = u64::from(file == "cert_too_large.pcap");
        assert_eq!(servers[0]["not_seen_whole"], not_whole, "{file}");

        let csv_path = d(&format!("{stem}-certificates.csv"));
        let mut reader = csv::Reader::from_path(&csv_path).unwrap();
        let header = reader.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1, "{file}");
        let col = |name: &str| &rows[0][header.iter().position(|h| h == name).unwrap()];
        assert_eq!(col("flags"), flags.join("; "), "{file}");
        assert_eq!(col("sha256"), sha256);
        assert_eq!(col("key_bits"), want["key_bits"].to_string());

        let name = want["subject"]
            .as_str()
            .unwrap()
            .rsplit("CN=")
            .next()
            .unwrap();
        let expires = &want["not_after"].as_str().unwrap()[..10];
        for text_report in [&md, &html, &txt] {
            let text = std::fs::read_to_string(text_report).unwrap();
            let line = text
                .lines()
                .find(|l| l.contains(name) && l.contains(expires))
                .unwrap_or_else(|| panic!("{text_report}: no row for {name}"));
            for flag in ALL_FLAGS {
                let want = flags.iter().any(|f| f == flag);
                assert_eq!(line.contains(flag), want, "{text_report}: {flag}: {line}");
            }
        }
        jsons.push(json);
    }

    // Merged, the reports keep every certificate with its counts.
    let merged = d("merged.json");
    let mut args = vec!["merge".to_string()];
    args.extend(jsons.iter().cloned());
    args.extend(["--report".to_string(), merged.clone()]);
    tlscensus(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let kept: usize = report["certificates"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["certificates"].as_object().unwrap().len())
        .sum();
    assert_eq!(kept, expected().len());
}
