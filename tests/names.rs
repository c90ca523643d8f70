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

/// Where a capture named in the expectations lives.
fn capture(name: &str) -> PathBuf {
    for dir in ["pcaps", "pcaps/names"] {
        let path = root().join(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("{name} is in neither pcaps/ nor pcaps/names/")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlscensus-names-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tlscensus read FILE --report r.json`: the report's clients.
fn clients(file: &Path, dir: &Path) -> Vec<serde_json::Value> {
    let report = dir.join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .arg(file)
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
        let dir = scratch(&file);
        let got = names_by_source(&clients(&capture(&file), &dir), "ehlo");
        assert_eq!(got, want, "{file}");
        compared += want.len();
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(compared >= 7, "only {compared} EHLO clients compared");
}

/// The JSON record of each SMTP session carries the EHLO argument as `smtp.helo`.
#[test]
fn records_carry_smtp_helo() {
    let expected = expected();
    for file in [
        "smtp_starttls.pcap",
        "smtp_plaintext.pcap",
        "hostile_values.pcap",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .arg("read")
            .arg(capture(file))
            .args(["--events", "-"])
            .output()
            .expect("run tlscensus");
        assert!(out.status.success());
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
