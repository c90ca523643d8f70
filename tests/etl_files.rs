//! Windows ETW `.etl` packet captures (netsh trace / NDIS-PacketCapture, pktmon), read by
//! `tlscensus read FILE.etl` like any other capture.
//!
//! The data is in `tests/etl/` (see its README): `constructed/*.etl` written by this
//! project's independent writer (`make_etl.py`) from the captures named in `fixtures.tsv`,
//! `real/` captures from public repositories, and `expected/*.json`, which is what the
//! independent parser dissect.etl sees in each file (frames, duplicates, drops). Nothing
//! here takes tlscensus's own output as the expected answer: a `.etl` must give the records
//! its source pcap gives, and the counts dissect.etl gives.
//!
//! (a) every constructed file made from a pcap: the `--events` records equal those of the
//!     source pcap, except `capture.file` and `capture.frame` (another file; pktmon logs a
//!     packet once per component, netsh may log one in several fragment events, so frame
//!     numbers differ);
//! (b) `--stats`: "frames read" is dissect.etl's frame count (fragments joined, pktmon
//!     duplicates merged), and where the file has duplicates or drops, the stats line that
//!     names them carries dissect.etl's count;
//! (c) the fixture logged with pktmon's default 128-byte payloads: a warning naming
//!     `--pkt-size 0`, `incomplete` outcomes, no hello guessed;
//! (d) real files: dissect.etl's frame count, and the same hellos as Windows' own pcapng
//!     conversion beside them;
//! (e) cut and byte-flipped copies: an error naming the file and a byte offset, or a clean
//!     partial result; never a panic.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn etl_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/etl");
    assert!(
        dir.join("fixtures.tsv").is_file(),
        "the ETL test data is missing: expected {}/fixtures.tsv (kept in the git repository; \
         regenerate constructed files with tests/etl/make_fixtures.sh)",
        dir.display()
    );
    dir
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Fixture {
    name: String,
    source: PathBuf,
    check: String,
}

impl Fixture {
    fn etl(&self) -> PathBuf {
        let p = etl_dir()
            .join("constructed")
            .join(format!("{}.etl", self.name));
        assert!(
            p.is_file(),
            "missing fixture {} (run tests/etl/make_fixtures.sh)",
            p.display()
        );
        p
    }
}

fn fixtures() -> Vec<Fixture> {
    let text = std::fs::read_to_string(etl_dir().join("fixtures.tsv")).unwrap();
    let list: Vec<Fixture> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(cols.len() >= 4, "fixtures.tsv: bad line {l:?}");
            let source = repo_root().join(cols[1]);
            if cols[1].starts_with("tests/corpus/") {
                common::corpus_dir(); // fails with the corpus's own message when it is missing
            }
            assert!(
                source.is_file(),
                "fixtures.tsv names a missing source {}",
                source.display()
            );
            Fixture {
                name: cols[0].to_string(),
                source,
                check: cols[2].to_string(),
            }
        })
        .collect();
    assert!(
        list.len() >= 10,
        "fixtures.tsv lists only {} fixtures",
        list.len()
    );
    list
}

fn expected(name: &str) -> Value {
    let path = etl_dir().join("expected").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/etl/make_fixtures.sh)", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("etl_files");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", std::process::id()))
}

struct Run {
    out: Output,
    stderr: String,
    records: Vec<Value>,
}

/// `tlscensus read FILE --events OUT --stats`.
fn read(file: &Path, tag: &str) -> Run {
    let events = tmp(&format!("{tag}.jsonl"));
    let out = common::run_to_end(
        Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .arg("read")
            .arg(file)
            .arg("--events")
            .arg(&events)
            .arg("--stats"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "tlscensus panicked on {}:\n{stderr}",
        file.display()
    );
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    let _ = std::fs::remove_file(&events);
    let records = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
        .collect();
    Run {
        out,
        stderr,
        records,
    }
}

fn read_ok(file: &Path, tag: &str) -> Run {
    let run = read(file, tag);
    assert!(
        run.out.status.success(),
        "tlscensus read {} failed ({}):\n{}",
        file.display(),
        run.out.status,
        run.stderr
    );
    run
}

/// A record without the fields that necessarily differ between a capture and its `.etl`
/// copy: `capture.file` and `capture.frame`.
fn comparable(r: &Value) -> String {
    let mut r = r.clone();
    if let Some(c) = r.get_mut("capture").and_then(Value::as_object_mut) {
        c.remove("file");
        c.remove("frame");
    }
    serde_json::to_string(&r).unwrap()
}

fn comparable_set(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(comparable).collect();
    v.sort();
    v
}

/// The number on the `--stats` line that starts with `label`.
fn stat(stderr: &str, label: &str) -> Option<u64> {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| {
            l[l.find(label).unwrap() + label.len()..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        })
}

/// The first number on an ETL `--stats` line (one that mentions "etl" or "pktmon") holding
/// one of `words` (case-insensitive), if any: "etl pktmon copies removed 76" for words
/// ["duplicate", "copies"]. The TCP lines ("dropped segments") are not the capture's drops.
fn etl_stat(stderr: &str, words: &[&str]) -> Option<(String, u64)> {
    stderr.lines().find_map(|l| {
        let low = l.to_lowercase();
        if !(low.contains("etl") || low.contains("pktmon")) {
            return None;
        }
        let at = words.iter().filter_map(|w| low.find(w)).min()?;
        l[at..]
            .split(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .and_then(|n| n.parse().ok())
            .map(|n| (l.to_string(), n))
    })
}

fn check_counts(file: &Path, run: &Run, want: &Value) {
    let frames = want["frames"].as_u64().unwrap();
    let got = stat(&run.stderr, "frames read").unwrap_or_else(|| {
        panic!(
            "{}: no \"frames read\" line in --stats:\n{}",
            file.display(),
            run.stderr
        )
    });
    assert_eq!(
        got,
        frames,
        "{}: frames read {got}, dissect.etl rebuilds {frames} frames (expected/{})",
        file.display(),
        want["file"]
    );
    for (key, words) in [
        ("duplicates", &["duplicate", "copies"][..]),
        ("drops", &["drop"][..]),
    ] {
        let n = want[key].as_u64().unwrap();
        match etl_stat(&run.stderr, words) {
            Some((line, got)) => assert_eq!(
                got,
                n,
                "{}: --stats line {line:?}, dissect.etl counts {n} {key}",
                file.display()
            ),
            None => assert_eq!(
                n,
                0,
                "{}: dissect.etl counts {n} {key}, and --stats has no ETL line naming them ({words:?}):\n{}",
                file.display(),
                run.stderr
            ),
        }
    }
}

#[test]
fn constructed_files_give_the_records_of_their_source() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for f in fixtures().iter().filter(|f| f.check == "records") {
        let from_pcap = read_ok(&f.source, &format!("{}-src", f.name));
        let from_etl = read(&f.etl(), &f.name);
        if !from_etl.out.status.success() {
            failures.push(format!(
                "{}: tlscensus failed: {}",
                f.name,
                from_etl.stderr.trim()
            ));
            continue;
        }
        let (want, got) = (
            comparable_set(&from_pcap.records),
            comparable_set(&from_etl.records),
        );
        if want.is_empty() {
            failures.push(format!(
                "{}: the source {} gives no record",
                f.name,
                f.source.display()
            ));
        }
        if want != got {
            failures.push(format!(
                "{}: {} records from the .etl, {} from {}; first difference:\n  etl: {:?}\n  pcap: {:?}",
                f.name,
                got.len(),
                want.len(),
                f.source.display(),
                got.iter().find(|r| !want.contains(r)),
                want.iter().find(|r| !got.contains(r)),
            ));
        }
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} fixtures compared");
    assert!(
        failures.is_empty(),
        "{} of {compared} fixtures differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn constructed_files_count_what_dissect_etl_counts() {
    for f in fixtures() {
        let want = expected(&f.name);
        assert_eq!(
            want["parser"]
                .as_str()
                .map(|p| p.starts_with("dissect.etl")),
            Some(true)
        );
        let run = read_ok(&f.etl(), &format!("{}-stats", f.name));
        check_counts(&f.etl(), &run, &want);
    }
}

#[test]
fn the_expected_files_cover_every_feature() {
    // What the constructed set is meant to exercise, as dissect.etl saw it.
    let all: Vec<Value> = fixtures().iter().map(|f| expected(&f.name)).collect();
    let any = |pred: &dyn Fn(&Value) -> bool| all.iter().any(pred);
    assert!(any(&|e| e["flavour"] == "netsh"));
    assert!(any(&|e| e["flavour"] == "pktmon"));
    assert!(any(&|e| e["compressed_buffers"].as_u64().unwrap() > 0));
    assert!(any(&|e| e["fragment_events"].as_u64().unwrap() > 0));
    assert!(any(&|e| e["cpus"].as_array().unwrap().len() > 1));
    assert!(any(&|e| e["duplicates"].as_u64().unwrap() > 0));
    assert!(any(&|e| e["drops"].as_u64().unwrap() > 0));
    assert!(any(&|e| e["truncated_frames"].as_u64().unwrap() > 0));
    assert!(any(&|e| e["link_types"].get("101").is_some()));
    assert!(any(&|e| e["link_types"].get("105").is_some()));
    for clock in [1, 2, 3] {
        assert!(
            any(&|e| e["clock_type"] == clock),
            "no fixture with clock type {clock}"
        );
    }
}

#[test]
fn pkt_size_128_is_incomplete_never_guessed() {
    let list = fixtures();
    let truncated: Vec<&Fixture> = list.iter().filter(|f| f.check == "truncated").collect();
    assert!(
        !truncated.is_empty(),
        "fixtures.tsv has no truncated fixture"
    );
    for f in truncated {
        let want = expected(&f.name);
        assert!(want["truncated_frames"].as_u64().unwrap() > 0);
        let run = read_ok(&f.etl(), &format!("{}-trunc", f.name));
        assert!(
            run.stderr.contains("--pkt-size 0"),
            "{}: no warning naming --pkt-size 0:\n{}",
            f.name,
            run.stderr
        );
        let source = read_ok(&f.source, &format!("{}-trunc-src", f.name));
        assert_eq!(
            run.records.len(),
            source.records.len(),
            "{}: one record per connection of the source",
            f.name
        );
        for r in &run.records {
            assert_eq!(r["outcome"], "incomplete", "{}: {r}", f.name);
            assert!(
                r["client_hello"].is_null(),
                "{}: a ClientHello was guessed: {r}",
                f.name
            );
            assert!(
                r["server_hello"].is_null(),
                "{}: a ServerHello was guessed: {r}",
                f.name
            );
        }
        check_counts(&f.etl(), &run, &want);
    }
}

/// Real captures: `expected/real-*.json` names the file (under `real/`) and, when Windows'
/// own conversion of it is beside it, that file.
fn real_fixtures() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(etl_dir().join("expected")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name
            .strip_prefix("real-")
            .and_then(|n| n.strip_suffix(".json"))
        {
            let want = expected(&format!("real-{stem}"));
            let (dir, _) = stem.split_once('-').expect("real-<folder>-<file>.json");
            let file = etl_dir()
                .join("real")
                .join(dir)
                .join(want["file"].as_str().unwrap());
            assert!(file.is_file(), "missing real fixture {}", file.display());
            out.push((file, want));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no real fixture in tests/etl/expected/");
    out
}

fn hellos(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| {
            serde_json::to_string(&[
                &r["client"],
                &r["server"],
                &r["client_hello"],
                &r["server_hello"],
            ])
            .unwrap()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn real_files_match_dissect_etl_and_windows_conversion() {
    for (file, want) in real_fixtures() {
        let run = read_ok(&file, "real");
        check_counts(&file, &run, &want);
        if let Some(conv) = want["converted"].as_str() {
            let conv = file.parent().unwrap().join(conv);
            let windows = read_ok(&conv, "real-converted");
            assert_eq!(
                hellos(&run.records),
                hellos(&windows.records),
                "{}: hellos differ from Windows' conversion {}",
                file.display(),
                conv.display()
            );
        }
    }
}

/// Buffer boundaries of an `.etl` (each buffer starts with its stored size).
fn buffer_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + 0x48 <= bytes.len() {
        out.push(at);
        let size = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if size < 0x48 {
            break;
        }
        at += size;
    }
    out
}

fn damaged_runs_are_clean(label: &str, bytes: &[u8], tag: &str) {
    let path = tmp(&format!("{tag}.etl"));
    std::fs::write(&path, bytes).unwrap();
    let run = read(&path, tag);
    let shown = path.display().to_string();
    if !run.out.status.success() || run.stderr.contains(" at byte offset ") {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(" at byte offset "))
            .unwrap_or_else(|| panic!("{label}: failed without naming an offset:\n{}", run.stderr));
        assert!(
            line.contains(&shown),
            "{label}: the error does not name the file: {line}"
        );
    }
    assert_ne!(
        run.out.status.code(),
        Some(101),
        "{label}: panic exit status"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn cut_files_fail_cleanly() {
    let names = [
        "pktmon-tls11-compressed-2cpus",
        "netsh-rfc8446-2cpus",
        "netsh-split-hello-fragments",
    ];
    for name in names {
        let f = etl_dir().join("constructed").join(format!("{name}.etl"));
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let buffers = buffer_offsets(&bytes);
        assert!(buffers.len() >= 2, "{name}: {} buffers", buffers.len());
        let mut cuts = vec![
            0,
            4,
            0x30,
            0x47,
            0x48,
            0x60,
            0x100,
            bytes.len() - 1,
            bytes.len() - 9,
        ];
        for &b in &buffers[1..] {
            cuts.extend([b, b + 1, b + 0x20, b + 0x48, b + 0x49, b + 0x90]);
        }
        for cut in cuts.into_iter().filter(|&c| c < bytes.len()) {
            damaged_runs_are_clean(
                &format!("{name} cut at {cut}"),
                &bytes[..cut],
                &format!("cut-{name}-{cut}"),
            );
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let names = [
        "pktmon-tls11-compressed-2cpus",
        "netsh-tls13-noise",
        "pktmon-tls12-drops",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in names {
        let f = etl_dir().join("constructed").join(format!("{name}.etl"));
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let buffers = buffer_offsets(&bytes);
        // Every header field of every buffer, and places in the records.
        let mut spots: Vec<usize> = Vec::new();
        for &b in &buffers {
            spots.extend((b..b + 0x48).step_by(2));
            spots.extend([
                b + 0x48,
                b + 0x4c,
                b + 0x50,
                b + 0x58,
                b + 0x60,
                b + 0x70,
                b + 0x78,
                b + 0x98,
            ]);
        }
        for _ in 0..60 {
            spots.push((next() % bytes.len() as u64) as usize);
        }
        let mut results: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, at) in spots.into_iter().filter(|&a| a < bytes.len()).enumerate() {
            let mut copy = bytes.clone();
            let mask = [0xFF, 0x80, 0x01, 0x7F][i % 4];
            copy[at] ^= mask;
            damaged_runs_are_clean(
                &format!("{name} with byte {at} xor {mask:#x}"),
                &copy,
                &format!("flip-{name}-{at}-{mask}"),
            );
            *results.entry("runs").or_default() += 1;
        }
        assert!(results["runs"] > 50);
    }
}
