#!/usr/bin/env bash
# Replay benchmark for live capture (issue #6): replay a capture onto a veth pair with
# tcpreplay at increasing rates while `tlscensus capture` listens on the other end, and
# check that the records equal `tlscensus read` on the same file (times and frame numbers
# aside, which a replay changes) and that nothing was dropped.
#
#   sudo benches/replay.sh [FILE.pcap] [RATES_MBPS...]   (needs root, tcpreplay, python3)
#
# Builds target/release/tlscensus with --features live first.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-tests/corpus/mercury/test/data/top_100_fingerprints.pcap}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(10 50 100 250 500 1000 topspeed)
[ "$(id -u)" = 0 ] || { echo "replay benchmark: needs root (veth pair, capture)" >&2; exit 1; }
command -v tcpreplay >/dev/null || { echo "install tcpreplay (apt-get install tcpreplay)" >&2; exit 1; }

# Own target directory: a concurrent `cargo build --release` without the feature would
# otherwise replace the binary under us.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/replay-bench}
cargo build --release --features live --quiet
bin=$CARGO_TARGET_DIR/release/tlscensus
work=$(mktemp -d)
a=tlsrp0 b=tlsrp1
cleanup() { ip link del "$a" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip link del "$a" 2>/dev/null || true
ip link add "$a" mtu 9000 type veth peer name "$b" mtu 9000
sysctl -qw "net.ipv6.conf.$a.disable_ipv6=1" "net.ipv6.conf.$b.disable_ipv6=1" || true
ip link set "$a" up
ip link set "$b" up
sleep 1

# What a replay keeps: everything but capture times, frame numbers and latencies.
canon() {
  python3 -c '
import json, sys
out = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    for k in ("ts", "capture", "handshake_us"):
        r.pop(k, None)
    out.append(json.dumps(r, sort_keys=True))
for line in sorted(out):
    print(line)
' "$1"
}

"$bin" read "$file" --events "$work/read.jsonl" >/dev/null
canon "$work/read.jsonl" >"$work/read.canon"
# TCP frames in the file: what the `--bpf tcp` capture must see.
frames=$(tcpdump -qnr "$file" tcp 2>/dev/null | wc -l)  # -q: one line per frame
printf 'file %s: %s TCP frames, %s records from `read`\n\n' "$file" "$frames" "$(wc -l <"$work/read.canon")"
printf '%-10s %10s %10s %8s %8s %s\n' rate sent_pps captured kdrop ifdrop records
best=none
for rate in "${rates[@]}"; do
  rm -f "$work/live.jsonl" "$work/live.json"
  "$bin" capture -i "$b" --bpf tcp --quiet --buffer-size 32 \
    --events "$work/live.jsonl" --report "$work/live.json" 2>"$work/capture.log" &
  pid=$!
  sleep 1
  if [ "$rate" = topspeed ]; then opt=--topspeed; else opt=--mbps=$rate; fi
  pps=$(tcpreplay -q "$opt" -i "$a" "$file" 2>&1 | awk '/Rated:/ {for (i=1;i<=NF;i++) if ($i ~ /pps/) print $(i-1)}' | tail -n1)
  sleep 1
  kill -INT "$pid"
  wait "$pid" || true
  read -r captured kdrop ifdrop < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["capture"]
print(c["packets"], c["dropped_by_kernel"], c["dropped_by_interface"])' "$work/live.json")
  canon "$work/live.jsonl" >"$work/live.canon"
  if cmp -s "$work/read.canon" "$work/live.canon"; then same=equal; else same=DIFFERENT; fi
  printf '%-10s %10s %10s %8s %8s %s\n' "$rate" "${pps:-?}" "$captured" "$kdrop" "$ifdrop" "$same"
  if [ "$same" = equal ] && [ "$kdrop" = 0 ] && [ "$ifdrop" = 0 ] && [ "$captured" = "$frames" ]; then
    best="$rate (${pps:-?} packets/s)"
  fi
done
printf '\nhighest rate with equal records and zero drops: %s\n' "$best"
