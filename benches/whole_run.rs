//! Whole-run benchmark: one generated Exchange-like capture, timed in one run for
//!
//! * the floor — a bare read of the file with a large buffer that walks every record and
//!   touches every packet;
//! * the reader alone — what tlscensus's reader thread does to every frame (its capture
//!   reader, the decoder, the shard hash) on one thread, with no hand-off to workers: the
//!   serial stage's own cost, against which the reader thread's CPU time in the pipeline
//!   (noted on the tlscensus lines, from `--stats`) shows what the hand-off adds;
//! * the engine alone, as one worker thread runs it, on the first 512 MiB of the file held
//!   in memory (no pipeline, no I/O: best of 3 runs);
//! * tlscensus with 1 and 2 worker threads (the workers mapping the file, each walking its
//!   share: the default for pcap files), with 2 workers reading their shares with read
//!   calls (`--reading split`), and with 2 workers fed by one reader thread (`--reading
//!   one`, what pcapng files and live capture get);
//! * the peers, when installed: ndpiReader (Debian `libndpi-bin`) and tshark.
//!
//! Each is reported as wall time, packets per second, peak memory, and ratios against the
//! floor and against tlscensus (of time per packet, since the engine line covers only part
//! of the file). The floor, tlscensus and ndpiReader take turns `--rounds` times (default
//! 3) and each is reported by its best run, the others listed in the note with the CPU time
//! the hypervisor stole from the VM during each (Linux); tshark runs once. The file is in
//! the page cache for every run (it is read once before timing). Run:
//!
//! ```text
//! cargo bench --bench whole_run                 # 256 MiB capture
//! cargo bench --bench whole_run -- --mib 1900   # the 1.9 GB case of issue #5
//! cargo bench --bench whole_run -- --mib 1900 --no-tshark   # without tshark's minutes
//! cargo bench --bench whole_run -- --mib 1900 --engine-mib 256   # engine line on 256 MiB
//! cargo bench --bench whole_run -- --mib 190 --bulk 0   # handshakes only (a mail relay's mix)
//! cargo bench --bench whole_run -- --mib 256 --generate-only   # make the capture, print its path
//! ```
//!
//! Memory sweep (issue #5: the same peak memory on a file 10x smaller or larger): for each
//! size, generate the capture if missing (a 19000 MiB one takes minutes and about 21 GB of
//! disk; progress goes to standard error) and time only `tlscensus read FILE --threads 2
//! --events /tmp/tlscensus-sweep-<MiB>MiB-events.jsonl`, reporting wall time and peak RSS.
//! The floor and the peers are not run; nothing is deleted afterwards.
//!
//! ```text
//! cargo bench --bench whole_run -- --sizes 190,1900,19000
//! ```
//!
//! Sizes are the generator's target in MiB (the file name's figure); each file ends a
//! little larger, once the connections still open at the target are closed.
//!
//! Handshake-only capture (issue 27): 100,000 connections from 20,000 clients, no bulk
//! data, fixed by count (not size), with the generator's truth file beside it. Paired
//! rounds of `tlscensus read --threads 1` and `--threads 2` (no `--events`), the floor and
//! mercury (found as `MERCURY=/path` or on PATH; `benches/peers/build_mercury.sh` builds
//! it), then one pair with `--events`, checked byte-identical and against the truth. See
//! `handshakes` and benches/NOTES.md, "Issue 27".
//!
//! ```text
//! MERCURY=/tmp/peers/mercury/bin/mercury cargo bench --bench whole_run -- --handshakes
//! cargo bench --bench whole_run -- --handshakes --rounds 9 --no-mercury
//! cargo bench --bench whole_run -- --handshakes --generate-only   # capture and truth paths
//! cargo bench --bench whole_run -- --handshakes --check-events EVENTS.jsonl   # check only
//! TLSCENSUS=/path/to/tlscensus cargo bench --bench whole_run -- --handshakes   # another build
//! ```

#[path = "common/gen.rs"]
mod gen;

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tlscensus::decode;
use tlscensus::engine::{Config, Emitted, Engine, Ticker};
use tlscensus::source::{CaptureReader, Packet};

struct Timing {
    name: String,
    wall: Duration,
    /// Packets the run covered (the whole file, except for the in-memory engine run).
    packets: u64,
    peak_rss_kib: Option<u64>,
    /// tlscensus: the reader thread's CPU time (from `--stats`), least over the rounds.
    reader_cpu: Option<f64>,
    /// tlscensus: the workers' CPU time together (from `--stats`), least over the rounds.
    workers_cpu: Option<f64>,
    /// CPU time the hypervisor took from this machine's vCPUs during the run (all of them
    /// together; Linux `/proc/stat`), when known.
    steal: Option<Duration>,
    /// Every round's wall time, in round order: the targets' ratios are also taken within
    /// each round (the contenders ran seconds apart), where they drift less than ratios of
    /// best runs.
    rounds: Vec<Duration>,
    note: String,
}

impl Timing {
    /// A run timed in this process: nothing known but its wall time.
    fn in_process(name: &str, wall: Duration, packets: u64) -> Timing {
        Timing {
            name: name.to_string(),
            wall,
            packets,
            peak_rss_kib: None,
            reader_cpu: None,
            workers_cpu: None,
            steal: None,
            rounds: Vec::new(),
            note: String::new(),
        }
    }
}

/// One frame held in memory: what [`Packet`] carries, with its bytes in [`Frames::bytes`].
struct FrameMeta {
    ts_nanos: i64,
    link_type: u32,
    start: usize,
    len: u32,
    orig_len: u32,
    frame_number: u64,
}

/// The first frames of a capture, copied into memory for the engine-only measurement.
struct Frames {
    bytes: Vec<u8>,
    meta: Vec<FrameMeta>,
    /// Bytes of the file the frames cover (record headers included).
    file_bytes: u64,
}

/// Read frames from the start of `path` with the crate's reader until `limit` bytes of the
/// file are consumed (or the file ends), and copy them into memory.
fn load_frames(path: &Path, limit: u64) -> Frames {
    let mut reader = CaptureReader::open(path).expect("capture");
    let size = std::fs::metadata(path).map_or(limit, |m| m.len());
    let mut bytes = Vec::with_capacity(limit.min(size) as usize);
    let mut meta = Vec::new();
    while reader.bytes_consumed() < limit {
        let Some(p) = reader.next_packet().expect("capture readable") else {
            break;
        };
        meta.push(FrameMeta {
            ts_nanos: p.ts_nanos,
            link_type: p.link_type,
            start: bytes.len(),
            len: p.data.len() as u32,
            orig_len: p.orig_len,
            frame_number: p.frame_number,
        });
        bytes.extend_from_slice(p.data);
    }
    Frames {
        bytes,
        meta,
        file_bytes: reader.bytes_consumed(),
    }
}

/// One worker's work on `frames`, as the pipeline hands it over with one thread: frames at
/// odd input indices, an expiry tick (even index) before a frame when one is due, then the
/// end of input. Times `Engine::new` to `finish`; returns the wall time and records emitted.
fn engine_once(name: &str, frames: &Frames) -> (Duration, u64) {
    let config = Config::default();
    let mut ticker = Ticker::new(&config.limits);
    let started = Instant::now();
    let mut engine = Engine::new(config);
    engine.begin_file(name);
    let mut records = 0u64;
    let mut out = |e: Emitted| {
        records += 1;
        black_box(e);
    };
    for (i, m) in frames.meta.iter().enumerate() {
        let i = i as u64 + 1;
        let packet = Packet {
            ts_nanos: m.ts_nanos,
            link_type: m.link_type,
            data: &frames.bytes[m.start..m.start + m.len as usize],
            orig_len: m.orig_len,
            frame_number: m.frame_number,
            interface: None,
            direction: None,
        };
        if ticker.due(m.ts_nanos) {
            engine.tick(2 * i, m.ts_nanos, &mut out);
        }
        engine.packet(2 * i + 1, &packet, &mut out);
    }
    engine.finish(&mut out);
    let wall = started.elapsed();
    assert_eq!(engine.stats().frames, frames.meta.len() as u64);
    drop(engine);
    (wall, records)
}

/// The engine alone on the first `limit` bytes of the file, in memory: best of 3 runs.
fn engine_in_memory(path: &Path, limit: u64) -> Timing {
    let frames = load_frames(path, limit);
    let name = path.display().to_string();
    let mut best: Option<Duration> = None;
    let mut records = None;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (wall, emitted) = engine_once(&name, &frames);
        // A run that reports nothing measured nothing.
        assert!(emitted > 0, "the engine emitted no records");
        if let Some(previous) = records.replace(emitted) {
            assert_eq!(previous, emitted, "engine runs disagree");
        }
        runs.push(format!("{:.3}", wall.as_secs_f64()));
        best = Some(best.map_or(wall, |b| b.min(wall)));
    }
    let packets = frames.meta.len() as u64;
    let mut timing = Timing::in_process(
        "engine, 1 worker (in memory)",
        best.expect("three runs"),
        packets,
    );
    timing.note = format!(
        "best of 3 (runs {} s); first {:.0} MiB of the file, {packets} packets, {} records",
        runs.join(", "),
        frames.file_bytes as f64 / 1048576.0,
        records.unwrap_or(0)
    );
    timing
}

/// Lines in a file, counted without holding it in memory.
fn count_lines(path: &Path) -> u64 {
    let Ok(mut file) = File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) | Err(_) => return lines,
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
        }
    }
}

/// The floor: read the whole file with a 4 MiB buffer, walk every pcap record and touch
/// every packet's first byte. Returns the number of packets.
fn floor(path: &Path) -> u64 {
    let mut file = File::open(path).expect("capture");
    let mut buf = vec![0u8; 4 << 20];
    let (mut have, mut at, mut packets, mut sum) = (0usize, 24usize, 0u64, 0u64);
    let mut first = true;
    loop {
        let n = file.read(&mut buf[have..]).expect("read");
        have += n;
        if first {
            first = false;
        }
        while at + 16 <= have {
            let len = u32::from_le_bytes(buf[at + 8..at + 12].try_into().unwrap()) as usize;
            if at + 16 + len > have {
                break;
            }
            sum = sum.wrapping_add(u64::from(buf[at + 16]));
            packets += 1;
            at += 16 + len;
        }
        if n == 0 {
            break;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        at = 0;
    }
    std::hint::black_box(sum);
    packets
}

/// The reader alone: every frame of the file through tlscensus's capture reader, the decoder
/// and the shard hash, on this thread, handed to no one. Returns the number of packets.
fn reader_alone(path: &Path) -> u64 {
    let mut reader = CaptureReader::open(path).expect("capture");
    let (mut packets, mut sum) = (0u64, 0u64);
    while let Some(packet) = reader.next_packet().expect("readable capture") {
        packets += 1;
        if let Ok(segment) = decode::decode(packet.link_type, packet.data) {
            sum = sum.wrapping_add(decode::shard_hash(&segment));
        }
    }
    black_box(sum);
    packets
}

/// The reader thread's CPU seconds from the `--stats` lines on `stderr`.
fn reader_cpu(stderr: &str) -> Option<f64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("cpu reader"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|secs| secs.parse().ok())
}

/// The workers' CPU seconds together, from the `--stats` lines on `stderr`.
fn workers_cpu(stderr: &str) -> Option<f64> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("cpu worker"))
        .filter_map(|rest| rest.split_whitespace().nth(1)?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

/// Total steal time of all vCPUs so far (the eighth field of `/proc/stat`'s `cpu` line, in
/// clock ticks of 10 ms, Linux's USER_HZ on every common architecture); `None` elsewhere.
/// On a virtual machine the hypervisor runs other guests on our cores now and then; a run
/// that lost much time this way measured the neighbours as much as the program.
fn steal_so_far() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: u64 = stat
        .lines()
        .next()?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Time `run`, with the steal time the machine suffered meanwhile.
fn with_steal<T>(run: impl FnOnce() -> T) -> (T, Option<Duration>) {
    let before = steal_so_far();
    let out = run();
    let steal = steal_so_far()
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before));
    (out, steal)
}

/// One run in a note: its wall time, and the steal time during it when there was any
/// (`0.512/s40`: 0.512 s, 40 ms stolen).
fn run_note(timing: &Timing) -> String {
    let wall = timing.wall.as_secs_f64();
    match timing.steal {
        Some(steal) if !steal.is_zero() => format!("{wall:.3}/s{}", steal.as_millis()),
        _ => format!("{wall:.3}"),
    }
}

/// Run a command under `/usr/bin/time` for its peak memory; returns wall time, peak RSS and
/// standard output.
fn timed(name: &str, program: &str, args: &[&str]) -> Option<(Timing, String)> {
    let run = measure(program, args)?;
    Some((
        Timing {
            name: name.to_string(),
            wall: run.wall,
            packets: 0,
            peak_rss_kib: run.peak_kib,
            reader_cpu: reader_cpu(&run.stderr),
            workers_cpu: workers_cpu(&run.stderr),
            steal: run.steal,
            rounds: Vec::new(),
            note: String::new(),
        },
        run.stdout,
    ))
}

fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| format!("{dir}/{program}"))
        .find(|p| Path::new(p).is_file())
}

/// The SYN flood of issue 22: 3 million SYNs from random sources within 10 s (half answered
/// with a SYN-ACK) and 1,000 real handshakes, read with default settings. Reports wall time
/// and the peak RSS of the whole process, and checks every real handshake against the
/// generator's truth and `pcaps/expected.json` (what the tools that made the templates
/// said). `--threads N` adds that option (default: the tool's default).
fn flood(args: &[String]) {
    let spec = gen::Flood {
        syns: arg(args, "--syns")
            .map(|v| v.parse().expect("--syns takes a count"))
            .unwrap_or(gen::Flood::default().syns),
        ..gen::Flood::default()
    };
    let (path, truth) = gen::ensure_flood(&spec);
    let file = path.to_str().expect("utf-8 path");
    floor(&path);
    let events = std::env::temp_dir().join("tlscensus-flood-events.jsonl");
    let mut run_args = vec![
        "read",
        file,
        "--events",
        events.to_str().expect("utf-8"),
        "--stats",
    ];
    let threads = arg(args, "--threads");
    if let Some(threads) = threads {
        run_args.extend(["--threads", threads]);
    }
    let extra = arg(args, "--flow-memory");
    if let Some(budget) = extra {
        run_args.extend(["--flow-memory", budget]);
    }
    let tlscensus = env!("CARGO_BIN_EXE_tlscensus");
    let (timing, _) = timed("tlscensus (flood)", tlscensus, &run_args).expect("tlscensus ran");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .expect("events written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON record"))
        .collect();
    let _ = std::fs::remove_file(&events);
    let expected: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/expected.json"))
            .expect("pcaps/expected.json"),
    )
    .expect("expected.json is JSON");
    let (mut exact, mut wrong) = (0, Vec::new());
    let truth_text = std::fs::read_to_string(&truth).expect("truth file");
    for line in truth_text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let want = expected
            .iter()
            .find(|e| e["file"] == f[4])
            .expect("template in expected.json");
        let found = records.iter().find(|r| {
            r["client"]["ip"] == f[0]
                && r["client"]["port"].as_u64() == f[1].parse().ok()
                && r["server"]["ip"] == f[2]
                && r["server"]["port"].as_u64() == f[3].parse().ok()
        });
        let Some(r) = found else {
            wrong.push(format!("{line}: no record"));
            continue;
        };
        let sh = &r["server_hello"];
        let cipher = sh["cipher_suite"].as_u64().map(|c| format!("{c:#06x}"));
        let same = r["client_hello"]["sni"] == want["sni"]
            && (want["cipher_suite"].is_null()
                || cipher.as_deref() == want["cipher_suite"].as_str())
            && (want["negotiated_version"].is_null()
                || sh["version"] == want["negotiated_version"]);
        if same {
            exact += 1;
        } else {
            wrong.push(format!("{line}: {r}"));
        }
    }
    let handshakes = truth_text.lines().count();
    println!(
        "flood: {} ({} SYNs, {handshakes} real handshakes): wall {:.2} s, peak RSS {} MiB, \
         {exact}/{handshakes} real handshakes exact, {} records",
        path.display(),
        spec.syns,
        timing.wall.as_secs_f64(),
        timing
            .peak_rss_kib
            .map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        records.len()
    );
    for w in wrong.iter().take(10) {
        println!("  not exact: {w}");
    }
    assert!(
        wrong.is_empty(),
        "{} real handshakes not exact",
        wrong.len()
    );
}

/// The value after `flag` on the command line.
fn arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// The generated capture of `mib` MiB (the generator's target) with `bulk` application-data
/// packets per connection on average, made if missing.
fn capture(mib: u64, bulk: u32) -> std::path::PathBuf {
    let spec = gen::Spec {
        target_bytes: mib << 20,
        bulk_packets: bulk,
        ..gen::Spec::default()
    };
    let (path, generated) = gen::ensure(&spec);
    if let Some(g) = generated {
        println!(
            "generated {}: {} packets, {} connections, {:.1} % bulk data packets",
            path.display(),
            g.packets,
            g.connections,
            100.0 * (1.0 - (g.handshake_packets + 6 * g.connections) as f64 / g.packets as f64)
        );
    }
    path
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--flood") {
        flood(&args);
        return;
    }
    if args.iter().any(|a| a == "--handshakes") {
        handshakes(&args);
        return;
    }
    if let Some(sizes) = arg(&args, "--sizes") {
        let sizes: Vec<u64> = sizes
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("--sizes takes MiB figures: 190,1900,19000")
            })
            .collect();
        sweep(&sizes);
        return;
    }
    let mib = arg(&args, "--mib")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(256);
    let engine_mib = arg(&args, "--engine-mib")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(512);
    let rounds = arg(&args, "--rounds")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1);
    let bulk = arg(&args, "--bulk")
        .map(|v| v.parse::<u32>().expect("--bulk takes a packet count"))
        .unwrap_or(gen::Spec::default().bulk_packets);
    let path = capture(mib, bulk);
    if args.iter().any(|a| a == "--generate-only") {
        println!("{}", path.display());
        return;
    }
    let file = path.to_str().expect("utf-8 path");
    // Warm the page cache.
    let packets = floor(&path);

    // The floor, tlscensus and ndpiReader take turns, `rounds` times, and each keeps its best
    // (shortest) wall time and its highest peak memory: on a shared virtual machine whose
    // speed drifts from one second to the next, interleaving exposes every contender to the
    // same drift, and the best of several runs is the least disturbed one.
    let tlscensus = env!("CARGO_BIN_EXE_tlscensus");
    let ndpi = which("ndpiReader");
    if ndpi.is_none() {
        println!("ndpiReader not installed (Debian: libndpi-bin): skipped");
    }
    let mut best: Vec<Timing> = Vec::new();
    let mut keep = |timing: Timing| keep_best(&mut best, timing);
    let mut records = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let (counted, steal) = with_steal(|| floor(&path));
        assert_eq!(counted, packets);
        keep(Timing {
            steal,
            ..Timing::in_process("floor (read + walk)", started.elapsed(), packets)
        });
        let started = Instant::now();
        let (counted, steal) = with_steal(|| reader_alone(&path));
        assert_eq!(counted, packets);
        keep(Timing {
            steal,
            ..Timing::in_process("reader alone (1 thread)", started.elapsed(), packets)
        });
        for (threads, reading) in [("1", "map"), ("2", "map"), ("2", "split"), ("2", "one")] {
            let events = std::env::temp_dir().join("tlscensus-bench-events.jsonl");
            let events = events.to_str().expect("utf-8 path");
            let name = match reading {
                "map" => format!("tlscensus --threads {threads}"),
                _ => format!("tlscensus --threads {threads} --reading {reading}"),
            };
            let run = timed(
                &name,
                tlscensus,
                &[
                    "read",
                    file,
                    "--threads",
                    threads,
                    "--reading",
                    reading,
                    "--events",
                    events,
                    "--stats",
                ],
            );
            if let Some((mut timing, _)) = run {
                timing.packets = packets;
                let lines = std::fs::read_to_string(events).map_or(0, |t| t.lines().count());
                // A run that reports nothing measured nothing.
                assert!(lines > 0, "tlscensus wrote no records");
                if let Some(previous) = records.replace(lines) {
                    assert_eq!(previous, lines, "runs disagree on the number of records");
                }
                keep(timing);
            }
            let _ = std::fs::remove_file(events);
        }
        if let Some(ndpi) = &ndpi {
            if let Some((mut timing, _)) = timed("ndpiReader", ndpi, &["-i", file, "-q"]) {
                timing.packets = packets;
                keep(timing);
            }
        }
    }
    let mut timings = best;
    for t in &mut timings {
        let mut note = Vec::new();
        if t.name.starts_with("tlscensus") {
            let records = records.unwrap_or(0);
            let rate = records as f64 / t.wall.as_secs_f64() / 1000.0;
            note.push(format!("{records} records ({rate:.0} k/s)"));
            if let Some(cpu) = t.reader_cpu {
                note.push(format!("reader thread {cpu:.3} CPU-s"));
            }
            if let Some(cpu) = t.workers_cpu {
                note.push(format!("workers {cpu:.3} CPU-s"));
            }
        }
        if rounds > 1 {
            note.push(format!("best of {rounds} (runs {})", t.note));
        }
        t.note = note.join("; ");
    }
    // The engine alone, after the runs above so its frames in memory do not sit beside
    // them; shown under the floor and the reader.
    timings.insert(2, engine_in_memory(&path, engine_mib << 20));
    let skip_tshark = args.iter().any(|a| a == "--no-tshark");
    if skip_tshark {
        println!("tshark skipped (--no-tshark)");
    } else if let Some(tshark) = which("tshark") {
        let run = timed(
            "tshark (hellos)",
            &tshark,
            &[
                "-r",
                file,
                "-Y",
                "tls.handshake.type == 1 || tls.handshake.type == 2",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        );
        if let Some((mut timing, out)) = run {
            timing.packets = packets;
            timing.note = format!("{} hellos", out.lines().count());
            timings.push(timing);
        }
    } else {
        println!("tshark not installed: skipped");
    }

    // Ratios are of time per packet: the in-memory engine run covers only part of the file.
    let per_packet = |t: &Timing| t.wall.as_secs_f64() / t.packets.max(1) as f64;
    let floor_per_packet = per_packet(&timings[0]);
    let ours = timings
        .iter()
        .find(|t| t.name.ends_with("--threads 2"))
        .map_or(floor_per_packet, per_packet);
    println!(
        "\n{} ({:.0} MiB, {} packets)\n",
        path.display(),
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1048576.0,
        packets
    );
    println!(
        "{:<36} {:>9} {:>10} {:>10} {:>9} {:>12}  note",
        "run", "wall s", "Mpkt/s", "peak MiB", "× floor", "× tlscensus2"
    );
    for t in &timings {
        let wall = t.wall.as_secs_f64();
        println!(
            "{:<36} {:>9.3} {:>10.2} {:>10} {:>9.2} {:>12.2}  {}",
            t.name,
            wall,
            t.packets as f64 / wall / 1e6,
            t.peak_rss_kib
                .map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
            per_packet(t) / floor_per_packet,
            per_packet(t) / ours,
            t.note
        );
    }
    println!();
    paired_ratios(&timings);
    if timings.iter().any(|t| t.steal.is_some()) {
        println!(
            "\nruns: wall seconds, /sN when the hypervisor took N ms of CPU from this VM's \
             vCPUs during the run (/proc/stat steal, all vCPUs together)"
        );
    }
}

/// Keep, per contender, the best (shortest) wall time, the highest peak memory and the
/// least CPU, and every round's wall time.
fn keep_best(best: &mut Vec<Timing>, timing: Timing) {
    match best.iter_mut().find(|t| t.name == timing.name) {
        Some(kept) => {
            kept.rounds.push(timing.wall);
            kept.peak_rss_kib = kept.peak_rss_kib.max(timing.peak_rss_kib);
            let least = |a: Option<f64>, b: Option<f64>| a.into_iter().chain(b).reduce(f64::min);
            kept.reader_cpu = least(kept.reader_cpu, timing.reader_cpu);
            kept.workers_cpu = least(kept.workers_cpu, timing.workers_cpu);
            if timing.wall < kept.wall {
                kept.wall = timing.wall;
            }
            kept.note = format!("{} {}", kept.note, run_note(&timing));
        }
        None => {
            let mut timing = timing;
            timing.note = run_note(&timing);
            timing.rounds = vec![timing.wall];
            best.push(timing);
        }
    }
}

/// The targets' ratios round by round: tlscensus with 2 threads over the floor, and
/// ndpiReader over tlscensus, each the median of the ratios taken within one round.
fn paired_ratios(timings: &[Timing]) {
    let rounds = |name: &str| timings.iter().find(|t| t.name == name).map(|t| &t.rounds);
    for (slower, faster) in [
        ("tlscensus --threads 2", "floor (read + walk)"),
        ("ndpiReader", "tlscensus --threads 2"),
    ] {
        let (Some(slower_rounds), Some(faster_rounds)) = (rounds(slower), rounds(faster)) else {
            continue;
        };
        let mut ratios: Vec<f64> = slower_rounds
            .iter()
            .zip(faster_rounds)
            .map(|(s, f)| s.as_secs_f64() / f.as_secs_f64())
            .collect();
        if ratios.is_empty() {
            continue;
        }
        let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        println!(
            "{slower} / {faster}: {median:.2}, median of the rounds' ratios ({})",
            listed.join(" ")
        );
    }
}

/// Memory sweep: `tlscensus read --threads 2` alone on the capture of each size, for wall
/// time and peak RSS. The packets are counted by an untimed walk of the file, which also
/// brings it into the page cache (as far as it fits).
fn sweep(sizes: &[u64]) {
    const PEAK_TARGET_MIB: f64 = 64.0;
    let tlscensus = env!("CARGO_BIN_EXE_tlscensus");
    let mut rows = Vec::new();
    for &mib in sizes {
        let path = capture(mib, gen::Spec::default().bulk_packets);
        let file = path.to_str().expect("utf-8 path");
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        let packets = floor(&path);
        let events = std::env::temp_dir().join(format!("tlscensus-sweep-{mib}MiB-events.jsonl"));
        let events_arg = events.to_str().expect("utf-8 path");
        eprintln!("tlscensus read {file} --threads 2 --events {events_arg}");
        let (timing, _) = timed(
            &format!("{mib} MiB"),
            tlscensus,
            &["read", file, "--threads", "2", "--events", events_arg],
        )
        .expect("tlscensus read failed");
        let records = count_lines(&events);
        // A run that reports nothing measured nothing.
        assert!(records > 0, "tlscensus wrote no records");
        let wall = timing.wall.as_secs_f64();
        let peak = timing.peak_rss_kib.map(|k| k as f64 / 1024.0);
        eprintln!(
            "  {wall:.3} s, peak {} MiB",
            peak.map_or("-".to_string(), |p| format!("{p:.1}"))
        );
        rows.push((mib, path, bytes, packets, records, wall, peak));
    }
    println!(
        "\ntlscensus read FILE --threads 2 --events /tmp/tlscensus-sweep-<MiB>MiB-events.jsonl\n"
    );
    println!(
        "{:>8} {:>14} {:>11} {:>9} {:>9} {:>9} {:>9}  file",
        "MiB", "file bytes", "packets", "records", "wall s", "Mpkt/s", "peak MiB"
    );
    for (mib, path, bytes, packets, records, wall, peak) in &rows {
        println!(
            "{:>8} {:>14} {:>11} {:>9} {:>9.3} {:>9.2} {:>9}  {}",
            mib,
            bytes,
            packets,
            records,
            wall,
            *packets as f64 / wall / 1e6,
            peak.map_or("-".to_string(), |p| format!("{p:.1}")),
            path.display()
        );
    }
    let peaks: Vec<f64> = rows.iter().filter_map(|r| r.6).collect();
    if let (Some(low), Some(high)) = (
        peaks.iter().copied().reduce(f64::min),
        peaks.iter().copied().reduce(f64::max),
    ) {
        println!(
            "\npeak RSS from {low:.1} to {high:.1} MiB (issue #5: at most {PEAK_TARGET_MIB:.0} MiB at every size: {})",
            if high <= PEAK_TARGET_MIB { "met" } else { "NOT met" }
        );
    }
}

/// One run of a program under `/usr/bin/time`: wall time, and what the process reported.
struct Measured {
    wall: Duration,
    /// Peak resident memory of the whole process (`/usr/bin/time`'s `%M`), KiB.
    peak_kib: Option<u64>,
    /// User + system CPU seconds of the whole process (`%U` + `%S`).
    cpu: Option<f64>,
    steal: Option<Duration>,
    stdout: String,
    stderr: String,
}

/// Marks the line `/usr/bin/time` adds to the program's standard error.
const TIME_MARK: &str = "@@time";

/// Run `program` under `/usr/bin/time` (when installed); `None`, with its standard error
/// shown, when it fails.
fn measure(program: &str, args: &[&str]) -> Option<Measured> {
    let time = Path::new("/usr/bin/time");
    let mut command = if time.is_file() {
        let mut c = Command::new(time);
        c.args(["-f", &format!("{TIME_MARK} %M %U %S")])
            .arg(program)
            .args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    };
    let started = Instant::now();
    let (output, steal) = with_steal(|| {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
    });
    let wall = started.elapsed();
    let output = output.ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        eprintln!("{program} {} failed: {stderr}", args.join(" "));
        return None;
    }
    let times: Vec<f64> = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(TIME_MARK))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Some(Measured {
        wall,
        peak_kib: times.first().map(|&k| k as u64),
        cpu: (times.len() == 3).then(|| times[1] + times[2]),
        steal,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    })
}

/// Every `cpu <thread> N s` line of tlscensus's `--stats`: each thread's CPU seconds.
fn thread_cpus(stderr: &str) -> Vec<(String, f64)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("cpu "))
        .filter_map(|rest| {
            // `<name words> <seconds> s ...`: the name ends where the seconds begin.
            let words: Vec<&str> = rest.split_whitespace().collect();
            let at = words
                .windows(2)
                .position(|w| w[1] == "s" && w[0].parse::<f64>().is_ok())?;
            Some((words[..at].join(" "), words[at].parse().ok()?))
        })
        .collect()
}

/// mercury's own figures from `-v`: packets processed and its packets per second (its
/// timer runs from the start of the file's processing to its end, so it leaves out its
/// start-up and exit).
fn mercury_rate(stderr: &str) -> Option<(u64, f64)> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Packets processed:"))?;
    let field = |name: &str| {
        line.split(", ")
            .find_map(|f| f.trim().strip_prefix(name))
            .map(str::trim)
    };
    let packets = field("Packets processed:")?.parse().ok()?;
    let rate = field("packets per second:")?.parse().ok()?;
    Some((packets, rate))
}

/// The median of `values` (the mean of the middle two for an even count; NaN for none).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One contender of the handshake bench: every round's measurement.
struct Series {
    name: String,
    runs: Vec<Measured>,
    /// mercury's self-reported packets per second, per run.
    self_rates: Vec<f64>,
    /// mercury: its options after `-r FILE -f JSON -v`.
    options: &'static [&'static str],
    /// mercury: JSON lines its last run wrote.
    lines: u64,
}

impl Series {
    fn new(name: &str) -> Series {
        Series {
            name: name.to_string(),
            runs: Vec::new(),
            self_rates: Vec::new(),
            options: &[],
            lines: 0,
        }
    }
    /// mercury with `options` after `-r FILE -f JSON -v`.
    fn mercury(options: &'static [&'static str]) -> Series {
        let name = format!("mercury -r F -f J -v {}", options.join(" "));
        Series {
            options,
            ..Series::new(name.trim_end())
        }
    }
    /// The median of mercury's own packets per second (`-v`), if it printed them.
    fn self_rate(&self) -> Option<f64> {
        (!self.self_rates.is_empty()).then(|| median(&self.self_rates))
    }
    fn walls(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.wall.as_secs_f64()).collect()
    }
    fn median_wall(&self) -> f64 {
        median(&self.walls())
    }
    fn peak_mib(&self) -> Option<f64> {
        let peak = self.runs.iter().filter_map(|r| r.peak_kib).max()?;
        Some(peak as f64 / 1024.0)
    }
    /// The whole process's median CPU seconds (user + system), when known.
    fn median_cpu(&self) -> Option<f64> {
        let cpu: Vec<f64> = self.runs.iter().filter_map(|r| r.cpu).collect();
        (!cpu.is_empty()).then(|| median(&cpu))
    }
    /// Each thread's median CPU seconds over the runs (from `--stats`), then the whole
    /// process's median CPU.
    fn cpu_note(&self) -> String {
        let process = self
            .median_cpu()
            .map_or("-".to_string(), |c| format!("process {c:.2}"));
        let per_run: Vec<Vec<(String, f64)>> =
            self.runs.iter().map(|r| thread_cpus(&r.stderr)).collect();
        let threads = match per_run.first() {
            Some(first) if !first.is_empty() => first
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let secs: Vec<f64> = per_run
                        .iter()
                        .filter_map(|threads| threads.get(i).map(|t| t.1))
                        .collect();
                    format!("{} {:.2}", name.replace("worker ", "w"), median(&secs))
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => return process,
        };
        format!("{threads}; {process}")
    }
}

/// Issue 27's measurement: the handshake-only capture (100,000 connections from 20,000
/// clients, no bulk data, generated deterministically with a truth file), on which
///
/// * `tlscensus read FILE --threads 1` and `--threads 2` (the census alone, no `--events`)
///   take turns `--rounds` times (default 5; the order swaps every round), each reported by
///   its median wall time, with the median of the per-round ratios t1/t2 (target ≥ 1.8);
/// * the floor (a bare read of the file) and mercury (when found: `MERCURY=/path`, or on
///   PATH; `benches/peers/build_mercury.sh` builds it) run in the same rounds; mercury's
///   own packets per second (`-v`) is set against tlscensus's whole-process rate (target
///   ≥ 3×);
/// * one pair with `--events` shows what writing the events costs; their events must be
///   byte-identical, and the 2-thread run's must match the generator's truth file
///   connection by connection;
/// * the peak memory of the whole 2-thread process (target ≤ 64 MiB).
fn handshakes(args: &[String]) {
    const TARGET_SCALING: f64 = 1.8;
    const TARGET_VS_MERCURY: f64 = 3.0;
    const TARGET_PEAK_MIB: f64 = 64.0;
    let count = |flag: &str, default: u64| {
        arg(args, flag).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} takes a count, not {v:?}"))
        })
    };
    let spec = gen::Spec {
        connections: Some(count("--connections", 100_000)),
        clients: count("--clients", 20_000) as u32,
        bulk_packets: 0,
        // Only paces the generator's progress lines.
        target_bytes: 520 << 20,
        ..gen::Spec::default()
    };
    let rounds = count("--rounds", 5).max(1) as usize;
    let (path, truth, generated) = gen::ensure_handshakes(&spec);
    if let Some(g) = generated {
        println!(
            "generated {}: {} packets, {} connections, {:.0} MB",
            path.display(),
            g.packets,
            g.connections,
            g.bytes as f64 / 1e6
        );
    }
    if args.iter().any(|a| a == "--generate-only") {
        println!("{}\n{}", path.display(), truth.display());
        return;
    }
    // Only check an events file written elsewhere (another build, another option) against
    // the truth.
    if let Some(events) = arg(args, "--check-events") {
        let (exact, wrong, records) =
            check_truth(&truth, &std::fs::read(events).expect("--check-events FILE"));
        println!(
            "{events}: {records} records; {exact} of {} truth connections exact against {}",
            exact + wrong.len(),
            truth.display()
        );
        for w in wrong.iter().take(10) {
            println!("  not exact: {w}");
        }
        assert!(wrong.is_empty(), "{} connections not exact", wrong.len());
        return;
    }
    let file = path.to_str().expect("utf-8 path");
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    // Read once untimed: every timed run finds the file in the page cache.
    let packets = floor(&path);
    // `TLSCENSUS=/path` measures another build (a branch's, an installed one) with the
    // same capture and checks.
    let tlscensus_env = std::env::var("TLSCENSUS").ok();
    let tlscensus = tlscensus_env
        .as_deref()
        .unwrap_or(env!("CARGO_BIN_EXE_tlscensus"));
    println!("tlscensus: {tlscensus}");
    let mercury = std::env::var("MERCURY")
        .ok()
        .filter(|m| Path::new(m).is_file())
        .or_else(|| which("mercury"))
        .filter(|_| !args.iter().any(|a| a == "--no-mercury"));
    let mercury_json = std::env::temp_dir().join("tlscensus-bench-mercury.json");
    let mercury_json = mercury_json.to_str().expect("utf-8 path");
    match &mercury {
        Some(m) => {
            let version = Command::new(m)
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).replace('\n', " "))
                .unwrap_or_default();
            println!("mercury: {m} ({})", version.trim());
        }
        None => println!(
            "mercury not found (MERCURY=/path/to/mercury or on PATH; \
             benches/peers/build_mercury.sh builds it): skipped"
        ),
    }

    let mut floor_series = Series::new("floor (read + walk)");
    let mut one = Series::new("tlscensus --threads 1");
    let mut two = Series::new("tlscensus --threads 2");
    // mercury as the issue ran it (every protocol it knows: TCP, TLS, SMTP, IMAP ...), and
    // with its output cut to TLS (hellos and certificates), its lightest run that still
    // writes what tlscensus's events hold.
    let mut mercs = if mercury.is_some() {
        vec![Series::mercury(&[]), Series::mercury(&["--select=tls"])]
    } else {
        Vec::new()
    };
    let census = |threads: &str| {
        measure(tlscensus, &["read", file, "--threads", threads, "--stats"])
            .expect("tlscensus read failed")
    };
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        let started = Instant::now();
        let (counted, steal) = with_steal(|| floor(&path));
        assert_eq!(counted, packets);
        floor_series.runs.push(Measured {
            wall: started.elapsed(),
            peak_kib: None,
            cpu: None,
            steal,
            stdout: String::new(),
            stderr: String::new(),
        });
        // Alternate which goes first, so neither always follows the floor.
        if round % 2 == 0 {
            one.runs.push(census("1"));
            two.runs.push(census("2"));
        } else {
            two.runs.push(census("2"));
            one.runs.push(census("1"));
        }
        for merc in &mut mercs {
            let m = mercury.as_deref().expect("mercury found");
            let mut margs = vec!["-r", file, "-f", mercury_json, "-v"];
            margs.extend(merc.options);
            if let Some(run) = measure(m, &margs) {
                match mercury_rate(&run.stderr) {
                    Some((counted, rate)) => {
                        if counted != packets {
                            println!("mercury counted {counted} packets, the file holds {packets}");
                        }
                        merc.self_rates.push(rate);
                    }
                    None => println!("mercury -v printed no packet rate: {}", run.stderr),
                }
                merc.runs.push(run);
                merc.lines = count_lines(Path::new(mercury_json));
            }
            let _ = std::fs::remove_file(mercury_json);
        }
    }

    // One pair with the events written, then the events checked.
    let events =
        |threads: &str| std::env::temp_dir().join(format!("tlscensus-bench-hs-t{threads}.jsonl"));
    let mut with_events = Vec::new();
    for threads in ["1", "2"] {
        let out = events(threads);
        let out = out.to_str().expect("utf-8 path");
        let mut series = Series::new(&format!("tlscensus --threads {threads} --events"));
        series.runs.push(
            measure(
                tlscensus,
                &[
                    "read",
                    file,
                    "--threads",
                    threads,
                    "--events",
                    out,
                    "--stats",
                ],
            )
            .expect("tlscensus read --events failed"),
        );
        with_events.push(series);
    }
    let t1_events = std::fs::read(events("1")).expect("events of --threads 1");
    let t2_events = std::fs::read(events("2")).expect("events of --threads 2");
    let identical = t1_events == t2_events;
    drop(t1_events);
    let (exact, wrong, records) = check_truth(&truth, &t2_events);
    drop(t2_events);
    for threads in ["1", "2"] {
        let _ = std::fs::remove_file(events(threads));
    }

    // The table.
    let floor_wall = floor_series.median_wall();
    let t1_wall = one.median_wall();
    let mercury_rates: Vec<Option<f64>> = mercs.iter().map(Series::self_rate).collect();
    println!(
        "\n{} ({:.0} MiB, {packets} packets, {} connections from {} clients, no bulk data)\n\
         medians of {rounds} rounds; file in the page cache\n",
        path.display(),
        bytes as f64 / 1048576.0,
        spec.connections.unwrap_or(0),
        spec.clients
    );
    println!(
        "{:<34} {:>7} {:>7} {:>8} {:>7} {:>6} {:>7} {:>7}  CPU s per thread (median)",
        "run", "wall s", "Mpkt/s", "peak MiB", "× floor", "× t1", "× merc", "× m tls"
    );
    let mut rows: Vec<&Series> = vec![&floor_series, &one, &two];
    rows.extend(with_events.iter());
    rows.extend(mercs.iter().filter(|m| !m.runs.is_empty()));
    for s in &rows {
        let wall = s.median_wall();
        let rate = packets as f64 / wall;
        // tlscensus's whole-process rate over mercury's own (`-v`).
        let vs = |m: Option<&Option<f64>>| match (m, s.name.starts_with("tlscensus")) {
            (Some(Some(m)), true) => format!("{:.2}", rate / m),
            _ => "-".to_string(),
        };
        let cpu = match s.self_rate() {
            Some(own) => format!("{}; own rate {:.2} Mpkt/s", s.cpu_note(), own / 1e6),
            None if s.name.starts_with("floor") => "-".to_string(),
            None => s.cpu_note(),
        };
        println!(
            "{:<34} {:>7.3} {:>7.2} {:>8} {:>7.2} {:>6.2} {:>7} {:>7}  {cpu}",
            s.name,
            wall,
            rate / 1e6,
            s.peak_mib().map_or("-".into(), |p| format!("{p:.1}")),
            wall / floor_wall,
            t1_wall / wall,
            vs(mercury_rates.first()),
            vs(mercury_rates.get(1)),
        );
    }
    let note = |s: &Series| {
        s.runs
            .iter()
            .map(|r| match r.steal {
                Some(st) if !st.is_zero() => {
                    format!("{:.3}/s{}", r.wall.as_secs_f64(), st.as_millis())
                }
                _ => format!("{:.3}", r.wall.as_secs_f64()),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("\nruns, wall s in round order (/sN: N ms stolen by the hypervisor meanwhile):");
    for s in [&floor_series, &one, &two].into_iter().chain(&mercs) {
        if !s.runs.is_empty() {
            println!("  {:<32} {}", s.name, note(s));
        }
    }

    // The targets.
    let ratios: Vec<f64> = one
        .walls()
        .iter()
        .zip(two.walls())
        .map(|(a, b)| a / b)
        .collect();
    let scaling = median(&ratios);
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let listed = |values: &[f64], scale: f64| {
        values
            .iter()
            .map(|r| format!("{:.2}", r / scale))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "\n2 workers over 1: {scaling:.2}, median of the pairs' t1/t2 ({}) — target ≥ {TARGET_SCALING}: {}",
        listed(&ratios, 1.0),
        met(scaling >= TARGET_SCALING)
    );
    let ours = packets as f64 / two.median_wall();
    for merc in &mercs {
        let Some(own) = merc.self_rate() else {
            continue;
        };
        let whole = packets as f64 / merc.median_wall();
        println!(
            "against {}: tlscensus --threads 2 {:.2} Mpkt/s (whole process) over mercury's own \
             {:.2} Mpkt/s (its -v; runs {}) = {:.2} — target ≥ {TARGET_VS_MERCURY}: {}; over \
             mercury's whole process ({:.2} Mpkt/s): {:.2}; mercury wrote {} JSON lines",
            merc.name,
            ours / 1e6,
            own / 1e6,
            listed(&merc.self_rates, 1e6),
            ours / own,
            met(ours / own >= TARGET_VS_MERCURY),
            whole / 1e6,
            ours / whole,
            merc.lines
        );
        // Packets per CPU-second of the whole process: what a loaded machine disturbs
        // least (wall time there measures the neighbours too).
        let per_cpu = |s: &Series| s.median_cpu().map(|c| packets as f64 / c);
        if let (Some(t), Some(m)) = (per_cpu(&two), per_cpu(merc)) {
            println!(
                "  per CPU-second of the whole process: tlscensus --threads 2 {:.2} Mpkt, \
                 {} {:.2} Mpkt: {:.2}",
                t / 1e6,
                merc.name,
                m / 1e6,
                t / m
            );
        }
    }
    let peak = [&two, &with_events[1]]
        .iter()
        .filter_map(|s| s.peak_mib())
        .reduce(f64::max);
    if let Some(peak) = peak {
        println!(
            "peak memory, --threads 2 (with and without --events): {peak:.1} MiB — target ≤ {TARGET_PEAK_MIB}: {}",
            met(peak <= TARGET_PEAK_MIB)
        );
    }
    println!(
        "events: --threads 1 and 2 {}; {records} records; {exact} of {} truth connections exact against {}",
        if identical { "byte-identical" } else { "DIFFER" },
        exact + wrong.len(),
        truth.display()
    );
    for w in wrong.iter().take(10) {
        println!("  not exact: {w}");
    }
    assert!(identical, "events differ between --threads 1 and 2");
    assert!(
        wrong.is_empty(),
        "{} connections not exact against the truth",
        wrong.len()
    );
}

/// Compare the events of one run with the generator's truth file ([`gen::TRUTH_COLUMNS`]):
/// every connection's record, found by its four addresses and ports, must hold the
/// template's SNI, highest offered version, selected version and cipher suite, outcome and
/// alert, as `pcaps/expected*.json` gives them. Returns the exact connections, a line for
/// each other one, and the number of records.
fn check_truth(truth: &Path, events: &[u8]) -> (usize, Vec<String>, usize) {
    use std::collections::HashMap;
    type Key = (String, u64, String, u64);
    // What a record says, in the truth file's terms and column order.
    let said = |r: &serde_json::Value| -> String {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let sh = &r["server_hello"];
        let cipher = sh["cipher_suite"]
            .as_u64()
            .map_or("-".to_string(), |c| format!("{c:#06x}"));
        let alert = r["alerts"].get(0).unwrap_or(&serde_json::Value::Null);
        [
            text(&r["client_hello"]["sni"]),
            text(&r["client_hello"]["max_version"]),
            text(&sh["version"]),
            cipher,
            text(&r["outcome"]),
            text(&alert["from"]),
            text(&alert["description"]),
        ]
        .join("\t")
    };
    let mut by_key: HashMap<Key, Vec<String>> = HashMap::new();
    let mut records = 0;
    for line in events.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let r: serde_json::Value = serde_json::from_slice(line).expect("JSON record");
        records += 1;
        let key = (
            text_of(&r["client"]["ip"]),
            r["client"]["port"].as_u64().unwrap_or(0),
            text_of(&r["server"]["ip"]),
            r["server"]["port"].as_u64().unwrap_or(0),
        );
        by_key.entry(key).or_default().push(said(&r));
    }
    let text = std::fs::read_to_string(truth).expect("truth file");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(gen::TRUTH_COLUMNS), "truth file columns");
    let mut wanted: HashMap<Key, Vec<(String, &str)>> = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let key = (
            f[0].to_string(),
            f[1].parse().expect("port"),
            f[2].to_string(),
            f[3].parse().expect("port"),
        );
        wanted
            .entry(key)
            .or_default()
            .push((f[6..].join("\t"), line));
    }
    let (mut exact, mut wrong) = (0, Vec::new());
    for (key, mut want) in wanted {
        // Connections that reuse the same addresses and ports are compared as a set.
        let mut got = by_key.remove(&key).unwrap_or_default();
        want.sort();
        got.sort();
        for (i, (values, line)) in want.iter().enumerate() {
            match got.get(i) {
                Some(g) if g == values => exact += 1,
                Some(g) => wrong.push(format!("{line}: record says {g}")),
                None => wrong.push(format!("{line}: no record")),
            }
        }
        if got.len() > want.len() {
            wrong.push(format!(
                "{key:?}: {} records more than connections",
                got.len() - want.len()
            ));
        }
    }
    for (key, got) in by_key {
        wrong.push(format!(
            "{key:?}: {} records of no generated connection",
            got.len()
        ));
    }
    (exact, wrong, records)
}

/// A JSON string's text, or the value as JSON.
fn text_of(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
