#!/usr/bin/env bash
# Regenerate the IP-fragment test captures: real TLS handshakes (OpenSSL s_server /
# s_client), captured with tcpdump:
#  - fragmented_ipv4.pcap, fragmented_ipv6.pcap: on loopback, then cut into IP fragments
#    of 96 bytes by fragment.py (out of order for every second datagram, each first
#    fragment duplicated). Loopback never fragments TCP itself (the kernel segments to the
#    MSS and sets DF), so the fragmentation a small-MTU hop would do is done on the bytes.
#  - fragmented_vxlan.pcap: fragmented by the kernel. Two network namespaces joined by a
#    veth pair of MTU 256 carry a VXLAN tunnel of MTU 1400; TCP inside the tunnel sends
#    full-size segments, and the kernel fragments the outer UDP packets (VXLAN leaves DF
#    clear), as a tunnel over a small-MTU path does. Captured on the veth.
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

# The VXLAN tunnel over a small-MTU link (namespaces tlsfa, tlsfb; removed on exit).
vxlan() {
  local ns
  for ns in tlsfa tlsfb; do ip netns del $ns 2>/dev/null || true; ip netns add $ns; done
  ip link add tlsfa0 type veth peer name tlsfb0
  ip link set tlsfa0 netns tlsfa; ip link set tlsfb0 netns tlsfb
  ip -n tlsfa addr add 192.0.2.1/24 dev tlsfa0; ip -n tlsfb addr add 192.0.2.2/24 dev tlsfb0
  for ns in tlsfa tlsfb; do
    ip -n $ns link set ${ns}0 mtu 256 up; ip -n $ns link set lo up
  done
  ip -n tlsfa link add vx0 type vxlan id 5 dstport 4789 local 192.0.2.1 remote 192.0.2.2
  ip -n tlsfb link add vx0 type vxlan id 5 dstport 4789 local 192.0.2.2 remote 192.0.2.1
  ip -n tlsfa link set vx0 mtu 1400 up; ip -n tlsfb link set vx0 mtu 1400 up
  ip -n tlsfa addr add 10.9.0.1/24 dev vx0; ip -n tlsfb addr add 10.9.0.2/24 dev vx0
  ip netns exec tlsfa tcpdump -i tlsfa0 --immediate-mode -U -n -s 0 -w "$HERE/fragmented_vxlan.pcap" \
    udp 2>"$WORK/vx.err" &
  local cap=$!; PIDS+=("$cap")
  for _ in $(seq 100); do grep -q 'listening on' "$WORK/vx.err" && break; sleep 0.05; done
  sleep 0.2
  ip netns exec tlsfb timeout 20 openssl s_server -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
    -www -accept 10.9.0.2:44382 -naccept 1 </dev/null >"$WORK/vsrv.log" 2>&1 &
  local srv=$!; PIDS+=("$srv")
  sleep 1
  ip netns exec tlsfa timeout 15 openssl s_client -connect 10.9.0.2:44382 -bind 10.9.0.1:50082 \
    -brief -servername fragvx.example.test -tls1_2 </dev/null >"$WORK/vcli.log" 2>&1 || true
  wait "$srv" || true
  sleep 1.2; kill -INT "$cap"; wait "$cap" || true
  for ns in tlsfa tlsfb; do ip netns del $ns; done
}
vxlan

# tshark's view: every hello (after its reassembly of the fragments), and its fragment counts.
python3 - "$HERE" fragmented_ipv4.pcap fragmented_ipv6.pcap fragmented_vxlan.pcap \
  > "$HERE/expected_fragments.json" <<'PY'
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
    # Through a tunnel, the innermost addresses (the last of each list) are the connection's.
    inner = lambda v4, v6: (v4 or v6).split(",")[-1]
    entries.append({
        "file": f,
        "client_ip": inner(c[0], c[1]), "client_port": int(c[2]),
        "server_ip": inner(c[3], c[4]), "server_port": int(c[5]),
        "sni": c[6],
        "cipher_suites_offered": len(c[7].split(",")),
        "cipher_suite": "0x%04x" % int(s[0], 16),
        "negotiated_version": {"0x0304": "TLSv1.3", "0x0303": "TLSv1.2"}[version],
        "fragment_frames": len(frags),
        "reassembled_datagrams": len({r[0] or r[1] for r in joined}),
    })
print(json.dumps(entries, indent=1))
PY
echo "wrote $HERE/fragmented_{ipv4,ipv6,vxlan}.pcap and $HERE/expected_fragments.json" >&2
