#!/usr/bin/env python3
"""Build data/software_hints.tsv from cisco/mercury's fingerprint database.

Usage:
    git -C mercury show 84c64620e0f8111dbb455e0258e17e6946060753:resources/fingerprint_db.json.gz \
        > fingerprint_db.json.gz
    python3 tools/make_software_hints.py fingerprint_db.json.gz > data/software_hints.tsv

Mercury writes each TLS ClientHello as `(version)(ciphers)((ext)(ext)...)`: hex, GREASE values
replaced by 0a0a, each extension its type, followed by its length and data for the extensions
whose contents mercury keeps (supported_groups 000a and ec_point_formats 000b among them).
That is everything a JA3 string needs (version, ciphers, extension types, groups, point
formats), so each fingerprint is converted to its JA3 string and MD5, which tlscensus records
carry. Several mercury fingerprints can share one JA3 (they differ in ALPN or signature
algorithms); their sightings are added up.
"""
import collections
import gzip
import hashlib
import json
import sys

# RFC 8701 GREASE values: JA3 leaves them out.
GREASE = {0x0A0A + 0x1010 * i for i in range(16)}
TOP_PER_FINGERPRINT = 3
MAX_FINGERPRINTS = 2400
SOURCE = "cisco/mercury@84c6462 fingerprint_db.json.gz (BSD-3-Clause)"


def groups(text):
    """`(a)(b)((c)(d))` -> ['a', 'b', ['c', 'd']]."""
    out, stack = [], []
    cur = out
    token = ""
    for ch in text:
        if ch == "(":
            stack.append(cur)
            new = []
            cur.append(new)
            cur = new
            token = ""
        elif ch == ")":
            if token:
                cur.append(token)
                token = ""
            cur = stack.pop()
        else:
            token += ch
    return out


def flat(node):
    return node[0] if node and isinstance(node[0], str) else ""


def u16s(hexs):
    return [int(hexs[i : i + 4], 16) for i in range(0, len(hexs) - 3, 4)]


def ja3_string(str_repr):
    """Mercury's `tls` str_repr -> JA3 string, or None when it is not that form."""
    parts = groups(str_repr)
    if len(parts) != 3 or not isinstance(parts[2], list):
        return None
    version = int(flat(parts[0]), 16)
    ciphers = [c for c in u16s(flat(parts[1])) if c not in GREASE]
    exts, curves, points = [], [], []
    for e in parts[2]:
        e = flat(e)
        t = int(e[:4], 16)
        if t in GREASE:
            continue
        exts.append(t)
        if t == 0x000A and len(e) >= 12:
            curves = [g for g in u16s(e[12:]) if g not in GREASE]
        elif t == 0x000B and len(e) >= 10:
            n = int(e[8:10], 16)
            points = [int(e[10 + 2 * i : 12 + 2 * i], 16) for i in range(n)]
    join = lambda xs: "-".join(str(x) for x in xs)
    return f"{version},{join(ciphers)},{join(exts)},{join(curves)},{join(points)}"


def os_name(os_info):
    """Most seen OS of a process: `(WinNT)(Windows 7 Enterprise)(6.1.7601)` -> `Windows 7
    Enterprise 6.1.7601`."""
    if not os_info:
        return ""
    best = max(os_info.items(), key=lambda kv: (kv[1], kv[0]))[0]
    fields = [f for f in best.strip("()").split(")(") if f and f != "Unknown"]
    return " ".join(fields[1:] if len(fields) > 1 else fields)


def clean(s):
    return " ".join(str(s).replace("\t", " ").split())


def convert(lines):
    """JSON lines -> {ja3_hash: (legacy_version, total, Counter((process, os) -> count))}."""
    table = {}
    for line in lines:
        d = json.loads(line)
        s = ja3_string(d["str_repr"])
        if s is None:
            continue
        h = hashlib.md5(s.encode()).hexdigest()
        version = int(s.split(",")[0])
        _, total, procs = table.setdefault(h, (version, [0], collections.Counter()))
        total[0] += int(d.get("total_count", 0))
        for p in d.get("process_info", []):
            procs[(clean(p["process"]), clean(os_name(p.get("os_info"))))] += int(p["count"])
    return table


def main():
    with gzip.open(sys.argv[1], "rt") as f:
        table = convert(f)
    # TLS 1.0/1.1 and SSL 3 first (what the shutdown breaks), then the most seen.
    order = sorted(table.items(), key=lambda kv: (kv[1][0] >= 0x0303, -kv[1][1][0], kv[0]))
    kept = order[:MAX_FINGERPRINTS]
    print(f"# Software hints: JA3 (MD5) -> processes seen sending it, from {SOURCE}.")
    print("# Source: https://github.com/cisco/mercury commit 84c64620e0f8111dbb455e0258e17e6946060753,")
    print("# resources/fingerprint_db.json.gz; Copyright (c) 2019-2023 Cisco Systems, Inc.;")
    print("# BSD 3-Clause licence (mercury's LICENSE): redistribution with this notice is permitted.")
    print("# Converted by tools/make_software_hints.py; mercury's str_repr -> JA3 string -> MD5.")
    print(f"# Kept: {len(kept)} of {len(table)} JA3s, SSL 3/TLS 1.0/1.1 hellos first, then by")
    print(f"# sightings; top {TOP_PER_FINGERPRINT} processes each. seen = the source's count for the process,")
    print("# total = the source's count for the JA3. A hint, not a certainty.")
    print("#ja3\tlegacy_version\ttotal\tprocess\tos\tseen")
    for h, (version, total, procs) in kept:
        top = sorted(procs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_PER_FINGERPRINT]
        for (proc, os_), seen in top:
            print(f"{h}\t{version:04x}\t{total[0]}\t{proc}\t{os_}\t{seen}")


if __name__ == "__main__":
    main()
