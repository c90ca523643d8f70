//! Split reading: when every input is a classic pcap file on disk, the workers read the
//! files themselves, each its share, instead of one reader thread reading for all.
//!
//! Why: with one reader thread, that thread sets the pace of the whole run. It reads, walks,
//! decodes, shards and hands off every frame on one core while the workers wait for it
//! (figures in `benches/NOTES.md`, "Constants and the runs behind them"). A pcap file can
//! be read from anywhere once a record boundary is known, so the files are cut into
//! fixed-size blocks dealt round-robin: block `k` belongs to worker `k mod N`, which
//!
//! ```text
//!  1. reads the block with a positioned read (the workers read their blocks at once);
//!  2. waits to be told where the block's first record starts, walks the record headers to
//!     the block's end and tells the next block's worker where the next record starts, how
//!     many frames came before it and the idle ticker's state (a cheap, serial relay);
//!  3. decodes every frame of the block, picks its worker by the connection's symmetric
//!     hash and packs it into that worker's part of the block (the same 64-byte frame
//!     records the reader thread makes), keeping its own part and sending the others theirs;
//! ```
//!
//! and every worker processes its part of every block in block order, so each connection's
//! frames, and the idle ticks, reach its engine in input order with the same input
//! positions as from the reader thread: the records, their order and every report are
//! byte-identical whichever way the files were read and whatever the number of threads.
//!
//! A worker reads at most [`AHEAD`] of its blocks beyond the part it is processing; so
//! parts, relays and read buffers in flight stay bounded (a few MiB), and no channel fills.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Select, Sender, TryRecvError};

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
/// Room past a block's end in each read buffer, for the record that straddles it.
const BLOCK_SLACK: usize = 64 << 10;
/// How many of its own blocks a worker may have read beyond the block it is processing.
const AHEAD: u64 = 4;
/// The same for mapped blocks (four times as large).
const MAPPED_AHEAD: u64 = 2;
/// How long a worker watches for a part or relay before it sleeps: long enough to catch
/// most hand-offs without a context switch, short enough not to burn the core the other
/// worker needs (`benches/NOTES.md`).
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

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

/// What the worker of one block tells the worker of the next: the state of the serial
/// walk through the input, as it stands at the next block's start.
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

/// What one worker needs to reach the others.
pub(super) struct Links {
    relay_in: Receiver<Relay>,
    relay_out: Sender<Relay>,
    /// Parts for each worker (own slot unused).
    parts_out: Vec<Sender<Batch>>,
    /// Parts from each worker (own slot unused).
    parts_in: Vec<Receiver<Batch>>,
}

/// The channels between `workers` workers: a relay ring (worker `v` tells `v + 1`, the
/// worker of the next block) seeded with the input's start, and a part channel for every
/// pair. Capacities are above the most that [`AHEAD`] lets be in flight, so sends never
/// block.
pub(super) fn links(workers: usize, limits: &Limits) -> Vec<Links> {
    let depth = 2 * AHEAD as usize + 4;
    let relays: Vec<(Sender<Relay>, Receiver<Relay>)> =
        (0..workers).map(|_| bounded(depth)).collect();
    let start = Relay {
        next_record: FILE_HEADER_LEN as u64,
        frames: 0,
        file_frames: 0,
        ticker: Ticker::new(limits),
        stopped: false,
    };
    relays[0].0.send(start).expect("relay channel has room");
    // parts[from][to]
    let parts: Vec<Vec<(Sender<Batch>, Receiver<Batch>)>> = (0..workers)
        .map(|_| (0..workers).map(|_| bounded(depth)).collect())
        .collect();
    (0..workers)
        .map(|w| Links {
            relay_in: relays[w].1.clone(),
            relay_out: relays[(w + 1) % workers].0.clone(),
            parts_out: (0..workers).map(|to| parts[w][to].0.clone()).collect(),
            parts_in: (0..workers).map(|from| parts[from][w].1.clone()).collect(),
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
    /// The mapped windows the blocks in flight lie in: (file, window, mapping). Every block
    /// of a window holds its mapping; the last one dropped unmaps it.
    windows: Mutex<Vec<(usize, u64, Weak<Mapping>)>>,
}

impl Shared<'_> {
    pub(super) fn new<'a>(plan: &'a Plan, progress: &'a Progress, workers: usize) -> Shared<'a> {
        Shared {
            plan,
            progress,
            pool: BlockPool::new(plan.block_bytes + BLOCK_SLACK),
            recycle: bounded(workers * workers * (2 * AHEAD as usize + 4)),
            spin: std::thread::available_parallelism().is_ok_and(|cores| workers <= cores.get()),
            windows: Mutex::new(Vec::new()),
        }
    }
}

/// One worker of a split-reading run: reads its blocks, and processes its part of every
/// block in order. It never sits waiting on one thing while it could do another: between
/// parts it reads and relays whatever blocks it can, and it sleeps only when it has neither
/// the part it needs next nor the relay for a block it has read.
pub(super) fn work(
    worker: usize,
    workers: usize,
    config: Config,
    outputs: LaneOutputs,
    links: Links,
    shared: &Shared<'_>,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let mut reader = BlockReader {
        worker,
        workers,
        shared,
        links: &links,
        next_own: worker as u64,
        prepared: None,
        relay: None,
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
    let mut own: VecDeque<Batch> = VecDeque::new();
    let total = shared.plan.blocks;
    let ahead = if shared.plan.map { MAPPED_AHEAD } else { AHEAD };
    let window = ahead * workers as u64;
    let mut block = 0;
    while block < total {
        if !reader.advance(block + window, &mut own) {
            break;
        }
        let from = (block % workers as u64) as usize;
        let part = if from == worker {
            own.pop_front()
        } else {
            match links.parts_in[from].try_recv() {
                Ok(part) => Some(part),
                Err(TryRecvError::Empty) => None,
                // The other worker has died; its panic ends the run.
                Err(TryRecvError::Disconnected) => break,
            }
        };
        let Some(mut part) = part else {
            reader.wait((from != worker).then_some(from), block + window);
            continue;
        };
        let upto = lane.process(&part);
        part.clear();
        let _ = shared.recycle.0.try_send(part);
        if !lane.report_progress(upto) {
            break;
        }
        block += 1;
    }
    lane.finish();
    reader.stats.guesses_kept = reader.walker.guesses_kept;
    reader.stats.guesses_rewalked = reader.walker.guesses_rewalked;
    reader.stats
}

/// A block read or mapped, waiting for its relay.
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
    worker: usize,
    workers: usize,
    shared: &'a Shared<'a>,
    links: &'a Links,
    /// This worker's next block to read.
    next_own: u64,
    /// That block, once read.
    prepared: Option<Prepared>,
    /// Its relay, once received.
    relay: Option<Relay>,
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
    /// Read, walk and split own blocks below `limit` for as long as their relays are there
    /// (reading the next one right after, so that only the walk waits for a relay). Parts
    /// go to `own` or to their workers. `false` if the worker before has died.
    fn advance(&mut self, limit: u64, own: &mut VecDeque<Batch>) -> bool {
        loop {
            if self.prepared.is_none() {
                if self.next_own >= self.shared.plan.blocks || self.next_own >= limit {
                    return true;
                }
                self.prepared = Some(self.read_block(self.next_own));
            }
            if self.relay.is_none() {
                match self.links.relay_in.try_recv() {
                    Ok(relay) => self.relay = Some(relay),
                    Err(TryRecvError::Empty) => return true,
                    Err(TryRecvError::Disconnected) => return false,
                }
            }
            if let (Some(prepared), Some(relay)) = (self.prepared.take(), self.relay.take()) {
                self.split_block(prepared, relay, own);
                self.next_own += self.workers as u64;
            }
        }
    }

    /// Sleep until the part from worker `from` (none: an own part) or, if a block is read
    /// and within `limit`, its relay arrives.
    fn wait(&mut self, from: Option<usize>, limit: u64) {
        let part = from.map(|from| &self.links.parts_in[from]);
        let relay = self
            .prepared
            .as_ref()
            .is_some_and(|p| p.number < limit)
            .then_some(&self.links.relay_in);
        // Never both missing (an own part is missing only while its block waits for its
        // relay), but a select with nothing to wait for would panic.
        if part.is_none() && relay.is_none() {
            return;
        }
        let waiting = Instant::now();
        let ready = || part.is_some_and(|c| !c.is_empty()) || relay.is_some_and(|c| !c.is_empty());
        if !(self.shared.spin && spin_until(ready)) {
            let mut select = Select::new();
            if let Some(part) = part {
                select.recv(part);
            }
            if let Some(relay) = relay {
                select.recv(relay);
            }
            // Ready (or disconnected, which the caller's next try notices); nothing taken.
            let _ = select.ready();
        }
        self.stats.waited_since(waiting);
    }

    fn report(&self, error: SourceError) {
        let _ = self.to_agg.send(ToAggregator::SourceError(error));
    }

    /// Map or read block `number` (before its relay is there: the workers' reads overlap).
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

    /// Walk a read block from where its relay says, relay the walk on, and split its frames
    /// into one part per worker: this worker's goes to `own`, the others are sent.
    fn split_block(&mut self, prepared: Prepared, relay: Relay, own: &mut VecDeque<Batch>) {
        let Prepared {
            number,
            span,
            bytes,
        } = prepared;
        let plan = self.shared.plan;
        let file = &plan.files[span.file];
        let mut next = relay.clone();
        self.found.clear();
        self.ticks.clear();
        let (bytes, walked) = match (relay.stopped, bytes) {
            (true, bytes) => (bytes.ok(), Ok(())),
            (false, Ok(mut bytes)) => {
                let walked = self.walk(span, &mut bytes, &mut next.next_record);
                (Some(bytes), walked)
            }
            (false, Err(err)) => (
                None,
                Err(SourceError {
                    path: file.path.clone(),
                    offset: span.start,
                    kind: SourceErrorKind::Io(err),
                }),
            ),
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
        if number + 1 < plan.blocks {
            if plan.span(number + 1).file != span.file {
                next.next_record = FILE_HEADER_LEN as u64;
                next.file_frames = 0;
                next.stopped = false;
            }
            // Never full (see `links`); a closed channel means the next worker has gone.
            let _ = self.links.relay_out.send(next.clone());
        }

        let block = match bytes {
            Some(BlockBytes::Mapped { mapping, from }) => Block::mapped(mapping, from),
            Some(BlockBytes::Read { data, .. }) => self.shared.pool.seal(data),
            None => self.shared.pool.seal(Vec::new()),
        };
        let mut parts = std::mem::take(&mut self.parts);
        let recycled = &self.shared.recycle.1;
        parts.extend((0..self.workers).map(|_| recycled.try_recv().unwrap_or_default()));
        if span.first_of_file {
            for part in parts.iter_mut() {
                part.mark(Mark::BeginFile(Arc::clone(&file.name)));
            }
        }
        self.split(&relay, file.layout, &block, &mut parts);
        let upto = 2 * next.frames + 1;
        let sent = Instant::now();
        for (to, mut part) in parts.drain(..).enumerate() {
            part.upto = upto;
            part.sent = Some(sent);
            if to == self.worker {
                own.push_back(part);
            } else {
                self.stats.batches += 1;
                let _ = self.links.parts_out[to].send(part);
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
            .find(|(f, w, _)| (*f, *w) == (span.file, window))
            .and_then(|(_, _, mapping)| mapping.upgrade());
        if let Some(mapping) = live {
            return Some((mapping, from));
        }
        let end = start + BLOCKS_PER_WINDOW * plan.block_bytes as u64 + BLOCK_SLACK as u64;
        let len = (end.min(file.len) - start) as usize;
        let mapping = Arc::new(self.map(span.file, start, len).ok()?);
        windows.retain(|(_, _, mapping)| mapping.strong_count() > 0);
        windows.push((span.file, window, Arc::downgrade(&mapping)));
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
