#!/usr/bin/env python3
"""Turn tshark's JSON dissection of TLS Certificate messages into the corpus x509 truth.

Usage: tshark_x509_truth.py LOCAL_PATH JSONL_OUT < tshark-json

The input is `tshark -T json -Y 'tls.handshake.type == 11'` output (see regenerate.sh).
JSONL_OUT receives one object per Certificate handshake message tshark decoded, in frame
order; it is removed when there is none. Keys (tshark field names):

  file, frame            LOCAL_PATH, frame.number
  src, dst, sport, dport the innermost ip/ipv6 and tcp layers
  tcp_stream             tcp.stream
  hs_length              tls.handshake.length
  certificates_length    tls.handshake.certificates_length
  chain_length           how many tls.handshake.certificate entries the message holds
  leaf                   the first certificate, null when the message holds none:
    sha256               SHA-256 of the tls.handshake.certificate bytes (hashlib)
    serial               x509af.serialNumber, hex without separators
    signature_oid        x509af.algorithm.id of the outer algorithmIdentifier
    key_oid              x509af.algorithm.id of subjectPublicKeyInfo
    modulus_bits         significant bits of pkcs1.modulus (RSA keys), else null
    not_before, not_after  x509af.utcTime / x509af.generalizedTime, as RFC 3339
    subject_cn, issuer_cn  the values of attribute 2.5.4.3 (x509if.oid) in each name
    dns_names            x509ce.dNSName values of the certificate, in order
  decoded                false when tshark did not dissect the leaf (no signedCertificate)

Python 3 standard library only.
"""

import hashlib
import json
import os
import re
import sys


def pairs(obj):
    return obj if isinstance(obj, list) else []


def find_all(obj, key, out):
    """Every value of `key` in the subtree, depth first, in document order."""
    for k, v in pairs(obj):
        if k == key:
            out.append(v)
        if isinstance(v, list):
            find_all(v, key, out)
    return out


def first(obj, key):
    found = find_all(obj, key, [])
    return found[0] if found else None


def child(obj, key):
    for k, v in pairs(obj):
        if k == key:
            return v
    return None


def hex_bytes(text):
    return bytes.fromhex(text.replace(":", "")) if text else b""


MONTHS = {m: i + 1 for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def rfc3339(text):
    """x509af.utcTime `2026-12-07 14:18:24 (UTC)` or x509af.generalizedTime
    `Dec  7, 2050 14:18:24.000000000 UTC`."""
    if text is None:
        return None
    m = re.match(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)", text)
    if m:
        return "%s-%s-%sT%s:%s:%sZ" % m.groups()
    m = re.match(r"(\w{3}) +(\d+), (\d{4}) (\d\d):(\d\d):(\d\d)", text)
    if m:
        mon, day, year, hh, mm, ss = m.groups()
        return "%s-%02d-%02dT%s:%s:%sZ" % (year, MONTHS[mon], int(day), hh, mm, ss)
    return text


def common_name(name_tree):
    """The first 2.5.4.3 attribute's string value in a name subtree."""
    for item in find_all(name_tree, "x509if.RelativeDistinguishedName_item_element", []):
        if child(item, "x509if.oid") == "2.5.4.3":
            for key in ("x509sat.uTF8String", "x509sat.printableString",
                        "x509sat.teletexString", "x509sat.IA5String",
                        "x509sat.bMPString", "x509sat.universalString"):
                value = first(item, key)
                if value is not None:
                    return value
    return None


def time_of(validity, which):
    tree = child(validity, f"x509af.{which}_tree")
    return rfc3339(first(tree, "x509af.utcTime") or first(tree, "x509af.generalizedTime"))


def leaf_of(cert_bytes, tree):
    out = {"sha256": hashlib.sha256(hex_bytes(cert_bytes)).hexdigest(), "decoded": False}
    signed = child(tree, "x509af.signedCertificate_element")
    if signed is None:
        return out
    spki = child(signed, "x509af.subjectPublicKeyInfo_element")
    modulus = first(spki, "pkcs1.modulus")
    bits = None
    if modulus:
        n = int.from_bytes(hex_bytes(modulus), "big")
        bits = n.bit_length()
    validity = child(signed, "x509af.validity_element")
    out.update({
        "decoded": True,
        "serial": (child(signed, "x509af.serialNumber") or "").replace(":", ""),
        "signature_oid": first(child(tree, "x509af.algorithmIdentifier_element"),
                               "x509af.algorithm.id"),
        "key_oid": first(child(spki, "x509af.algorithm_element"), "x509af.algorithm.id"),
        "modulus_bits": bits,
        "not_before": time_of(validity, "notBefore"),
        "not_after": time_of(validity, "notAfter"),
        "subject_cn": common_name(child(signed, "x509af.subject_tree")),
        "issuer_cn": common_name(child(signed, "x509af.issuer_tree")),
        "dns_names": find_all(child(signed, "x509af.extensions_tree"), "x509ce.dNSName", []),
    })
    return out


def handshakes(tls_layer):
    """Every tls.handshake subtree of a frame's tls layer(s)."""
    return find_all(tls_layer, "tls.handshake", [])


def main():
    local_path, out_path = sys.argv[1], sys.argv[2]
    packets = json.load(sys.stdin, object_pairs_hook=lambda p: p)
    rows = []
    for packet in packets:
        layers = child(child(packet, "_source"), "layers")
        ips = [v for k, v in pairs(layers) if k in ("ip", "ipv6")]
        tcps = [v for k, v in pairs(layers) if k == "tcp"]
        if not ips or not tcps:
            continue
        ip, tcp = ips[-1], tcps[-1]
        src = child(ip, "ip.src") or child(ip, "ipv6.src")
        dst = child(ip, "ip.dst") or child(ip, "ipv6.dst")
        for k, tls in pairs(layers):
            if k != "tls":
                continue
            for hs in handshakes(tls):
                if child(hs, "tls.handshake.type") != "11":
                    continue
                certs = child(hs, "tls.handshake.certificates")
                # Each certificate's bytes, then (when tshark dissected it) its tree.
                entries, trees = [], []
                for key, value in pairs(certs):
                    if key == "tls.handshake.certificate":
                        entries.append(value)
                        trees.append([])
                    elif key == "tls.handshake.certificate_tree" and trees:
                        trees[-1] = value
                rows.append({
                    "file": local_path,
                    "frame": int(child(child(layers, "frame"), "frame.number")),
                    "src": src,
                    "dst": dst,
                    "sport": int(child(tcp, "tcp.srcport")),
                    "dport": int(child(tcp, "tcp.dstport")),
                    "tcp_stream": int(child(tcp, "tcp.stream")),
                    "hs_length": int(child(hs, "tls.handshake.length")),
                    "certificates_length": int(child(hs, "tls.handshake.certificates_length") or 0),
                    "chain_length": len(entries),
                    "leaf": leaf_of(entries[0], trees[0]) if entries else None,
                })
    if rows:
        with open(out_path, "w") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
    elif os.path.exists(out_path):
        os.remove(out_path)


if __name__ == "__main__":
    main()
