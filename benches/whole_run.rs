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
    let time = Path::new("/usr/bin/time");
    let mut command = if time.is_file() {
        let mut c = Command::new(time);
        c.args(["-f", "%M"]).arg(program).args(args);
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
    let output = output.ok()?;
    let wall = started.elapsed();
    if !output.status.success() {
        eprintln!("{name} failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak = stderr.lines().last().and_then(|l| l.trim().parse().ok());
    Some((
        Timing {
            name: name.to_string(),
            wall,
            packets: 0,
            peak_rss_kib: peak,
            reader_cpu: reader_cpu(&stderr),
            workers_cpu: workers_cpu(&stderr),
            steal,
            rounds: Vec::new(),
            note: String::new(),
        },
        String::from_utf8_lossy(&output.stdout).into_owned(),
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
