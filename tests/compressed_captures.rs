//! Compressed captures and standard input (issue 22, point 1).
//!
//! The compressed files in `pcaps/compressed/` were made by the gzip, zstd and lz4 command-line
//! tools (`pcaps/make_compressed.sh`), never by tlscensus. Two checks on each:
//! * its records equal those of the uncompressed file (only `capture.file` differs);
//! * for corpus captures, every hello's fields equal tshark's dissection of the uncompressed
//!   file (`tests/corpus/truth/`).
//!
//! Standard input is fed through real pipes, by `cat`'s and `gzip -dc`'s processes.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tlscensus::engine::Config;

fn compressed(name: &str) -> PathBuf {
    common::pcaps_dir().join("compressed").join(name)
}

/// The uncompressed file `pcaps/make_compressed.sh` made `name` from, and its corpus path
/// (which names its tshark truth) if it is a corpus capture.
fn original_of(name: &str) -> (PathBuf, Option<&'static str>) {
    const CORPUS: &[&str] = &[
        "nDPI/tests/cfgs/default/pcap/snapchat.pcap",
        "nDPI/tests/cfgs/default/pcap/dazn.pcapng",
    ];
    for corpus in CORPUS {
        let base = corpus.rsplit('/').next().unwrap();
        if name.starts_with(&format!("{base}.")) {
            return (common::corpus_dir().join(corpus), Some(corpus));
        }
    }
    if name.starts_with("pktmon-tls12-drops.etl.") {
        let etl = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/etl/constructed/pktmon-tls12-drops.etl");
        return (etl, None);
    }
    assert!(name.starts_with("multi_version.pcapng."), "unknown {name}");
    (common::pcaps_dir().join("multi_version.pcapng"), None)
}

/// A run's records as JSON, without the file name (the one field that must differ).
fn records_of(path: &Path) -> Vec<Value> {
    let run = common::run_file(path);
    assert!(
        run.errors.is_empty(),
        "{}: {:?}",
        path.display(),
        run.errors
    );
    run.records.iter().map(without_file).collect()
}

fn without_file(record: &impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(record).unwrap();
    value["capture"]
        .as_object_mut()
        .expect("every record has a capture object")
        .remove("file");
    value
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// What tshark saw of a corpus capture's hellos, and the same taken from our records, as
/// comparable lines: (client, server, which hello, SNI or selected version, cipher suites).
fn tshark_hellos(corpus_path: &str) -> BTreeSet<String> {
    let truth = common::corpus_dir()
        .join("truth")
        .join(format!("{corpus_path}.jsonl"));
    let text = std::fs::read_to_string(&truth).unwrap();
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m: Value = serde_json::from_str(line).unwrap();
        if m["transport"] != "tcp" {
            continue;
        }
        let from = format!("{}:{}", m["src"].as_str().unwrap(), m["sport"]);
        let to = format!("{}:{}", m["dst"].as_str().unwrap(), m["dport"]);
        match m["msg"].as_str().unwrap() {
            "client_hello" => {
                let suites: Vec<u64> = m["cipher_suites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(hex)
                    .collect();
                seen.insert(format!("{from} {to} CH {} {suites:?}", m["sni"]));
            }
            "server_hello" if m["hrr"] != true => {
                let version = tlscensus::record::Version(hex(&m["selected_version"]) as u16);
                let suite = hex(&m["cipher_suite"]);
                seen.insert(format!("{to} {from} SH {} [{suite}]", version.name()));
            }
            _ => {}
        }
    }
    seen
}

fn our_hellos(records: &[Value]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for r in records {
        let client = format!(
            "{}:{}",
            r["client"]["ip"].as_str().unwrap(),
            r["client"]["port"]
        );
        let server = format!(
            "{}:{}",
            r["server"]["ip"].as_str().unwrap(),
            r["server"]["port"]
        );
        let ch = &r["client_hello"];
        if !ch.is_null() {
            seen.insert(format!(
                "{client} {server} CH {} {:?}",
                ch["sni"],
                ch["cipher_suites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect::<Vec<_>>()
            ));
        }
        let sh = &r["server_hello"];
        if !sh.is_null() {
            seen.insert(format!(
                "{client} {server} SH {} [{}]",
                sh["version"].as_str().unwrap(),
                sh["cipher_suite"]
            ));
        }
    }
    seen
}

#[test]
fn every_compressed_fixture_reads_as_its_original() {
    let mut names: Vec<String> = std::fs::read_dir(common::pcaps_dir().join("compressed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "pcaps/compressed/ holds {names:?}");
    let mut with_truth = 0;
    for name in &names {
        let (original, corpus) = original_of(name);
        let plain = records_of(&original);
        assert!(!plain.is_empty(), "{} has no records", original.display());
        let ours = records_of(&compressed(name));
        assert_eq!(ours, plain, "{name} reads differently from its original");
        if let Some(corpus) = corpus {
            let truth = tshark_hellos(corpus);
            assert!(truth.len() >= 4, "{corpus}: too little truth: {truth:?}");
            assert_eq!(our_hellos(&ours), truth, "{name} against tshark");
            with_truth += 1;
        }
    }
    assert!(with_truth >= 12);
}

/// `tlscensus read ARGS...` with `stdin` as standard input: (events, stderr, success).
fn read_cli(args: &[&str], stdin: Stdio) -> (Vec<Value>, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .args(["--events", "-"])
        .args(args)
        .stdin(stdin)
        .output()
        .expect("run tlscensus");
    let events = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| without_file(&serde_json::from_str::<Value>(l).unwrap()))
        .collect();
    (
        events,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// `PROGRAM ARGS... | tlscensus read -`: the pipe is a real one between two processes.
fn piped_from(program: &str, args: &[&str]) -> (Vec<Value>, String, bool) {
    let mut producer = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let pipe = producer.stdout.take().unwrap();
    let result = read_cli(&["-"], Stdio::from(pipe));
    assert!(producer.wait().unwrap().success(), "{program} failed");
    result
}

#[test]
fn standard_input_takes_any_format_through_a_pipe() {
    let cases: Vec<(PathBuf, PathBuf)> = vec![
        (
            common::pcaps_dir().join("tls13.pcap"),
            common::pcaps_dir().join("tls13.pcap"),
        ),
        (
            common::pcaps_dir().join("multi_version.pcapng"),
            common::pcaps_dir().join("multi_version.pcapng"),
        ),
        (
            compressed("snapchat.pcap.zst"),
            original_of("snapchat.pcap.zst").0,
        ),
        (
            compressed("dazn.pcapng.linked.lz4"),
            original_of("dazn.pcapng.linked.lz4").0,
        ),
        (
            compressed("pktmon-tls12-drops.etl.zst"),
            original_of("pktmon-tls12-drops.etl.zst").0,
        ),
        // Network Monitor (frame table at the end) and a plain .etl, uncompressed.
        (netmon_capture(), netmon_capture()),
        (
            original_of("pktmon-tls12-drops.etl.zst").0,
            original_of("pktmon-tls12-drops.etl.zst").0,
        ),
    ];
    for (input, original) in cases {
        let (events, stderr, ok) = piped_from("cat", &[input.to_str().unwrap()]);
        assert!(ok, "cat {} | tlscensus read -: {stderr}", input.display());
        assert_eq!(events, records_of(&original), "cat {}", input.display());
    }
    // `zcat old.pcap.gz | tlscensus read -`, the issue's own example.
    let gz = compressed("snapchat.pcap.members.gz");
    let (events, stderr, ok) = piped_from("gzip", &["-dc", gz.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (original, corpus) = original_of("snapchat.pcap.members.gz");
    assert_eq!(events, records_of(&original));
    assert_eq!(our_hellos(&events), tshark_hellos(corpus.unwrap()));
}

#[test]
fn standard_input_among_files_is_read_once_in_the_given_order() {
    let plain = common::pcaps_dir().join("tls12.pcap");
    let other = compressed("snapchat.pcap.gz");
    let mut cat = Command::new("cat")
        .arg(&plain)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = cat.stdout.take().unwrap();
    let (events, stderr, ok) = read_cli(&[other.to_str().unwrap(), "-"], Stdio::from(pipe));
    cat.wait().unwrap();
    assert!(ok, "{stderr}");
    let mut want = records_of(&plain);
    want.extend(records_of(&original_of("snapchat.pcap.gz").0));
    let key = |v: &Value| v.to_string();
    let mut got = events;
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
}

/// The corpus's Network Monitor 2.x capture.
fn netmon_capture() -> PathBuf {
    common::corpus_dir().join(
        "prot-od-netcaps/[MS-CCROD]-captureALL/\
         MS-CCROD_Example2Peer1Version1_Win2016_X64_Win10_X64_Domain_CePark.cap",
    )
}

/// A gzip file of a capture made at test time by the gzip tool: Network Monitor's format,
/// whose frame table sits at the end, read through the decompressor.
#[test]
fn gzipped_network_monitor_file_matches_tshark() {
    let corpus = "prot-od-netcaps/[MS-CCROD]-captureALL/\
                  MS-CCROD_Example2Peer1Version1_Win2016_X64_Win10_X64_Domain_CePark.cap";
    let original = common::corpus_dir().join(corpus);
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("netmon.cap.gz");
    let out = Command::new("gzip")
        .args(["-c", original.to_str().unwrap()])
        .output()
        .expect("run gzip");
    assert!(out.status.success());
    std::fs::write(&gz, &out.stdout).unwrap();
    let ours = records_of(&gz);
    assert_eq!(ours, records_of(&original));
    let truth = tshark_hellos(corpus);
    assert!(!truth.is_empty());
    assert_eq!(our_hellos(&ours), truth);
}

/// Cut streams and flipped bytes: an error naming the file and the format, the records read
/// before the damage kept, and the run going on with the next file.
#[test]
fn cut_or_corrupt_streams_are_named_and_keep_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let whole_run = records_of(&original_of("snapchat.pcap.gz").0);
    let next_file = common::pcaps_dir().join("tls12.pcap");
    let next_records = records_of(&next_file);
    // (fixture, bytes kept, what the error must say)
    let cases: &[(&str, Option<usize>, &str)] = &[
        // gzip: cut inside the deflate data, then inside the 8-byte trailer (all content
        // there, CRC missing).
        ("snapchat.pcap.gz", Some(4000), "gzip stream cut short"),
        ("snapchat.pcap.gz", None, "gzip stream cut short"),
        (
            "snapchat.pcap.members.gz",
            Some(5000),
            "gzip stream cut short",
        ),
        ("snapchat.pcap.zst", Some(3000), "zstd stream cut short"),
        ("snapchat.pcap.zst", None, "zstd stream cut short"),
        (
            "snapchat.pcap.frames.zst",
            Some(6000),
            "zstd stream cut short",
        ),
        ("snapchat.pcap.lz4", Some(3000), "lz4 stream cut short"),
        ("snapchat.pcap.lz4", None, "lz4 stream cut short"),
    ];
    for (name, keep, message) in cases {
        let bytes = std::fs::read(compressed(name)).unwrap();
        let keep = keep.unwrap_or(bytes.len() - 3);
        let cut = dir.path().join(format!("cut-{keep}-{name}"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let (events, stderr, ok) = read_cli(
            &[cut.to_str().unwrap(), next_file.to_str().unwrap()],
            Stdio::null(),
        );
        assert!(
            !ok,
            "{name} cut at {keep}: exit status must say a file failed"
        );
        assert!(
            stderr.contains(cut.to_str().unwrap()) && stderr.contains(message),
            "{name} cut at {keep}: {stderr}"
        );
        // The next file is read whole; the cut one gives a prefix of its records (those
        // whose packets came before the cut), never anything it does not hold.
        for record in &next_records {
            assert!(events.contains(record), "{name}: next file's record lost");
        }
        let from_cut: Vec<&Value> = events
            .iter()
            .filter(|e| !next_records.contains(e))
            .collect();
        for record in &from_cut {
            let hello = &record["client_hello"];
            assert!(
                whole_run.iter().any(|w| w["client_hello"] == *hello),
                "{name}: a record the whole file does not have"
            );
        }
        if keep + 3 == bytes.len() {
            // Only the checksum trailer is missing: every record is there.
            assert_eq!(from_cut.len(), whole_run.len(), "{name} {stderr}");
        }
    }
    // Flipped bytes inside the compressed data: zstd and lz4 find them by their content
    // checksums (or a broken block); gzip by its CRC or a broken deflate stream, unless
    // the capture reader meets the garbage first. Either way the file is named.
    for name in [
        "snapchat.pcap.gz",
        "snapchat.pcap.zst",
        "snapchat.pcap.linked.lz4",
    ] {
        let mut bytes = std::fs::read(compressed(name)).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x55;
        let bad = dir.path().join(format!("flipped-{name}"));
        std::fs::write(&bad, &bytes).unwrap();
        let (_, stderr, ok) = read_cli(&[bad.to_str().unwrap()], Stdio::null());
        assert!(
            !ok && stderr.contains(bad.to_str().unwrap()),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("byte offset"), "{name}: {stderr}");
    }
}

/// `read -` with nothing on standard input says so, naming it.
#[test]
fn empty_standard_input_is_a_clear_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .args(["read", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("-: file ends in the middle of a file header"),
        "{stderr}"
    );
    assert!(!stderr.contains("No such file"), "{stderr}");
}

#[test]
fn config_default_is_what_the_cli_uses() {
    // records_of goes through the library with Config::default(); the pipe tests through
    // the binary. Both must agree for the comparisons above to mean the same thing.
    let path = common::pcaps_dir().join("tls13.pcap");
    let (events, _, ok) = read_cli(&[path.to_str().unwrap()], Stdio::null());
    assert!(ok);
    let run = common::run_files(std::slice::from_ref(&path), Config::default());
    let lib: Vec<Value> = run.records.iter().map(without_file).collect();
    assert_eq!(events, lib);
}

/// A stream cut half-way through keeps what the format's own tool recovers from it: the
/// records of a cut file are those of the bytes `gzip -dc`, `zstd -dc` or `lz4 -dc` writes
/// for the same cut file, and the error names the decompressed offset where that output ends.
/// zstd keeps a window of up to the whole frame for back-references; a cut frame is ended
/// there, so that window is handed out rather than lost. The capture (mercury's
/// `quic-crypto-packets.pcap`, 960 KB) spans several blocks of each format: lz4 with 64 KiB
/// blocks (`-B4`), zstd with its 128 KiB blocks, at its default level and at 19.
#[test]
fn a_stream_cut_half_way_keeps_what_its_own_tool_recovers() {
    let original = common::corpus_dir().join("mercury/unit_tests/pcaps/quic-crypto-packets.pcap");
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        ("gzip", &["-c"], "gz"),
        ("zstd", &["-q", "-c"], "zst"),
        ("zstd", &["-q", "-19", "-c"], "zst"),
        ("lz4", &["-q", "-B4", "-c"], "lz4"),
    ];
    for (tool, args, ext) in cases {
        let packed = Command::new(tool)
            .args(*args)
            .arg(&original)
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(packed.status.success(), "{tool} {args:?}");
        let bytes = packed.stdout;
        let cut = dir.path().join(format!("cut-{}.pcap.{ext}", args.len()));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        // What the tool itself recovers: it writes the bytes before the cut, then fails.
        let recovered = Command::new(tool)
            .args(["-dc", cut.to_str().unwrap()])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert!(!recovered.status.success(), "{tool} -dc of a cut file");
        let prefix = dir
            .path()
            .join(format!("prefix-{tool}-{}.pcap", args.len()));
        std::fs::write(&prefix, &recovered.stdout).unwrap();
        assert!(
            recovered.stdout.len() > 300_000,
            "{tool} {args:?}: the cut keeps several blocks"
        );

        let (ours, stderr, ok) = read_cli(&[cut.to_str().unwrap()], Stdio::null());
        assert!(!ok, "{tool} {args:?}: a cut file fails the run");
        assert!(
            stderr.contains(cut.to_str().unwrap())
                && stderr.contains(&format!("{tool} stream cut short"))
                && stderr.contains(&format!("stops at byte offset {}", recovered.stdout.len())),
            "{tool} {args:?}: {stderr}"
        );
        let (theirs, _, _) = read_cli(&[prefix.to_str().unwrap()], Stdio::null());
        assert!(
            theirs.len() > 100,
            "{tool} {args:?}: {} records",
            theirs.len()
        );
        assert_eq!(ours, theirs, "{tool} {args:?}");
    }
}

/// A compressed capture as its publisher ships it: zeek's
/// `testing/btest/Traces/tls/tls-fragmented-handshake.pcap.gz` (in the corpus, BSD licence),
/// whose handshake tshark dissects from the compressed file itself. Read from the file and
/// through a pipe, its hellos are tshark's.
#[test]
fn a_published_gzip_capture_reads_as_tshark_reads_it() {
    let corpus = "zeek/testing/btest/Traces/tls/tls-fragmented-handshake.pcap.gz";
    let path = common::corpus_dir().join(corpus);
    let truth = tshark_hellos(corpus);
    assert_eq!(truth.len(), 2, "tshark: one ClientHello, one ServerHello");
    let ours = records_of(&path);
    assert_eq!(our_hellos(&ours), truth);
    let (piped, stderr, ok) = piped_from("cat", &[path.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(piped, ours);
}

/// `read -` typed at a terminal, with nothing piped in: an error saying so at once, not a
/// wait for input. The terminal is a real pseudo-terminal (Python's `pty`).
#[test]
fn standard_input_at_a_terminal_is_a_clear_error() {
    const SCRIPT: &str = r#"
import os, pty, subprocess, sys
leader, follower = pty.openpty()
run = subprocess.run([sys.argv[1], "read", "-"], stdin=follower, capture_output=True, timeout=20)
sys.stdout.write(run.stderr.decode())
sys.exit(run.returncode)
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, env!("CARGO_BIN_EXE_tlscensus")])
        .output()
        .expect("python3 runs (Debian's python3)");
    let stderr = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("-: I/O error: standard input is a terminal"),
        "{stderr} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
