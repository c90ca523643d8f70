//! Client names learned from the traffic (issue 23.1), against tshark's dissection.
//!
//! `pcaps/names/expected_names.json` is written by `pcaps/names/expected_names.py` from
//! tshark's fields alone (`smtp.req.parameter` of EHLO/HELO commands; the DNS answer
//! fields): per file and client address, the names a dissector shows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn expected() -> serde_json::Map<String, serde_json::Value> {
    let path = root().join("pcaps/names/expected_names.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A capture named in the expectations (by its path from the repository root).
fn capture(name: &str) -> PathBuf {
    root().join(name)
}

fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("tlscensus-names-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tlscensus read FILE --udp-names --report r.json`: the report's clients.
fn clients(file: &Path, dir: &Path) -> Vec<serde_json::Value> {
    let report = dir.join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .arg(file)
        .arg("--udp-names")
        .arg("--report")
        .arg(&report)
        .output()
        .expect("run tlscensus");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    json["clients"].as_array().unwrap().clone()
}

/// Per client address, the names of one source in the report.
fn names_by_source(
    clients: &[serde_json::Value],
    source: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in clients {
        for n in c["names"].as_array().unwrap() {
            if n["source"] == source {
                assert_eq!(n["origin"], "seen");
                out.entry(c["ip"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(n["name"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

fn as_sets(v: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(ip, names)| {
            let set = names
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            (ip.clone(), set)
        })
        .collect()
}

#[test]
fn ehlo_names_are_those_tshark_shows() {
    let mut compared = 0;
    for (file, want) in expected() {
        let want = as_sets(&want["ehlo"]);
        let dir = scratch(&file.replace('/', "_"));
        let got = names_by_source(&clients(&capture(&file), &dir), "ehlo");
        assert_eq!(got, want, "{file}");
        compared += want.len();
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(compared >= 9, "only {compared} EHLO clients compared");
}

/// The JSON record of each SMTP session carries the EHLO argument as `smtp.helo`.
#[test]
fn records_carry_smtp_helo() {
    let expected = expected();
    for file in [
        "pcaps/smtp_starttls.pcap",
        "pcaps/smtp_plaintext.pcap",
        "pcaps/names/hostile_values.pcap",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .arg("read")
            .arg(capture(file))
            .args(["--events", "-"])
            .output()
            .expect("run tlscensus");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = as_sets(&expected[file]["ehlo"]);
        let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(helo) = record["smtp"]["helo"].as_str() {
                got.entry(record["client"]["ip"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(helo.to_string());
            }
        }
        assert_eq!(got, want, "{file}");
    }
}

/// DNS answers in the capture name the clients they map (A/AAAA for the address, PTR for
/// its reverse name), and so do mDNS answers, DHCP requests and acknowledgements and NetBIOS
/// registrations: exactly the names tshark's fields give for each client address (the first
/// 16 by name when there are more, as the report keeps them). The captures are
/// `pcaps/names/dns_names.pcap` (dnsmasq and dig on loopback, two clients named) and corpus
/// captures holding these protocols.
#[test]
fn udp_names_are_those_tshark_shows() {
    let sources = ["dns", "mdns", "dhcp", "netbios"];
    let mut named = BTreeMap::new();
    for (file, want) in expected() {
        let dir = scratch(&file.replace('/', "_"));
        let clients = clients(&capture(&file), &dir);
        for source in sources {
            let want = as_sets(&want[source]);
            let got = names_by_source(&clients, source);
            for c in &clients {
                let ip = c["ip"].as_str().unwrap();
                let mine = got.get(ip).cloned().unwrap_or_default();
                let theirs = want.get(ip).cloned().unwrap_or_default();
                if c["names_other"].as_u64().unwrap_or(0) > 0 {
                    assert!(
                        mine.is_subset(&theirs),
                        "{file} {source} {ip}: {mine:?} vs {theirs:?}"
                    );
                } else {
                    assert_eq!(mine, theirs, "{file} {source} {ip}");
                }
                *named.entry(source).or_insert(0) += usize::from(!mine.is_empty());
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("clients named, by source: {named:?}");
    assert!(named["dns"] >= 2, "{named:?}");
}

/// `merge` keeps the names of each report.
#[test]
fn merge_keeps_names() {
    let dir = scratch("merge");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    for (file, report) in [
        ("pcaps/smtp_starttls.pcap", &a),
        ("pcaps/names/dns_names.pcap", &b),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .arg("read")
            .arg(capture(file))
            .arg("--udp-names")
            .arg("--report")
            .arg(report)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let merged = dir.join("m.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("merge")
        .arg(&a)
        .arg(&b)
        .arg("--report")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let clients = json["clients"].as_array().unwrap().clone();
    let expected = expected();
    let mut want = as_sets(&expected["pcaps/smtp_starttls.pcap"]["ehlo"]);
    assert_eq!(names_by_source(&clients, "ehlo"), want);
    want = as_sets(&expected["pcaps/names/dns_names.pcap"]["dns"]);
    let got = names_by_source(&clients, "dns");
    for (ip, names) in got {
        assert_eq!(Some(&names), want.get(&ip), "{ip}");
    }
}
