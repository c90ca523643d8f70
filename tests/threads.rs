//! The output does not depend on the number of worker threads: 1, 2 and 4 give byte-identical
//! event streams and census reports, over every corpus capture and our own, over all of them
//! as one stream, and over a generated Exchange-like capture (thousands of interleaved
//! connections: STARTTLS, IPv6, refusals, split hellos).
//!
//! Each whole input is run twice per thread count: in-process, through the library exactly as
//! `tlscensus read` drives it, and through the `tlscensus` command itself (`read --threads N
//! --events ... --report ...` in every report format). The two must also agree.
//!
//! The workers count the census themselves, each its share, merged at the end; the records
//! reach the caller only when it writes events. So the census is also built with no record
//! leaving the workers (in-process, and `read` without `--events`), and must give the
//! reports the reference gives: one thread adding every record in order.
//!
//! Classic pcap files are read by the workers themselves, each its share, through memory
//! maps (`Reading::Map`, the default) and with read calls (`Reading::Split`); everything is
//! also run through one reader thread (`Reading::OneReader`, what other formats get), and
//! the reference every run is compared with is one reader thread feeding one worker.

mod common;

#[path = "../benches/common/gen.rs"]
mod gen;

use std::path::{Path, PathBuf};
use std::process::Command;

use tlscensus::census::{Census, CensusConfig, Policy};
use tlscensus::engine::{Config, Stats};
use tlscensus::pipeline::Reading;
use tlscensus::record::{Outcome, Record, Version};
use tlscensus::report::{self, Format};

/// Thread counts compared; the first is the reference.
const THREADS: [usize; 3] = [1, 2, 4];

/// Every report format, with the extension `--report` takes for it.
const FORMATS: [(Format, &str); 5] = [
    (Format::Json, "json"),
    (Format::Csv, "csv"),
    (Format::Markdown, "md"),
    (Format::Html, "html"),
    (Format::Table, "txt"),
];

fn events(paths: &[PathBuf], threads: usize, reading: Reading) -> String {
    let run = common::run_reading(paths, Config::default(), threads, reading);
    run.records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

/// Panic unless `actual` is byte for byte `expected`, showing the first line that differs
/// (the outputs are megabytes: a plain `assert_eq!` would print them whole).
fn assert_same(expected: &[u8], actual: &[u8], what: &str) {
    if expected == actual {
        return;
    }
    let lines = |b: &[u8]| {
        b.split(|c| *c == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
    };
    let (e, a) = (lines(expected), lines(actual));
    let at = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let none = String::from("<end>");
    panic!(
        "{what}: differs ({} vs {} bytes), first at line {}:\n  expected: {}\n  actual:   {}",
        expected.len(),
        actual.len(),
        at + 1,
        e.get(at).unwrap_or(&none),
        a.get(at).unwrap_or(&none),
    );
}

/// One in-process run: records, their JSON lines, the census in every format.
struct InProcess {
    records: Vec<Record>,
    events: Vec<u8>,
    reports: Vec<Vec<u8>>,
    stats: Stats,
    errors: Vec<String>,
}

/// Run the pipeline over `files` (in the order `tlscensus read` reads them) and build the
/// census as `read` does: default ports, no `--server`, the default policy.
fn in_process(files: &[PathBuf], threads: usize, reading: Reading) -> InProcess {
    let ordered = tlscensus::pipeline::order_by_time(files);
    let run = common::run_reading(&ordered, Config::default(), threads, reading);
    let policy = Policy::parse::<&str>(&[]).unwrap();
    let mut census = Census::new(CensusConfig::new(Vec::new(), policy));
    let mut events = Vec::new();
    for record in &run.records {
        census.add(record);
        serde_json::to_writer(&mut events, record).unwrap();
        events.push(b'\n');
    }
    census.names.merge_observed(&run.names);
    let reports = FORMATS
        .iter()
        .map(|(format, _)| {
            let mut out = Vec::new();
            report::write(&census, *format, &mut out).unwrap();
            out
        })
        .collect();
    InProcess {
        records: run.records,
        events,
        reports,
        stats: run.stats,
        errors: run.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The census in every format, counted by the workers alone: no record leaves them.
fn census_in_workers(files: &[PathBuf], threads: usize, reading: Reading) -> Vec<Vec<u8>> {
    let (census, outcome) = common::counted_by_workers(files, threads, reading);
    assert_eq!(
        outcome.pipeline.records_ordered, 0,
        "no record crosses to the aggregator when none is asked for"
    );
    FORMATS
        .iter()
        .map(|(format, _)| {
            let mut out = Vec::new();
            report::write(&census, *format, &mut out).unwrap();
            out
        })
        .collect()
}

/// One run of the `tlscensus` command: exit code, standard output and error, the events
/// file (empty without `--events`) and the report files (in [`FORMATS`] order).
struct Cli {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    events: Vec<u8>,
    reports: Vec<Vec<u8>>,
}

fn cli(files: &[PathBuf], threads: usize, dir: &Path) -> Cli {
    cli_with(files, threads, dir, true)
}

/// [`cli`], with `--events` or without it (then the records never leave the workers).
fn cli_with(files: &[PathBuf], threads: usize, dir: &Path, with_events: bool) -> Cli {
    let name = if with_events { "" } else { "-no-events" };
    let events = dir.join(format!("events-{threads}{name}.jsonl"));
    let reports: Vec<PathBuf> = FORMATS
        .iter()
        .map(|(_, ext)| dir.join(format!("report-{threads}{name}.{ext}")))
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlscensus"));
    cmd.arg("read")
        .args(files)
        .arg("--threads")
        .arg(threads.to_string());
    if with_events {
        cmd.arg("--events").arg(&events);
    }
    for report in &reports {
        cmd.arg("--report").arg(report);
    }
    let out = common::run_to_end(&mut cmd);
    let read = |p: &Path| {
        std::fs::read(p).unwrap_or_else(|e| {
            panic!(
                "{} not written ({e}); stderr:\n{}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    Cli {
        code: out.status.code(),
        events: if with_events {
            read(&events)
        } else {
            Vec::new()
        },
        reports: reports.iter().map(|p| read(p)).collect(),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// A fresh scratch directory (under Cargo's per-target temporary directory).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("threads-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `files` with 1, 2 and 4 threads, in-process (read either way) and through the
/// command, and check that every output is byte-identical to the run of one reader thread
/// and one worker, and that the command writes what the library gives. Returns that run.
fn same_whatever_the_threads(files: &[PathBuf], name: &str) -> InProcess {
    let dir = scratch(name);
    let reference = in_process(files, THREADS[0], Reading::OneReader);
    let reference_cli = cli(files, THREADS[0], &dir);

    // The command agrees with the library.
    assert_eq!(
        reference_cli.code,
        Some(i32::from(!reference.errors.is_empty())),
        "{name}: exit code; stderr:\n{}",
        String::from_utf8_lossy(&reference_cli.stderr)
    );
    assert_same(
        &reference.events,
        &reference_cli.events,
        &format!("{name}: command's events vs library's"),
    );
    for ((_, ext), (lib, bin)) in FORMATS
        .iter()
        .zip(reference.reports.iter().zip(&reference_cli.reports))
    {
        assert_same(
            lib,
            bin,
            &format!("{name}: command's .{ext} report vs library's"),
        );
    }
    let table = FORMATS
        .iter()
        .position(|(f, _)| *f == Format::Table)
        .unwrap();
    assert_same(
        &reference.reports[table],
        &reference_cli.stdout,
        &format!("{name}: command's table on standard output vs library's"),
    );

    let runs = THREADS
        .iter()
        .flat_map(|t| [(*t, Reading::Map), (*t, Reading::Split)])
        .chain(THREADS[1..].iter().map(|t| (*t, Reading::OneReader)));
    for (threads, reading) in runs {
        let what = |output: &str| {
            format!("{name}: {output}, one reader and worker vs {threads} threads, {reading:?}")
        };
        let run = in_process(files, threads, reading);
        assert_same(&reference.events, &run.events, &what("library events"));
        for ((_, ext), (one, many)) in FORMATS
            .iter()
            .zip(reference.reports.iter().zip(&run.reports))
        {
            assert_same(one, many, &what(&format!("library .{ext} report")));
        }
        assert_eq!(reference.stats, run.stats, "{}", what("engine counters"));
        assert_eq!(reference.errors, run.errors, "{}", what("file errors"));
        let counted = census_in_workers(files, threads, reading);
        for ((_, ext), (one, many)) in FORMATS.iter().zip(reference.reports.iter().zip(&counted)) {
            assert_same(one, many, &what(&format!("census-only .{ext} report")));
        }
    }

    for threads in &THREADS[1..] {
        let what = |output: &str| format!("{name}: {output}, 1 vs {threads} threads");
        let run = cli(files, *threads, &dir);
        assert_eq!(reference_cli.code, run.code, "{}", what("exit code"));
        assert_same(&reference_cli.events, &run.events, &what("--events file"));
        for ((_, ext), (one, many)) in FORMATS
            .iter()
            .zip(reference_cli.reports.iter().zip(&run.reports))
        {
            assert_same(one, many, &what(&format!("--report .{ext} file")));
        }
        assert_same(&reference_cli.stdout, &run.stdout, &what("standard output"));
        assert_same(&reference_cli.stderr, &run.stderr, &what("standard error"));
    }

    // Without --events the records stay in the workers: the same reports, table and
    // messages, whatever the threads.
    for threads in [1, 2, 3] {
        let what = |output: &str| format!("{name}: {output}, --events vs none, {threads} threads");
        let run = cli_with(files, threads, &dir, false);
        assert_eq!(reference_cli.code, run.code, "{}", what("exit code"));
        for ((_, ext), (with, without)) in FORMATS
            .iter()
            .zip(reference_cli.reports.iter().zip(&run.reports))
        {
            assert_same(with, without, &what(&format!("--report .{ext} file")));
        }
        assert_same(&reference_cli.stdout, &run.stdout, &what("standard output"));
        assert_same(&reference_cli.stderr, &run.stderr, &what("standard error"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    reference
}

/// Whether `path` is a classic pcap file (by its magic number), which the workers read
/// themselves.
fn is_classic_pcap(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && matches!(
            magic,
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
        )
}

/// Generate a capture as `spec` says, written afresh into this run's own directory (so
/// concurrent runs never share, or half-read, a file), and run it through
/// [`same_whatever_the_threads`]. The run must meet no damaged input.
fn generated_same_whatever_the_threads(
    spec: &gen::Spec,
    name: &str,
) -> (gen::Generated, InProcess) {
    // Not `scratch(name)`: that is the directory of the outputs, emptied first.
    let dir = scratch(&format!("{name}-capture"));
    let capture = dir.join(format!(
        "{name}-{}MiB-{:x}.pcap",
        spec.target_bytes >> 20,
        spec.seed
    ));
    let templates = gen::templates(&common::pcaps_dir());
    let generated = gen::generate(&capture, &templates, spec).expect("generate the capture");
    let one = same_whatever_the_threads(std::slice::from_ref(&capture), name);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(one.errors.is_empty(), "{name}: {:?}", one.errors);
    eprintln!(
        "{name} capture: {} packets, {} connections, {} records",
        generated.packets,
        generated.connections,
        one.records.len()
    );
    (generated, one)
}

#[test]
fn one_and_two_threads_write_the_same_events_per_file() {
    // Per file: each capture's few flows on 1 or 2 workers, read either way.
    for file in common::all_captures().iter().take(40) {
        let file = std::slice::from_ref(file);
        let one = events(file, 1, Reading::OneReader);
        for (threads, reading) in [
            (2, Reading::OneReader),
            (1, Reading::Split),
            (2, Reading::Split),
        ] {
            assert_eq!(
                one,
                events(file, threads, reading),
                "{} on {threads} threads, {reading:?}",
                file[0].display()
            );
        }
    }
}

/// Hundreds of rotated files under a limit of 64 open files: the workers reading them keep
/// only the file they are in open (each closes a file once it has moved past it), and the
/// command gives what one reader thread gives.
#[test]
fn many_rotated_files_under_a_low_open_file_limit() {
    let dir = scratch("many-files");
    let capture = std::fs::read(common::pcaps_dir().join("tls12.pcap")).unwrap();
    for part in 0..150 {
        std::fs::write(dir.join(format!("part-{part:04}.pcap")), &capture).unwrap();
    }
    let run = |reading: &str| {
        let script = format!(
            "ulimit -n 64 && exec \"$0\" read --threads 2 --reading {reading} \
             --events \"$1/events-{reading}.jsonl\" \"$1\"/part-*.pcap"
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_tlscensus"))
            .arg(&dir)
            .output()
            .expect("run tlscensus under sh");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "--reading {reading}: {stderr}");
        std::fs::read(dir.join(format!("events-{reading}.jsonl"))).unwrap()
    };
    let one = run("one");
    let split = run("split");
    assert_eq!(
        one.iter().filter(|b| **b == b'\n').count(),
        150,
        "one record per file"
    );
    assert_same(
        &one,
        &split,
        "150 files: split reading vs one reader thread",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn split_reading_gives_the_same_events_and_reports_on_the_corpus_pcap_files() {
    // The classic pcap files of the corpus and of pcaps/ as one stream: the workers read
    // each file in turn, relaying the frame count and idle clock across file boundaries.
    let files: Vec<PathBuf> = common::all_captures()
        .into_iter()
        .filter(|f| is_classic_pcap(f))
        .collect();
    assert!(files.len() > 100, "{} classic pcap files", files.len());
    let one = same_whatever_the_threads(&files, "corpus-pcap");
    assert!(
        one.records.len() > 500,
        "the corpus pcap files give over 500 records, not {}",
        one.records.len()
    );
}

#[test]
fn one_two_and_four_threads_give_the_same_events_and_reports_on_the_whole_corpus() {
    // All files as one stream: the many flows then share the workers.
    let one = same_whatever_the_threads(&common::all_captures(), "corpus");
    assert!(
        one.records.len() > 1000,
        "the whole corpus gives over a thousand records, not {}",
        one.records.len()
    );
}

#[test]
fn one_two_and_four_threads_give_the_same_events_and_reports_on_a_generated_capture() {
    // A small capture from the benchmarks' generator (default clients and seed): a 24 MiB
    // target (about 45 MB once the connections still open are closed), a few
    // application-data packets per connection so that it holds thousands of connections
    // (4144), up to 2000 of them open at once. Written afresh into this run's own
    // directory, so concurrent runs never share (or half-read) a file.
    let spec = gen::Spec {
        target_bytes: 24 << 20,
        bulk_packets: 8,
        ..gen::Spec::default()
    };
    let (generated, one) = generated_same_whatever_the_threads(&spec, "generated");

    // Not vacuous: the capture holds real, varied work.
    let records = &one.records;
    assert!(records.len() > 1000, "{} records", records.len());
    assert_eq!(
        records.len() as u64,
        generated.connections,
        "every generated connection (split hellos, refusals and plaintext mail included) \
         gives one record"
    );
    let negotiated = |v: u16| {
        records.iter().any(|r| {
            r.outcome == Outcome::Negotiated
                && r.server_hello
                    .as_ref()
                    .is_some_and(|s| s.version == Version(v))
        })
    };
    assert!(negotiated(0x0301), "a TLS 1.0 handshake");
    assert!(negotiated(0x0304), "a TLS 1.3 handshake");
    let has = |what: &str, test: &dyn Fn(&Record) -> bool| {
        assert!(records.iter().any(test), "no record with {what}");
    };
    has("STARTTLS on SMTP", &|r| {
        r.service == "smtp" && r.starttls == Some("STARTTLS")
    });
    has("STARTTLS on submission", &|r| {
        r.service == "submission" && r.starttls == Some("STARTTLS")
    });
    has("STARTTLS on IMAP", &|r| {
        r.service == "imap" && r.starttls == Some("STARTTLS")
    });
    has("STLS on POP3", &|r| r.starttls == Some("STLS"));
    has("X-ANONYMOUSTLS", &|r| r.starttls == Some("X-ANONYMOUSTLS"));
    has("a plaintext mail session", &|r| {
        r.outcome == Outcome::Plaintext
    });
    has("a failed handshake", &|r| {
        matches!(r.outcome, Outcome::Alert | Outcome::NoServerHello)
    });
    has("an IPv6 client", &|r| r.client.ip.is_ipv6());
    has("an IPv4 client", &|r| r.client.ip.is_ipv4());
}

#[test]
fn one_two_and_four_threads_give_the_same_events_and_reports_on_a_handshake_only_capture() {
    // The benchmarks' handshake-only mix (no application data: every packet is handshake,
    // mail dialogue or TCP), small: an 8 MiB target, thousands of connections of a thousand
    // clients, most of them with connections on every worker. Each client is then counted
    // by every worker, into the one shard of the census that holds it.
    let spec = gen::Spec {
        target_bytes: 8 << 20,
        bulk_packets: 0,
        clients: 1000,
        ..gen::Spec::default()
    };
    let (generated, one) = generated_same_whatever_the_threads(&spec, "handshake-only");
    let records = &one.records;
    assert_eq!(
        records.len() as u64,
        generated.connections,
        "every generated connection gives one record"
    );
    // Not vacuous: clients come back, so their census is counted by several workers.
    let mut per_client = std::collections::HashMap::<_, u32>::new();
    for r in records {
        *per_client.entry(r.client.ip).or_default() += 1;
    }
    let returning = per_client.values().filter(|n| **n >= 4).count();
    assert!(
        records.len() > 3000 && returning > 300,
        "{} records, {returning} clients with 4 connections or more",
        records.len()
    );
}
