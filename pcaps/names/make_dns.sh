#!/usr/bin/env bash
# Make dns_names.pcap: real resolver traffic naming two TLS clients (issue 23.1). On
# loopback, captured with tcpdump:
#
# * dnsmasq (Debian's) answers on 127.0.0.1:53 from records given on its command line:
#   ws1.corp.test A 127.0.0.2 (and its PTR), printer.corp.test PTR for 127.0.0.3, and
#   ws1.corp.test AAAA ::1;
# * `dig` asks for ws1.corp.test (A and AAAA) and for the PTRs of 127.0.0.2 and 127.0.0.3;
# * `openssl s_client` then connects from 127.0.0.2 and 127.0.0.3 to an s_server, so both
#   addresses are clients of the census.
#
# The expectations are tshark's: pcaps/names/expected_names.py reads the DNS answer fields.
#
# Needs: dnsmasq dnsutils (dig) openssl tcpdump iproute2. Run as root (capture on lo, port 53).
# Usage: sudo pcaps/names/make_dns.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FILE=dns_names.pcap
SPORT=44394

. "$HERE/../lib.sh"
require_tools "apt-get install dnsmasq dnsutils openssl tcpdump iproute2" dnsmasq dig openssl tcpdump ss timeout
require_root "tcpdump on lo, port 53"

scratch_dir dns

test_certificate

rm -f "$HERE/$FILE"
tcpdump -i lo --immediate-mode -U -n -s 0 -w "$HERE/$FILE" "udp port 53 or tcp port $SPORT" \
  2>"$WORK/cap.err" &
BG_PIDS+=("$!")
CAP=$!
for _ in $(seq 100); do grep -q 'listening on' "$WORK/cap.err" && break; sleep 0.05; done
sleep 0.2

dnsmasq --keep-in-foreground --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
  --listen-address=127.0.0.1 --bind-interfaces --port=53 --pid-file="$WORK/dnsmasq.pid" \
  --host-record=ws1.corp.test,127.0.0.2,::1 \
  --ptr-record=3.0.0.127.in-addr.arpa,printer.corp.test \
  --log-facility="$WORK/dnsmasq.log" &
BG_PIDS+=("$!")
for _ in $(seq 100); do ss -lunH "sport = :53" | grep -q . && break; sleep 0.05; done

dig @127.0.0.1 +short ws1.corp.test A
dig @127.0.0.1 +short ws1.corp.test AAAA
dig @127.0.0.1 +short -x 127.0.0.2
dig @127.0.0.1 +short -x 127.0.0.3

timeout 30 openssl s_server -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www \
  -accept "127.0.0.1:$SPORT" -naccept 2 </dev/null >"$WORK/srv.log" 2>&1 &
SRV=$!
BG_PIDS+=("$SRV")
for _ in $(seq 100); do ss -ltnH "sport = :$SPORT" | grep -q . && break; sleep 0.05; done
for host in 2 3; do
  timeout 15 openssl s_client -connect "127.0.0.1:$SPORT" -bind "127.0.0.$host:5009$host" -brief \
    -servername "tls.corp.test" </dev/null >"$WORK/cli.$host.log" 2>&1 || true
  grep -q '^Protocol version' "$WORK/cli.$host.log" || { cat "$WORK/cli.$host.log" >&2; exit 1; }
  sleep 0.2
done
wait "$SRV" || true

sleep 1.2
kill -INT "$CAP"
wait "$CAP" || true
ls -l "$HERE/$FILE"

# The same answers cut into IP fragments of 32 bytes (every second datagram's last-first,
# each first fragment twice), as answers larger than a hop's MTU arrive: tshark reassembles
# them, and so must tlscensus before it reads the names.
python3 "$HERE/../fragment.py" "$HERE/$FILE" "$HERE/dns_fragmented.pcap" 32 udp
ls -l "$HERE/dns_fragmented.pcap"
