#!/usr/bin/env bash
# Reading compressed captures against decompression alone (issue 22).
#
#   benches/compressed_speed.sh [--rounds N] [--mib M]
#
# 1. Generates the bench capture with the whole-run generator (benches/common/gen.rs,
#    `cargo bench --bench whole_run -- --mib M --generate-only`; default 100, about 400 MB
#    of mostly application data), kept in target/bench/.
# 2. Compresses it with the command-line tools at their defaults (`gzip -6`, `zstd -3`,
#    `lz4 -1`), kept in target/bench/compressed/.
# 3. Checks that `tlscensus read X --events` writes the records the plain pcap gives (the
#    file name aside), so every timing is of the same work.
# 4. Times, taking turns over --rounds rounds (default 5; files in the page cache): the
#    decompressor alone into /dev/null (`gzip -dc`, `zstd -dc`, `lz4 -dc`), tlscensus on
#    the compressed file, `DECOMPRESSOR | tlscensus read -`, and tlscensus on the plain
#    pcap; each under /usr/bin/time for peak RSS. Prints best and median wall seconds and
#    the ratio of tlscensus's best to the decompressor's best.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
mib=100
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--mib M]" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
for tool in gzip zstd lz4; do
  command -v $tool >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done
echo "machine: $(nproc) cores; $(uptime)"
nice -n 10 cargo build --release --quiet
bin=target/release/tlscensus
pcap=$(nice -n 10 cargo bench --quiet --bench whole_run -- --mib "$mib" --generate-only 2>/dev/null | tail -1)
[ -f "$pcap" ] || { echo "no bench capture" >&2; exit 1; }
dir=target/bench/compressed
mkdir -p "$dir"
base=$dir/$(basename "$pcap")
[ -f "$base.gz" ] || gzip -6 -c "$pcap" >"$base.gz"
[ -f "$base.zst" ] || zstd -q -3 -c "$pcap" >"$base.zst"
[ -f "$base.lz4" ] || lz4 -q -1 -c "$pcap" >"$base.lz4"
ls -l "$pcap" "$base".*

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strip() { sed 's/"file":"[^"]*"//'; }
"$bin" read --events - "$pcap" | strip >"$work/plain"
for x in gz zst lz4; do
  "$bin" read --events - "$base.$x" | strip | cmp -s - "$work/plain" \
    || { echo "$base.$x: records differ from the plain pcap" >&2; exit 1; }
done
echo "records equal: $(wc -l <"$work/plain") connections"

decompressor() { case $1 in gz) echo "gzip -dc" ;; zst) echo "zstd -dc" ;; lz4) echo "lz4 -dc" ;; esac; }
raw=target/bench/compressed_speed-raw.tsv
: >"$raw"
timed() { # name command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>/dev/null
  printf '%s\t%s\n' "$name" "$(tr ' ' '\t' <"$work/t")" >>"$raw"
}
for x in gz zst lz4; do cat "$base.$x" >/dev/null; done
cat "$pcap" >/dev/null
for round in $(seq "$rounds"); do
  for x in gz zst lz4; do
    d=$(decompressor $x)
    # shellcheck disable=SC2086
    timed "$x: $d alone" sh -c "$d '$base.$x' >/dev/null"
    timed "$x: tlscensus read FILE.$x" "$bin" read "$base.$x" --report "$work/r.json"
    timed "$x: $d | tlscensus read -" sh -c "$d '$base.$x' | '$bin' read - --report '$work/r.json'"
  done
  timed "plain: tlscensus read FILE.pcap" "$bin" read "$pcap" --report "$work/r.json"
  echo "round $round done" >&2
done
echo
printf '%-45s %8s %8s %9s\n' "contender" "best s" "median s" "peak MiB"
cut -f1 "$raw" | awk '!seen[$0]++' | while IFS= read -r name; do
  grep -F "$name	" "$raw" | sort -t$'\t' -k2,2n | awk -F'\t' -v name="$name" '
    { t[NR] = $2; m = ($3 > m ? $3 : m) }
    END { printf "%-45s %8.2f %8.2f %9.0f\n", name, t[1], t[int((NR + 1) / 2)], m / 1024 }'
done | tee "$work/table"
echo
for x in gz zst lz4; do
  alone=$(grep "^$x: .* alone" "$work/table" | awk '{print $(NF-2)}')
  ours=$(grep "^$x: tlscensus read FILE" "$work/table" | awk '{print $(NF-2)}')
  echo "$x: tlscensus / decompressor alone = $(echo "scale=2; $ours / $alone" | bc)"
done
