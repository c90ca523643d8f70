"""QUIC handshakes between aioquic clients and an aioquic server on loopback, for
pcaps/make_quic.sh. Writes what each client was told to offer and what its TLS stack says
was negotiated (JSON on standard output); the capture itself is tcpdump's.

Usage: python quic_handshakes.py CERT KEY
"""
import asyncio
import json
import sys

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite

# Enough ALPN names that the ClientHello needs several Initial packets (aioquic fills
# 1200-byte datagrams), so the capture holds CRYPTO frames spread over packets.
MANY_ALPN = [f"x-tlscensus-protocol-{n:02d}-padding-to-grow-the-hello" for n in range(40)] + ["h3"]

CLIENTS = [
    # name, server port, client port, version, SNI, ALPN offered, cipher suites (None: default)
    ("v1", 443, 50401, QuicProtocolVersion.VERSION_1, "quic-v1.tlscensus.test", ["h3"], None),
    ("v2", 4433, 50402, QuicProtocolVersion.VERSION_2, "quic-v2.tlscensus.test", ["h3", "hq-interop"], None),
    ("aes256", 443, 50403, QuicProtocolVersion.VERSION_1, "aes256.tlscensus.test", ["doq"],
     [CipherSuite.AES_256_GCM_SHA384]),
    ("multi_packet_hello", 4433, 50404, QuicProtocolVersion.VERSION_1, "big.tlscensus.test", MANY_ALPN,
     None),
]


async def main(cert, key):
    servers = []
    for port in sorted({c[1] for c in CLIENTS}):
        config = QuicConfiguration(is_client=False, alpn_protocols=["h3", "hq-interop", "doq"])
        config.supported_versions = [QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2]
        config.load_cert_chain(cert, key)
        servers.append(await serve("127.0.0.1", port, configuration=config))
    facts = []
    for name, port, local_port, version, sni, alpn, suites in CLIENTS:
        config = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=sni)
        config.verify_mode = False
        config.original_version = version
        config.supported_versions = [version]
        if suites:
            config.cipher_suites = suites
        async with connect("127.0.0.1", port, configuration=config, local_port=local_port) as client:
            await client.ping()
            tls = client._quic.tls
            facts.append({
                "name": name,
                "client_port": local_port,
                "server_port": port,
                "quic_version": int(version),
                "sni": sni,
                "alpn_offered": alpn,
                "alpn_negotiated": tls.alpn_negotiated,
                "cipher_suites_offered": [int(s) for s in suites] if suites else None,
                "cipher_suite": int(tls.key_schedule.cipher_suite),
            })
        await asyncio.sleep(0.2)
    for server in servers:
        server.close()
    json.dump(facts, sys.stdout, indent=1)
    print()


asyncio.run(main(sys.argv[1], sys.argv[2]))
