//! Nothing lost: unwritable outputs are clear errors that name the path; a full disk is an
//! error, not a silently short file; damaged input still ends in whole reports; no temporary
//! file is left behind.

mod common;

use std::process::Command;

fn tlscensus(args: &[&str]) -> std::process::Output {
    common::run_to_end(Command::new(env!("CARGO_BIN_EXE_tlscensus")).args(args))
}

fn sample() -> String {
    common::pcaps_dir().join("tls12.pcap").display().to_string()
}

#[test]
fn unwritable_outputs_name_their_path() {
    for flag in ["--events", "--report"] {
        let target = "/nonexistent-dir/tlscensus-out.json";
        let out = tlscensus(&["read", &sample(), flag, target]);
        assert!(!out.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(target), "{flag}: {stderr}");
    }
}

#[test]
fn a_full_disk_is_an_error() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full on this system");
        return;
    }
    let out = tlscensus(&["read", &sample(), "--events", "/dev/full"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/dev/full"), "{stderr}");
}

#[test]
fn damaged_input_still_gives_whole_outputs_and_no_temporary_files() {
    let dir = std::env::temp_dir().join(format!("tlscensus-nothing-lost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(common::pcaps_dir().join("multi_version.pcapng")).unwrap();
    let cut = dir.join("cut.pcapng");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let events = dir.join("events.jsonl");
    let report = dir.join("report.json");
    std::fs::write(&events, "previous run\n").unwrap();
    let out = tlscensus(&[
        "read",
        cut.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    // Damaged input: exit status 1, the damage named, the outputs whole.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut.pcapng"));
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(!text.is_empty() && !text.contains("previous run"));
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("whole JSON lines");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).expect("whole report");
    assert!(report["clients"].is_array());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `tlscensus read f | head`: the reader of standard output leaving early is how filters are
/// used, not an error, and the report files are still written whole.
#[test]
fn a_reader_that_leaves_early_is_not_an_error() {
    let dir = std::env::temp_dir().join(format!("tlscensus-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sample = common::pcaps_dir().join("multi_version.pcapng");
    for events in [false, true] {
        let report = dir.join(format!("report-{events}.json"));
        let mut args = vec![
            "read".to_string(),
            sample.display().to_string(),
            "--report".into(),
            report.display().to_string(),
        ];
        if events {
            args.extend(["--events".into(), "-".into()]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tlscensus");
        // Close the pipe's only reading end before anything is written to it.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_ended_well(&out, &report, &format!("events on stdout: {events}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same for events written to a named pipe whose reader goes away: the reports are
/// still written and the run ends well.
#[test]
fn an_events_pipe_whose_reader_leaves_is_not_an_error() {
    let dir = std::env::temp_dir().join(format!("tlscensus-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("events.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: no mkfifo on this system");
        return;
    }
    let report = dir.join("report.json");
    // Every sample capture: more events than one buffer holds, so some are written (and
    // fail) while the files are read, not only at the end.
    let samples = common::own_captures();
    let child = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .args(&samples)
        .arg("--events")
        .arg(&fifo)
        .arg("--report")
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tlscensus");
    // Open the pipe (which lets tlscensus's open return) and close it unread.
    drop(std::fs::File::open(&fifo).expect("open the pipe"));
    let out = child.wait_with_output().expect("wait");
    assert_ended_well(&out, &report, "events to a named pipe");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Status 0, nothing on standard error, and a whole JSON report at `report`.
fn assert_ended_well(out: &std::process::Output, report: &std::path::Path, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case}: {stderr}");
    assert!(stderr.is_empty(), "{case}: {stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).expect("report written")).unwrap();
    assert!(json.is_object(), "{case}: {json}");
}
