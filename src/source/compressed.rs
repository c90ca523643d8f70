//! Compressed captures: gzip, zstd and lz4 frame streams, recognised by their magic number and
//! decompressed on the fly in front of the format readers.
//!
//! Why here and not in each reader: a capture's format is recognised from its first
//! decompressed bytes, so decompression sits between the file (or pipe) and the reader,
//! which never learns that its bytes were compressed. Nothing is held whole: each
//! decompressor keeps its format's window (gzip 32 KiB, lz4 64 KiB, zstd the frame's window,
//! refused above [`MAX_ZSTD_WINDOW`]) plus the chunks in flight between threads.
//!
//! Decompression runs on a thread of its own ([`Pipe`]), so that it overlaps with the
//! reading of the records it yields: on a compressed capture it is most of the work.
//!
//! A stream that is corrupt or ends early turns into a [`DecompressError`], carried inside the
//! `io::Error` of the read that met it; everything decompressed before it is handed out first.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

/// The compression formats recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// RFC 1952 gzip, one member or several concatenated (`cat a.gz b.gz`, `tcpdump -z gzip`).
    Gzip,
    /// RFC 8878 Zstandard frames, any number, skippable frames skipped.
    Zstd,
    /// LZ4 frames (`lz4` command, Wireshark's `.lz4` output), any number, skippable frames
    /// skipped.
    Lz4,
}

/// First bytes of each format (gzip: ID1 ID2; zstd and lz4: little-endian magic numbers).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Largest zstd window accepted: the same ceiling as the decoder's own check for every frame
/// but the first (zstd's defaults stay at 8 MiB and below; `zstd --long=27` and larger
/// windows are refused, naming the size). It bounds what one stream can make us hold.
pub const MAX_ZSTD_WINDOW: u64 = 100 << 20;

/// Size of one chunk of decompressed bytes handed from the decompressing thread.
const CHUNK: usize = 256 << 10;
/// Chunks waiting for the reader at most: decompression stays at most ~1 MiB ahead.
const CHUNKS_IN_FLIGHT: usize = 4;

impl Compression {
    /// The compression whose magic number `head` starts with (`head` holds at least 4 bytes
    /// when the input has them).
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if head.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else if head.starts_with(&LZ4_MAGIC) {
            Some(Compression::Lz4)
        } else {
            None
        }
    }

    /// The format's usual name, as in error messages and `--stats`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

/// Why a compressed stream could not be decompressed further.
#[derive(Debug, thiserror::Error)]
#[error(
    "{format} stream {what} near compressed byte {at} ({reason}); the decompressed capture stops"
)]
pub struct DecompressError {
    pub format: &'static str,
    /// `"corrupt"` or `"cut short"`.
    pub what: &'static str,
    /// Compressed bytes read from the file when the damage was found (decompressors read
    /// ahead, so the damage lies at or a little before this offset).
    pub at: u64,
    pub reason: String,
}

/// The decompressed bytes of `src` (whose first bytes are `kind`'s magic), decompressed on a
/// thread of its own, and the count of compressed bytes read so far (for progress).
pub fn decompress(
    kind: Compression,
    src: Box<dyn Read + Send>,
) -> (Box<dyn Read + Send>, Arc<AtomicU64>) {
    let read_so_far = Arc::new(AtomicU64::new(0));
    let counted = BufReader::with_capacity(
        64 << 10,
        Counted {
            inner: src,
            count: Arc::clone(&read_so_far),
        },
    );
    let decoder: Box<dyn Read + Send> = match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(counted)),
        Compression::Zstd => Box::new(ZstdFrames::new(counted)),
        Compression::Lz4 => Box::new(Lz4Frames::new(counted)),
    };
    let pipe = Pipe::spawn(Described {
        inner: decoder,
        format: kind.name(),
        read_so_far: Arc::clone(&read_so_far),
    });
    (Box::new(pipe), read_so_far)
}

/// The compressed source, counting the bytes read from it (for error offsets).
struct Counted {
    inner: Box<dyn Read + Send>,
    count: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A decompressor whose errors are turned into [`DecompressError`]s naming the format and the
/// compressed offset.
struct Described {
    inner: Box<dyn Read + Send>,
    format: &'static str,
    read_so_far: Arc<AtomicU64>,
}

impl Read for Described {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                return e;
            }
            let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                "cut short"
            } else {
                "corrupt"
            };
            let err = DecompressError {
                format: self.format,
                what,
                at: self.read_so_far.load(Ordering::Relaxed),
                reason: e.to_string(),
            };
            io::Error::new(e.kind(), err)
        })
    }
}

/// The [`DecompressError`] an I/O error carries, if it came from a decompressor.
pub fn decompress_error(e: &io::Error) -> Option<&DecompressError> {
    e.get_ref()?.downcast_ref::<DecompressError>()
}

/// Zstandard frames one after another, as RFC 8878 section 3.1 allows: ruzstd's decoder
/// reads one frame, and verifies neither the window size of the first frame nor the
/// content checksum; both are done here.
struct ZstdFrames<R: BufRead> {
    src: R,
    decoder: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
    /// Whether the current frame ends with a content checksum (RFC 8878 3.1.1.1.1).
    has_checksum: bool,
    /// The next block, read whole before the decoder sees it.
    block: Vec<u8>,
    /// The error met while decoding, returned once the bytes before it are handed out.
    failed: Option<io::Error>,
}

/// Largest block content (RFC 8878 3.1.1.2.4: Block_Maximum_Size is at most 128 KiB).
const ZSTD_MAX_BLOCK: usize = 128 << 10;
/// An empty Raw block that is the frame's last (RFC 8878 3.1.1.2: Last_Block 1, type 0,
/// size 0): what ends a frame cut short, so the decoder hands out its whole window.
const ZSTD_EMPTY_LAST_BLOCK: [u8; 3] = [0x01, 0x00, 0x00];

/// First magic of the skippable frames (0x184D2A50 to 0x184D2A5F), which hold no content.
const ZSTD_SKIPPABLE_FIRST: u32 = 0x184D_2A50;

impl<R: BufRead> ZstdFrames<R> {
    fn new(src: R) -> Self {
        ZstdFrames {
            src,
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
            has_checksum: false,
            block: Vec::new(),
            failed: None,
        }
    }

    /// Start the next frame; `Ok(false)` at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.src.fill_buf()?.is_empty() {
                return Ok(false);
            }
            let mut header = [0u8; 18];
            self.src.read_exact(&mut header[..5])?;
            let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            if magic & 0xFFFF_FFF0 == ZSTD_SKIPPABLE_FIRST {
                self.src.read_exact(&mut header[5..8])?;
                let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
                let skipped = io::copy(&mut (&mut self.src).take(len.into()), &mut io::sink())?;
                if skipped < len.into() {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                continue;
            }
            if header[..4] != ZSTD_MAGIC {
                return Err(invalid(format!(
                    "no frame magic number where a frame starts (found {magic:#010x})"
                )));
            }
            // Frame header (RFC 8878 section 3.1.1.1): descriptor, then the window
            // descriptor, dictionary id and content size, each present or not.
            let descriptor = header[4];
            let single_segment = descriptor & 0x20 != 0;
            let size_flag = descriptor >> 6;
            let size_len = match (size_flag, single_segment) {
                (0, false) => 0,
                (0, true) => 1,
                (1, _) => 2,
                (2, _) => 4,
                _ => 8,
            };
            let dict_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
            let window_len = usize::from(!single_segment);
            let header_len = 5 + window_len + dict_len + size_len;
            self.src.read_exact(&mut header[5..header_len])?;
            let window = if single_segment {
                let at = 5 + dict_len;
                let mut size = [0u8; 8];
                size[..size_len].copy_from_slice(&header[at..at + size_len]);
                u64::from_le_bytes(size) + if size_len == 2 { 256 } else { 0 }
            } else {
                let exponent = u64::from(header[5] >> 3);
                let mantissa = u64::from(header[5] & 7);
                let base = 1u64 << (10 + exponent);
                base + base / 8 * mantissa
            };
            if window > MAX_ZSTD_WINDOW {
                return Err(invalid(format!(
                    "a frame asks for a {window}-byte window, over the {MAX_ZSTD_WINDOW}-byte limit"
                )));
            }
            self.decoder.init(&header[..header_len]).map_err(invalid)?;
            self.in_frame = true;
            self.has_checksum = descriptor & 0x04 != 0;
            return Ok(true);
        }
    }

    /// Decode the frame's next block. The block (and the checksum after the last one) is
    /// read whole first, so a stream cut inside it never reaches the decoder: the frame is
    /// ended there with an empty last block instead, which lets the decoder hand out the
    /// window it keeps for back-references (up to the whole frame) rather than lose it, and
    /// the cut is reported once those bytes are out.
    fn decode_next_block(&mut self) -> io::Result<()> {
        use ruzstd::decoding::BlockDecodingStrategy::UptoBlocks;
        self.block.clear();
        let mut cut = !read_up_to(&mut self.src, &mut self.block, 3)?;
        if cut {
            self.block.clear();
        }
        let mut last = false;
        if !cut {
            let header = u32::from_le_bytes([self.block[0], self.block[1], self.block[2], 0]);
            last = header & 1 != 0;
            let size = (header >> 3) as usize;
            let content = match (header >> 1) & 3 {
                1 => 1, // RLE: one byte, repeated `size` times
                3 => return Err(invalid("a block of the reserved type")),
                _ => size,
            };
            if size > ZSTD_MAX_BLOCK {
                return Err(invalid(format!(
                    "a {size}-byte block, over the {ZSTD_MAX_BLOCK}-byte maximum"
                )));
            }
            let checksum = if last && self.has_checksum { 4 } else { 0 };
            let whole = 3 + content + checksum;
            if !read_up_to(&mut self.src, &mut self.block, whole)? {
                // Cut: a block whose content is whole (only the checksum after it is
                // missing) is still decoded, its checksum left unchecked; a block cut in its
                // content is dropped.
                cut = true;
                if self.block.len() < 3 + content {
                    self.block.clear();
                } else {
                    self.block.resize(whole, 0);
                }
            }
        }
        if cut && self.block.is_empty() {
            self.block.extend_from_slice(&ZSTD_EMPTY_LAST_BLOCK);
            if self.has_checksum {
                self.block.extend_from_slice(&[0; 4]);
            }
        }
        if let Err(e) = self
            .decoder
            .decode_blocks(&mut self.block.as_slice(), UptoBlocks(1))
        {
            return Err(zstd_error(e));
        }
        if cut {
            // The content checksum of a cut frame would only say so again.
            self.has_checksum = false;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                if last {
                    "the frame's content checksum is missing"
                } else {
                    "the stream ends inside a block"
                },
            ));
        }
        Ok(())
    }

    /// After a frame's last byte is handed out: its content checksum, where it has one.
    fn end_frame(&mut self) -> io::Result<()> {
        self.in_frame = false;
        if !self.has_checksum {
            return Ok(());
        }
        let stated = self.decoder.get_checksum_from_data();
        let computed = self.decoder.get_calculated_checksum();
        match (stated, computed) {
            (Some(stated), Some(computed)) if stated != computed => Err(invalid(format!(
                "content checksum {computed:#010x} where the frame states {stated:#010x}"
            ))),
            _ => Ok(()),
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.failed.is_some() {
                let n = self.decoder.read(buf)?;
                return match self.failed.take() {
                    Some(e) if n == 0 => Err(e),
                    failed => {
                        self.failed = failed;
                        Ok(n)
                    }
                };
            }
            if !self.in_frame && !self.next_frame()? {
                return Ok(0);
            }
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                if let Err(e) = self.decode_next_block() {
                    // The bytes decoded before the damage are handed out first.
                    self.failed = Some(e);
                    break;
                }
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.failed.is_none() {
                self.end_frame()?;
            }
        }
    }
}

/// Read from `src` onto `buf` until it holds `len` bytes; `false` if the stream ended first.
fn read_up_to(src: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> io::Result<bool> {
    let want = len.saturating_sub(buf.len()) as u64;
    let got = src.take(want).read_to_end(buf)?;
    Ok(got as u64 == want)
}

/// A cut stream reads as "cut short", anything else as corrupt.
fn zstd_error(e: ruzstd::decoding::errors::FrameDecoderError) -> io::Error {
    use ruzstd::decoding::errors::FrameDecoderError as E;
    match e {
        E::FailedToReadBlockHeader(_)
        | E::FailedToReadBlockBody(_)
        | E::FailedToReadChecksum(_) => io::Error::new(io::ErrorKind::UnexpectedEof, e),
        other => invalid(other),
    }
}

/// LZ4 frames one after another (the LZ4 Frame Format Description, v1.6.x), blocks
/// decompressed by lz4_flex. The framing is read here rather than by lz4_flex's frame
/// decoder because that one takes a stream cut between two blocks for its end.
struct Lz4Frames<R: BufRead> {
    src: R,
    frame: Option<Lz4Frame>,
    /// The block last decompressed, handed out from `at`.
    block: Vec<u8>,
    at: usize,
    /// Compressed block read from the source.
    packed: Vec<u8>,
    /// The last 64 KiB of the frame's content: what a dependent block refers back to.
    history: Vec<u8>,
}

/// What the current frame's descriptor says.
struct Lz4Frame {
    independent: bool,
    block_checksums: bool,
    content_hash: Option<twox_hash::XxHash32>,
    max_block: usize,
}

/// How far back an LZ4 block may refer.
const LZ4_WINDOW: usize = 64 << 10;
const LZ4_FRAME_MAGIC: u32 = 0x184D_2204;
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
const LZ4_SKIPPABLE_FIRST: u32 = 0x184D_2A50;

impl<R: BufRead> Lz4Frames<R> {
    fn new(src: R) -> Self {
        Lz4Frames {
            src,
            frame: None,
            block: Vec::new(),
            at: 0,
            packed: Vec::new(),
            history: Vec::new(),
        }
    }

    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.src.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read the next frame's header; `Ok(false)` at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.src.fill_buf()?.is_empty() {
                return Ok(false);
            }
            let magic = self.u32()?;
            if magic & 0xFFFF_FFF0 == LZ4_SKIPPABLE_FIRST {
                let len = u64::from(self.u32()?);
                let skipped = io::copy(&mut (&mut self.src).take(len), &mut io::sink())?;
                if skipped < len {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                continue;
            }
            if magic == LZ4_LEGACY_MAGIC {
                return Err(invalid(
                    "legacy LZ4 format (`lz4 -l`), which is not read; recompress without -l",
                ));
            }
            if magic != LZ4_FRAME_MAGIC {
                return Err(invalid(format!(
                    "no frame magic number where a frame starts (found {magic:#010x})"
                )));
            }
            let mut descriptor = [0u8; 15];
            self.src.read_exact(&mut descriptor[..2])?;
            let (flags, bd) = (descriptor[0], descriptor[1]);
            if flags >> 6 != 1 {
                return Err(invalid(format!(
                    "frame version {} (only 1 exists)",
                    flags >> 6
                )));
            }
            if flags & 1 != 0 {
                return Err(invalid(
                    "frame needs a dictionary, which a capture never has",
                ));
            }
            let mut len = 2;
            if flags & 0x08 != 0 {
                self.src.read_exact(&mut descriptor[len..len + 8])?;
                len += 8;
            }
            let mut check = [0u8; 1];
            self.src.read_exact(&mut check)?;
            let expected = (twox_hash::XxHash32::oneshot(0, &descriptor[..len]) >> 8) as u8;
            if check[0] != expected {
                return Err(invalid("frame descriptor checksum does not match"));
            }
            let max_block = match (bd >> 4) & 7 {
                4 => 64 << 10,
                5 => 256 << 10,
                6 => 1 << 20,
                7 => 4 << 20,
                other => return Err(invalid(format!("block maximum size code {other}"))),
            };
            self.history.clear();
            self.frame = Some(Lz4Frame {
                independent: flags & 0x20 != 0,
                block_checksums: flags & 0x10 != 0,
                content_hash: (flags & 0x04 != 0).then(|| twox_hash::XxHash32::with_seed(0)),
                max_block,
            });
            return Ok(true);
        }
    }

    /// Decompress the frame's next block into `self.block`; `Ok(false)` at the frame's end
    /// mark (its content checksum checked).
    fn next_block(&mut self) -> io::Result<bool> {
        if self.frame.is_none() {
            return Ok(false);
        }
        let word = self.u32()?;
        let Some(frame) = self.frame.as_mut() else {
            return Ok(false);
        };
        if word == 0 {
            let hash = frame.content_hash.take();
            self.frame = None;
            if let Some(hash) = hash {
                let stated = self.u32()?;
                let computed = hash.finish_32();
                if stated != computed {
                    return Err(invalid(format!(
                        "content checksum {computed:#010x} where the frame states {stated:#010x}"
                    )));
                }
            }
            return Ok(false);
        }
        let stored = word & 0x8000_0000 != 0;
        let len = (word & 0x7FFF_FFFF) as usize;
        if len > frame.max_block {
            return Err(invalid(format!(
                "block of {len} bytes in a frame of blocks up to {}",
                frame.max_block
            )));
        }
        let (max_block, independent, block_checksums) =
            (frame.max_block, frame.independent, frame.block_checksums);
        // A stored block is read straight into place; a compressed one into `packed` first.
        let target = if stored {
            &mut self.block
        } else {
            &mut self.packed
        };
        target.resize(len, 0);
        self.src.read_exact(target)?;
        if block_checksums {
            let stated = self.u32()?;
            let raw = if stored { &self.block } else { &self.packed };
            if stated != twox_hash::XxHash32::oneshot(0, raw) {
                return Err(invalid("block checksum does not match"));
            }
        }
        if !stored {
            self.block.resize(max_block, 0);
            let n = if independent {
                lz4_flex::block::decompress_into(&self.packed, &mut self.block)
            } else {
                lz4_flex::block::decompress_into_with_dict(
                    &self.packed,
                    &mut self.block,
                    &self.history,
                )
            }
            .map_err(|e| invalid(format!("block does not decompress: {e}")))?;
            self.block.truncate(n);
        }
        self.at = 0;
        if let Some(hash) = self.frame.as_mut().and_then(|f| f.content_hash.as_mut()) {
            std::hash::Hasher::write(hash, &self.block);
        }
        if !independent {
            let keep_old = LZ4_WINDOW
                .saturating_sub(self.block.len())
                .min(self.history.len());
            self.history.drain(..self.history.len() - keep_old);
            let from = self.block.len().saturating_sub(LZ4_WINDOW);
            self.history.extend_from_slice(&self.block[from..]);
        }
        Ok(true)
    }
}

impl<R: BufRead> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if self.frame.is_none() && !self.next_frame()? {
                return Ok(0);
            }
            self.next_block()?;
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Bytes read on a thread of their own and handed over in chunks through a bounded channel,
/// so that producing them (decompressing) overlaps with consuming them. The thread ends at
/// the end of the stream, at its first error (handed over after the bytes before it), or
/// when the reader is dropped.
struct Pipe {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied chunks, sent back for the thread to fill again.
    spent: Sender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Pipe {
    fn spawn(mut src: impl Read + Send + 'static) -> Pipe {
        let (to_reader, chunks) = crossbeam_channel::bounded(CHUNKS_IN_FLIGHT);
        let (spent, spent_rx) = crossbeam_channel::bounded::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
        std::thread::Builder::new()
            .name("tlscensus-unzip".into())
            .spawn(move || loop {
                let mut chunk = spent_rx.try_recv().unwrap_or_default();
                chunk.resize(CHUNK, 0);
                let mut filled = 0;
                let mut failed = None;
                while filled < CHUNK {
                    match src.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                chunk.truncate(filled);
                let last = filled < CHUNK;
                if filled > 0 && to_reader.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Some(e) = failed {
                    let _ = to_reader.send(Err(e));
                    return;
                }
                if last {
                    return;
                }
            })
            .expect("spawn decompression thread");
        Pipe {
            chunks,
            spent,
            current: Vec::new(),
            at: 0,
            ended: false,
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.current, chunk);
                    let _ = self.spent.try_send(spent);
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(_) => {
                    self.ended = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(kind: Compression, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(kind, Box::new(io::Cursor::new(bytes)))
            .0
            .read_to_end(&mut out)?;
        Ok(out)
    }

    /// RFC 8878 section 3.1.2: a skippable frame (magic 0x184D2A5?, 4-byte length) holds no
    /// content; an empty stream holds nothing.
    #[test]
    fn skippable_zstd_frames_hold_nothing() {
        let mut bytes = vec![0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
        assert_eq!(unpack(Compression::Zstd, bytes.clone()).unwrap(), b"");
        bytes.pop();
        let err = unpack(Compression::Zstd, bytes).unwrap_err();
        assert!(decompress_error(&err).is_some_and(|d| d.what == "cut short"));
    }

    /// A frame header claiming a 1 GiB window (descriptor 0x00, window byte 0xa0: exponent
    /// 20, so 2^(10+20)) is refused before anything is allocated.
    #[test]
    fn huge_zstd_window_is_refused() {
        let bytes = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 1, 0, 0];
        let err = unpack(Compression::Zstd, bytes).unwrap_err();
        let described = decompress_error(&err).expect("a decompression error");
        assert!(described.reason.contains("window"), "{described}");
    }
}
