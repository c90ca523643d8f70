//! Command-line interface: argument parsing and the `read` command's driver.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use tlscensus::engine::{Config, Engine, Services, Stats};
use tlscensus::flow::Limits;
use tlscensus::record::{Outcome, Record, Version};
use tlscensus::source::{self, CaptureReader};

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

    /// Print per-stage counters to standard error at the end.
    #[arg(long)]
    stats: bool,
}

pub fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Read(args) => read(args),
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
    let mut engine = Engine::new(config);
    let mut summary = Summary::default();
    let mut write_error: Option<io::Error> = None;
    let mut on_record = |record: Record| {
        summary.add(&record);
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
    for path in order_by_time(&args.files) {
        let mut reader = match CaptureReader::open(&path) {
            Ok(reader) => reader,
            Err(err) => {
                eprintln!("tlscensus: {err}");
                failed_files += 1;
                continue;
            }
        };
        engine.begin_file(path.display().to_string());
        loop {
            match reader.next_packet() {
                Ok(Some(packet)) => engine.packet(&packet, &mut on_record),
                Ok(None) => break,
                Err(err) => {
                    // Everything read before the damage has been processed; go on.
                    eprintln!("tlscensus: {err} (frames before it were processed)");
                    failed_files += 1;
                    break;
                }
            }
        }
    }
    engine.finish(&mut on_record);
    if let Some(err) = write_error {
        let target = args.events.as_deref().unwrap_or(Path::new("-"));
        return Err(err).with_context(|| format!("cannot write {}", target.display()));
    }
    if let Sink::Writer(mut w) = sink {
        w.flush().context("cannot write events")?;
    } else {
        summary.print(&mut io::stdout().lock())?;
    }
    if args.stats {
        print_stats(engine.stats());
    }
    Ok(if failed_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Order files by their first packet's time, so rotated captures given in any order (or as a
/// shell glob that sorts `file10` before `file2`) are read as one stream.
fn order_by_time(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut timed: Vec<(i64, usize, PathBuf)> = Vec::new();
    for (index, path) in files.iter().enumerate() {
        // A file whose first record is unreadable goes last; reading it reports the error.
        let ts = source::first_timestamp(path).ok().flatten();
        timed.push((ts.unwrap_or(i64::MAX), index, path.clone()));
    }
    timed.sort();
    timed.into_iter().map(|(_, _, p)| p).collect()
}

/// The short human summary printed when no --events is given.
#[derive(Default)]
struct Summary {
    connections: u64,
    negotiated: BTreeMap<Version, u64>,
    outcomes: BTreeMap<&'static str, u64>,
    /// Clients whose best offer, or whose negotiated version, is below TLS 1.2.
    legacy_clients: BTreeMap<String, (Version, Option<Version>)>,
}

impl Summary {
    fn add(&mut self, record: &Record) {
        self.connections += 1;
        *self.outcomes.entry(record.outcome.name()).or_default() += 1;
        let negotiated = record.server_hello.as_ref().map(|sh| sh.version);
        if let (Some(v), Outcome::Negotiated) = (negotiated, record.outcome) {
            *self.negotiated.entry(v).or_default() += 1;
        }
        let Some(ch) = &record.client_hello else {
            return;
        };
        let below = |v: Version| v < Version(0x0303);
        if below(ch.max_version) || negotiated.is_some_and(below) {
            let entry = self
                .legacy_clients
                .entry(record.client.ip.to_string())
                .or_insert((ch.max_version, negotiated));
            entry.0 = entry.0.min(ch.max_version);
            entry.1 = match (entry.1, negotiated) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }

    fn print(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "TLS connections: {}", self.connections)?;
        for (outcome, n) in &self.outcomes {
            writeln!(out, "  {outcome:<16} {n}")?;
        }
        writeln!(out, "Versions negotiated:")?;
        for (version, n) in &self.negotiated {
            writeln!(out, "  {:<16} {n}", version.name())?;
        }
        writeln!(
            out,
            "Clients below TLS 1.2 (offered at most / negotiated): {}",
            self.legacy_clients.len()
        )?;
        for (client, (offered, negotiated)) in &self.legacy_clients {
            let negotiated = negotiated.map_or("-".to_string(), |v| v.name());
            writeln!(out, "  {client:<40} {:<8} / {negotiated}", offered.name())?;
        }
        Ok(())
    }
}

fn print_stats(stats: &Stats) {
    eprintln!("frames                 {}", stats.frames);
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
    eprintln!("flows refused          {}", stats.flows_refused);
}
