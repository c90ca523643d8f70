#!/usr/bin/env bash
# pcaps/alpn_non_ascii.pcap: one OpenSSL 3 s_client handshake whose first ALPN protocol is the
# two bytes 0xba 0xad (not UTF-8), then "http/1.1" -- the shape of FoxIO's
# tls-non-ascii-alpn.pcapng, made here with real tools so that JA4's rule for such a value
# is tested on real bytes. Captured on loopback by tcpdump; needs root, openssl, tcpdump.
#
#   sudo pcaps/make_alpn_pcap.sh
#
# The expectation (tests/fingerprint_vectors.rs) is tshark's view of the bytes:
#   tshark -r pcaps/alpn_non_ascii.pcap -Y tls.handshake.type==1 -T json -x \
#     | grep -A1 extensions_alpn_str_raw       # "baad", then "687474702f312e31"
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=alpn.example.test -days 2 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
port=44399
tcpdump -i lo --immediate-mode -U -n -s 0 -w "$work/cap.pcap" "tcp port $port" 2>/dev/null &
sleep 1
timeout 20 openssl s_server -accept "127.0.0.1:$port" -cert "$work/cert.pem" \
  -key "$work/key.pem" -naccept 1 -quiet >/dev/null 2>&1 &
sleep 1
# The ALPN list as s_client writes it on the wire: each name as given, bytes unchanged.
echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername alpn.example.test \
  -alpn "$(printf '\xba\xad'),http/1.1" >/dev/null 2>&1 || true
sleep 1
kill %1
wait %1 2>/dev/null || true
cp "$work/cap.pcap" alpn_non_ascii.pcap
ls -l alpn_non_ascii.pcap
