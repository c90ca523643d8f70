#!/usr/bin/env python3
"""Check `.etl` files with an independent parser (PyPI dissect.etl, pinned in setup_venv.sh)
and write what it sees to `expected/`.

    verify_etl.py check FILE.etl --intent INTENT.json --source SOURCE.pcap --expected OUT.json
    verify_etl.py real FILE.etl [--pcapng CONVERTED.pcapng] --expected OUT.json

`check` (a file made by make_etl.py): every record dissect.etl finds must be the one the
writer meant (provider GUID, event id, keywords, timestamp, CPU, payload digest, in file
order), and the packets rebuilt from dissect.etl's view alone (NDIS fragments joined by
their PacketStart/PacketEnd keywords; pktmon appearances merged by PktGroupId/PktNumber)
must be the source capture's packets: the same IP bytes (or a prefix of them, when the
capture logged a truncated payload), the same timestamps to the microsecond.

`real` (a real capture): the same rebuild, and when Windows' own conversion of it is given
(pktmon etl2pcap / pktmon format -f pcapng), every packet event must be the converted file's
packet: bytes and timestamp.

Either writes the counts the Rust test compares tlscensus against (`expected/NAME.json`).
Nothing here uses make_etl.py's code: the frames are rebuilt from dissect.etl's records.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import struct
import sys
import uuid
from importlib.metadata import version

from dissect.etl.etl import ETL
from dissect.util.compression.lzxpress import decompress as xpress_decompress

NDIS = uuid.UUID("2ed6006e-4729-4609-b423-3ee7bcd678ef")
PKTMON = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
KW_WWAN, KW_80211, KW_START, KW_END = 0x200, 0x10000, 0x40000000, 0x80000000
UNIX_EPOCH_FT = 116444736000000000


def fail(msg: str) -> None:
    raise SystemExit(f"verify_etl: {msg}")


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def us_string(ft: int) -> str:
    us = (ft - UNIX_EPOCH_FT) // 10
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Rec:
    __slots__ = ("kind", "provider", "event_id", "keywords", "ft", "cpu", "payload", "buffer", "record")


def exact_ft(etl: ETL, raw: int) -> int:
    """FILETIME of a raw event timestamp, from the logfile header fields dissect.etl parsed
    (StartTime, the header record's raw time, the clock type and its frequency), in
    integer arithmetic: dissect.etl's float conversion loses 100-ns units on FILETIME
    clocks (values near 2^57)."""
    lh = etl.logfile_header
    start = lh.start_time
    raw0 = lh.system_header.time_delta
    kind = int(lh.header.ReservedFlags)
    if kind == 1:
        return start + (raw - raw0) * 10_000_000 // lh.perf_freq
    if kind == 2:
        return start + (raw - raw0)
    if kind == 3:
        return start + (raw - raw0) * 10 // lh.cpu_speed_in_MHz
    fail(f"unknown clock type {kind}")


def parse(path: str) -> tuple[ETL, list[dict], list[Rec]]:
    """Every buffer and record of the file, as dissect.etl reads them."""
    fh = open(path, "rb")
    etl = ETL(fh)
    buffers = []
    recs = []
    for bi, buf in enumerate(etl.buffers()):
        h = buf.header
        compressed = bool(int(h.BufferFlag) & 0x40)
        if compressed:
            # Independent check of the compressed stream's length: dissect.util's decoder
            # must give back exactly the buffer's filled bytes.
            fh.seek(buf.offset + 0x48)
            packed = fh.read(h.BufferSize - 0x48)
            if len(xpress_decompress(packed)) != h.FilledBytes - 0x48:
                fail(f"{path}: buffer {bi} decompresses to the wrong length")
        buffers.append(
            {"offset": buf.offset, "size": h.BufferSize, "filled": h.FilledBytes, "cpu": h.ProcessorIndex,
             "compressed": compressed, "flags": int(h.BufferFlag), "type": int(h.BufferType)}
        )
        for r in buf:
            hd = r.header
            rec = Rec()
            rec.kind = type(hd).__name__
            rec.buffer = bi
            rec.cpu = h.ProcessorIndex
            rec.record = bytes(hd.data[: hd.size])
            rec.ft = exact_ft(etl, hd.time_delta)
            # dissect.etl's own (floating-point) conversion must agree within 2 µs.
            if abs(etl.get_filetime_for_event(hd.time_delta) - rec.ft) > 20:
                fail(f"{path}: clock conversions disagree at buffer {bi}")
            if rec.kind == "EventHeader":
                # dissect.etl 3.14 shows EVENT_HEADER GUIDs with the wrong byte order
                # (UUID(bytes=...)); the raw field is little-endian, as everywhere in ETW.
                rec.provider = uuid.UUID(bytes_le=bytes(hd.header.ProviderId))
                rec.event_id = hd.header.Id
                rec.keywords = hd.header.Keywords
                rec.payload = bytes(hd.payload)
            else:
                rec.provider = hd.provider_id
                rec.event_id = None
                rec.keywords = None
                rec.payload = bytes(hd.payload)
            recs.append(rec)
    return etl, buffers, recs


def rebuild(recs: list[Rec]) -> dict:
    """Frames from packet events: what a reader of this capture should yield."""
    frames = []  # dicts: ft, data, orig_len, link, order
    fragments = duplicates = drops = drop_only = truncated = 0
    packet_events = 0
    partial: dict[int, list] = {}
    seen: dict[tuple, int] = {}
    every = []  # every packet/drop event (pktmon), for comparison with a converted pcapng
    order = 0
    for r in recs:
        order += 1
        if r.kind != "EventHeader":
            continue
        if r.provider == NDIS and r.event_id == 1001:
            packet_events += 1
            mini, lower, size = struct.unpack_from("<III", r.payload, 0)
            if 12 + size > len(r.payload):
                fail("NDIS fragment longer than its event")
            frag = r.payload[12 : 12 + size]
            kw = r.keywords
            if not (kw & KW_START and kw & KW_END):
                fragments += 1
            if kw & KW_START:
                partial[r.cpu] = [r.ft, bytearray()]
            cur = partial.setdefault(r.cpu, [r.ft, bytearray()])
            cur[1] += frag
            if kw & KW_END:
                link = 105 if kw & KW_80211 else 101 if kw & KW_WWAN else 1
                data = bytes(cur[1])
                frames.append({"ft": cur[0], "data": data, "orig_len": len(data), "link": link, "order": order})
                del partial[r.cpu]
        elif r.provider == PKTMON and r.event_id in (160, 170):
            (group, number, appearance, dirtag, ptype, comp, edge, filt, reason, location, orig, logged) = struct.unpack_from(
                "<QHHHHHHHIIHH", r.payload, 0
            )
            data = r.payload[34 : 34 + logged]
            if len(data) != logged:
                fail("pktmon payload shorter than LoggedPayloadSize")
            link = {1: 1, 2: 105, 3: 101}.get(ptype, 0)
            every.append({"ft": r.ft, "data": data, "orig_len": orig, "event_id": r.event_id})
            if r.event_id == 170:
                drops += 1
            else:
                packet_events += 1
            key = (group, number)
            if key in seen:
                if r.event_id == 160:
                    duplicates += 1
                continue
            seen[key] = len(frames)
            if r.event_id == 170:
                drop_only += 1
                continue  # a packet only ever seen being dropped never reached the wire here
            if logged < orig:
                truncated += 1
            frames.append({"ft": r.ft, "data": data, "orig_len": orig, "link": link, "order": order})
    frames.sort(key=lambda f: (f["ft"], f["order"]))
    return {
        "frames": frames,
        "every": every,
        "packet_events": packet_events,
        "fragments": fragments,
        "duplicates": duplicates,
        "drops": drops,
        "drop_only": drop_only,
        "truncated": truncated,
        "unfinished": sum(1 for v in partial.values() if v[1]),
    }


def strip_l2(data: bytes, link: int) -> bytes | None:
    """The IP packet of a frame (Ethernet, raw IP, or 802.11 with LLC/SNAP)."""
    if link == 101:
        return data
    if link == 1:
        pos = 12
        while len(data) >= pos + 2 and data[pos : pos + 2] in (b"\x81\x00", b"\x88\xa8"):
            pos += 4
        if data[pos : pos + 2] in (b"\x08\x00", b"\x86\xdd"):
            return data[pos + 2 :]
        return None
    if link == 105:
        fc = data[0]
        hdr = 24 + (2 if fc & 0x80 else 0)
        if data[hdr : hdr + 6] == b"\xaa\xaa\x03\x00\x00\x00" and data[hdr + 6 : hdr + 8] in (b"\x08\x00", b"\x86\xdd"):
            return data[hdr + 8 :]
        return None
    return None


def read_capture(path: str) -> list[tuple[int, int, bytes, int]]:
    """(FILETIME, link type, bytes, original length) of each packet of a pcap/pcapng."""
    b = open(path, "rb").read()
    out = []
    if b[:4] == b"\x0a\x0d\x0d\x0a":
        pos, e, ifaces = 0, "<", []
        while pos + 12 <= len(b):
            bt = struct.unpack_from(e + "I", b, pos)[0]
            if bt == 0x0A0D0D0A:
                e = "<" if b[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            bl = struct.unpack_from(e + "I", b, pos + 4)[0]
            body = b[pos + 8 : pos + bl - 4]
            if bt == 1:
                lt = struct.unpack_from(e + "H", body, 0)[0]
                units, op = 1_000_000, 8
                while op + 4 <= len(body):
                    code, ol = struct.unpack_from(e + "HH", body, op)
                    if code == 0:
                        break
                    if code == 9:
                        r = body[op + 4]
                        units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
                    op += 4 + ol + (-ol % 4)
                ifaces.append((lt, units))
            elif bt == 6:
                i, hi, lo, cap, orig = struct.unpack_from(e + "IIIII", body, 0)
                lt, units = ifaces[i]
                ns = ((hi << 32) | lo) * 1_000_000_000 // units
                out.append((UNIX_EPOCH_FT + ns // 100, lt, body[20 : 20 + cap], orig))
            pos += bl
    else:
        magic = struct.unpack_from("<I", b, 0)[0]
        e, mult = {0xA1B2C3D4: ("<", 1000), 0xA1B23C4D: ("<", 1), 0xD4C3B2A1: (">", 1000), 0x4D3CB2A1: (">", 1)}[magic]
        lt = struct.unpack_from(e + "I", b, 20)[0] & 0x0FFFFFFF
        pos = 24
        while pos + 16 <= len(b):
            s, frac, incl, orig = struct.unpack_from(e + "IIII", b, pos)
            pos += 16
            out.append((UNIX_EPOCH_FT + (s * 1_000_000_000 + frac * mult) // 100, lt, b[pos : pos + incl], orig))
            pos += incl
    return out


def counts(path: str, etl: ETL, buffers: list[dict], recs: list[Rec], rb: dict) -> dict:
    frames = rb["frames"]
    lh = etl.logfile_header
    links: dict[str, int] = {}
    for f in frames:
        links[str(f["link"])] = links.get(str(f["link"]), 0) + 1
    flavour = "pktmon" if any(r.provider == PKTMON for r in recs) else "netsh" if any(r.provider == NDIS for r in recs) else "none"
    return {
        "file": os.path.basename(path),
        "parser": f"dissect.etl {version('dissect.etl')}",
        "flavour": flavour,
        "logger_name": lh.logger_name,
        "clock_type": int(lh.header.ReservedFlags),
        "buffers": len(buffers),
        "compressed_buffers": sum(1 for b in buffers if b["compressed"]),
        "cpus": sorted({b["cpu"] for b in buffers if b["type"] != 4}),
        "records": len(recs),
        "packet_events": rb["packet_events"],
        "fragment_events": rb["fragments"],
        "frames": len(frames),
        "duplicates": rb["duplicates"],
        "drops": rb["drops"],
        "drop_only_packets": rb["drop_only"],
        "truncated_frames": rb["truncated"],
        "link_types": links,
        "first_ts": us_string(frames[0]["ft"]) if frames else None,
        "last_ts": us_string(frames[-1]["ft"]) if frames else None,
        "frames_sha256": sha(b"".join(struct.pack("<QI", f["ft"] // 10, len(f["data"])) + f["data"] for f in frames)),
    }


def check(args) -> dict:
    etl, buffers, recs = parse(args.etl)
    intent = json.load(open(args.intent))

    # 1. Records: the writer's events, in file order, after the header buffer's system records.
    mine = [r for r in recs if r.buffer > 0]
    want = intent["events"]
    if len(mine) != len(want):
        fail(f"{args.etl}: dissect.etl found {len(mine)} records, the writer meant {len(want)}")
    for i, (r, w) in enumerate(zip(mine, want)):
        where = f"{args.etl}: record {i} ({w.get('kind')})"
        if str(r.provider) != w["provider"]:
            fail(f"{where}: provider {r.provider} != {w['provider']}")
        if "id" in w and r.event_id != w["id"]:
            fail(f"{where}: event id {r.event_id} != {w['id']}")
        if "keywords" in w and r.keywords != w["keywords"]:
            fail(f"{where}: keywords {r.keywords:#x} != {w['keywords']:#x}")
        if "payload_sha256" in w and sha(r.payload) != w["payload_sha256"]:
            fail(f"{where}: payload differs")
        if sha(r.record) != w["record_sha256"]:
            fail(f"{where}: record bytes differ")
        if r.cpu != w["cpu"]:
            fail(f"{where}: CPU {r.cpu} != {w['cpu']}")
        if r.ft != w["ft"]:
            fail(f"{where}: time {r.ft} != {w['ft']} (dissect.etl's clock conversion)")
    if len(buffers) != len(intent["buffers"]):
        fail(f"{args.etl}: {len(buffers)} buffers, meant {len(intent['buffers'])}")
    for b, w in zip(buffers, intent["buffers"]):
        if (b["offset"], b["size"], b["cpu"], b["compressed"], b["filled"]) != (
            w["offset"], w["size"], w["cpu"], w["compressed"], w["filled"]):
            fail(f"{args.etl}: buffer at {b['offset']} is not the one meant: {b} / {w}")

    # 2. Frames rebuilt from dissect.etl's view against the source capture.
    rb = rebuild(recs)
    frames = rb["frames"]
    source = sorted(read_capture(args.source), key=lambda s: s[0])  # stable: file order within a time
    src_ip = [(ft, strip_l2(data, lt), orig - (len(data) - len(strip_l2(data, lt) or b"")))
              for ft, lt, data, orig in source]
    if intent["media"] in ("rawip", "wifi"):
        src_ip = [s for s in src_ip if s[1] is not None]
    if len(frames) != len(src_ip):
        fail(f"{args.etl}: {len(frames)} frames rebuilt, the source has {len(src_ip)} packets")
    for n, (f, (sft, sip, sorig)) in enumerate(zip(frames, src_ip), start=1):
        if f["ft"] // 10 != sft // 10:
            fail(f"{args.etl}: frame {n} at {us_string(f['ft'])}, source packet at {us_string(sft)}")
        ip = strip_l2(f["data"], f["link"])
        if sip is None:
            if f["link"] == 1 and intent["media"] == "ethernet":
                continue  # a non-IP Ethernet frame: compare the whole frame below
        if ip is None:
            fail(f"{args.etl}: frame {n} holds no IP packet")
        if intent["pkt_size"]:
            if not sip.startswith(ip):
                fail(f"{args.etl}: frame {n} is not a prefix of the source packet")
            if f["orig_len"] - (len(f["data"]) - len(ip)) != sorig:
                fail(f"{args.etl}: frame {n} original size {f['orig_len']} does not match the source")
        elif ip != sip:
            fail(f"{args.etl}: frame {n} differs from source packet {n}")
    out = counts(args.etl, etl, buffers, recs, rb)
    out["source"] = os.path.relpath(args.source, args.root) if args.root else os.path.basename(args.source)
    return out


def real(args) -> dict:
    etl, buffers, recs = parse(args.etl)
    rb = rebuild(recs)
    out = counts(args.etl, etl, buffers, recs, rb)
    if args.pcapng:
        conv = read_capture(args.pcapng)
        every = sorted(rb["every"], key=lambda e: e["ft"]) if rb["every"] else rb["frames"]
        if len(conv) != len(every):
            fail(f"{args.etl}: {len(every)} packet events, Windows' conversion has {len(conv)} packets")
        for n, (e, (ft, lt, data, orig)) in enumerate(zip(every, conv), start=1):
            if e["ft"] // 10 != ft // 10 or e["data"] != data:
                fail(f"{args.etl}: packet event {n} differs from converted packet {n}")
        out["converted"] = os.path.basename(args.pcapng)
        out["converted_packets"] = len(conv)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("check")
    c.add_argument("etl")
    c.add_argument("--intent", required=True)
    c.add_argument("--source", required=True)
    c.add_argument("--expected", required=True)
    c.add_argument("--root", help="paths in the expected file are relative to this")
    r = sub.add_parser("real")
    r.add_argument("etl")
    r.add_argument("--pcapng")
    r.add_argument("--expected", required=True)
    args = ap.parse_args()
    out = check(args) if args.mode == "check" else real(args)
    with open(args.expected, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"ok {os.path.basename(args.etl)}: {out['frames']} frames, {out['duplicates']} duplicates, "
          f"{out['drops']} drops, {out['buffers']} buffers ({out['compressed_buffers']} compressed)")


if __name__ == "__main__":
    main()
