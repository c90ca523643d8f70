#!/usr/bin/env python3
"""Helper for make_pcaps.sh (standard library only).

Subcommands:
  relay      one-shot TCP relay that re-sends both directions in small chunks
             (3 bytes first, then 100-byte pieces, TCP_NODELAY, short sleeps)
  silent     one-shot TCP listener that reads and never answers, then closes
  junk       TCP client that connects from a pinned port and sends fixed bytes
             (or nothing) and closes
  expected   build expected*.json from the facts file written by make_pcaps.sh,
             the s_client / s_server logs, `openssl ciphers -V` and the SYNs
             that `tcpdump -nr` prints
  verify     compare expected*.json with what tshark dissects from the captures

Nothing here reads or depends on tlscensus.
"""

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

VERSIONS = {"SSLv3": "SSLv3", "TLSv1": "TLSv1.0", "TLSv1.0": "TLSv1.0",
            "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
WIRE_VERSIONS = {0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1",
                 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ---------------------------------------------------------------- relay

def chunked_send(sock, data, state, size=100, pause=0.02):
    """Send data in pieces; the very first piece of a direction is 3 bytes,
    so that even the 5-byte TLS record header is split."""
    while data:
        n = 3 if not state["sent_any"] else size
        piece, data = data[:n], data[n:]
        sock.sendall(piece)
        state["sent_any"] = True
        time.sleep(pause)


def cmd_relay(args):
    listen, upstream, bind = hostport(args[0]), hostport(args[1]), hostport(args[2])
    ls = socket.socket(family_of(listen[0]), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(listen)
    ls.listen(1)
    print("ready", flush=True)
    down, _ = ls.accept()
    ls.close()
    up = socket.socket(family_of(upstream[0]), socket.SOCK_STREAM)
    up.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    up.bind(bind)
    up.connect(upstream)
    for s in (up, down):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state = {up: {"sent_any": False}, down: {"sent_any": False}}
    peer = {up: down, down: up}
    open_dirs = {up, down}
    while open_dirs:
        readable, _, _ = select.select(list(open_dirs), [], [], 10)
        if not readable:
            break
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_dirs.discard(s)
                try:
                    peer[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            chunked_send(peer[s], data, state[peer[s]])
    up.close()
    down.close()


def proxy_header(version, src_ip, src_port, dst_ip, dst_port):
    """PROXY protocol header (haproxy's proxy-protocol.txt), v1 text or v2 binary."""
    six = ":" in src_ip
    if version == "1":
        return f"PROXY {'TCP6' if six else 'TCP4'} {src_ip} {dst_ip} {src_port} {dst_port}\r\n".encode()
    fam = socket.AF_INET6 if six else socket.AF_INET
    addrs = (socket.inet_pton(fam, src_ip) + socket.inet_pton(fam, dst_ip)
             + src_port.to_bytes(2, "big") + dst_port.to_bytes(2, "big"))
    # signature, version 2 + PROXY command, TCP over IPv4 (0x11) or IPv6 (0x21), length
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21 if six else 0x11])
            + len(addrs).to_bytes(2, "big") + addrs)


def cmd_proxyrelay(args):
    """One-shot relay that opens the upstream connection with a PROXY header
    naming a made-up original client, then forwards bytes unchanged."""
    listen, upstream, bind = hostport(args[0]), hostport(args[1]), hostport(args[2])
    header = proxy_header(args[3], args[4], int(args[5]), args[6], int(args[7]))
    ls = socket.socket(family_of(listen[0]), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(listen)
    ls.listen(1)
    print("ready", flush=True)
    down, _ = ls.accept()
    ls.close()
    up = socket.socket(family_of(upstream[0]), socket.SOCK_STREAM)
    up.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    up.bind(bind)
    up.connect(upstream)
    up.sendall(header)
    peer = {up: down, down: up}
    open_dirs = {up, down}
    while open_dirs:
        readable, _, _ = select.select(list(open_dirs), [], [], 10)
        if not readable:
            break
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_dirs.discard(s)
                try:
                    peer[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            try:
                peer[s].sendall(data)
            except OSError:
                open_dirs.discard(s)
    up.close()
    down.close()


# ---------------------------------------------------------------- silent / junk

def cmd_silent(args):
    listen = hostport(args[0])
    ls = socket.socket(family_of(listen[0]), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(listen)
    ls.listen(1)
    print("ready", flush=True)
    c, _ = ls.accept()
    c.settimeout(10.0)  # wait for the client to give up and close first
    try:
        while c.recv(65536):
            pass
    except (socket.timeout, ConnectionResetError):
        pass
    c.close()
    ls.close()


def cmd_junk(args):
    dest, bind, payload = hostport(args[0]), hostport(args[1]), args[2]
    s = socket.socket(family_of(dest[0]), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(bind)
    s.connect(dest)
    if payload:
        s.sendall(payload.encode().decode("unicode_escape").encode("latin-1"))
    s.settimeout(1.0)
    try:
        while s.recv(65536):
            pass
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()


# ---------------------------------------------------------------- expected

def cipher_table(path):
    """name -> "0x...." from saved `openssl ciphers -V` output."""
    table = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "-" and re.match(r"0x[0-9A-F]{2},0x[0-9A-F]{2}$", parts[0]):
                hi, lo = parts[0].split(",")
                table[parts[2]] = "0x" + hi[2:].lower() + lo[2:].lower()
    return table


def syns(pcap):
    """(src_ip, src_port, dst_ip, dst_port) of every initial SYN, as tcpdump prints them."""
    out = subprocess.run(
        ["tcpdump", "-nr", pcap],
        capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        m = re.search(r"IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[S\]", line)
        if m:
            found.append((m.group(1), int(m.group(2)), m.group(3), int(m.group(4))))
    return found


def parse_client_log(text):
    """Facts printed by `openssl s_client -brief` (and its error lines)."""
    res = {}
    m = re.search(r"^Protocol version: (\S+)", text, re.M)
    if m:
        res["version"] = VERSIONS[m.group(1)]
    m = re.search(r"^Ciphersuite: (\S+)", text, re.M)
    if m:
        res["cipher"] = m.group(1)
    # long (non -brief) form: trust it only for a completed handshake
    if "version" not in res and re.search(r"^(New|Reused), TLS", text, re.M):
        m = re.search(r"^    Protocol  : (\S+)", text, re.M)
        if m:
            res["version"] = VERSIONS[m.group(1)]
        m = re.search(r"^    Cipher    : (\S+)", text, re.M)
        if m:
            res["cipher"] = m.group(1)
    res["reused"] = bool(re.search(r"^Reused, ", text, re.M))
    m = re.search(r"error:[0-9A-F]+:SSL routines:[^:]*:([^:]*alert[^:]*):.*SSL alert number (\d+)", text)
    if m:
        res["alert_received"] = (m.group(1), int(m.group(2)))
    return res


def parse_server_log(text):
    res = {}
    m = re.search(r"error:[0-9A-F]+:SSL routines:[^:]*:([^:]*alert[^:]*):.*SSL alert number (\d+)", text)
    if m:
        res["alert_received"] = (m.group(1), int(m.group(2)))
    return res


def read(path):
    if not path or path == "-":
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def cmd_expected(args):
    facts_path, ciphers_path, outdir, out_name = args
    table = cipher_table(ciphers_path)
    entries = []
    syn_cache = {}
    with open(facts_path) as f:
        facts = [json.loads(line) for line in f if line.strip()]
    for fact in facts:
        if fact.get("output", "expected.json") != out_name:
            continue
        pcap = os.path.join(outdir, fact["file"])
        if pcap not in syn_cache:
            syn_cache[pcap] = syns(pcap)
        key = (fact["client_ip"], fact["client_port"], fact["server_ip"], fact["server_port"])
        if key not in syn_cache[pcap]:
            sys.exit(f"{fact['file']}: tcpdump shows no SYN {key}; SYNs seen: {syn_cache[pcap]}")
        cl = parse_client_log(read(fact.get("client_log")))
        sv = parse_server_log(read(fact.get("server_log")))
        version = cl.get("version")
        cipher_name = cl.get("cipher")
        # Handshakes that fail after the ServerHello print no summary; both ends
        # were then pinned to a single version and cipher by the scenario setup.
        if version is None and fact.get("pinned_version"):
            version = fact["pinned_version"]
        if cipher_name is None and fact.get("pinned_cipher"):
            cipher_name = fact["pinned_cipher"]
        if fact.get("pinned_version") and version != fact["pinned_version"]:
            sys.exit(f"{fact['file']}: s_client said {version}, setup pinned {fact['pinned_version']}")
        alert = None
        alert_text = None
        if "alert_received" in cl:
            alert_text, num = cl["alert_received"]
            alert = {"from": "server", "description": num}
        elif "alert_received" in sv:
            alert_text, num = sv["alert_received"]
            alert = {"from": "client", "description": num}
        extra = fact.get("extra", {})
        m = re.search(r"^STARTTLS offered: (yes|no)", read(fact.get("client_log")), re.M)
        if m and "starttls_offered" in extra and extra["starttls_offered"] != (m.group(1) == "yes"):
            sys.exit(f"{fact['file']}: client says STARTTLS offered: {m.group(1)}, setup disagrees")
        if extra.get("plaintext"):
            if version is not None or alert is not None:
                sys.exit(f"{fact['file']}: meant to stay plaintext, but the client reports TLS")
            outcome = "plaintext"
        elif alert is not None:
            outcome = "alert"
        elif version is not None:
            outcome = "negotiated"
        else:
            outcome = "no_server_hello"
        if fact.get("expect_outcome") and fact["expect_outcome"] != outcome:
            sys.exit(f"{fact['file']}: scenario meant {fact['expect_outcome']}, tools say {outcome}")
        cipher = None
        if cipher_name is not None:
            if cipher_name not in table:
                sys.exit(f"cipher {cipher_name} not in openssl ciphers -V output")
            cipher = table[cipher_name]
        entry = {
            "file": fact["file"],
            "scenario": fact["scenario"],
            "client_ip": fact["client_ip"],
            "client_port": fact["client_port"],
            "server_ip": fact["server_ip"],
            "server_port": fact["server_port"],
            "ip_version": 6 if ":" in fact["client_ip"] else 4,
            "sni": fact.get("sni"),
            "alpn_offered": fact.get("alpn_offered", []),
            "max_offered": fact["max_offered"],
            "negotiated_version": version,
            "cipher_suite": cipher,
            "cipher_name": cipher_name,
            "outcome": outcome,
            "alert": alert,
            "alert_text": alert_text,
        }
        for k, v in extra.items():
            entry[k] = v
        entries.append(entry)
    with open(os.path.join(outdir, out_name), "w") as f:
        json.dump(entries, f, indent=2)
        f.write("\n")
    print(f"wrote {out_name}: {len(entries)} connections")


# ---------------------------------------------------------------- verify

FIELDS = ["frame.number", "ip.src", "ipv6.src", "tcp.srcport", "tcp.dstport",
          "tls.record.content_type", "tls.handshake.type", "tls.handshake.version",
          "tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str",
          "tls.handshake.ciphersuite", "tls.handshake.extensions.supported_version",
          "tls.alert_message.desc"]


def tshark_rows(pcap, ports, decode_as=True):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "tls.handshake.type == 1 || tls.handshake.type == 2 || tls.alert_message",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for p in sorted(set(ports)) if decode_as else []:
        if p not in (25, 587, 143, 110, 443):
            cmd += ["-d", f"tcp.port=={p},tls"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        vals = line.split("\t")
        vals += [""] * (len(FIELDS) - len(vals))
        rows.append(dict(zip(FIELDS, vals)))
    return rows


def patched_copy(pcap):
    with open(pcap, "rb") as f:
        data = f.read()
    data = data.replace(b"X-ANONYMOUSTLS\r\n", b"STARTTLS      \r\n")
    out = os.path.join(tempfile.mkdtemp(prefix="tlscensus-verify."), os.path.basename(pcap))
    with open(out, "wb") as f:
        f.write(data)
    return out


def tshark_fields(pcap, conv_ports, fields, display_filter):
    cmd = ["tshark", "-n", "-r", pcap, "-Y",
           f"({display_filter}) && tcp.port == {conv_ports[0]} && tcp.port == {conv_ports[1]}",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines()]


def mail_checks(pcap, e):
    """Mail / PROXY keys of one expected entry against tshark's SMTP, IMAP, POP
    and PROXY dissectors. Returns a list of disagreements."""
    bad = []
    ports = (e["client_port"], e["server_port"])
    service = e.get("service")
    verb = e.get("starttls_verb")
    if verb == "X-ANONYMOUSTLS":
        verb = "STARTTLS"  # renamed in the patched copy
    if service in ("smtp", "submission"):
        rows = tshark_fields(pcap, ports, ["smtp.command_line", "smtp.response.code", "smtp.rsp.parameter"], "smtp")
        params = {p.strip().upper() for r in rows for p in r["smtp.rsp.parameter"].split("|")}
        # whole command lines: tshark cuts smtp.req.command to 4 letters ("STAR")
        commands = {c.replace("\\r\\n", "").split(" ")[0].upper()
                    for r in rows for c in r["smtp.command_line"].split("|") if c}
        codes = {c for r in rows for c in r["smtp.response.code"].split("|") if c}
        if ("STARTTLS" in params) != e["starttls_offered"]:
            bad.append(f"starttls_offered {e['starttls_offered']}, tshark EHLO parameters {sorted(params)}")
        if verb and verb not in commands:
            bad.append(f"tshark sees no {verb} command (commands {sorted(commands)})")
        if e.get("starttls_reply") and str(e["starttls_reply"]) not in codes:
            bad.append(f"tshark sees no {e['starttls_reply']} reply")
        if e["plaintext"] and "DATA" not in commands and not e.get("starttls_reply"):
            bad.append("plaintext session, but tshark sees no DATA in clear")
    elif service == "imap":
        rows = tshark_fields(pcap, ports, ["imap.request.command"], "imap.request")
        if verb.upper() not in {r["imap.request.command"].upper() for r in rows}:
            bad.append(f"tshark sees no IMAP {verb}")
    elif service == "pop3":
        rows = tshark_fields(pcap, ports, ["pop.request.command"], "pop.request")
        if verb.upper() not in {r["pop.request.command"].upper() for r in rows}:
            bad.append(f"tshark sees no POP3 {verb}")
    if e.get("proxy_version"):
        rows = tshark_fields(pcap, ports, ["proxy.src.ipv4", "proxy.src.ipv6", "proxy.srcport",
                                           "proxy.v1.magic", "proxy.v2.version"], "proxy")
        got = [((r["proxy.src.ipv4"] or r["proxy.src.ipv6"]), r["proxy.srcport"],
                2 if r["proxy.v2.version"] else 1) for r in rows]
        want = [(e["proxied_ip"], str(e["proxied_port"]), e["proxy_version"])]
        if got != want:
            bad.append(f"PROXY header per tshark {got}, expected {want}")
    return bad


def ints(s):
    return [int(x, 0) for x in s.split(",") if x]


def cmd_verify(args):
    outdir = args[0]
    names = args[1:] or ["expected.json"]
    problems = 0
    checked = 0
    referenced = set()
    for name in names:
        path = os.path.join(outdir, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            entries = json.load(f)
        by_file = {}
        for e in entries:
            by_file.setdefault(e["file"], []).append(e)
        for fname, es in by_file.items():
            before = problems
            pcap = os.path.join(outdir, fname)
            if any(e.get("starttls_verb") == "X-ANONYMOUSTLS" for e in es):
                # tshark does not know Exchange's verb: check a copy in which it is
                # renamed to an equally long "STARTTLS      " (padded with spaces).
                pcap = patched_copy(pcap)
            # behind a PROXY header, tshark's own heuristics find the header and the TLS
            rows = tshark_rows(pcap, [e["server_port"] for e in es],
                               decode_as=not any(e.get("proxy_version") for e in es))
            for e in es:
                for msg in mail_checks(pcap, e):
                    problems += 1
                    print(f"MISMATCH {fname} {e['client_port']}->{e['server_port']}: {msg}")
            if pcap != os.path.join(outdir, fname):
                shutil.rmtree(os.path.dirname(pcap))
            seen_conns = set()
            for e in es:
                mine = [r for r in rows if {r["tcp.srcport"], r["tcp.dstport"]} ==
                        {str(e["client_port"]), str(e["server_port"])}]
                seen_conns.add((str(e["client_port"]), str(e["server_port"])))
                got = {"sni": None, "alpn_offered": [], "max_offered": None,
                       "negotiated_version": None, "cipher_suite": None, "alert": None,
                       "client_ip": None}
                for r in mine:
                    from_client = r["tcp.srcport"] == str(e["client_port"])
                    types = ints(r["tls.handshake.type"])
                    if from_client and 1 in types:
                        got["client_ip"] = r["ip.src"] or r["ipv6.src"]
                        got["sni"] = r["tls.handshake.extensions_server_name"] or None
                        got["alpn_offered"] = [a for a in r["tls.handshake.extensions_alpn_str"].split(",") if a]
                        sv = [v for v in ints(r["tls.handshake.extensions.supported_version"]) if v in WIRE_VERSIONS]
                        legacy = ints(r["tls.handshake.version"])[0]
                        got["max_offered"] = WIRE_VERSIONS[max(sv)] if sv else WIRE_VERSIONS[legacy]
                    if not from_client and 2 in types:
                        sv = ints(r["tls.handshake.extensions.supported_version"])
                        legacy = ints(r["tls.handshake.version"])[0]
                        got["negotiated_version"] = WIRE_VERSIONS[sv[0] if sv else legacy]
                        got["cipher_suite"] = "0x%04x" % ints(r["tls.handshake.ciphersuite"])[0]
                    # close_notify (0) ends a session, it is not a handshake failure;
                    # it is only visible here when the cipher is NULL.
                    if r["tls.alert_message.desc"] and ints(r["tls.alert_message.desc"])[0] != 0:
                        got["alert"] = {"from": "client" if from_client else "server",
                                        "description": ints(r["tls.alert_message.desc"])[0]}
                if e.get("plaintext"):
                    if mine:
                        problems += 1
                        print(f"MISMATCH {fname} {e['client_port']}: plaintext session, but tshark sees TLS")
                    del got["client_ip"]  # only taken from a ClientHello
                for k, v in got.items():
                    checked += 1
                    if e[k] != v:
                        # a TLS 1.3 alert after the ServerHello is encrypted: tshark can't see it
                        if k == "alert" and v is None and e["negotiated_version"] == "TLSv1.3":
                            continue
                        problems += 1
                        print(f"MISMATCH {fname} {e['client_port']}->{e['server_port']} {k}: expected {v!r} per tshark, json says {e[k]!r}")
            extra = {(r["tcp.srcport"], r["tcp.dstport"]) for r in rows if "1" in r["tls.handshake.type"].split(",")}
            extra -= seen_conns
            if extra:
                problems += 1
                print(f"MISMATCH {fname}: ClientHellos on connections not in {name}: {sorted(extra)}")
            print(f"{'ok ' if problems == before else 'BAD'} {fname}: {len(es)} connection(s), {len(rows)} tshark rows")
        referenced.update(by_file)
    # capture files no expected*.json mentions must hold no ClientHello at all
    for fname in sorted(os.listdir(outdir)):
        if not fname.endswith((".pcap", ".pcapng")) or fname in referenced:
            continue
        pcap = os.path.join(outdir, fname)
        ports = [s[3] for s in syns(pcap)]
        hellos = [r for r in tshark_rows(pcap, ports) if "1" in r["tls.handshake.type"].split(",")]
        if hellos:
            problems += 1
        print(f"{'ok ' if not hellos else 'BAD'} {fname}: not in any expected file, "
              f"{len(ports)} TCP connection(s), {len(hellos)} ClientHello(s) per tshark")
    print(f"verify: {checked} values compared, {problems} mismatches")
    return 1 if problems else 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"relay": cmd_relay, "proxyrelay": cmd_proxyrelay, "silent": cmd_silent, "junk": cmd_junk,
          "expected": cmd_expected, "verify": cmd_verify}[cmd]
    sys.exit(fn(args) or 0)


if __name__ == "__main__":
    main()
