#!/usr/bin/env bash
# Make hostile_values.pcap: real clients sending the values an attacker chooses, for the
# report escaping tests (issue 23.5). On loopback, captured with tcpdump:
#
# * `openssl s_client -servername` with three hostile SNIs, from 127.0.0.2, .3 and .4: a spreadsheet formula
#   (=HYPERLINK), an @-formula with Markdown/HTML text, and terminal escape sequences
#   (colour, clear screen, window title) around a `|`;
# * Python's smtplib (pcaps/mailclient.py --ehlo), from 127.0.0.1, saying EHLO with a formula, HTML and
#   terminal escapes, then STARTTLS.
#
# expected_hostile.json holds the values exactly as the clients were given them (the
# expectation comes from the clients' options, not from tlscensus).
#
# Needs: openssl tcpdump python3 iproute2 (ss). Run as root (capture on lo, port 25).
# Usage: sudo pcaps/names/make_hostile.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS=$(dirname "$HERE")
FILE=hostile_values.pcap
SPORT=44395

ESC=$'\033'
BEL=$'\007'
SNI_FORMULA='=HYPERLINK("http://evil.example","x")'
SNI_MARKUP='@SUM(1+1)|<b>bold</b>&amp;'
SNI_TERMINAL="${ESC}[31mred${ESC}[0m|${ESC}[2J${ESC}]0;owned${BEL}end"
EHLO="=cmd|' /C calc'!A0 <script>alert(1)</script> ${ESC}[1;31mEHLO${ESC}[0m"

. "$HERE/../lib.sh"
require_tools "apt-get install openssl tcpdump python3 iproute2" openssl tcpdump python3 ss timeout
require_root "tcpdump on lo, port 25"

scratch_dir hostile

test_certificate

wait_listen() {
  for _ in $(seq 100); do ss -ltnH "sport = :$1" | grep -q . && return; sleep 0.05; done
  echo "nothing listening on port $1" >&2; exit 1
}

rm -f "$HERE/$FILE"
tcpdump -i lo --immediate-mode -U -n -s 0 -w "$HERE/$FILE" "tcp port $SPORT or tcp port 25" \
  2>"$WORK/cap.err" &
CAP=$!
BG_PIDS+=("$CAP")
for _ in $(seq 100); do grep -q 'listening on' "$WORK/cap.err" && break; sleep 0.05; done
sleep 0.2

timeout 30 openssl s_server -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www \
  -accept "127.0.0.1:$SPORT" -naccept 3 </dev/null >"$WORK/srv.log" 2>&1 &
SRV=$!
BG_PIDS+=("$SRV")
wait_listen "$SPORT"
# Each SNI from its own address (127.0.0.2 .. 4), so each is the only SNI of its client's row.
port=50095
host=2
for sni in "$SNI_FORMULA" "$SNI_MARKUP" "$SNI_TERMINAL"; do
  timeout 15 openssl s_client -connect "127.0.0.1:$SPORT" -bind "127.0.0.$host:$port" -brief \
    -servername "$sni" </dev/null >"$WORK/cli.$port.log" 2>&1 || true
  grep -q '^Protocol version' "$WORK/cli.$port.log" || { cat "$WORK/cli.$port.log" >&2; exit 1; }
  port=$((port + 1))
  host=$((host + 1))
  sleep 0.2
done
wait "$SRV" || true

timeout 30 python3 "$PCAPS/mailserver.py" smtp 127.0.0.1:25 "$WORK/cert.pem" "$WORK/key.pem" 1 \
  >"$WORK/mail.log" 2>&1 &
MAIL=$!
BG_PIDS+=("$MAIL")
wait_listen 25
timeout 15 python3 "$PCAPS/mailclient.py" smtp 127.0.0.1 25 50098 mail.example.test \
  --ehlo "$EHLO" >"$WORK/smtp.log" 2>&1 || { cat "$WORK/smtp.log" >&2; exit 1; }
wait "$MAIL" || true

sleep 1.2
kill -INT "$CAP"
wait "$CAP" || true

python3 - "$SNI_FORMULA" "$SNI_MARKUP" "$SNI_TERMINAL" "$EHLO" >"$HERE/expected_hostile.json" <<EOF
import json, sys
formula, markup, terminal, ehlo = sys.argv[1:]
print(json.dumps({
    "file": "$FILE",
    "server": "127.0.0.1",
    "sni": {"127.0.0.2": formula, "127.0.0.3": markup, "127.0.0.4": terminal},
    "ehlo": {"127.0.0.1": ehlo},
}, indent=2))
EOF
cat "$HERE/expected_hostile.json"
ls -l "$HERE/$FILE"
