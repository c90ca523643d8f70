//! The census on our own captures (`pcaps/`), whose clients are known by construction:
//! `pcaps/make_pcaps.sh` sets each client's versions and ciphers, and `pcaps/expected.json`
//! / `pcaps/expected_mail.json` record what the tools said. Every client must land in the
//! categories those facts imply, with the right `would_fail`; merging reports must give
//! exactly the report of one run over all the traffic.
//!
//! The census runs through the `tlscensus` command itself (`read ... --report X.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

mod common;

use common::{expected_script as expected, pcaps_dir as pcaps};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tlscensus-census-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tlscensus(args: &[&str]) -> String {
    let out = common::run_to_end(Command::new(env!("CARGO_BIN_EXE_tlscensus")).args(args));
    assert!(
        out.status.success(),
        "tlscensus {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tlscensus read FILES... EXTRA... --report OUT.json`, the report as text.
fn census_text(files: &[PathBuf], extra: &[&str], dir: &Path, name: &str) -> String {
    let report = dir.join(format!("{name}.json"));
    let mut args: Vec<String> = vec!["read".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--report".into(), report.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tlscensus(&args);
    std::fs::read_to_string(report).unwrap()
}

fn census(files: &[PathBuf], extra: &[&str]) -> Value {
    let dir = scratch("census");
    serde_json::from_str(&census_text(files, extra, &dir, "report")).unwrap()
}

fn version_rank(name: &str) -> u8 {
    match name {
        "SSLv3" => 0,
        "TLSv1.0" => 1,
        "TLSv1.1" => 2,
        "TLSv1.2" => 3,
        "TLSv1.3" => 4,
        other => panic!("unexpected version {other}"),
    }
}

/// Weak by OpenSSL's own cipher name, as `s_client` printed it (not by our IANA table):
/// OpenSSL spells RC4, DES/3DES (`DES-CBC3`), NULL, export (`EXP`), anonymous DH/ECDH
/// (`ADH`, `AECDH`) and MD5 suites this way.
fn openssl_name_is_weak(name: &str) -> bool {
    ["RC4", "DES", "NULL", "EXP", "ADH", "AECDH"]
        .iter()
        .any(|w| name.contains(w))
        || name.ends_with("MD5")
}

/// The categories a connection's facts (from the tools) put its client in.
fn expected_categories(conn: &Value) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    let offered = conn["max_offered"].as_str().map(version_rank);
    let negotiated = conn["negotiated_version"].as_str().map(version_rank);
    if offered.is_some_and(|v| v < 3) {
        out.insert("legacy-only");
    }
    if offered.is_some_and(|v| v >= 3) && negotiated.is_some_and(|v| v < 3) {
        out.insert("server-limited");
    }
    if matches!(conn["outcome"].as_str(), Some("alert" | "no_server_hello")) {
        out.insert("failing");
    }
    if conn["cipher_name"]
        .as_str()
        .is_some_and(openssl_name_is_weak)
    {
        out.insert("weak-cipher");
    }
    if conn["plaintext"] == Value::Bool(true) {
        out.insert("no-tls");
    }
    out
}

const SEVERITY: [&str; 6] = [
    "legacy-only",
    "server-limited",
    "failing",
    "weak-cipher",
    "no-tls",
    "ok",
];

fn find_client<'a>(report: &'a Value, ip: &str) -> Option<&'a Value> {
    report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ip"] == ip)
}

#[test]
fn every_client_lands_in_the_categories_its_tools_imply() {
    let mut all: Vec<Value> = expected("expected.json");
    all.extend(expected("expected_mail.json"));
    // One census per capture file; within a file each client address is one client.
    let mut by_file: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for conn in all {
        by_file
            .entry(conn["file"].as_str().unwrap().to_string())
            .or_default()
            .push(conn);
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, conns) in &by_file {
        let report = census(&[pcaps().join(file)], &[]);
        let mut clients: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for conn in conns {
            let ip = conn["proxied_ip"]
                .as_str()
                .or(conn["client_ip"].as_str())
                .unwrap();
            clients.entry(ip.to_string()).or_default().push(conn);
        }
        assert_eq!(
            report["clients"].as_array().unwrap().len(),
            clients.len(),
            "{file}: clients"
        );
        for (ip, conns) in clients {
            let mut want: BTreeSet<&str> =
                conns.iter().flat_map(|c| expected_categories(c)).collect();
            if want.is_empty() {
                want.insert("ok");
            }
            let want_list: Vec<&str> = SEVERITY
                .iter()
                .copied()
                .filter(|c| want.contains(c))
                .collect();
            // The default policy is min-version=TLSv1.2: a client fails it when some
            // connection offered at most TLS 1.1.
            let want_fail = conns.iter().any(|c| {
                c["max_offered"]
                    .as_str()
                    .is_some_and(|v| version_rank(v) < 3)
            });
            let Some(client) = find_client(&report, &ip) else {
                problems.push(format!("{file}: no client {ip}"));
                continue;
            };
            let got: Vec<&str> = client["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            if got != want_list {
                problems.push(format!(
                    "{file} {ip}: categories {got:?}, expected {want_list:?}"
                ));
            }
            if client["primary"] != want_list[0] {
                problems.push(format!(
                    "{file} {ip}: primary {}, expected {}",
                    client["primary"], want_list[0]
                ));
            }
            if client["would_fail"] != want_fail {
                problems.push(format!(
                    "{file} {ip}: would_fail {}, expected {want_fail}",
                    client["would_fail"]
                ));
            }
            // Per-service counts: connections, versions offered and negotiated, plaintext.
            let service = &client["services"].as_object().unwrap();
            let total: u64 = service
                .values()
                .map(|s| s["connections"].as_u64().unwrap())
                .sum();
            if total != conns.len() as u64 {
                problems.push(format!(
                    "{file} {ip}: {total} connections, expected {}",
                    conns.len()
                ));
            }
            let mut offered: BTreeMap<String, u64> = BTreeMap::new();
            let mut negotiated: BTreeMap<String, u64> = BTreeMap::new();
            for c in &conns {
                if let Some(v) = c["max_offered"].as_str() {
                    *offered.entry(v.into()).or_default() += 1;
                }
                if let Some(v) = c["negotiated_version"].as_str() {
                    *negotiated.entry(v.into()).or_default() += 1;
                }
            }
            let sum_maps = |key: &str| {
                let mut m: BTreeMap<String, u64> = BTreeMap::new();
                for s in service.values() {
                    for (v, n) in s[key].as_object().unwrap() {
                        *m.entry(v.clone()).or_default() += n.as_u64().unwrap();
                    }
                }
                m
            };
            if sum_maps("max_offered") != offered {
                problems.push(format!(
                    "{file} {ip}: max_offered {:?}, expected {offered:?}",
                    sum_maps("max_offered")
                ));
            }
            if sum_maps("negotiated") != negotiated {
                problems.push(format!(
                    "{file} {ip}: negotiated {:?}, expected {negotiated:?}",
                    sum_maps("negotiated")
                ));
            }
            let plaintext: u64 = service
                .values()
                .map(|s| s["plaintext"].as_u64().unwrap())
                .sum();
            let want_plain = conns.iter().filter(|c| c["plaintext"] == true).count() as u64;
            if plaintext != want_plain {
                problems.push(format!(
                    "{file} {ip}: plaintext {plaintext}, expected {want_plain}"
                ));
            }
            let failed: u64 = service
                .values()
                .map(|s| s["failed"].as_u64().unwrap())
                .sum();
            let want_failed = conns
                .iter()
                .filter(|c| matches!(c["outcome"].as_str(), Some("alert" | "no_server_hello")))
                .count() as u64;
            if failed != want_failed {
                problems.push(format!(
                    "{file} {ip}: failed {failed}, expected {want_failed}"
                ));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 25, "only {checked} clients checked");
}

#[test]
fn failure_reasons_name_the_alert_and_its_sender() {
    for conn in expected("expected.json") {
        let Some(alert) = conn["alert"].as_object() else {
            continue;
        };
        if conn["outcome"] != "alert" {
            continue;
        }
        let report = census(&[pcaps().join(conn["file"].as_str().unwrap())], &[]);
        let client = find_client(&report, conn["client_ip"].as_str().unwrap()).unwrap();
        let reasons: Vec<String> = client["services"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|s| s["failures"].as_object().unwrap().keys().cloned())
            .collect();
        // "SSL alert number N" as the receiving tool printed it, and who sent it.
        let from = alert["from"].as_str().unwrap();
        let code = alert["description"].as_u64().unwrap() as u8;
        let want = format!("{from} alert {}", tlscensus::record::alert_name(code));
        assert_eq!(reasons, [want], "{}", conn["file"]);
    }
}

#[test]
fn forbidding_the_only_suite_a_client_offers_makes_it_fail() {
    // make_pcaps.sh starts the null_cipher client with `-cipher NULL-SHA` and TLS 1.2 only,
    // so TLS_RSA_WITH_NULL_SHA is the one suite it can use.
    let script = std::fs::read_to_string(pcaps().join("make_pcaps.sh")).unwrap();
    assert!(
        script.contains("\"-cipher NULL-SHA:@SECLEVEL=0 -tls1_2 -servername null.example.test\"")
    );
    let policy = ["--policy", "forbid=TLS_RSA_WITH_NULL_SHA"];
    let report = census(&[pcaps().join("null_cipher.pcap")], &policy);
    let client = find_client(&report, "127.0.0.1").unwrap();
    assert_eq!(client["would_fail"], true);
    assert_eq!(
        client["would_fail_reasons"],
        serde_json::json!(["offers only forbidden cipher suites"])
    );
    assert!(client["categories"]
        .as_array()
        .unwrap()
        .contains(&"weak-cipher".into()));
    // The TLS 1.2 client offers OpenSSL's default list: forbidding NULL-SHA changes nothing.
    let report = census(&[pcaps().join("tls12.pcap")], &policy);
    assert_eq!(
        find_client(&report, "127.0.0.1").unwrap()["would_fail"],
        false
    );
    // min-version=TLSv1.3 breaks the TLS 1.2-only client, and the summary counts it.
    let report = census(
        &[pcaps().join("tls12.pcap")],
        &["--policy", "min-version=TLSv1.3"],
    );
    let client = find_client(&report, "127.0.0.1").unwrap();
    assert_eq!(
        client["would_fail_reasons"],
        serde_json::json!(["offers at most TLSv1.2"])
    );
    assert_eq!(report["summary"]["would_fail"], 1);
    assert_eq!(report["services"]["tcp/44312"]["would_fail"], 1);
}

#[test]
fn direction_follows_server_and_proxy_headers_name_the_true_client() {
    let report = census(&[pcaps().join("tls12.pcap")], &[]);
    assert_eq!(report["clients"][0]["direction"], "inbound");
    let report = census(&[pcaps().join("tls12.pcap")], &["--server", "127.0.0.1"]);
    assert_eq!(report["clients"][0]["direction"], "inbound");
    let report = census(&[pcaps().join("tls12.pcap")], &["--server", "192.0.2.0/24"]);
    assert_eq!(report["clients"][0]["direction"], "other");
    for conn in expected("expected_mail.json") {
        let Some(proxied) = conn["proxied_ip"].as_str() else {
            continue;
        };
        let report = census(&[pcaps().join(conn["file"].as_str().unwrap())], &[]);
        let client = find_client(&report, proxied).unwrap();
        assert_eq!(client["via"], conn["client_ip"]);
    }
}

#[test]
fn latency_is_reported_per_service_and_server() {
    let report = census(&[pcaps().join("multi_version.pcapng")], &[]);
    let latency = &report["services"]["tcp/44350"]["latency"];
    assert_eq!(latency["count"], 5, "{latency}");
    let (p50, p99, max) = (
        latency["p50_us"].as_u64().unwrap(),
        latency["p99_us"].as_u64().unwrap(),
        latency["max_us"].as_u64().unwrap(),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{latency}");
    assert_eq!(report["latency_by_server"]["127.0.0.1"]["count"], 5);
}

/// Write frames as a nanosecond pcap.
fn write_pcap(path: &Path, link_type: u32, frames: &[(i64, Vec<u8>, u32)]) {
    let mut w = BufWriter::new(File::create(path).unwrap());
    w.write_all(&0xa1b2_3c4d_u32.to_le_bytes()).unwrap();
    w.write_all(&2u16.to_le_bytes()).unwrap();
    w.write_all(&4u16.to_le_bytes()).unwrap();
    w.write_all(&[0; 8]).unwrap();
    w.write_all(&262_144u32.to_le_bytes()).unwrap();
    w.write_all(&link_type.to_le_bytes()).unwrap();
    for (ts, data, orig) in frames {
        let secs = ts.div_euclid(1_000_000_000) as u32;
        let nanos = ts.rem_euclid(1_000_000_000) as u32;
        for v in [secs, nanos, data.len() as u32, *orig] {
            w.write_all(&v.to_le_bytes()).unwrap();
        }
        w.write_all(data).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn two_halves_of_a_capture_merge_into_the_whole() {
    let dir = scratch("merge");
    // Split multi_version.pcapng by connection: the 1.0-only and 1.1-only clients' packets
    // in one file, the other three in the other.
    let mut reader =
        tlscensus::source::CaptureReader::open(&pcaps().join("multi_version.pcapng")).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut link = None;
    while let Some(p) = reader.next_packet().unwrap() {
        assert_eq!(*link.get_or_insert(p.link_type), p.link_type);
        let first_half = match tlscensus::decode::decode(p.link_type, p.data) {
            Ok(seg) => [50050, 50051].contains(&seg.sport) || [50050, 50051].contains(&seg.dport),
            Err(_) => true,
        };
        let frame = (p.ts_nanos, p.data.to_vec(), p.orig_len);
        if first_half { &mut a } else { &mut b }.push(frame);
    }
    assert!(!a.is_empty() && !b.is_empty());
    let (half_a, half_b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    write_pcap(&half_a, link.unwrap(), &a);
    write_pcap(&half_b, link.unwrap(), &b);

    let whole = census_text(&[pcaps().join("multi_version.pcapng")], &[], &dir, "whole");
    census_text(&[half_a], &[], &dir, "a");
    census_text(&[half_b], &[], &dir, "b");
    let merged = dir.join("merged.json");
    tlscensus(&[
        "merge",
        dir.join("a.json").to_str().unwrap(),
        dir.join("b.json").to_str().unwrap(),
        "--report",
        merged.to_str().unwrap(),
    ]);
    let merged = std::fs::read_to_string(merged).unwrap();
    assert_eq!(merged, whole, "merged halves differ from the whole");
    let whole: Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(whole["summary"]["connections"], 5);
}

#[test]
fn reports_of_several_captures_merge_into_one_run_over_all() {
    let dir = scratch("merge-files");
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    let half = files.len() / 2;
    let whole = census_text(&files, &[], &dir, "whole");
    census_text(&files[..half], &[], &dir, "first");
    census_text(&files[half..], &[], &dir, "second");
    // Merge in the "wrong" order too: the result may not depend on it.
    let merged = dir.join("merged.json");
    tlscensus(&[
        "merge",
        dir.join("second.json").to_str().unwrap(),
        dir.join("first.json").to_str().unwrap(),
        "--report",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), whole);
    // A merged report merges again: merging it with itself doubles every count.
    let twice = dir.join("twice.json");
    tlscensus(&[
        "merge",
        merged.to_str().unwrap(),
        merged.to_str().unwrap(),
        "--report",
        twice.to_str().unwrap(),
    ]);
    let (once, twice): (Value, Value) = (
        serde_json::from_str(&whole).unwrap(),
        serde_json::from_str(&std::fs::read_to_string(twice).unwrap()).unwrap(),
    );
    assert_eq!(
        twice["summary"]["connections"].as_u64().unwrap(),
        2 * once["summary"]["connections"].as_u64().unwrap()
    );
}

#[test]
fn reports_with_different_policies_do_not_merge() {
    let dir = scratch("merge-policy");
    let file = [pcaps().join("tls12.pcap")];
    census_text(&file, &[], &dir, "a");
    census_text(&file, &["--policy", "min-version=TLSv1.3"], &dir, "b");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .args([
            "merge",
            dir.join("a.json").to_str().unwrap(),
            dir.join("b.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--policy"));
}

#[test]
fn csv_markdown_and_table_carry_every_client() {
    let dir = scratch("formats");
    let csv = dir.join("r.csv");
    let md = dir.join("r.md");
    let table = tlscensus(&[
        "read",
        pcaps().join("multi_version.pcapng").to_str().unwrap(),
        pcaps().join("server_limited.pcap").to_str().unwrap(),
        "--report",
        csv.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
    ]);
    // The table: at-risk rows first, no line wider than 100 columns.
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("127.0.0.1"))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains("tcp/44350") && rows[0].ends_with("legacy-only"),
        "{table}"
    );
    assert!(
        rows[1].contains("tcp/44360") && rows[1].ends_with("server-limited"),
        "{table}"
    );

    let text = std::fs::read_to_string(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(&records[0][col("service")], "tcp/44350");
    assert_eq!(&records[0][col("offered_tls1.0")], "1");
    assert_eq!(&records[0][col("negotiated_tls1.3")], "2");
    assert_eq!(&records[0][col("would_fail")], "yes");
    assert_eq!(&records[1][col("service_categories")], "server-limited");
    assert_eq!(&records[1][col("negotiated_tls1.0")], "1");

    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("| 127.0.0.1 | inbound | tcp/44350 | 5 | 1.0-1.3 |"),
        "{md}"
    );
}
