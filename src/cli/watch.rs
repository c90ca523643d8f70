//! `tlscensus watch DIR`: follow a directory of rotating capture files, the census kept
//! up to date and its state kept across restarts.
//!
//! Top-down: load the state (census, files read, where the last run stopped), start a
//! [`DirectoryFeed`] on the directory, run the pipeline with three callbacks (a record, a
//! damaged file, a tick) that feed one [`Session`], and on stop write the state, then the
//! final reports.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use clap::Args;

use tlscensus::census::Census;
use tlscensus::follow::{
    Completion, DirectoryFeed, FeedProgress, FileId, Resume, ResumePoint, Verdict, WatchState,
    STATE_VERSION,
};
use tlscensus::pipeline;
use tlscensus::record::{rfc3339, Record};
use tlscensus::report;
use tlscensus::sink::clickhouse::ClickHouseSink;
use tlscensus::source::SourceError;

use super::clickhouse::{report_undelivered, status_text, ClickHouseArgs, EventsTargets};
use super::options::{CensusArgs, EngineArgs};
use super::output::{deliver, nanos_of, write_reports_about};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Directory the capture tool writes its rotating files to (pcap, pcapng, Network
    /// Monitor; any name). Files whose name starts with `.` are ignored.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Where to keep what has been read and counted, so a restart neither loses nor counts
    /// anything twice [default: DIR/.tlscensus-watch.json].
    #[arg(long, value_name = "PATH")]
    state: Option<PathBuf>,

    /// Append one JSON record per connection to PATH as each completes, or insert it into
    /// a ClickHouse table (`clickhouse://HOST:PORT/DATABASE.TABLE`). Give it twice for both.
    #[arg(long, value_name = "PATH")]
    events: Vec<PathBuf>,

    /// How often the --report files (and the state) are rewritten, atomically; they are
    /// also written when a file has been read and at exit.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    report_every: Duration,

    /// The newest file counts as complete once nothing has written to it for this long
    /// (the last file of a capture that stopped). Older files are complete as soon as a
    /// newer one appears.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    idle: Duration,

    /// How long a file's length and time must stay the same before it is read.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    settle: Duration,

    /// Read the files complete now, then exit (for a scheduled job); the state carries on
    /// at the next run.
    #[arg(long)]
    once: bool,

    /// Never show the status line (it is shown only when standard error is a terminal).
    #[arg(long)]
    quiet: bool,

    #[command(flatten)]
    census: CensusArgs,

    #[command(flatten)]
    engine: EngineArgs,

    #[command(flatten)]
    clickhouse: ClickHouseArgs,
}

pub fn watch(args: WatchArgs) -> Result<ExitCode> {
    let meta = std::fs::metadata(&args.dir)
        .with_context(|| format!("cannot watch {}", args.dir.display()))?;
    anyhow::ensure!(meta.is_dir(), "{} is not a directory", args.dir.display());
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| args.dir.join(".tlscensus-watch.json"));

    let events_targets = EventsTargets::split(&args.events)?;
    let events_file = events_targets.file.clone();
    let mut census = args.census.census()?;
    let saved = WatchState::load(&state_path)?;
    let stop = stop_on_signals()?;
    let progress = Arc::new(FeedProgress::default());
    let rules = Completion {
        settle: args.settle,
        idle: args.idle,
        ..Completion::default()
    };
    let mut feed = DirectoryFeed::new(
        &args.dir,
        rules,
        args.once,
        Arc::clone(&stop),
        Arc::clone(&progress),
    );
    feed.ignore(&state_path);
    for target in &args.census.reports {
        feed.ignore(&target.path);
    }
    if let Some(events) = &events_file {
        feed.ignore(events);
    }

    let mut read_before = Vec::new();
    let mut resume = Resume::default();
    let mut events_len = None;
    if let Some(state) = saved {
        state.restore_census(&mut census, &state_path)?;
        read_before = state.read.clone();
        feed.already_read(state.read.iter().cloned());
        resume = resume_from(state.resume, &args.dir, &mut feed);
        events_len = state.events_len;
        eprintln!(
            "tlscensus: resuming from {}: {} files read before",
            state_path.display(),
            read_before.len()
        );
    }
    let events = open_events(events_file.as_deref(), events_len)?;
    let clickhouse = match events_targets.clickhouse {
        Some(target) => Some(args.clickhouse.open(target, census.config.clone())?),
        None => None,
    };
    eprintln!(
        "tlscensus: watching {} for complete capture files{}",
        args.dir.display(),
        if args.once { "" } else { "; Ctrl-C to stop" }
    );

    let session = RefCell::new(Session {
        census,
        resume,
        read_before,
        generation: 0,
        known: 0,
        files: Default::default(),
        handshakes: 0,
        withheld: Vec::new(),
        events,
        clickhouse,
        write_error: None,
        source_errors: 0,
    });
    let save = |s: &Session| -> Result<()> {
        s.state(&args.dir).save(&state_path).with_context(|| {
            format!(
                "cannot write the state file {} (give --state a path this user may write)",
                state_path.display()
            )
        })
    };
    // Before any file is read: a state that cannot be written would lose the run's work.
    save(&session.borrow())?;
    let status = !args.quiet && io::IsTerminal::is_terminal(&io::stderr());
    let mut next_report = Instant::now() + args.report_every;
    let mut next_status = Instant::now();
    let mut saved_generation = 0;
    let mut tick_error: Option<anyhow::Error> = None;
    let options = pipeline::Options {
        engine: args.engine.config(),
        threads: args.engine.threads(),
        reading: pipeline::Reading::OneReader,
    };
    tlscensus::report::use_threads(options.threads);
    let counters = pipeline::Progress::default();
    let mut stopping = false;
    // The watch counts its census itself, from the records in order: whether a record
    // counts depends on where the last run stopped (`Resume::judge`), and the state saved
    // must hold exactly the records its resume point says were counted. A census counted
    // in the workers would be a batch ahead of that point.
    let mut on_record = |record| {
        let mut s = session.borrow_mut();
        s.follow(&progress);
        if !stopping && stop.load(Ordering::Relaxed) {
            stopping = true;
            s.resume.stopping();
        }
        s.add(record);
    };
    let outcome = pipeline::run_feed(
        &mut feed,
        &options,
        &counters,
        pipeline::Outputs::records(&mut on_record),
        &mut |err: SourceError| {
            eprintln!("\ntlscensus: {err}");
            session.borrow_mut().source_errors += 1;
        },
        &mut |_| {
            let mut s = session.borrow_mut();
            s.follow(&progress);
            let notes = std::mem::take(&mut progress.files.lock().expect("feed state").notes);
            for note in notes {
                eprintln!("\ntlscensus: note: {note}");
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            // The state and reports after each file read, and every --report-every.
            if now >= next_report || s.generation != saved_generation {
                next_report = now + args.report_every;
                saved_generation = s.generation;
                let written = s.flush_events().and_then(|()| save(&s)).and_then(|()| {
                    write_reports_about(
                        &s.census,
                        &args.census.reports,
                        "watch",
                        &s.about(&progress, false),
                    )
                });
                if let Err(e) = written {
                    eprintln!("\ntlscensus: {e:#}");
                    tick_error.get_or_insert(e);
                }
            }
            if status && now >= next_status {
                next_status = now + Duration::from_secs(1);
                s.draw_status(&progress, &counters);
            }
        },
    );
    if status {
        eprintln!();
    }
    let mut session = session.into_inner();
    session.follow(&progress);
    for note in std::mem::take(&mut progress.files.lock().expect("feed state").notes) {
        eprintln!("tlscensus: note: {note}");
    }
    // Names from the UDP name services, learned by the workers, kept in the state too (a
    // restart that reads the last file again counts its names again, in `count` only).
    session.census.names.merge_observed(&outcome.names);
    // The state first, without the handshakes the stop cut short (the restart sees them
    // whole); the final reports with them.
    session.flush_events()?;
    save(&session)?;
    let about = session.about(&progress, true);
    for record in std::mem::take(&mut session.withheld) {
        session.census.add(&record);
    }
    write_reports_about(&session.census, &args.census.reports, "watch", &about)?;
    let clickhouse_counts = session.clickhouse.take().map(|c| c.close());
    if let Some(counts) = &clickhouse_counts {
        report_undelivered(counts);
    }
    if args.census.reports.is_empty() && args.events.is_empty() {
        deliver(&session.census, &[], true)?;
    }
    eprintln!(
        "tlscensus: {} files read in this run, {} frames, {} handshakes; state in {}",
        session.files.finished.len() + usize::from(session.files.current.is_some()),
        outcome.pipeline.frames_read,
        session.handshakes,
        state_path.display()
    );
    if let Some(e) = session.write_error {
        let target = events_file.as_deref().unwrap_or(Path::new("-"));
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    if let Some(e) = tick_error {
        return Err(e);
    }
    std::mem::forget(session.census);
    Ok(if session.source_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Set up where the last run stopped: its last files are read again first, if they are
/// still there unchanged.
fn resume_from(point: ResumePoint, dir: &Path, feed: &mut DirectoryFeed) -> Resume {
    let path_of = |id: &FileId| dir.join(&id.name).display().to_string();
    let unchanged = point.files.iter().all(|id| {
        std::fs::metadata(dir.join(&id.name))
            .ok()
            .is_some_and(|m| m.len() == id.len)
    });
    if !unchanged {
        eprintln!(
            "tlscensus: warning: a file the last run was reading is gone or has changed; \
             handshakes the stop had cut short in it are lost"
        );
        return Resume::default();
    }
    for id in &point.files {
        feed.resume_with(id.clone());
    }
    Resume::from_point(point, path_of)
}

/// Ctrl-C, SIGTERM (or the console closing, on Windows) once: stop cleanly, writing the
/// state and the reports; a second time: exit at once.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = AtomicU32::new(0);
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::Relaxed) > 0 {
            std::process::exit(130);
        }
        flag.store(true, Ordering::Relaxed);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// `--events`: appended to. After a crash the file is first cut back to the length the
/// state recorded: the records after it are made again.
fn open_events(path: Option<&Path>, saved_len: Option<u64>) -> Result<Option<BufWriter<File>>> {
    let Some(path) = path else { return Ok(None) };
    anyhow::ensure!(
        path != Path::new("-"),
        "watch appends its records to a file (--events PATH); standard output is not one"
    );
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    if let Some(saved) = saved_len.filter(|&saved| saved < len) {
        eprintln!(
            "tlscensus: {}: cutting the records written after the last state ({} bytes) \
             back; they are made again",
            path.display(),
            len - saved
        );
        file.set_len(saved)
            .with_context(|| format!("cannot truncate {}", path.display()))?;
    }
    Ok(Some(BufWriter::with_capacity(256 << 10, file)))
}

/// Everything the watch accumulates.
struct Session {
    census: Census,
    resume: Resume,
    /// Files read by earlier runs.
    read_before: Vec<FileId>,
    /// The feed's generation last seen.
    generation: u64,
    /// Files handed out in this run that `resume` knows of.
    known: usize,
    /// What the feed has handed out in this run.
    files: tlscensus::follow::FeedFiles,
    handshakes: u64,
    /// Records the stop cut short: in the final reports, not in the state.
    withheld: Vec<Record>,
    events: Option<BufWriter<File>>,
    clickhouse: Option<ClickHouseSink>,
    write_error: Option<io::Error>,
    source_errors: u32,
}

impl Session {
    /// Catch up with the files the reader has moved through.
    fn follow(&mut self, progress: &FeedProgress) {
        let generation = progress.generation.load(Ordering::Acquire);
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        self.files = progress.files.lock().expect("feed state").clone();
        let handed = self.files.finished.iter().chain(&self.files.current);
        for (id, path) in handed.skip(self.known) {
            self.resume.handed_out(id.clone(), path.clone());
            self.known += 1;
        }
    }

    fn add(&mut self, record: Record) {
        match self.resume.judge(&record) {
            Verdict::Skip => return,
            Verdict::Withhold => {
                self.withheld.push(record);
                return;
            }
            Verdict::Count => {}
        }
        self.census.add(&record);
        self.handshakes += 1;
        if self.events.is_none() && self.clickhouse.is_none() {
            return;
        }
        let line = serde_json::to_string(&record).expect("records always serialise");
        if let Some(ch) = &mut self.clickhouse {
            ch.add(&record, &line);
        }
        if let (Some(w), None) = (&mut self.events, &self.write_error) {
            if let Err(e) = writeln!(w, "{line}") {
                self.write_error = Some(e);
            }
        }
    }

    fn flush_events(&mut self) -> Result<()> {
        if let Some(w) = &mut self.events {
            w.flush().context("cannot write the events")?;
        }
        Ok(())
    }

    fn state(&self, dir: &Path) -> WatchState {
        let resume = self.resume.point();
        let handed = self.files.finished.iter().chain(&self.files.current);
        let mut read: Vec<FileId> = self.read_before.clone();
        read.extend(handed.map(|(id, _)| id.clone()));
        // The files a restart reads again are not read yet; files deleted since (a ring
        // buffer moved on) need not be remembered.
        read.retain(|id| !resume.files.contains(id) && dir.join(&id.name).exists());
        read.sort_by(|a, b| a.name.cmp(&b.name).then(a.mtime_ns.cmp(&b.mtime_ns)));
        read.dedup();
        let events_len = self
            .events
            .as_ref()
            .and_then(|w| w.get_ref().metadata().ok())
            .map(|m| m.len());
        WatchState {
            tlscensus_watch_state: STATE_VERSION,
            directory: dir.display().to_string(),
            updated: rfc3339(nanos_of(SystemTime::now())),
            read,
            resume,
            events_len,
            census: report::json::to_value(&self.census),
        }
    }

    /// The JSON report's `watch` object.
    fn about(&self, progress: &FeedProgress, ended: bool) -> serde_json::Value {
        let waiting = progress.files.lock().map_or(0, |f| f.waiting);
        serde_json::json!({
            "files_read": self.read_before.len() + self.files.finished.len()
                + usize::from(self.files.current.is_some()),
            "files_waiting": waiting,
            "reading": self.files.current.as_ref().map(|(id, _)| id.name.clone()),
            "updated": rfc3339(nanos_of(SystemTime::now())),
            "running": !ended,
        })
    }

    fn draw_status(&self, progress: &FeedProgress, counters: &pipeline::Progress) {
        let waiting = progress.files.lock().map_or(0, |f| f.waiting);
        let reading = self
            .files
            .current
            .as_ref()
            .map_or("-", |(id, _)| id.name.as_str());
        eprint!(
            "\r\x1b[Kfiles read {}  waiting {waiting}  last {reading}  frames {}  handshakes {}  clients {}",
            self.files.finished.len() + usize::from(self.files.current.is_some()),
            counters.frames.load(Ordering::Relaxed),
            self.handshakes,
            self.census.clients.len(),
        );
        if let Some(ch) = &self.clickhouse {
            eprint!("  {}", status_text(&ch.counts()));
        }
    }
}
