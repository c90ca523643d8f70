//! Capture sources: turn capture files into a stream of link-layer frames.
//!
//! Files are recognised by their magic number, never by their name. Every reader hands out
//! frames borrowed from one reusable buffer ([`CaptureReader::next_packet`] is a lending
//! iterator), so reading costs no allocation or copy per packet.

pub mod compressed;
pub mod etl;
pub mod mapped;
pub mod netmon;
pub mod pcap;
pub mod pcapng;
pub mod walk;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

/// Link-layer types, numbered as in the tcpdump.org LINKTYPE_ registry.
/// Readers of other formats (Network Monitor) map their media types onto these numbers.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    pub const IEEE802_11: u32 = 105;
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time in nanoseconds since the Unix epoch (UTC).
    pub ts_nanos: i64,
    /// LINKTYPE_ value of the interface the frame was captured on.
    pub link_type: u32,
    /// The captured bytes (possibly fewer than `orig_len` when a snap length cut the frame).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// 1-based frame number within its file, as Wireshark counts them (for an ETW log,
    /// which Wireshark does not open, the count of frames handed out).
    pub frame_number: u64,
    /// The interface the frame was captured on, where the format records it (ETW logs:
    /// NDIS's LowerIfIndex, pktmon's component id); `None` for the other formats.
    pub interface: Option<u32>,
    /// Whether the frame was sent or received, where the format records it (ETW logs).
    pub direction: Option<Direction>,
}

/// Which way a frame went through the capturing host's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Why a capture file could not be read (further). Always names the file and the byte offset.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind} at byte offset {offset}", path.display())]
pub struct SourceError {
    pub path: PathBuf,
    pub offset: u64,
    pub kind: SourceErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceErrorKind {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a capture file this tool reads (magic {0:#010x}); expected pcap, pcapng, Network Monitor or an ETW .etl log, each maybe gzip-, zstd- or lz4-compressed")]
    UnknownFormat(u32),
    #[error("{0}")]
    Decompress(compressed::DecompressError),
    #[error("file ends in the middle of a {0}")]
    Truncated(&'static str),
    #[error("corrupt {0}")]
    Corrupt(String),
}

impl SourceError {
    fn new(path: &Path, offset: u64, kind: SourceErrorKind) -> Self {
        SourceError {
            path: path.to_path_buf(),
            offset,
            kind,
        }
    }
}

/// Largest captured frame we accept. Real frames stay far below this (even offload aggregates
/// are under 1 MiB; Wireshark stops at 256 KiB); a larger length means a corrupt file, and
/// refusing it keeps one bad length field from making us allocate gigabytes.
pub const MAX_CAPLEN: u32 = 256 << 20;

/// Size of a read buffer (a [`Block`]); one grows only for a record larger than this. Small
/// enough that what one read() copies is still in the CPU's cache when the frames in it are
/// walked, and that the blocks in flight stay a few MiB (larger blocks only cost memory:
/// `benches/NOTES.md`).
const BUF_CAPACITY: usize = 64 << 10;
/// Most bytes one read() asks for. Reads much larger than this come back from the kernel
/// out of the CPU caches, so walking the frames right after costs a memory stall apiece.
const READ_CHUNK: usize = 64 << 10;

/// Reads one capture file, whatever its format, as a sequence of link-layer frames.
///
/// ```no_run
/// # use tlscensus::source::CaptureReader;
/// let mut reader = CaptureReader::open("trace.pcapng".as_ref())?;
/// while let Some(pkt) = reader.next_packet()? {
///     println!("{} {} bytes", pkt.frame_number, pkt.data.len());
/// }
/// # Ok::<(), tlscensus::source::SourceError>(())
/// ```
pub struct CaptureReader {
    input: Input,
    format: Format,
    done: bool,
}

enum Format {
    Pcap(pcap::PcapReader),
    PcapNg(pcapng::PcapNgReader),
    NetMon(netmon::NetMonReader),
    Etl(Box<etl::EtlReader>),
}

impl CaptureReader {
    /// Opens a capture file and reads its file header. `-` is standard input. A compressed
    /// file (or input) is decompressed as it is read.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        if is_stdin(path) {
            // A terminal would only wait for typing: say what `-` is for instead.
            if io::IsTerminal::is_terminal(&io::stdin()) {
                let why = "standard input is a terminal, not a capture: pipe one in, e.g. \
                           `tcpdump -w - | tlscensus read -`";
                return Err(SourceError::new(
                    path,
                    0,
                    SourceErrorKind::Io(io::Error::other(why)),
                ));
            }
            let stdin = Box::new(io::stdin());
            return Self::with_input(Input::new(path.to_path_buf(), Src::Stream(stdin)));
        }
        let file =
            File::open(path).map_err(|e| SourceError::new(path, 0, SourceErrorKind::Io(e)))?;
        Self::with_input(Input::new(path.to_path_buf(), Src::File(file)))
    }

    /// Reads a capture from any byte stream (a pipe, stdin, a decompressor). `label` names it in
    /// errors. A Network Monitor file needs random access (its frame table is at the end), so
    /// one read this way is held in memory whole.
    pub fn from_reader(label: PathBuf, r: Box<dyn Read + Send>) -> Result<Self, SourceError> {
        Self::with_input(Input::new(label, Src::Stream(r)))
    }

    fn with_input(mut input: Input) -> Result<Self, SourceError> {
        if !input.fill(4)? {
            return Err(input.error(0, SourceErrorKind::Truncated("file header")));
        }
        if let Some(kind) = compressed::Compression::detect(input.avail()) {
            input = input.decompressed(kind);
            if !input.fill(4)? {
                let what = "file header (after decompression)";
                return Err(input.error(0, SourceErrorKind::Truncated(what)));
            }
        }
        let magic = bytes::<4>(input.avail(), 0);
        let format = match magic {
            pcap::MAGIC_LE_US | pcap::MAGIC_LE_NS | pcap::MAGIC_BE_US | pcap::MAGIC_BE_NS => {
                Format::Pcap(pcap::PcapReader::open(&mut input)?)
            }
            pcapng::SHB_MAGIC => Format::PcapNg(pcapng::PcapNgReader::open(&mut input)?),
            netmon::MAGIC => Format::NetMon(netmon::NetMonReader::open(&mut input)?),
            _ => {
                // ETW logs have no magic number: their first buffer's header and first
                // event are recognised instead.
                input.fill(etl::PROBE_LEN)?;
                if !etl::looks_like(input.avail()) {
                    let kind = SourceErrorKind::UnknownFormat(u32::from_be_bytes(magic));
                    return Err(input.error(0, kind));
                }
                Format::Etl(Box::new(etl::EtlReader::open(&mut input)?))
            }
        };
        Ok(CaptureReader {
            input,
            format,
            done: false,
        })
    }

    /// The next frame, or `Ok(None)` at the end of the file. The frame borrows the reader's
    /// buffer, so it must be dropped before the next call. After an error the reader is
    /// finished: every later call returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        self.input.release();
        let input = &mut self.input;
        let result = match &mut self.format {
            Format::Pcap(r) => r.next(input),
            Format::PcapNg(r) => r.next(input),
            Format::NetMon(r) => r.next(input),
            Format::Etl(r) => r.next(input),
        };
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    /// The buffer holding the frame last handed out, to share with other threads, and the
    /// frame's offset in it. The frame is named by its address (`data.as_ptr() as usize`) and
    /// length, since the frame's own borrow must end before this call. `None` when the frame
    /// is not in the buffer (never for the formats read today; callers then copy it).
    pub fn block_of(&self, frame_addr: usize, len: usize) -> Option<(&Arc<Block>, usize)> {
        let buf = match &self.format {
            // ETW frames live in the reader's decompressed buffers, not in the file's bytes.
            Format::Etl(r) => r.block()?,
            _ => &self.input.buf,
        };
        let at = frame_addr.checked_sub(buf.as_ptr() as usize)?;
        (at + len <= buf.len()).then_some((buf, at))
    }

    /// For a classic pcap file on disk, how its records read and the file's length: enough
    /// for several threads to read parts of it at once (each from a record boundary another
    /// found). `None` for other formats and for streams, which only read in order.
    pub fn pcap_layout(&self) -> Option<(pcap::RecordLayout, u64)> {
        let Format::Pcap(reader) = &self.format else {
            return None;
        };
        let Src::File(file) = &self.input.src else {
            return None;
        };
        let meta = file.metadata().ok().filter(|m| m.is_file())?;
        Some((reader.layout, meta.len()))
    }

    /// The file's path (or the label given to [`CaptureReader::from_reader`]).
    pub fn path(&self) -> &Path {
        &self.input.path
    }

    /// Offset in the file just past the last record read: how far reading has got. For a
    /// compressed file, the compressed bytes read so far (decompression reads a little ahead).
    pub fn bytes_consumed(&self) -> u64 {
        if let Some(read) = &self.input.compressed_read {
            return read.load(std::sync::atomic::Ordering::Relaxed);
        }
        self.input.offset() + self.input.pending as u64
    }

    /// Short name of the file format: `"pcap"`, `"pcapng"`, `"netmon2"` or `"etl"`.
    pub fn format(&self) -> &'static str {
        match self.format {
            Format::Pcap(_) => "pcap",
            Format::PcapNg(_) => "pcapng",
            Format::NetMon(_) => "netmon2",
            Format::Etl(_) => "etl",
        }
    }

    /// The format's own counters so far, by name, for `--stats`: records skipped (pcapng,
    /// Network Monitor); for ETW logs, packet events, copies removed, drops, fragments
    /// joined, other events.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        match &self.format {
            Format::Pcap(_) => Vec::new(),
            Format::PcapNg(r) => vec![("pcapng records skipped", r.skipped)],
            Format::NetMon(r) => vec![("netmon records skipped", r.skipped)],
            Format::Etl(r) => r.counters.named(),
        }
    }

    /// What the user should know about the file once it is read, each said once: for ETW
    /// logs whose packets were cut by a snap length, how to capture them whole.
    pub fn notes(&self) -> Vec<String> {
        match &self.format {
            Format::Etl(r) => r.notes(),
            _ => Vec::new(),
        }
    }

    /// Records that count in Wireshark's frame numbering but are not handed out: Network
    /// Monitor event, filter and adapter-list records and media types with no LINKTYPE_
    /// equivalent; pcapng systemd journal and custom blocks. Frames yielded + skipped =
    /// Wireshark's frame count.
    pub fn skipped_frames(&self) -> u64 {
        match &self.format {
            Format::Pcap(_) => 0,
            Format::PcapNg(r) => r.skipped,
            Format::NetMon(r) => r.skipped,
            Format::Etl(_) => 0,
        }
    }
}

/// Whether `path` names standard input (`-`), which can be read only once: callers that
/// would open a file twice (to order files, to plan split reading) leave it alone.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `path` can only be read once, in order: standard input, a pipe or a device.
pub fn is_stream(path: &Path) -> bool {
    is_stdin(path) || std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// Timestamp (ns since the Unix epoch) of the first frame of a capture file, `None` if it holds
/// no frame. Lets the engine put several rotated files into time order.
pub fn first_timestamp(path: &Path) -> Result<Option<i64>, SourceError> {
    let mut reader = CaptureReader::open(path)?;
    let ts = reader.next_packet()?.map(|p| p.ts_nanos);
    Ok(ts)
}

/// Where the bytes come from: a file (seekable) or any stream.
enum Src {
    File(File),
    Stream(Box<dyn Read + Send>),
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Src::File(f) => f.read(buf),
            Src::Stream(r) => r.read(buf),
        }
    }
}

/// A read buffer that frames handed to other threads keep alive ([`CaptureReader::block`]).
/// While any other thread holds it, the reader never writes to it again: it moves on to a
/// fresh buffer, copying over only the unread tail. When the last holder drops it, its memory
/// goes back to the reader's pool, so steady-state reading allocates nothing.
///
/// Split reading over mapped files makes blocks of mapped bytes instead ([`Block::mapped`]):
/// the same frames, unmapped when the last holder drops the block.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    pool: Option<Sender<Vec<u8>>>,
    /// Mapped bytes instead: the mapping's bytes from the offset on.
    mapping: Option<(Arc<mapped::Mapping>, usize)>,
}

impl Block {
    /// A block whose bytes are those of `mapping` from `from` on (several blocks may share
    /// one mapping; the last one dropped unmaps it).
    pub fn mapped(mapping: Arc<mapped::Mapping>, from: usize) -> Arc<Block> {
        Arc::new(Block {
            data: Vec::new(),
            pool: None,
            mapping: Some((mapping, from)),
        })
    }
}

impl std::ops::Deref for Block {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.mapping {
            Some((mapping, from)) => &mapping.bytes()[*from..],
            None => &self.data,
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            let _ = pool.try_send(std::mem::take(&mut self.data));
        }
    }
}

/// Buffers for [`Block`]s filled from outside a file reader (live capture copies each frame
/// the capture library lends it into one). A sealed block's memory comes back here when the
/// last thread holding it lets go, so steady-state capture allocates nothing.
#[derive(Debug, Clone)]
pub struct BlockPool {
    returned: Sender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    capacity: usize,
}

impl BlockPool {
    /// A pool handing out empty buffers of at least `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let (returned, spare) = crossbeam_channel::bounded(POOL_BUFFERS);
        BlockPool {
            returned,
            spare,
            capacity,
        }
    }

    /// An empty buffer to append frames to: a returned one when there is one.
    pub fn take(&self) -> Vec<u8> {
        let mut data = self.spare.try_recv().unwrap_or_default();
        data.clear();
        data.reserve(self.capacity);
        data
    }

    /// A buffer of at least `len` bytes to read into, whatever they hold: a returned buffer
    /// keeps its old bytes rather than being zeroed again (zeroing would cost as much as
    /// the read that overwrites them).
    pub fn take_filled(&self, len: usize) -> Vec<u8> {
        let mut data = self.spare.try_recv().unwrap_or_default();
        if data.len() < len {
            data.resize(len, 0);
        }
        data
    }

    /// Freeze a filled buffer into a shareable block; its memory returns to this pool when
    /// the block is dropped.
    pub fn seal(&self, data: Vec<u8>) -> Arc<Block> {
        Arc::new(Block {
            data,
            pool: Some(self.returned.clone()),
            mapping: None,
        })
    }
}

/// Spare buffers kept for reuse once other threads release them: about what the batches in
/// flight hold (the pipeline's QUEUE_DEPTH flushes of FLUSH_EVERY frames, some 4 MiB). More
/// would only keep memory that a burst once needed.
const POOL_BUFFERS: usize = 96;

/// The read buffer shared by all formats: `buf[start..end]` holds file bytes from offset
/// `base + start` on. Records are handed out as slices of it; the record last handed out stays
/// valid until the next call, when its `pending` length is released.
pub(crate) struct Input {
    path: PathBuf,
    src: Src,
    buf: Arc<Block>,
    /// Buffers returned by other threads' dropped [`Block`]s.
    spare: Receiver<Vec<u8>>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Length of the record last handed out by [`Input::take`], released by the next call.
    pending: usize,
    eof: bool,
    /// For a compressed input, the compressed bytes read from the file so far.
    compressed_read: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Input {
    fn new(path: PathBuf, src: Src) -> Self {
        let (pool, spare) = crossbeam_channel::bounded(POOL_BUFFERS);
        Input {
            path,
            src,
            buf: Arc::new(Block {
                data: vec![0; BUF_CAPACITY],
                pool: Some(pool),
                mapping: None,
            }),
            spare,
            start: 0,
            end: 0,
            base: 0,
            pending: 0,
            eof: false,
            compressed_read: None,
        }
    }

    /// File offset of the first unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The buffered, unread bytes.
    pub(crate) fn avail(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The same input decompressed: its buffered bytes and the rest of its source, through
    /// `kind`'s decompressor. Offsets from here on are offsets in the decompressed bytes.
    fn decompressed(self, kind: compressed::Compression) -> Input {
        let head = self.avail().to_vec();
        let src: Box<dyn Read + Send> = match self.src {
            Src::File(f) => Box::new(io::Cursor::new(head).chain(f)),
            Src::Stream(s) => Box::new(io::Cursor::new(head).chain(s)),
        };
        let (decompressed, read_so_far) = compressed::decompress(kind, src);
        let mut input = Input::new(self.path, Src::Stream(decompressed));
        input.compressed_read = Some(read_so_far);
        input
    }

    pub(crate) fn error(&self, offset: u64, kind: SourceErrorKind) -> SourceError {
        SourceError::new(&self.path, offset, kind)
    }

    pub(crate) fn corrupt(&self, offset: u64, what: String) -> SourceError {
        self.error(offset, SourceErrorKind::Corrupt(what))
    }

    /// Makes at least `n` unread bytes available; `Ok(false)` if the file ends first.
    pub(crate) fn fill(&mut self, n: usize) -> Result<bool, SourceError> {
        if self.end - self.start >= n || self.eof {
            return Ok(self.end - self.start >= n);
        }
        let shared = Arc::get_mut(&mut self.buf).is_none();
        if shared || n > self.buf.len() - self.start {
            self.move_tail_to_front(n);
        }
        while self.end - self.start < n {
            let Some(block) = Arc::get_mut(&mut self.buf) else {
                break; // unreachable: move_tail_to_front left the buffer unshared
            };
            if self.end == block.data.len() {
                // Grow by doubling as the bytes arrive, never straight to what a length field
                // claims: a corrupt 30-byte file must not cost 256 MiB.
                let need = (self.start + n).next_power_of_two();
                block.data.resize((block.data.len() * 2).min(need), 0);
            }
            let chunk_end = block.data.len().min(self.end + READ_CHUNK);
            match self.src.read(&mut block.data[self.end..chunk_end]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(true)
    }

    /// A failed read: a damaged compressed stream is reported at the end of the bytes it
    /// gave (all of them good), any other error where reading stands.
    fn read_error(&mut self, e: io::Error) -> SourceError {
        if compressed::decompress_error(&e).is_none() {
            return self.error(self.offset(), SourceErrorKind::Io(e));
        }
        // Nothing more can come from a stream its decompressor gave up on.
        self.eof = true;
        let end = self.base + self.end as u64;
        match e
            .into_inner()
            .map(|inner| inner.downcast::<compressed::DecompressError>())
        {
            Some(Ok(d)) => self.error(end, SourceErrorKind::Decompress(*d)),
            _ => unreachable!("checked just above"),
        }
    }

    /// Start the buffer over with the unread bytes at its front, in room for `n` if the
    /// buffer is that large already ([`Input::fill`] grows it as bytes arrive). A buffer
    /// other threads still read from is left to them; the tail goes to a fresh one.
    fn move_tail_to_front(&mut self, n: usize) {
        let want = n.min(self.buf.len()).max(BUF_CAPACITY).next_power_of_two();
        match Arc::get_mut(&mut self.buf) {
            Some(block) => {
                block.data.copy_within(self.start..self.end, 0);
                if block.data.len() < want {
                    block.data.resize(want, 0);
                }
            }
            None => {
                let mut data = self.spare.try_recv().unwrap_or_default();
                if data.len() < want {
                    data.resize(want, 0);
                }
                data[..self.end - self.start].copy_from_slice(&self.buf[self.start..self.end]);
                let pool = self.buf.pool.clone();
                self.buf = Arc::new(Block {
                    data,
                    pool,
                    mapping: None,
                });
            }
        }
        self.base += self.start as u64;
        self.end -= self.start;
        self.start = 0;
    }

    /// Skips `n` buffered bytes (call [`Input::fill`] first).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Hands out the next `n` buffered bytes (call [`Input::fill`] first). They are consumed
    /// on the next [`Input::release`], so the slice can be lent to the caller meanwhile.
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.end - self.start);
        self.pending = n;
        &self.buf[self.start..self.start + n]
    }

    fn release(&mut self) {
        self.consume(self.pending);
        self.pending = 0;
    }

    /// Total length of the input. A stream (or a pipe opened by name) is read to its end into
    /// the buffer, where it stays, so that later seeks land within it.
    pub(crate) fn total_len(&mut self) -> Result<u64, SourceError> {
        if let Src::File(f) = &self.src {
            match f.metadata() {
                Ok(m) if m.is_file() => return Ok(m.len()),
                Ok(_) => {}
                Err(e) => return Err(self.error(0, SourceErrorKind::Io(e))),
            }
        }
        while !self.eof {
            let want = (self.end - self.start).saturating_mul(2).max(BUF_CAPACITY);
            self.fill(want)?;
        }
        Ok(self.base + self.end as u64)
    }

    /// Moves the read position to file offset `pos`.
    pub(crate) fn seek(&mut self, pos: u64) -> Result<(), SourceError> {
        self.release();
        if let Some(rel) = pos.checked_sub(self.base) {
            if rel <= self.end as u64 {
                self.start = rel as usize;
                return Ok(());
            }
        }
        match &mut self.src {
            Src::File(f) => {
                if let Err(e) = f.seek(SeekFrom::Start(pos)) {
                    return Err(self.error(pos, SourceErrorKind::Io(e)));
                }
                self.base = pos;
                self.start = 0;
                self.end = 0;
                self.eof = false;
                Ok(())
            }
            Src::Stream(_) => {
                // Only reached for an offset past the end of a stream read whole.
                let kind = io::Error::new(io::ErrorKind::UnexpectedEof, "seek past end of input");
                Err(self.error(pos, SourceErrorKind::Io(kind)))
            }
        }
    }
}

/// Byte order of the multi-byte fields of a file or pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(crate) fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = bytes::<2>(b, at);
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    pub(crate) fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = bytes::<4>(b, at);
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    pub(crate) fn u64(self, b: &[u8], at: usize) -> u64 {
        let a = bytes::<8>(b, at);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// `N` bytes of `b` from `at`. Callers check lengths first; a short slice reads as zeros
/// rather than panicking.
pub(crate) fn bytes<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0; N];
    if let Some(s) = b.get(at..at.saturating_add(N)) {
        a.copy_from_slice(s);
    }
    a
}

/// Clamps a nanosecond count to the `i64` range (years 1677 to 2262). Only a corrupt or
/// hand-made timestamp gets there; the frame is still worth reading.
pub(crate) fn clamp_nanos(ns: i128) -> i64 {
    ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}
