#!/usr/bin/env python3
"""Minimal SMTP / IMAP / POP3 servers with STARTTLS, and a PROXY-protocol TLS
backend, for make_pcaps.sh (standard library only; TLS by Python's ssl module).

  mailserver.py smtp  HOST:PORT CERT KEY COUNT [--verb STARTTLS|X-ANONYMOUSTLS|none] [--refuse]
  mailserver.py imap  HOST:PORT CERT KEY COUNT
  mailserver.py pop3  HOST:PORT CERT KEY COUNT
  mailserver.py proxy-tls HOST:PORT CERT KEY COUNT   (reads a PROXY v1/v2 header, then TLS)

Each serves COUNT connections one after another, then exits. It prints
"ready" once listening, and one line per connection about what happened.
"""

import socket
import ssl
import sys

HOSTNAME = "mail.example.test"


class Conn:
    """Line-oriented wrapper over a plain or TLS socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def readline(self):
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(4096)
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                line, self.buf = self.buf, b""
                return line.decode("latin-1") or None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("latin-1").rstrip("\r")

    def send(self, text):
        try:
            self.sock.sendall(text.encode("latin-1"))
        except (ssl.SSLError, OSError):
            pass

    def start_tls(self, ctx):
        if self.buf:
            raise RuntimeError("plaintext pipelined after the TLS command")
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        return self.sock.version(), self.sock.cipher()[0]


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def smtp_session(conn, ctx, verb, refuse):
    conn.send(f"220 {HOSTNAME} ESMTP tlscensus test server\r\n")
    in_tls = False
    result = "plaintext"
    while True:
        line = conn.readline()
        if line is None:
            return result
        cmd = line.split(" ", 1)[0].upper()
        if cmd in ("EHLO", "HELO"):
            if cmd == "HELO":
                conn.send(f"250 {HOSTNAME}\r\n")
                continue
            lines = [HOSTNAME, "PIPELINING", "SIZE 10240000"]
            if verb and not in_tls:
                lines.append(verb)
            lines += ["ENHANCEDSTATUSCODES", "8BITMIME"]
            conn.send("".join(f"250-{l}\r\n" for l in lines[:-1]) + f"250 {lines[-1]}\r\n")
        elif verb and not in_tls and cmd == verb:
            if refuse:
                conn.send("454 4.7.0 TLS not available due to temporary reason\r\n")
                result = "refused"
                continue
            conn.send("220 2.0.0 SMTP server ready\r\n")
            try:
                v, c = conn.start_tls(ctx)
            except (ssl.SSLError, OSError) as e:
                return f"tls failed: {e}"
            in_tls = True
            result = f"tls {v} {c}"
        elif cmd in ("MAIL", "RCPT", "RSET", "NOOP"):
            conn.send("250 2.1.0 Ok\r\n")
        elif cmd == "DATA":
            conn.send("354 End data with <CR><LF>.<CR><LF>\r\n")
            while True:
                l = conn.readline()
                if l is None or l == ".":
                    break
            conn.send("250 2.0.0 Ok: queued\r\n")
        elif cmd == "QUIT":
            conn.send("221 2.0.0 Bye\r\n")
            return result
        else:
            conn.send("502 5.5.2 Error: command not recognized\r\n")


def imap_session(conn, ctx):
    caps = "IMAP4rev1 STARTTLS LOGINDISABLED"
    conn.send(f"* OK [CAPABILITY {caps}] {HOSTNAME} IMAP ready\r\n")
    in_tls = False
    result = "plaintext"
    while True:
        line = conn.readline()
        if line is None:
            return result
        parts = line.split(" ")
        tag, cmd = parts[0], (parts[1].upper() if len(parts) > 1 else "")
        if cmd == "CAPABILITY":
            c = "IMAP4rev1 AUTH=PLAIN" if in_tls else caps
            conn.send(f"* CAPABILITY {c}\r\n{tag} OK CAPABILITY completed\r\n")
        elif cmd == "STARTTLS" and not in_tls:
            conn.send(f"{tag} OK Begin TLS negotiation now\r\n")
            try:
                v, c = conn.start_tls(ctx)
            except (ssl.SSLError, OSError) as e:
                return f"tls failed: {e}"
            in_tls = True
            result = f"tls {v} {c}"
        elif cmd == "NOOP":
            conn.send(f"{tag} OK NOOP completed\r\n")
        elif cmd == "LOGOUT":
            conn.send(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n")
            return result
        else:
            conn.send(f"{tag} BAD command unknown\r\n")


def pop3_session(conn, ctx):
    conn.send(f"+OK {HOSTNAME} POP3 ready\r\n")
    in_tls = False
    result = "plaintext"
    while True:
        line = conn.readline()
        if line is None:
            return result
        cmd = line.split(" ", 1)[0].upper()
        if cmd == "CAPA":
            caps = ["USER", "TOP", "UIDL"] + ([] if in_tls else ["STLS"])
            conn.send("+OK Capability list follows\r\n" + "".join(c + "\r\n" for c in caps) + ".\r\n")
        elif cmd == "STLS" and not in_tls:
            conn.send("+OK Begin TLS negotiation\r\n")
            try:
                v, c = conn.start_tls(ctx)
            except (ssl.SSLError, OSError) as e:
                return f"tls failed: {e}"
            in_tls = True
            result = f"tls {v} {c}"
        elif cmd == "NOOP":
            conn.send("+OK\r\n")
        elif cmd == "QUIT":
            conn.send("+OK bye\r\n")
            return result
        else:
            conn.send("-ERR unknown command\r\n")


PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed inside the PROXY header")
        data += chunk
    return data


def proxy_tls_session(sock, ctx):
    """Consume exactly the PROXY header (v1 text line or v2 binary), then TLS."""
    first = recv_exact(sock, 12)
    if first == PROXY_V2_SIG:
        rest = recv_exact(sock, 4)
        length = int.from_bytes(rest[2:4], "big")
        body = recv_exact(sock, length)
        fam = rest[1]
        if fam == 0x11:
            src = socket.inet_ntop(socket.AF_INET, body[0:4]) + f":{int.from_bytes(body[8:10], 'big')}"
        elif fam == 0x21:
            src = "[" + socket.inet_ntop(socket.AF_INET6, body[0:16]) + f"]:{int.from_bytes(body[32:34], 'big')}"
        else:
            src = f"family {fam:#x}"
        header = f"v2 {src}"
    elif first.startswith(b"PROXY "):
        line = first
        while not line.endswith(b"\r\n"):
            line += recv_exact(sock, 1)
        header = "v1 " + line.decode().strip()
    else:
        return "no PROXY header"
    try:
        tls = ctx.wrap_socket(sock, server_side=True)
    except (ssl.SSLError, OSError) as e:
        return f"{header}; tls failed: {e}"
    res = f"{header}; tls {tls.version()} {tls.cipher()[0]}"
    try:
        while tls.recv(4096):
            pass
    except (ssl.SSLError, OSError):
        pass
    tls.close()
    return res


def main():
    mode, addr, cert, key, count = sys.argv[1:6]
    opts = sys.argv[6:]
    verb = "STARTTLS"
    if "--verb" in opts:
        verb = opts[opts.index("--verb") + 1]
        if verb == "none":
            verb = None
    refuse = "--refuse" in opts
    host, _, port = addr.rpartition(":")
    ctx = server_context(cert, key)
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host.strip("[]"), int(port)))
    ls.listen(8)
    print("ready", flush=True)
    for _ in range(int(count)):
        sock, peer = ls.accept()
        sock.settimeout(10)
        conn = Conn(sock)
        try:
            if mode == "smtp":
                res = smtp_session(conn, ctx, verb, refuse)
            elif mode == "imap":
                res = imap_session(conn, ctx)
            elif mode == "pop3":
                res = pop3_session(conn, ctx)
            elif mode == "proxy-tls":
                res = proxy_tls_session(sock, ctx)
            else:
                sys.exit(f"unknown mode {mode}")
        except (OSError, EOFError, RuntimeError) as e:
            res = f"error: {e}"
        print(f"{peer[0]}:{peer[1]} {res}", flush=True)
        try:
            conn.sock.close()
        except OSError:
            pass
    ls.close()


if __name__ == "__main__":
    main()
