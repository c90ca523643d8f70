//! The ETW log file layer: buffers, the log file header, and the event headers inside
//! buffers.
//!
//! Sources: Geoff Chappell's notes on `WMI_BUFFER_HEADER`, `TRACE_LOGFILE_HEADER`,
//! `SYSTEM_TRACE_HEADER` and the other trace headers; Microsoft's `evntrace.h`/`evntcons.h`
//! documentation of `TRACE_LOGFILE_HEADER` and `EVENT_HEADER`. All fields are little-endian.
//!
//! * A file is a sequence of buffers. Each starts with a 72-byte `WMI_BUFFER_HEADER`:
//!   buffer size on disk (u32 at 0), saved offset (u32 at 4), the processor that filled it
//!   (`ETW_BUFFER_CONTEXT` at 0x28: u8 processor number, or a u16 index when the
//!   `PROC_INDEX` flag is set), the filled length (u32 at 0x30, counted from the buffer's
//!   start and before any compression), flags (u16 at 0x34) and type (u16 at 0x36). Events
//!   follow, each 8-byte aligned; 0xFFFFFFFF (or the filled length) ends them.
//! * A buffer with the `COMPRESSED` flag holds, after its header, the MS-XCA LZ77
//!   compression of its events ([`super::xpress`]); its size on disk is the compressed size.
//! * Buffers are filled per processor, each in time order, and written when full: the
//!   events of the file are in time order only once the buffers are merged.
//! * The first buffer's first event (a system header with hook id 0) carries the
//!   `TRACE_LOGFILE_HEADER`: the clock (the `ReservedFlags` field: 1 = query performance
//!   counter at `PerfFreq` Hz, 2 = system time, 3 = CPU cycles at `CpuSpeedInMHz`), the
//!   start time (a FILETIME) that the header event's own timestamp stands for, the pointer
//!   size, the number of processors and the Windows build (`ProviderVersion`).
//!
//! Event headers are told apart by the marker's top byte (0xC0 bits set: a trace header,
//! whose type is the next byte; 0x80 without them: a WPP message):
//!
//! | type | header | size field | timestamp | length |
//! |---|---|---|---|---|
//! | 0x01/0x02 system | version, type, flags, size u16 @4, hook id u16 @6 | @4 | @0x10 | 0x20 |
//! | 0x03/0x04 compact system | as system | @4 | @0x10 | 0x18 |
//! | 0x10/0x11 perfinfo | as system | @4 | @0x08 | 0x10 |
//! | 0x12/0x13 event header | size u16 @0, flags u16 @4 | @0 | @0x10 | 0x50 |
//! | 0x0A/0x14 full, 0x0B/0x15 instance | size u16 @0 | @0 | @0x10 | - |
//!
//! An `EVENT_HEADER` carries the provider GUID (@0x18), the event descriptor (@0x28: id
//! u16, version u8, channel u8, level u8, opcode u8, task u16, keywords u64) and, when its
//! flags have `EXTENDED_INFO` (1), extended data items before the payload: each 8 bytes
//! (u16, type u16, u16 whose bit 0 says another item follows, data size u16) plus its data,
//! padded to 8 bytes.

use super::super::{bytes, clamp_nanos};

/// Length of a `WMI_BUFFER_HEADER`.
pub(crate) const BUFFER_HEADER_LEN: usize = 0x48;

/// Buffer flags.
pub(crate) const FLAG_PROC_INDEX: u16 = 0x20;
pub(crate) const FLAG_COMPRESSED: u16 = 0x40;

/// Seconds from 1601-01-01 (FILETIME epoch) to 1970-01-01.
const FILETIME_UNIX_SECS: i128 = 11_644_473_600;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes::<2>(b, at))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes::<4>(b, at))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes::<8>(b, at))
}

/// The fields of a `WMI_BUFFER_HEADER` this reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BufferHeader {
    /// Bytes the buffer takes in the file, header included.
    pub size: u32,
    /// Bytes of header and events before compression.
    pub filled: u32,
    pub processor: u16,
    pub flags: u16,
    pub buffer_type: u16,
}

impl BufferHeader {
    /// Reads a buffer header from the first [`BUFFER_HEADER_LEN`] bytes of `b`.
    pub(crate) fn parse(b: &[u8]) -> BufferHeader {
        let flags = u16_at(b, 0x34);
        let processor = if flags & FLAG_PROC_INDEX != 0 {
            u16_at(b, 0x28)
        } else {
            u16::from(b.get(0x28).copied().unwrap_or(0))
        };
        BufferHeader {
            size: u32_at(b, 0),
            filled: u32_at(b, 0x30),
            processor,
            flags,
            buffer_type: u16_at(b, 0x36),
        }
    }

    pub(crate) fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

/// What kind of trace header an event has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    /// A kernel (system, compact, perfinfo) header, with its hook id.
    System { hook_id: u16 },
    /// An `EVENT_HEADER` (manifest-based and TraceLogging providers).
    Event,
    /// Classic, instance, WPP message and other headers: counted, never decoded.
    Other,
}

/// One event in a buffer, borrowed from the buffer's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event<'a> {
    pub kind: HeaderKind,
    /// The raw timestamp (in the log's clock units), if this header type has one.
    pub timestamp: Option<u64>,
    /// Provider GUID as the 16 bytes stored (`EVENT_HEADER` only).
    pub provider: [u8; 16],
    pub id: u16,
    pub version: u8,
    pub opcode: u8,
    pub keywords: u64,
    /// The event's user data.
    pub payload: &'a [u8],
}

/// Where an event could not be read, as a message for the reader's error.
pub(crate) type EventError = String;

/// The event at `at` in a buffer's event area `b`: `Ok(None)` at the end of the events,
/// otherwise the event and the offset of the next one.
pub(crate) fn next_event(b: &[u8], at: usize) -> Result<Option<(Event<'_>, usize)>, EventError> {
    let Some(head) = b.get(at..at.saturating_add(4)) else {
        return Ok(None);
    };
    let marker = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if marker == 0xFFFF_FFFF || marker == 0 {
        return Ok(None);
    }
    let top = (marker >> 24) as u8;
    let rest = &b[at..];
    let (size, kind, timestamp, header_len) = if top & 0xC0 == 0xC0 {
        match (marker >> 16) as u8 {
            0x01 | 0x02 => (
                u16_at(rest, 4),
                HeaderKind::System {
                    hook_id: u16_at(rest, 6),
                },
                Some(u64_at(rest, 0x10)),
                0x20,
            ),
            0x03 | 0x04 => (
                u16_at(rest, 4),
                HeaderKind::System {
                    hook_id: u16_at(rest, 6),
                },
                Some(u64_at(rest, 0x10)),
                0x18,
            ),
            0x10 | 0x11 => (
                u16_at(rest, 4),
                HeaderKind::System {
                    hook_id: u16_at(rest, 6),
                },
                Some(u64_at(rest, 0x08)),
                0x10,
            ),
            0x12 | 0x13 => (
                u16_at(rest, 0),
                HeaderKind::Event,
                Some(u64_at(rest, 0x10)),
                0x50,
            ),
            0x0A | 0x0B | 0x14 | 0x15 => (
                u16_at(rest, 0),
                HeaderKind::Other,
                Some(u64_at(rest, 0x10)),
                0x18,
            ),
            other => return Err(format!("event header of unknown type {other:#04x}")),
        }
    } else if top & 0x80 != 0 {
        // A WPP message (TRACE_MESSAGE): its size is the low half of the marker. Its
        // optional fields (sequence, GUID or component id, timestamp) are not needed.
        ((marker & 0xFFFF) as u16, HeaderKind::Other, None, 8)
    } else {
        return Err(format!("event marker {marker:#010x} is not a trace header"));
    };
    let size = usize::from(size);
    if size < header_len {
        return Err(format!(
            "event of {size} bytes, shorter than its {header_len}-byte header"
        ));
    }
    let end = at + size;
    if end > b.len() {
        return Err(format!("event of {size} bytes runs past its buffer"));
    }
    let record = &b[at..end];
    let next = at + size.div_ceil(8) * 8;
    let mut event = Event {
        kind,
        timestamp,
        provider: [0; 16],
        id: 0,
        version: 0,
        opcode: 0,
        keywords: 0,
        payload: &record[header_len.min(size)..],
    };
    if kind == HeaderKind::Event {
        event.provider = bytes::<16>(record, 0x18);
        event.id = u16_at(record, 0x28);
        event.version = record[0x2A];
        event.opcode = record[0x2D];
        event.keywords = u64_at(record, 0x30);
        let mut payload_at = header_len;
        if u16_at(record, 4) & 0x0001 != 0 {
            // Extended data items, until one without the "another follows" bit.
            loop {
                let item = record
                    .get(payload_at..payload_at + 8)
                    .ok_or_else(|| "extended data item runs past its event".to_string())?;
                let more = u16_at(item, 4) & 1 != 0;
                let len = (8 + usize::from(u16_at(item, 6))).div_ceil(8) * 8;
                payload_at += len;
                if payload_at > size {
                    return Err("extended data item runs past its event".into());
                }
                if !more {
                    break;
                }
            }
        }
        event.payload = &record[payload_at..];
    }
    Ok(Some((event, next)))
}

/// How the log's raw timestamps become UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    /// The log's start, as 100 ns units since 1601 (FILETIME).
    start_filetime: i128,
    /// The raw timestamp of the header event, which stands for the start.
    start_raw: i128,
    /// Raw units per second (the counter's frequency; 10^7 for system time).
    per_second: i128,
}

impl Clock {
    /// ns since the Unix epoch for a raw timestamp.
    pub(crate) fn unix_nanos(&self, raw: u64) -> i64 {
        let elapsed = i128::from(raw) - self.start_raw;
        let elapsed_ns = elapsed * 1_000_000_000 / self.per_second.max(1);
        let start_ns = (self.start_filetime - FILETIME_UNIX_SECS * 10_000_000) * 100;
        clamp_nanos(start_ns + elapsed_ns)
    }
}

/// The fields of the `TRACE_LOGFILE_HEADER` this reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogfileHeader {
    /// Windows build number of the machine that wrote the log.
    pub build: u32,
    pub processors: u32,
    pub buffers_written: u32,
    /// `EVENT_TRACE_FILE_MODE_*` flags (0x2: circular, where the count of buffers written
    /// includes overwritten ones).
    pub log_file_mode: u32,
    pub pointer_size: u32,
    pub clock: Clock,
}

/// Reads the log file header from the payload of the first event (a system header with hook
/// id 0) whose raw timestamp is `raw_start`.
pub(crate) fn logfile_header(payload: &[u8], raw_start: u64) -> Result<LogfileHeader, String> {
    let pointer_size = u32_at(payload, 0x2C);
    // The pointers (logger and file name) are 4 or 8 bytes; the TIME_ZONE_INFORMATION that
    // follows is 172 bytes, then 8-byte alignment.
    let tz_at = match pointer_size {
        4 => 0x40,
        8 => 0x48,
        other => return Err(format!("log file header: pointer size {other}")),
    };
    let times_at = (tz_at + 172usize).div_ceil(8) * 8;
    let min_len = times_at + 32;
    if payload.len() < min_len {
        return Err(format!(
            "log file header of {} bytes, expected at least {min_len}",
            payload.len()
        ));
    }
    let perf_freq = u64_at(payload, times_at + 8);
    let start_time = u64_at(payload, times_at + 16);
    let clock_type = u32_at(payload, times_at + 24);
    let cpu_mhz = u32_at(payload, 0x34);
    let per_second = match clock_type {
        1 => i128::from(perf_freq),
        2 => 10_000_000,
        3 => i128::from(cpu_mhz) * 1_000_000,
        other => return Err(format!("log file header: unknown clock type {other}")),
    };
    if per_second <= 0 {
        return Err(format!(
            "log file header: clock type {clock_type} with a frequency of 0"
        ));
    }
    Ok(LogfileHeader {
        build: u32_at(payload, 0x08),
        processors: u32_at(payload, 0x0C),
        buffers_written: u32_at(payload, 0x24),
        log_file_mode: u32_at(payload, 0x20),
        pointer_size,
        clock: Clock {
            start_filetime: i128::from(start_time),
            start_raw: i128::from(raw_start),
            per_second,
        },
    })
}

/// Does `b`, the start of a file, look like an ETW log? A buffer header whose first event
/// is the log file header: a system trace header (type 1 or 2, version 2, flags 0xC0) with
/// hook id 0 at offset 0x48.
pub(crate) fn looks_like_etl(b: &[u8]) -> bool {
    if b.len() < BUFFER_HEADER_LEN + 8 {
        return false;
    }
    let size = u32_at(b, 0);
    let marker = u32_at(b, BUFFER_HEADER_LEN);
    let header_type = (marker >> 16) as u8;
    size as usize >= BUFFER_HEADER_LEN + 0x20
        && marker >> 24 == 0xC0
        && matches!(header_type, 1 | 2)
        && u16_at(b, BUFFER_HEADER_LEN + 6) == 0
}

/// A GUID as its 16 stored bytes (the first three fields little-endian).
pub(crate) const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2021-06-03 19:19:55.4540046 in the capturing machine's zone (UTC+5:30), as
    /// `pktmon etl2txt` prints the header event of the pktmon fixture: 13:49:55.4540046 UTC.
    #[test]
    fn clock_from_start_time() {
        let clock = Clock {
            start_filetime: 132_672_017_954_540_046,
            start_raw: 118_544_129_007,
            per_second: 10_000_000,
        };
        assert_eq!(clock.unix_nanos(118_544_129_007), 1_622_728_195_454_004_600);
        // etl2txt's 19:19:55.980677800 for the first packet (raw 118549395739).
        assert_eq!(clock.unix_nanos(118_549_395_739), 1_622_728_195_980_677_800);
    }

    /// The real pktmon capture in tests/etl/real/demikernel, as dissect.etl reads its
    /// buffer headers and log file header.
    #[test]
    fn headers_as_dissect_reads_them() {
        let file = include_bytes!("../../../tests/etl/real/demikernel/PktMon.etl");
        assert!(looks_like_etl(file));
        let first = BufferHeader::parse(file);
        assert_eq!((first.size, first.filled, first.flags), (1024, 584, 0x1));
        let second = BufferHeader::parse(&file[1024..]);
        assert_eq!(
            (second.size, second.filled, second.processor),
            (11926, 50160, 0)
        );
        assert!(second.compressed());
        let third = BufferHeader::parse(&file[12950..]);
        assert_eq!(
            (third.size, third.filled, third.processor),
            (12621, 82520, 2)
        );
        let (event, _) = next_event(&file[BUFFER_HEADER_LEN..first.filled as usize], 0)
            .unwrap()
            .unwrap();
        assert_eq!(event.kind, HeaderKind::System { hook_id: 0 });
        assert_eq!(event.timestamp, Some(2_499_815_729_351));
        let h = logfile_header(event.payload, 2_499_815_729_351).unwrap();
        assert_eq!((h.build, h.processors, h.buffers_written), (20348, 8, 3));
        assert_eq!((h.pointer_size, h.log_file_mode), (8, 67_174_401));
        // StartTime 133625243079225833 (FILETIME) is the header event's time.
        assert_eq!(
            h.clock.unix_nanos(2_499_815_729_351),
            1_718_050_707_922_583_300
        );
        assert!(!looks_like_etl(&file[1024..]));
    }

    #[test]
    fn provider_guid_bytes() {
        // {2ED6006E-4729-4609-B423-3EE7BCD678EF} as stored: 6e 00 d6 2e 29 47 09 46 b4 23...
        let g = guid(
            0x2ED6_006E,
            0x4729,
            0x4609,
            [0xB4, 0x23, 0x3E, 0xE7, 0xBC, 0xD6, 0x78, 0xEF],
        );
        assert_eq!(&g[..8], &[0x6e, 0x00, 0xd6, 0x2e, 0x29, 0x47, 0x09, 0x46]);
    }
}
