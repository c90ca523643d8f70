#!/usr/bin/env python3
"""The names tshark finds in captures, for tests/names.rs (issue 23.1).

  expected_names.py OUT.json FILE...

For every file, per client address, the names tshark's dissectors show:

* "ehlo": the argument of each SMTP EHLO / HELO / LHLO command (smtp.req.command,
  smtp.req.parameter), the first one of each TCP connection;
* "dns": from DNS responses (dns.flags.response == 1, from UDP port 53): each A / AAAA answer's name for its
  address (dns.resp.name, dns.a / dns.aaaa), and each PTR answer's domain name for the
  address its in-addr.arpa / ip6.arpa owner name spells (dns.ptr.domain_name).

Output: {"path from the repository root": {"ehlo": {ip: [names]}, "dns": {ip: [names]}}}, names sorted and
distinct. Needs tshark (Debian: tshark).
"""

import ipaddress
import json
import os
import subprocess
import sys


def tshark(path, display_filter, fields):
    cmd = ["tshark", "-n", "-r", path, "-Y", display_filter, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=\x1f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout.decode("utf-8", "replace")
    for line in out.splitlines():
        yield [col.split("\x1f") if col else [] for col in line.split("\t")]


def ptr_address(owner):
    """The address a reverse-lookup owner name spells, or None."""
    labels = owner.lower().rstrip(".").split(".")
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
    if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        return str(ipaddress.IPv6Address(int(nibbles, 16)))
    return None


def names_of(path):
    ehlo, dns, seen = {}, {}, set()
    fields = ["ip.src", "ipv6.src", "tcp.stream", "smtp.req.command", "smtp.req.parameter"]
    for src4, src6, stream, commands, params in tshark(path, "smtp.req.command", fields):
        for command, param in zip(commands, params):
            if command.upper() in ("EHLO", "HELO", "LHLO") and param.strip() and stream[0] not in seen:
                seen.add(stream[0])
                ip = (src4 or src6)[0]
                ehlo.setdefault(ip, set()).add(param.strip())
    fields = ["dns.resp.type", "dns.resp.name", "dns.a", "dns.aaaa", "dns.ptr.domain_name"]
    for types, names, a, aaaa, ptrs in tshark(path, "dns.flags.response == 1 && udp.srcport == 53", fields):
        a, aaaa, ptrs = iter(a), iter(aaaa), iter(ptrs)
        for rtype, name in zip(types, names):
            if rtype == "1":
                dns.setdefault(next(a), set()).add(name)
            elif rtype == "28":
                dns.setdefault(str(ipaddress.IPv6Address(next(aaaa))), set()).add(name)
            elif rtype == "12":
                target = next(ptrs)
                ip = ptr_address(name)
                if ip:
                    dns.setdefault(ip, set()).add(target)
    as_lists = lambda m: {ip: sorted(v) for ip, v in sorted(m.items())}
    return {"ehlo": as_lists(ehlo), "dns": as_lists(dns)}


def main():
    out, files = sys.argv[1], sys.argv[2:]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = {os.path.relpath(os.path.abspath(f), root): names_of(f) for f in files}
    with open(out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
