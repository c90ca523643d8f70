//! Software hints (`data/software_hints.tsv`, from cisco/mercury's fingerprint database) on
//! captures whose client is known from how they were made: a hint names the software that
//! made the capture, or there is none — never another program.
//!
//! Who made each capture comes from outside tlscensus: `pcaps/README.md` (OpenSSL 3.0's
//! `s_client` and Python's `ssl`, on Linux), and the corpus files whose names say the tool
//! (arkime's `openssl-*.pcap` by `openssl s_client`, `curl-*.pcap` and nDPI's `443-curl.pcap`
//! by curl; see tests/corpus/MANIFEST.tsv).

mod common;

use std::path::PathBuf;

use tlscensus::census::software;

/// (file, JA3, dominant program and OS) for every ClientHello of the given captures.
fn hello_hints(paths: &[PathBuf]) -> Vec<(String, String, Option<&'static software::Entry>)> {
    let mut out = Vec::new();
    for path in paths {
        let run = common::run_file(path);
        assert!(
            run.errors.is_empty(),
            "{}: {:?}",
            path.display(),
            run.errors
        );
        for r in &run.records {
            if let Some(ch) = &r.client_hello {
                out.push((
                    path.display().to_string(),
                    ch.ja3.clone(),
                    software::dominant(&ch.ja3),
                ));
            }
        }
    }
    out
}

/// A program name is the tool's when it is the tool's name, any case, with or without
/// `.exe` or a version suffix (`python3.8`).
fn names_tool(process: &str, tools: &[&str]) -> bool {
    let p = process.to_ascii_lowercase();
    tools.iter().any(|t| p.starts_with(t))
}

#[test]
fn own_captures_get_an_openssl_or_python_hint_or_none() {
    let hints = hello_hints(&common::own_captures());
    assert!(hints.len() > 20, "{} hellos", hints.len());
    for (file, ja3, hint) in &hints {
        if let Some(e) = hint {
            assert!(
                names_tool(e.process, &["openssl", "python"]),
                "{file}: JA3 {ja3} hinted as {} ({}), made by s_client or Python ssl",
                e.process,
                e.os
            );
            assert!(
                !e.os.starts_with("Windows") && !e.os.contains("Sierra"),
                "{file}: captured on Linux, hinted OS {}",
                e.os
            );
        }
    }
}

#[test]
fn corpus_captures_of_known_tools_get_that_tool_or_none() {
    let corpus = common::corpus_dir();
    let cases: Vec<(PathBuf, &[&str])> = common::manifest()
        .into_iter()
        .filter_map(|(path, _)| {
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            let tools: &[&str] = if name.starts_with("openssl-") {
                &["openssl"]
            } else if name.contains("curl") {
                &["curl"]
            } else {
                return None;
            };
            Some((corpus.join(&path), tools))
        })
        .collect();
    assert!(cases.len() >= 7, "{} captures of known tools", cases.len());
    for (path, tools) in cases {
        for (file, ja3, hint) in hello_hints(&[path]) {
            if let Some(e) = hint {
                assert!(
                    names_tool(e.process, tools),
                    "{file}: JA3 {ja3} hinted as {}, made by {tools:?}",
                    e.process
                );
            }
        }
    }
}

/// The figure for benches/NOTES.md: how many corpus and own-capture ClientHellos get a hint.
#[test]
fn count_hinted_hellos() {
    let corpus = common::corpus_dir();
    let paths: Vec<PathBuf> = common::manifest()
        .into_iter()
        .map(|(p, _)| corpus.join(p))
        .collect();
    let all = hello_hints(&paths);
    let any = all
        .iter()
        .filter(|(_, ja3, _)| !software::lookup(ja3).is_empty())
        .count();
    let named = all.iter().filter(|(_, _, h)| h.is_some()).count();
    println!(
        "corpus ClientHellos: {}; JA3 in the table: {any}; a program named (>= {}% of sightings): {named}",
        all.len(),
        software::DOMINANT_SHARE_PERCENT
    );
    assert!(any >= named);
}

/// nDPI's `zoom.pcap` (Zoom traffic, by its name and nDPI's description) holds hellos whose
/// JA3 the source saw only from `zoom.us`: the JSON report's client entry lists it with the
/// source's count, `merge` (a report read back) keeps it, and the CSV ends with the
/// software columns.
#[test]
fn reports_carry_the_hint_and_merge_keeps_it() {
    use tlscensus::census::{Census, CensusConfig};
    use tlscensus::report::{csv, json};

    let path = common::corpus_dir().join("nDPI/tests/cfgs/default/pcap/zoom.pcap");
    let mut census = Census::new(CensusConfig::default());
    for r in &common::run_file(&path).records {
        census.add(r);
    }
    let zoom_hints = |report: &serde_json::Value| -> Vec<serde_json::Value> {
        report["clients"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["software"].as_array().unwrap().clone())
            .filter(|h| h["name"] == "zoom.us")
            .collect()
    };
    let report = json::to_value(&census);
    let hints = zoom_hints(&report);
    assert!(!hints.is_empty(), "no zoom.us hint");
    for h in &hints {
        assert_eq!(h["source"], software::SOURCE);
        assert!(h["seen"].as_u64().unwrap() > 0);
        assert!(h["os"].is_string());
    }
    let back = json::read(&report.to_string()).unwrap();
    assert_eq!(zoom_hints(&json::to_value(&back)), hints);

    let mut out = Vec::new();
    csv::write(&census, &mut out).unwrap();
    let mut reader = ::csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().unwrap().clone();
    let n = header.len();
    assert_eq!(&header[n - 2], "software");
    assert_eq!(&header[n - 1], "software_advice");
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[n - 2].to_string())
        .collect();
    assert!(
        cells.iter().any(|c| c.starts_with("zoom.us (")),
        "{cells:?}"
    );
}
