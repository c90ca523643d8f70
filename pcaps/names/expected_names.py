#!/usr/bin/env python3
"""The names tshark finds in captures, for tests/names.rs (issue 23.1).

  expected_names.py OUT.json FILE...

For every file, per client address, the names tshark's dissectors show:

* "ehlo": the argument of each SMTP EHLO / HELO / LHLO command (smtp.req.command,
  smtp.req.parameter), the first one of each TCP connection;
* "dns": from DNS responses (dns.flags.response == 1, from UDP port 53): each A / AAAA answer's name for its
  address (dns.resp.name, dns.a / dns.aaaa), and each PTR answer's domain name for the
  address its in-addr.arpa / ip6.arpa owner name spells (dns.ptr.domain_name).

* "mdns": the same answer fields in mDNS responses (udp.port == 5353);
* "dhcp": the host name (dhcp.option.hostname) and client FQDN (dhcp.fqdn.name) of a
  REQUEST or INFORM, for its client address (dhcp.ip.client) or else, in a REQUEST, the
  requested address (dhcp.option.requested_ip_address); of an ACK, for the address given
  (dhcp.ip.your);
* "netbios": registrations and refreshes (opcodes 5, 8, 9, 15) and positive responses:
  the record's name (nbns.name, without the <xx> suffix) for each of its unique-name
  addresses (nbns.addr where nbns.nb_flags.group is false).

Output: {"path from the repository root": {source: {ip: [names]}}}, names sorted and
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


def resource_records(node):
    """Every dissected DNS resource record (a dict with dns.resp.type) under a tshark JSON
    node: record by record, so a name can never pair with another record's address."""
    if isinstance(node, dict):
        if "dns.resp.type" in node:
            yield node
        for value in node.values():
            yield from resource_records(value)
    elif isinstance(node, list):
        for value in node:
            yield from resource_records(value)


def dns_answers(path, display_filter):
    out = {}
    cmd = ["tshark", "-n", "-r", path, "-Y", display_filter, "-T", "json", "-J", "dns mdns"]
    packets = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout or b"[]")
    for rr in resource_records(packets):
        rtype, name = rr.get("dns.resp.type"), rr.get("dns.resp.name")
        if rtype == "1" and "dns.a" in rr:
            out.setdefault(rr["dns.a"], set()).add(name)
        elif rtype == "28" and "dns.aaaa" in rr:
            out.setdefault(str(ipaddress.IPv6Address(rr["dns.aaaa"])), set()).add(name)
        elif rtype == "12" and "dns.ptr.domain_name" in rr:
            ip = ptr_address(name)
            if ip:
                out.setdefault(ip, set()).add(rr["dns.ptr.domain_name"])
    return out


def dhcp_names(path):
    out = {}
    fields = ["dhcp.option.dhcp", "dhcp.ip.client", "dhcp.ip.your",
              "dhcp.option.requested_ip_address", "dhcp.option.hostname", "dhcp.fqdn.name"]
    for kind, client, your, requested, hostname, fqdn in tshark(path, "dhcp", fields):
        kind = kind[0] if kind else ""
        client = client[0] if client else "0.0.0.0"
        your = your[0] if your else "0.0.0.0"
        if kind in ("3", "8") and client != "0.0.0.0":
            ip = client
        elif kind == "3":
            ip = requested[0] if requested else None
        elif kind == "5":
            ip = your if your != "0.0.0.0" else (client if client != "0.0.0.0" else None)
        else:
            ip = None
        names = [n.rstrip("\x00") for n in hostname + fqdn if n.rstrip("\x00")]
        if ip and names:
            out.setdefault(ip, set()).update(names)
    return out


def netbios_names(path):
    out = {}
    fields = ["nbns.flags.response", "nbns.flags.opcode", "nbns.flags.rcode", "nbns.name",
              "nbns.addr", "nbns.nb_flags.group"]
    for response, opcode, rcode, names, addrs, groups in tshark(path, "nbns", fields):
        response = response[0] in ("1", "True") if response else False
        opcode = opcode[0] if opcode else ""
        wanted = (not response and opcode in ("5", "8", "9", "15")) or (
            response and opcode in ("0", "5", "8", "9", "15") and rcode and rcode[0] == "0")
        if not wanted or not names or not addrs:
            continue
        name = names[-1].split("<")[0].rstrip(" ")
        for addr, group in zip(addrs, groups):
            if group not in ("1", "True") and addr != "0.0.0.0" and name:
                out.setdefault(addr, set()).add(name)
    return out


def names_of(path):
    ehlo, seen = {}, set()
    fields = ["ip.src", "ipv6.src", "tcp.stream", "smtp.req.command", "smtp.req.parameter"]
    for src4, src6, stream, commands, params in tshark(path, "smtp.req.command", fields):
        for command, param in zip(commands, params):
            if command.upper() in ("EHLO", "HELO", "LHLO") and param.strip() and stream[0] not in seen:
                seen.add(stream[0])
                ip = (src4 or src6)[0]
                ehlo.setdefault(ip, set()).add(param.strip())
    dns = dns_answers(path, "dns.flags.response == 1 && udp.srcport == 53")
    mdns = dns_answers(path, "mdns && dns.flags.response == 1")
    as_lists = lambda m: {ip: sorted(v) for ip, v in sorted(m.items())}
    return {"ehlo": as_lists(ehlo), "dns": as_lists(dns), "mdns": as_lists(mdns),
            "dhcp": as_lists(dhcp_names(path)), "netbios": as_lists(netbios_names(path))}


def main():
    out, files = sys.argv[1], sys.argv[2:]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = {os.path.relpath(os.path.abspath(f), root): names_of(f) for f in files}
    with open(out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
