//! `tlscensus watch`: a capture cut into rotated files that appear one by one, a restart
//! between runs (and a stop by signal), and a file still being written. Whatever the cuts
//! and restarts, the records must be those of the capture read whole, each handshake once:
//! tshark's dissection of the capture (the corpus truth) says which connections carried a
//! ClientHello, and `read` over the uncut file gives the records to equal.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

const CAPTURE: &str = "nDPI/tests/cfgs/default/pcap/teams.pcap";
const PIECES: usize = 6;

fn tlscensus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tlscensus"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = common::run_to_end(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A classic pcap file cut into its global header and records (read here by the format's
/// definition, independently of the crate's reader).
fn pcap_records(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push(bytes[at..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len(), "whole records");
    (bytes[..24].to_vec(), records)
}

/// The capture cut into `PIECES` files' contents, each with the global header. The cuts
/// fall every n-th record, so they cut through connections and handshakes.
fn pieces() -> Vec<Vec<u8>> {
    let bytes = fs::read(common::corpus_dir().join(CAPTURE)).unwrap();
    let (header, records) = pcap_records(&bytes);
    let per = records.len().div_ceil(PIECES);
    records
        .chunks(per)
        .map(|chunk| {
            let mut piece = header.clone();
            chunk.iter().for_each(|r| piece.extend_from_slice(r));
            piece
        })
        .collect()
}

/// Write a rotated file whose last write was `age` ago.
fn put(dir: &Path, index: usize, bytes: &[u8], age: Duration) -> PathBuf {
    let path = dir.join(format!("exch-{index:02}.pcap"));
    fs::write(&path, bytes).unwrap();
    set_age(&path, age);
    path
}

fn set_age(path: &Path, age: Duration) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A record without where it was read (file and frame differ between the cut files and the
/// whole one), as a sortable string.
fn without_capture(mut record: Value) -> String {
    record.as_object_mut().unwrap().remove("capture");
    record.to_string()
}

/// The records and the JSON census of `read` over the uncut capture.
fn read_whole(scratch: &Path) -> (Vec<String>, Value) {
    let events = scratch.join("whole.jsonl");
    let report = scratch.join("whole.json");
    run_ok(
        tlscensus()
            .arg("read")
            .arg(common::corpus_dir().join(CAPTURE))
            .arg("--events")
            .arg(&events)
            .arg("--report")
            .arg(&report),
    );
    let mut lines: Vec<String> = records(&events).into_iter().map(without_capture).collect();
    lines.sort();
    let census: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    (lines, census)
}

/// Connections tshark saw a TCP ClientHello on, with the SNI it decoded.
fn truth_client_hellos() -> BTreeMap<(String, u64, String, u64), Option<String>> {
    let truth = common::corpus_dir().join(format!("truth/{CAPTURE}.jsonl"));
    let mut hellos = BTreeMap::new();
    for line in fs::read_to_string(truth).unwrap().lines() {
        let h: Value = serde_json::from_str(line).unwrap();
        if h["msg"] == "client_hello" && h["transport"] == "tcp" {
            let key = (
                h["src"].as_str().unwrap().to_string(),
                h["sport"].as_u64().unwrap(),
                h["dst"].as_str().unwrap().to_string(),
                h["dport"].as_u64().unwrap(),
            );
            hellos.insert(key, h["sni"].as_str().map(str::to_string));
        }
    }
    hellos
}

/// The watch's records and census must be the uncut capture's: every ClientHello tshark
/// saw exactly once, and the same records and census `read` makes of the whole file.
fn assert_same_as_whole(events: &Path, report: &Path, scratch: &Path) {
    let got = records(events);
    let truth = truth_client_hellos();
    let mut seen: BTreeMap<(String, u64, String, u64), usize> = BTreeMap::new();
    for r in &got {
        if r["client_hello"].is_null() {
            continue;
        }
        let key = (
            r["client"]["ip"].as_str().unwrap().to_string(),
            r["client"]["port"].as_u64().unwrap(),
            r["server"]["ip"].as_str().unwrap().to_string(),
            r["server"]["port"].as_u64().unwrap(),
        );
        let sni = r["client_hello"]["sni"].as_str().map(str::to_string);
        assert_eq!(
            truth.get(&key),
            Some(&sni),
            "{key:?}: not a ClientHello tshark saw"
        );
        *seen.entry(key).or_default() += 1;
    }
    for key in truth.keys() {
        assert_eq!(
            seen.get(key),
            Some(&1),
            "{key:?}: tshark's ClientHello seen once"
        );
    }

    let (whole, whole_census) = read_whole(scratch);
    let mut lines: Vec<String> = got.into_iter().map(without_capture).collect();
    lines.sort();
    assert_eq!(lines, whole, "the records of the capture read whole");
    let mut census: Value = serde_json::from_str(&fs::read_to_string(report).unwrap()).unwrap();
    census.as_object_mut().unwrap().remove("watch");
    assert_eq!(census, whole_census, "the census of the capture read whole");
}

fn state_of(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join(".tlscensus-watch.json")).unwrap()).unwrap()
}

fn read_names(state: &Value) -> Vec<String> {
    names(&state["read"])
}

fn resume_names(state: &Value) -> Vec<String> {
    names(&state["resume"]["files"])
}

fn names(files: &Value) -> Vec<String> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// A scratch directory holding the watched `capture/` directory, and where the events and
/// the JSON report go.
fn scratch() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("capture");
    fs::create_dir(&dir).unwrap();
    let events = scratch.path().join("events.jsonl");
    let report = scratch.path().join("census.json");
    (scratch, dir, events, report)
}

/// Runs with `--once`, as a scheduled job would: files appear between runs, the newest is
/// left while it is being written (one is even cut short, mid-record), and every run
/// resumes where the last one stopped.
#[test]
fn rotated_files_across_restarts_give_the_whole_capture() {
    let (scratch, dir, events, report) = scratch();
    let pieces = pieces();
    let hour = Duration::from_secs(3600);
    let once = |extra: &[&str]| {
        run_ok(
            tlscensus()
                .arg("watch")
                .arg(&dir)
                .args(["--once", "--settle", "0s", "--events"])
                .arg(&events)
                .arg("--report")
                .arg(&report)
                .args(extra),
        )
    };

    // Run 1: two finished files, and the third still being written (half of it, just
    // now): it must be left alone.
    put(&dir, 0, &pieces[0], hour);
    put(&dir, 1, &pieces[1], hour - Duration::from_secs(60));
    let half = pieces[2].len() / 2 + 7;
    let writing = put(&dir, 2, &pieces[2][..half], Duration::ZERO);
    once(&[]);
    let state = state_of(&dir);
    // The last two files handed to the reader are read again by the next run.
    assert!(read_names(&state).is_empty());
    assert_eq!(resume_names(&state), ["exch-00.pcap", "exch-01.pcap"]);

    // Run 2: the third file finished, a fourth begun: the first two are read again from
    // the start (their counted records skipped), then the third.
    fs::write(&writing, &pieces[2]).unwrap();
    set_age(&writing, Duration::from_secs(120));
    put(&dir, 3, &pieces[3], Duration::ZERO);
    once(&[]);
    let state = state_of(&dir);
    assert_eq!(read_names(&state), ["exch-00.pcap"]);
    assert_eq!(resume_names(&state), ["exch-01.pcap", "exch-02.pcap"]);

    // Run 3: the rest, and the capture has stopped: the newest file is taken as complete
    // once idle for --idle.
    for (i, piece) in pieces.iter().enumerate().skip(4) {
        put(&dir, i, piece, Duration::from_secs(10));
    }
    set_age(&dir.join("exch-03.pcap"), Duration::from_secs(30));
    once(&["--idle", "5s"]);
    let state = state_of(&dir);
    assert_eq!(read_names(&state).len(), PIECES - 2);
    assert_eq!(resume_names(&state), ["exch-04.pcap", "exch-05.pcap"]);

    // Run 4: nothing new: nothing changes.
    let before = records(&events).len();
    once(&["--idle", "5s"]);
    assert_eq!(records(&events).len(), before);

    assert_same_as_whole(&events, &report, scratch.path());
}

/// Following: files appear while the watch runs, which is stopped by SIGINT half-way and
/// started again.
#[cfg(unix)]
#[test]
fn files_appearing_while_following_and_a_stop_by_signal() {
    use std::process::Stdio;
    use std::time::Instant;

    let (scratch, dir, events, report) = scratch();
    let pieces = pieces();
    let follow = || {
        tlscensus()
            .arg("watch")
            .arg(&dir)
            .args(["--settle", "0s", "--report-every", "100ms", "--events"])
            .arg(&events)
            .arg("--report")
            .arg(&report)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_for_read = |files: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let read = fs::read_to_string(&report)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|r| r["watch"]["files_read"].as_u64())
                .unwrap_or(0);
            if read >= files {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "watch did not read {files} files"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let stop = |child: std::process::Child| {
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let child = follow();
    for (i, piece) in pieces.iter().enumerate().take(3) {
        // Each new file makes the one before it complete.
        put(&dir, i, piece, Duration::ZERO);
        if i > 0 {
            wait_for_read(i as u64);
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    stop(child);
    let child = follow();
    for (i, piece) in pieces.iter().enumerate().skip(3) {
        put(&dir, i, piece, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1100));
    }
    wait_for_read(PIECES as u64 - 1);
    stop(child);
    // The capture stopped: the last file is complete once idle.
    run_ok(
        tlscensus()
            .arg("watch")
            .arg(&dir)
            .args(["--once", "--settle", "0s", "--idle", "0s", "--events"])
            .arg(&events)
            .arg("--report")
            .arg(&report),
    );
    assert_same_as_whole(&events, &report, scratch.path());
}
