#!/usr/bin/env python3
"""Turn tshark's JSON dissection of one capture into the corpus truth files.

Usage: tshark_to_truth.py LOCAL_PATH JSONL_OUT UNDECODED_OUT < tshark-json

The input is `tshark -T json` output for the frames of interest (see regenerate.sh for the
tshark command line). LOCAL_PATH is the capture's path relative to tests/corpus/ and goes
into the `file` key of every object. JSONL_OUT receives one JSON object per ClientHello,
ServerHello, HelloRetryRequest, SSLv2 hello and alert record, in frame order; UNDECODED_OUT
receives the TCP segments that begin like a hello that tshark did not decode (it is removed
when there are none).

Where the keys come from (tshark field names; lists keep tshark's order):

  frame, time          frame.number, frame.time_epoch
  ip_version, src, dst the last (innermost) ip or ipv6 layer; ip_layers counts them
  vlan                 vlan.id of every vlan layer (key present only with VLAN tags)
  transport, sport,    the last tcp or udp layer: *.srcport, *.dstport, *.stream
  dport, *_stream
  quic                 true when the message came in a QUIC CRYPTO frame (no record layer,
                       so record_version is null)
  tcp_analysis         the sequence-anomaly flags of tcp.analysis.flags (TCP_ANALYSIS_FLAGS)
  tcp_segments         tcp.segment of the reassembly the message was found in
  index_in_frame       position among the messages of this frame
  hs_type, hs_length   tls.handshake.type, tls.handshake.length
  record_version       tls.record.version
  client_version,      tls.handshake.version
  server_version
  supported_versions   tls.handshake.extensions.supported_version
  selected_version     the ServerHello's supported_versions[0], else server_version
  sni                  tls.handshake.extensions_server_name (first), null without one
  cipher_suites        tls.handshake.ciphersuite (ClientHello), cipher_suite (ServerHello)
  extensions           tls.handshake.extension.type
  supported_groups     tls.handshake.extensions_supported_group
  key_share_groups     tls.handshake.extensions_key_share_group
  key_share_group      ..._key_share_selected_group (HelloRetryRequest), else the first
                       ..._key_share_group, else null
  ec_point_formats     tls.handshake.extensions_ec_point_format
  alpn                 tls.handshake.extensions_alpn_str
  hrr                  the ServerHello's random is the HelloRetryRequest value
  level, desc          tls.alert_message.level, .desc; encrypted when tshark could not
                       read them ("Encrypted Alert")
  cipher_specs         tls.handshake.cipherspec (SSLv2)

Message fields are collected from the whole tls.handshake subtree, not just from the
extension that normally holds them: a draft-18 key_share (type 40) or an ESNI extension's
key share counts too, as in the committed files.

Python 3 standard library only.
"""

import json
import os
import sys

# The random of a HelloRetryRequest (RFC 8446 4.1.3).
HRR_RANDOM = "cf:21:ad:74:e5:9a:61:11:be:1d:8c:02:1e:65:b8:91:c2:a2:11:16:7a:bb:8c:5e:07:9e:09:e2:c8:a8:33:9c"

# The tcp.analysis expert flags reported in `tcp_analysis` (sequence anomalies; window and
# keep-alive flags are left out), in this order.
TCP_ANALYSIS_FLAGS = (
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "out_of_order",
    "lost_segment",
    "ack_lost_segment",
)


def pairs(obj):
    """The (key, value) pairs of a JSON object kept as a pair list (duplicates preserved)."""
    return obj if isinstance(obj, list) else []


def is_object(value):
    return isinstance(value, list) and (not value or isinstance(value[0], tuple))


def first(obj, key, default=None):
    for k, v in pairs(obj):
        if k == key:
            return v
    return default


def find_all(obj, key):
    """Every value of `key` in the subtree, depth first, in document order."""
    out = []
    for k, v in pairs(obj):
        if k == key:
            out.append(v)
        if is_object(v):
            out.extend(find_all(v, key))
    return out


def find_first(obj, key, default=None):
    found = find_all(obj, key)
    return found[0] if found else default


def to_int(value):
    """A tshark integer field: decimal, or hexadecimal with 0x."""
    return int(value, 16) if value.startswith("0x") else int(value)


def ints(values):
    return [to_int(v) for v in values]


class Packet:
    """The per-frame fields shared by every message of one frame."""

    def __init__(self, layers):
        frame = first(layers, "frame")
        self.frame = int(first(frame, "frame.number"))
        self.time = first(frame, "frame.time_epoch")
        self.ip = []
        self.vlan = []
        self.transport = None
        for key, value in pairs(layers):
            if key in ("ip", "ipv6"):
                self.ip.append((key, value))
            elif key == "vlan":
                self.vlan.append(int(first(value, "vlan.id")))
            elif key in ("tcp", "udp"):
                self.transport = (key, value)

    def common(self):
        out = {"file": None, "frame": self.frame, "time": self.time}
        key, ip = self.ip[-1]
        if key == "ip":
            out["ip_version"] = 4
            out["src"] = first(ip, "ip.src")
            out["dst"] = first(ip, "ip.dst")
        else:
            out["ip_version"] = 6
            out["src"] = first(ip, "ipv6.src")
            out["dst"] = first(ip, "ipv6.dst")
        out["ip_layers"] = len(self.ip)
        if self.vlan:
            out["vlan"] = self.vlan
        proto, tp = self.transport
        out["transport"] = proto
        out["sport"] = int(first(tp, proto + ".srcport"))
        out["dport"] = int(first(tp, proto + ".dstport"))
        out[proto + "_stream"] = int(first(tp, proto + ".stream"))
        return out


def tcp_extras(packet, segments):
    out = {}
    proto, tp = packet.transport
    if proto != "tcp":
        return out
    flags = first(first(tp, "tcp.analysis"), "tcp.analysis.flags")
    found = set()
    for k, v in pairs(flags):
        if k == "_ws.expert":
            for name, _ in pairs(v):
                if name.startswith("tcp.analysis."):
                    found.add(name[len("tcp.analysis."):])
    analysis = [f for f in TCP_ANALYSIS_FLAGS if f in found]
    if analysis:
        out["tcp_analysis"] = analysis
    if segments is not None:
        out["tcp_segments"] = ints(find_all(segments, "tcp.segment"))
    return out


def client_hello(hs):
    sni = find_first(hs, "tls.handshake.extensions_server_name")
    return {
        "client_version": first(hs, "tls.handshake.version"),
        "supported_versions": find_all(hs, "tls.handshake.extensions.supported_version"),
        "sni": sni,
        "cipher_suites": find_all(first(hs, "tls.handshake.ciphersuites"), "tls.handshake.ciphersuite"),
        "extensions": ints(find_all(hs, "tls.handshake.extension.type")),
        "supported_groups": find_all(hs, "tls.handshake.extensions_supported_group"),
        "key_share_groups": ints(find_all(hs, "tls.handshake.extensions_key_share_group")),
        "ec_point_formats": ints(find_all(hs, "tls.handshake.extensions_ec_point_format")),
        "alpn": find_all(hs, "tls.handshake.extensions_alpn_str"),
    }


def server_hello(hs, hrr):
    sv = find_all(hs, "tls.handshake.extensions.supported_version")
    version = first(hs, "tls.handshake.version")
    group = find_first(hs, "tls.handshake.extensions_key_share_selected_group")
    if group is None:
        group = find_first(hs, "tls.handshake.extensions_key_share_group")
    return {
        "hrr": hrr,
        "server_version": version,
        "supported_versions": sv,
        "selected_version": sv[0] if sv else version,
        "cipher_suite": first(hs, "tls.handshake.ciphersuite"),
        "extensions": ints(find_all(hs, "tls.handshake.extension.type")),
        "key_share_group": int(group) if group is not None else None,
        "alpn": find_all(hs, "tls.handshake.extensions_alpn_str"),
    }


def handshake_message(hs, record_version):
    """A hello from one tls.handshake subtree, or None for other handshake types."""
    hs_type = first(hs, "tls.handshake.type")
    if hs_type not in ("1", "2"):
        return None
    out = {
        "hs_type": int(hs_type),
        "hs_length": int(first(hs, "tls.handshake.length")),
        "record_version": record_version,
    }
    if hs_type == "1":
        out["msg"] = "client_hello"
        out.update(client_hello(hs))
    else:
        hrr = first(hs, "tls.handshake.random") == HRR_RANDOM
        out["msg"] = "hello_retry_request" if hrr else "server_hello"
        out.update(server_hello(hs, hrr))
    return out


def record_messages(record):
    """The messages of one tls.record subtree."""
    version = first(record, "tls.record.version")
    content_type = first(record, "tls.record.content_type")
    if content_type is None:
        # SSLv2 record: the message sits directly in the record.
        hs_type = first(record, "tls.handshake.type")
        if hs_type not in ("1", "4"):
            return []
        out = {
            "msg": "ssl2_client_hello" if hs_type == "1" else "ssl2_server_hello",
            "hs_type": int(hs_type),
            "sslv2_record": True,
            "record_version": version,
        }
        key = "client_version" if hs_type == "1" else "server_version"
        out[key] = first(record, "tls.handshake.version")
        out["cipher_specs"] = find_all(record, "tls.handshake.cipherspec")
        return [out]
    if content_type == "21":
        alert = first(record, "tls.alert_message")
        out = {"msg": "alert", "record_version": version}
        if is_object(alert):
            out["encrypted"] = False
            out["level"] = int(first(alert, "tls.alert_message.level"))
            out["desc"] = int(first(alert, "tls.alert_message.desc"))
        else:
            out["encrypted"] = True
        return [out]
    if content_type == "22":
        out = []
        for hs in find_all(record, "tls.handshake"):
            if is_object(hs):
                msg = handshake_message(hs, version)
                if msg:
                    out.append(msg)
        return out
    return []


def tls_messages(tree, in_quic):
    """Messages anywhere below `tree`: (message, in_quic)."""
    out = []
    for key, value in pairs(tree):
        if not is_object(value):
            continue
        if key == "tls.record":
            out.extend((m, in_quic) for m in record_messages(value))
        elif key == "tls.handshake":
            # TLS inside QUIC CRYPTO frames: no record layer.
            msg = handshake_message(value, None)
            if msg:
                out.append((msg, in_quic))
        else:
            out.extend(tls_messages(value, in_quic or key == "quic"))
    return out


def packet_messages(layers, local_path):
    """The truth objects of one frame, in the order tshark dissected them."""
    packet = Packet(layers)
    out = []
    # The "tcp.segments" tree comes just before the protocol layer it was reassembled for.
    segments = None
    for key, value in pairs(layers):
        if key == "tcp.segments":
            segments = value
        elif is_object(value) and key not in ("frame", "ip", "ipv6", "tcp", "udp"):
            for msg, in_quic in tls_messages([(key, value)], False):
                obj = packet.common()
                obj["file"] = local_path
                if in_quic:
                    obj["quic"] = True
                obj.update(tcp_extras(packet, segments))
                obj["index_in_frame"] = len(out)
                obj.update(msg)
                out.append(obj)
    return out


def hello_like(payload):
    """Whether TCP payload bytes begin like a TLS or SSLv2 hello.

    TLS: a handshake record (0x16, major version 3) whose first message is a ClientHello or
    ServerHello with a major version of 3. SSLv2: a 2-byte record header (high bit set)
    followed by a CLIENT-HELLO (1) whose major version is 0 or 3.
    """
    if len(payload) >= 10 and payload[0] == 0x16 and payload[1] == 3:
        return payload[5] in (1, 2) and payload[9] == 3
    if len(payload) >= 4 and payload[0] & 0x80:
        return payload[2] == 1 and payload[3] in (0, 3)
    return False


def joined(layers, key):
    """All values of a field in the frame, as `tshark -T fields` prints them."""
    return ",".join(find_all(layers, key))


def undecoded_row(layers, decoded_frames):
    """The .undecoded.tsv row of a frame whose TCP payload begins like a hello that tshark
    did not decode, or None."""
    packet = Packet(layers)
    if packet.transport is None or packet.transport[0] != "tcp":
        return None
    tcp = packet.transport[1]
    payload = first(tcp, "tcp.payload")
    if not payload or not hello_like(bytes.fromhex(payload.replace(":", ""))):
        return None
    if packet.frame in decoded_frames:
        return None
    flags = first(first(tcp, "tcp.analysis"), "tcp.analysis.flags")
    if any(first(e, "tcp.analysis.retransmission") is not None for e in find_all(flags, "_ws.expert")):
        return None
    fields = ("frame.number", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst",
              "ipv6.dst", "tcp.dstport", "tcp.len", "frame.protocols")
    return "\t".join(joined(layers, f) for f in fields)


def main():
    local_path, jsonl_out, undecoded_out = sys.argv[1:4]
    packets = json.load(sys.stdin, object_pairs_hook=lambda p: p)
    lines = []
    # Frames where tshark decoded a hello, or that it reassembled into one.
    decoded = set()
    all_layers = []
    for pkt in packets:
        layers = first(first(pkt, "_source"), "layers")
        all_layers.append(layers)
        for obj in packet_messages(layers, local_path):
            lines.append(json.dumps(obj, separators=(",", ":")))
            if obj["msg"] != "alert":
                decoded.add(obj["frame"])
            decoded.update(obj.get("tcp_segments", ()))
    undecoded = []
    for layers in all_layers:
        row = undecoded_row(layers, decoded)
        if row is not None:
            undecoded.append(row)
    os.makedirs(os.path.dirname(jsonl_out) or ".", exist_ok=True)
    with open(jsonl_out, "w") as f:
        for line in lines:
            f.write(line + "\n")
    if undecoded:
        with open(undecoded_out, "w") as f:
            for row in undecoded:
                f.write(row + "\n")
    elif os.path.exists(undecoded_out):
        os.remove(undecoded_out)


if __name__ == "__main__":
    main()
