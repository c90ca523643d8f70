#!/usr/bin/env python3
"""Mail clients for make_pcaps.sh, built on Python's smtplib / imaplib / poplib.

  mailclient.py smtp HOST PORT BINDPORT SNI [--verb STARTTLS|X-ANONYMOUSTLS|none] [--max-tls12]
                     [--body-kib N] [--ehlo NAME]
  mailclient.py imap HOST PORT BINDPORT SNI [--max-tls12]
  mailclient.py pop3 HOST PORT BINDPORT SNI [--max-tls12]

Connects from HOST:BINDPORT, upgrades to TLS if the server offers it (SNI = SNI),
and prints what happened in the same words as `openssl s_client -brief`
("Protocol version: ...", "Ciphersuite: ...") plus "STARTTLS offered: yes|no"
and the server's reply to the TLS command.
"""

import imaplib
import poplib
import smtplib
import socket
import ssl
import sys


def client_context(max_tls12):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test certificate is self-signed
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def report_tls(sock):
    print(f"Protocol version: {sock.version()}")
    print(f"Ciphersuite: {sock.cipher()[0]}")


def smtp(host, port, bport, sni, verb, ctx, body_kib=0, ehlo="client.example.test"):
    s = smtplib.SMTP(host, port, local_hostname=ehlo,
                     source_address=(host, bport), timeout=10)
    s.ehlo()
    offered = verb is not None and s.has_extn(verb.lower())
    print(f"STARTTLS offered: {'yes' if offered else 'no'}")
    if offered:
        code, reply = s.docmd(verb)
        print(f"{verb} reply: {code} {reply.decode()}")
        if code == 220:
            s.sock = ctx.wrap_socket(s.sock, server_hostname=sni)
            s.file = None
            s.helo_resp = s.ehlo_resp = None
            s.esmtp_features = {}
            s.does_esmtp = False
            report_tls(s.sock)
            s.ehlo()
    # a short message: encrypted after STARTTLS; otherwise in clear, as an
    # opportunistic MTA does when the server lacks or refuses STARTTLS.
    # --body-kib N: a message body of N KiB of 64-character text lines instead.
    body = "hello\r\n"
    if body_kib:
        line = "tlscensus plaintext body line, the same 64 bytes every time...\r\n"
        body = line * (body_kib * 1024 // len(line))
    s.sendmail("alice@client.example.test", ["bob@mail.example.test"],
                   "From: alice@client.example.test\r\nTo: bob@mail.example.test\r\n"
                   "Subject: tlscensus test\r\n\r\n" + body)
    s.quit()


class BoundIMAP4(imaplib.IMAP4):
    def __init__(self, host, port, bport):
        self._bind = (host, bport)
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=self._bind)


class BoundPOP3(poplib.POP3):
    def __init__(self, host, port, bport):
        self._bind = (host, bport)
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=self._bind)


def imap(host, port, bport, sni, ctx):
    m = BoundIMAP4(host, port, bport)
    offered = "STARTTLS" in m.capabilities
    print(f"STARTTLS offered: {'yes' if offered else 'no'}")
    m.host = sni  # imaplib sends self.host as the SNI
    typ, data = m.starttls(ssl_context=ctx)
    print(f"STARTTLS reply: {typ} {(data[0] or b'').decode()}")
    report_tls(m.sock)
    m.logout()


def pop3(host, port, bport, sni, ctx):
    p = BoundPOP3(host, port, bport)
    offered = "STLS" in p.capa()
    print(f"STARTTLS offered: {'yes' if offered else 'no'}")
    p.host = sni  # poplib sends self.host as the SNI
    reply = p.stls(context=ctx)
    print(f"STLS reply: {reply.decode()}")
    report_tls(p.sock)
    p.quit()


def main():
    proto, host, port, bport, sni = sys.argv[1:6]
    opts = sys.argv[6:]
    ctx = client_context("--max-tls12" in opts)
    port, bport = int(port), int(bport)
    if proto == "smtp":
        verb = "STARTTLS"
        if "--verb" in opts:
            verb = opts[opts.index("--verb") + 1]
            verb = None if verb == "none" else verb
        body_kib = 0
        if "--body-kib" in opts:
            body_kib = int(opts[opts.index("--body-kib") + 1])
        ehlo = "client.example.test"
        if "--ehlo" in opts:
            ehlo = opts[opts.index("--ehlo") + 1]
        smtp(host, port, bport, sni, verb, ctx, body_kib, ehlo)
    elif proto == "imap":
        imap(host, port, bport, sni, ctx)
    elif proto == "pop3":
        pop3(host, port, bport, sni, ctx)
    else:
        sys.exit(f"unknown protocol {proto}")


if __name__ == "__main__":
    main()
