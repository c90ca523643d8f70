#!/usr/bin/env bash
# What reading server certificates costs a whole run (issue 26): a handshake-only capture
# of N copies of pcaps/cert_normal.pcap's TLS 1.2 handshake (each with its 2-certificate
# chain; client addresses and ports rewritten), read by two tlscensus binaries in
# alternating rounds. Prints wall time, user+sys CPU and peak RSS of each run.
#
#   benches/certificate_cost.sh BASE_BINARY NEW_BINARY [N=20000] [ROUNDS=5]
#
# BASE_BINARY is typically a build of the commit before certificate parsing; both read
# with --threads 2 --events FILE. Needs python3 and GNU time (/usr/bin/time).
set -euo pipefail
base=$1 new=$2 n=${3:-20000} rounds=${4:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$here/pcaps/cert_normal.pcap" "$work/certs.pcap" "$n" <<'PY'
import struct, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
frames, at = [], 24
while at + 16 <= len(data):
    ts, tus, cap, orig = struct.unpack_from("<IIII", data, at)
    frames.append((ts, tus, data[at + 16:at + 16 + cap], orig))
    at += 16 + cap
client_port = struct.unpack_from(">H", frames[0][2], 34)[0]  # the SYN's source port
with open(out, "wb") as f:
    f.write(data[:24])
    for i in range(n):
        port, net = 1024 + i % 60000, (i // 60000) % 250
        for ts, tus, frame, orig in frames:
            b = bytearray(frame)  # Ethernet, IPv4 without options, TCP
            sport, dport = struct.unpack_from(">HH", b, 34)
            if sport == client_port:
                struct.pack_into(">H", b, 34, port); b[28:30] = bytes([10, net])
            if dport == client_port:
                struct.pack_into(">H", b, 36, port); b[32:34] = bytes([10, net])
            f.write(struct.pack("<IIII", ts + i // 100, tus, len(b), orig)); f.write(b)
PY
echo "capture: $n handshakes, $(stat -c %s "$work/certs.pcap") bytes"
for r in $(seq "$rounds"); do
  for which in base new; do
    bin=$base; [ "$which" = new ] && bin=$new
    /usr/bin/time -f "$which round $r: wall %e s, user+sys %U+%S s, max RSS %M KiB" \
      "$bin" read "$work/certs.pcap" --threads 2 --events "$work/$which.jsonl" >/dev/null
  done
done
echo "records: base $(wc -l < "$work/base.jsonl"), new $(wc -l < "$work/new.jsonl")"
