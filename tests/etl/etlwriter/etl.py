"""Writing ETW `.etl` files: buffers, the logfile header, and event records.

Layout, as documented by Microsoft (TRACE_LOGFILE_HEADER, EVENT_HEADER, EVENT_TRACE_HEADER)
and by Geoff Chappell's studies of WMI_BUFFER_HEADER and the ETW trace headers, and as seen
in real files (tests/etl/real/):

* The file is a run of buffers. Each starts with a 0x48-byte WMI_BUFFER_HEADER:
  0x00 BufferSize (bytes of this buffer in the file), 0x04 SavedOffset, 0x08 CurrentOffset,
  0x0C ReferenceCount, 0x10 TimeStamp (FILETIME), 0x18 SequenceNumber, 0x20 clock/frequency
  word, 0x28 ProcessorIndex (u16, with the PROC_INDEX flag) and LoggerId (u16), 0x2C State,
  0x30 Offset (bytes filled, header included), 0x34 BufferFlag (u16: 0x01 FLUSH_MARKER,
  0x20 PROC_INDEX, 0x40 COMPRESSED), 0x36 BufferType (u16: 0 GENERIC, 4 HEADER),
  0x38..0x48 reference-time union (zero here).
* A buffer holds event records back to back, each starting 8-byte aligned; the unused tail
  is 0xFF. A compressed buffer keeps its header in clear and stores bytes 0x48..Offset of
  the buffer compressed with MS-XCA plain LZ77; its BufferSize is then the stored size and
  its Offset (and SavedOffset) the uncompressed one.
* The first buffer's first record is a 64-bit system header (marker 0xC002, hook 0x0000)
  whose payload is TRACE_LOGFILE_HEADER (0x118 bytes with 8-byte pointers) followed by the
  logger name and log file name in UTF-16 with their NULs. The header's timestamp is the
  raw clock at StartTime; every event's raw timestamp t is the FILETIME
  StartTime + (t - t0) * scale, scale being 10^7/PerfFreq (ReservedFlags 1, QPC), 1
  (ReservedFlags 2, system time) or 10/CpuSpeedInMHz (ReservedFlags 3, cycle counter).
* Provider events are EVENT_HEADER records (marker 0xC013 for 64-bit, 0x50 bytes): Size,
  HeaderType, Flags, EventProperty, ThreadId, ProcessId, TimeStamp, ProviderId (GUID,
  little-endian fields), EventDescriptor (Id u16, Version u8, Channel u8, Level u8,
  Opcode u8, Task u16, Keyword u64), ProcessorTime, ActivityId; then the user data.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from . import xpress

HEADER_LEN = 0x48
FLAG_FLUSH_MARKER = 0x0001
FLAG_PROC_INDEX = 0x0020
FLAG_COMPRESSED = 0x0040
TYPE_GENERIC = 0
TYPE_HEADER = 4

CLOCK_QPC = 1
CLOCK_SYSTEMTIME = 2
CLOCK_CPUCYCLE = 3

SYSTEM_TRACE_GUID = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")


def align8(n: int) -> int:
    return (n + 7) & ~7


@dataclass
class Clock:
    kind: int
    start_ft: int  # FILETIME of StartTime
    raw0: int  # raw clock value at StartTime
    perf_freq: int = 10_000_000
    cpu_mhz: int = 2400

    def raw(self, ft: int) -> int:
        """Raw clock value for a FILETIME, rounded down to a tick: with a frequency that is
        a multiple of 1 MHz the time read back stays in the same microsecond."""
        d = ft - self.start_ft
        if self.kind == CLOCK_QPC:
            return self.raw0 + d * self.perf_freq // 10_000_000
        if self.kind == CLOCK_SYSTEMTIME:
            return self.raw0 + d
        return self.raw0 + d * self.cpu_mhz // 10

    def ft(self, raw: int) -> int:
        """FILETIME of a raw value, floor, in exact integer arithmetic."""
        d = raw - self.raw0
        if self.kind == CLOCK_QPC:
            return self.start_ft + d * 10_000_000 // self.perf_freq
        if self.kind == CLOCK_SYSTEMTIME:
            return self.start_ft + d
        return self.start_ft + d * 10 // self.cpu_mhz


def guid_le(g: uuid.UUID) -> bytes:
    return g.bytes_le


def event_header_record(
    provider: uuid.UUID,
    event_id: int,
    keywords: int,
    raw_ts: int,
    payload: bytes,
    *,
    version: int = 0,
    channel: int = 0,
    level: int = 4,
    opcode: int = 0,
    task: int = 0,
    thread_id: int = 0,
    process_id: int = 4,
    processor_time: int = 0,
    flags: int = 0,
    event_property: int = 0,
) -> bytes:
    size = 0x50 + len(payload)
    if size > 0xFFFF:
        raise ValueError(f"event of {size} bytes: ETW events are at most 65535 bytes")
    head = struct.pack(
        "<HHHHIIq16sHBBBBHQQ16s",
        size,
        0xC013,
        flags,
        event_property,
        thread_id,
        process_id,
        raw_ts,
        guid_le(provider),
        event_id,
        version,
        channel,
        level,
        opcode,
        task,
        keywords,
        processor_time,
        b"\0" * 16,
    )
    assert len(head) == 0x50
    return head + payload


def system_record(group: int, opcode: int, raw_ts: int, payload: bytes, *, thread_id=0, process_id=0, version=2) -> bytes:
    """A 64-bit system trace header (SYSTEM_TRACE_HEADER, marker 0xC002)."""
    size = 0x20 + len(payload)
    head = struct.pack("<HHHBBIIqQ", version, 0xC002, size, opcode, group, thread_id, process_id, raw_ts, 0)
    assert len(head) == 0x20
    return head + payload


def trace_record(provider: uuid.UUID, raw_ts: int, payload: bytes, *, type_=0, level=0, version=0, thread_id=0, process_id=0) -> bytes:
    """A classic 64-bit EVENT_TRACE_HEADER record (marker 0xC014)."""
    size = 0x30 + len(payload)
    head = struct.pack(
        "<HHBBHIIq16sII", size, 0xC014, type_, level, version, thread_id, process_id, raw_ts, guid_le(provider), 0, 0
    )
    assert len(head) == 0x30
    return head + payload


def logfile_header_payload(
    *,
    buffer_size: int,
    build: int,
    ncpus: int,
    end_ft: int,
    log_file_mode: int,
    buffers_written: int,
    clock: Clock,
    boot_ft: int,
    logger_name: str,
    log_file_name: str,
) -> bytes:
    tz = struct.pack("<i", 0) + "@tzres.dll,-932".encode("utf-16-le").ljust(64, b"\0") + b"\0" * 16
    tz += struct.pack("<i", 0) + "@tzres.dll,-931".encode("utf-16-le").ljust(64, b"\0") + b"\0" * 16
    tz += struct.pack("<i", 0)
    assert len(tz) == 172
    body = struct.pack(
        "<IBBBBIIqIIIIIIIIQQ",
        buffer_size,
        10,
        0,
        2,
        0,
        build,
        ncpus,
        end_ft,
        156250,
        512,
        log_file_mode,
        buffers_written,
        1,  # StartBuffers
        8,  # PointerSize
        0,  # EventsLost
        clock.cpu_mhz,
        0,  # LoggerName (pointer, unused in files)
        0,  # LogFileName
    )
    assert len(body) == 0x48
    body += tz + b"\0" * 4
    body += struct.pack("<qqqII", boot_ft, clock.perf_freq, clock.start_ft, clock.kind, 0)
    assert len(body) == 0x118
    body += (logger_name + "\0").encode("utf-16-le") + (log_file_name + "\0").encode("utf-16-le")
    return body


@dataclass
class Buffer:
    cpu: int
    capacity: int  # logical buffer size, header included
    kind: int = TYPE_GENERIC
    records: list[bytes] = field(default_factory=list)
    used: int = HEADER_LEN
    last_ft: int = 0
    flush_marker: bool = False

    def fits(self, record: bytes) -> bool:
        return align8(self.used) + len(record) <= self.capacity

    def add(self, record: bytes, ft: int) -> int:
        """Append a record; returns its offset within the (uncompressed) buffer."""
        at = align8(self.used)
        self.records.append((at, record))
        self.used = at + len(record)
        self.last_ft = max(self.last_ft, ft)
        return at

    def content(self) -> bytes:
        out = bytearray(self.used - HEADER_LEN)
        for at, rec in self.records:
            out[at - HEADER_LEN : at - HEADER_LEN + len(rec)] = rec
        return bytes(out)

    def encode(self, seq: int, compress: bool, proc_index: bool = True) -> bytes:
        filled = self.used
        data = self.content()
        flags = (FLAG_FLUSH_MARKER if self.flush_marker else 0) | (FLAG_PROC_INDEX if proc_index else 0)
        if compress:
            packed = xpress.compress(data)
            flags |= FLAG_COMPRESSED
            size = HEADER_LEN + len(packed)
            tail = packed
        else:
            size = self.capacity
            tail = data + b"\xff" * (self.capacity - filled)
        head = struct.pack(
            "<IIIIqqQHHIIHH16s",
            size,
            filled,
            self.capacity + filled,
            0,
            self.last_ft,
            seq,
            0,
            self.cpu,
            0,
            3,
            filled,
            flags,
            self.kind,
            b"\0" * 16,
        )
        assert len(head) == HEADER_LEN
        return head + tail
