//! Split reading: when every input is a classic pcap file on disk, the workers read the
//! files themselves, each its share, instead of one reader thread reading for all.
//!
//! Why: with one reader thread, that thread sets the pace of the whole run. It reads, walks,
//! decodes, shards and hands off every frame on one core while the workers wait for it
//! (figures in `benches/NOTES.md`, "Constants and the runs behind them"). A pcap file can
//! be read from anywhere once a record boundary is known, so the files are cut into
//! fixed-size blocks, split in file order by whichever worker is free to. A worker
//!
//! ```text
//!  1. takes the walk (a lock held by one worker at a time): the next block's number, where
//!     its first record starts, how many frames came before it and the idle ticker's state;
//!  2. reads (or maps) that block, walks its record headers to its end and moves the walk on
//!     to the next block (cheap, and the only serial step), then lets the walk go;
//!  3. decodes every frame of the block, picks its worker by the connection's symmetric
//!     hash and packs it into that worker's part of the block (the same 64-byte frame
//!     records the reader thread makes), keeping its own part and sending the others theirs;
//! ```
//!
//! and every worker processes its part of every block in block order, so each connection's
//! frames, and the idle ticks, reach its engine in input order with the same input
//! positions as from the reader thread: the records, their order and every report are
//! byte-identical whichever way the files were read, whoever split which block, and
//! whatever the number of threads.
//!
//! Who splits a block is not fixed: a worker that is ahead of the others splits more, one
//! that fell behind (it had more of the connections' work, or lost its core for a while)
//! splits less, so the faster one does not wait for the slower one's blocks
//! (`benches/NOTES.md`, "Issue 27: split reading's waits"). No block is split [`AHEAD`]
//! per worker or more past the slowest worker's part; so parts and read buffers in flight
//! stay bounded (a few MiB), and no channel fills.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::aggregator::ToAggregator;
use super::batch::{fragment_payload, worker_for, Batch, FrameRef, Mark};
use super::reader::ReadStats;
use super::worker::{Lane, LaneOutputs};
use super::Progress;
use crate::decode;
use crate::engine::{Config, Ticker};
use crate::flow::Limits;
use crate::source::mapped::Mapping;
use crate::source::pcap::{RecordLayout, FILE_HEADER_LEN};
use crate::source::walk::{walk_serial, Spot, WalkEnd, Walker, CHAINS};
use crate::source::{Block, BlockPool, CaptureReader, SourceError, SourceErrorKind};

/// File bytes per block. Large enough that the per-block hand-offs are few (some 8,000 for
/// 2 GB), small enough that a block is still in the CPU's cache when it is walked and
/// decoded right after its read.
pub(super) const BLOCK_BYTES: usize = 256 << 10;
/// File bytes per block when the files are mapped: nothing is copied, so the cache does not
/// bound the block, and a larger one gives the walk more chains to follow at once (see
/// `source::walk`); 1 MiB was the fastest size measured (`benches/NOTES.md`).
pub(super) const MAPPED_BLOCK_BYTES: usize = 1 << 20;
/// Consecutive blocks mapped together (see `BlockReader::window`). Mapped pages count in
/// the resident size until unmapped, so windows and read-ahead are kept small (with
/// [`MAPPED_AHEAD`] 2, some 6 MiB of the file at a time); one block per window is slower,
/// because each unmapping interrupts every core of the process (`benches/NOTES.md`).
const BLOCKS_PER_WINDOW: u64 = 2;
/// Bytes per page, at most: [`BlockReader::fault_in_next`] touches one byte in each.
const PAGE_BYTES: usize = 4 << 10;
/// Room past a block's end in each read buffer, for the record that straddles it.
const BLOCK_SLACK: usize = 64 << 10;
/// Blocks split per worker beyond the slowest worker's part: no block is split
/// `AHEAD × workers` or more past the block the slowest worker is processing.
const AHEAD: u64 = 4;
/// The same for mapped blocks (four times as large).
const MAPPED_AHEAD: u64 = 2;
/// How long a worker watches for a part (or for room to split) before it sleeps: long
/// enough to catch most hand-offs without a context switch, short enough not to burn the
/// core the other worker needs (`benches/NOTES.md`).
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);
/// How long a sleeping worker sleeps before it looks again whether the slowest worker has
/// moved on (which sends no message): it sleeps only when it is the full window ahead.
const SLEEP_AT_MOST: Duration = Duration::from_micros(200);

/// One input file as the workers share it.
struct PlannedFile {
    path: PathBuf,
    name: Arc<str>,
    layout: RecordLayout,
    len: u64,
    /// Number of the file's first block in the whole input.
    first_block: u64,
    /// File bytes of the inputs before this one (for progress).
    bytes_before: u64,
}

/// File bytes per block, for mapped or read files.
pub(super) fn block_bytes(map: bool) -> usize {
    if map {
        MAPPED_BLOCK_BYTES
    } else {
        BLOCK_BYTES
    }
}

/// The inputs cut into blocks.
pub(super) struct Plan {
    files: Vec<PlannedFile>,
    blocks: u64,
    /// File bytes per block: [`BLOCK_BYTES`] or [`MAPPED_BLOCK_BYTES`] (tests cut files
    /// finer).
    block_bytes: usize,
    /// Whether the workers map the files rather than read them.
    map: bool,
}

/// Where a block lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockSpan {
    file: usize,
    /// File offsets of the block: records starting in `start..end` are the block's.
    start: u64,
    end: u64,
    first_of_file: bool,
}

impl Plan {
    /// Plan split reading of `files`, with the errors of those that cannot be opened (left
    /// out, as the reader thread would leave them). `None` when a file that opens is not a
    /// classic pcap file on disk: the reader thread then reads them all.
    pub(super) fn new(
        files: &[PathBuf],
        block_bytes: usize,
        map: bool,
    ) -> Option<(Plan, Vec<SourceError>)> {
        let block_bytes = block_bytes.max(1);
        let mut planned = Vec::new();
        let mut errors = Vec::new();
        let (mut blocks, mut bytes) = (0u64, 0u64);
        // A pipe or standard input can be read only once: opening it here would lose its
        // first bytes to the reader thread.
        if files.iter().any(|path| crate::source::is_stream(path)) {
            return None;
        }
        for path in files {
            let reader = match CaptureReader::open(path) {
                Ok(reader) => reader,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let (layout, len) = reader.pcap_layout()?;
            let data = len.saturating_sub(FILE_HEADER_LEN as u64);
            // At least one block per file, so that an empty file is still announced.
            let file_blocks = data.div_ceil(block_bytes as u64).max(1);
            planned.push(PlannedFile {
                path: path.clone(),
                name: Arc::from(path.display().to_string()),
                layout,
                len,
                first_block: blocks,
                bytes_before: bytes,
            });
            blocks += file_blocks;
            bytes += len;
        }
        Some((
            Plan {
                files: planned,
                blocks,
                block_bytes,
                map,
            },
            errors,
        ))
    }

    fn span(&self, block: u64) -> BlockSpan {
        let file = self.files.partition_point(|f| f.first_block <= block) - 1;
        let f = &self.files[file];
        let size = self.block_bytes as u64;
        let start = FILE_HEADER_LEN as u64 + (block - f.first_block) * size;
        BlockSpan {
            file,
            start,
            end: (start + size).min(f.len).max(start),
            first_of_file: block == f.first_block,
        }
    }
}

/// The state of the serial walk through the input, as it stands at a block's start: what
/// the worker that walked one block leaves for the worker that walks the next.
#[derive(Debug, Clone)]
struct Relay {
    /// File offset of the next record (at or past the next block's start).
    next_record: u64,
    /// Frames before it in the whole input (frame `n` takes input position `2n + 1`).
    frames: u64,
    /// Frames before it in its file (for frame numbers).
    file_frames: u64,
    ticker: Ticker,
    /// Its file could not be read further (the error has been reported).
    stopped: bool,
}

/// The serial walk through the input: the next block to walk and the state at its start.
/// Whoever holds it walks that block and moves it on.
struct Walk {
    next: u64,
    relay: Relay,
}

/// A part of block `.0` for the receiving worker.
type Part = (u64, Batch);

/// What one worker needs to reach the others.
pub(super) struct Links {
    /// Parts for this worker, from whichever workers split their blocks.
    parts_in: Receiver<Part>,
    /// Parts for each other worker (none for itself: its own parts never cross threads).
    parts_out: Vec<Option<Sender<Part>>>,
}

/// The part channels of `workers` workers: one into each, which every other worker sends
/// to. Capacities are above the most that [`AHEAD`] lets be in flight, so sends never
/// block.
pub(super) fn links(workers: usize) -> Vec<Links> {
    let depth = 2 * AHEAD as usize * workers + 4;
    let channels: Vec<(Sender<Part>, Receiver<Part>)> =
        (0..workers).map(|_| bounded(depth)).collect();
    (0..workers)
        .map(|w| Links {
            parts_in: channels[w].1.clone(),
            parts_out: (0..workers)
                .map(|to| (to != w).then(|| channels[to].0.clone()))
                .collect(),
        })
        .collect()
}

/// Shared by the workers of one run.
pub(super) struct Shared<'a> {
    pub(super) plan: &'a Plan,
    pub(super) progress: &'a Progress,
    pub(super) pool: BlockPool,
    /// Emptied parts, for any worker to fill again.
    pub(super) recycle: (Sender<Batch>, Receiver<Batch>),
    /// Whether a worker may spin before it sleeps: only when each has a core of its own
    /// (otherwise the spinning one would hold up the worker it waits for).
    spin: bool,
    /// The mapped windows the blocks in flight lie in. Every block of a window holds its
    /// mapping, and so does this list, until a worker that splits blocks finds the window
    /// done with (see [`BlockReader::unmap_done`]).
    windows: Mutex<Vec<MappedWindow>>,
    /// Blocks below this one have had their pages faulted in ahead of their walk.
    faulted: AtomicU64,
    /// The serial walk, taken by one worker at a time.
    walk: Mutex<Walk>,
    /// `walk.next`, for looking without taking the lock.
    walked: AtomicU64,
    /// Each worker's next block to process.
    positions: Vec<AtomicU64>,
    /// A worker has panicked (maybe holding the walk, or with a block it took unsplit):
    /// the others stop instead of waiting for it.
    failed: AtomicBool,
}

impl Shared<'_> {
    /// `limits` are the workers' (for the idle ticker's state, which the walk carries).
    pub(super) fn new<'a>(
        plan: &'a Plan,
        progress: &'a Progress,
        workers: usize,
        limits: &Limits,
    ) -> Shared<'a> {
        let start = Relay {
            next_record: FILE_HEADER_LEN as u64,
            frames: 0,
            file_frames: 0,
            ticker: Ticker::new(limits),
            stopped: false,
        };
        Shared {
            plan,
            progress,
            pool: BlockPool::new(plan.block_bytes + BLOCK_SLACK),
            recycle: bounded(workers * workers * (2 * AHEAD as usize + 4)),
            spin: std::thread::available_parallelism().is_ok_and(|cores| workers <= cores.get()),
            windows: Mutex::new(Vec::new()),
            faulted: AtomicU64::new(0),
            walk: Mutex::new(Walk {
                next: 0,
                relay: start,
            }),
            walked: AtomicU64::new(0),
            positions: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            failed: AtomicBool::new(false),
        }
    }

    /// The first block the worker processing `block` may not split yet: one [`AHEAD`] (or
    /// [`MAPPED_AHEAD`]) past its own position, and one per worker past the slowest
    /// worker's. So a worker behind the others leaves the blocks further on to them, and
    /// one ahead splits them, up to the whole window (which bounds the memory in flight).
    fn room(&self, block: u64) -> u64 {
        let ahead = if self.plan.map { MAPPED_AHEAD } else { AHEAD };
        let slowest = self
            .positions
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let window = slowest.saturating_add(ahead * self.positions.len() as u64);
        window.min(block + ahead).min(self.plan.blocks)
    }
}

/// A window of a file mapped for the blocks in it.
struct MappedWindow {
    file: usize,
    window: u64,
    /// The window's last block: once it has been walked, no block will take the mapping
    /// again.
    last_block: u64,
    mapping: Arc<Mapping>,
}

/// Marks the run failed if its worker panics, so that the others stop waiting for it.
struct PanicFlag<'a>(&'a AtomicBool);

impl Drop for PanicFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// What came of trying to split the next block.
enum Claim {
    /// Split: its parts are in this worker's `pending` or on their way.
    Split,
    /// Another worker holds the walk (it will have split the block in a moment).
    Busy,
    /// No block may be split now: all are, or the next is too far ahead of the slowest
    /// worker.
    Nothing,
    /// The walk was left half done by a worker that panicked.
    Failed,
}

/// One worker of a split-reading run: processes its part of every block in order, and
/// splits blocks whenever it may (see the module's documentation). It splits before it
/// processes, so that the others have their parts early, and sleeps only when it has
/// neither its next part nor a block it may split.
pub(super) fn work(
    worker: usize,
    workers: usize,
    config: Config,
    outputs: LaneOutputs,
    links: Links,
    shared: &Shared<'_>,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let _flag = PanicFlag(&shared.failed);
    let mut reader = BlockReader {
        workers,
        shared,
        links: &links,
        ahead: None,
        handles: Vec::new(),
        found: Vec::new(),
        ticks: Vec::new(),
        // Each block walked as up to CHAINS chains (tests' tiny blocks as many tiny ones).
        walker: Walker::new(shared.plan.block_bytes / CHAINS),
        parts: Vec::new(),
        to_agg: to_agg.clone(),
        stats: ReadStats::default(),
    };
    let mut lane = Lane::new(worker, workers, config, outputs, to_agg);
    // Parts that have arrived (or were kept) before their turn, by block.
    let mut pending: BTreeMap<u64, Batch> = BTreeMap::new();
    let total = shared.plan.blocks;
    let mut block = 0;
    while block < total {
        if shared.failed.load(Ordering::Acquire) {
            break;
        }
        while let Ok((number, part)) = links.parts_in.try_recv() {
            pending.insert(number, part);
        }
        let room = shared.room(block);
        let claim = if shared.walked.load(Ordering::Acquire) < room {
            reader.split_next(&mut pending, room, false)
        } else {
            Claim::Nothing
        };
        let Some(mut part) = pending.remove(&block) else {
            let claim = match claim {
                // Nothing else to do: wait for the walk, and split the block after.
                Claim::Busy => reader.split_next(&mut pending, room, true),
                Claim::Nothing => {
                    if let Some((number, part)) = reader.wait(block) {
                        pending.insert(number, part);
                    }
                    Claim::Nothing
                }
                claim => claim,
            };
            if matches!(claim, Claim::Failed) {
                break;
            }
            continue;
        };
        if matches!(claim, Claim::Failed) {
            break;
        }
        let upto = lane.process(&part);
        part.clear();
        let _ = shared.recycle.0.try_send(part);
        block += 1;
        shared.positions[worker].store(block, Ordering::Release);
        if !lane.report_progress(upto) {
            break;
        }
    }
    // Those waiting for this worker to move on must not wait for it any longer.
    shared.positions[worker].store(u64::MAX, Ordering::Release);
    reader.ahead = None;
    reader.unmap_done();
    lane.finish();
    reader.stats.guesses_kept = reader.walker.guesses_kept;
    reader.stats.guesses_rewalked = reader.walker.guesses_rewalked;
    reader.stats
}

/// A block read or mapped.
struct Prepared {
    number: u64,
    span: BlockSpan,
    bytes: io::Result<BlockBytes>,
}

/// A block's bytes: read into a pooled buffer, or mapped.
enum BlockBytes {
    /// `data[..filled]` holds the file's bytes from the block's start.
    Read { data: Vec<u8>, filled: usize },
    /// `mapping.bytes()[from..]` holds them.
    Mapped { mapping: Arc<Mapping>, from: usize },
}

impl BlockBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            BlockBytes::Read { data, filled } => &data[..*filled],
            BlockBytes::Mapped { mapping, from } => &mapping.bytes()[*from..],
        }
    }
}

/// The reading half of a split-reading worker.
struct BlockReader<'a> {
    workers: usize,
    shared: &'a Shared<'a>,
    links: &'a Links,
    /// A block read before taking the walk (see [`BlockReader::split_next`]).
    ahead: Option<Prepared>,
    /// This worker's own handle of each file, opened on first use.
    handles: Vec<Option<File>>,
    /// The records of the block being read (reused).
    found: Vec<Spot>,
    /// Which of them an idle tick comes before (indices into `found`; reused).
    ticks: Vec<u32>,
    /// Walks mapped blocks several records at a time.
    walker: Walker,
    /// The parts of the block being split, one per worker (reused).
    parts: Vec<Batch>,
    to_agg: Sender<ToAggregator>,
    stats: ReadStats,
}

impl BlockReader<'_> {
    /// Take the walk (waiting for it if `wait`, else only if no other worker holds it), and
    /// split the next block if it is below `upto` (see [`Shared::room`]). Its parts go to
    /// `pending` (this worker's) or to their workers.
    fn split_next(&mut self, pending: &mut BTreeMap<u64, Batch>, upto: u64, wait: bool) -> Claim {
        let shared = self.shared;
        // Read (or map) the block this worker expects to walk before taking the walk, so
        // that the workers' reads overlap: the next one, or the one after when another
        // worker holds the walk (it is walking the next).
        let expected = shared.walked.load(Ordering::Acquire) + u64::from(wait);
        let stale = self.ahead.as_ref().is_none_or(|p| p.number < expected);
        if stale && expected < upto {
            self.ahead = Some(self.read_block(expected));
        }
        // `None`: another worker holds it; `Some(Err(..))`: one panicked while holding it.
        let taken = if wait {
            let waiting = Instant::now();
            let taken = shared.walk.lock().map_err(|_| ());
            self.stats.waited_since(waiting);
            Some(taken)
        } else {
            match shared.walk.try_lock() {
                Ok(walk) => Some(Ok(walk)),
                Err(TryLockError::WouldBlock) => None,
                Err(TryLockError::Poisoned(_)) => Some(Err(())),
            }
        };
        let mut walk = match taken {
            Some(Ok(walk)) => walk,
            None => return Claim::Busy,
            Some(Err(())) => return Claim::Failed,
        };
        let number = walk.next;
        // Looked at again now that the walk is held: another worker may have moved it on.
        // (`upto` only grows, as the workers move on.)
        if number >= upto {
            return Claim::Nothing;
        }
        let mut prepared = match self.ahead.take() {
            Some(ahead) if ahead.number == number => ahead,
            // Another worker walked the one this worker read; one further on is kept.
            ahead => {
                self.ahead = ahead.filter(|p| p.number > number);
                self.read_block(number)
            }
        };
        let relay = walk.relay.clone();
        let next = self.walk_block(&mut prepared, &relay);
        walk.relay = next.clone();
        walk.next = number + 1;
        shared.walked.store(number + 1, Ordering::Release);
        drop(walk);
        self.split_block(prepared, &relay, &next, pending);
        self.unmap_done();
        self.fault_in_next(upto);
        Claim::Split
    }

    /// Unmap the windows whose blocks have all been walked and processed by every worker.
    /// Done by a worker that splits blocks (mostly the one ahead, which has time to spare)
    /// rather than by whichever worker processes a window's last part (mostly the one
    /// behind), and never under the walk's lock.
    fn unmap_done(&mut self) {
        let walked = self.shared.walked.load(Ordering::Acquire);
        let mut done = Vec::new();
        {
            let mut windows = self
                .shared
                .windows
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Only this list clones the mappings (under its lock), so a count of one stays
            // one.
            windows.retain(|w| {
                let unused = w.last_block < walked && Arc::strong_count(&w.mapping) == 1;
                if unused {
                    done.push(Arc::clone(&w.mapping));
                }
                !unused
            });
        }
        // Unmapped here, outside the list's lock.
        drop(done);
    }

    /// Fault in the pages of the next block to walk, if it may be split and no worker has
    /// yet: so that its walk, which holds the walk's lock, does not take the page faults.
    fn fault_in_next(&mut self, upto: u64) {
        let shared = self.shared;
        let plan = shared.plan;
        let next = shared.walked.load(Ordering::Acquire);
        if !plan.map || next >= upto {
            return;
        }
        if shared.faulted.fetch_max(next + 1, Ordering::AcqRel) > next {
            return;
        }
        let span = plan.span(next);
        let Some((mapping, from)) = self.window(next, span) else {
            return;
        };
        let bytes = &mapping.bytes()[from..];
        let len = ((span.end - span.start) as usize).min(bytes.len());
        let mut sum = 0u8;
        for at in (0..len).step_by(PAGE_BYTES) {
            sum ^= bytes[at];
        }
        std::hint::black_box(sum);
    }

    /// No block may be split: wait for a part (that of `block`, if another worker is
    /// splitting it) or for room to split, whichever comes first. A part that came is
    /// returned.
    fn wait(&mut self, block: u64) -> Option<Part> {
        let shared = self.shared;
        let ready = || {
            !self.links.parts_in.is_empty()
                || shared.failed.load(Ordering::Acquire)
                || shared.walked.load(Ordering::Acquire) < shared.room(block)
        };
        if ready() {
            // Room to split opened since the last look: try again at once.
            return None;
        }
        let waiting = Instant::now();
        if !(shared.spin && spin_until(ready)) {
            // The part of `block` comes as a message; room to split comes when the slowest
            // worker moves on, which sends none, so the sleep is short. A worker sleeps
            // for that only when it is the whole window ahead.
            let taken = shared.walked.load(Ordering::Acquire) > block;
            let sleep = if taken {
                SPIN_BEFORE_SLEEP * 1000
            } else {
                SLEEP_AT_MOST
            };
            let came = self.links.parts_in.recv_timeout(sleep);
            self.stats.waited_since(waiting);
            // A timeout, or every other worker gone: the caller looks again.
            return came.ok();
        }
        self.stats.waited_since(waiting);
        None
    }

    fn report(&self, error: SourceError) {
        let _ = self.to_agg.send(ToAggregator::SourceError(error));
    }

    /// Map or read block `number`.
    fn read_block(&mut self, number: u64) -> Prepared {
        let plan = self.shared.plan;
        let span = plan.span(number);
        // A failed mapping (a file system that cannot map, say) falls back to reading,
        // which reports a real error if there is one.
        let mapped = plan.map.then(|| self.window(number, span)).flatten();
        let bytes = match mapped {
            Some((mapping, from)) => Ok(BlockBytes::Mapped { mapping, from }),
            None => {
                let mut data = self.shared.pool.take_filled(plan.block_bytes + BLOCK_SLACK);
                self.read_at(span.file, &mut data, span.start, span.end)
                    .map(|filled| BlockBytes::Read { data, filled })
            }
        };
        Prepared {
            number,
            span,
            bytes,
        }
    }

    /// Walk block `prepared` from where `relay` (the walk's state at its start) says, into
    /// `found` and `ticks`; the walk's state at the next block's start. Errors are reported
    /// here, in input order (the walk is serial).
    fn walk_block(&mut self, prepared: &mut Prepared, relay: &Relay) -> Relay {
        let plan = self.shared.plan;
        let span = prepared.span;
        let file = &plan.files[span.file];
        let mut next = relay.clone();
        self.found.clear();
        self.ticks.clear();
        let walked = match (relay.stopped, &mut prepared.bytes) {
            (true, _) => Ok(()),
            (false, Ok(bytes)) => self.walk(span, bytes, &mut next.next_record),
            (false, Err(err)) => Err(SourceError {
                path: file.path.clone(),
                offset: span.start,
                // Taken: the block has no bytes to split either way.
                kind: SourceErrorKind::Io(std::mem::replace(err, io::ErrorKind::Other.into())),
            }),
        };
        if let Err(error) = walked {
            self.report(error);
            next.stopped = true;
        }
        // The frames found (those before an error too) move the serial state on: their
        // count, and the idle ticker over their times.
        next.frames += self.found.len() as u64;
        next.file_frames += self.found.len() as u64;
        for (i, spot) in self.found.iter().enumerate() {
            if next.ticker.due(spot.ts_nanos) {
                self.ticks.push(i as u32);
            }
        }
        let progress = self.shared.progress;
        let walked_to = file.bytes_before + next.next_record.min(file.len);
        progress.bytes.fetch_max(walked_to, Ordering::Relaxed);
        progress.frames.fetch_max(next.frames, Ordering::Relaxed);
        if prepared.number + 1 < plan.blocks && plan.span(prepared.number + 1).file != span.file {
            next.next_record = FILE_HEADER_LEN as u64;
            next.file_frames = 0;
            next.stopped = false;
        }
        next
    }

    /// Split the frames of block `prepared` (walked from `relay` into `found`; `next` is
    /// the walk's state after it) into one part per worker: this worker's goes to
    /// `pending`, the others are sent.
    fn split_block(
        &mut self,
        prepared: Prepared,
        relay: &Relay,
        next: &Relay,
        pending: &mut BTreeMap<u64, Batch>,
    ) {
        let Prepared {
            number,
            span,
            bytes,
        } = prepared;
        let file = &self.shared.plan.files[span.file];
        let block = match bytes {
            Ok(BlockBytes::Mapped { mapping, from }) => Block::mapped(mapping, from),
            Ok(BlockBytes::Read { data, .. }) => self.shared.pool.seal(data),
            Err(_) => self.shared.pool.seal(Vec::new()),
        };
        let mut parts = std::mem::take(&mut self.parts);
        let recycled = &self.shared.recycle.1;
        parts.extend((0..self.workers).map(|_| recycled.try_recv().unwrap_or_default()));
        if span.first_of_file {
            for part in parts.iter_mut() {
                part.mark(Mark::BeginFile(Arc::clone(&file.name)));
            }
        }
        self.split(relay, file.layout, &block, &mut parts);
        let upto = 2 * next.frames + 1;
        let sent = Instant::now();
        for (to, mut part) in parts.drain(..).enumerate() {
            part.upto = upto;
            part.sent = Some(sent);
            match &self.links.parts_out[to] {
                Some(out) => {
                    self.stats.batches += 1;
                    // Never full (see `links`); a closed channel means that worker has gone.
                    let _ = out.send((number, part));
                }
                None => {
                    pending.insert(number, part);
                }
            }
        }
        self.parts = parts;
    }

    /// Positioned read of the block's bytes into `data`; returns how many arrived (fewer
    /// only at the file's end).
    fn read_at(&mut self, file: usize, data: &mut [u8], start: u64, end: u64) -> io::Result<usize> {
        let handle = self.handle(file)?;
        let want = (end - start) as usize;
        read_fully_at(handle, &mut data[..want], start)
    }

    /// Map `len` bytes of input file `file` from `start` on.
    fn map(&mut self, file: usize, start: u64, len: usize) -> io::Result<Mapping> {
        Mapping::new(self.handle(file)?, start, len)
    }

    /// The mapped window holding block `number`, and where the block starts in it; `None`
    /// if it cannot be mapped. Blocks are mapped [`BLOCKS_PER_WINDOW`] at a time, whichever
    /// worker's they are, because unmapping interrupts every core the process runs on (to
    /// drop their cached page translations).
    fn window(&mut self, number: u64, span: BlockSpan) -> Option<(Arc<Mapping>, usize)> {
        let plan = self.shared.plan;
        let file = &plan.files[span.file];
        if span.start >= file.len {
            // The one block of a file without records: nothing to map.
            return None;
        }
        let window = (number - file.first_block) / BLOCKS_PER_WINDOW;
        let start = FILE_HEADER_LEN as u64 + window * BLOCKS_PER_WINDOW * plan.block_bytes as u64;
        let from = (span.start - start) as usize;
        let mut windows = self
            .shared
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let live = windows
            .iter()
            .find(|w| (w.file, w.window) == (span.file, window))
            .map(|w| Arc::clone(&w.mapping));
        if let Some(mapping) = live {
            return Some((mapping, from));
        }
        let end = start + BLOCKS_PER_WINDOW * plan.block_bytes as u64 + BLOCK_SLACK as u64;
        let len = (end.min(file.len) - start) as usize;
        let mapping = Arc::new(self.map(span.file, start, len).ok()?);
        let file_end = plan
            .files
            .get(span.file + 1)
            .map_or(plan.blocks, |next| next.first_block);
        windows.push(MappedWindow {
            file: span.file,
            window,
            last_block: (file.first_block + (window + 1) * BLOCKS_PER_WINDOW).min(file_end) - 1,
            mapping: Arc::clone(&mapping),
        });
        Some((mapping, from))
    }

    /// This worker's handle of input file `file`, opened on first use.
    fn handle(&mut self, file: usize) -> io::Result<&File> {
        if self.handles.len() <= file {
            self.handles.resize_with(file + 1, || None);
        }
        if self.handles[file].is_none() {
            let opened = File::open(&self.shared.plan.files[file].path)?;
            // Blocks come in file order: the files before this one are done with, and
            // hundreds of rotated captures must not hold hundreds of descriptors.
            self.handles[..file]
                .iter_mut()
                .for_each(|earlier| *earlier = None);
            self.handles[file] = Some(opened);
        }
        match &self.handles[file] {
            Some(handle) => Ok(handle),
            None => unreachable!("opened above"),
        }
    }

    /// Find the records of the block from `*next_record` (a file offset) to the block's end,
    /// into `found`, moving `*next_record` on past them; a record that runs past the block
    /// is read (or mapped) in whole. Stops at the first damaged record, with the error the
    /// reader thread gives for it, `*next_record` left at that record.
    fn walk(
        &mut self,
        span: BlockSpan,
        bytes: &mut BlockBytes,
        next_record: &mut u64,
    ) -> Result<(), SourceError> {
        let layout = self.shared.plan.files[span.file].layout;
        let end = (span.end - span.start) as usize;
        loop {
            let first = (*next_record - span.start) as usize;
            let walked = match bytes {
                BlockBytes::Mapped { mapping, from } => self.walker.walk(
                    layout,
                    &mapping.bytes()[*from..],
                    first,
                    end,
                    &mut self.found,
                ),
                BlockBytes::Read { data, filled } => {
                    walk_serial(layout, &data[..*filled], first, end, &mut self.found)
                }
            };
            let (at, kind) = match walked {
                WalkEnd::Done { next } => {
                    *next_record = span.start + next as u64;
                    return Ok(());
                }
                WalkEnd::Short { at, need } => {
                    *next_record = span.start + at as u64;
                    if self.extend(span, bytes, need)? {
                        continue;
                    }
                    (at, SourceErrorKind::Truncated("packet record"))
                }
                WalkEnd::Corrupt { at, caplen } => {
                    *next_record = span.start + at as u64;
                    let what = RecordLayout::check_caplen(caplen).unwrap_or_default();
                    (at, SourceErrorKind::Corrupt(what))
                }
            };
            return Err(SourceError {
                path: self.shared.plan.files[span.file].path.clone(),
                offset: span.start + at as u64,
                kind,
            });
        }
    }

    /// Make the block's first `need` bytes present, reading (or mapping) past the block's
    /// end for a record that straddles it. `Ok(false)` when the file (as long as it was
    /// when the run began) ends first.
    fn extend(
        &mut self,
        span: BlockSpan,
        bytes: &mut BlockBytes,
        need: usize,
    ) -> Result<bool, SourceError> {
        let file_len = self.shared.plan.files[span.file].len;
        // The file ends first (as planned: bytes appended since are not read). Checked
        // before the buffer grows, so that a corrupt length field costs no memory.
        if span.start + need as u64 > file_len {
            return Ok(false);
        }
        let io_error = |offset: u64, err: io::Error| SourceError {
            path: self.shared.plan.files[span.file].path.clone(),
            offset,
            kind: SourceErrorKind::Io(err),
        };
        match bytes {
            BlockBytes::Mapped { .. } => {
                // The record runs past the window: this block gets a mapping of its own.
                let len = (bytes.bytes().len() + BLOCK_SLACK)
                    .max(need)
                    .min((file_len - span.start) as usize);
                let mapping = self
                    .map(span.file, span.start, len)
                    .map_err(|err| io_error(span.start, err))?;
                *bytes = BlockBytes::Mapped {
                    mapping: Arc::new(mapping),
                    from: 0,
                };
            }
            BlockBytes::Read { data, filled } => {
                if need > data.len() {
                    data.resize(need.next_power_of_two(), 0);
                }
                let offset = span.start + *filled as u64;
                let got = self
                    .read_at(
                        span.file,
                        &mut data[*filled..need],
                        offset,
                        offset + (need - *filled) as u64,
                    )
                    .map_err(|err| io_error(offset, err))?;
                *filled += got;
            }
        }
        Ok(need <= bytes.bytes().len())
    }

    /// Decode the block's frames (`found` by the walk that began at `relay`), pick each
    /// one's worker and pack it into that worker's part, ticks before the frames they
    /// precede in every part.
    fn split(
        &mut self,
        relay: &Relay,
        layout: RecordLayout,
        block: &Arc<Block>,
        parts: &mut [Batch],
    ) {
        let workers = self.workers as u64;
        let base = block.as_ptr() as usize;
        let mut ticks = self.ticks.iter().peekable();
        for (i, found) in self.found.iter().enumerate() {
            // As the reader thread numbers them: the n-th frame of the input is at 2n + 1,
            // a tick before it at 2n.
            let n = relay.frames + i as u64 + 1;
            if ticks.next_if(|&&tick| tick as usize == i).is_some() {
                for part in parts.iter_mut() {
                    part.mark(Mark::Tick(2 * n, found.ts_nanos));
                }
            }
            let start = found.frame as usize;
            let frame = &block[start..start + found.caplen as usize];
            let decoded = decode::decode(layout.link_type, frame);
            let to = worker_for(&decoded, n, workers);
            let part = &mut parts[to];
            let mut packed = FrameRef::pack(
                2 * n + 1,
                found.ts_nanos,
                relay.file_frames + i as u64 + 1,
                &decoded,
                &mut part.wide,
            );
            if let Ok(segment) = &decoded {
                packed.block = part.block_index(block);
                packed.payload_start = (segment.payload.as_ptr() as usize - base) as u32;
            } else if packed.is_fragment() {
                // Every worker reassembles (see `Engine::fragment`).
                if let Some(ip) = fragment_payload(layout.link_type, frame, &mut packed) {
                    packed.payload_start = (ip.as_ptr() as usize - base) as u32;
                    for part in parts.iter_mut() {
                        packed.block = part.block_index(block);
                        part.frames.push(packed);
                    }
                    self.stats.frames += 1;
                    self.stats.bytes += u64::from(found.caplen);
                    continue;
                }
            }
            part.frames.push(packed);
            self.stats.frames += 1;
            self.stats.bytes += u64::from(found.caplen);
        }
    }
}

/// Watch `ready` for up to [`SPIN_BEFORE_SLEEP`]; whether it came true. What a worker waits
/// for usually comes within tens of microseconds, and going to sleep and being woken costs
/// more than that on a VM (a futex wake-up is an interrupt between vCPUs, through the
/// hypervisor).
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < SPIN_BEFORE_SLEEP {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
    }
    false
}

/// Read into all of `buf` from `offset`, short only at the end of the file.
fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Each worker has its own handle, so moving the handle's cursor harms no one.
#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(not(any(unix, windows)))]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}
