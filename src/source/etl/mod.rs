//! Windows event trace logs (`.etl`) holding packet captures, read on every platform:
//! `netsh trace start capture=yes` (Microsoft-Windows-NDIS-PacketCapture, [`ndis`]) and
//! `pktmon start --capture` (Microsoft-Windows-PktMon, [`pktmon`]).
//!
//! The file is a sequence of per-processor buffers, possibly compressed ([`file`],
//! [`xpress`]). Buffers are read one after another, never the whole file at once. Each
//! processor's buffers hold its events in time order, and they are queued per processor
//! (in the order of their first events, which also puts a circular log's wrapped buffers
//! right); the next event handed out is the earliest at the head of the processors' queues.
//! Buffers are read ahead until every processor the log header counts has one queued, up
//! to [`WINDOW_BYTES`] of events: the memory used is bounded whatever the file says, and
//! a file whose buffers are further out of order than that still reads, with those events
//! out of order.
//!
//! Events of other providers (the kernel's, the file header's) and the two providers'
//! other events are skipped and counted, as are pktmon's drop events and the copies pktmon
//! logs of each packet at every component it crosses (one copy is kept). Fragments of one
//! NDIS packet are joined. Damage (a cut or corrupt buffer or event) ends the reading with
//! an error naming the buffer's offset in the file, after every event read before it has
//! been handed out.

pub(crate) mod file;
pub(crate) mod ndis;
pub(crate) mod pktmon;
pub mod xpress;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use self::file::{BufferHeader, HeaderKind, LogfileHeader, BUFFER_HEADER_LEN};
use super::{linktype, Block, BlockPool, Direction, Input, Packet, SourceError, SourceErrorKind};

/// Bytes [`looks_like`] needs from the start of a file.
pub(crate) const PROBE_LEN: usize = BUFFER_HEADER_LEN + 8;

/// Largest buffer accepted, on disk or decompressed. Windows' own limit is 16 MiB (and
/// relogged files, pktmon's among them, use 16 MiB buffers); larger means a corrupt file.
pub const MAX_BUFFER: usize = 64 << 20;
/// Most bytes of events the merge window holds.
pub const WINDOW_BYTES: usize = 128 << 20;
/// Most processors waited for: a log header claiming more is damaged or hostile.
const MAX_PROCESSORS: usize = 4096;
/// Longest packet joined from NDIS fragments.
const MAX_JOINED: usize = 256 << 10;
/// Most NDIS packets being joined at once (one per processor and interface).
const MAX_JOINING: usize = 1024;

/// Does the start of a file look like an ETW log?
pub(crate) fn looks_like(b: &[u8]) -> bool {
    file::looks_like_etl(b)
}

/// What an ETW log held besides the frames handed out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EtlCounters {
    /// Packet events read: NDIS fragments and pktmon packet events.
    pub packet_events: u64,
    /// pktmon copies of a packet already handed out, removed.
    pub duplicates: u64,
    /// pktmon drop events (packets a component dropped), not handed out.
    pub drops: u64,
    /// NDIS fragments joined into packets of more than one fragment.
    pub fragments_joined: u64,
    /// NDIS fragments of packets whose last fragment never came.
    pub fragments_lost: u64,
    /// Events of other providers (kernel, file header) and the two providers' other events.
    pub other_events: u64,
    /// Packet events whose payload could not be read or whose bytes fit no link type.
    pub unreadable: u64,
    /// Frames handed out with fewer bytes than the packet had (pktmon's `--pkt-size`,
    /// netsh's `packettruncatebytes`).
    pub cut_pktmon: u64,
    pub cut_ndis: u64,
}

impl EtlCounters {
    /// The counters by name, for `--stats`.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("etl packet events", self.packet_events),
            ("etl copies removed", self.duplicates),
            ("etl pktmon drops", self.drops),
            ("etl fragments joined", self.fragments_joined),
            ("etl fragments lost", self.fragments_lost),
            ("etl other events", self.other_events),
            ("etl unreadable", self.unreadable),
            ("etl cut packets", self.cut_pktmon + self.cut_ndis),
        ]
    }
}

/// One buffer in the merge window.
struct Loaded {
    events: Arc<Block>,
    /// Length of the events in `events`.
    end: usize,
    /// Offset of the next event.
    pos: usize,
    /// Timestamp of the next event; `None` once the buffer is done.
    next_ts: Option<u64>,
    processor: u16,
    /// The buffer's offset in the file, for errors.
    file_offset: u64,
    /// Timestamp of its first event, to queue it among its processor's buffers.
    first_ts: u64,
}

/// A packet being joined from NDIS fragments.
struct Joining {
    data: Vec<u8>,
    fragments: u64,
}

pub(crate) struct EtlReader {
    header: LogfileHeader,
    /// Per processor, its buffers read ahead, earliest first.
    queues: Vec<VecDeque<Loaded>>,
    /// Processor number → index in `queues`.
    slot_of: HashMap<u16, usize>,
    window_bytes: usize,
    /// Processors the log header counts (at most [`MAX_PROCESSORS`]).
    processors: usize,
    /// No more buffers are read (end of file, or damage).
    no_more: bool,
    /// The damage that ended the reading, reported once the window is drained.
    deferred: Option<SourceError>,
    /// A damaged event found in a buffer: the buffer's file offset and what is wrong.
    damage: Option<(u64, String)>,
    pool: BlockPool,
    joining: HashMap<(u16, u32), Joining>,
    copies: pktmon::Copies,
    numbered: u64,
    /// Buffers read so far.
    buffers_read: u64,
    /// The block holding the frame last handed out.
    current: Option<Arc<Block>>,
    pub(crate) counters: EtlCounters,
}

/// Where the frame an event gives is: in the event's buffer, or joined from fragments.
enum FrameBytes {
    InBuffer { start: usize, len: usize },
    Joined(Vec<u8>),
}

struct Frame {
    bytes: FrameBytes,
    ts_nanos: i64,
    link_type: u32,
    orig_len: u32,
    interface: u32,
    direction: Option<Direction>,
}

impl EtlReader {
    /// Reads the log file header from the first buffer; `input` is at offset 0 with at least
    /// [`PROBE_LEN`] bytes buffered. The first buffer is read again as the first of the
    /// window, so that its events are handed out too.
    pub(crate) fn open(input: &mut Input) -> Result<Self, SourceError> {
        let mut events = Vec::new();
        if read_buffer(input, &mut events, false)?.is_none() {
            return Err(input.error(0, SourceErrorKind::Truncated("ETW buffer header")));
        }
        let corrupt = |what: String| input.corrupt(BUFFER_HEADER_LEN as u64, what);
        let (event, _) = file::next_event(&events, 0)
            .map_err(|e| corrupt(format!("log file header event: {e}")))?
            .ok_or_else(|| corrupt("first buffer holds no event".into()))?;
        let (HeaderKind::System { hook_id: 0 }, Some(raw_start)) = (event.kind, event.timestamp)
        else {
            return Err(corrupt("first event is not the log file header".into()));
        };
        let header = file::logfile_header(event.payload, raw_start).map_err(corrupt)?;
        Ok(EtlReader {
            processors: (header.processors as usize).clamp(1, MAX_PROCESSORS),
            header,
            queues: Vec::new(),
            slot_of: HashMap::new(),
            window_bytes: 0,
            no_more: false,
            deferred: None,
            damage: None,
            pool: BlockPool::new(0),
            joining: HashMap::new(),
            copies: pktmon::Copies::new(),
            numbered: 0,
            buffers_read: 0,
            current: None,
            counters: EtlCounters::default(),
        })
    }

    /// The block holding the frame last handed out.
    pub(crate) fn block(&self) -> Option<&Arc<Block>> {
        self.current.as_ref()
    }

    /// Said once per file: packets were cut short, and how to capture them whole.
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let c = &self.counters;
        if c.cut_pktmon > 0 {
            notes.push(format!(
                "{} packets were cut short by pktmon's packet size limit (its default \
                 --pkt-size is 128 bytes, which cuts every TLS ClientHello), so their \
                 connections are reported incomplete; capture whole packets with \
                 `pktmon start --capture --pkt-size 0 ...`",
                c.cut_pktmon
            ));
        }
        if c.cut_ndis > 0 {
            notes.push(format!(
                "{} packets were cut short by the trace's packet truncation, so their \
                 connections may be reported incomplete; capture whole packets with \
                 `netsh trace start capture=yes ...` without `packettruncatebytes`",
                c.cut_ndis
            ));
        }
        notes
    }

    pub(crate) fn next<'a>(
        &'a mut self,
        input: &mut Input,
    ) -> Result<Option<Packet<'a>>, SourceError> {
        loop {
            self.fill_window(input);
            if let Some((offset, what)) = self.damage.take() {
                if self.deferred.is_none() {
                    self.deferred = Some(input.corrupt(offset, what));
                }
            }
            let Some(i) = self.earliest() else {
                return self.deferred.take().map_or(Ok(None), Err);
            };
            let Some(loaded) = self.queues[i].front_mut() else {
                continue;
            };
            let block = Arc::clone(&loaded.events);
            let (at, processor) = (loaded.pos, loaded.processor);
            let events = &block[..loaded.end];
            let Ok(Some((event, next))) = file::next_event(events, at) else {
                // `earliest` only picks buffers whose next event was read.
                loaded.next_ts = None;
                continue;
            };
            let ts = event.timestamp.or(loaded.next_ts).unwrap_or(0);
            loaded.pos = next;
            self.peek_head(i);
            let Some(frame) = self.event(&event, ts, processor, &block) else {
                continue;
            };
            let (data_block, start, len) = match frame.bytes {
                FrameBytes::InBuffer { start, len } => (block, start, len),
                FrameBytes::Joined(data) => {
                    let len = data.len();
                    (self.pool.seal(data), 0, len)
                }
            };
            self.numbered += 1;
            let block = self.current.insert(data_block);
            return Ok(Some(Packet {
                ts_nanos: frame.ts_nanos,
                link_type: frame.link_type,
                data: block.get(start..start + len).unwrap_or_default(),
                orig_len: frame.orig_len,
                frame_number: self.numbered,
                interface: Some(frame.interface),
                direction: frame.direction,
            }));
        }
    }

    /// Drops finished buffers, then reads buffers until every processor has one queued,
    /// the window holds [`WINDOW_BYTES`], or the file ends (or is damaged).
    fn fill_window(&mut self, input: &mut Input) {
        for queue in &mut self.queues {
            while queue.front().is_some_and(|l| l.next_ts.is_none()) {
                if let Some(done) = queue.pop_front() {
                    self.window_bytes -= done.end;
                }
            }
        }
        while !self.no_more && self.window_bytes < WINDOW_BYTES && self.waiting_for_processor() {
            let file_offset = input.offset();
            let mut data = self.pool.take();
            match read_buffer(input, &mut data, true) {
                Ok(Some(header)) => {
                    self.buffers_read += 1;
                    let end = data.len();
                    let mut loaded = Loaded {
                        events: self.pool.seal(data),
                        end,
                        pos: 0,
                        next_ts: None,
                        processor: header.processor,
                        file_offset,
                        first_ts: 0,
                    };
                    self.peek(&mut loaded);
                    let Some(first_ts) = loaded.next_ts else {
                        continue; // no events
                    };
                    loaded.first_ts = first_ts;
                    self.window_bytes += end;
                    let slot = *self.slot_of.entry(header.processor).or_insert_with(|| {
                        self.queues.push(VecDeque::new());
                        self.queues.len() - 1
                    });
                    let queue = &mut self.queues[slot];
                    // After the buffers with earlier first events, but never before the head,
                    // which is being read.
                    let at = queue
                        .iter()
                        .skip(1)
                        .position(|l| l.first_ts > first_ts)
                        .map_or(queue.len(), |i| i + 1);
                    queue.insert(at, loaded);
                }
                Ok(None) => {
                    self.no_more = true;
                    // A file cut at a buffer boundary: the header (rewritten when the trace
                    // stops) counts the buffers. A circular log counts overwritten ones too.
                    const CIRCULAR: u32 = 0x2;
                    if self.header.log_file_mode & CIRCULAR == 0
                        && self.buffers_read < u64::from(self.header.buffers_written)
                    {
                        let kind = SourceErrorKind::Truncated(
                            "ETW log: it ends before the last buffer its header counts",
                        );
                        self.deferred = Some(input.error(input.offset(), kind));
                    }
                }
                Err(err) => {
                    self.deferred = Some(err);
                    self.no_more = true;
                }
            }
        }
    }

    /// Is a processor the header counts without a buffer queued (so that one read later
    /// could hold events earlier than every event queued)?
    fn waiting_for_processor(&self) -> bool {
        let ready = self
            .slot_of
            .iter()
            .filter(|&(&cpu, &slot)| {
                usize::from(cpu) < self.processors && !self.queues[slot].is_empty()
            })
            .count();
        ready < self.processors
    }

    /// Reads the timestamp of a buffer's next event (the previous one's for an event without
    /// one); a damaged event ends the buffer and, once the window is drained, the file.
    fn peek_head(&mut self, slot: usize) {
        let mut damage = None;
        if let Some(loaded) = self.queues[slot].front_mut() {
            damage = peek_event(loaded);
        }
        if let Some(damage) = damage {
            self.damage.get_or_insert(damage);
            self.no_more = true;
        }
    }

    fn peek(&mut self, loaded: &mut Loaded) {
        if let Some(damage) = peek_event(loaded) {
            self.damage.get_or_insert(damage);
            self.no_more = true;
        }
    }

    /// The processor whose next event is earliest (the first processor seen on a tie).
    fn earliest(&self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, queue) in self.queues.iter().enumerate() {
            if let Some(ts) = queue.front().and_then(|l| l.next_ts) {
                if best.is_none_or(|(b, _)| ts < b) {
                    best = Some((ts, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// What one event gives: a frame, or nothing (counted).
    fn event(
        &mut self,
        event: &file::Event<'_>,
        ts: u64,
        processor: u16,
        block: &Arc<Block>,
    ) -> Option<Frame> {
        if event.kind != HeaderKind::Event {
            self.counters.other_events += 1;
            return None;
        }
        let ts_nanos = self.header.clock.unix_nanos(ts);
        let offset_in_block = |data: &[u8]| data.as_ptr() as usize - block.as_ptr() as usize;
        if event.provider == pktmon::PROVIDER {
            match event.id {
                pktmon::EVENT_PACKET => {}
                pktmon::EVENT_DROP => {
                    self.counters.drops += 1;
                    return None;
                }
                _ => {
                    self.counters.other_events += 1;
                    return None;
                }
            }
            self.counters.packet_events += 1;
            let Some(p) = pktmon::parse(event.payload) else {
                self.counters.unreadable += 1;
                return None;
            };
            let Some(link_type) = pktmon::link_type(p.packet_type, p.data) else {
                self.counters.unreadable += 1;
                return None;
            };
            if self.copies.is_copy(&p, link_type, ts_nanos) {
                self.counters.duplicates += 1;
                return None;
            }
            let len = p.data.len();
            let orig_len = u32::from(p.original_size).max(len as u32);
            if (len as u32) < orig_len {
                self.counters.cut_pktmon += 1;
            }
            return Some(Frame {
                bytes: FrameBytes::InBuffer {
                    start: offset_in_block(p.data),
                    len,
                },
                ts_nanos,
                link_type,
                orig_len,
                interface: u32::from(p.component),
                direction: p.direction,
            });
        }
        if event.provider != ndis::PROVIDER {
            self.counters.other_events += 1;
            return None;
        }
        match event.id {
            ndis::EVENT_FRAGMENT | ndis::EVENT_VMSWITCH_FRAGMENT => {}
            // Wi-Fi receive metadata for the next fragment (1002), and the driver's state
            // events.
            _ => {
                self.counters.other_events += 1;
                return None;
            }
        }
        self.counters.packet_events += 1;
        let Some(f) = ndis::fragment(event.id, event.keywords, event.payload) else {
            self.counters.unreadable += 1;
            return None;
        };
        let key = (processor, f.lower_if);
        let pending = self.joining.remove(&key);
        if f.first {
            if let Some(stale) = &pending {
                self.counters.fragments_lost += stale.fragments;
            }
        }
        let bytes = match (f.first, f.last, pending) {
            (_, true, None) | (true, true, Some(_)) => FrameBytes::InBuffer {
                start: offset_in_block(f.data),
                len: f.data.len(),
            },
            (first, last, pending) => {
                let mut joining = match pending {
                    Some(p) if !first => p,
                    _ => Joining {
                        data: Vec::new(),
                        fragments: 0,
                    },
                };
                if joining.data.len() + f.data.len() > MAX_JOINED {
                    self.counters.fragments_lost += joining.fragments + 1;
                    return None;
                }
                joining.data.extend_from_slice(f.data);
                joining.fragments += 1;
                if !last {
                    if self.joining.len() >= MAX_JOINING {
                        let lost: u64 = self.joining.values().map(|j| j.fragments).sum();
                        self.counters.fragments_lost += lost;
                        self.joining.clear();
                    }
                    self.joining.insert(key, joining);
                    return None;
                }
                if joining.fragments > 1 {
                    self.counters.fragments_joined += joining.fragments;
                }
                FrameBytes::Joined(joining.data)
            }
        };
        let data: &[u8] = match &bytes {
            FrameBytes::InBuffer { .. } => f.data,
            FrameBytes::Joined(d) => d,
        };
        let link_type = match f.media {
            ndis::Media::Wifi => linktype::IEEE802_11,
            ndis::Media::RawIp => linktype::RAW,
            // Tunnel and VPN interfaces log IP packets under the Ethernet keyword.
            ndis::Media::Ethernet if pktmon::link_type(1, data) == Some(linktype::RAW) => {
                linktype::RAW
            }
            ndis::Media::Ethernet => linktype::ETHERNET,
        };
        let len = data.len() as u32;
        let orig_len = inferred_length(link_type, data).map_or(len, |l| l.max(len));
        if orig_len > len {
            self.counters.cut_ndis += 1;
        }
        Some(Frame {
            bytes,
            ts_nanos,
            link_type,
            orig_len,
            interface: f.lower_if,
            direction: f.direction,
        })
    }
}

/// Reads the timestamp of `loaded`'s next event into `next_ts` (the previous one's for an
/// event without one; `None` at the end); a damaged event ends the buffer and is returned
/// as (the buffer's file offset, what is wrong).
fn peek_event(loaded: &mut Loaded) -> Option<(u64, String)> {
    let previous = loaded.next_ts.unwrap_or(0);
    match file::next_event(&loaded.events[..loaded.end], loaded.pos) {
        Ok(Some((event, _))) => {
            loaded.next_ts = Some(event.timestamp.unwrap_or(previous));
            None
        }
        Ok(None) => {
            loaded.next_ts = None;
            None
        }
        Err(what) => {
            loaded.next_ts = None;
            Some((
                loaded.file_offset,
                format!(
                    "event at byte {} of the events of the buffer (processor {}): {what}",
                    loaded.pos, loaded.processor
                ),
            ))
        }
    }
}

/// The length a frame had before a snap length cut it, from its IP header's length (NDIS
/// events carry only what was captured). `None` when there is no IP header to read or it
/// gives no length (a large send offload packet).
fn inferred_length(link_type: u32, d: &[u8]) -> Option<u32> {
    let at = match link_type {
        linktype::ETHERNET => match d.get(12..14)? {
            [0x08, 0x00] | [0x86, 0xDD] => 14,
            _ => return None,
        },
        linktype::RAW => 0,
        _ => return None,
    };
    let ip = d.get(at..)?;
    let len = match ip.first()? >> 4 {
        4 => u32::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?])),
        6 => 40 + u32::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?])),
        _ => return None,
    };
    (len > 0).then_some(at as u32 + len)
}

/// Reads the buffer at the input's position: its events into `out` (decompressed), and
/// its header; `consume` moves the input past it. `Ok(None)` at the end of the file.
fn read_buffer(
    input: &mut Input,
    out: &mut Vec<u8>,
    consume: bool,
) -> Result<Option<BufferHeader>, SourceError> {
    let at = input.offset();
    if !input.fill(BUFFER_HEADER_LEN)? {
        if input.avail().is_empty() {
            return Ok(None);
        }
        return Err(input.error(at, SourceErrorKind::Truncated("ETW buffer header")));
    }
    let header = BufferHeader::parse(input.avail());
    let size = header.size as usize;
    if !(BUFFER_HEADER_LEN..=MAX_BUFFER).contains(&size) {
        let what = format!("ETW buffer header: buffer size {size}");
        return Err(input.corrupt(at, what));
    }
    if !input.fill(size)? {
        return Err(input.error(at, SourceErrorKind::Truncated("ETW buffer")));
    }
    let raw = &input.avail()[BUFFER_HEADER_LEN..size];
    let filled = header.filled as usize;
    out.clear();
    if header.compressed() {
        if let Err(e) = xpress::decompress(raw, out, MAX_BUFFER) {
            let what = format!("compressed ETW buffer: {e}");
            return Err(input.corrupt(at, what));
        }
        if (BUFFER_HEADER_LEN..BUFFER_HEADER_LEN + out.len()).contains(&filled) {
            out.truncate(filled - BUFFER_HEADER_LEN);
        }
    } else {
        let end = if (BUFFER_HEADER_LEN..=size).contains(&filled) {
            filled
        } else {
            size
        };
        out.extend_from_slice(&raw[..end - BUFFER_HEADER_LEN]);
    }
    if consume {
        input.consume(size);
    }
    Ok(Some(header))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::source::CaptureReader;

    type Frames = Vec<(i64, Vec<u8>)>;

    fn read_all(path: &Path) -> (Frames, Vec<(&'static str, u64)>) {
        let mut reader = CaptureReader::open(path).unwrap();
        let mut frames = Vec::new();
        while let Some(p) = reader.next_packet().unwrap() {
            frames.push((p.ts_nanos, p.data.to_vec()));
        }
        (frames, reader.counters())
    }

    /// The real pktmon capture against Windows' own conversion of it (`PktMon.cap`, a
    /// pcapng file written by pktmon, which keeps every copy): 114 packet events, each
    /// packet logged at 2 to 4 components; one copy of each is handed out, byte for byte and
    /// at the time pktmon's conversion gives its first copy.
    #[test]
    fn pktmon_capture_as_windows_converts_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/etl/real/demikernel");
        let (mut frames, counters) = read_all(&dir.join("PktMon.etl"));
        // The conversion keeps microseconds (100 ns units divided by 10, truncated).
        for frame in &mut frames {
            frame.0 = frame.0 / 1000 * 1000;
        }
        let converted = read_all(&dir.join("PktMon.cap")).0;
        assert_eq!(converted.len(), 114);
        let count = |name| counters.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(count("etl packet events"), 114);
        assert_eq!(count("etl copies removed"), 76);
        assert_eq!(count("etl pktmon drops"), 0);
        assert_eq!(frames.len(), 38);
        // Each frame is a converted packet; each converted packet is a copy of a frame.
        for frame in &frames {
            assert!(
                converted.contains(frame),
                "frame at {} not in the conversion",
                frame.0
            );
        }
        for (ts, bytes) in &converted {
            assert!(frames.iter().any(|(t, b)| b == bytes && t <= ts));
        }
        assert_eq!(frames[0], converted[0]);
    }
}
