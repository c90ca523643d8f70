//! Command-line interface: one file per command, each wiring its options to the library
//! top-down. `options` holds the option groups several commands share, `output` where
//! records and reports go.

mod capture;
mod clickhouse;
mod interfaces;
mod merge;
mod options;
mod output;
mod progress;
mod read;
mod report_from;
mod schema;
mod stats;
mod watch;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use output::reader_left;

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
    /// Read capture files (pcap, pcapng, Network Monitor .cap) and server logs (IIS, Exchange
    /// SMTP) and report every TLS handshake.
    ///
    /// Files are recognised by content, not by name, and are read as one stream in time
    /// order, so rotated captures (tcpdump -C/-G, dumpcap ring buffers) can be given together
    /// in any order. A damaged file is reported with its byte offset, what came before the
    /// damage is kept, and the run goes on (exit status 1).
    ///
    /// TLS is recognised by content on every TCP port; SMTP, IMAP and POP3 are followed to
    /// STARTTLS. The census table goes to standard output unless `--events -` does.
    ///
    /// Examples:
    ///   # the census of a day's capture, on the terminal
    ///   tlscensus read exch.pcapng
    ///   # rotated files, the Exchange servers named, the reports for the change board
    ///   tlscensus read /var/capture/exch-*.pcap --server 10.1.2.0/28 \
    ///       --report census.csv --report census.html --report census.json
    ///   # one JSON record per connection, for jq or a SIEM
    ///   tlscensus read capture.pcap --events - | jq 'select(.outcome != "negotiated")'
    ///   # what a cipher clean-up would break, too
    ///   tlscensus read exch.pcapng --policy min-version=TLSv1.2 --policy forbid=weak
    ///   # a year of IIS and Exchange SMTP logs beside this week's capture (plain or .gz)
    ///   tlscensus read exch.pcapng W3SVC1/u_ex*.log SmtpReceive/*.LOG SmtpSend/*.LOG \
    ///       --server 10.1.2.0/28 --report census.json
    #[command(verbatim_doc_comment)]
    Read(Box<read::ReadArgs>),

    /// Merge JSON census reports (from several sensors or days) into one, exactly as if one
    /// run had seen all their traffic. The reports must have the same --server and --policy.
    ///
    /// Examples:
    ///   # a week from the daily reports
    ///   tlscensus merge mon.json tue.json wed.json thu.json fri.json \
    ///       --report week.json --report week.html
    ///   # every sensor's latest report, as one table
    ///   tlscensus merge /srv/census/*/census.json
    #[command(verbatim_doc_comment)]
    Merge(merge::MergeArgs),

    /// Follow a directory of rotating capture files and keep the census up to date:
    /// each file is read once it is complete, as one stream with the files before it (a
    /// connection may span two), until Ctrl-C or SIGTERM.
    ///
    /// The operating system's own capture tool does the capturing (tcpdump -G/-C, dumpcap
    /// ring buffers, pktmon --log-mode multi-file, netsh trace), so tlscensus needs no
    /// privileges. A file is complete when a newer one appears beside it, or when nothing
    /// has written to it for --idle. What has been read and counted is kept in a state file
    /// (--state), so a restart neither loses nor counts anything twice. Reports are
    /// rewritten after each file, every --report-every and at exit, atomically.
    ///
    /// Examples:
    ///   # tcpdump rotates hourly into /var/capture; the census follows it
    ///   tcpdump -i eth1 -G 3600 -w '/var/capture/exch-%Y%m%d-%H.pcap' 'tcp port 25 or tcp port 443' &
    ///   tlscensus watch /var/capture --server 10.1.2.0/28 --report /srv/census/census.html \
    ///       --report /srv/census/census.json --events /srv/census/handshakes.jsonl
    ///   # pktmon on an Exchange server, read where it writes (Windows)
    ///   tlscensus watch C:\capture --report C:\tlscensus\census.html
    ///   # from a scheduled job: read what is complete, keep the state, exit
    ///   tlscensus watch /var/capture --once --report census.json
    #[command(verbatim_doc_comment)]
    Watch(Box<watch::WatchArgs>),

    /// Capture live from network devices (a SPAN/mirror port, or on the mail server itself)
    /// and keep the census up to date until Ctrl-C, SIGTERM or --duration. Needs the `live`
    /// build (libpcap / Npcap) and the capture capability.
    ///
    /// Only handshake metadata is kept or written, never application data. The --report
    /// files are rewritten every --report-every and at exit, atomically.
    ///
    /// Examples:
    ///   # a mirror port, reports for a web server to publish
    ///   tlscensus capture -i eth1 --report /var/lib/tlscensus/census.html
    ///   # two ports, records for a log shipper, root given up once the devices are open
    ///   tlscensus capture -i eth1 -i eth2 --events /var/log/tlscensus.jsonl --user nobody
    ///   # ten minutes of one service
    ///   tlscensus capture -i lo --bpf 'tcp port 8443' --duration 10m --report now.json
    #[command(verbatim_doc_comment)]
    Capture(Box<capture::CaptureArgs>),

    /// The census of the records sensors sent to ClickHouse (`--events clickhouse://...`):
    /// the same reports a local run writes, over a time range and some or all sensors.
    ///
    /// Examples:
    ///   # last week, every sensor
    ///   tlscensus report --from clickhouse://ch1:8123/tlscensus.events \
    ///       --since 2024-05-01T00:00:00Z --until 2024-05-08T00:00:00Z --report week.html
    ///   # one Exchange server's sensor, for its owner
    ///   tlscensus report --from clickhouse://ch1:8123/tlscensus.events --sensor exch03 \
    ///       --report exch03.json
    #[command(verbatim_doc_comment)]
    Report(Box<report_from::ReportArgs>),

    /// Print the DDL `--events clickhouse://...` runs: the events table and the per-client
    /// census view.
    ///
    /// Example:
    ///   tlscensus schema clickhouse --table tlscensus.events | clickhouse-client --multiquery
    #[command(verbatim_doc_comment)]
    Schema(schema::SchemaArgs),

    /// List the capture devices (name, description, addresses) for `capture -i`.
    ///
    /// Example:
    ///   tlscensus interfaces
    #[command(verbatim_doc_comment)]
    Interfaces,
}

pub fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Read(args) => read::read(*args),
        Command::Merge(args) => merge::merge(args),
        Command::Watch(args) => watch::watch(*args),
        Command::Capture(args) => capture::capture(*args),
        Command::Interfaces => interfaces::interfaces(),
        Command::Report(args) => report_from::report(*args),
        Command::Schema(args) => schema::schema(args),
    }
}
