#!/usr/bin/env bash
# Regenerate pcaps/quic.pcap and pcaps/expected_quic.json: QUIC handshakes made by a real
# QUIC stack (aioquic, from PyPI, in a throw-away venv), captured on loopback with tcpdump.
# Versions 1 and 2, a restricted cipher suite, and a ClientHello spread over several Initial
# packets. The expected values are what each client was told to offer and what aioquic's
# TLS layer reports as negotiated (pcaps/quic_handshakes.py), never tlscensus's output.
#
# Needs: python3 with venv, tcpdump, openssl; root (capturing on lo, binding port 443).
# Usage: pcaps/make_quic.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in python3 tcpdump openssl; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (tcpdump on lo, port 443)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/tlscensus-quic.XXXXXX)
TCPDUMP_PID=
cleanup() {
  [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q 'aioquic>=1.2,<2'
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj /CN=tlscensus.test \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
tcpdump -i lo -s 0 -U -w "$WORK/quic.pcap" 'udp and (port 443 or port 4433)' 2>/dev/null &
TCPDUMP_PID=$!
sleep 1
"$WORK/venv/bin/python" "$HERE/quic_handshakes.py" "$WORK/cert.pem" "$WORK/key.pem" \
  > "$WORK/expected_quic.json"
sleep 1
kill "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null || true; TCPDUMP_PID=
cp "$WORK/quic.pcap" "$HERE/quic.pcap"
cp "$WORK/expected_quic.json" "$HERE/expected_quic.json"
echo "wrote $HERE/quic.pcap ($(stat -c %s "$HERE/quic.pcap") bytes) and expected_quic.json" >&2
