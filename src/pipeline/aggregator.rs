//! The aggregator (the caller's thread): the workers' records back in order (when the
//! caller wants them), counters summed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use hdrhistogram::Histogram;

use super::PipelineStats;
use crate::census::names::Names;
use crate::engine::{OrderKey, Stats};
use crate::names::kept::KeptNames;
use crate::record::Record;
use crate::source::SourceError;

/// How often the aggregator wakes up for its `on_tick` callback when no message arrives.
pub(super) const AGGREGATOR_TICK: Duration = Duration::from_millis(100);

/// Messages from workers to the aggregator.
pub(super) enum ToAggregator {
    Progress {
        worker: usize,
        upto: u64,
        records: Vec<(OrderKey, u64, Record)>,
    },
    Finished {
        worker: usize,
        records: Vec<(OrderKey, u64, Record)>,
        stats: Box<Stats>,
        /// Names from the UDP name services.
        names: Box<Names>,
        latency: Box<Histogram<u64>>,
        cpu: Option<Duration>,
    },
    SourceError(SourceError),
}

/// Entry of the reorder heap: smallest order first.
pub(super) type Pending = Reverse<(OrderKey, u64, usize, RecordSlot)>;

/// Records ordered only by their key (the heap never compares two records).
pub(super) struct RecordSlot(Record);

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
#[allow(clippy::too_many_arguments)]
pub(super) fn aggregate(
    threads: usize,
    messages: Receiver<ToAggregator>,
    sink: &mut impl FnMut(Record),
    on_error: &mut impl FnMut(SourceError),
    on_tick: &mut impl FnMut(),
    stats: &mut Stats,
    names: &mut KeptNames,
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
                pipeline.records_ordered += records.len() as u64;
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
                names: worker_names,
                latency,
                cpu,
            } => {
                pipeline.worker_cpu[worker] = cpu;
                pipeline.worker_frames[worker] = worker_stats.frames;
                pipeline.records_ordered += records.len() as u64;
                for (order, seq, record) in records {
                    heap.push(Reverse((order, seq, worker, RecordSlot(record))));
                }
                upto[worker] = u64::MAX;
                add_stats(stats, &worker_stats);
                names.merge(*worker_names);
                let _ = pipeline.batch_latency_us.add(&*latency);
                release(&mut heap, &upto);
            }
            ToAggregator::SourceError(err) => on_error(err),
        }
        on_tick();
    }
    release(&mut heap, &vec![u64::MAX; threads]);
}

pub(super) fn add_stats(total: &mut Stats, part: &Stats) {
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
    total.quic_datagrams += part.quic_datagrams;
    total.quic_initials += part.quic_initials;
    total.quic_initials_opened += part.quic_initials_opened;
    total.quic_connections += part.quic_connections;
    total.quic_other_packets += part.quic_other_packets;
    total.quic_short += part.quic_short;
    total.quic_unknown_version += part.quic_unknown_version;
    total.quic_undecryptable += part.quic_undecryptable;
    total.quic_malformed_frames += part.quic_malformed_frames;
    total.quic_crypto_over_budget += part.quic_crypto_over_budget;
    total.flows_evicted += part.flows_evicted;
    total.fragments.add(&part.fragments);
    total.names.messages += part.names.messages;
    total.names.malformed += part.names.malformed;
    total.names.names += part.names.names;
}
