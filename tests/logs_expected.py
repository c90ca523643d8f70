#!/usr/bin/env python3
"""Independent reading of IIS W3C and Exchange SMTP protocol logs, for tests/server_logs.rs.

Written from the documented formats only (not from tlscensus's code): each file's lines are
split by Python's csv module (space-delimited for IIS, comma-separated CSV for Exchange) and
placed by the names of the latest `#Fields:` line. Values are mapped with the tables of
Microsoft's documentation: SecPkgContext_ConnectionInfo's dwProtocol (SP_PROT_* bits) and the
CryptoAPI ALG_ID table (CALG_* values).

Rules (README "Server logs"): an SMTP session's record comes from its `*` row "TLS protocol
... negotiation succeeded ...", its EHLO/HELO is the client's first one (the `<` rows of a
receive log, the `>` rows of a send log, where the Exchange server is the client); sessions
carry across files given in order. IIS requests of the same client, true client, server, port
and crypt-* values at most 120 s apart are one session; its first line makes the record.

Usage: logs_expected.py [--client-field NAME]... FILE...  (in time order)
  -> JSON {"records": [...], "malformed": [[file, line]...], "sessions_without_tls": N}
"""
import csv
import datetime
import gzip
import ipaddress
import json
import re
import sys

PROTOCOL_BITS = {
    0x4: ("SSLv2", "server"), 0x8: ("SSLv2", "client"),
    0x10: ("SSLv3", "server"), 0x20: ("SSLv3", "client"),
    0x40: ("TLSv1.0", "server"), 0x80: ("TLSv1.0", "client"),
    0x100: ("TLSv1.1", "server"), 0x200: ("TLSv1.1", "client"),
    0x400: ("TLSv1.2", "server"), 0x800: ("TLSv1.2", "client"),
    0x1000: ("TLSv1.3", "server"), 0x2000: ("TLSv1.3", "client"),
}
PROTOCOL_NAMES = {"SSL2": "SSLv2", "SSL3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_0": "TLSv1.0",
                  "TLS1_1": "TLSv1.1", "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}
ALG_ID = {
    0x6603: "CALG_3DES", 0x660E: "CALG_AES_128", 0x660F: "CALG_AES_192",
    0x6610: "CALG_AES_256", 0x6601: "CALG_DES", 0x6801: "CALG_RC4", 0x6602: "CALG_RC2",
    0x8003: "CALG_MD5", 0x8004: "CALG_SHA1", 0x800C: "CALG_SHA_256", 0x800D: "CALG_SHA_384",
    0x800E: "CALG_SHA_512", 0xA400: "CALG_RSA_KEYX", 0xAA02: "CALG_DH_EPHEM",
    0xAE06: "CALG_ECDH_EPHEM", 0xAA05: "CALG_ECDH",
}
# Exchange's own spellings of ALG_ID names.
SPELLINGS = {"CALG_ECDHE": "CALG_ECDH_EPHEM", "CALG_SHA": "CALG_SHA1"}
WEAK_CIPHERS = {"CALG_RC4": "RC4", "CALG_3DES": "3DES", "CALG_DES": "DES", "CALG_RC2": "RC2"}
# The service by server port (as the wire names it); a port without one is named by the
# log: https for IIS, smtp for the SMTP logs.
SERVICES = {25: "smtp", 587: "submission", 465: "smtps", 443: "https"}
# The load balancer's client field: names given with --client-field first, then the usual
# ones (README "Server logs"), each plain or as the request header cs(NAME); the first
# present counts.
TRUE_CLIENT = ["originalclientip", "originalip", "x-original-client-ip", "x-forwarded-for",
               "x-real-ip", "true-client-ip", "x-client-ip", "x-cluster-client-ip"]
GAP = datetime.timedelta(seconds=120)


def lines_of(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return f.read().splitlines()


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def weak(cipher, hash_):
    if cipher in WEAK_CIPHERS:
        return WEAK_CIPHERS[cipher]
    return "MD5" if hash_ == "CALG_MD5" else None


def host(text):
    """ip:port or [v6]:port"""
    h, _, port = text.rpartition(":")
    return str(ipaddress.ip_address(h.strip("[]"))), int(port)


def forwarded(text):
    """The first address of a forwarded-for list (IIS writes spaces as +): a.b.c.d[:port],
    [v6][:port] or v6; None for "-" or anything else."""
    first = text.split(",")[0].strip("+ ")
    if first.startswith("[") and "]" in first:
        first = first[1:first.index("]")]
    elif first.count(":") == 1:
        first = first.split(":")[0]
    try:
        return str(ipaddress.ip_address(first))
    except ValueError:
        return None


def iis(path, out, sessions):
    names = None
    for number, line in enumerate(lines_of(path), 1):
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = [n.lower() for n in line[len("#Fields:"):].split()]
            continue
        row = next(csv.reader([line], delimiter=" "))
        if len(row) != len(names):
            out["malformed"].append([path, number])
            continue
        f = dict(zip(names, row))
        if f["crypt-protocol"] == "-":
            continue
        bits = int(f["crypt-protocol"], 16)
        if bits not in PROTOCOL_BITS:
            out["malformed"].append([path, number])
            continue
        version, side = PROTOCOL_BITS[bits]

        def alg(name):
            v = f.get(name, "-")
            return None if v in ("-", "0") else ALG_ID[int(v, 16)]

        cipher, hash_, kx = alg("crypt-cipher"), alg("crypt-hash"), alg("crypt-keyexchange")
        true = None
        present = [n for w in CLIENT_FIELDS + TRUE_CLIENT for n in names if n in (w, "cs(%s)" % w)]
        if present:
            true = forwarded(f[present[0]])
        when = datetime.datetime.strptime(f["date"] + " " + f["time"], "%Y-%m-%d %H:%M:%S")
        port = int(f.get("s-port", "443"))
        key = (f["c-ip"], true, f["s-ip"], port, bits, cipher, hash_, kx)
        last = sessions.get(key)
        sessions[key] = when if last is None else max(when, last)
        if last is not None and abs(when - last) <= GAP:
            continue
        sessions[key] = when
        out["records"].append({
            "file": path, "line": number, "source": "iis-log", "ts": rfc3339(when),
            "client": [str(ipaddress.ip_address(f["c-ip"])), 0],
            "true_client": true if true != f["c-ip"] else None,
            "server": [f["s-ip"], port], "service": SERVICES.get(port, "https"),
            "version": version, "protocol": f["crypt-protocol"], "side": side,
            "cipher": cipher, "hash": hash_, "key_exchange": kx,
            "bits": [None, None, None], "weak": weak(cipher, hash_),
            "ehlo": None, "session": None, "starttls": None,
        })


TLS = re.compile(r"TLS protocol SP_PROT_(\w+?)_(SERVER|CLIENT) negotiation succeeded using "
                 r"bulk encryption algorithm (\w+) with strength (\d+) bits, MAC hash algorithm "
                 r"(\w+) with strength (\d+) bits and key exchange algorithm (\w+) with "
                 r"strength (\d+) bits")


def smtp(path, send, out, sessions, seen, tls):
    names = None
    for number, line in enumerate(lines_of(path), 1):
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = next(csv.reader([line[len("#Fields:"):].strip()]))
            continue
        row = next(csv.reader([line]))
        if len(row) != len(names):
            out["malformed"].append([path, number])
            continue
        f = dict(zip(names, row))
        sid, event = f["session-id"], f["event"]
        if event not in "+-<>*" or len(event) != 1:
            out["malformed"].append([path, number])
            continue
        seen.add((send, sid))
        if event == "-":
            sessions.pop(sid, None)
            continue
        s = sessions.setdefault(sid, {"ehlo": None, "starttls": None})
        if event == (">" if send else "<"):
            words = f["data"].split(" ", 1)
            if words[0].upper() in ("EHLO", "HELO") and s["ehlo"] is None:
                s["ehlo"] = words[1].strip() if len(words) > 1 else None
            elif f["data"].upper() in ("STARTTLS", "X-ANONYMOUSTLS"):
                s["starttls"] = f["data"].upper()
            continue
        m = TLS.search(f["context"]) if event == "*" else None
        if not m:
            continue
        sessions.pop(sid)
        tls.add((send, sid))
        local, remote = host(f["local-endpoint"]), host(f["remote-endpoint"])
        client, server = (local, remote) if send else (remote, local)
        names_ = [SPELLINGS.get(m.group(i), m.group(i)) for i in (3, 5, 7)]
        when = datetime.datetime.strptime(f["date-time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        out["records"].append({
            "file": path, "line": number,
            "source": "smtp-send-log" if send else "smtp-receive-log",
            "ts": rfc3339(when), "client": list(client), "true_client": None,
            "server": list(server), "service": SERVICES.get(server[1], "smtp"),
            "version": PROTOCOL_NAMES[m.group(1)],
            "protocol": "SP_PROT_%s_%s" % (m.group(1), m.group(2)), "side": m.group(2).lower(),
            "cipher": names_[0], "hash": names_[1], "key_exchange": names_[2],
            "bits": [int(m.group(i)) for i in (4, 6, 8)], "weak": weak(names_[0], names_[1]),
            "ehlo": s["ehlo"], "session": sid, "starttls": s["starttls"],
        })


CLIENT_FIELDS = []


def main():
    args = sys.argv[1:]
    while args and args[0] == "--client-field":
        CLIENT_FIELDS.append(args[1].lower())
        args = args[2:]
    out = {"records": [], "malformed": []}
    iis_sessions, receive, send = {}, {}, {}
    seen, tls = set(), set()
    for path in args:
        head = "\n".join(lines_of(path)[:6])
        if "#Software: Microsoft Internet Information Services" in head:
            iis(path, out, iis_sessions)
        elif "#Log-type: SMTP Receive Protocol Log" in head:
            smtp(path, False, out, receive, seen, tls)
        elif "#Log-type: SMTP Send Protocol Log" in head:
            smtp(path, True, out, send, seen, tls)
        else:
            sys.exit("not a log: " + path)
    out["sessions_without_tls"] = len(seen - tls)
    json.dump(out, sys.stdout, indent=1)


main()
