//! The parallel pipeline: one reader thread, N worker threads, and the caller's thread as
//! the aggregator.
//!
//! ```text
//!  reader ──batches──▶ worker 0 (own flow table) ──records──▶ aggregator (caller's thread)
//!         ──batches──▶ worker 1 (own flow table) ──records──▶   reorders, writes, counts
//! ```
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
//! Classic pcap files on disk skip the reader thread: the workers read them, each its share
//! of fixed-size blocks, and send each other the frames of the others' connections
//! ([`Reading::Split`], in `split.rs`). The reader thread was the run's bottleneck; this way
//! reading, walking and decoding are spread over every core. The frames each worker gets,
//! their input positions and the ticks between them are the same either way.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use hdrhistogram::Histogram;

use crate::decode::{self, Segment, Skip, TcpFlags};
use crate::engine::{Config, Emitted, Engine, OrderKey, Stats, Ticker};
use crate::flow::Limits;
use crate::record::Record;
use crate::source::{self, Block, BlockPool, CaptureReader, Packet, SourceError};

/// Frames read between two batch flushes (all workers' batches are sent together, so every
/// worker's progress advances in step).
const FLUSH_EVERY: u64 = 1024;
/// Batches in flight per worker; the reader blocks (and counts a queue wait) beyond it.
const QUEUE_DEPTH: usize = 4;
/// Live capture: batches also leave at least this often, so records stream out promptly
/// even when traffic is light.
const LIVE_FLUSH: Duration = Duration::from_millis(100);
/// Live capture: size of the pooled blocks frames are copied into.
const LIVE_BLOCK: usize = 512 << 10;
/// Longest a worker keeps its records and progress to itself (while batches arrive; a live
/// reader sends one at least every [`LIVE_FLUSH`]). Short enough that the aggregator works
/// in short bursts: on a machine with as many workers as cores, each burst takes a core
/// from a worker, and the other soon waits for that one. Measured on 2 cores, paired
/// alternating runs against 20 ms: 5 % less wall time on the 2 GB capture (20 of 30 runs
/// faster), 5 % on the handshake-only one (14 of 20), 10 % with one reader thread (15 of
/// 16); 2 ms was no better than 5.
const PROGRESS_EVERY: Duration = Duration::from_millis(5);
/// Records a worker sends as soon as it holds them, however recent its last message.
const RECORDS_PER_MESSAGE: usize = 512;
/// How often the aggregator wakes up for its `on_tick` callback when no message arrives.
const AGGREGATOR_TICK: Duration = Duration::from_millis(100);

/// A live frame source (one or more capture devices), polled by the pipeline's reader
/// thread.
pub trait LiveSource: Send {
    /// Name for the records' `capture.file` (e.g. `live:eth0`).
    fn name(&self) -> String;
    /// Hand the frames that arrive to `on_frame` (each borrowed from the capture library
    /// for the call only) and return within about [`LIVE_POLL`], so that batches leave on
    /// time and a stop request is noticed. `Ok(false)` when the capture is over (stop
    /// requested, duration reached); the reader then flushes everything in flight.
    fn poll(&mut self, on_frame: &mut dyn FnMut(&Packet<'_>)) -> Result<bool, SourceError>;
}

/// How long [`LiveSource::poll`] may wait for frames.
pub const LIVE_POLL: Duration = Duration::from_millis(100);

/// Where the reader thread gets its frames.
enum Frames<'a> {
    Files(&'a [PathBuf], &'a Progress),
    Live(&'a mut dyn LiveSource),
}

mod split;

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
    /// The workers, each its share of the file, when every input is a classic pcap file on
    /// disk (see `split.rs`), through memory maps (`source::mapped`: no copy, and only the
    /// bytes the walk needs are touched); one reader thread for anything else.
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
    /// How long each of those waits took, in µs. A split-reading worker's waits are of two
    /// kinds: those its spin ended (tens of µs) and those it slept through until the other
    /// worker had a core again (hundreds of µs on a 2-core VM, where the aggregator takes
    /// one from time to time).
    pub queue_wait_us: Histogram<u64>,
    /// Frames that were not in the reader's buffer (an internal error; always 0).
    pub frames_unshareable: u64,
    /// Microseconds from a batch leaving the reader to its worker finishing it.
    pub batch_latency_us: Histogram<u64>,
    /// Most records the aggregator held back waiting for slower workers.
    pub reorder_peak: usize,
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
}

/// CPU time the calling thread has used so far (Linux: `/proc/thread-self/schedstat`, whose
/// first field is nanoseconds on a CPU); `None` elsewhere.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// What a run produced besides its records.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub pipeline: PipelineStats,
}

/// A frame of a batch as the reader decoded it, packed as plain integers for the trip to
/// its worker (64 bytes; the decoded [`Segment`] with its two `IpAddr`s took 96, at odd
/// offsets). It names where the payload lies in one of the batch's blocks, so a worker
/// touches the frame's bytes only for payload it parses; the other packets of a connection
/// cost it a table lookup over data that arrived in its batch.
#[derive(Debug, Clone, Copy)]
struct FrameRef {
    /// Position in the input (odd; ticks take the even positions).
    index: u64,
    ts_nanos: i64,
    frame_number: u64,
    /// IPv4: source address << 32 | destination address. Otherwise ([`FrameRef::WIDE`]):
    /// the index of the address pair in the batch's `wide` list.
    addresses: u64,
    seq: u32,
    ack: u32,
    block: u32,
    payload_start: u32,
    payload_len: u32,
    sport: u16,
    dport: u16,
    /// [`FrameRef::SYN`] ... [`FrameRef::WIDE`].
    flags: u8,
    /// Why the frame is not a TCP segment, when it is not.
    skip: Option<Skip>,
}

// One cache line per frame: keep it that way.
const _: () = assert!(std::mem::size_of::<FrameRef>() == 64);

impl FrameRef {
    const SYN: u8 = 1;
    const ACK: u8 = 2;
    const FIN: u8 = 4;
    const RST: u8 = 8;
    const TRUNCATED: u8 = 16;
    const WIDE: u8 = 32;

    /// Pack a decoded frame; its payload's block and offset are set by the caller, who
    /// knows which buffer the frame lies in. IPv6 addresses go to `wide`.
    fn pack(
        index: u64,
        ts_nanos: i64,
        frame_number: u64,
        decoded: &Result<Segment<'_>, Skip>,
        wide: &mut Vec<(IpAddr, IpAddr)>,
    ) -> FrameRef {
        let empty = FrameRef {
            index,
            ts_nanos,
            frame_number,
            addresses: 0,
            seq: 0,
            ack: 0,
            block: 0,
            payload_start: 0,
            payload_len: 0,
            sport: 0,
            dport: 0,
            flags: 0,
            skip: None,
        };
        let segment = match decoded {
            Ok(segment) => segment,
            Err(skip) => {
                return FrameRef {
                    skip: Some(*skip),
                    ..empty
                }
            }
        };
        let bit = |set: bool, flag: u8| if set { flag } else { 0 };
        let f = segment.flags;
        let mut flags = bit(f.syn, Self::SYN)
            | bit(f.ack, Self::ACK)
            | bit(f.fin, Self::FIN)
            | bit(f.rst, Self::RST)
            | bit(segment.payload_truncated, Self::TRUNCATED);
        let addresses = match (segment.src, segment.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                u64::from(src.to_bits()) << 32 | u64::from(dst.to_bits())
            }
            (src, dst) => {
                flags |= Self::WIDE;
                wide.push((src, dst));
                wide.len() as u64 - 1
            }
        };
        FrameRef {
            addresses,
            seq: segment.seq,
            ack: segment.ack,
            payload_len: segment.payload.len() as u32,
            sport: segment.sport,
            dport: segment.dport,
            flags,
            ..empty
        }
    }

    /// The decoded frame again, its payload borrowed from the batch's blocks.
    #[inline]
    fn unpack<'a>(
        &self,
        blocks: &'a [Arc<Block>],
        wide: &[(IpAddr, IpAddr)],
    ) -> Result<Segment<'a>, Skip> {
        if let Some(skip) = self.skip {
            return Err(skip);
        }
        let (src, dst) = if self.flags & Self::WIDE == 0 {
            (
                IpAddr::V4(Ipv4Addr::from_bits((self.addresses >> 32) as u32)),
                IpAddr::V4(Ipv4Addr::from_bits(self.addresses as u32)),
            )
        } else {
            // The reader filled both lists together; a missing pair would be a bug.
            wide.get(self.addresses as usize)
                .copied()
                .ok_or(Skip::Malformed)?
        };
        let start = self.payload_start as usize;
        let payload = blocks
            .get(self.block as usize)
            .and_then(|block| block.get(start..start + self.payload_len as usize))
            .unwrap_or_default();
        let flag = |flag: u8| self.flags & flag != 0;
        Ok(Segment {
            src,
            dst,
            sport: self.sport,
            dport: self.dport,
            seq: self.seq,
            ack: self.ack,
            flags: TcpFlags {
                syn: flag(Self::SYN),
                ack: flag(Self::ACK),
                fin: flag(Self::FIN),
                rst: flag(Self::RST),
            },
            payload,
            payload_truncated: flag(Self::TRUNCATED),
        })
    }
}

/// What a worker must do between two frames of its batch.
#[derive(Debug)]
enum Mark {
    /// Expire idle connections (input index, capture time).
    Tick(u64, i64),
    /// Frames that follow come from this file.
    BeginFile(Arc<str>),
}

/// A worker's share of the frames read since the last flush.
#[derive(Debug, Default)]
struct Batch {
    blocks: Vec<Arc<Block>>,
    frames: Vec<FrameRef>,
    /// Rare events, each with the number of frames that come before it.
    marks: Vec<(usize, Mark)>,
    /// Address pairs of the frames that are not IPv4 (see [`FrameRef::addresses`]).
    wide: Vec<(IpAddr, IpAddr)>,
    /// Last input index this batch covers: the worker has seen everything up to here.
    upto: u64,
    sent: Option<Instant>,
}

impl Batch {
    fn clear(&mut self) {
        self.blocks.clear();
        self.frames.clear();
        self.marks.clear();
        self.wide.clear();
        self.sent = None;
    }

    fn mark(&mut self, mark: Mark) {
        self.marks.push((self.frames.len(), mark));
    }

    /// Index of `block` in this batch, adding it if it is new (frames arrive block by block,
    /// so only the last one needs checking).
    fn block_index(&mut self, block: &Arc<Block>) -> u32 {
        if !self.blocks.last().is_some_and(|b| Arc::ptr_eq(b, block)) {
            self.blocks.push(Arc::clone(block));
        }
        (self.blocks.len() - 1) as u32
    }
}

/// Messages from workers to the aggregator.
enum ToAggregator {
    Progress {
        worker: usize,
        upto: u64,
        records: Vec<(OrderKey, u64, Record)>,
    },
    Finished {
        worker: usize,
        records: Vec<(OrderKey, u64, Record)>,
        stats: Box<Stats>,
        latency: Box<Histogram<u64>>,
        cpu: Option<Duration>,
    },
    SourceError(SourceError),
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
        sink,
        on_error,
        &mut || {},
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
        sink,
        on_error,
        &mut || {},
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

/// [`run`], publishing the reader's progress in `progress` and calling `on_tick` on the
/// caller's thread at least every 100 ms (to draw a progress bar).
pub fn run_with_progress(
    files: &[PathBuf],
    options: &Options,
    progress: &Progress,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(),
) -> Outcome {
    run_frames(
        Frames::Files(files, progress),
        options,
        sink,
        on_error,
        on_tick,
    )
}

/// Capture from a live source through the pipeline until it ends. Records reach `sink`
/// in order as soon as every worker has passed them; `on_tick` runs on the caller's thread
/// after every message from the workers and at least every 100 ms, for periodic work
/// (status line, report rewrites). Batches leave the reader at least every 100 ms.
pub fn run_live(
    source: &mut dyn LiveSource,
    options: &Options,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(),
) -> Outcome {
    run_frames(Frames::Live(source), options, sink, on_error, on_tick)
}

fn run_frames(
    frames: Frames<'_>,
    options: &Options,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(),
) -> Outcome {
    run_frames_in_blocks(frames, options, None, sink, on_error, on_tick)
}

/// [`run_frames`], cutting files into blocks of `block_bytes` (`None`: the usual size) when
/// the workers read them.
fn run_frames_in_blocks(
    frames: Frames<'_>,
    options: &Options,
    block_bytes: Option<usize>,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(),
) -> Outcome {
    let started = Instant::now();
    let threads = options.threads.max(1);
    let mut worker_config = options.engine.clone();
    // Each worker holds its share of the flows: split the cap.
    worker_config.limits = Limits {
        max_flows: (options.engine.limits.max_flows / threads).max(1),
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
        elapsed: Duration::ZERO,
        reader_cpu: None,
        worker_cpu: vec![None; threads],
        aggregator_cpu: None,
        worker_frames: vec![0; threads],
        split_reading: false,
        mapped_reading: false,
        walk_guesses_kept: 0,
        walk_guesses_rewalked: 0,
    };
    let aggregator_cpu_before = thread_cpu_time();
    let mut stats = Stats::default();

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
        (Some((plan, _)), Frames::Files(_, progress)) => {
            Some(split::Shared::new(plan, progress, threads))
        }
        _ => None,
    };
    pipeline.split_reading = shared.is_some();
    pipeline.mapped_reading = shared.is_some() && options.reading == Reading::Map;
    let ticker_limits = options.engine.limits;
    std::thread::scope(|scope| {
        // Whoever reads: the workers themselves, or one reader thread feeding them.
        let readers = match &shared {
            Some(shared) => spawn_split(scope, shared, threads, &worker_config, to_agg),
            None => spawn_with_reader(
                scope,
                frames,
                threads,
                &worker_config,
                ticker_limits,
                to_agg,
            ),
        };
        aggregate(
            threads,
            from_workers,
            sink,
            on_error,
            on_tick,
            &mut stats,
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
        }
    });
    pipeline.aggregator_cpu = thread_cpu_time()
        .zip(aggregator_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    pipeline.elapsed = started.elapsed();
    Outcome { stats, pipeline }
}

/// Handles of the threads that read, each returning its reading counters.
type Readers<'scope> = Vec<std::thread::ScopedJoinHandle<'scope, ReadStats>>;

/// Start the workers of a split-reading run: they are the readers.
fn spawn_split<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    shared: &'scope split::Shared<'_>,
    threads: usize,
    config: &Config,
    to_agg: Sender<ToAggregator>,
) -> Readers<'scope> {
    split::links(threads, &config.limits)
        .into_iter()
        .enumerate()
        .map(|(worker, links)| {
            let (to_agg, config) = (to_agg.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("tlscensus-w{worker}"))
                .spawn_scoped(scope, move || {
                    split::work(worker, threads, config, links, shared, to_agg)
                })
                .expect("spawn worker thread")
        })
        .collect()
}

/// Start the workers and the one reader thread that feeds them.
fn spawn_with_reader<'scope, 'frames: 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    frames: Frames<'frames>,
    threads: usize,
    config: &Config,
    ticker_limits: Limits,
    to_agg: Sender<ToAggregator>,
) -> Readers<'scope> {
    let mut batch_senders = Vec::new();
    let (recycle_tx, recycle_rx) = bounded::<Batch>(threads * (QUEUE_DEPTH + 2));
    for worker in 0..threads {
        let (tx, rx) = bounded::<Batch>(QUEUE_DEPTH);
        batch_senders.push(tx);
        let (to_agg, recycle, config) = (to_agg.clone(), recycle_tx.clone(), config.clone());
        std::thread::Builder::new()
            .name(format!("tlscensus-w{worker}"))
            .spawn_scoped(scope, move || work(worker, config, rx, to_agg, recycle))
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
            }
        })
        .expect("spawn reader thread");
    vec![reader]
}

/// A reading thread's counters: the reader thread's, or a split-reading worker's (whose
/// CPU time is not the reading's alone, so it leaves `cpu` unset).
#[derive(Debug)]
struct ReadStats {
    frames: u64,
    bytes: u64,
    batches: u64,
    queue_waits: u64,
    waited: Duration,
    /// How long each of those waits took, in µs.
    wait_lengths_us: Histogram<u64>,
    unshareable: u64,
    cpu: Option<Duration>,
    /// Chains of the mapped walk begun at a guess: kept, and walked again.
    guesses_kept: u64,
    guesses_rewalked: u64,
}

impl Default for ReadStats {
    fn default() -> Self {
        ReadStats {
            frames: 0,
            bytes: 0,
            batches: 0,
            queue_waits: 0,
            waited: Duration::ZERO,
            wait_lengths_us: new_wait_histogram(),
            unshareable: 0,
            cpu: None,
            guesses_kept: 0,
            guesses_rewalked: 0,
        }
    }
}

impl ReadStats {
    /// Count a wait that began at `began` and is over.
    fn waited_since(&mut self, began: Instant) {
        let waited = began.elapsed();
        self.queue_waits += 1;
        self.waited += waited;
        let _ = self.wait_lengths_us.record(
            waited
                .as_micros()
                .clamp(1, u128::from(WAIT_HISTOGRAM_MAX_US)) as u64,
        );
    }
}

/// Longest wait the wait histogram tells apart (10 s); longer ones count as this.
const WAIT_HISTOGRAM_MAX_US: u64 = 10_000_000;

/// Wait lengths in µs to two significant digits: enough to tell a spin from a sleep, and a
/// small table per thread.
fn new_wait_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, WAIT_HISTOGRAM_MAX_US, 2).expect("valid histogram bounds")
}

/// The reader thread's batching state, shared by file and live reading.
struct Batcher {
    batches: Vec<Batch>,
    senders: Vec<Sender<Batch>>,
    recycled: Receiver<Batch>,
    stats: ReadStats,
    ticker: Ticker,
    index: u64,
    pending: u64,
}

impl Batcher {
    fn new(limits: Limits, senders: Vec<Sender<Batch>>, recycled: Receiver<Batch>) -> Self {
        Batcher {
            batches: (0..senders.len()).map(|_| Batch::default()).collect(),
            senders,
            recycled,
            stats: ReadStats::default(),
            ticker: Ticker::new(&limits),
            index: 0,
            pending: 0,
        }
    }

    /// Send every worker its batch, covering the input up to `upto`.
    fn flush(&mut self, upto: u64) {
        for (worker, slot) in self.batches.iter_mut().enumerate() {
            let mut batch = std::mem::replace(slot, self.recycled.try_recv().unwrap_or_default());
            batch.upto = upto;
            batch.sent = Some(Instant::now());
            self.stats.batches += 1;
            match self.senders[worker].try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(batch)) => {
                    let waiting = Instant::now();
                    let _ = self.senders[worker].send(batch);
                    self.stats.waited_since(waiting);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    fn begin_file(&mut self, name: &Arc<str>) {
        for batch in self.batches.iter_mut() {
            batch.mark(Mark::BeginFile(Arc::clone(name)));
        }
    }

    /// Number the next frame, queue a tick before it if one is due, decode it, pick its
    /// worker by the connection's symmetric hash and pack it for that worker. Returns the
    /// worker, the frame (whose payload block and offset the caller sets, knowing where the
    /// bytes lie) and, for a TCP segment, the payload's address in `packet.data`.
    fn route(&mut self, packet: &Packet<'_>) -> (usize, FrameRef, Option<usize>) {
        let workers = self.batches.len() as u64;
        // Ticks get even indices, frames odd ones: a tick sorts before the frame it
        // precedes.
        self.index += 1;
        let frame_index = 2 * self.index + 1;
        if self.ticker.due(packet.ts_nanos) {
            for batch in self.batches.iter_mut() {
                batch.mark(Mark::Tick(2 * self.index, packet.ts_nanos));
            }
        }
        let decoded = decode::decode(packet.link_type, packet.data);
        let worker = worker_for(&decoded, self.index, workers);
        self.stats.frames += 1;
        self.stats.bytes += packet.data.len() as u64;
        let frame = FrameRef::pack(
            frame_index,
            packet.ts_nanos,
            packet.frame_number,
            &decoded,
            &mut self.batches[worker].wide,
        );
        let payload_at = decoded
            .ok()
            .map(|segment| segment.payload.as_ptr() as usize);
        (worker, frame, payload_at)
    }

    /// Queue a routed frame; flush every worker's batch when enough have gathered.
    /// Returns whether it flushed.
    fn push(&mut self, worker: usize, frame: FrameRef) -> bool {
        self.batches[worker].frames.push(frame);
        self.pending += 1;
        if self.pending >= FLUSH_EVERY {
            self.flush(frame.index);
            self.pending = 0;
            return true;
        }
        false
    }
}

/// The worker of the `n`-th frame of the input: by the symmetric hash of its connection, so
/// that both directions go to the same worker.
#[inline]
fn worker_for(decoded: &Result<Segment<'_>, Skip>, n: u64, workers: u64) -> usize {
    match decoded {
        _ if workers == 1 => 0,
        // Multiply-shift maps the hash onto the workers without a division.
        Ok(segment) => (((decode::shard_hash(segment) >> 32) * workers) >> 32) as usize,
        // Frames that are not TCP only count: spread them evenly.
        Err(_) => (n % workers) as usize,
    }
}

/// The reader thread: files → frames → per-worker batches.
fn read(
    files: &[PathBuf],
    progress: &Progress,
    mut b: Batcher,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let mut bytes_before = 0;
    for path in files {
        let mut reader = match CaptureReader::open(path) {
            Ok(reader) => reader,
            Err(err) => {
                let _ = to_agg.send(ToAggregator::SourceError(err));
                continue;
            }
        };
        let name: Arc<str> = Arc::from(path.display().to_string());
        b.begin_file(&name);
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(err) => {
                    let _ = to_agg.send(ToAggregator::SourceError(err));
                    break;
                }
            };
            let (worker, mut frame, payload_at) = b.route(&packet);
            // The packet's borrow of the reader ends here.
            if let Some(addr) = payload_at {
                let Some((block, start)) = reader.block_of(addr, frame.payload_len as usize) else {
                    // Every format hands out frames from its read buffer; this would be a
                    // bug.
                    debug_assert!(false, "frame outside the reader's buffer");
                    b.stats.unshareable += 1;
                    continue;
                };
                frame.block = b.batches[worker].block_index(block);
                frame.payload_start = start as u32;
            }
            b.push(worker, frame);
            if b.stats.frames % 4096 == 0 {
                let bytes = bytes_before + reader.bytes_consumed();
                progress.bytes.store(bytes, Ordering::Relaxed);
                progress.frames.store(b.stats.frames, Ordering::Relaxed);
            }
        }
        bytes_before += reader.bytes_consumed();
        progress.bytes.store(bytes_before, Ordering::Relaxed);
    }
    b.flush(u64::MAX - 1);
    b.stats.cpu = thread_cpu_time();
    b.stats
}

/// The block live frames are being copied into, and which workers' batches refer to it
/// (by the index it will take in their block list once sealed).
struct LiveBlock {
    pool: BlockPool,
    data: Vec<u8>,
    users: Vec<Option<u32>>,
}

impl LiveBlock {
    /// Freeze the block and hand it to every batch that refers to it.
    fn seal(&mut self, batches: &mut [Batch]) {
        if self.users.iter().all(Option::is_none) {
            return;
        }
        let block = self
            .pool
            .seal(std::mem::replace(&mut self.data, self.pool.take()));
        for (user, batch) in self.users.iter_mut().zip(batches) {
            if user.take().is_some() {
                batch.blocks.push(Arc::clone(&block));
            }
        }
    }
}

/// The reader thread for a live source: each frame the capture library lends is copied once
/// into a pooled block; batches leave when full and at least every [`LIVE_FLUSH`] (the
/// `LiveSource::poll` contract keeps the reader from sleeping past it).
fn read_live(
    source: &mut dyn LiveSource,
    mut b: Batcher,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let name: Arc<str> = Arc::from(source.name());
    b.begin_file(&name);
    let pool = BlockPool::new(LIVE_BLOCK);
    let mut current = LiveBlock {
        data: pool.take(),
        pool,
        users: vec![None; b.batches.len()],
    };
    let mut last_index = 0;
    let mut last_flush = Instant::now();
    loop {
        let more = source.poll(&mut |packet| {
            let (worker, mut frame, payload_at) = b.route(packet);
            if current.data.len() + packet.data.len() > LIVE_BLOCK {
                current.seal(&mut b.batches);
            }
            let start = current.data.len();
            current.data.extend_from_slice(packet.data);
            if let Some(addr) = payload_at {
                let next_slot = b.batches[worker].blocks.len() as u32;
                frame.block = *current.users[worker].get_or_insert(next_slot);
                // The payload's offset in the frame is its offset in the copy.
                let offset = addr.saturating_sub(packet.data.as_ptr() as usize);
                frame.payload_start = (start + offset) as u32;
            }
            last_index = frame.index;
            if b.pending + 1 >= FLUSH_EVERY {
                current.seal(&mut b.batches);
            }
            if b.push(worker, frame) {
                last_flush = Instant::now();
            }
        });
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                let _ = to_agg.send(ToAggregator::SourceError(err));
                break;
            }
        }
        if last_flush.elapsed() >= LIVE_FLUSH {
            current.seal(&mut b.batches);
            b.flush(last_index);
            b.pending = 0;
            last_flush = Instant::now();
        }
    }
    current.seal(&mut b.batches);
    b.flush(u64::MAX - 1);
    b.stats.cpu = thread_cpu_time();
    b.stats
}

/// A worker thread: batches in, records out.
fn work(
    worker: usize,
    config: Config,
    batches: Receiver<Batch>,
    to_agg: Sender<ToAggregator>,
    recycle: Sender<Batch>,
) {
    let mut lane = Lane::new(worker, config, to_agg);
    for mut batch in batches {
        let upto = lane.process(&batch);
        batch.clear();
        let _ = recycle.try_send(batch);
        if !lane.report_progress(upto) {
            return;
        }
    }
    lane.finish();
}

/// A worker's engine and what it owes the aggregator: the part of the pipeline every
/// worker runs the same way, whoever read its frames.
struct Lane {
    worker: usize,
    engine: Engine,
    latency: Histogram<u64>,
    collected: Collector,
    last_progress: Instant,
    to_agg: Sender<ToAggregator>,
}

impl Lane {
    fn new(worker: usize, config: Config, to_agg: Sender<ToAggregator>) -> Self {
        Lane {
            worker,
            engine: Engine::new(config),
            latency: new_histogram(),
            collected: Collector::default(),
            last_progress: Instant::now(),
            to_agg,
        }
    }

    /// Run a batch's frames and marks through the engine, in order. Returns the input
    /// position the batch covers.
    fn process(&mut self, batch: &Batch) -> u64 {
        let (engine, collected) = (&mut self.engine, &mut self.collected);
        let mut marks = batch.marks.iter().peekable();
        for (position, frame) in batch.frames.iter().enumerate() {
            while let Some((_, mark)) = marks.next_if(|(before, _)| *before <= position) {
                apply(engine, mark, collected);
            }
            let segment = frame.unpack(&batch.blocks, &batch.wide);
            engine.decoded(
                frame.index,
                segment.as_ref().map_err(|skip| *skip),
                frame.ts_nanos,
                frame.frame_number,
                &mut |e| collected.push(e),
            );
        }
        for (_, mark) in marks {
            apply(engine, mark, collected);
        }
        if let Some(sent) = batch.sent {
            let _ = self
                .latency
                .record(sent.elapsed().as_micros().max(1) as u64);
        }
        batch.upto
    }

    /// Tell the aggregator the records so far and that everything up to `upto` is done,
    /// if it is time to. Records and progress (which lets the aggregator release other
    /// workers' records) go out every PROGRESS_EVERY, or sooner when many records wait:
    /// waking the aggregator for every batch cost more CPU, in futex wake-ups and context
    /// switches on a small machine, than it does in work. `false` once the aggregator has
    /// gone (the run is over).
    fn report_progress(&mut self, upto: u64) -> bool {
        if self.collected.records.len() < RECORDS_PER_MESSAGE
            && self.last_progress.elapsed() < PROGRESS_EVERY
        {
            return true;
        }
        self.last_progress = Instant::now();
        let message = ToAggregator::Progress {
            worker: self.worker,
            upto,
            records: std::mem::take(&mut self.collected.records),
        };
        self.to_agg.send(message).is_ok()
    }

    /// The input is over: flush the connections still open and hand in the rest.
    fn finish(mut self) {
        let collected = &mut self.collected;
        self.engine.finish(&mut |e| collected.push(e));
        let _ = self.to_agg.send(ToAggregator::Finished {
            worker: self.worker,
            records: std::mem::take(&mut self.collected.records),
            stats: Box::new(self.engine.stats()),
            latency: Box::new(self.latency),
            cpu: thread_cpu_time(),
        });
    }
}

/// Carry out a batch's mark.
fn apply(engine: &mut Engine, mark: &Mark, collected: &mut Collector) {
    match mark {
        Mark::Tick(index, now) => engine.tick(*index, *now, &mut |e| collected.push(e)),
        Mark::BeginFile(name) => engine.begin_file(name.to_string()),
    }
}

/// A worker's records since its last report, numbered in emission order.
#[derive(Default)]
struct Collector {
    seq: u64,
    records: Vec<(OrderKey, u64, Record)>,
}

impl Collector {
    fn push(&mut self, emitted: Emitted) {
        self.seq += 1;
        self.records.push((emitted.order, self.seq, emitted.record));
    }
}

/// Entry of the reorder heap: smallest order first.
type Pending = Reverse<(OrderKey, u64, usize, RecordSlot)>;

/// Records ordered only by their key (the heap never compares two records).
struct RecordSlot(Record);

impl PartialEq for RecordSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for RecordSlot {}
impl PartialOrd for RecordSlot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for RecordSlot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// The aggregator (the caller's thread): puts records back in order and hands them out.
fn aggregate(
    threads: usize,
    messages: Receiver<ToAggregator>,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(),
    stats: &mut Stats,
    pipeline: &mut PipelineStats,
) {
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut upto = vec![0u64; threads];
    let mut release = |heap: &mut BinaryHeap<Pending>, upto: &[u64]| {
        let safe = upto.iter().copied().min().unwrap_or(0);
        while heap
            .peek()
            .is_some_and(|Reverse((order, ..))| order.index <= safe)
        {
            if let Some(Reverse((_, _, _, RecordSlot(record)))) = heap.pop() {
                sink(record);
            }
        }
    };
    loop {
        let message = match messages.recv_timeout(AGGREGATOR_TICK) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                on_tick();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match message {
            ToAggregator::Progress {
                worker,
                upto: reached,
                records,
            } => {
                for (order, seq, record) in records {
                    heap.push(Reverse((order, seq, worker, RecordSlot(record))));
                }
                pipeline.reorder_peak = pipeline.reorder_peak.max(heap.len());
                upto[worker] = reached;
                release(&mut heap, &upto);
            }
            ToAggregator::Finished {
                worker,
                records,
                stats: worker_stats,
                latency,
                cpu,
            } => {
                pipeline.worker_cpu[worker] = cpu;
                pipeline.worker_frames[worker] = worker_stats.frames;
                for (order, seq, record) in records {
                    heap.push(Reverse((order, seq, worker, RecordSlot(record))));
                }
                upto[worker] = u64::MAX;
                add_stats(stats, &worker_stats);
                let _ = pipeline.batch_latency_us.add(&*latency);
                release(&mut heap, &upto);
            }
            ToAggregator::SourceError(err) => on_error(err),
        }
        on_tick();
    }
    release(&mut heap, &vec![u64::MAX; threads]);
}

fn add_stats(total: &mut Stats, part: &Stats) {
    total.frames += part.frames;
    total.tcp_segments += part.tcp_segments;
    for (t, p) in total.skipped.iter_mut().zip(part.skipped) {
        *t += p;
    }
    total.connections_tracked += part.connections_tracked;
    total.records += part.records;
    total.retransmitted_segments += part.retransmitted_segments;
    total.out_of_order_segments += part.out_of_order_segments;
    total.dropped_segments += part.dropped_segments;
    total.truncated_frames += part.truncated_frames;
    total.inconsistent_retransmissions += part.inconsistent_retransmissions;
    total.flows_expired += part.flows_expired;
    total.flows_refused += part.flows_refused;
    total.flows_evicted += part.flows_evicted;
}

/// Order files by their first frame's time, so rotated captures given in any order (or as a
/// shell glob that sorts `file10` before `file2`) are read as one stream. A file whose first
/// record is unreadable goes last; reading it then reports the damage.
pub fn order_by_time(files: &[PathBuf]) -> Vec<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records (as JSON lines), errors (as shown) and frames counted by one run.
    fn outcome_of(
        files: &[PathBuf],
        reading: Reading,
        threads: usize,
        block_bytes: usize,
    ) -> (Vec<String>, Vec<String>, u64) {
        let options = Options {
            engine: Config::default(),
            threads,
            reading,
        };
        let (mut records, mut errors) = (Vec::new(), Vec::new());
        let outcome = run_in_blocks(
            files,
            &options,
            block_bytes,
            &mut |r| records.push(serde_json::to_string(&r).expect("record serialises")),
            &mut |e| errors.push(e.to_string()),
        );
        let p = &outcome.pipeline;
        assert_eq!(p.split_reading, reading != Reading::OneReader);
        assert_eq!(p.mapped_reading, reading == Reading::Map);
        if reading == Reading::Map && (100..=4096).contains(&block_bytes) {
            // The walk follows several chains, from guessed starts, and most guesses hold
            // (the sample captures are too small for larger blocks to be cut into chains).
            assert!(
                p.walk_guesses_kept > p.walk_guesses_rewalked,
                "{block_bytes}-byte blocks: guesses kept {}, walked again {}",
                p.walk_guesses_kept,
                p.walk_guesses_rewalked
            );
        }
        (records, errors, outcome.stats.frames)
    }

    /// `--stats` gives the lengths of the waits as percentiles: every wait counted is in the
    /// histogram, and the histogram adds up to the time waited.
    #[test]
    fn every_wait_is_in_the_wait_histogram() {
        // Small blocks and three workers on two cores or fewer: the workers wait for each
        // other's parts many times.
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/tls12.pcap");
        let options = Options {
            engine: Config::default(),
            threads: 3,
            reading: Reading::Split,
        };
        let outcome = run_in_blocks(&[file], &options, 64, &mut |_| {}, &mut |_| {});
        let p = &outcome.pipeline;
        assert!(p.queue_waits > 0, "no waits to count");
        assert_eq!(p.queue_wait_us.len(), p.queue_waits);
        // Each wait is at least 1 µs in the histogram, and their sum is the total waited
        // (to the histogram's two significant digits).
        let total_us = p.queue_wait_time.as_micros() as f64;
        let mean = p.queue_wait_us.mean() * p.queue_waits as f64;
        assert!(
            (mean - total_us).abs() <= total_us * 0.02 + p.queue_waits as f64,
            "histogram sums to {mean:.0} µs, waits to {total_us:.0} µs"
        );
    }

    /// Workers reading or mapping their share of each file give exactly what one reader
    /// thread gives (the records, their order, the errors of damaged files, the frames
    /// counted) however finely the files are cut — blocks far smaller than a frame, so that
    /// records straddle blocks and many blocks hold no record start, and mapped blocks
    /// walked as many short chains from guessed starts — and however many workers share
    /// them.
    /// The captures are the real ones of `pcaps/`, read as one stream (file boundaries
    /// inside it), with three damaged copies of one among them: cut inside a record header,
    /// cut inside a frame, and a record whose length field claims 4 GiB.
    #[test]
    fn split_reading_gives_what_one_reader_gives() {
        let pcaps = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&pcaps)
            .expect("pcaps/")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            .collect();
        files.sort();
        let dir = std::env::temp_dir().join(format!("tlscensus-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let whole = std::fs::read(pcaps.join("tls12.pcap")).expect("tls12.pcap");
        let caplen = |at: usize| u32::from_le_bytes(whole[at + 8..at + 12].try_into().unwrap());
        let second = 24 + 16 + caplen(24) as usize;
        let mut huge = whole.clone();
        huge[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let damaged = [
            ("cut_in_header.pcap", whole[..second + 5].to_vec()),
            ("cut_in_frame.pcap", whole[..second + 16 + 10].to_vec()),
            ("huge_length.pcap", huge),
        ];
        for (at, (name, bytes)) in damaged.into_iter().enumerate() {
            let path = dir.join(name);
            std::fs::write(&path, bytes).expect("write a damaged copy");
            files.insert(3 + 5 * at, path);
        }

        let reference = outcome_of(&files, Reading::OneReader, 1, split::BLOCK_BYTES);
        assert!(reference.0.len() > 20, "{} records", reference.0.len());
        assert_eq!(reference.1.len(), 3, "{:?}", reference.1);
        let sizes = [
            7,
            100,
            1500,
            4096,
            split::BLOCK_BYTES,
            split::MAPPED_BLOCK_BYTES,
        ];
        for (reading, block_bytes) in [Reading::Split, Reading::Map]
            .into_iter()
            .flat_map(|r| sizes.map(|b| (r, b)))
        {
            for threads in [1, 2, 3] {
                let split = outcome_of(&files, reading, threads, block_bytes);
                assert!(
                    split == reference,
                    "{reading:?}, {threads} workers, {block_bytes}-byte blocks: {} records, \
                     errors {:?}",
                    split.0.len(),
                    split.1
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Packing a decoded frame for its worker and unpacking it gives back exactly what the
    /// decoder produced (every header field, the payload bytes, the skip reason), for every
    /// frame of the sample captures and of the test corpus.
    #[test]
    fn frames_survive_packing() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<PathBuf> = Vec::new();
        let corpus = root.join("tests/corpus");
        assert!(
            corpus.join("MANIFEST.tsv").is_file(),
            "the test corpus is missing: expected {}/MANIFEST.tsv (run the tests from a clone)",
            corpus.display()
        );
        let mut walk = vec![root.join("pcaps"), corpus];
        while let Some(dir) = walk.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk.push(path);
                } else if path
                    .extension()
                    .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
                {
                    files.push(path);
                }
            }
        }
        let (mut segments, mut wide_seen, mut skipped) = (0, 0, 0);
        for path in &files {
            let Ok(mut reader) = CaptureReader::open(path) else {
                continue;
            };
            while let Ok(Some(packet)) = reader.next_packet() {
                let decoded = decode::decode(packet.link_type, packet.data);
                let mut wide = Vec::new();
                let mut frame = FrameRef::pack(7, packet.ts_nanos, 3, &decoded, &mut wide);
                // One block holding the frame: the payload's offset is its offset in it.
                let block = BlockPool::new(0).seal(packet.data.to_vec());
                if let Ok(segment) = &decoded {
                    frame.payload_start =
                        (segment.payload.as_ptr() as usize - packet.data.as_ptr() as usize) as u32;
                }
                let blocks = [block];
                let unpacked = frame.unpack(&blocks, &wide);
                assert_eq!(
                    unpacked,
                    decoded,
                    "{} frame {}",
                    path.display(),
                    packet.frame_number
                );
                assert_eq!(
                    (frame.index, frame.ts_nanos, frame.frame_number),
                    (7, packet.ts_nanos, 3)
                );
                match decoded {
                    Ok(_) => segments += 1,
                    Err(_) => skipped += 1,
                }
                wide_seen += wide.len();
            }
        }
        // The sample captures alone hold IPv4 and IPv6 segments and non-TCP frames.
        assert!(
            segments > 100 && wide_seen > 0 && skipped > 0,
            "{segments} {wide_seen} {skipped}"
        );
    }
}
