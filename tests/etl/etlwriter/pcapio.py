"""Minimal pcap / pcapng reading for the ETL fixture writer (no dependencies).

Yields (timestamp in nanoseconds since the Unix epoch, link type, frame bytes,
original length). Enough for the captures this project tests with; anything else raises.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass
class Packet:
    ts_ns: int
    linktype: int
    data: bytes
    orig_len: int


def read(path: str) -> list[Packet]:
    with open(path, "rb") as f:
        blob = f.read()
    magic = blob[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return _pcapng(blob)
    return _pcap(blob)


def _pcap(b: bytes) -> list[Packet]:
    magic_le = struct.unpack_from("<I", b, 0)[0]
    table = {
        0xA1B2C3D4: ("<", 1000),
        0xA1B23C4D: ("<", 1),
        0xD4C3B2A1: (">", 1000),
        0x4D3CB2A1: (">", 1),
    }
    if magic_le not in table:
        raise ValueError("not a pcap or pcapng file")
    e, mult = table[magic_le]
    linktype = struct.unpack_from(e + "I", b, 20)[0] & 0x0FFFFFFF
    out = []
    pos = 24
    while pos + 16 <= len(b):
        sec, frac, incl, orig = struct.unpack_from(e + "IIII", b, pos)
        pos += 16
        if pos + incl > len(b):
            raise ValueError(f"pcap record cut at {pos - 16}")
        out.append(Packet(sec * 1_000_000_000 + frac * mult, linktype, b[pos : pos + incl], orig))
        pos += incl
    return out


def _pcapng(b: bytes) -> list[Packet]:
    out = []
    pos = 0
    e = "<"
    ifaces: list[tuple[int, int]] = []  # (linktype, units per second)
    while pos + 12 <= len(b):
        btype = struct.unpack_from(e + "I", b, pos)[0]
        if btype == 0x0A0D0D0A:
            bom = b[pos + 8 : pos + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(e + "I", b, pos + 4)[0]
        if blen < 12 or pos + blen > len(b):
            raise ValueError(f"pcapng block cut at {pos}")
        body = b[pos + 8 : pos + blen - 4]
        if btype == 1:
            linktype = struct.unpack_from(e + "H", body, 0)[0]
            units = 1_000_000
            opos = 8
            while opos + 4 <= len(body):
                code, olen = struct.unpack_from(e + "HH", body, opos)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    r = body[opos + 4]
                    units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
                opos += 4 + olen + (-olen % 4)
            ifaces.append((linktype, units))
        elif btype == 6:
            iface, hi, lo, cap, orig = struct.unpack_from(e + "IIIII", body, 0)
            linktype, units = ifaces[iface]
            ticks = (hi << 32) | lo
            ts_ns = ticks * 1_000_000_000 // units
            out.append(Packet(ts_ns, linktype, body[20 : 20 + cap], orig))
        elif btype == 3:
            raise ValueError("pcapng simple packet blocks are not supported here")
        pos += blen
    return out
