#!/usr/bin/env python3
"""Generate big IIS W3C and Exchange SMTP receive logs for benches/logs_speed.sh.

make_logs.py OUT_DIR MB  -> OUT_DIR/u_ex_bench.log and OUT_DIR/RECV_bench.LOG, each about MB
megabytes, in the formats of tests/logs/ (CRLF lines, realistic field lists): 20 000 IIS
clients with OWA/EAS/EWS requests in bursts of 1 to 40, a few percent on TLS 1.0/1.1 and
some plain HTTP; SMTP
sessions of 8 rows each (connect, EHLO, STARTTLS, TLS result, MAIL, RCPT, DATA, disconnect)
from 5 000 senders, 64 open at a time interleaved as Exchange writes them.
"""
import random
import sys

out, mb = sys.argv[1], float(sys.argv[2])
target = int(mb * 1e6)
rnd = random.Random(24)

PROTOCOLS = [("400", "6610", "800d", "ae06")] * 17 + [("40", "6603", "8004", "a400"),
             ("100", "660e", "8004", "a400"), ("1000", "6610", "0", "ae06")]
URIS = ["/owa/", "/owa/service.svc", "/Microsoft-Server-ActiveSync/default.eas",
        "/EWS/Exchange.asmx", "/mapi/emsmdb/", "/autodiscover/autodiscover.xml"]
AGENTS = ["Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36",
          "Outlook-iOS/2.0", "Android-Mail/7.2", "ExchangeServicesClient/15.0",
          "Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.5)"]

with open(f"{out}/u_ex_bench.log", "w", newline="") as f:
    f.write("#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
            "#Date: 2024-05-01 00:00:00\r\n#Fields: date time s-ip cs-method cs-uri-stem "
            "cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status "
            "sc-substatus sc-win32-status time-taken crypt-protocol crypt-cipher crypt-hash "
            "crypt-keyexchange OriginalClientIP\r\n")
    written, second = 0, 0
    clients = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(20000)]
    burst = 0
    while written < target:
        # A client's requests come in bursts (a page load, a sync), 1 to 40 lines.
        if burst == 0:
            c, burst = rnd.randrange(len(clients)), rnd.randrange(1, 41)
        burst -= 1
        second += rnd.randrange(0, 2)
        day, rest = divmod(second, 86400)
        stamp = "2024-%02d-%02d %02d:%02d:%02d" % (5 + day // 28, 1 + day % 28, rest // 3600,
                                                  rest // 60 % 60, rest % 60)
        proto = PROTOCOLS[c % len(PROTOCOLS)]
        port, crypt = ("443", proto) if c % 50 else ("80", ("-",) * 4)
        line = "%s 10.0.0.10 %s %s - %s DOM\\u%d %s %s - 200 0 0 %d %s %s %s %s %s\r\n" % (
            stamp, "POST" if c % 3 else "GET", URIS[c % len(URIS)], port, c, clients[c],
            AGENTS[c % len(AGENTS)], rnd.randrange(1, 900), *crypt,
            "-" if c % 7 else "192.0.2.%d" % (c % 250))
        f.write(line)
        written += len(line)

TLS = ("TLS protocol SP_PROT_TLS1_%s_SERVER negotiation succeeded using bulk encryption "
       "algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with "
       "strength 384 bits and key exchange algorithm CALG_ECDHE with strength 256 bits")
with open(f"{out}/RECV_bench.LOG", "w", newline="") as f:
    f.write("#Software: Microsoft Exchange Server\r\n#Version: 15.2.0.0\r\n"
            "#Log-type: SMTP Receive Protocol Log\r\n#Date: 2024-05-01T00:00:00.000Z\r\n"
            "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
            "remote-endpoint,event,data,context,transport-traffic-type\r\n")
    written, ms, session = 0, 0, 0x08DC000000000000
    open_sessions = []
    while written < target:
        while len(open_sessions) < 64:
            session += 1
            sender = rnd.randrange(5000)
            open_sessions.append([session, sender, 0, rnd.randrange(1024, 65535)])
        s = rnd.choice(open_sessions)
        sid, sender, step, port = s
        ms += rnd.randrange(1, 5)
        sec, milli = divmod(ms, 1000)
        day, rest = divmod(sec, 86400)
        stamp = "2024-%02d-%02dT%02d:%02d:%02d.%03dZ" % (5 + day // 28, 1 + day % 28,
                                                        rest // 3600, rest // 60 % 60,
                                                        rest % 60, milli)
        version = "2" if sender % 20 else "0"
        event, data, context = [
            ("+", "", ""), ("<", "EHLO mta%d.example.net" % sender, ""), ("<", "STARTTLS", ""),
            ("*", "", '"%s"' % (TLS % version)), ("<", "MAIL FROM:<a@example.net>", ""),
            ("<", "RCPT TO:<b@contoso.com>", ""), ("<", "BDAT 48211 LAST", ""),
            ("-", "", "Remote")][step]
        line = "%s,EXCH01\\Default Frontend EXCH01,%016X,%d,10.0.0.241:25,198.%d.%d.%d:%d,%s,%s,%s,Email\r\n" % (
            stamp, sid, step, 18 + sender % 2, sender >> 8 & 255, sender & 255, port, event,
            data, context)
        f.write(line)
        written += len(line)
        s[2] += 1
        if s[2] == 8:
            open_sessions.remove(s)
