//! `tlscensus capture`: live capture from network devices, the census kept up to date.
//!
//! Top-down: open the devices, give up root, then run the pipeline with three callbacks
//! (a record, a capture error, a tick) that feed one [`Session`], and write the final
//! reports when the capture stops.

use std::path::PathBuf;

use clap::Args;

use super::clickhouse::ClickHouseArgs;
use super::options::{CensusArgs, EngineArgs};

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Device to capture on (repeatable): its name, its number in `tlscensus interfaces`,
    /// or a unique part of its description (for Npcap's GUID names).
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required = true)]
    pub interfaces: Vec<String>,

    /// Do not put the devices in promiscuous mode (on the server itself it is not needed).
    #[arg(long)]
    pub no_promiscuous: bool,

    /// Bytes kept of each frame. Handshakes span several frames whatever the value, but a
    /// frame cut short loses the rest of its hello.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    pub snaplen: i32,

    /// Kernel capture buffer in MiB (more absorbs longer bursts before drops).
    #[arg(long, value_name = "MiB")]
    pub buffer_size: Option<i32>,

    /// Deliver each frame as it arrives instead of in kernel batches (lower latency, more
    /// CPU).
    #[arg(long)]
    pub immediate: bool,

    /// Stop after this long (e.g. `90s`, `8h`, `7d`); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// BPF filter replacing the default `tcp and (port 25 or port 587 or ...)`, built from
    /// the configured ports and 443, 465, 993, 995, and the UDP name services' ports
    /// (53, 67/68, 137, 5353, 5355) unless --no-udp-names.
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,

    /// Append one JSON record per connection to PATH as each completes (`-` for standard
    /// output); each line is flushed at once, ready for a log shipper. Or insert it into a
    /// ClickHouse table (`clickhouse://HOST:PORT/DATABASE.TABLE`); give it twice for both.
    #[arg(long, value_name = "PATH")]
    pub events: Vec<PathBuf>,

    /// How often the --report files are rewritten (atomically; and once more at exit).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub report_every: std::time::Duration,

    /// Once the devices are open, switch to this user (and its group), giving up root
    /// (Unix). The --report directories must be writable by it.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Never show the status line (it is shown only when standard error is a terminal).
    #[arg(long)]
    pub quiet: bool,

    #[command(flatten)]
    pub census: CensusArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

/// What the commands that need libpcap say in a build without it.
#[cfg(not(feature = "live"))]
pub const NO_LIVE: &str = "this tlscensus was built without live capture. Build it with the \
     `live` feature: install libpcap (Debian: apt-get install libpcap-dev; Windows: the Npcap \
     SDK, see the README) and run `cargo build --release --features live`";

#[cfg(not(feature = "live"))]
pub fn capture(_: CaptureArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!(NO_LIVE)
}

#[cfg(feature = "live")]
pub use live_capture::capture;

#[cfg(feature = "live")]
mod live_capture {
    use std::cell::RefCell;
    use std::io::{self, Write};
    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use anyhow::{Context, Result};

    use tlscensus::capture::{default_filter, live, with_name_services};
    use tlscensus::census::Census;
    use tlscensus::pipeline::{self, Glance};
    use tlscensus::record::{rfc3339, Record};
    use tlscensus::source::SourceError;

    use super::CaptureArgs;
    use crate::cli::clickhouse::{report_undelivered, status_text, EventsTargets};
    use crate::cli::output::{deliver, nanos_of, write_reports_about};
    use tlscensus::sink::clickhouse::ClickHouseSink;
    use tlscensus::sink::target::Target;

    pub fn capture(args: CaptureArgs) -> Result<ExitCode> {
        let filter = args.bpf.clone().unwrap_or_else(|| {
            let ports: Vec<u16> = [443, 465, 993, 995]
                .into_iter()
                .chain(args.engine.all_ports())
                .collect();
            if args.engine.no_udp_names {
                default_filter(&ports)
            } else {
                with_name_services(&default_filter(&ports))
            }
        });
        let mut devices = Vec::new();
        for wanted in &args.interfaces {
            devices.push(live::resolve(wanted).map_err(anyhow::Error::msg)?);
        }
        let settings = live::Settings {
            promiscuous: !args.no_promiscuous,
            snaplen: args.snaplen.max(64),
            buffer_size: args.buffer_size.map(|mib| mib.saturating_mul(1 << 20)),
            immediate: args.immediate,
            filter: filter.clone(),
        };
        let stop = stop_on_signals()?;
        let mut source =
            live::LiveCapture::open(&devices, &settings, Arc::clone(&stop), args.duration)?;
        // The events file is opened before giving up root, so it may live where only root
        // writes.
        let events_targets = EventsTargets::split(&args.events)?;
        let events = open_events(events_targets.file.as_deref())?;
        if let Some(user) = &args.user {
            live::drop_privileges(user).map_err(anyhow::Error::msg)?;
        }
        // After giving up root: the spool belongs to the user that runs on.
        let mut census = args.census.census()?;
        let clickhouse = match events_targets.clickhouse {
            Some(target) => Some(args.clickhouse.open(target, census.config.clone())?),
            None => None,
        };
        eprintln!(
            "tlscensus: capturing on {} with filter {filter:?}; Ctrl-C to stop",
            devices.join(", ")
        );

        let want_events = events.is_some() || clickhouse.is_some();
        let session = RefCell::new(Session {
            events,
            clickhouse,
            write_error: None,
            report_error: None,
            source_errors: 0,
        });
        let about = About {
            devices,
            filter,
            started: SystemTime::now(),
            counters: source.counters(),
        };
        let status = !args.quiet && io::IsTerminal::is_terminal(&io::stderr());
        let mut next_report = Instant::now() + args.report_every;
        let mut next_status = Instant::now();
        let options = pipeline::Options {
            engine: args.engine.config(),
            threads: args.engine.threads(),
            reading: pipeline::Reading::OneReader,
        };
        tlscensus::report::use_threads(options.threads);
        // The workers count the census; the records come here only to be written.
        let mut write_event = |record| session.borrow_mut().add(record);
        let outputs = pipeline::Outputs {
            census: Some(&mut census),
            records: want_events.then_some(&mut write_event as &mut dyn FnMut(Record)),
        };
        pipeline::run_live(
            &mut source,
            &options,
            outputs,
            &mut |err: SourceError| {
                eprintln!("\ntlscensus: capture failed: {err}");
                session.borrow_mut().source_errors += 1;
            },
            &mut |live| {
                let now = Instant::now();
                if now >= next_report && !args.census.reports.is_empty() {
                    next_report = now + args.report_every;
                    let mut s = session.borrow_mut();
                    let census = live.census().expect("the capture counts a census");
                    if let Err(e) = write_reports_about(
                        &census,
                        &args.census.reports,
                        "capture",
                        &about.json(false),
                    ) {
                        eprintln!("\ntlscensus: {e:#}");
                        s.report_error.get_or_insert(e);
                    }
                }
                if status && now >= next_status {
                    next_status = now + Duration::from_secs(1);
                    session
                        .borrow()
                        .draw_status(&live.glance(), &about.counters);
                }
            },
        );
        source.update_stats();
        // The workers have ended: what they freed goes back before the last reports.
        crate::reclaim_freed_pages();
        if status {
            eprintln!();
        }
        let session = session.into_inner();
        write_reports_about(&census, &args.census.reports, "capture", &about.json(true))?;
        session.finish(&census, &args, &about.counters)
    }

    /// Ctrl-C or SIGTERM once: stop cleanly (the flag the capture polls); a second time:
    /// exit at once.
    fn stop_on_signals() -> Result<Arc<AtomicBool>> {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
                .context("cannot install the signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("cannot install the signal handler")?;
        }
        Ok(stop)
    }

    /// `--events`: appended to (a capture is restarted, never rewound), or standard output.
    fn open_events(path: Option<&Path>) -> Result<Option<Box<dyn Write>>> {
        Ok(match path {
            None => None,
            Some(p) if p == Path::new("-") => Some(Box::new(io::stdout())),
            Some(p) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?,
            )),
        })
    }

    /// What the capture is: its devices, filter and counters, for the JSON report's
    /// `capture` object and the status line.
    struct About {
        devices: Vec<String>,
        filter: String,
        started: SystemTime,
        counters: Arc<live::Counters>,
    }

    impl About {
        fn json(&self, ended: bool) -> serde_json::Value {
            let (packets, received, dropped, if_dropped) = self.counters.get();
            serde_json::json!({
                "interfaces": self.devices,
                "filter": self.filter,
                "started": rfc3339(nanos_of(self.started)),
                "updated": rfc3339(nanos_of(SystemTime::now())),
                "running": !ended,
                "packets": packets,
                "received": received,
                "dropped_by_kernel": dropped,
                "dropped_by_interface": if_dropped,
            })
        }
    }

    /// What the capture keeps besides the census: the events output and the errors met on
    /// the way.
    struct Session {
        events: Option<Box<dyn Write>>,
        clickhouse: Option<ClickHouseSink>,
        write_error: Option<io::Error>,
        report_error: Option<anyhow::Error>,
        source_errors: u32,
    }

    impl Session {
        /// Write a record's event.
        fn add(&mut self, record: Record) {
            let line = serde_json::to_string(&record).expect("records always serialise");
            if let Some(ch) = &mut self.clickhouse {
                ch.add(&record, &line);
            }
            if let (Some(w), None) = (&mut self.events, &self.write_error) {
                if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
                    self.write_error = Some(e);
                }
            }
        }

        /// The status line. Clients below TLS 1.2 are those the census shows offering or
        /// negotiating less on any service.
        fn draw_status(&self, glance: &Glance, counters: &live::Counters) {
            let (packets, _, dropped, if_dropped) = counters.get();
            eprint!(
                "\r\x1b[Kpackets {packets}  handshakes {}  clients {}  below TLS 1.2 {}  drops {}",
                glance.handshakes,
                glance.clients,
                glance.below_tls12,
                dropped + if_dropped
            );
            if let Some(ch) = &self.clickhouse {
                eprint!("  {}", status_text(&ch.counts()));
            }
        }

        /// The closing summary and drop warnings, then the errors met on the way.
        fn finish(
            mut self,
            census: &Census,
            args: &CaptureArgs,
            counters: &live::Counters,
        ) -> Result<ExitCode> {
            if let Some(ch) = self.clickhouse.take() {
                report_undelivered(&ch.close());
            }
            let (packets, received, dropped, if_dropped) = counters.get();
            let glance = Glance::of(census);
            eprintln!(
                "tlscensus: {packets} packets, {} handshakes, {} clients ({} below TLS 1.2); \
                 libpcap received {received}, dropped {dropped} (kernel) + {if_dropped} \
                 (interface)",
                glance.handshakes, glance.clients, glance.below_tls12
            );
            if dropped > 0 {
                eprintln!(
                    "tlscensus: warning: the kernel dropped {dropped} packets: tlscensus did \
                     not read fast enough. Give it a larger buffer (--buffer-size 64), a \
                     narrower --bpf filter, or more cores (--threads); handshakes in dropped \
                     packets are missing or incomplete"
                );
            }
            if if_dropped > 0 {
                eprintln!(
                    "tlscensus: warning: the interface dropped {if_dropped} packets before the \
                     kernel saw them: check the mirror port's bandwidth and the NIC's ring \
                     size (ethtool -G)"
                );
            }
            if let Some(e) = self.write_error {
                let target = args
                    .events
                    .iter()
                    .find(|e| !Target::is_url(&e.to_string_lossy()))
                    .map_or(Path::new("-"), |p| p.as_path());
                return Err(e).with_context(|| format!("cannot write {}", target.display()));
            }
            if let Some(e) = self.report_error {
                return Err(e);
            }
            if args.census.reports.is_empty() && args.events.is_empty() {
                deliver(census, &[], true)?;
            }
            Ok(if self.source_errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
