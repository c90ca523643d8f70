//! Whole-run benchmark: one generated Exchange-like capture, timed in one run for
//!
//! * the floor — a bare read of the file with a large buffer that walks every record and
//!   touches every packet;
//! * tlscensus with 1 and 2 worker threads;
//! * the peers, when installed: ndpiReader (Debian `libndpi-bin`) and tshark.
//!
//! Each is reported as wall time, packets per second, peak memory, and ratios against the
//! floor and against tlscensus. The file is in the page cache for every run (it is read once
//! before timing). Run:
//!
//! ```text
//! cargo bench --bench whole_run                 # 256 MiB capture
//! cargo bench --bench whole_run -- --mib 1900   # the 1.9 GB case of issue #5
//! cargo bench --bench whole_run -- --mib 1900 --no-tshark   # without tshark's minutes
//! ```

#[path = "common/gen.rs"]
mod gen;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Timing {
    name: String,
    wall: Duration,
    peak_rss_kib: Option<u64>,
    note: String,
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
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
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
            peak_rss_kib: peak,
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib = args
        .iter()
        .position(|a| a == "--mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(256);
    let spec = gen::Spec {
        target_bytes: mib << 20,
        ..gen::Spec::default()
    };
    let (path, generated) = gen::ensure(&spec);
    if let Some(g) = generated {
        println!(
            "generated {}: {} packets, {} connections, {:.1} % bulk data packets",
            path.display(),
            g.packets,
            g.connections,
            100.0 * (1.0 - (g.handshake_packets + 4 * g.connections) as f64 / g.packets as f64)
        );
    }
    let file = path.to_str().expect("utf-8 path");
    // Warm the page cache.
    let packets = floor(&path);

    let mut timings = Vec::new();
    let started = Instant::now();
    let counted = floor(&path);
    assert_eq!(counted, packets);
    timings.push(Timing {
        name: "floor (read + walk)".into(),
        wall: started.elapsed(),
        peak_rss_kib: None,
        note: String::new(),
    });

    let tlscensus = env!("CARGO_BIN_EXE_tlscensus");
    let mut records = None;
    for threads in ["1", "2"] {
        let events = std::env::temp_dir().join("tlscensus-bench-events.jsonl");
        let events = events.to_str().expect("utf-8 path");
        let run = timed(
            &format!("tlscensus --threads {threads}"),
            tlscensus,
            &["read", file, "--threads", threads, "--events", events],
        );
        if let Some((mut timing, _)) = run {
            let lines = std::fs::read_to_string(events).map_or(0, |t| t.lines().count());
            timing.note = format!("{lines} records");
            // A run that reports nothing measured nothing.
            assert!(lines > 0, "tlscensus wrote no records");
            if let Some(previous) = records.replace(lines) {
                assert_eq!(previous, lines, "thread counts disagree");
            }
            timings.push(timing);
        }
        let _ = std::fs::remove_file(events);
    }
    if let Some(ndpi) = which("ndpiReader") {
        if let Some((timing, _)) = timed("ndpiReader", &ndpi, &["-i", file, "-q"]) {
            timings.push(timing);
        }
    } else {
        println!("ndpiReader not installed (Debian: libndpi-bin): skipped");
    }
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
            timing.note = format!("{} hellos", out.lines().count());
            timings.push(timing);
        }
    } else {
        println!("tshark not installed: skipped");
    }

    let floor_wall = timings[0].wall.as_secs_f64();
    let ours = timings
        .iter()
        .find(|t| t.name.ends_with("--threads 2"))
        .map_or(floor_wall, |t| t.wall.as_secs_f64());
    println!(
        "\n{} ({:.0} MiB, {} packets)\n",
        path.display(),
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1048576.0,
        packets
    );
    println!(
        "{:<26} {:>9} {:>10} {:>10} {:>9} {:>12}  note",
        "run", "wall s", "Mpkt/s", "peak MiB", "× floor", "× tlscensus2"
    );
    for t in &timings {
        let wall = t.wall.as_secs_f64();
        println!(
            "{:<26} {:>9.3} {:>10.2} {:>10} {:>9.2} {:>12.2}  {}",
            t.name,
            wall,
            packets as f64 / wall / 1e6,
            t.peak_rss_kib
                .map_or("-".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
            wall / floor_wall,
            wall / ours,
            t.note
        );
    }
}
