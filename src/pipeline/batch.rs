//! Batching: the frames the reader decoded, packed for the trip to their workers, and
//! the reader's per-worker batches.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::reader::ReadStats;
use crate::decode::{self, Segment, Skip, TcpFlags};
use crate::engine::Ticker;
use crate::flow::Limits;
use crate::source::{Block, Packet};

/// Frames read between two batch flushes (all workers' batches are sent together, so every
/// worker's progress advances in step).
pub(super) const FLUSH_EVERY: u64 = 1024;

/// A frame of a batch as the reader decoded it, packed as plain integers for the trip to
/// its worker (64 bytes; the decoded [`Segment`] with its two `IpAddr`s took 96, at odd
/// offsets). It names where the payload lies in one of the batch's blocks, so a worker
/// touches the frame's bytes only for payload it parses; the other packets of a connection
/// cost it a table lookup over data that arrived in its batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameRef {
    /// Position in the input (odd; ticks take the even positions).
    pub(super) index: u64,
    pub(super) ts_nanos: i64,
    pub(super) frame_number: u64,
    /// IPv4: source address << 32 | destination address. Otherwise ([`FrameRef::WIDE`]):
    /// the index of the address pair in the batch's `wide` list.
    pub(super) addresses: u64,
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) block: u32,
    pub(super) payload_start: u32,
    pub(super) payload_len: u32,
    pub(super) sport: u16,
    pub(super) dport: u16,
    /// [`FrameRef::SYN`] ... [`FrameRef::WIDE`].
    pub(super) flags: u8,
    /// Why the frame is not a TCP segment, when it is not.
    pub(super) skip: Option<Skip>,
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
    /// An IP fragment: the payload fields name its IP packet, for the reassembler. Every
    /// worker gets a copy (see `Engine::fragment`).
    const FRAGMENT: u8 = 64;

    pub(super) fn is_fragment(&self) -> bool {
        self.flags & Self::FRAGMENT != 0
    }

    /// The IP packet of a fragment, borrowed from the batch's blocks.
    pub(super) fn fragment_bytes<'a>(&self, blocks: &'a [Arc<Block>]) -> &'a [u8] {
        let start = self.payload_start as usize;
        blocks
            .get(self.block as usize)
            .and_then(|block| block.get(start..start + self.payload_len as usize))
            .unwrap_or_default()
    }

    /// Pack a decoded frame; its payload's block and offset are set by the caller, who
    /// knows which buffer the frame lies in. IPv6 addresses go to `wide`.
    pub(super) fn pack(
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
            Err(Skip::IpFragment) => {
                return FrameRef {
                    skip: Some(Skip::IpFragment),
                    flags: Self::FRAGMENT,
                    ..empty
                }
            }
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
    pub(super) fn unpack<'a>(
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
pub(super) enum Mark {
    /// Expire idle connections (input index, capture time).
    Tick(u64, i64),
    /// Frames that follow come from this file.
    BeginFile(Arc<str>),
}

/// A worker's share of the frames read since the last flush.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) blocks: Vec<Arc<Block>>,
    pub(super) frames: Vec<FrameRef>,
    /// Rare events, each with the number of frames that come before it.
    pub(super) marks: Vec<(usize, Mark)>,
    /// Address pairs of the frames that are not IPv4 (see [`FrameRef::addresses`]).
    pub(super) wide: Vec<(IpAddr, IpAddr)>,
    /// Last input index this batch covers: the worker has seen everything up to here.
    pub(super) upto: u64,
    pub(super) sent: Option<Instant>,
}

impl Batch {
    pub(super) fn clear(&mut self) {
        self.blocks.clear();
        self.frames.clear();
        self.marks.clear();
        self.wide.clear();
        self.sent = None;
    }

    pub(super) fn mark(&mut self, mark: Mark) {
        self.marks.push((self.frames.len(), mark));
    }

    /// Index of `block` in this batch, adding it if it is new (frames arrive block by block,
    /// so only the last one needs checking).
    pub(super) fn block_index(&mut self, block: &Arc<Block>) -> u32 {
        if !self.blocks.last().is_some_and(|b| Arc::ptr_eq(b, block)) {
            self.blocks.push(Arc::clone(block));
        }
        (self.blocks.len() - 1) as u32
    }
}

/// The reader thread's batching state, shared by file and live reading.
pub(super) struct Batcher {
    pub(super) batches: Vec<Batch>,
    pub(super) senders: Vec<Sender<Batch>>,
    pub(super) recycled: Receiver<Batch>,
    pub(super) stats: ReadStats,
    pub(super) ticker: Ticker,
    pub(super) index: u64,
    pub(super) pending: u64,
}

impl Batcher {
    pub(super) fn new(
        limits: Limits,
        senders: Vec<Sender<Batch>>,
        recycled: Receiver<Batch>,
    ) -> Self {
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

    /// The index of the last frame routed: flushing up to it releases every record its
    /// frames made.
    pub(super) fn last_index(&self) -> u64 {
        2 * self.index + 1
    }

    /// Send every worker its batch, covering the input up to `upto`.
    pub(super) fn flush(&mut self, upto: u64) {
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

    pub(super) fn begin_file(&mut self, name: &Arc<str>) {
        for batch in self.batches.iter_mut() {
            batch.mark(Mark::BeginFile(Arc::clone(name)));
        }
    }

    /// Number the next frame, queue a tick before it if one is due, decode it, pick its
    /// worker by the connection's symmetric hash and pack it for that worker. Returns the
    /// worker, the frame (whose payload block and offset the caller sets, knowing where the
    /// bytes lie) and, for a TCP segment, the payload's address in `packet.data`.
    pub(super) fn route(&mut self, packet: &Packet<'_>) -> (usize, FrameRef, Option<usize>) {
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
        let mut frame = FrameRef::pack(
            frame_index,
            packet.ts_nanos,
            packet.frame_number,
            &decoded,
            &mut self.batches[worker].wide,
        );
        let payload = match decoded {
            Ok(segment) => Some(segment.payload),
            Err(Skip::IpFragment) => fragment_payload(packet.link_type, packet.data, &mut frame),
            Err(_) => None,
        };
        (worker, frame, payload.map(|p| p.as_ptr() as usize))
    }

    /// Queue a fragment for every worker (each reassembles; see `Engine::fragment`);
    /// `block_index` gives its block's index in each worker's batch. Counts as one frame
    /// towards the next flush; returns whether it flushed.
    pub(super) fn push_fragment(
        &mut self,
        mut frame: FrameRef,
        mut block_index: impl FnMut(usize, &mut Batch) -> u32,
    ) -> bool {
        for (worker, batch) in self.batches.iter_mut().enumerate() {
            frame.block = block_index(worker, batch);
            batch.frames.push(frame);
        }
        self.pending += 1;
        if self.pending >= FLUSH_EVERY {
            self.flush(frame.index);
            self.pending = 0;
            return true;
        }
        false
    }

    /// Queue a routed frame; flush every worker's batch when enough have gathered.
    /// Returns whether it flushed.
    pub(super) fn push(&mut self, worker: usize, frame: FrameRef) -> bool {
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

/// For a fragment's frame, its IP packet (whose length is set in `frame`); a frame the
/// layer walk finds no fragment in loses its fragment flag.
pub(super) fn fragment_payload<'a>(
    link_type: u32,
    data: &'a [u8],
    frame: &mut FrameRef,
) -> Option<&'a [u8]> {
    let packet = decode::fragment_packet(link_type, data);
    match packet {
        Some(packet) => frame.payload_len = packet.len() as u32,
        None => frame.flags &= !FrameRef::FRAGMENT,
    }
    packet
}

/// The worker of the `n`-th frame of the input: by the symmetric hash of its connection, so
/// that both directions go to the same worker.
#[inline]
pub(super) fn worker_for(decoded: &Result<Segment<'_>, Skip>, n: u64, workers: u64) -> usize {
    match decoded {
        _ if workers == 1 => 0,
        Ok(segment) => decode::shard_of(segment, workers),
        // Frames that are not TCP only count: spread them evenly.
        Err(_) => (n % workers) as usize,
    }
}
