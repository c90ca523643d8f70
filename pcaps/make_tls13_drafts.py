#!/usr/bin/env python3
"""pcaps/tls13_drafts.pcap: one TCP connection per TLS 1.3 draft version that tshark names
(packet-tls-utils.c `ssl_versions`: 0x7f0e-0x7f1c, drafts 14 to 28, and Facebook's 0xfb17 and
0xfb1a), each a ClientHello offering that version and a ServerHello selecting it, laid out
as that draft's text says (draft-ietf-tls-tls13-NN, section "Server Hello"):

* drafts 14 to 21: version (the draft code), random, cipher_suite, extensions -- no
  legacy_session_id_echo, no legacy_compression_method;
* draft 22 on (and Facebook's drafts 23 and 26): legacy_version 0x0303, random,
  legacy_session_id_echo, cipher_suite, legacy_compression_method, extensions, the draft code
  in supported_versions. key_share is extension 40 up to draft 22, 51 from draft 23.

No real draft-era capture with a licence that allows copying was found (see pcaps/README.md);
these bytes follow the drafts, and the expectation is tshark's dissection of them, kept in
pcaps/tls13_drafts.tshark.tsv:

    python3 pcaps/make_tls13_drafts.py            # writes both files (needs tshark)

Standard library only; nothing here reads tlscensus.
"""

import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS = list(range(0x7F0E, 0x7F1D)) + [0xFB17, 0xFB1A]
CIPHERS = [0x1301, 0x1302, 0x1303]


def draft_number(version):
    return {0xFB17: 23, 0xFB1A: 26}.get(version, version & 0xFF)


def ext(kind, body):
    return struct.pack(">HH", kind, len(body)) + body


def key_share_ext(version, from_server):
    kind = 40 if draft_number(version) <= 22 else 51
    entry = struct.pack(">HH", 0x001D, 32) + bytes(range(32))
    body = entry if from_server else struct.pack(">H", len(entry)) + entry
    return ext(kind, body)


def handshake(msg_type, body):
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def record(payload):
    return struct.pack(">BHH", 22, 0x0301, len(payload)) + payload


def client_hello(version, n):
    random = bytes([n]) * 32
    sid = bytes([0xC0 + n % 16]) * 32
    suites = b"".join(struct.pack(">H", c) for c in CIPHERS)
    host = f"draft{draft_number(version)}.example.test".encode()
    sni = ext(0, struct.pack(">HBH", len(host) + 3, 0, len(host)) + host)
    versions = ext(43, bytes([2]) + struct.pack(">H", version))
    groups = ext(10, struct.pack(">HH", 2, 0x001D))
    sigs = ext(13, struct.pack(">HH", 2, 0x0804))
    exts = sni + versions + groups + sigs + key_share_ext(version, False)
    body = (struct.pack(">H", 0x0303) + random + bytes([32]) + sid
            + struct.pack(">H", len(suites)) + suites + b"\x01\x00"
            + struct.pack(">H", len(exts)) + exts)
    return record(handshake(1, body))


def server_hello(version, n):
    random = bytes([0x80 + n]) * 32
    cipher = CIPHERS[n % len(CIPHERS)]
    if draft_number(version) < 22:
        exts = key_share_ext(version, True)
        body = (struct.pack(">H", version) + random + struct.pack(">H", cipher)
                + struct.pack(">H", len(exts)) + exts)
    else:
        exts = ext(43, struct.pack(">H", version)) + key_share_ext(version, True)
        sid = bytes([0xC0 + n % 16]) * 32
        body = (struct.pack(">H", 0x0303) + random + bytes([32]) + sid
                + struct.pack(">H", cipher) + b"\x00"
                + struct.pack(">H", len(exts)) + exts)
    return record(handshake(2, body))


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = src + dst + struct.pack(">BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack(">H", checksum(pseudo + tcp + payload)) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp + payload


def connection(n, version, t):
    client, server = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 20])
    cport, sport = 40000 + n, 443
    ch, sh = client_hello(version, n), server_hello(version, n)
    c, s = 1000 * (n + 1), 5000 * (n + 1)
    SYN, ACK, PSH = 0x02, 0x10, 0x08
    frames = [
        frame(client, server, cport, sport, c, 0, SYN),
        frame(server, client, sport, cport, s, c + 1, SYN | ACK),
        frame(client, server, cport, sport, c + 1, s + 1, ACK),
        frame(client, server, cport, sport, c + 1, s + 1, PSH | ACK, ch),
        frame(server, client, sport, cport, s + 1, c + 1 + len(ch), PSH | ACK, sh),
    ]
    return [(t + i * 0.001, f) for i, f in enumerate(frames)]


def main():
    out = HERE / "tls13_drafts.pcap"
    packets = []
    for n, version in enumerate(VERSIONS):
        packets += connection(n, version, 1_500_000_000 + n)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, data in packets:
            sec, usec = int(t), round((t - int(t)) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    fields = ["tcp.srcport", "tcp.dstport", "tls.handshake.version",
              "tls.handshake.extensions.supported_version", "tls.handshake.ciphersuite"]
    cmd = ["tshark", "-r", str(out), "-Y", "tls.handshake.type == 2", "-T", "fields"]
    for field in fields:
        cmd += ["-e", field]
    rows = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    (HERE / "tls13_drafts.tshark.tsv").write_text("\t".join(fields) + "\n" + rows)
    print(f"{out}: {len(VERSIONS)} connections; tshark's ServerHellos:\n{rows}", file=sys.stderr)


if __name__ == "__main__":
    main()
