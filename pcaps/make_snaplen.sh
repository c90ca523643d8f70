#!/usr/bin/env bash
# Make snaplen96.pcap: one real TLS 1.2 handshake (OpenSSL s_server / s_client on loopback)
# captured with `tcpdump -s 96`, so every frame keeps only its first 96 bytes and no hello
# fits. Also writes expected_snaplen.json with what the tools say happened:
#
# * negotiated version and cipher: s_client -brief ("Protocol version:", "Ciphersuite:"),
#   cipher name -> code point from `openssl ciphers -V`;
# * client address and port: pinned with s_client -bind;
# * snap length: the snaplen field tcpdump wrote in the file header.
#
# The handshake did happen; the capture just cut it. tlscensus must say `incomplete` and
# name no version for it.
#
# Needs: openssl tcpdump python3 iproute2 (ss). Run as root (capture on lo).
# Usage: sudo pcaps/make_snaplen.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FILE=snaplen96.pcap
SPORT=44396
CPORT=50096
SNI=snaplen.example.test

. "$HERE/lib.sh"
require_tools "apt-get install openssl tcpdump python3 iproute2" openssl tcpdump python3 ss timeout
require_root "tcpdump on lo"

scratch_dir snaplen

test_certificate

rm -f "$HERE/$FILE"
tcpdump -i lo --immediate-mode -U -n -s 96 -w "$HERE/$FILE" "tcp port $SPORT" 2>"$WORK/cap.err" &
CAP=$!
BG_PIDS+=("$CAP")
for _ in $(seq 100); do grep -q 'listening on' "$WORK/cap.err" && break; sleep 0.05; done
sleep 0.2

timeout 30 openssl s_server -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www \
  -accept "127.0.0.1:$SPORT" -naccept 1 </dev/null >"$WORK/srv.log" 2>&1 &
SRV=$!
BG_PIDS+=("$SRV")
for _ in $(seq 100); do ss -ltnH "sport = :$SPORT" | grep -q . && break; sleep 0.05; done

timeout 15 openssl s_client -connect "127.0.0.1:$SPORT" -bind "127.0.0.1:$CPORT" -brief \
  -tls1_2 -servername "$SNI" </dev/null >"$WORK/cli.log" 2>&1 || true
wait "$SRV" || true
sleep 1.2
kill -INT "$CAP"
wait "$CAP" || true

openssl ciphers -V 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' >"$WORK/ciphers.txt"
python3 - "$WORK/cli.log" "$WORK/ciphers.txt" "$HERE/$FILE" >"$HERE/expected_snaplen.json" <<EOF
import json, re, struct, sys
cli, ciphers, pcap = sys.argv[1:]
text = open(cli).read()
version = re.search(r"^Protocol version: (\S+)", text, re.M).group(1)
cipher = re.search(r"^Ciphersuite: (\S+)", text, re.M).group(1)
code = None
for line in open(ciphers):
    m = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)", line)
    if m and m.group(3) == cipher:
        code = "0x" + (m.group(1) + m.group(2)).lower()
data = open(pcap, "rb").read()
snaplen = struct.unpack("<I", data[16:20])[0]
print(json.dumps([{
    "file": "$FILE",
    "scenario": "tls12 captured with tcpdump -s 96",
    "client_ip": "127.0.0.1", "client_port": $CPORT,
    "server_ip": "127.0.0.1", "server_port": $SPORT,
    "sni": "$SNI",
    "negotiated_version": version,
    "cipher_suite": code,
    "cipher_name": cipher,
    "snaplen": snaplen,
    "outcome": "incomplete",
}], indent=2))
EOF
cat "$HERE/expected_snaplen.json"
ls -l "$HERE/$FILE"
