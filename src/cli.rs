//! Command-line interface: argument parsing and the `read` command's driver.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use tlscensus::census::{parse_server, Census, CensusConfig, Policy};
use tlscensus::engine::{Config, Services};
use tlscensus::flow::Limits;
use tlscensus::pipeline;
use tlscensus::record::Record;
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
    }
}

/// Where records go.
enum Sink {
    None,
    Writer(Box<dyn Write>),
}

fn open_sink(path: Option<&Path>) -> Result<Sink> {
    Ok(match path {
        None => Sink::None,
        Some(p) if p == Path::new("-") => Sink::Writer(Box::new(BufWriter::new(io::stdout()))),
        Some(p) => Sink::Writer(Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))),
    })
}

fn read(args: ReadArgs) -> Result<ExitCode> {
    let config = Config {
        services: Services {
            smtp_ports: args.smtp_ports.iter().copied().collect(),
            imap_ports: args.imap_ports.iter().copied().collect(),
            pop3_ports: args.pop3_ports.iter().copied().collect(),
            tls_ports: args.tls_ports.iter().copied().collect(),
        },
        limits: Limits {
            max_flows: args.max_flows.max(1),
            idle_timeout_ns: i64::from(args.idle_timeout) * 1_000_000_000,
        },
    };
    let mut sink = open_sink(args.events.as_deref())?;
    let policy = Policy::parse(&args.policy)?;
    let mut census = Census::new(CensusConfig::new(args.servers.clone(), policy));
    let mut write_error: Option<io::Error> = None;
    let mut on_record = |record: Record| {
        census.add(&record);
        if let Sink::Writer(w) = &mut sink {
            if write_error.is_none() {
                let line = serde_json::to_string(&record).expect("records always serialise");
                if let Err(e) = writeln!(w, "{line}") {
                    write_error = Some(e);
                }
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
    };
    let files = pipeline::order_by_time(&args.files);
    let outcome = pipeline::run(&files, &options, &mut on_record, &mut on_error);
    if let Some(err) = write_error {
        let target = args.events.as_deref().unwrap_or(Path::new("-"));
        return Err(err).with_context(|| format!("cannot write {}", target.display()));
    }
    if let Sink::Writer(mut w) = sink {
        w.flush().context("cannot write events")?;
    }
    let events_on_stdout = args.events.as_deref() == Some(Path::new("-"));
    deliver(&census, &args.reports, !events_on_stdout)?;
    if args.stats {
        print_stats(&outcome);
    }
    Ok(if failed_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Worker threads by default: one per core the system gives this process.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Write the census reports, and the table to standard output when `table` is set.
fn deliver(census: &Census, targets: &[Target], table: bool) -> Result<()> {
    for target in targets {
        report::write_file(census, target)
            .with_context(|| format!("cannot write {}", target.path.display()))?;
    }
    if table {
        let mut out = io::stdout().lock();
        report::write(census, report::Format::Table, &mut out).context("cannot write the table")?;
        out.flush().context("cannot write the table")?;
    }
    Ok(())
}

fn merge(args: MergeArgs) -> Result<ExitCode> {
    let census = Census::merge_files(&args.reports)?;
    deliver(&census, &args.targets, args.targets.is_empty())?;
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
    eprintln!("batches                {}", p.batches);
    eprintln!("reader queue waits     {}", p.queue_waits);
    let h = &p.batch_latency_us;
    eprintln!(
        "batch latency (µs)     p50 {} p90 {} p99 {} max {}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.max()
    );
    eprintln!("reorder buffer peak    {}", p.reorder_peak);
    eprintln!("tcp segments           {}", stats.tcp_segments);
    for (skip, n) in tlscensus::decode::Skip::ALL.iter().zip(stats.skipped) {
        eprintln!("skipped {:<14} {n}", skip.name());
    }
    eprintln!("connections tracked    {}", stats.connections_tracked);
    eprintln!("records                {}", stats.records);
    eprintln!("retransmitted segments {}", stats.retransmitted_segments);
    eprintln!("out-of-order segments  {}", stats.out_of_order_segments);
    eprintln!("dropped segments       {}", stats.dropped_segments);
    eprintln!("snaplen-cut frames     {}", stats.truncated_frames);
    eprintln!("flows expired          {}", stats.flows_expired);
    eprintln!("flows refused (full)   {}", stats.flows_refused);
}
