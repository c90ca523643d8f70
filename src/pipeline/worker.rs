//! The workers: batches in, records counted (and sent on, when the caller wants them); each
//! owns its share of the flows, and counts into the census's shards (`shards.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use super::aggregator::ToAggregator;
use super::batch::{Batch, Mark};
use super::shards::{Counter, Tally};
use super::{new_histogram, thread_cpu_time};
use crate::engine::{Config, Emitted, Engine, OrderKey};
use crate::record::Record;

/// Longest a worker keeps its records and progress to itself (while batches arrive; a live
/// reader sends one at least every [`LIVE_FLUSH`]). Short enough that the aggregator works
/// in short bursts: on a machine with as many workers as cores, each burst takes a core
/// from a worker, and the other soon waits for that one (`benches/NOTES.md`).
pub(super) const PROGRESS_EVERY: Duration = Duration::from_millis(5);
/// Records a worker sends as soon as it holds them, however recent its last message.
pub(super) const RECORDS_PER_MESSAGE: usize = 512;

/// Run a batch's frames and marks through `engine`, in order.
fn run_batch(engine: &mut Engine, batch: &Batch, emit: &mut impl FnMut(Emitted)) {
    let mut marks = batch.marks.iter().peekable();
    for (position, frame) in batch.frames.iter().enumerate() {
        while let Some((_, mark)) = marks.next_if(|(before, _)| *before <= position) {
            apply(engine, mark, emit);
        }
        if frame.is_fragment() {
            let ip = frame.fragment_bytes(&batch.blocks);
            let (ts, number) = (frame.ts_nanos, frame.frame_number);
            engine.fragment(frame.index, ip, ts, number, emit);
            continue;
        }
        let segment = frame.unpack(&batch.blocks, &batch.wide);
        engine.decoded(
            frame.index,
            segment.as_ref().map_err(|skip| *skip),
            frame.ts_nanos,
            frame.frame_number,
            emit,
        );
    }
    for (_, mark) in marks {
        apply(engine, mark, emit);
    }
}

/// What a worker does with its records.
#[derive(Clone)]
pub(super) struct LaneOutputs {
    /// The run's census: the worker counts each record into its client's shard.
    pub(super) tally: Option<Arc<Tally>>,
    /// Whether the records go on to the aggregator (to be written as events).
    pub(super) send_records: bool,
}

/// A worker thread: batches in, records out.
pub(super) fn work(
    worker: usize,
    workers: usize,
    config: Config,
    outputs: LaneOutputs,
    batches: Receiver<Batch>,
    to_agg: Sender<ToAggregator>,
    recycle: Sender<Batch>,
) {
    let mut lane = Lane::new(worker, workers, config, outputs, to_agg);
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
pub(super) struct Lane {
    pub(super) worker: usize,
    pub(super) engine: Engine,
    pub(super) latency: Histogram<u64>,
    pub(super) collected: Collector,
    pub(super) outputs: LaneOutputs,
    pub(super) last_progress: Instant,
    pub(super) to_agg: Sender<ToAggregator>,
}

impl Lane {
    pub(super) fn new(
        worker: usize,
        workers: usize,
        config: Config,
        outputs: LaneOutputs,
        to_agg: Sender<ToAggregator>,
    ) -> Self {
        let mut engine = Engine::new(config);
        engine.set_shard(worker, workers);
        Lane {
            worker,
            engine,
            latency: new_histogram(),
            collected: Collector::default(),
            outputs,
            last_progress: Instant::now(),
            to_agg,
        }
    }

    /// Run a batch's frames and marks through the engine, in order. Returns the input
    /// position the batch covers.
    pub(super) fn process(&mut self, batch: &Batch) -> u64 {
        // The worker's run-wide counts are locked once for the whole batch (`shards.rs`).
        let worker = self.worker;
        let mut counter = self.outputs.tally.as_ref().map(|t| t.counter(worker));
        let send = self.outputs.send_records;
        run_batch(
            &mut self.engine,
            batch,
            &mut emitter(counter.as_mut(), &mut self.collected, send),
        );
        drop(counter);
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
    /// gone (the run is over). Without records to send, nothing is: the aggregator only
    /// orders records, and the census is counted here.
    pub(super) fn report_progress(&mut self, upto: u64) -> bool {
        if !self.outputs.send_records {
            return true;
        }
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

    /// The input is over: flush the connections still open and send the rest.
    pub(super) fn finish(mut self) {
        let worker = self.worker;
        let mut counter = self.outputs.tally.as_ref().map(|t| t.counter(worker));
        let send = self.outputs.send_records;
        self.engine
            .finish(&mut emitter(counter.as_mut(), &mut self.collected, send));
        drop(counter);
        let _ = self.to_agg.send(ToAggregator::Finished {
            worker: self.worker,
            records: std::mem::take(&mut self.collected.records),
            stats: Box::new(self.engine.stats()),
            names: Box::new(self.engine.take_names()),
            latency: Box::new(self.latency),
            cpu: thread_cpu_time(),
        });
    }
}

/// What a worker does with each record the engine makes: count it in the run's census,
/// and keep it for the aggregator if the records are wanted.
fn emitter<'a, 't>(
    mut counter: Option<&'a mut Counter<'t>>,
    collected: &'a mut Collector,
    send: bool,
) -> impl FnMut(Emitted) + use<'a, 't> {
    move |e: Emitted| {
        if let Some(counter) = &mut counter {
            counter.add(&e.record);
        }
        if send {
            collected.push(e);
        }
    }
}

/// Carry out a batch's mark.
pub(super) fn apply(engine: &mut Engine, mark: &Mark, emit: &mut impl FnMut(Emitted)) {
    match mark {
        Mark::Tick(index, now) => engine.tick(*index, *now, emit),
        Mark::BeginFile(name) => engine.begin_file(name.to_string()),
    }
}

/// A worker's records since its last report, numbered in emission order.
#[derive(Default)]
pub(super) struct Collector {
    pub(super) seq: u64,
    pub(super) records: Vec<(OrderKey, u64, Record)>,
}

impl Collector {
    pub(super) fn push(&mut self, emitted: Emitted) {
        self.seq += 1;
        self.records.push((emitted.order, self.seq, emitted.record));
    }
}
