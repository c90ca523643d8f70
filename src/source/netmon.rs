//! Microsoft Network Monitor 2.x capture files (`.cap`, magic `GMBU`).
//!
//! Described in the "Capture File Format" pages of the Network Monitor 3.x help; Wireshark's
//! `wiretap/netmon.c` documents how real files deviate from them. All fields are little-endian.
//!
//! * File header, 72 bytes: magic, minor and major version (u8 each), media type (u16), capture
//!   start as a Windows SYSTEMTIME (eight u16), then u32 offset/length pairs: frame table, user
//!   data, comments, process info (offset/count), extended info, conversation statistics.
//! * Frame table: one u32 file offset per frame. Frames need not be contiguous nor in file
//!   order, so the table, not the file layout, defines them and their numbering.
//! * Frame: time offset (u64, µs since the capture start), original length (u32), captured
//!   length (u32), the bytes, then a trailer that grows with the minor version: 2.1 adds the
//!   frame's media type (u16), 2.2 a process-info index (u32), 2.3 a UTC FILETIME (u64, 100 ns
//!   units since 1601) and a time-zone index (u8).
//!
//! Media types: the NDIS codes (1 = Ethernet), `0xE000 | LINKTYPE` for frames converted from
//! pcap, and NetMon's own records (0xFFE0 ETW event, 0xFFFB adapter list, 0xFFFF filter) that
//! Wireshark shows as frames; we skip them but count them, so frame numbers match Wireshark's.
//! Wireshark drops 0xFFFC to 0xFFFE (reassembly header, adapter info, DNS cache) without
//! numbering them, and so do we.
//!
//! Caveats: the SYSTEMTIME start (used for time stamps before version 2.3) is in the capturing
//! machine's local time zone, which the file does not record; we take it as UTC. When the frame
//! table is missing (a cut file), frames are found by walking the records from the end of the
//! header, which works for files NetMon wrote contiguously, and the reader then reports the
//! missing table.

use super::{
    bytes, clamp_nanos, linktype, Endian, Input, Packet, SourceError, SourceErrorKind, MAX_CAPLEN,
};
use crate::time::days_from_civil;

pub(crate) const MAGIC: [u8; 4] = *b"GMBU";

const HEADER_LEN: usize = 72;
const RECORD_HEADER_LEN: usize = 16;
const LE: Endian = Endian::Little;

/// Seconds from 1601-01-01 (FILETIME epoch) to 1970-01-01.
const FILETIME_UNIX_SECS: i128 = 11_644_473_600;

pub(crate) struct NetMonReader {
    minor: u8,
    /// Media type of the file, for 2.0 files whose frames carry none.
    file_media: u16,
    /// Capture start in ns since the Unix epoch, if the header's SYSTEMTIME is valid.
    start_nanos: Option<i64>,
    trailer_len: usize,
    frames: Frames,
    /// Error to report after the last frame (a missing frame table, a cut trailing section).
    deferred: Option<SourceError>,
    numbered: u64,
    pub(crate) skipped: u64,
}

enum Frames {
    /// Frame offsets from the frame table; `table_at` is the table's own offset.
    Table {
        offsets: Vec<u32>,
        next: usize,
        table_at: u64,
        file_len: u64,
    },
    /// No usable frame table: walk the records one after another up to `end`.
    Walk { next: u64, end: u64 },
}

impl NetMonReader {
    /// Reads the header and the frame table; `input` is at offset 0 with the magic buffered.
    pub(crate) fn open(input: &mut Input) -> Result<Self, SourceError> {
        if !input.fill(HEADER_LEN)? {
            return Err(input.error(0, SourceErrorKind::Truncated("file header")));
        }
        let h = input.avail();
        let [minor, major] = bytes::<2>(h, 4);
        if major != 2 {
            let what = format!("file header: Network Monitor version {major}.{minor}, not 2.x");
            return Err(input.corrupt(0, what));
        }
        let file_media = LE.u16(h, 6);
        let st: [u16; 8] = std::array::from_fn(|i| LE.u16(h, 8 + 2 * i));
        let start_nanos = systemtime_nanos(st);
        if start_nanos.is_none() && minor < 3 {
            return Err(input.corrupt(0, "file header: invalid capture start time".into()));
        }
        let table_at = u64::from(LE.u32(h, 24));
        let table_len = u64::from(LE.u32(h, 28));
        // Other sections, as (offset, length, name); only trusted from 2.2 on (older writers
        // left these fields uninitialised).
        let sections: Vec<(u64, u64, &'static str)> = if minor >= 2 {
            [
                (32, "user data"),
                (40, "comment data"),
                (56, "extended info"),
                (64, "statistics"),
            ]
            .iter()
            .map(|&(at, name)| (u64::from(LE.u32(h, at)), u64::from(LE.u32(h, at + 4)), name))
            .filter(|&(offset, len, _)| offset != 0 && len != 0)
            .collect()
        } else {
            Vec::new()
        };
        if table_len % 4 != 0 || table_at < HEADER_LEN as u64 {
            let what = format!("file header: frame table at {table_at}, length {table_len}");
            return Err(input.corrupt(0, what));
        }
        input.consume(HEADER_LEN);
        let file_len = input.total_len()?;

        // A section the file cuts short is reported once the frames are read.
        let mut deferred = sections
            .iter()
            .filter(|&&(offset, len, _)| offset + len > file_len)
            .map(|&(offset, _, name)| input.error(offset, SourceErrorKind::Truncated(name)))
            .next();
        let frames = if table_at + table_len <= file_len {
            Frames::Table {
                offsets: read_table(input, table_at, table_len)?,
                next: 0,
                table_at,
                file_len,
            }
        } else {
            deferred = Some(input.error(table_at, SourceErrorKind::Truncated("frame table")));
            let end = sections
                .iter()
                .map(|&(offset, _, _)| offset)
                .filter(|&offset| offset >= HEADER_LEN as u64)
                .fold(table_at.min(file_len), u64::min);
            Frames::Walk {
                next: HEADER_LEN as u64,
                end,
            }
        };
        let trailer_len = match minor {
            0 => 0,
            1 => 2,
            2 => 6,
            _ => 15,
        };
        Ok(NetMonReader {
            minor,
            file_media,
            start_nanos,
            trailer_len,
            frames,
            deferred,
            numbered: 0,
            skipped: 0,
        })
    }

    pub(crate) fn next<'a>(
        &mut self,
        input: &'a mut Input,
    ) -> Result<Option<Packet<'a>>, SourceError> {
        loop {
            let at = match &mut self.frames {
                Frames::Table {
                    offsets,
                    next,
                    table_at,
                    file_len,
                } => {
                    let Some(&offset) = offsets.get(*next) else {
                        return self.deferred.take().map_or(Ok(None), Err);
                    };
                    let index = *next;
                    *next += 1;
                    let offset = u64::from(offset);
                    if offset < HEADER_LEN as u64 || offset + RECORD_HEADER_LEN as u64 > *file_len {
                        let what = format!(
                            "frame table: entry {index} points to {offset}, outside the frames"
                        );
                        return Err(input.corrupt(*table_at + 4 * index as u64, what));
                    }
                    offset
                }
                Frames::Walk { next, end } => {
                    if *next >= *end {
                        return self.deferred.take().map_or(Ok(None), Err);
                    }
                    *next
                }
            };
            input.seek(at)?;
            if !input.fill(RECORD_HEADER_LEN)? {
                return Err(input.error(at, SourceErrorKind::Truncated("frame record")));
            }
            let h = input.avail();
            let (delta_us, orig_len, caplen) = (LE.u64(h, 0), LE.u32(h, 8), LE.u32(h, 12));
            if caplen > MAX_CAPLEN {
                let what = format!("frame record: captured length {caplen} exceeds {MAX_CAPLEN}");
                return Err(input.corrupt(at, what));
            }
            let data_end = RECORD_HEADER_LEN + caplen as usize;
            let total = data_end + self.trailer_len;
            if !input.fill(total)? {
                return Err(input.error(at, SourceErrorKind::Truncated("frame record")));
            }
            if let Frames::Walk { next, .. } = &mut self.frames {
                *next = at + total as u64;
            }
            let record = input.avail();
            let media = match self.minor {
                0 => self.file_media,
                _ => LE.u16(record, data_end),
            };
            if (0xFFFC..=0xFFFE).contains(&media) {
                input.consume(total);
                continue;
            }
            self.numbered += 1;
            let Some(link_type) = media_link_type(media) else {
                self.skipped += 1;
                input.consume(total);
                continue;
            };
            let ts_nanos = if self.minor >= 3 {
                let filetime = LE.u64(record, data_end + 6);
                clamp_nanos((i128::from(filetime) - FILETIME_UNIX_SECS * 10_000_000) * 100)
            } else {
                // Microsoft: the unsigned µs count wraps to a signed one (a frame may precede
                // the nominal start).
                let delta = delta_us.wrapping_mul(1000) as i64;
                clamp_nanos(i128::from(self.start_nanos.unwrap_or(0)) + i128::from(delta))
            };
            let record = input.take(total);
            return Ok(Some(Packet {
                ts_nanos,
                link_type,
                data: record.get(RECORD_HEADER_LEN..data_end).unwrap_or_default(),
                orig_len,
                frame_number: self.numbered,
                interface: None,
                direction: None,
            }));
        }
    }
}

/// Reads the frame table (a whole number of u32 offsets lying inside the file).
fn read_table(input: &mut Input, at: u64, len: u64) -> Result<Vec<u32>, SourceError> {
    const CHUNK: usize = 64 << 10;
    input.seek(at)?;
    let mut offsets = Vec::with_capacity((len / 4) as usize);
    let mut left = len as usize;
    while left > 0 {
        let n = left.min(CHUNK);
        if !input.fill(n)? {
            return Err(input.error(at, SourceErrorKind::Truncated("frame table")));
        }
        let chunk = input.avail().get(..n).unwrap_or_default();
        offsets.extend(chunk.chunks_exact(4).map(|c| LE.u32(c, 0)));
        input.consume(n);
        left -= n;
    }
    Ok(offsets)
}

/// LINKTYPE_ value for a NetMon media type, `None` for records that are not frames we decode.
fn media_link_type(media: u16) -> Option<u32> {
    match media {
        // 0 appears in some NetMon 3.4 VPN captures holding Ethernet frames.
        0 | 1 => Some(linktype::ETHERNET),
        2 => Some(6), // Token Ring (LINKTYPE_IEEE802_5)
        // "Tunneling interfaces", "Wireless WAN", "Raw IP frames": IP with no link header.
        7..=9 => Some(linktype::RAW),
        // Microsoft Message Analyzer's own types sit inside the pcap range.
        0xE080..=0xE08A => None,
        0xE000..=0xEFFF => Some(u32::from(media & 0x0FFF)),
        // FDDI (bit-swapped), ATM with a pseudo-header, NetMon 802.11, events, filters...
        _ => None,
    }
}

/// Converts a Windows SYSTEMTIME (year, month, weekday, day, hour, minute, second, ms) to ns
/// since the Unix epoch, taking it as UTC; `None` if a field is out of range.
fn systemtime_nanos(st: [u16; 8]) -> Option<i64> {
    let [year, month, _weekday, day, hour, minute, second, ms] = st.map(i64::from);
    let valid = (1601..=30827).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && ms < 1000;
    if !valid {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    // Years past 2262 overflow i64 nanoseconds: clamp, as every other timestamp is.
    Some(clamp_nanos(
        i128::from(secs) * 1_000_000_000 + i128::from(ms) * 1_000_000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1601, 1, 1), -134_774);
        let st = [2016, 8, 3, 17, 8, 47, 5, 820];
        assert_eq!(systemtime_nanos(st), Some(1_471_423_625_820_000_000));
    }
}
