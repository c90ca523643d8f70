//! The parallel pipeline: one reader thread, N worker threads, and the caller's thread as
//! the aggregator.
//!
//! ```text
//!  reader ──batches──▶ worker 0 (own flow table) ──records──▶ aggregator (caller's thread)
//!         ──batches──▶ worker 1 (own flow table) ──records──▶   reorders, writes, counts
//! ```
//!
//! The reader reads each file into large buffers ([`Block`]s), slices frames out of them,
//! decodes just enough to hash the connection's addresses and ports (symmetric, so both
//! directions go to the same worker), and appends a small reference — block, offset, length —
//! to that worker's batch. Frame bytes are never copied: workers parse them in the reader's
//! buffers, which return to the reader's pool when the last batch using them is done.
//!
//! Each worker owns its flows, so no lock is taken per packet. Records carry an
//! [`OrderKey`]; the aggregator releases them in that order once every worker has passed
//! the position, so the output is byte-identical whatever the number of threads.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;

use crate::decode;
use crate::engine::{Config, Emitted, Engine, OrderKey, Stats, Ticker};
use crate::flow::{FlowKey, Limits};
use crate::record::Record;
use crate::source::{self, Block, CaptureReader, Packet, SourceError};

/// Frames read between two batch flushes (all workers' batches are sent together, so every
/// worker's progress advances in step).
const FLUSH_EVERY: u64 = 4096;
/// Batches in flight per worker; the reader blocks (and counts a queue wait) beyond it.
const QUEUE_DEPTH: usize = 8;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub engine: Config,
    /// Worker threads (at least 1).
    pub threads: usize,
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
    /// Frames that were not in the reader's buffer (an internal error; always 0).
    pub frames_unshareable: u64,
    /// Microseconds from a batch leaving the reader to its worker finishing it.
    pub batch_latency_us: Histogram<u64>,
    /// Most records the aggregator held back waiting for slower workers.
    pub reorder_peak: usize,
    pub elapsed: Duration,
}

/// What a run produced besides its records.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub pipeline: PipelineStats,
}

/// A frame of a batch, by reference into one of the batch's blocks.
#[derive(Debug, Clone, Copy)]
struct FrameRef {
    block: u32,
    start: u32,
    len: u32,
    orig_len: u32,
    link_type: u32,
    ts_nanos: i64,
    frame_number: u64,
}

#[derive(Debug)]
enum Item {
    /// Frame at this input index.
    Frame(u64, FrameRef),
    /// Expire idle connections (input index, capture time).
    Tick(u64, i64),
    /// Frames that follow come from this file.
    BeginFile(Arc<str>),
}

/// A worker's share of the frames read since the last flush.
#[derive(Debug, Default)]
struct Batch {
    blocks: Vec<Arc<Block>>,
    items: Vec<Item>,
    /// Last input index this batch covers: the worker has seen everything up to here.
    upto: u64,
    sent: Option<Instant>,
}

impl Batch {
    fn clear(&mut self) {
        self.blocks.clear();
        self.items.clear();
        self.sent = None;
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
        frames_unshareable: 0,
        batch_latency_us: new_histogram(),
        reorder_peak: 0,
        elapsed: Duration::ZERO,
    };
    let mut stats = Stats::default();

    std::thread::scope(|scope| {
        let mut batch_senders = Vec::new();
        let (recycle_tx, recycle_rx) = bounded::<Batch>(threads * (QUEUE_DEPTH + 2));
        for worker in 0..threads {
            let (tx, rx) = bounded::<Batch>(QUEUE_DEPTH);
            batch_senders.push(tx);
            let to_agg = to_agg.clone();
            let recycle = recycle_tx.clone();
            let config = worker_config.clone();
            std::thread::Builder::new()
                .name(format!("tlscensus-w{worker}"))
                .spawn_scoped(scope, move || work(worker, config, rx, to_agg, recycle))
                .expect("spawn worker thread");
        }
        let reader_to_agg = to_agg.clone();
        drop(to_agg);
        drop(recycle_tx);
        let engine_limits = options.engine.limits;
        let reader = scope.spawn(move || {
            read(
                files,
                engine_limits,
                batch_senders,
                recycle_rx,
                reader_to_agg,
            )
        });

        aggregate(
            threads,
            from_workers,
            sink,
            on_error,
            &mut stats,
            &mut pipeline,
        );
        let read_stats = reader.join().expect("reader thread panicked");
        pipeline.frames_read = read_stats.frames;
        pipeline.bytes_read = read_stats.bytes;
        pipeline.batches = read_stats.batches;
        pipeline.queue_waits = read_stats.queue_waits;
        pipeline.frames_unshareable = read_stats.unshareable;
    });
    pipeline.elapsed = started.elapsed();
    Outcome { stats, pipeline }
}

/// The reader thread's own counters.
#[derive(Debug, Default)]
struct ReadStats {
    frames: u64,
    bytes: u64,
    batches: u64,
    queue_waits: u64,
    unshareable: u64,
}

/// The reader thread: files → frames → per-worker batches.
fn read(
    files: &[PathBuf],
    limits: Limits,
    senders: Vec<Sender<Batch>>,
    recycled: Receiver<Batch>,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let workers = senders.len();
    let mut batches: Vec<Batch> = (0..workers).map(|_| Batch::default()).collect();
    let mut stats = ReadStats::default();
    let mut ticker = Ticker::new(&limits);
    let mut index: u64 = 0;
    let mut pending: u64 = 0;

    let flush = |batches: &mut Vec<Batch>, upto: u64, stats: &mut ReadStats| {
        for (worker, slot) in batches.iter_mut().enumerate() {
            let mut batch = std::mem::replace(slot, recycled.try_recv().unwrap_or_default());
            batch.upto = upto;
            batch.sent = Some(Instant::now());
            stats.batches += 1;
            match senders[worker].try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(batch)) => {
                    stats.queue_waits += 1;
                    let _ = senders[worker].send(batch);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    };

    for path in files {
        let mut reader = match CaptureReader::open(path) {
            Ok(reader) => reader,
            Err(err) => {
                let _ = to_agg.send(ToAggregator::SourceError(err));
                continue;
            }
        };
        let name: Arc<str> = Arc::from(path.display().to_string());
        for batch in batches.iter_mut() {
            batch.items.push(Item::BeginFile(Arc::clone(&name)));
        }
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(err) => {
                    let _ = to_agg.send(ToAggregator::SourceError(err));
                    break;
                }
            };
            // Ticks get even indices, frames odd ones: a tick sorts before the frame it
            // precedes.
            index += 1;
            let frame_index = 2 * index + 1;
            if ticker.due(packet.ts_nanos) {
                for batch in batches.iter_mut() {
                    batch.items.push(Item::Tick(2 * index, packet.ts_nanos));
                }
            }
            let worker = match decode::decode(packet.link_type, packet.data) {
                Ok(seg) => {
                    let (key, _) = FlowKey::new((seg.src, seg.sport), (seg.dst, seg.dport));
                    (key.symmetric_hash() % workers as u64) as usize
                }
                // Frames that are not TCP only count: spread them evenly.
                Err(_) => (index % workers as u64) as usize,
            };
            stats.frames += 1;
            stats.bytes += packet.data.len() as u64;
            let meta = FrameRef {
                block: 0,
                start: 0,
                len: packet.data.len() as u32,
                orig_len: packet.orig_len,
                link_type: packet.link_type,
                ts_nanos: packet.ts_nanos,
                frame_number: packet.frame_number,
            };
            let addr = packet.data.as_ptr() as usize;
            let batch = &mut batches[worker];
            let Some((block, start)) = reader.block_of(addr, meta.len as usize) else {
                // Every format hands out frames from its read buffer; this would be a bug.
                debug_assert!(false, "frame outside the reader's buffer");
                stats.unshareable += 1;
                continue;
            };
            let frame = FrameRef {
                block: batch.block_index(block),
                start: start as u32,
                ..meta
            };
            batch.items.push(Item::Frame(frame_index, frame));
            pending += 1;
            if pending >= FLUSH_EVERY {
                flush(&mut batches, frame_index, &mut stats);
                pending = 0;
            }
        }
    }
    flush(&mut batches, u64::MAX - 1, &mut stats);
    stats
}

/// A worker thread: batches in, records out.
fn work(
    worker: usize,
    config: Config,
    batches: Receiver<Batch>,
    to_agg: Sender<ToAggregator>,
    recycle: Sender<Batch>,
) {
    let mut engine = Engine::new(config);
    let mut latency = new_histogram();
    let mut collected = Collector::default();
    for mut batch in batches {
        for item in &batch.items {
            match item {
                Item::Frame(index, frame) => {
                    let start = frame.start as usize;
                    let data = batch
                        .blocks
                        .get(frame.block as usize)
                        .and_then(|block| block.get(start..start + frame.len as usize))
                        .unwrap_or_default();
                    let packet = Packet {
                        ts_nanos: frame.ts_nanos,
                        link_type: frame.link_type,
                        data,
                        orig_len: frame.orig_len,
                        frame_number: frame.frame_number,
                    };
                    engine.packet(*index, &packet, &mut |e| collected.push(e));
                }
                Item::Tick(index, now) => engine.tick(*index, *now, &mut |e| collected.push(e)),
                Item::BeginFile(name) => engine.begin_file(name.to_string()),
            }
        }
        if let Some(sent) = batch.sent {
            let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
        }
        let upto = batch.upto;
        batch.clear();
        let _ = recycle.try_send(batch);
        let message = ToAggregator::Progress {
            worker,
            upto,
            records: std::mem::take(&mut collected.records),
        };
        if to_agg.send(message).is_err() {
            return;
        }
    }
    engine.finish(&mut |e| collected.push(e));
    let _ = to_agg.send(ToAggregator::Finished {
        worker,
        records: collected.records,
        stats: Box::new(engine.stats()),
        latency: Box::new(latency),
    });
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
    for message in messages {
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
            } => {
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
    total.flows_expired += part.flows_expired;
    total.flows_refused += part.flows_refused;
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
