//! Command-line interface: argument parsing and the `read` command's driver.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use tlscensus::census::{parse_server, Census, CensusConfig, Policy};
use tlscensus::engine::{Config, Services};
use tlscensus::flow::Limits;
use tlscensus::pipeline;
use tlscensus::record::Record;
use tlscensus::report::atomic::AtomicFile;
use tlscensus::report::{self, Target};
use tlscensus::source::SourceError;

/// Passive TLS handshake census: find every client (and server) still using TLS 1.0/1.1,
/// weak ciphers or no TLS at all, by watching handshakes on the wire.
#[derive(Debug, Parser)]
#[command(name = "tlscensus", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read capture files (pcap, pcapng, Network Monitor .cap) and report every TLS handshake.
    ///
    /// Files are recognised by content, not by name, and are read as one stream in time
    /// order, so rotated captures (tcpdump -C/-G, dumpcap ring buffers) can be given together
    /// in any order. A damaged file is reported and skipped past; the run goes on.
    ///
    /// TLS is recognised by content on every TCP port; --tls-port also reports connections on
    /// a port whose hellos could not be read.
    ///
    /// Examples:
    ///   tlscensus read capture.pcapng
    ///   tlscensus read /var/capture/exch-*.pcap --events handshakes.jsonl
    ///   tlscensus read capture.pcap --events - | jq 'select(.outcome != "negotiated")'
    #[command(verbatim_doc_comment)]
    Read(ReadArgs),

    /// Merge JSON census reports (from several sensors or days) into one, exactly as if one
    /// run had seen all their traffic. The reports must have the same --server and --policy.
    ///
    /// Example:
    ///   tlscensus merge mon.json tue.json --report week.json --report week.html
    #[command(verbatim_doc_comment)]
    Merge(MergeArgs),

    /// Capture live from network devices (a SPAN/mirror port, or on the mail server itself)
    /// and keep the census up to date until Ctrl-C, SIGTERM or --duration. Needs the `live`
    /// build (libpcap / Npcap) and the capture capability.
    ///
    /// Only handshake metadata is kept or written, never application data.
    ///
    /// Examples:
    ///   tlscensus capture -i eth1 --report /var/lib/tlscensus/census.html
    ///   tlscensus capture -i eth1 -i eth2 --events /var/log/tlscensus.jsonl --user nobody
    ///   tlscensus capture -i lo --bpf 'tcp port 8443' --duration 10m --report now.json
    #[command(verbatim_doc_comment)]
    Capture(Box<CaptureArgs>),

    /// List the capture devices (name, description, addresses) for `capture -i`.
    Interfaces,
}

#[derive(Debug, Args)]
pub(crate) struct CaptureArgs {
    /// Device to capture on (repeatable): its name, its number in `tlscensus interfaces`,
    /// or a unique part of its description (for Npcap's GUID names).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required = true)]
    pub(crate) interfaces: Vec<String>,

    /// Do not put the devices in promiscuous mode (on the server itself it is not needed).
    #[arg(long)]
    pub(crate) no_promiscuous: bool,

    /// Bytes kept of each frame. Handshakes span several frames whatever the value, but a
    /// frame cut short loses the rest of its hello.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    pub(crate) snaplen: i32,

    /// Kernel capture buffer in MiB (more absorbs longer bursts before drops).
    #[arg(long, value_name = "MiB")]
    pub(crate) buffer_size: Option<i32>,

    /// Deliver each frame as it arrives instead of in kernel batches (lower latency, more
    /// CPU).
    #[arg(long)]
    pub(crate) immediate: bool,

    /// Stop after this long (e.g. `90s`, `8h`, `7d`); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<std::time::Duration>,

    /// BPF filter replacing the default `tcp and (port 25 or port 587 or ...)`, built from
    /// the configured ports and 443, 465, 993, 995.
    #[arg(long, value_name = "EXPR")]
    pub(crate) bpf: Option<String>,

    /// Append one JSON record per connection to PATH as each completes (`-` for standard
    /// output); each line is flushed at once, ready for a log shipper.
    #[arg(long, value_name = "PATH")]
    pub(crate) events: Option<PathBuf>,

    /// Keep the census in PATH (repeatable; format by extension as for `read`). Rewritten
    /// every --report-every and at exit, atomically.
    #[arg(long = "report", value_name = "PATH", value_parser = parse_target)]
    pub(crate) reports: Vec<Target>,

    /// How often the --report files are rewritten.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) report_every: std::time::Duration,

    /// Once the devices are open, switch to this user (and its group), giving up root
    /// (Unix). The --report directories must be writable by it.
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,

    /// Also report connections on this TCP port even when no hello could be read.
    #[arg(long = "tls-port", value_name = "PORT", value_delimiter = ',')]
    pub(crate) tls_ports: Vec<u16>,

    /// SMTP ports (followed to STARTTLS).
    #[arg(long = "smtp-port", value_name = "PORT", value_delimiter = ',', default_values_t = [25, 587])]
    pub(crate) smtp_ports: Vec<u16>,

    /// IMAP ports followed to STARTTLS.
    #[arg(long = "imap-port", value_name = "PORT", value_delimiter = ',', default_values_t = [143])]
    pub(crate) imap_ports: Vec<u16>,

    /// POP3 ports followed to STLS.
    #[arg(long = "pop3-port", value_name = "PORT", value_delimiter = ',', default_values_t = [110])]
    pop3_ports: Vec<u16>,

    /// Most connections tracked at once; beyond it the idlest are expired early.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_flows)]
    pub(crate) max_flows: usize,

    /// Seconds without a packet after which a connection is reported and forgotten.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) idle_timeout: u32,

    /// Worker threads parsing handshakes (default: one per core).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,

    /// A monitored server: an address or CIDR block (repeatable), as for `read`.
    #[arg(long = "server", value_name = "CIDR", value_parser = parse_server)]
    pub(crate) servers: Vec<ipnet::IpNet>,

    /// What-if policy rule (repeatable), as for `read`.
    #[arg(long = "policy", value_name = "RULE")]
    pub(crate) policy: Vec<String>,

    /// Never show the status line (it is shown only when standard error is a terminal).
    #[arg(long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// JSON reports written by `tlscensus read --report FILE.json`.
    #[arg(required = true, value_name = "REPORT.json")]
    reports: Vec<PathBuf>,

    /// Write the merged census to PATH (repeatable); the format follows the extension:
    /// .json, .csv, .md, .html, .txt. Without it the table goes to standard output.
    #[arg(long = "report", value_name = "PATH", value_parser = parse_target)]
    targets: Vec<Target>,
}

fn parse_target(text: &str) -> Result<Target, String> {
    Target::parse(Path::new(text))
}

#[derive(Debug, Args)]
struct ReadArgs {
    /// Capture files to read.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Write one JSON record per TLS connection to PATH (`-` for standard output).
    #[arg(long, value_name = "PATH")]
    events: Option<PathBuf>,

    /// Also report connections on this TCP port even when no hello could be read
    /// (repeatable; comma-separated lists allowed). TLS is found by content on every port
    /// anyway; implicit TLS on 443, 465, 993 and 995 is named https, smtps, imaps, pop3s.
    #[arg(long = "tls-port", value_name = "PORT", value_delimiter = ',')]
    tls_ports: Vec<u16>,

    /// SMTP ports: the plaintext dialogue is followed to STARTTLS / X-ANONYMOUSTLS, and
    /// sessions that never start TLS are reported (`plaintext`). 587 is named `submission`.
    #[arg(long = "smtp-port", value_name = "PORT", value_delimiter = ',', default_values_t = [25, 587])]
    smtp_ports: Vec<u16>,

    /// IMAP ports followed to STARTTLS.
    #[arg(long = "imap-port", value_name = "PORT", value_delimiter = ',', default_values_t = [143])]
    imap_ports: Vec<u16>,

    /// POP3 ports followed to STLS.
    #[arg(long = "pop3-port", value_name = "PORT", value_delimiter = ',', default_values_t = [110])]
    pop3_ports: Vec<u16>,

    /// Most connections tracked at once; beyond it the idlest are expired early.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_flows)]
    max_flows: usize,

    /// Seconds without a packet after which a connection is reported and forgotten.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    idle_timeout: u32,

    /// Worker threads parsing handshakes (default: one per core). Output is identical
    /// whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    threads: Option<usize>,

    /// How the files are read. `map` (the default): each worker maps its share of a classic
    /// pcap file on disk and touches only the bytes it needs, the fastest way. `split`: the
    /// same with read calls, for a file that another program may truncate or rewrite while
    /// it is read (a mapped file cut short under the reader ends the process with SIGBUS;
    /// one still being appended to is fine). `one`: one reader thread, as pcapng, Network
    /// Monitor files and standard input always get. Output is identical every way.
    #[arg(long, value_name = "HOW", default_value = "map", value_parser = parse_reading)]
    reading: pipeline::Reading,

    /// Write the census to PATH (repeatable); the format follows the extension: .json (for
    /// tools and `tlscensus merge`), .csv (the remediation spreadsheet), .md, .html (one
    /// self-contained page), .txt (the table). The table also goes to standard output unless
    /// --events does.
    #[arg(long = "report", value_name = "PATH", value_parser = parse_target)]
    reports: Vec<Target>,

    /// A monitored server (the Exchange servers): an address or CIDR block (repeatable).
    /// Connections to them are `inbound`, connections from them `outbound`. Without it the
    /// listening side of each connection is the server.
    #[arg(long = "server", value_name = "CIDR", value_parser = parse_server)]
    servers: Vec<ipnet::IpNet>,

    /// What-if policy marking the clients that would fail (repeatable):
    /// `min-version=TLSv1.2` (the default), `forbid=SUITE,...` (IANA names, 0x codes, `weak`).
    #[arg(long = "policy", value_name = "RULE")]
    policy: Vec<String>,

    /// Print per-stage counters to standard error at the end (frames, batches, queue
    /// waits, batch latency percentiles, evictions).
    #[arg(long)]
    stats: bool,
}

pub fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Read(args) => read(args),
        Command::Merge(args) => merge(args),
        Command::Capture(args) => capture(*args),
        Command::Interfaces => interfaces(),
    }
}

/// Where records go.
enum Sink {
    None,
    /// Standard output, a pipe, a device: written as records come.
    Writer(Box<dyn Write + Send>),
    /// A regular file: written beside it and renamed into place at the end, so an earlier
    /// events file is never left half-overwritten by a run that fails.
    Atomic(AtomicFile),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::None => Ok(buf.len()),
            Sink::Writer(w) => w.write(buf),
            Sink::Atomic(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::None => Ok(()),
            Sink::Writer(w) => w.flush(),
            Sink::Atomic(f) => f.flush(),
        }
    }
}

fn open_sink(path: Option<&Path>) -> Result<Sink> {
    let Some(p) = path else {
        return Ok(Sink::None);
    };
    if p == Path::new("-") {
        return Ok(Sink::Writer(Box::new(BufWriter::new(io::stdout()))));
    }
    let special = std::fs::metadata(p).is_ok_and(|m| !m.is_file());
    Ok(if special {
        Sink::Writer(Box::new(BufWriter::new(
            File::options()
                .write(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )))
    } else {
        Sink::Atomic(
            AtomicFile::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )
    })
}

/// Finish the events output: flush, and move an atomically written file into place.
fn close_sink(sink: Sink, path: &Path) -> Result<()> {
    match sink {
        Sink::None => Ok(()),
        Sink::Writer(mut w) => match w.flush() {
            Err(e) if reader_left(&e) => Ok(()),
            other => other,
        },
        Sink::Atomic(f) => f.commit(),
    }
    .with_context(|| format!("cannot write {}", path.display()))
}

/// Whether a write failed because the program reading our standard output (or a pipe)
/// exited: `tlscensus read big.pcap | head` is not an error, as with other filters.
pub fn reader_left(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

/// The engine's configuration from the port and table options `read` and `capture` share:
/// SMTP, IMAP, POP3 and forced-TLS ports, the flow cap and the idle timeout in seconds.
fn engine_config(ports: [&[u16]; 4], max_flows: usize, idle_timeout: u32) -> Config {
    let set = |list: &[u16]| list.iter().copied().collect();
    Config {
        services: Services {
            smtp_ports: set(ports[0]),
            imap_ports: set(ports[1]),
            pop3_ports: set(ports[2]),
            tls_ports: set(ports[3]),
        },
        limits: Limits {
            max_flows: max_flows.max(1),
            idle_timeout_ns: i64::from(idle_timeout) * 1_000_000_000,
        },
    }
}

fn read(args: ReadArgs) -> Result<ExitCode> {
    let config = engine_config(
        [
            &args.smtp_ports,
            &args.imap_ports,
            &args.pop3_ports,
            &args.tls_ports,
        ],
        args.max_flows,
        args.idle_timeout,
    );
    let mut sink = open_sink(args.events.as_deref())?;
    let policy = Policy::parse(&args.policy)?;
    let mut census = Census::new(CensusConfig::new(args.servers.clone(), policy));
    let mut write_error: Option<io::Error> = None;
    let mut line = Vec::with_capacity(4096);
    let mut on_record = |record: Record| {
        census.add(&record);
        if !matches!(sink, Sink::None) && write_error.is_none() {
            // One reused line buffer, one write per record: serde_json's many small writes
            // would each go through the sink's layers.
            line.clear();
            serde_json::to_writer(&mut line, &record).expect("records always serialise");
            line.push(b'\n');
            if let Err(e) = sink.write_all(&line) {
                write_error = Some(e);
            }
        }
    };
    let mut failed_files = 0;
    let mut on_error = |err: SourceError| {
        // Everything read before the damage has been processed; the run goes on.
        eprintln!("tlscensus: {err}");
        failed_files += 1;
    };
    let options = pipeline::Options {
        engine: config,
        threads: args.threads.unwrap_or_else(default_threads),
        reading: args.reading,
    };
    let files = pipeline::order_by_time(&args.files);
    let progress = pipeline::Progress::default();
    let mut bar = ProgressBar::new(&files);
    let outcome = pipeline::run_with_progress(
        &files,
        &options,
        &progress,
        &mut on_record,
        &mut on_error,
        &mut || bar.draw(&progress),
    );
    bar.finish();
    let events_on_stdout = args.events.as_deref() == Some(Path::new("-"));
    if let Some(err) = write_error {
        // `--events - | head` (or a named pipe whose reader left): the reader of the events
        // has what it wanted; the report files are still written.
        if !reader_left(&err) {
            let target = args.events.as_deref().unwrap_or(Path::new("-"));
            return Err(err).with_context(|| format!("cannot write {}", target.display()));
        }
    }
    // Syncing the events file to disk waits on the device while the reports are built: the
    // two overlap.
    let (closed, delivered) = std::thread::scope(|scope| {
        let closing =
            scope.spawn(|| close_sink(sink, args.events.as_deref().unwrap_or(Path::new("-"))));
        let delivered = deliver(&census, &args.reports, !events_on_stdout);
        (
            closing.join().expect("closing the events panicked"),
            delivered,
        )
    });
    closed?;
    delivered?;
    if args.stats {
        print_stats(&outcome);
    }
    // The process ends next: handing the census's thousands of small allocations back one by
    // one would only delay the exit (by tens of milliseconds on large captures).
    std::mem::forget(census);
    Ok(if failed_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A one-line progress display on standard error (bytes, packets/s, ETA), only when it is a
/// terminal, redrawn at most four times a second.
struct ProgressBar {
    enabled: bool,
    total: u64,
    started: std::time::Instant,
    last: Option<std::time::Instant>,
}

impl ProgressBar {
    fn new(files: &[PathBuf]) -> Self {
        use std::io::IsTerminal;
        ProgressBar {
            enabled: io::stderr().is_terminal(),
            total: files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
            started: std::time::Instant::now(),
            last: None,
        }
    }

    fn draw(&mut self, progress: &pipeline::Progress) {
        use std::sync::atomic::Ordering;
        let now = std::time::Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t).as_millis() >= 250);
        if !self.enabled || !due {
            return;
        }
        self.last = Some(now);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        let frames = progress.frames.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let done = bytes as f64 / self.total.max(1) as f64;
        let eta = if done > 0.0 { secs / done - secs } else { 0.0 };
        eprint!(
            "\r\x1b[K{:5.1}%  {:.0}/{:.0} MB  {:.2} M packets/s  ETA {:.0} s",
            100.0 * done.min(1.0),
            bytes as f64 / 1e6,
            self.total as f64 / 1e6,
            frames as f64 / secs / 1e6,
            eta.max(0.0)
        );
    }

    fn finish(&self) {
        if self.enabled && self.last.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

fn parse_reading(text: &str) -> Result<pipeline::Reading, String> {
    match text {
        "map" => Ok(pipeline::Reading::Map),
        "split" => Ok(pipeline::Reading::Split),
        "one" => Ok(pipeline::Reading::OneReader),
        _ => Err(
            "expected `map` (workers map their share), `split` (workers read their share) \
             or `one` (one reader thread)"
                .into(),
        ),
    }
}

/// Worker threads by default: one per core the system gives this process.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Write the census reports, and the table to standard output when `table` is set.
fn deliver(census: &Census, targets: &[Target], table: bool) -> Result<()> {
    // Each report file is built and synced to disk on its own thread: the syncs overlap
    // each other (and, in `read`, the events file's).
    let written: Vec<io::Result<()>> = std::thread::scope(|scope| {
        let writers: Vec<_> = targets
            .iter()
            .map(|target| scope.spawn(move || report::write_file(census, target)))
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("report writer panicked"))
            .collect()
    });
    for (target, result) in targets.iter().zip(written) {
        result.with_context(|| format!("cannot write {}", target.path.display()))?;
    }
    if table {
        // Standard output is line-buffered: one write per line of a table thousands long.
        let mut out = BufWriter::with_capacity(64 << 10, io::stdout().lock());
        match report::write(census, report::Format::Table, &mut out).and_then(|()| out.flush()) {
            Err(e) if reader_left(&e) => {}
            written => written.context("cannot write the table")?,
        }
    }
    Ok(())
}

fn merge(args: MergeArgs) -> Result<ExitCode> {
    let census = Census::merge_files(&args.reports)?;
    deliver(&census, &args.targets, args.targets.is_empty())?;
    // As in `read`: the process ends next, and freeing the census piece by piece is slow.
    std::mem::forget(census);
    Ok(ExitCode::SUCCESS)
}

fn print_stats(outcome: &pipeline::Outcome) {
    let (stats, p) = (&outcome.stats, &outcome.pipeline);
    let secs = p.elapsed.as_secs_f64().max(1e-9);
    eprintln!("threads                {}", p.threads);
    eprintln!("elapsed                {:.3} s", secs);
    eprintln!(
        "frames read            {} ({:.2} M/s, {:.1} MB/s)",
        p.frames_read,
        p.frames_read as f64 / secs / 1e6,
        p.bytes_read as f64 / secs / 1e6
    );
    if p.split_reading {
        if p.mapped_reading {
            eprintln!("reading                map: each worker maps, walks and decodes its share");
        } else {
            eprintln!(
                "reading                split: each worker reads, walks and decodes its share"
            );
        }
        eprintln!(
            "parts sent             {} (frames of a block for another worker)",
            p.batches
        );
        if p.mapped_reading {
            eprintln!(
                "walk guesses           {} kept, {} walked again (chains from a guessed record start)",
                p.walk_guesses_kept, p.walk_guesses_rewalked
            );
        }
        eprintln!(
            "worker waits           {} (for another worker's part or relay), {:.0} ms in all",
            p.queue_waits,
            p.queue_wait_time.as_secs_f64() * 1e3
        );
    } else {
        eprintln!("batches                {}", p.batches);
        eprintln!(
            "reader queue waits     {}, {:.0} ms in all",
            p.queue_waits,
            p.queue_wait_time.as_secs_f64() * 1e3
        );
    }
    if p.queue_waits > 0 {
        let w = &p.queue_wait_us;
        eprintln!(
            "wait length (µs)       p10 {} p50 {} p90 {} p99 {} max {}",
            w.value_at_quantile(0.1),
            w.value_at_quantile(0.5),
            w.value_at_quantile(0.9),
            w.value_at_quantile(0.99),
            w.max()
        );
    }
    let h = &p.batch_latency_us;
    eprintln!(
        "batch latency (µs)     p50 {} p90 {} p99 {} max {}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.max()
    );
    eprintln!("reorder buffer peak    {}", p.reorder_peak);
    let per_frame = |cpu: Duration, frames: u64| {
        if frames == 0 || cpu.is_zero() {
            return format!("{:.3} s ({frames} frames)", cpu.as_secs_f64());
        }
        let ns = cpu.as_nanos() as f64 / frames as f64;
        format!(
            "{:.3} s ({frames} frames, {ns:.0} ns/frame, {:.2} M frames per CPU-second)",
            cpu.as_secs_f64(),
            1e3 / ns.max(1e-9)
        )
    };
    if let Some(cpu) = p.reader_cpu {
        eprintln!("cpu reader             {}", per_frame(cpu, p.frames_read));
    }
    for (worker, (cpu, frames)) in p.worker_cpu.iter().zip(&p.worker_frames).enumerate() {
        if let Some(cpu) = cpu {
            eprintln!("cpu worker {worker:<11} {}", per_frame(*cpu, *frames));
        }
    }
    if let Some(cpu) = p.aggregator_cpu {
        eprintln!(
            "cpu aggregator         {:.3} s ({} records)",
            cpu.as_secs_f64(),
            stats.records
        );
    }
    eprintln!("tcp segments           {}", stats.tcp_segments);
    for (skip, n) in tlscensus::decode::Skip::ALL.iter().zip(stats.skipped) {
        eprintln!("skipped {:<14} {n}", skip.name());
    }
    eprintln!("connections tracked    {}", stats.connections_tracked);
    eprintln!("records                {}", stats.records);
    eprintln!("retransmitted segments {}", stats.retransmitted_segments);
    eprintln!(
        "  with different bytes {}",
        stats.inconsistent_retransmissions
    );
    eprintln!("out-of-order segments  {}", stats.out_of_order_segments);
    eprintln!("dropped segments       {}", stats.dropped_segments);
    eprintln!("snaplen-cut frames     {}", stats.truncated_frames);
    eprintln!("flows expired          {}", stats.flows_expired);
    eprintln!("flows evicted (no data) {}", stats.flows_evicted);
    eprintln!("flows refused (full)   {}", stats.flows_refused);
}

// ---- live capture (issue #6) ------------------------------------------------------------

#[cfg(not(feature = "live"))]
const NO_LIVE: &str = "this tlscensus was built without live capture. Build it with the `live` \
     feature: install libpcap (Debian: apt-get install libpcap-dev; Windows: the Npcap SDK, \
     see the README) and run `cargo build --release --features live`";

#[cfg(not(feature = "live"))]
fn capture(_: CaptureArgs) -> Result<ExitCode> {
    anyhow::bail!(NO_LIVE)
}

#[cfg(not(feature = "live"))]
fn interfaces() -> Result<ExitCode> {
    anyhow::bail!(NO_LIVE)
}

#[cfg(feature = "live")]
fn interfaces() -> Result<ExitCode> {
    use tlscensus::capture::live;
    let list = live::interfaces().context("cannot list capture devices")?;
    if list.is_empty() {
        eprintln!(
            "tlscensus: no capture devices found (capturing needs root or cap_net_raw, \
             and on Windows the Npcap driver)"
        );
    }
    let mut out = io::stdout().lock();
    for (n, i) in list.iter().enumerate() {
        let mut flags = Vec::new();
        if i.up {
            flags.push("up");
        }
        if i.loopback {
            flags.push("loopback");
        }
        writeln!(out, "{}. {} [{}]", n + 1, i.name, flags.join(", "))?;
        if let Some(d) = &i.description {
            writeln!(out, "     {d}")?;
        }
        for a in &i.addresses {
            writeln!(out, "     {a}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the capture's status line counts, besides the census.
#[cfg(feature = "live")]
#[derive(Default)]
struct LiveTally {
    handshakes: u64,
    below_12: std::collections::HashSet<std::net::IpAddr>,
}

#[cfg(feature = "live")]
fn capture(args: CaptureArgs) -> Result<ExitCode> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Instant;
    use tlscensus::capture::{default_filter, live};

    let config = engine_config(
        [
            &args.smtp_ports,
            &args.imap_ports,
            &args.pop3_ports,
            &args.tls_ports,
        ],
        args.max_flows,
        args.idle_timeout,
    );
    let filter = args.bpf.clone().unwrap_or_else(|| {
        let mut ports: Vec<u16> = vec![443, 465, 993, 995];
        for list in [
            &args.smtp_ports,
            &args.imap_ports,
            &args.pop3_ports,
            &args.tls_ports,
        ] {
            ports.extend(list.iter().copied());
        }
        default_filter(&ports)
    });
    let policy = Policy::parse(&args.policy)?;
    let mut names = Vec::new();
    for wanted in &args.interfaces {
        names.push(live::resolve(wanted).map_err(anyhow::Error::msg)?);
    }
    let settings = live::Settings {
        promiscuous: !args.no_promiscuous,
        snaplen: args.snaplen.max(64),
        buffer_size: args.buffer_size.map(|mib| mib.saturating_mul(1 << 20)),
        immediate: args.immediate,
        filter: filter.clone(),
    };

    // Ctrl-C or SIGTERM once: stop cleanly; a second time: exit at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }

    let mut source = live::LiveCapture::open(&names, &settings, Arc::clone(&stop), args.duration)?;
    // The events file is opened before giving up root, so it may live where only root writes.
    let mut events: Option<Box<dyn Write>> = match args.events.as_deref() {
        None => None,
        Some(p) if p == Path::new("-") => Some(Box::new(io::stdout())),
        Some(p) => Some(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    if let Some(user) = &args.user {
        live::drop_privileges(user).map_err(anyhow::Error::msg)?;
    }
    let counters = source.counters();
    let status = !args.quiet && io::IsTerminal::is_terminal(&io::stderr());
    eprintln!(
        "tlscensus: capturing on {} with filter {filter:?}; Ctrl-C to stop",
        names.join(", ")
    );

    let started = std::time::SystemTime::now();
    let mut census = Census::new(CensusConfig::new(args.servers.clone(), policy));
    let mut tally = LiveTally::default();
    let mut write_error: Option<io::Error> = None;
    let mut report_error: Option<anyhow::Error> = None;
    let mut next_report = Instant::now() + args.report_every;
    let mut next_status = Instant::now();
    let mut source_errors = 0u32;
    let capture_info = |counters: &live::Counters, ended: bool| {
        let (packets, received, dropped, if_dropped) = counters.get();
        serde_json::json!({
            "interfaces": names,
            "filter": filter,
            "started": tlscensus::record::rfc3339(nanos_of(started)),
            "updated": tlscensus::record::rfc3339(nanos_of(std::time::SystemTime::now())),
            "running": !ended,
            "packets": packets,
            "received": received,
            "dropped_by_kernel": dropped,
            "dropped_by_interface": if_dropped,
        })
    };
    let write_reports = |census: &Census, info: &serde_json::Value| -> Result<()> {
        for target in &args.reports {
            let result = if target.format == report::Format::Json {
                // The JSON report carries the capture's counters (drops included); `merge`
                // ignores the extra key.
                let mut value = report::json::to_value(census);
                if let Some(map) = value.as_object_mut() {
                    map.insert("capture".into(), info.clone());
                }
                report::atomic::write_with(&target.path, |out| {
                    serde_json::to_writer_pretty(&mut *out, &value)?;
                    writeln!(out)
                })
            } else {
                report::write_file(census, target)
            };
            result.with_context(|| format!("cannot write {}", target.path.display()))?;
        }
        Ok(())
    };

    {
        let census = std::cell::RefCell::new(&mut census);
        let tally = std::cell::RefCell::new(&mut tally);
        let mut on_record = |record: Record| {
            census.borrow_mut().add(&record);
            let mut tally = tally.borrow_mut();
            tally.handshakes += 1;
            let negotiated = record.server_hello.as_ref().map(|s| s.version.0);
            let offered = record.client_hello.as_ref().map(|c| c.max_version.0);
            if negotiated.or(offered).is_some_and(|v| v < 0x0303) {
                tally.below_12.insert(record.client.ip);
            }
            if let Some(w) = &mut events {
                if write_error.is_none() {
                    let line = serde_json::to_string(&record).expect("records always serialise");
                    if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
                        write_error = Some(e);
                    }
                }
            }
        };
        let mut on_error = |err: SourceError| {
            eprintln!("\ntlscensus: capture failed: {err}");
            source_errors += 1;
        };
        let mut on_tick = || {
            let now = Instant::now();
            if now >= next_report && !args.reports.is_empty() {
                next_report = now + args.report_every;
                if let Err(e) = write_reports(&census.borrow(), &capture_info(&counters, false)) {
                    eprintln!("\ntlscensus: {e:#}");
                    report_error.get_or_insert(e);
                }
            }
            if status && now >= next_status {
                next_status = now + std::time::Duration::from_secs(1);
                let (packets, _, dropped, if_dropped) = counters.get();
                let tally = tally.borrow();
                eprint!(
                    "\r\x1b[Kpackets {packets}  handshakes {}  clients {}  below TLS 1.2 {}  drops {}",
                    tally.handshakes,
                    census.borrow().clients.len(),
                    tally.below_12.len(),
                    dropped + if_dropped
                );
            }
        };
        let options = pipeline::Options {
            engine: config,
            threads: args.threads.unwrap_or_else(default_threads),
            reading: pipeline::Reading::OneReader,
        };
        pipeline::run_live(
            &mut source,
            &options,
            &mut on_record,
            &mut on_error,
            &mut on_tick,
        );
    }
    source.update_stats();
    if status {
        eprintln!();
    }
    let info = capture_info(&counters, true);
    write_reports(&census, &info)?;
    let (packets, received, dropped, if_dropped) = counters.get();
    eprintln!(
        "tlscensus: {packets} packets, {} handshakes, {} clients ({} below TLS 1.2); \
         libpcap received {received}, dropped {dropped} (kernel) + {if_dropped} (interface)",
        tally.handshakes,
        census.clients.len(),
        tally.below_12.len()
    );
    if dropped > 0 {
        eprintln!(
            "tlscensus: warning: the kernel dropped {dropped} packets: tlscensus did not read \
             fast enough. Give it a larger buffer (--buffer-size 64), a narrower --bpf filter, \
             or more cores (--threads); handshakes in dropped packets are missing or incomplete"
        );
    }
    if if_dropped > 0 {
        eprintln!(
            "tlscensus: warning: the interface dropped {if_dropped} packets before the kernel \
             saw them: check the mirror port's bandwidth and the NIC's ring size (ethtool -G)"
        );
    }
    if let Some(e) = write_error {
        let target = args.events.as_deref().unwrap_or(Path::new("-"));
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    if let Some(e) = report_error {
        return Err(e);
    }
    if args.reports.is_empty() && args.events.is_none() {
        deliver(&census, &[], true)?;
    }
    Ok(if source_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(feature = "live")]
fn nanos_of(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
