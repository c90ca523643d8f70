#!/usr/bin/env python3
"""Rewrite a classic pcap (Ethernet or raw IP) so that every IPv4/IPv6 TCP packet with more
than SIZE bytes after its IP header travels in IP fragments of SIZE bytes, as a router with a
small MTU on the path would send them (RFC 791 for IPv4; RFC 8200 section 4.5, a Fragment
extension header, for IPv6).

To exercise a reassembler, the fragments of every second datagram are written last-first,
and the first fragment of each datagram is sent twice (the copy overlapping byte for byte,
as a retransmitting link would).

Usage: fragment.py IN.pcap OUT.pcap [SIZE] [PROTOCOL]
  SIZE: a multiple of 8; default 96. PROTOCOL: `tcp` (the default) or `udp`: which packets
  are cut (`udp`: e.g. DNS answers, as a resolver's large answers arrive).
No third-party modules: struct and the pcap layout only.
"""
import struct
import sys


def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    records, at = [], 24
    while at + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", data[at:at + 16])
        records.append(((sec, frac), data[at + 16:at + 16 + caplen]))
        at += 16 + caplen
    return data[:24], endian, linktype, records


def checksum(header):
    if len(header) % 2:
        header += b"\0"
    total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def fragments_v4(ip, size, ident, protocol=6):
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    header, payload = ip[:ihl], ip[ihl:total]
    if ip[9] != protocol or len(payload) <= size:
        return None
    out = []
    for offset in range(0, len(payload), size):
        chunk = payload[offset:offset + size]
        more = offset + size < len(payload)
        h = bytearray(header)
        struct.pack_into("!H", h, 2, ihl + len(chunk))
        struct.pack_into("!H", h, 4, ident)
        # DF off, MF when more follow, offset in 8-byte units.
        struct.pack_into("!H", h, 6, (0x2000 if more else 0) | (offset // 8))
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, checksum(bytes(h)))
        out.append(bytes(h) + chunk)
    return out


def fragments_v6(ip, size, ident, protocol=6):
    plen = struct.unpack("!H", ip[4:6])[0]
    if ip[6] != protocol or plen <= size:
        return None
    payload = ip[40:40 + plen]
    out = []
    for offset in range(0, len(payload), size):
        chunk = payload[offset:offset + size]
        more = offset + size < len(payload)
        h = bytearray(ip[:40])
        struct.pack_into("!H", h, 4, 8 + len(chunk))
        h[6] = 44  # Fragment header follows
        frag = struct.pack("!BBHI", protocol, 0, offset | (1 if more else 0), ident)
        out.append(bytes(h) + frag + chunk)
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 96
    protocol = {"tcp": 6, "udp": 17}[sys.argv[4] if len(sys.argv) > 4 else "tcp"]
    assert size % 8 == 0
    header, endian, linktype, records = read_pcap(src)
    link_len = {1: 14, 101: 0, 228: 0, 229: 0}[linktype]
    out = [header]
    datagram = 0
    for (sec, frac), frame in records:
        link, ip = frame[:link_len], frame[link_len:]
        version = ip[0] >> 4 if ip else 0
        pieces = None
        if version == 4:
            pieces = fragments_v4(ip, size, 0x1000 + datagram, protocol)
        elif version == 6:
            pieces = fragments_v6(ip, size, 0x1000 + datagram, protocol)
        if pieces is None:
            pieces = [ip]
        else:
            datagram += 1
            pieces = [pieces[0]] + pieces
            if datagram % 2 == 0:
                pieces.reverse()
        for piece in pieces:
            body = link + piece
            out.append(struct.pack(endian + "IIII", sec, frac, len(body), len(body)) + body)
    open(dst, "wb").write(b"".join(out))


if __name__ == "__main__":
    main()
