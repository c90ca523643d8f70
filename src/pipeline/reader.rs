//! The reader thread: capture files or a live source → frames → per-worker batches, and
//! the counters of whoever reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use hdrhistogram::Histogram;

use super::aggregator::ToAggregator;
use super::batch::{Batch, Batcher, FLUSH_EVERY};
use super::{thread_cpu_time, Progress};
use crate::source::{BlockPool, CaptureReader, Packet, SourceError};

/// Live capture: batches also leave at least this often, so records stream out promptly
/// even when traffic is light.
pub(super) const LIVE_FLUSH: Duration = Duration::from_millis(100);
/// Live capture: size of the pooled blocks frames are copied into.
pub(super) const LIVE_BLOCK: usize = 512 << 10;

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

/// Capture files handed to the reader one at a time as they become ready (`tlscensus
/// watch`), read as one stream: a connection may span two files.
pub trait FileFeed: Send {
    /// The next file to read, or [`FeedStep::Wait`] after waiting up to about
    /// [`LIVE_POLL`] for one, or [`FeedStep::End`] when following is over.
    fn next_file(&mut self) -> FeedStep;
    /// Checked between frames: `true` abandons the file being read at once (a stop was
    /// requested); the feed then says [`FeedStep::End`].
    fn stop_requested(&self) -> bool;
    /// What reading a file had to say (a capture cut at a snap length, and how to capture
    /// whole packets), as soon as the file is read: a watch runs for weeks.
    fn note(&mut self, text: String);
}

/// What a [`FileFeed`] has next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStep {
    File(PathBuf),
    Wait,
    End,
}

/// Where the reader thread gets its frames.
pub(super) enum Frames<'a> {
    Files(&'a [PathBuf], &'a Progress),
    Live(&'a mut dyn LiveSource),
    Feed(&'a mut dyn FileFeed, &'a Progress),
}

/// A reading thread's counters: the reader thread's, or a split-reading worker's (whose
/// CPU time is not the reading's alone, so it leaves `cpu` unset).
#[derive(Debug)]
pub(super) struct ReadStats {
    pub(super) frames: u64,
    pub(super) bytes: u64,
    pub(super) batches: u64,
    pub(super) queue_waits: u64,
    pub(super) waited: Duration,
    /// How long each of those waits took, in µs.
    pub(super) wait_lengths_us: Histogram<u64>,
    pub(super) unshareable: u64,
    pub(super) cpu: Option<Duration>,
    /// Chains of the mapped walk begun at a guess: kept, and walked again.
    pub(super) guesses_kept: u64,
    pub(super) guesses_rewalked: u64,
    /// The capture formats' own counters ([`CaptureReader::counters`]), summed over files.
    pub(super) source_counters: Vec<(&'static str, u64)>,
    /// What the readers said of each file ([`CaptureReader::notes`]), named by file.
    pub(super) notes: Vec<String>,
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
            source_counters: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl ReadStats {
    /// Count a wait that began at `began` and is over.
    pub(super) fn waited_since(&mut self, began: Instant) {
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

/// Adds named counters into a running total, keeping the order first seen.
pub(super) fn add_counters(total: &mut Vec<(&'static str, u64)>, part: &[(&'static str, u64)]) {
    for &(name, n) in part {
        match total.iter_mut().find(|(t, _)| *t == name) {
            Some((_, sum)) => *sum += n,
            None => total.push((name, n)),
        }
    }
}

/// Longest wait the wait histogram tells apart (10 s); longer ones count as this.
pub(super) const WAIT_HISTOGRAM_MAX_US: u64 = 10_000_000;

/// Wait lengths in µs to two significant digits: enough to tell a spin from a sleep, and a
/// small table per thread.
pub(super) fn new_wait_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, WAIT_HISTOGRAM_MAX_US, 2).expect("valid histogram bounds")
}

/// The reader thread: files → frames → per-worker batches.
pub(super) fn read(
    files: &[PathBuf],
    progress: &Progress,
    mut b: Batcher,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let mut bytes_before = 0;
    for path in files {
        read_file(path, &mut b, &to_agg, progress, &mut bytes_before, &|| {
            false
        });
    }
    b.flush(u64::MAX - 1);
    b.stats.cpu = thread_cpu_time();
    b.stats
}

/// The reader thread for a [`FileFeed`]: each file as the feed hands it over, the batches
/// sent after each one (so its records come out while the next is awaited), and while
/// waiting at least every [`LIVE_FLUSH`].
pub(super) fn read_feed(
    feed: &mut dyn FileFeed,
    progress: &Progress,
    mut b: Batcher,
    to_agg: Sender<ToAggregator>,
) -> ReadStats {
    let mut bytes_before = 0;
    loop {
        match feed.next_file() {
            FeedStep::File(path) => {
                let stop = || feed.stop_requested();
                let noted = b.stats.notes.len();
                read_file(&path, &mut b, &to_agg, progress, &mut bytes_before, &stop);
                for text in b.stats.notes[noted..].iter().cloned() {
                    feed.note(text);
                }
                b.flush(b.last_index());
                b.pending = 0;
            }
            FeedStep::Wait => {}
            FeedStep::End => break,
        }
    }
    b.flush(u64::MAX - 1);
    b.stats.cpu = thread_cpu_time();
    b.stats
}

/// Read one capture file into the batches; a damaged file goes to the aggregator as an
/// error after its readable part. `stop` is asked every 4096 frames.
fn read_file(
    path: &Path,
    b: &mut Batcher,
    to_agg: &Sender<ToAggregator>,
    progress: &Progress,
    bytes_before: &mut u64,
    stop: &dyn Fn() -> bool,
) {
    let mut reader = match CaptureReader::open(path) {
        Ok(reader) => reader,
        Err(err) => {
            let _ = to_agg.send(ToAggregator::SourceError(err));
            return;
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
            if frame.is_fragment() {
                frame.payload_start = start as u32;
                b.push_fragment(frame, |_, batch| batch.block_index(block));
                continue;
            }
            frame.block = b.batches[worker].block_index(block);
            frame.payload_start = start as u32;
        }
        b.push(worker, frame);
        if b.stats.frames % 4096 == 0 {
            let bytes = *bytes_before + reader.bytes_consumed();
            progress.bytes.store(bytes, Ordering::Relaxed);
            progress.frames.store(b.stats.frames, Ordering::Relaxed);
            if stop() {
                break;
            }
        }
    }
    *bytes_before += reader.bytes_consumed();
    progress.bytes.store(*bytes_before, Ordering::Relaxed);
    progress.frames.store(b.stats.frames, Ordering::Relaxed);
    add_counters(&mut b.stats.source_counters, &reader.counters());
    let notes = reader.notes();
    b.stats.notes.extend(
        notes
            .into_iter()
            .map(|note| format!("{}: {note}", path.display())),
    );
}

/// The block live frames are being copied into, and which workers' batches refer to it
/// (by the index it will take in their block list once sealed).
pub(super) struct LiveBlock {
    pub(super) pool: BlockPool,
    pub(super) data: Vec<u8>,
    pub(super) users: Vec<Option<u32>>,
}

impl LiveBlock {
    /// Freeze the block and hand it to every batch that refers to it.
    pub(super) fn seal(&mut self, batches: &mut [Batch]) {
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
pub(super) fn read_live(
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
            let flushed = if frame.is_fragment() {
                let users = &mut current.users;
                b.push_fragment(frame, |worker, batch| {
                    *users[worker].get_or_insert(batch.blocks.len() as u32)
                })
            } else {
                b.push(worker, frame)
            };
            if flushed {
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
