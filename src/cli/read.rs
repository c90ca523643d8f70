//! `tlscensus read`: capture files in, records and the census out.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use tlscensus::logs::{self, LogError, Sniffed};
use tlscensus::pipeline;
use tlscensus::record::Record;
use tlscensus::source::SourceError;

use super::clickhouse::{
    print_counts, report_undelivered, status_text, ClickHouseArgs, EventsTargets,
};
use super::options::{CensusArgs, EngineArgs};
use super::output::{deliver, reader_left, Sink};
use super::progress::ProgressBar;
use super::stats::print_stats;

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Capture files to read (pcap, pcapng, Network Monitor .cap, Windows ETW .etl from
    /// `netsh trace` or `pktmon`; any name), each plain or gzip-, zstd- or lz4-compressed:
    /// the format is recognised by content. `-` reads a capture from standard input, e.g.
    /// `tcpdump -w - | tlscensus read -` or `zcat old.pcap.gz | tlscensus read -`.
    /// Server logs may be given beside them: IIS W3C logs with the crypt-* fields and
    /// Exchange SMTP receive/send protocol logs, plain or gzip, recognised by their headers.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Write one JSON record per TLS connection to PATH (`-` for standard output, which
    /// then replaces the table), or insert it into a ClickHouse table
    /// (`clickhouse://HOST:PORT/DATABASE.TABLE`, created if need be). Give it twice for
    /// both.
    #[arg(long, value_name = "PATH")]
    events: Vec<PathBuf>,

    /// How the files are read. `map` (the default): each worker maps its share of a classic
    /// pcap file on disk and touches only the bytes it needs, the fastest way. `split`: the
    /// same with read calls, for a file that another program may truncate or rewrite while
    /// it is read (a mapped file cut short under the reader ends the process with SIGBUS;
    /// one still being appended to is fine). `one`: one reader thread, as pcapng, Network
    /// Monitor files, compressed files and standard input always get. Output is identical
    /// every way.
    #[arg(long, value_name = "HOW", default_value = "map", value_parser = parse_reading)]
    reading: pipeline::Reading,

    /// Print per-stage counters to standard error at the end (frames, batches, queue
    /// waits, batch latency percentiles, evictions, IP fragments reassembled).
    #[arg(long)]
    stats: bool,

    /// Look up each client address in reverse DNS when writing the reports, and list the
    /// names as `resolved` (off by default: it sends one PTR query per client address, at
    /// most 32 at a time, and waits at most 10 s in all)
    #[arg(long)]
    resolve: bool,

    /// The DNS server --resolve asks: IP[:PORT] (default: the first nameserver of
    /// /etc/resolv.conf)
    #[arg(long, value_name = "IP[:PORT]", value_parser = tlscensus::names::resolve::parse_server, requires = "resolve")]
    dns_server: Option<std::net::SocketAddr>,

    /// The IIS custom field that holds the true client's address behind a load balancer,
    /// if it is none of the usual names (OriginalClientIP, OriginalIP, X-Original-Client-IP,
    /// X-Forwarded-For, X-Real-IP, True-Client-IP, X-Client-IP, X-Cluster-Client-IP, each
    /// also as cs(NAME)). Repeatable; looked for before the usual names.
    #[arg(long, value_name = "NAME")]
    client_field: Vec<String>,

    #[command(flatten)]
    census: CensusArgs,

    #[command(flatten)]
    engine: EngineArgs,

    #[command(flatten)]
    clickhouse: ClickHouseArgs,
}

pub fn read(args: ReadArgs) -> Result<ExitCode> {
    let events = EventsTargets::split(&args.events)?;
    let mut sink = Sink::open(events.file.as_deref())?;
    let mut census = args.census.census()?;
    let mut clickhouse = match events.clickhouse {
        Some(target) => Some(args.clickhouse.open(target, census.config.clone())?),
        None => None,
    };
    let clickhouse_counts = clickhouse.as_ref().map(|c| c.counts_view());
    let mut write_error: Option<io::Error> = None;
    let mut line = Vec::with_capacity(4096);
    // Only with --events (a file, `-` or ClickHouse) do the records leave the workers,
    // which count the census themselves.
    let want_events = !matches!(sink, Sink::None) || clickhouse.is_some();
    let mut write_event = |record: Record| {
        let to_file = !matches!(sink, Sink::None) && write_error.is_none();
        if to_file || clickhouse.is_some() {
            // One reused line buffer, one write per record: serde_json's many small writes
            // would each go through the sink's layers.
            line.clear();
            serde_json::to_writer(&mut line, &record).expect("records always serialise");
            if let Some(ch) = &mut clickhouse {
                ch.add(&record, std::str::from_utf8(&line).expect("JSON is UTF-8"));
            }
            line.push(b'\n');
            if to_file {
                if let Err(e) = sink.write_all(&line) {
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
        engine: args.engine.config(),
        threads: args.engine.threads(),
        reading: args.reading,
    };
    tlscensus::report::use_threads(options.threads);
    // Logs are told from captures by their header lines; what is not a log is left to the
    // capture readers, which name what they cannot read.
    let mut captures = Vec::new();
    let mut logs = Vec::new();
    let mut failed_logs = 0;
    for path in &args.files {
        match logs::detect(path) {
            Ok(Sniffed::Log(kind)) => logs.push((path.clone(), kind)),
            Ok(Sniffed::Unsupported(what)) => {
                eprintln!("tlscensus: {}: {what}", path.display());
                failed_logs += 1;
            }
            Ok(Sniffed::NotALog) | Err(_) => captures.push(path.clone()),
        }
    }
    let log_stats = (!logs.is_empty()).then(|| {
        logs::read_logs(
            &logs,
            &args.engine.config().services,
            &args.client_field,
            &mut |record: Record| {
                census.add(&record);
                write_event(record);
            },
            &mut |err: LogError| {
                eprintln!("tlscensus: {err}");
                if err.is_damage() {
                    failed_logs += 1;
                }
            },
        )
    });
    let files = pipeline::order_by_time(&captures);
    let progress = pipeline::Progress::default();
    let mut bar = ProgressBar::new(&files);
    let outputs = pipeline::Outputs {
        census: Some(&mut census),
        records: want_events.then_some(&mut write_event as &mut dyn FnMut(Record)),
    };
    let outcome = pipeline::run_with_progress(
        &files,
        &options,
        &progress,
        outputs,
        &mut on_error,
        &mut |_| match &clickhouse_counts {
            Some(view) => bar.draw_with(&progress, || status_text(&view.counts())),
            None => bar.draw(&progress),
        },
    );
    // The last batches go to ClickHouse (or the spool) while the reports are written.
    let clickhouse_closing = clickhouse.map(|c| std::thread::spawn(move || c.close()));
    bar.finish();
    // Names from the UDP name services, learned by the workers.
    if args.resolve {
        resolve_names(&mut census, args.dns_server)?;
    }
    // Once per file, after the progress bar: e.g. a pktmon capture cut at 128 bytes, and
    // the command that captures whole packets.
    for note in &outcome.pipeline.notes {
        eprintln!("tlscensus: note: {note}");
    }
    if let Some(s) = log_stats {
        eprintln!(
            "tlscensus: logs: {} files, {} lines, {} TLS sessions, {} malformed lines, \
             {} lines without TLS fields or on plain HTTP, {} SMTP sessions without a TLS result",
            s.files, s.lines, s.records, s.malformed, s.without_tls, s.sessions_without_tls
        );
    }
    let events_path = events.file.as_deref().unwrap_or(Path::new("-"));
    if let Some(err) = write_error {
        // `--events - | head` (or a named pipe whose reader left): the reader of the events
        // has what it wanted; the report files are still written.
        if !reader_left(&err) {
            return Err(err).with_context(|| format!("cannot write {}", events_path.display()));
        }
    }
    let table = events.file.as_deref() != Some(Path::new("-"));
    // Syncing the events file to disk waits on the device while the reports are built: the
    // two overlap. So does giving back what the workers freed, which only this thread can
    // do (mimalloc takes over ended threads' heaps on the main thread): it was a serial step
    // of the run's tail, and it is done long before the reports' memory peaks.
    let (closed, delivered) = std::thread::scope(|scope| {
        let closing = scope.spawn(|| sink.close(events_path));
        let delivering = scope.spawn(|| deliver(&census, &args.census.reports, table));
        crate::reclaim_freed_pages();
        (
            closing.join().expect("closing the events panicked"),
            delivering.join().expect("writing the reports panicked"),
        )
    });
    closed?;
    delivered?;
    let clickhouse_counts =
        clickhouse_closing.map(|c| c.join().expect("closing ClickHouse panicked"));
    if args.stats {
        print_stats(&outcome);
        if let Some(counts) = &clickhouse_counts {
            print_counts(counts);
        }
    }
    if let Some(counts) = &clickhouse_counts {
        report_undelivered(counts);
    }
    // The process ends next: handing the census's thousands of small allocations back one by
    // one would only delay the exit.
    std::mem::forget(census);
    Ok(if failed_files + failed_logs > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--resolve`: the clients' reverse-DNS names, added as `resolved`; a note says how many
/// were answered.
fn resolve_names(
    census: &mut tlscensus::census::Census,
    server: Option<std::net::SocketAddr>,
) -> Result<()> {
    use tlscensus::census::names::NameSource;
    use tlscensus::names::resolve;
    let server = match server {
        Some(server) => server,
        None => resolve::system_server().map_err(anyhow::Error::msg)?,
    };
    let addresses: Vec<std::net::IpAddr> = census.clients.keys().map(|k| k.ip).collect();
    let resolved = resolve::reverse_lookup(&addresses, &resolve::ResolveOptions::new(server))
        .with_context(|| format!("--resolve: cannot ask {server}"))?;
    for (ip, names) in &resolved.names {
        for name in names {
            census
                .names
                .add_from_client(*ip, name, NameSource::Resolved);
        }
    }
    let named = resolved.names.values().filter(|n| !n.is_empty()).count();
    eprintln!(
        "tlscensus: note: --resolve asked {server} about {} addresses: {named} named, {} \
         unanswered",
        resolved.asked, resolved.unanswered
    );
    Ok(())
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
