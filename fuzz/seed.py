#!/usr/bin/env python3
"""Build seed corpora for the fuzz targets from real captures.

Usage: seed.py OUT_DIR CAPTURE...

Reads pcap and pcapng files (Ethernet, Linux SLL/SLL2, raw IP, BSD loopback), follows
IPv4/IPv6 TCP, and writes one directory per target under OUT_DIR, in each target's input
format (see the comment at the top of each fuzz_targets/*.rs). Small seeds only: the
fuzzer grows its own corpus from them.
"""

import hashlib
import os
import struct
import sys

# LINKTYPE_ values, in the order of the decode target's LINKS table.
DECODE_LINKS = [0, 1, 9, 101, 108, 113, 228, 229, 276]
# Server ports of the engine target's PORTS table.
ENGINE_PORTS = [443, 25, 587, 143, 110, 1194, 3389, 8443]
MAIL = {25: 0, 587: 0, 143: 1, 110: 2}  # starttls target: SMTP 0, IMAP 1, POP3 2
MAX_SEED = 64 * 1024


def frames(path):
    """(link type, frame bytes) of every frame of a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        yield from pcapng_frames(data)
        return
    else:
        return
    link = struct.unpack(end + "I", data[20:24])[0] & 0xFFFF
    pos = 24
    while pos + 16 <= len(data):
        caplen = struct.unpack(end + "I", data[pos + 8 : pos + 12])[0]
        if pos + 16 + caplen > len(data):
            return
        yield link, data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen


def pcapng_frames(data):
    pos, end, links = 0, "<", []
    while pos + 12 <= len(data):
        btype = struct.unpack(end + "I", data[pos : pos + 4])[0]
        if btype == 0x0A0D0D0A:
            end = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack(end + "I", data[pos + 4 : pos + 8])[0]
        if blen < 12 or pos + blen > len(data):
            return
        body = data[pos + 8 : pos + blen - 4]
        if btype == 1:
            links.append(struct.unpack(end + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:
            iface, caplen = struct.unpack(end + "I", body[:4])[0], struct.unpack(end + "I", body[12:16])[0]
            if iface < len(links):
                yield links[iface], body[20 : 20 + caplen]
        elif btype == 3 and links and len(body) >= 4:
            yield links[0], body[4:]
        pos += blen


def ip_of(link, frame):
    """The IP packet inside a frame, or None."""
    if link == 1:
        pos, etype = 14, frame[12:14]
        while etype in (b"\x81\x00", b"\x88\xa8") and len(frame) >= pos + 4:
            etype, pos = frame[pos + 2 : pos + 4], pos + 4
        return frame[pos:] if etype in (b"\x08\x00", b"\x86\xdd") else None
    if link == 113:
        return frame[16:] if frame[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if link == 276:
        return frame[20:] if frame[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if link in (0, 108):
        return frame[4:]
    if link in (101, 228, 229):
        return frame
    return None


def tcp_of(ip):
    """(src, dst, sport, dport, seq, flags, payload) of a TCP packet, or None."""
    if not ip:
        return None
    if ip[0] >> 4 == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6 or struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
            return None
        total = struct.unpack(">H", ip[2:4])[0]
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl : max(total, ihl)]
    elif ip[0] >> 4 == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        src, dst, tcp = ip[8:24], ip[24:40], ip[40 : 40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    off = (tcp[12] >> 4) * 4
    return src, dst, sport, dport, seq, tcp[13], tcp[off:]


def connections(path):
    """Per TCP connection, in capture order: (client, server port, [(from_server, flags, seq, payload)])."""
    conns = {}
    for link, frame in frames(path):
        t = tcp_of(ip_of(link, frame))
        if t is None:
            continue
        src, dst, sport, dport, seq, flags, payload = t
        key = tuple(sorted([(src, sport), (dst, dport)]))
        if key not in conns:
            client = (src, sport)
            if flags & 0x12 == 0x12:  # SYN-ACK first: the receiver is the client
                client = (dst, dport)
            conns[key] = (client, [])
        client, segs = conns[key]
        conns[key][1].append(((src, sport) != client, flags, seq, payload))
    for key, (client, segs) in conns.items():
        server_port = key[0][1] if key[0] != client else key[1][1]
        yield client, server_port, segs


def streams(segs):
    """The two directions' payload bytes in sequence order (duplicates dropped)."""
    out = []
    for side in (False, True):
        seen, parts = set(), []
        for from_server, _, seq, payload in segs:
            if from_server == side and payload and seq not in seen:
                seen.add(seq)
                parts.append((seq, payload))
        parts.sort()
        out.append(b"".join(p for _, p in parts)[:MAX_SEED])
    return out


def hellos(stream):
    """Hello seeds (selector + body) found at record boundaries of a direction."""
    pos = 0
    while pos + 5 <= len(stream) and stream[pos] in (20, 21, 22, 23) and stream[pos + 1] == 3:
        rlen = struct.unpack(">H", stream[pos + 3 : pos + 5])[0]
        body = stream[pos + 5 : pos + 5 + rlen]
        if stream[pos] == 22 and len(body) >= 4 and body[0] in (1, 2):
            hlen = int.from_bytes(body[1:4], "big")
            minor = stream[pos + 2] & 7
            selector = (0x00 if body[0] == 1 else 0x40) | minor
            yield bytes([selector]) + stream[pos + 9 : pos + 9 + hlen]
        pos += 5 + rlen
    if len(stream) > 3 and stream[0] & 0x80 and stream[2] in (1, 4):
        yield bytes([0x80 if stream[2] == 1 else 0xC0]) + stream[2:]


def engine_seed(server_port, segs):
    port = ENGINE_PORTS.index(server_port) if server_port in ENGINE_PORTS else 0
    out = bytearray([port])
    nxt = [None, None]
    for from_server, flags, seq, payload in segs[:200]:
        side = int(from_server)
        op = side | (2 if flags & 2 else 0) | (4 if flags & 1 else 0) | (8 if flags & 4 else 0)
        op |= 0x10 if flags & 0x10 else 0
        jump = 0
        if nxt[side] is not None and seq != nxt[side]:
            jump = max(-32768, min(32767, ((seq - nxt[side] + 2**31) % 2**32) - 2**31))
            op |= 0x20
        out.append(op)
        out += struct.pack(">H", len(payload))
        if op & 0x20:
            out += struct.pack(">h", jump)
        out += payload
        nxt[side] = (seq + len(payload) + (1 if flags & 3 else 0)) % 2**32
        if len(out) > MAX_SEED:
            break
    return bytes(out)


def starttls_seed(protocol, segs):
    out = bytearray([protocol])
    for from_server, _, _, payload in segs:
        if payload[:1] in (b"\x16", b"\x15", b"\x17", b"\x14"):
            break  # TLS started
        for i in range(0, len(payload), 508):
            chunk = payload[i : i + 508]
            n = (len(chunk) + 3) // 4
            chunk = chunk.ljust(n * 4, b"\n")
            out.append((0 if from_server else 0x80) | n)
            out += chunk
    return bytes(out)


# Classic pcap magic numbers (either byte order, µs or ns): files the workers can split.
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


def main():
    out_dir, captures = sys.argv[1], sys.argv[2:]
    targets = ["capture_reader", "decode", "hello", "tls_stream", "starttls", "proxy",
               "openvpn", "engine", "reassembly", "split_reading", "pcap_walk"]
    for t in targets:
        os.makedirs(os.path.join(out_dir, t), exist_ok=True)
    written = {t: 0 for t in targets}

    def put(target, data):
        if not data or len(data) > MAX_SEED:
            return
        name = hashlib.sha1(data).hexdigest()
        path = os.path.join(out_dir, target, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            written[target] += 1

    for path in captures:
        try:
            size = os.path.getsize(path)
            if size <= MAX_SEED:
                with open(path, "rb") as f:
                    whole = f.read()
                put("capture_reader", whole)
                if whole[:4] in PCAP_MAGICS:
                    # A shape byte (block size, workers), then the file.
                    for shape in (0x01, 0x16, 0x7b):
                        put("split_reading", bytes([shape]) + whole)
                    # The file header, a sub-range byte and a start byte, then the records.
                    for sub, first in ((0x1f, 0), (0x7f, 0), (0x05, 3)):
                        put("pcap_walk", whole[:24] + bytes([sub, first]) + whole[24:])
            for n, (link, frame) in enumerate(frames(path)):
                if n < 8 and link in DECODE_LINKS:
                    put("decode", bytes([DECODE_LINKS.index(link)]) + frame)
            for n, (client, server_port, segs) in enumerate(connections(path)):
                if n >= 16:
                    break
                c2s, s2c = streams(segs)
                for s in (c2s, s2c):
                    for h in hellos(s):
                        put("hello", h)
                    put("tls_stream", b"\x00" + s[:16384])
                    put("openvpn", b"\x00" + s[:8192])
                    if c2s.startswith(b"PROXY ") or c2s.startswith(b"\r\n\r\n\x00\r\nQUIT\n"):
                        put("proxy", c2s[:600])
                if server_port in MAIL:
                    put("starttls", starttls_seed(MAIL[server_port], segs))
                put("engine", engine_seed(server_port, segs))
        except (OSError, struct.error, IndexError, ValueError) as e:
            print(f"skipped {path}: {e}", file=sys.stderr)
    # Synthetic seeds where captures have few examples.
    put("proxy", b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03\x01")
    put("proxy", b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n")
    put("proxy", b"PROXY UNKNOWN\r\n")
    v2 = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack(">H", 12 + 7)
    put("proxy", v2 + bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 443)
        + b"\x04\x00\x04abcd")
    put("starttls", b"\x00" + bytes([0x08]) + b"220 mx ESMTP ready\r\n\n\n\n\n\n\n\n\n\n\n\n"
        + bytes([0x84]) + b"EHLO a\r\n\n" + bytes([0x05]) + b"250-mx\r\n250 STARTTLS\r\n"
        + bytes([0x83]) + b"STARTTLS\r\n\n\n" + bytes([0x06]) + b"220 Go ahead\r\n\n\n\n\n\n\n\n\n\n")
    # Reassembly: a mode byte and the ISN, then (16-bit offset, length, variant) segments.
    put("reassembly", bytes([0x01, 0xff, 0xff, 0xff, 0xf0])
        + bytes([0, 0, 10, 0, 0, 20, 5, 0, 0, 10, 10, 0, 0, 5, 10, 1]))
    put("reassembly", bytes([0x00, 0, 0, 0, 0])
        + bytes([0, 5, 3, 0, 0xff, 0xfe, 4, 2, 0, 0, 10, 0, 0, 8, 0xff, 0]))
    for t in targets:
        print(f"{t:15} {written[t]:5} new seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
