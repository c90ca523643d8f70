//! The parallel pipeline: one reader thread, N worker threads, and the caller's thread as
//! the aggregator.
//!
//! ```text
//!  reader ──batches──▶ worker 0 (own flows) ──records──▶ aggregator (caller's
//!         ──batches──▶ worker 1 (own flows) ──records──▶   thread): reorders
//!                          │
//!                          └──each record──▶ the census, in shards by client
//! ```
//!
//! The workers count their records into the run's census, cut into shards by client
//! (`shards.rs`) and merged into the caller's at the end: the census needs no record to
//! leave its worker. Records go on to the aggregator only when the caller asks for them
//! ([`Outputs::records`], to write events); without them no message crosses per record,
//! and the aggregator only waits.
//!
//! The reader reads each file into pooled buffers ([`Block`]s), slices frames out of them and
//! decodes each one once (the fixed-offset fast path of [`decode::decode`] for nearly every
//! frame), picks its worker by a symmetric hash of the connection's addresses and ports (so
//! both directions go to the same worker), and appends the decoded TCP header with a
//! reference to the payload — block, offset, length — to that worker's batch. Frame bytes are
//! never copied: a worker reads payload in the reader's buffers, only for the connections
//! whose handshake it is still parsing, and the buffers return to the reader's pool when the
//! last batch using them is done.
//!
//! Each worker owns its flows, so no lock is taken per packet. Records carry an
//! [`OrderKey`]; the aggregator releases them in that order once every worker has passed
//! the position, so the output is byte-identical whatever the number of threads.
//!
//! Classic pcap files on disk skip the reader thread: the workers read them in fixed-size
//! blocks, each block split by whichever worker is free, and send each other the frames of
//! the others' connections ([`Reading::Split`], in `split.rs`). The reader thread was the
//! run's bottleneck; this way reading, walking and decoding are spread over every core. The
//! frames each worker gets, their input positions and the ticks between them are the same
//! either way.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use hdrhistogram::Histogram;

use crate::census::Census;
use crate::engine::{Config, Stats};
use crate::flow::Limits;
use crate::record::Record;
use crate::source::{self, SourceError};

/// Batches in flight per worker; the reader blocks (and counts a queue wait) beyond it.
const QUEUE_DEPTH: usize = 4;

mod aggregator;
mod batch;
mod reader;
mod shards;
mod split;
#[cfg(test)]
mod tests;
mod worker;

use aggregator::{aggregate, ToAggregator};
use batch::{Batch, Batcher};
use reader::{new_wait_histogram, read, read_feed, read_live, Frames, ReadStats};
pub use reader::{FeedStep, FileFeed, LiveSource, LIVE_POLL};
use shards::Tally;
pub use shards::{Glance, Live};
use worker::{work, LaneOutputs};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub engine: Config,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Who reads capture files.
    pub reading: Reading,
}

/// Who reads capture files, and how. Every way gives the same records in the same order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reading {
    /// The workers, block by block, when every input is a classic pcap file on disk (see
    /// `split.rs`), through memory maps (`source::mapped`: no copy, and only the bytes the
    /// walk needs are touched); one reader thread for anything else.
    #[default]
    Map,
    /// As [`Reading::Map`], with `read` calls into buffers instead of maps: for files that
    /// may be truncated while they are read, which a map would turn into SIGBUS.
    Split,
    /// One reader thread for every input (what pcapng, Network Monitor files, streams and
    /// live capture always get).
    OneReader,
}

/// Per-stage figures for `--stats`.
#[derive(Debug, Clone)]
pub struct PipelineStats {
    pub threads: usize,
    pub frames_read: u64,
    pub bytes_read: u64,
    pub batches: u64,
    /// Times the reader found a worker's queue full and had to wait.
    pub queue_waits: u64,
    /// Time spent in those waits, all threads together.
    pub queue_wait_time: Duration,
    /// How long each of those waits took, in µs. A split-reading worker waits for a part
    /// another worker is splitting, for the walk another holds, or (when it is the whole
    /// window ahead) for the slowest worker to move on: the waits its spin ended take tens
    /// of µs, those it slept through until the other worker had a core again hundreds.
    pub queue_wait_us: Histogram<u64>,
    /// Frames that were not in the reader's buffer (an internal error; always 0).
    pub frames_unshareable: u64,
    /// Microseconds from a batch leaving the reader to its worker finishing it.
    pub batch_latency_us: Histogram<u64>,
    /// Most records the aggregator held back waiting for slower workers.
    pub reorder_peak: usize,
    /// Records the workers sent the aggregator: every record when the caller wanted them
    /// ([`Outputs::records`]), none otherwise (the workers count the census).
    pub records_ordered: u64,
    pub elapsed: Duration,
    /// CPU time of each stage's thread, where the OS tells it (Linux): the reader, each
    /// worker, and the aggregator (the caller's thread, during the run).
    pub reader_cpu: Option<Duration>,
    pub worker_cpu: Vec<Option<Duration>>,
    pub aggregator_cpu: Option<Duration>,
    /// Frames each worker processed.
    pub worker_frames: Vec<u64>,
    /// The workers read the files themselves ([`Reading::Map`] or [`Reading::Split`]);
    /// there was no reader thread, so `reader_cpu` is `None`, `batches` counts the parts of
    /// blocks the workers sent each other and `queue_waits` the times one waited for
    /// another.
    pub split_reading: bool,
    /// They were to map the files ([`Reading::Map`]) rather than read them (a block that
    /// cannot be mapped is read all the same).
    pub mapped_reading: bool,
    /// Chains of the mapped walks that began at a guessed record start (`source::walk`):
    /// kept, and walked again because the guess was wrong.
    pub walk_guesses_kept: u64,
    pub walk_guesses_rewalked: u64,
    /// The capture formats' own counters, by name, summed over the files read (pcapng and
    /// Network Monitor records skipped; ETW packet events, pktmon copies removed and drops,
    /// NDIS fragments joined, other events): only those of formats that were read.
    pub source_counters: Vec<(&'static str, u64)>,
    /// What the readers said of the files, once per file and each naming its file: for an
    /// ETW log whose packets were cut short, how to capture them whole.
    pub notes: Vec<String>,
}

/// CPU time the calling thread has used so far (Linux: `/proc/thread-self/schedstat`, whose
/// first field is nanoseconds on a CPU); `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// What the caller takes from a run: the census, the records, or both.
pub struct Outputs<'a> {
    /// The census the run's records are added to. The workers count their records into
    /// shards of it by client, merged back into it at the end (it may already hold counts:
    /// log records, a restored state).
    pub census: Option<&'a mut Census>,
    /// Every record, in the canonical order, on the caller's thread: for writing events.
    /// `None`: no record leaves its worker.
    pub records: Option<&'a mut dyn FnMut(Record)>,
}

impl<'a> Outputs<'a> {
    /// The records alone.
    pub fn records(sink: &'a mut dyn FnMut(Record)) -> Self {
        Outputs {
            census: None,
            records: Some(sink),
        }
    }
}

/// What a run produced besides its records.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub pipeline: PipelineStats,
    /// Names the UDP name services gave addresses (all workers'), for the census
    /// ([`crate::census::names::Names::merge_observed`]); already in [`Outputs::census`]
    /// when the run was given one, at its end (reports during the run do not have them).
    pub names: crate::census::names::Names,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Read `files` (already in time order) through the pipeline. Records reach `sink` in
/// the canonical order; damaged inputs reach `on_error` as they are met.
pub fn run(
    files: &[PathBuf],
    options: &Options,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
) -> Outcome {
    let progress = Progress::default();
    run_frames(
        Frames::Files(files, &progress),
        options,
        Outputs::records(sink),
        on_error,
        &mut |_| {},
    )
}

/// [`run`], cutting classic pcap files into blocks of `block_bytes` (instead of 256 KiB)
/// when the workers read them. For tests and the `split_reading` fuzz target, which check
/// that how the files are cut changes nothing.
#[doc(hidden)]
pub fn run_in_blocks(
    files: &[PathBuf],
    options: &Options,
    block_bytes: usize,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
) -> Outcome {
    let progress = Progress::default();
    run_frames_in_blocks(
        Frames::Files(files, &progress),
        options,
        Some(block_bytes),
        Outputs::records(sink),
        on_error,
        &mut |_| {},
    )
}

/// How far the reader has got through the input files, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// File bytes read so far, over all files.
    pub bytes: AtomicU64,
    /// Frames read so far.
    pub frames: AtomicU64,
}

/// [`run`] into `outputs`, publishing the reader's progress in `progress` and calling
/// `on_tick` on the caller's thread at least every 100 ms (to draw a progress bar).
pub fn run_with_progress(
    files: &[PathBuf],
    options: &Options,
    progress: &Progress,
    outputs: Outputs<'_>,
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(&Live<'_>),
) -> Outcome {
    run_frames(
        Frames::Files(files, progress),
        options,
        outputs,
        on_error,
        on_tick,
    )
}

/// Capture from a live source through the pipeline until it ends. Records (if wanted)
/// reach `outputs` in order as soon as every worker has passed them; `on_tick` runs on the
/// caller's thread after every message from the workers and at least every 100 ms, for
/// periodic work (status line, report rewrites from [`Live`]). Batches leave the reader at
/// least every 100 ms.
pub fn run_live(
    source: &mut dyn LiveSource,
    options: &Options,
    outputs: Outputs<'_>,
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(&Live<'_>),
) -> Outcome {
    run_frames(Frames::Live(source), options, outputs, on_error, on_tick)
}

/// Read the files a [`FileFeed`] hands over, as one stream, until it ends. Records (if
/// wanted) reach `outputs` in order as soon as every worker has passed them; `on_tick` runs
/// on the caller's thread at least every 100 ms.
pub fn run_feed(
    feed: &mut dyn FileFeed,
    options: &Options,
    progress: &Progress,
    outputs: Outputs<'_>,
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(&Live<'_>),
) -> Outcome {
    run_frames(
        Frames::Feed(feed, progress),
        options,
        outputs,
        on_error,
        on_tick,
    )
}

fn run_frames(
    frames: Frames<'_>,
    options: &Options,
    outputs: Outputs<'_>,
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(&Live<'_>),
) -> Outcome {
    run_frames_in_blocks(frames, options, None, outputs, on_error, on_tick)
}

/// [`run_frames`], cutting files into blocks of `block_bytes` (`None`: the usual size) when
/// the workers read them.
fn run_frames_in_blocks(
    frames: Frames<'_>,
    options: &Options,
    block_bytes: Option<usize>,
    outputs: Outputs<'_>,
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(&Live<'_>),
) -> Outcome {
    let started = Instant::now();
    let threads = options.threads.max(1);
    let Outputs {
        mut census,
        mut records,
    } = outputs;
    // The caller's census becomes the tally's total for the run, and comes back whole.
    let tally = census.as_deref_mut().map(|census| {
        let empty = Census::new(census.config.clone());
        Arc::new(Tally::new(std::mem::replace(census, empty), threads))
    });
    let lanes: Vec<LaneOutputs> = (0..threads)
        .map(|_| LaneOutputs {
            tally: tally.clone(),
            send_records: records.is_some(),
        })
        .collect();
    let mut worker_config = options.engine.clone();
    // Each worker holds its share of the flows: split the cap and the memory budget.
    worker_config.limits = Limits {
        max_flows: (options.engine.limits.max_flows / threads).max(1),
        flow_memory: options
            .engine
            .limits
            .flow_memory
            .map(|bytes| bytes / threads),
        ..options.engine.limits
    };

    let (to_agg, from_workers) = bounded::<ToAggregator>(threads * QUEUE_DEPTH * 2);
    let mut pipeline = PipelineStats {
        threads,
        frames_read: 0,
        bytes_read: 0,
        batches: 0,
        queue_waits: 0,
        queue_wait_time: Duration::ZERO,
        queue_wait_us: new_wait_histogram(),
        frames_unshareable: 0,
        batch_latency_us: new_histogram(),
        reorder_peak: 0,
        records_ordered: 0,
        elapsed: Duration::ZERO,
        reader_cpu: None,
        worker_cpu: vec![None; threads],
        aggregator_cpu: None,
        worker_frames: vec![0; threads],
        split_reading: false,
        mapped_reading: false,
        walk_guesses_kept: 0,
        walk_guesses_rewalked: 0,
        source_counters: Vec::new(),
        notes: Vec::new(),
    };
    let aggregator_cpu_before = thread_cpu_time();
    let mut stats = Stats::default();
    let mut names = crate::names::kept::KeptNames::default();

    let mut plan = match (&frames, options.reading) {
        (Frames::Files(files, _), Reading::Map | Reading::Split) => {
            let map = options.reading == Reading::Map;
            split::Plan::new(files, block_bytes.unwrap_or(split::block_bytes(map)), map)
        }
        _ => None,
    };
    if let Some((_, errors)) = &mut plan {
        errors.drain(..).for_each(&mut *on_error);
    }
    let shared = match (&plan, &frames) {
        (Some((plan, _)), Frames::Files(_, progress)) => Some(split::Shared::new(
            plan,
            progress,
            threads,
            &worker_config.limits,
        )),
        _ => None,
    };
    pipeline.split_reading = shared.is_some();
    pipeline.mapped_reading = shared.is_some() && options.reading == Reading::Map;
    let ticker_limits = options.engine.limits;
    let live = Live {
        tally: tally.as_deref(),
    };
    std::thread::scope(|scope| {
        // Whoever reads: the workers themselves, or one reader thread feeding them.
        let readers = match &shared {
            Some(shared) => spawn_split(scope, shared, lanes, &worker_config, to_agg),
            None => spawn_with_reader(scope, frames, lanes, &worker_config, ticker_limits, to_agg),
        };
        aggregate(
            threads,
            from_workers,
            &mut |record| {
                if let Some(sink) = &mut records {
                    sink(record);
                }
            },
            on_error,
            &mut || on_tick(&live),
            &mut stats,
            &mut names,
            &mut pipeline,
        );
        for reader in readers {
            let read = reader.join().expect("reading thread panicked");
            pipeline.frames_read += read.frames;
            pipeline.bytes_read += read.bytes;
            pipeline.batches += read.batches;
            pipeline.queue_waits += read.queue_waits;
            pipeline.queue_wait_time += read.waited;
            let _ = pipeline.queue_wait_us.add(&read.wait_lengths_us);
            pipeline.frames_unshareable += read.unshareable;
            pipeline.reader_cpu = pipeline.reader_cpu.or(read.cpu);
            pipeline.walk_guesses_kept += read.guesses_kept;
            pipeline.walk_guesses_rewalked += read.guesses_rewalked;
            reader::add_counters(&mut pipeline.source_counters, &read.source_counters);
            pipeline.notes.extend(read.notes);
        }
    });
    pipeline.aggregator_cpu = thread_cpu_time()
        .zip(aggregator_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let names = names.into_names();
    if let (Some(census), Some(tally)) = (census, tally) {
        let tally = Arc::try_unwrap(tally).expect("the workers have ended");
        *census = tally.into_census();
        census.names.merge_observed(&names);
    }
    pipeline.elapsed = started.elapsed();
    Outcome {
        stats,
        pipeline,
        names,
    }
}

/// Handles of the threads that read, each returning its reading counters.
type Readers<'scope> = Vec<std::thread::ScopedJoinHandle<'scope, ReadStats>>;

/// Start the workers of a split-reading run: they are the readers.
fn spawn_split<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    shared: &'scope split::Shared<'_>,
    lanes: Vec<LaneOutputs>,
    config: &Config,
    to_agg: Sender<ToAggregator>,
) -> Readers<'scope> {
    let threads = lanes.len();
    split::links(threads)
        .into_iter()
        .zip(lanes)
        .enumerate()
        .map(|(worker, (links, outputs))| {
            let (to_agg, config) = (to_agg.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("tlscensus-w{worker}"))
                .spawn_scoped(scope, move || {
                    split::work(worker, threads, config, outputs, links, shared, to_agg)
                })
                .expect("spawn worker thread")
        })
        .collect()
}

/// Start the workers and the one reader thread that feeds them.
fn spawn_with_reader<'scope, 'frames: 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    frames: Frames<'frames>,
    lanes: Vec<LaneOutputs>,
    config: &Config,
    ticker_limits: Limits,
    to_agg: Sender<ToAggregator>,
) -> Readers<'scope> {
    let threads = lanes.len();
    let mut batch_senders = Vec::new();
    let (recycle_tx, recycle_rx) = bounded::<Batch>(threads * (QUEUE_DEPTH + 2));
    for (worker, outputs) in lanes.into_iter().enumerate() {
        let (tx, rx) = bounded::<Batch>(QUEUE_DEPTH);
        batch_senders.push(tx);
        let (to_agg, recycle, config) = (to_agg.clone(), recycle_tx.clone(), config.clone());
        std::thread::Builder::new()
            .name(format!("tlscensus-w{worker}"))
            .spawn_scoped(scope, move || {
                work(worker, threads, config, outputs, rx, to_agg, recycle)
            })
            .expect("spawn worker thread");
    }
    // Named, like the workers, so `top -H` and profilers tell the stages apart.
    let reader = std::thread::Builder::new()
        .name("tlscensus-read".into())
        .spawn_scoped(scope, move || {
            let batcher = Batcher::new(ticker_limits, batch_senders, recycle_rx);
            match frames {
                Frames::Files(files, progress) => read(files, progress, batcher, to_agg),
                Frames::Live(source) => read_live(source, batcher, to_agg),
                Frames::Feed(feed, progress) => read_feed(feed, progress, batcher, to_agg),
            }
        })
        .expect("spawn reader thread");
    vec![reader]
}

/// Order files by their first frame's time, so rotated captures given in any order (or as a
/// shell glob that sorts `file10` before `file2`) are read as one stream. A file whose first
/// record is unreadable goes last; reading it then reports the damage. With standard input or
/// a pipe among them, the given order is kept.
pub fn order_by_time(files: &[PathBuf]) -> Vec<PathBuf> {
    // One file has no order to find; finding a first frame can cost a read-ahead (an .etl
    // merges its processors' buffers before its first packet is known).
    if files.len() < 2 {
        return files.to_vec();
    }
    // A pipe or standard input cannot be peeked at and then read again: the files keep the
    // order they were given in.
    if files.iter().any(|path| source::is_stream(path)) {
        return files.to_vec();
    }
    let mut timed: Vec<(i64, usize, PathBuf)> = files
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let ts = source::first_timestamp(path).ok().flatten();
            (ts.unwrap_or(i64::MAX), index, path.clone())
        })
        .collect();
    timed.sort();
    timed.into_iter().map(|(_, _, path)| path).collect()
}
