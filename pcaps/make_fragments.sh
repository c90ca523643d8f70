#!/usr/bin/env bash
# Regenerate the IP-fragment test captures: real TLS handshakes (OpenSSL s_server /
# s_client on loopback, captured with tcpdump), over IPv4 and IPv6, then cut into IP
# fragments of 96 bytes by fragment.py (out of order for every second datagram, each first
# fragment duplicated). Loopback never fragments TCP itself (the kernel segments to the MSS
# and sets DF), so the fragmentation a small-MTU hop would do is done on the captured bytes.
#
# The expectation is tshark's dissection of the fragmented files (tshark reassembles IPv4
# and IPv6 fragments by default): expected_fragments.json, one entry per hello, plus the
# fragment counts tshark shows.
#
# Needs: openssl tcpdump python3 tshark iproute2. Run as root (capture on lo).
# Usage: pcaps/make_fragments.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root (tcpdump on lo)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/tlscensus-frag.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj /CN=tlscensus.test \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# one FILE HOST PORT CPORT SNI CLIENT-ARGS...: one handshake, captured whole, then fragmented.
one() {
  local file=$1 host=$2 port=$3 cport=$4 sni=$5; shift 5
  local h=$host; [[ $host == *:* ]] && h="[$host]"
  tcpdump -i lo --immediate-mode -U -n -s 0 -w "$WORK/$file" "tcp port $port" 2>"$WORK/cap.err" &
  local cap=$!; PIDS+=("$cap")
  for _ in $(seq 100); do grep -q 'listening on' "$WORK/cap.err" && break; sleep 0.05; done
  sleep 0.2
  timeout 20 openssl s_server -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www \
    -accept "$h:$port" -naccept 1 </dev/null >"$WORK/srv.log" 2>&1 &
  local srv=$!; PIDS+=("$srv")
  for _ in $(seq 100); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.05; done
  timeout 15 openssl s_client -connect "$h:$port" -bind "$h:$cport" -brief \
    -servername "$sni" "$@" </dev/null >"$WORK/cli.log" 2>&1 || true
  wait "$srv" || true
  sleep 1.2; kill -INT "$cap"; wait "$cap" || true
  python3 "$HERE/fragment.py" "$WORK/$file" "$HERE/$file" 96
}

one fragmented_ipv4.pcap 127.0.0.1 44380 50080 frag4.example.test -tls1_3
one fragmented_ipv6.pcap ::1 44381 50081 frag6.example.test -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256

# tshark's view: every hello (after its reassembly of the fragments), and its fragment counts.
python3 - "$HERE" fragmented_ipv4.pcap fragmented_ipv6.pcap > "$HERE/expected_fragments.json" <<'PY'
import json, subprocess, sys
here, files = sys.argv[1], sys.argv[2:]
def fields(path, filt, names):
    out = subprocess.run(["tshark", "-2", "-r", f"{here}/{path}", "-Y", filt, "-T", "fields",
                          "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
                         + sum([["-e", n] for n in names], []),
                         capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]
entries = []
for f in files:
    ch = fields(f, "tls.handshake.type == 1",
                ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport",
                 "tls.handshake.extensions_server_name", "tls.handshake.ciphersuite"])
    sh = fields(f, "tls.handshake.type == 2",
                ["tls.handshake.ciphersuite", "tls.handshake.extensions.supported_version",
                 "tls.handshake.version"])
    frags = fields(f, "ip.flags.mf == 1 or ip.frag_offset > 0 or ipv6.fraghdr", ["frame.number"])
    joined = fields(f, "ip.reassembled_in or ipv6.reassembled.in",
                    ["ip.reassembled_in", "ipv6.reassembled.in"])
    (c,) = ch
    (s,) = sh
    version = s[1] or s[2]
    entries.append({
        "file": f,
        "client_ip": c[0] or c[1], "client_port": int(c[2]),
        "server_ip": c[3] or c[4], "server_port": int(c[5]),
        "sni": c[6],
        "cipher_suites_offered": len(c[7].split(",")),
        "cipher_suite": "0x%04x" % int(s[0], 16),
        "negotiated_version": {"0x0304": "TLSv1.3", "0x0303": "TLSv1.2"}[version],
        "fragment_frames": len(frags),
        "reassembled_datagrams": len({r[0] or r[1] for r in joined}),
    })
print(json.dumps(entries, indent=1))
PY
echo "wrote $HERE/fragmented_ipv4.pcap $HERE/fragmented_ipv6.pcap $HERE/expected_fragments.json" >&2
