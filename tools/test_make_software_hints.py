#!/usr/bin/env python3
"""Checks tools/make_software_hints.py against JA3 strings converted by hand from mercury's
str_repr text (each hex value read off the source line and written in decimal by a person)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import make_software_hints as m  # noqa: E402

# First line of mercury@84c6462 resources/fingerprint_db.json.gz (sfc.exe, Windows 10).
SFC = (
    "(0303)(c030c02cc028c02400a500a1009f006b00690068c032c02ec02ac026009d003dc02fc02bc027c023"
    "00a400a0009e0067003f003ec031c02dc029c025009c003c00ff)((000b000403000102)(000a001c001a0017"
    "0019001c001b0018001a0016000e000d000b000c0009000a)(0023)(000d0020001e06010602060305010502"
    "0503040104020403030103020303020102020203)(000f000101))"
)
SFC_JA3 = (
    "771,49200-49196-49192-49188-165-161-159-107-105-104-49202-49198-49194-49190-157-61-49199-"
    "49195-49191-49187-164-160-158-103-63-62-49201-49197-49193-49189-156-60-255,11-10-35-13-15,"
    "23-25-28-27-24-26-22-14-13-11-12-9-10,0-1-2"
)
# A hello with GREASE (mercury writes every GREASE value as 0a0a; JA3 drops them).
GREASED = (
    "(0303)(0a0a130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f0035000a)((0a0a0000)"
    "(0000)(0017)(ff01)(000a000a00080a0a001d00170018)(000b00020100)(0023)(0010000e000c02683208"
    "687474702f312e31)(000500050100000000)(000d00140012040308040401050308050501080606010201)"
    "(0012)(0033)(002d00020101)(002b000b0a0a0a0304030303020301)(001b0003020002)(0a0a000100)"
    "(0015))"
)
GREASED_JA3 = (
    "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53-10,"
    "0-23-65281-10-11-35-16-5-13-18-51-45-43-27-21,29-23-24,0"
)
# Made-up TLS 1.0 hello with no extensions: JA3 leaves the last three fields empty.
BARE = "(0301)(00390038003500160013000a00330032002f000500040015001200090014001100080006000300ff)()"
BARE_JA3 = "769,57-56-53-22-19-10-51-50-47-5-4-21-18-9-20-17-8-6-3-255,,,"


class Ja3FromMercury(unittest.TestCase):
    def test_hand_converted(self):
        self.assertEqual(m.ja3_string(SFC), SFC_JA3)
        self.assertEqual(m.ja3_string(GREASED), GREASED_JA3)
        self.assertEqual(m.ja3_string(BARE), BARE_JA3)

    def test_os_name(self):
        self.assertEqual(
            m.os_name({"(WinNT)(Windows 7 Enterprise)(6.1.7601)": 5, "(WinNT)(Windows 10)(10)": 2}),
            "Windows 7 Enterprise 6.1.7601",
        )


if __name__ == "__main__":
    unittest.main()
