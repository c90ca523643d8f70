"""MS-XCA "plain LZ77" (LZXpress) compression, written for the ETL fixtures.

The format ([MS-XCA] section 2.3/2.4): a 32-bit little-endian flag word announces the
next 32 items, most significant bit first: 0 = one literal byte, 1 = a match. A match is a
16-bit word, ((offset - 1) << 3) | min(length - 3, 7), where offset is 1..8192. Longer
lengths continue: 7 means "read a length nibble"; nibbles are packed two to a byte, the
first one of a pair taking the low half of a byte written at that point and the second the
high half of that same byte; a nibble of 15 means "read a byte"; a byte of 255 means "read
a 16-bit length" (the whole length minus 3), and a 16-bit 0 means "read a 32-bit length".
The stream ends with the flag bits after the last item set to 1, so a decoder that reads a
match flag with no input left stops there.

The compressor is a plain greedy matcher over a hash of 3-byte prefixes; good enough for
test data, and every output is checked against an independent decompressor by the fixture
scripts (dissect.util's lzxpress) and by `selftest()` here.
"""

from __future__ import annotations

import struct

MAX_OFFSET = 8192
MIN_MATCH = 3
CHAIN_LIMIT = 32


class _Out:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.flag_pos = 0
        self.flags = 0
        self.flag_count = 0
        self.half_byte_pos: int | None = None
        self.buf += b"\0\0\0\0"

    def _flag(self, bit: int) -> None:
        self.flags = (self.flags << 1) | bit
        self.flag_count += 1
        if self.flag_count == 32:
            struct.pack_into("<I", self.buf, self.flag_pos, self.flags & 0xFFFFFFFF)
            self.flag_pos = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.flags = 0
            self.flag_count = 0

    def literal(self, byte: int) -> None:
        # The byte goes out before its flag: the flag word may be flushed by _flag, and
        # the new reserved word must come after this item.
        self.buf.append(byte)
        self._flag(0)

    def match(self, offset: int, length: int) -> None:
        assert 1 <= offset <= MAX_OFFSET and length >= MIN_MATCH
        rest = length - MIN_MATCH
        self.buf += struct.pack("<H", ((offset - 1) << 3) | min(rest, 7))
        if rest >= 7:
            rest -= 7
            nibble = min(rest, 15)
            if self.half_byte_pos is None:
                self.half_byte_pos = len(self.buf)
                self.buf.append(nibble)
            else:
                self.buf[self.half_byte_pos] |= nibble << 4
                self.half_byte_pos = None
            if rest >= 15:
                rest -= 15
                if rest < 255:
                    self.buf.append(rest)
                else:
                    self.buf.append(255)
                    total = length - MIN_MATCH
                    if total <= 0xFFFF:
                        self.buf += struct.pack("<H", total)
                    else:
                        self.buf += struct.pack("<HI", 0, total)
        self._flag(1)

    def finish(self) -> bytes:
        unused = 32 - self.flag_count
        flags = ((self.flags << unused) | ((1 << unused) - 1)) & 0xFFFFFFFF
        struct.pack_into("<I", self.buf, self.flag_pos, flags)
        return bytes(self.buf)


def compress(data: bytes) -> bytes:
    out = _Out()
    n = len(data)
    heads: dict[bytes, list[int]] = {}
    i = 0
    while i < n:
        best_len = 0
        best_off = 0
        if i + MIN_MATCH <= n:
            key = data[i : i + MIN_MATCH]
            chain = heads.get(key)
            if chain:
                for j in reversed(chain[-CHAIN_LIMIT:]):
                    off = i - j
                    if off > MAX_OFFSET:
                        break
                    length = MIN_MATCH
                    while i + length < n and data[j + length] == data[i + length]:
                        length += 1
                    if length > best_len:
                        best_len, best_off = length, off
        if best_len >= MIN_MATCH:
            out.match(best_off, best_len)
            step = best_len
        else:
            out.literal(data[i])
            step = 1
        for k in range(i, min(i + step, n - MIN_MATCH + 1)):
            heads.setdefault(data[k : k + MIN_MATCH], []).append(k)
        i += step
    return out.finish()


def decompress(src: bytes) -> bytes:
    """This module's own decoder, used by selftest() only; the fixture checks use
    dissect.util's, which this code does not share."""
    dst = bytearray()
    pos = 0
    flags = 0
    count = 0
    half = None
    while True:
        if count == 0:
            if pos + 4 > len(src):
                return bytes(dst)
            flags = struct.unpack_from("<I", src, pos)[0]
            pos += 4
            count = 32
        count -= 1
        if not (flags >> count) & 1:
            if pos >= len(src):
                return bytes(dst)
            dst.append(src[pos])
            pos += 1
            continue
        if pos >= len(src):
            return bytes(dst)
        word = struct.unpack_from("<H", src, pos)[0]
        pos += 2
        off = (word >> 3) + 1
        length = word & 7
        if length == 7:
            if half is None:
                half = pos
                length = src[pos] & 15
                pos += 1
            else:
                length = src[half] >> 4
                half = None
            if length == 15:
                length = src[pos]
                pos += 1
                if length == 255:
                    length = struct.unpack_from("<H", src, pos)[0]
                    pos += 2
                    if length == 0:
                        length = struct.unpack_from("<I", src, pos)[0]
                        pos += 4
                    length -= 15 + 7
                length += 15
            length += 7
        length += 3
        for _ in range(length):
            dst.append(dst[-off])


def selftest() -> None:
    import random

    rng = random.Random(7)
    cases = [
        b"",
        b"a",
        b"abc" * 3,
        b"x" * 9,
        b"x" * 10,
        b"x" * 24,
        b"x" * 25,
        b"x" * 279,
        b"x" * 280,
        b"x" * 70000,
        bytes(rng.randrange(256) for _ in range(5000)),
        bytes(rng.randrange(4) for _ in range(20000)),
    ]
    blob = bytearray()
    for _ in range(300):
        blob += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        blob += blob[-rng.randrange(1, min(len(blob), 8000) + 1) :][: rng.randrange(3, 400)]
    cases.append(bytes(blob))
    for case in cases:
        packed = compress(case)
        assert decompress(packed) == case, len(case)


if __name__ == "__main__":
    selftest()
    print("xpress selftest ok")
