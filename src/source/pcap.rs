//! Classic libpcap files, as described in draft-ietf-opsawg-pcap ("PCAP Capture File Format").
//!
//! A 24-byte file header (§4) is followed by packet records (§5): a 16-byte header (seconds,
//! sub-seconds, captured length, original length) and the captured bytes. The magic number
//! says the byte order of the whole file and whether sub-seconds are µs (`0xA1B2C3D4`) or ns
//! (`0xA1B23C4D`).
//!
//! Hand-written rather than built on `pcap-parser`: that crate's streaming reader reports a
//! short read as `Incomplete` with no file position and would ask us to grow the buffer to
//! whatever a corrupt length claims before we could reject it; we need the offset of the
//! offending record in every error, and one buffer layer ([`super::Input`]) that also serves
//! Network Monitor's random access. What remains is a few dozen lines.

use super::{bytes, Endian, Input, Packet, SourceError, SourceErrorKind, MAX_CAPLEN};

/// The file's first four bytes, for each byte order and time resolution.
pub(crate) const MAGIC_LE_US: [u8; 4] = [0xD4, 0xC3, 0xB2, 0xA1];
pub(crate) const MAGIC_LE_NS: [u8; 4] = [0x4D, 0x3C, 0xB2, 0xA1];
pub(crate) const MAGIC_BE_US: [u8; 4] = [0xA1, 0xB2, 0xC3, 0xD4];
pub(crate) const MAGIC_BE_NS: [u8; 4] = [0xA1, 0xB2, 0x3C, 0x4D];

/// Where the first packet record starts: just past the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Length of a packet record's header; the captured bytes follow it.
pub const RECORD_HEADER_LEN: usize = 16;

/// How a file's packet records read: what its file header said. Every record has the same
/// layout, so a reader that knows where a record starts can read it without the records
/// before it (the pipeline's workers each walk their own share of a file with it).
#[derive(Debug, Clone, Copy)]
pub struct RecordLayout {
    endian: Endian,
    /// Nanoseconds per unit of the sub-second field: 1000 (µs files) or 1 (ns files).
    frac_scale: i64,
    /// LINKTYPE_ of every frame in the file.
    pub link_type: u32,
}

/// A packet record's header, read.
#[derive(Debug, Clone, Copy)]
pub struct RecordHeader {
    pub ts_nanos: i64,
    /// Bytes of the frame in the file (they follow the header).
    pub caplen: u32,
    pub orig_len: u32,
}

impl RecordLayout {
    /// The layout a file header (at least [`FILE_HEADER_LEN`] bytes) announces; `None` when
    /// it does not begin with one of pcap's magic numbers. The version is not checked here.
    pub fn from_file_header(h: &[u8]) -> Option<RecordLayout> {
        if h.len() < FILE_HEADER_LEN {
            return None;
        }
        let magic = bytes::<4>(h, 0);
        let endian = match magic {
            MAGIC_LE_US | MAGIC_LE_NS => Endian::Little,
            MAGIC_BE_US | MAGIC_BE_NS => Endian::Big,
            _ => return None,
        };
        let frac_scale = if magic == MAGIC_LE_NS || magic == MAGIC_BE_NS {
            1
        } else {
            1000
        };
        // §4: the link type is the low 16 bits; the upper bits may carry the FCS length.
        let link_type = endian.u32(h, 20) & 0xFFFF;
        Some(RecordLayout {
            endian,
            frac_scale,
            link_type,
        })
    }

    /// Read the record header at the front of `h` (at least [`RECORD_HEADER_LEN`] bytes;
    /// a shorter slice reads as zeros).
    #[inline]
    pub fn header(&self, h: &[u8]) -> RecordHeader {
        let e = self.endian;
        let (secs, frac) = (e.u32(h, 0), e.u32(h, 4));
        RecordHeader {
            // Cannot overflow: u32::MAX s is about 4.3e18 ns, half of i64::MAX.
            ts_nanos: i64::from(secs) * 1_000_000_000 + i64::from(frac) * self.frac_scale,
            caplen: e.u32(h, 8),
            orig_len: e.u32(h, 12),
        }
    }

    /// The 32-bit field at `offset` of a record header, in the file's byte order.
    #[inline]
    pub fn field(&self, header: &[u8], offset: usize) -> u32 {
        self.endian.u32(header, offset)
    }

    /// One more than the largest sub-second field a record can hold: 10⁶ for µs files, 10⁹
    /// for ns files.
    pub fn fraction_limit(&self) -> u32 {
        (1_000_000_000 / self.frac_scale) as u32
    }

    /// The error for a captured length no real frame has (see [`MAX_CAPLEN`]), `None` when
    /// the length is acceptable.
    pub fn check_caplen(caplen: u32) -> Option<String> {
        (caplen > MAX_CAPLEN)
            .then(|| format!("packet record: captured length {caplen} exceeds {MAX_CAPLEN}"))
    }
}

pub(crate) struct PcapReader {
    pub(crate) layout: RecordLayout,
    frames: u64,
}

impl PcapReader {
    /// Reads the file header; `input` is at offset 0 with the magic number buffered.
    pub(crate) fn open(input: &mut Input) -> Result<Self, SourceError> {
        if !input.fill(FILE_HEADER_LEN)? {
            return Err(input.error(0, SourceErrorKind::Truncated("file header")));
        }
        let h = input.avail();
        let Some(layout) = RecordLayout::from_file_header(h) else {
            return Err(input.corrupt(0, "file header: not a pcap magic number".into()));
        };
        let (major, minor) = (layout.endian.u16(h, 4), layout.endian.u16(h, 6));
        if major != 2 {
            return Err(input.corrupt(0, format!("file header: pcap version {major}.{minor}")));
        }
        input.consume(FILE_HEADER_LEN);
        Ok(PcapReader { layout, frames: 0 })
    }

    pub(crate) fn next<'a>(
        &mut self,
        input: &'a mut Input,
    ) -> Result<Option<Packet<'a>>, SourceError> {
        let at = input.offset();
        if !input.fill(RECORD_HEADER_LEN)? {
            if input.avail().is_empty() {
                return Ok(None);
            }
            return Err(input.error(at, SourceErrorKind::Truncated("packet record")));
        }
        let header = self.layout.header(input.avail());
        if let Some(what) = RecordLayout::check_caplen(header.caplen) {
            return Err(input.corrupt(at, what));
        }
        let total = RECORD_HEADER_LEN + header.caplen as usize;
        if !input.fill(total)? {
            return Err(input.error(at, SourceErrorKind::Truncated("packet record")));
        }
        self.frames += 1;
        let record = input.take(total);
        Ok(Some(Packet {
            ts_nanos: header.ts_nanos,
            link_type: self.layout.link_type,
            data: record.get(RECORD_HEADER_LEN..).unwrap_or_default(),
            orig_len: header.orig_len,
            frame_number: self.frames,
            interface: None,
            direction: None,
        }))
    }
}
