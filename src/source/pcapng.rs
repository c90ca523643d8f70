//! pcapng files, as described in draft-ietf-opsawg-pcapng ("PCAP Next Generation (pcapng)
//! Capture File Format").
//!
//! A file is a sequence of blocks (§3.1: type, total length, body, total length again), grouped
//! into sections that each start with a Section Header Block (§4.1) whose byte-order magic sets
//! the byte order of the section; sections of either order may follow one another. Interface
//! Description Blocks (§4.2) declare link type, snap length and time-stamp resolution
//! (`if_tsresol`, `if_tsoffset`) of the interfaces of their section, numbered from 0. Frames come
//! in Enhanced Packet Blocks (§4.3), Simple Packet Blocks (§4.4, always interface 0) and the
//! obsolete Packet Block (Appendix A); every other block is skipped.
//!
//! Hand-written for the reasons given in [`super::pcap`]: exact error offsets, length checks
//! before buffering, and one shared buffer layer.

use super::{clamp_nanos, Endian, Input, Packet, SourceError, SourceErrorKind, MAX_CAPLEN};

/// Section Header Block type; a palindrome, so it reads the same in both byte orders.
pub(crate) const SHB_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

const IDB: u32 = 1;
const PACKET_BLOCK: u32 = 2;
const SPB: u32 = 3;
const ISB: u32 = 5;
const EPB: u32 = 6;
/// Blocks that are no frames to us but that Wireshark lists (and numbers) as records:
/// systemd Journal Export (§4.7) and Custom Blocks (§4.8, copyable or not).
const JOURNAL_EXPORT: u32 = 9;
const CUSTOM: u32 = 0x0000_0BAD;
const CUSTOM_NO_COPY: u32 = 0x4000_0BAD;

/// A block may hold a maximal frame plus its headers and options.
const MAX_BLOCK_LEN: u32 = MAX_CAPLEN + (1 << 20);

/// Interface options (§4.2) we read.
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

struct Interface {
    link_type: u32,
    snaplen: u32,
    /// Time-stamp units per second (`if_tsresol`; 10^6 by default).
    units_per_sec: u64,
    /// Seconds to add to every time stamp (`if_tsoffset`).
    offset_secs: i64,
}

impl Interface {
    fn nanos(&self, ts: u64) -> i64 {
        let ts = i128::from(ts);
        let ns = match self.units_per_sec {
            1_000_000_000 => ts,
            1_000_000 => ts * 1_000,
            units => ts * 1_000_000_000 / i128::from(units),
        };
        clamp_nanos(ns + i128::from(self.offset_secs) * 1_000_000_000)
    }
}

pub(crate) struct PcapNgReader {
    endian: Endian,
    interfaces: Vec<Interface>,
    frames: u64,
    pub(crate) skipped: u64,
}

/// What a block turned out to be, decided before the block is handed out or skipped.
enum Block {
    Skip,
    /// Numbered by Wireshark, but not a frame.
    Record,
    Frame {
        ts_nanos: i64,
        link_type: u32,
        data_at: usize,
        caplen: usize,
        orig_len: u32,
    },
}

impl PcapNgReader {
    /// Reads the first Section Header Block; `input` is at offset 0 with the magic buffered.
    pub(crate) fn open(input: &mut Input) -> Result<Self, SourceError> {
        let mut reader = PcapNgReader {
            endian: Endian::Little,
            interfaces: Vec::new(),
            frames: 0,
            skipped: 0,
        };
        reader.section_header(input)?;
        Ok(reader)
    }

    pub(crate) fn next<'a>(
        &mut self,
        input: &'a mut Input,
    ) -> Result<Option<Packet<'a>>, SourceError> {
        loop {
            let at = input.offset();
            if !input.fill(8)? {
                if input.avail().is_empty() {
                    return Ok(None);
                }
                return Err(input.error(at, SourceErrorKind::Truncated("block header")));
            }
            if input.avail().starts_with(&SHB_MAGIC) {
                self.section_header(input)?;
                continue;
            }
            let block_type = self.endian.u32(input.avail(), 0);
            let len = self.block_len(input, at, 12)?;
            if !input.fill(len)? {
                let kind = SourceErrorKind::Truncated(block_name(block_type));
                return Err(input.error(at, kind));
            }
            let parsed = self
                .parse_block(block_type, input.avail().get(..len).unwrap_or_default())
                .map_err(|what| input.corrupt(at, format!("{}: {what}", block_name(block_type))))?;
            match parsed {
                Block::Skip => input.consume(len),
                Block::Record => {
                    self.frames += 1;
                    self.skipped += 1;
                    input.consume(len);
                }
                Block::Frame {
                    ts_nanos,
                    link_type,
                    data_at,
                    caplen,
                    orig_len,
                } => {
                    self.frames += 1;
                    let block = input.take(len);
                    return Ok(Some(Packet {
                        ts_nanos,
                        link_type,
                        data: block.get(data_at..data_at + caplen).unwrap_or_default(),
                        orig_len,
                        frame_number: self.frames,
                        interface: None,
                        direction: None,
                    }));
                }
            }
        }
    }

    /// Checks the leading total length of the block at `at` (8 bytes buffered).
    fn block_len(&self, input: &Input, at: u64, min: u32) -> Result<usize, SourceError> {
        let len = self.endian.u32(input.avail(), 4);
        if len < min || len % 4 != 0 || len > MAX_BLOCK_LEN {
            let what = format!("block header: block length {len}");
            return Err(input.corrupt(at, what));
        }
        Ok(len as usize)
    }

    /// Starts a new section: its byte order, and no interfaces yet.
    fn section_header(&mut self, input: &mut Input) -> Result<(), SourceError> {
        const NAME: &str = "section header block";
        let at = input.offset();
        if !input.fill(12)? {
            return Err(input.error(at, SourceErrorKind::Truncated(NAME)));
        }
        self.endian = match input.avail().get(8..12) {
            Some([0x1A, 0x2B, 0x3C, 0x4D]) => Endian::Big,
            Some([0x4D, 0x3C, 0x2B, 0x1A]) => Endian::Little,
            _ => return Err(input.corrupt(at, format!("{NAME}: bad byte-order magic"))),
        };
        // Type, length, byte-order magic, version, section length, trailing length.
        let len = self.block_len(input, at, 28)?;
        if !input.fill(len)? {
            return Err(input.error(at, SourceErrorKind::Truncated(NAME)));
        }
        let block = input.avail();
        let (major, minor) = (self.endian.u16(block, 12), self.endian.u16(block, 14));
        if major != 1 {
            return Err(input.corrupt(at, format!("{NAME}: pcapng version {major}.{minor}")));
        }
        if let Err(what) = self.check_trailer(block, len) {
            return Err(input.corrupt(at, format!("{NAME}: {what}")));
        }
        self.interfaces.clear();
        input.consume(len);
        Ok(())
    }

    fn check_trailer(&self, block: &[u8], len: usize) -> Result<(), String> {
        let trailer = self.endian.u32(block, len - 4);
        if trailer as usize != len {
            return Err(format!(
                "trailing length {trailer} differs from leading length {len}"
            ));
        }
        Ok(())
    }

    /// Interprets one whole block (`block.len()` is its total length, at least 12).
    fn parse_block(&mut self, block_type: u32, block: &[u8]) -> Result<Block, String> {
        self.check_trailer(block, block.len())?;
        let e = self.endian;
        let body_end = block.len() - 4;
        match block_type {
            IDB => {
                self.interfaces.push(self.interface(block)?);
                Ok(Block::Skip)
            }
            EPB | PACKET_BLOCK => {
                // EPB: interface u32; Packet Block: interface u16, drops count u16.
                // Then both: time stamp (high, low), captured length, original length, data.
                if block.len() < 32 {
                    return Err(format!("block length {} too short", block.len()));
                }
                let iface = match block_type {
                    EPB => e.u32(block, 8),
                    _ => u32::from(e.u16(block, 8)),
                };
                let ts = u64::from(e.u32(block, 12)) << 32 | u64::from(e.u32(block, 16));
                let (caplen, orig_len) = (e.u32(block, 20), e.u32(block, 24));
                if caplen as usize > body_end - 28 {
                    return Err(format!("captured length {caplen} overruns the block"));
                }
                let interface = self.interface_for(iface)?;
                Ok(Block::Frame {
                    ts_nanos: interface.nanos(ts),
                    link_type: interface.link_type,
                    data_at: 28,
                    caplen: caplen as usize,
                    orig_len,
                })
            }
            SPB => {
                // Original length, data padded to 32 bits; no time stamp, no captured length.
                if block.len() < 16 {
                    return Err(format!("block length {} too short", block.len()));
                }
                let orig_len = e.u32(block, 8);
                let interface = self.interface_for(0)?;
                let mut caplen = (orig_len as usize).min(body_end - 12);
                if interface.snaplen != 0 {
                    caplen = caplen.min(interface.snaplen as usize);
                }
                Ok(Block::Frame {
                    ts_nanos: 0,
                    link_type: interface.link_type,
                    data_at: 12,
                    caplen,
                    orig_len,
                })
            }
            JOURNAL_EXPORT | CUSTOM | CUSTOM_NO_COPY => Ok(Block::Record),
            // Statistics, name resolution, decryption secrets...: nothing for us.
            _ => Ok(Block::Skip),
        }
    }

    fn interface_for(&self, id: u32) -> Result<&Interface, String> {
        self.interfaces
            .get(id as usize)
            .ok_or_else(|| format!("packet for interface {id}, which the section does not declare"))
    }

    /// Parses an Interface Description Block: link type u16, reserved u16, snap length u32,
    /// options.
    fn interface(&self, block: &[u8]) -> Result<Interface, String> {
        let e = self.endian;
        if block.len() < 20 {
            return Err(format!("block length {} too short", block.len()));
        }
        let mut interface = Interface {
            link_type: u32::from(e.u16(block, 8)),
            snaplen: e.u32(block, 12),
            units_per_sec: 1_000_000,
            offset_secs: 0,
        };
        // Options (§3.5): code u16, length u16, value padded to 32 bits.
        let options = block.get(16..block.len() - 4).unwrap_or_default();
        let mut at = 0;
        while at + 4 <= options.len() {
            let (code, len) = (e.u16(options, at), usize::from(e.u16(options, at + 2)));
            if code == OPT_END {
                break;
            }
            let value = options
                .get(at + 4..at + 4 + len)
                .ok_or_else(|| format!("option {code} overruns the block"))?;
            match (code, value) {
                (OPT_IF_TSRESOL, [r, ..]) => {
                    // Top bit clear: units of 10^-n s; set: units of 2^-n s.
                    let n = u32::from(r & 0x7F);
                    let units = if r & 0x80 == 0 {
                        10u64.checked_pow(n)
                    } else {
                        2u64.checked_pow(n)
                    };
                    interface.units_per_sec =
                        units.ok_or_else(|| format!("if_tsresol {r:#04x} out of range"))?;
                }
                (OPT_IF_TSOFFSET, v) if v.len() == 8 => {
                    interface.offset_secs = e.u64(v, 0) as i64;
                }
                _ => {}
            }
            at += 4 + len.next_multiple_of(4);
        }
        Ok(interface)
    }
}

fn block_name(block_type: u32) -> &'static str {
    match block_type {
        IDB => "interface description block",
        PACKET_BLOCK => "packet block",
        SPB => "simple packet block",
        ISB => "interface statistics block",
        EPB => "enhanced packet block",
        _ => "block",
    }
}
