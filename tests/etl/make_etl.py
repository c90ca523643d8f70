#!/usr/bin/env python3
"""Convert a pcap/pcapng capture into an ETW `.etl` packet capture, as Windows writes them.

Two flavours:

* `netsh`  - `netsh trace start capture=yes`: Microsoft-Windows-NDIS-PacketCapture
  ({2ED6006E-4729-4609-B423-3EE7BCD678EF}) event 1001 "packet fragment", user data
  MiniportIfIndex u32, LowerIfIndex u32, FragmentSize u32, Fragment[FragmentSize]
  (optionally followed by GftFlowEntryId u64, GftOffloadInformation u64, as newer Windows
  logs). The media is in the keywords: 0x1 Ethernet 802.3, 0x10000 native 802.11,
  0x200 wireless WAN (raw IP); 0x40000000 PacketStart and 0x80000000 PacketEnd delimit a
  packet split over several events; 0x100000000 send path, 0x200000000 receive path.
  Event 1002 (metadata) may precede an 802.11 packet; it is not a packet.
* `pktmon` - `pktmon start --capture`: Microsoft-Windows-PktMon
  ({4D4F80D9-C8BD-4D73-BB5B-19C90402C5AC}) event 160 (packet) and 170 (drop), keyword 0x10,
  user data packed without padding: PktGroupId u64, PktNumber u16, AppearanceCount u16,
  DirTag u16 (3 receive, 4 send), PacketType u16 (1 Ethernet, 2 802.11, 3 IP),
  ComponentId u16, EdgeId u16, FilterId u16, DropReason u32, DropLocation u32,
  OriginalPayloadSize u16, LoggedPayloadSize u16, Payload[LoggedPayloadSize]. The same packet
  is logged once per component it passes (same PktGroupId/PktNumber, AppearanceCount
  1, 2, ...); a drop is logged as one more appearance, as event 170. The final file is
  written by pktmon's relogger: a small header buffer, then buffers that may be compressed.

Common options: several CPUs' buffers interleaved (packets of each direction of a flow go
to one CPU, as receive-side scaling would; buffers are written in the order they fill up),
the clock the logfile header declares, the buffer size, and noise (events of other
providers and other event ids, classic EVENT_TRACE_HEADER and system records) that a
reader must step over.

`--intent FILE` writes what was meant to be in the file (every event's provider, id,
keywords, FILETIME, CPU and payload digest; the frames a reader should yield); verify_etl.py
checks the file against it with an independent parser.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from etlwriter import etl, pcapio  # noqa: E402

NDIS = uuid.UUID("2ed6006e-4729-4609-b423-3ee7bcd678ef")
PKTMON = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
TCPIP = uuid.UUID("2f07e2ee-15db-40f1-90ef-9d7ba282188a")
EVENTTRACE_FILES = uuid.UUID("9b79ee91-b5fd-41c0-a243-4248e266e9d0")

KW_ETHERNET = 0x1
KW_WWAN = 0x200
KW_NATIVE_80211 = 0x10000
KW_START = 0x40000000
KW_END = 0x80000000
KW_SEND = 0x100000000
KW_RECEIVE = 0x200000000
KW_NDIS_EVENT = 0x20000000000 | 0x40000000000

PKTMON_KW = 0x10
DIR_RX, DIR_TX = 3, 4
PT_ETHERNET, PT_WIFI, PT_IP = 1, 2, 3

UNIX_EPOCH_FT = 116444736000000000

LINK_ETHERNET = 1
RAW_LINKTYPES = {101, 12, 14, 228, 229}

PKTMON_PATH = [(13, 1), (42, 2), (59, 1), (61, 2), (64, 1), (70, 2), (75, 1), (80, 2)]


def ip_packet(p: pcapio.Packet) -> bytes | None:
    """The IP packet inside a frame, or None for anything else (ARP, ...)."""
    if p.linktype in RAW_LINKTYPES:
        return p.data
    if p.linktype != LINK_ETHERNET:
        raise SystemExit(f"unsupported input link type {p.linktype}")
    pos = 12
    etype = struct.unpack_from(">H", p.data, pos)[0] if len(p.data) >= 14 else 0
    while etype in (0x8100, 0x88A8) and len(p.data) >= pos + 6:
        pos += 4
        etype = struct.unpack_from(">H", p.data, pos)[0]
    if etype in (0x0800, 0x86DD):
        return p.data[pos + 2 :]
    return None


def as_ethernet(p: pcapio.Packet) -> bytes:
    if p.linktype == LINK_ETHERNET:
        return p.data
    ipb = p.data
    etype = 0x86DD if ipb and ipb[0] >> 4 == 6 else 0x0800
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack(">H", etype) + ipb


def as_80211(p: pcapio.Packet, send: bool) -> bytes:
    """An 802.11 data frame (to or from the AP) with an LLC/SNAP header."""
    eth = as_ethernet(p)
    dst, src, etype = eth[0:6], eth[6:12], eth[12:14]
    bssid = b"\x02\xaa\xbb\xcc\xdd\x01"
    if send:  # ToDS: addr1 BSSID, addr2 SA, addr3 DA
        fc, a1, a2, a3 = b"\x08\x01", bssid, src, dst
    else:  # FromDS: addr1 DA, addr2 BSSID, addr3 SA
        fc, a1, a2, a3 = b"\x08\x02", dst, bssid, src
    return fc + b"\x00\x00" + a1 + a2 + a3 + b"\x00\x00" + b"\xaa\xaa\x03\x00\x00\x00" + etype + eth[14:]


def flow_side(ipb: bytes) -> tuple:
    """(source address, source port) of an IP packet, for direction and CPU choice."""
    if not ipb:
        return (b"", 0)
    if ipb[0] >> 4 == 4 and len(ipb) >= 20:
        ihl = (ipb[0] & 15) * 4
        sport = struct.unpack_from(">H", ipb, ihl)[0] if len(ipb) >= ihl + 2 and ipb[9] in (6, 17) else 0
        return (ipb[12:16], sport)
    if ipb[0] >> 4 == 6 and len(ipb) >= 40:
        sport = struct.unpack_from(">H", ipb, 40)[0] if len(ipb) >= 42 and ipb[6] in (6, 17) else 0
        return (ipb[8:24], sport)
    return (b"", 0)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Writer:
    def __init__(self, args):
        self.args = args
        self.streams: dict[int, list] = {}  # cpu -> [(ft, order, record, meta)]
        self.order = 0

    def add(self, cpu: int, ft: int, record: bytes, meta: dict) -> None:
        self.order += 1
        self.streams.setdefault(cpu, []).append((ft, self.order, record, meta))


def build(args) -> dict:
    packets = pcapio.read(args.input)
    if args.limit:
        packets = packets[: args.limit]
    if not packets:
        raise SystemExit("no packets in the input")

    fts = [UNIX_EPOCH_FT + p.ts_ns // 100 for p in packets]
    if args.cpus > 1 and any(b < a for a, b in zip(fts, fts[1:])):
        raise SystemExit("input timestamps go backwards: several CPUs would reorder it; use --cpus 1")

    # The session started on the whole second before the first packet (a whole second
    # keeps each packet in its microsecond however the clock rounds).
    start_ft = fts[0] // 10_000_000 * 10_000_000 - 10_000_000
    kind = {"qpc": etl.CLOCK_QPC, "systemtime": etl.CLOCK_SYSTEMTIME, "cpu": etl.CLOCK_CPUCYCLE}[args.clock]
    raw0 = start_ft if kind == etl.CLOCK_SYSTEMTIME else 0x24608A0E8C7 * (1 if kind == etl.CLOCK_QPC else 3)
    clock = etl.Clock(kind, start_ft, raw0, args.perf_freq, args.cpu_mhz)

    w = Writer(args)
    local = flow_side(ip_packet(packets[0]) or b"")
    tx_cpu: dict[tuple, int] = {}
    frames = []
    fragment_plan = dict(args.fragment or [])
    drop_set = set(args.drop or [])
    last_cpu = 0
    last_ft = None
    tid = 0x69F8

    if args.noise:
        add_noise_start(w, args, start_ft + 5)

    group_base = 0x105A26
    for idx, (p, ft) in enumerate(zip(packets, fts), start=1):
        ipb = ip_packet(p)
        if args.media in ("rawip", "wifi") and ipb is None:
            continue  # not an IP packet: a raw-IP interface would not carry it
        side = flow_side(ipb or b"")
        send = side == local
        if args.cpus > 1:
            if last_ft is not None and ft == last_ft:
                cpu = last_cpu  # equal timestamps stay in one CPU's order
            else:
                cpu = tx_cpu.setdefault(side, (len(tx_cpu) * 7 + 1) % args.cpus)
        else:
            cpu = 0
        last_cpu, last_ft = cpu, ft

        if args.media == "ethernet":
            frame = as_ethernet(p)
            link = 1
        elif args.media == "rawip":
            frame = ipb
            link = 101
        else:
            frame = as_80211(p, send)
            link = 105
        orig_len = p.orig_len - (len(p.data) - len(frame))
        truncated = args.pkt_size and len(frame) > args.pkt_size
        logged = frame[: args.pkt_size] if truncated else frame
        frames.append(
            {
                "source_index": idx,
                "ft": clock.ft(clock.raw(ft)),
                "link_type": link,
                "len": len(logged),
                "orig_len": orig_len,
                "sha256": sha(logged),
                "send": send,
                "cpu": cpu,
            }
        )

        if args.flavour == "netsh":
            media_kw = {"ethernet": KW_ETHERNET, "rawip": KW_WWAN, "wifi": KW_NATIVE_80211}[args.media]
            dir_kw = KW_SEND if send else KW_RECEIVE
            if args.media == "wifi" and not send:
                meta = struct.pack("<BBHIIIHiBIQQ", 0x80, 1, 48, 0, 7, 5180, 1, -50, 108, 0, 0, 0)
                payload = struct.pack("<III", 11, 11, len(meta)) + meta
                rec = etl.event_header_record(NDIS, 1002, KW_NDIS_EVENT & ~0x20000000000 | dir_kw, clock.raw(ft), payload,
                                              thread_id=tid, process_id=4)
                w.add(cpu, ft, rec, {"provider": str(NDIS), "id": 1002, "kind": "metadata"})
            k = fragment_plan.get(idx, 1)
            k = max(1, min(k, len(logged)))
            cuts = [len(logged) * i // k for i in range(k + 1)]
            for i in range(k):
                frag = logged[cuts[i] : cuts[i + 1]]
                kw = media_kw | KW_NDIS_EVENT | dir_kw
                if i == 0:
                    kw |= KW_START
                if i == k - 1:
                    kw |= KW_END
                payload = struct.pack("<III", 11, 11 if args.media != "ethernet" else 17, len(frag)) + frag
                if args.gft:
                    payload += struct.pack("<QQ", 0, 0)
                rec = etl.event_header_record(NDIS, 1001, kw, clock.raw(ft), payload, thread_id=tid, process_id=4)
                w.add(cpu, ft, rec, {"provider": str(NDIS), "id": 1001, "kind": "fragment", "frame": len(frames) - 1,
                                     "keywords": kw, "fragment": i, "fragments": k})
        else:
            ptype = {"ethernet": PT_ETHERNET, "rawip": PT_IP, "wifi": PT_WIFI}[args.media]
            group = group_base + idx
            ncomp = max(1, args.components)
            path = PKTMON_PATH[:ncomp] if send else list(reversed(PKTMON_PATH[:ncomp]))
            appearances = [(160, c, e, 0, 0) for c, e in path]
            if idx in drop_set:
                appearances.append((170, 98, 0, 902, 0xE0003038))
            for a, (eid, comp, edge, reason, location) in enumerate(appearances, start=1):
                aft = ft + (a - 1)  # each later appearance 100 ns after the one before
                payload = struct.pack(
                    "<QHHHHHHHIIHH",
                    group,
                    1,
                    a,
                    DIR_TX if send else DIR_RX,
                    ptype,
                    comp,
                    edge,
                    1 if args.filter_id else 0,
                    reason,
                    location,
                    min(orig_len, 0xFFFF),
                    len(logged),
                ) + logged
                rec = etl.event_header_record(PKTMON, eid, PKTMON_KW, clock.raw(aft), payload,
                                              thread_id=0, process_id=0, processor_time=0xA82D)
                w.add(cpu, aft, rec, {"provider": str(PKTMON), "id": eid, "kind": "packet" if eid == 160 else "drop",
                                      "frame": len(frames) - 1, "appearance": a, "group": group})

    if args.noise:
        add_noise_packets(w, args, clock, fts[len(fts) // 2] if fts else start_ft)

    return lay_out(args, clock, w, frames)


def add_noise_start(w: Writer, args, ft: int) -> None:
    """Records a real file carries before the packets: classic EVENT_TRACE_HEADER records
    (volume/file name rundown) and the provider's own non-packet events."""
    for i, name in enumerate(["\\Device\\HarddiskVolume2\\", "C:\\", "\\SystemRoot\\"]):
        payload = (name + "\0").encode("utf-16-le") + ("C:\\Windows\\" + "\0").encode("utf-16-le")
        w.add(0, ft + i, ("trace", EVENTTRACE_FILES, payload, 0x20 + i), {"provider": str(EVENTTRACE_FILES), "kind": "noise"})
    if args.flavour == "pktmon":
        for i, (eid, kw) in enumerate([(20, 0x2), (30, 0x2), (80, 0x2), (90, 0x2)]):
            payload = struct.pack("<HH", 0x79 + i, 2) + "NDIS\0".encode("utf-16-le")
            w.add(0, ft + 10 + i, ("event", PKTMON, eid, kw, payload), {"provider": str(PKTMON), "id": eid, "kind": "noise"})
    else:
        for i, (eid, payload) in enumerate([(1011, struct.pack("<I", 1)), (1016, struct.pack("<BBH", 4, 3, 4) + struct.pack("<I", 11))]):
            w.add(0, ft + 10 + i, ("event", NDIS, eid, 0xC000000000, payload), {"provider": str(NDIS), "id": eid, "kind": "noise"})


def add_noise_packets(w: Writer, args, clock, ft: int) -> None:
    """An event of another provider with the packet event's id, and a packet-looking event
    id of the right provider's neighbour: a reader must match provider and id both."""
    eid = 1001 if args.flavour == "netsh" else 160
    fake = struct.pack("<III", 1, 1, 20) + bytes(range(20))
    w.add(0, ft, ("event", TCPIP, eid, KW_ETHERNET | KW_START | KW_END, fake), {"provider": str(TCPIP), "id": eid, "kind": "noise"})
    other = 1003 + 1 if args.flavour == "netsh" else 161
    prov = NDIS if args.flavour == "netsh" else PKTMON
    w.add(0, ft, ("event", prov, other, 0x10, fake), {"provider": str(prov), "id": other, "kind": "noise"})


def lay_out(args, clock: etl.Clock, w: Writer, frames: list) -> dict:
    # Render deferred noise records now that the clock is known.
    events = []
    for cpu, stream in w.streams.items():
        for ft, order, rec, meta in stream:
            if isinstance(rec, tuple):
                if rec[0] == "trace":
                    _, prov, payload, type_ = rec
                    rec = etl.trace_record(prov, clock.raw(ft), payload, type_=type_)
                else:
                    _, prov, eid, kw, payload = rec
                    rec = etl.event_header_record(prov, eid, kw, clock.raw(ft), payload)
            events.append((ft, order, cpu, rec, meta))
    events.sort(key=lambda e: (e[0], e[1]))

    cap = args.buffer_size
    largest = max(len(e[3]) for e in events)
    if etl.align8(etl.HEADER_LEN) + largest > cap:
        raise SystemExit(f"--buffer-size {cap} cannot hold an event of {largest} bytes")

    written: list[etl.Buffer] = []
    current: dict[int, etl.Buffer] = {}
    placed = []  # (buffer object, offset in buffer, ft, cpu, record, meta)
    for ft, order, cpu, rec, meta in events:
        buf = current.get(cpu)
        if buf is None or not buf.fits(rec):
            if buf is not None:
                written.append(buf)
            buf = current[cpu] = etl.Buffer(cpu, cap)
        at = buf.add(rec, ft)
        placed.append((buf, at, ft, cpu, rec, meta))
    for cpu in sorted(current):
        current[cpu].flush_marker = True
        written.append(current[cpu])

    if args.rotate and len(written) > 1:
        r = args.rotate % len(written)
        written = written[r:] + written[:r]

    last_ft = max(e[0] for e in events)
    relogger = args.flavour == "pktmon"
    header_cap = 1024 if relogger else cap
    logger_name = "Relogger" if relogger else "NetTrace"
    file_name = "C:\\Users\\tester\\PktMon.etl" if relogger else "C:\\Users\\tester\\AppData\\Local\\Temp\\NetTraces\\NetTrace.etl"
    ncpus = max(args.cpus, 2)
    hdr = etl.Buffer(0, header_cap, kind=etl.TYPE_HEADER, flush_marker=True)
    # BootTime: the raw clock counts from boot, but real files' BootTime is a few seconds
    # off StartTime - raw0 (tests/etl/real/); readers must use StartTime and raw0.
    since_boot = 0 if clock.kind == etl.CLOCK_SYSTEMTIME else clock.ft(2 * clock.raw0) - clock.start_ft
    boot_ft = clock.start_ft - (since_boot or 36_000_000_000) - 25_000_000
    payload = etl.logfile_header_payload(
        buffer_size=0x1000000 if relogger else cap,
        build=20348 if relogger else 19045,
        ncpus=ncpus,
        end_ft=last_ft,
        log_file_mode=0x4010001 if relogger else 0x2,
        buffers_written=1 + len(written),
        clock=clock,
        boot_ft=boot_ft,
        logger_name=logger_name,
        log_file_name=file_name,
    )
    hdr.add(etl.system_record(0, 0, clock.raw0, payload, thread_id=0x2624, process_id=0xB74), clock.start_ft)
    hdr.add(etl.system_record(0, 0x50, clock.raw0, b"\0" * 0x30, thread_id=0x2624, process_id=0xB74), clock.start_ft)

    blob = bytearray(hdr.encode(0, compress=False, proc_index=False))
    buf_info = [{"offset": 0, "size": len(blob), "cpu": 0, "compressed": False, "filled": hdr.used, "type": "header"}]
    offsets = {}
    for seq, buf in enumerate(written, start=1):
        enc = buf.encode(seq, compress=args.compress)
        offsets[id(buf)] = len(blob)
        buf_info.append({"offset": len(blob), "size": len(enc), "cpu": buf.cpu, "compressed": args.compress,
                         "filled": buf.used, "type": "data"})
        blob += enc

    with open(args.output, "wb") as f:
        f.write(blob)

    order_in_file = {id(b): i for i, b in enumerate(written)}
    intended = []
    for buf, at, ft, cpu, rec, meta in sorted(placed, key=lambda x: (order_in_file[id(x[0])], x[1])):
        e = dict(meta)
        e.update({"ft": clock.ft(clock.raw(ft)), "cpu": cpu, "buffer": order_in_file[id(buf)] + 1, "record_sha256": sha(rec)})
        if rec[2:4] == b"\x13\xc0":
            e["keywords"] = struct.unpack_from("<Q", rec, 0x30)[0]
            e["payload_sha256"] = sha(rec[0x50:])
            e["payload_len"] = len(rec) - 0x50
        intended.append(e)
    return {
        "input": os.path.basename(args.input),
        "flavour": args.flavour,
        "media": args.media,
        "clock": args.clock,
        "perf_freq": clock.perf_freq,
        "cpu_mhz": clock.cpu_mhz,
        "start_ft": clock.start_ft,
        "raw0": clock.raw0,
        "pkt_size": args.pkt_size,
        "components": args.components if args.flavour == "pktmon" else None,
        "buffers": buf_info,
        "events": intended,
        "frames": frames,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--flavour", choices=["netsh", "pktmon"], required=True)
    ap.add_argument("--media", choices=["ethernet", "rawip", "wifi"], default="ethernet")
    ap.add_argument("--fragment", type=lambda s: tuple(int(x) for x in s.split(":")), action="append",
                    metavar="N:K", help="netsh: split packet N (1-based, input order) into K events")
    ap.add_argument("--gft", action="store_true", help="netsh: append GftFlowEntryId/GftOffloadInformation")
    ap.add_argument("--components", type=int, default=1, help="pktmon: log each packet at this many components")
    ap.add_argument("--drop", type=int, action="append", metavar="N", help="pktmon: packet N also gets a drop (170)")
    ap.add_argument("--pkt-size", type=int, default=0, help="pktmon: log at most this many bytes (pktmon's --pkt-size)")
    ap.add_argument("--filter-id", action="store_true", help="pktmon: packets matched filter 1")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--buffer-size", type=int, default=65536)
    ap.add_argument("--compress", action="store_true", help="MS-XCA LZ77-compressed buffers (pktmon does this)")
    ap.add_argument("--rotate", type=int, default=0, help="write the data buffers rotated by N (a wrapped circular file)")
    ap.add_argument("--clock", choices=["qpc", "systemtime", "cpu"], default="qpc")
    ap.add_argument("--perf-freq", type=int, default=10_000_000)
    ap.add_argument("--cpu-mhz", type=int, default=2400)
    ap.add_argument("--noise", action="store_true", help="add events a reader must skip")
    ap.add_argument("--limit", type=int, default=0, help="only the first N packets")
    ap.add_argument("--intent", help="write what the file is meant to hold (JSON) here")
    args = ap.parse_args(argv)
    if args.flavour == "netsh" and (args.components != 1 or args.drop or args.pkt_size):
        ap.error("--components, --drop and --pkt-size are pktmon options")
    if args.flavour == "pktmon" and (args.fragment or args.gft):
        ap.error("--fragment and --gft are netsh options")
    intent = build(args)
    if args.intent:
        with open(args.intent, "w") as f:
            json.dump(intent, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
