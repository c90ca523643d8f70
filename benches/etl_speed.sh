#!/usr/bin/env bash
# Reading .etl against reading the same packets as pcap (issue #20).
#
#   benches/etl_speed.sh [--rounds N] [--mixes "bulk handshakes"] [--prepare-only]
#
# 1. Generates the bench captures with the whole-run generator (benches/common/gen.rs,
#    `cargo bench --bench whole_run -- ... --generate-only`), kept in target/bench/:
#      bulk        --mib 100            about 400 MB, 93 % application-data packets
#      handshakes  --mib 200 --bulk 0   about 210 MB, handshakes and closes only
# 2. Converts each to .etl with tests/etl/make_etl.py (the project's independent writer),
#    kept in target/bench/etl/, in these flavours:
#      netsh        --flavour netsh                          NDIS-PacketCapture, 1 CPU
#      netsh-cpu4   --flavour netsh --cpus 4                 4 CPUs' buffers to merge
#      pktmon       --flavour pktmon                         plain buffers, 1 component
#      pktmon-z     --flavour pktmon --compress              MS-XCA buffers, 1 component
#      pktmon-z-c3  --flavour pktmon --compress --components 3   and 2 copies per packet
#      pktmon-z-cpu4  --flavour pktmon --compress --cpus 4   4 CPUs' compressed buffers
#    (The writer's header counts at least 2 processors: the 1-CPU files are read as a
#    real file whose header counts more processors than wrote buffers is, e.g.
#    tests/etl/real/demikernel/PktMon.etl, 8 counted and 2 with buffers.)
#    The writer's compressor is plain Python, byte by byte: under CPython the compressed
#    flavours take about 5 s per MB; PyPy (Debian `pypy3`) runs the same code about 6x
#    faster and writes the same bytes, and is used when installed (set PYTHON to choose).
#    Two conversions run at a time; with PyPy on the 2-core VM, the first ten took 45 minutes
#    (the longest, bulk pktmon-z-c3, 19 minutes).
# 3. Checks that `tlscensus read X.etl --events` writes the records the pcap gives (the
#    `capture` key, the file name, aside), so every timing below is of the same work.
# 4. Times, in one run, the contenders taking turns (--rounds, default 5; every file read
#    once before, so all are in the page cache): `cat FILE > /dev/null` of the pcap and of
#    every .etl (the floor), `tlscensus read X.pcap --reading one` and the default
#    `--reading map`, and `tlscensus read X.etl` for every flavour (one reader thread, as
#    every non-pcap file gets); each under /usr/bin/time for peak RSS, with `--stats` for
#    the reader thread's CPU time. Reports best and median wall time, MB/s of the file,
#    packets/s, peak RSS, reader CPU, and ratios against the pcap.
#
# Raw timings go to target/bench/etl_speed-raw.tsv, the table to standard output and
# target/bench/etl_speed-table.txt. Builds with `nice`; runs the contenders without it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
mixes="bulk handshakes"
prepare_only=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --mixes) mixes=$2; shift 2 ;;
    --prepare-only) prepare_only=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--mixes \"bulk handshakes\"] [--prepare-only]" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if [ -z "${PYTHON:-}" ]; then
  if command -v pypy3 >/dev/null; then PYTHON=pypy3; else PYTHON=python3; fi
fi
flavours="netsh netsh-cpu4 pktmon pktmon-z pktmon-z-cpu4 pktmon-z-c3"
flavour_args() {
  case $1 in
    netsh) echo "--flavour netsh" ;;
    netsh-cpu4) echo "--flavour netsh --cpus 4" ;;
    pktmon) echo "--flavour pktmon" ;;
    pktmon-z) echo "--flavour pktmon --compress" ;;
    pktmon-z-c3) echo "--flavour pktmon --compress --components 3" ;;
    pktmon-z-cpu4) echo "--flavour pktmon --compress --cpus 4" ;;
  esac
}
mix_args() {
  case $1 in
    bulk) echo "--mib 100" ;;
    handshakes) echo "--mib 200 --bulk 0" ;;
    *) echo "unknown mix $1" >&2; exit 2 ;;
  esac
}

echo "machine: $(nproc) cores; $(uptime)"
nice -n 10 cargo build --release --quiet
bin=target/release/tlscensus
mkdir -p target/bench/etl

# 1. The captures.
declare -A pcap
for mix in $mixes; do
  # shellcheck disable=SC2046
  pcap[$mix]=$(nice -n 10 cargo bench --quiet --bench whole_run -- $(mix_args "$mix") --generate-only 2>/dev/null | tail -1)
  [ -f "${pcap[$mix]}" ] || { echo "no capture for $mix" >&2; exit 1; }
done

# 2. The .etl files, made when missing (into a temporary name, renamed when complete).
etl() { echo "target/bench/etl/$(basename "${pcap[$1]}" .pcap).$2.etl"; }
jobs_file=$(mktemp)
for mix in $mixes; do
  for f in $flavours; do
    out=$(etl "$mix" "$f")
    [ -f "$out" ] || echo "${pcap[$mix]} $out $(flavour_args "$f")" >>"$jobs_file"
  done
done
if [ -s "$jobs_file" ]; then
  echo "converting with $PYTHON ($(wc -l <"$jobs_file") files, 2 at a time):"
  export PYTHON
  # shellcheck disable=SC2016
  xargs -P 2 -L 1 sh -c 'in=$0 out=$1; shift; start=$(date +%s)
    nice -n 10 "$PYTHON" tests/etl/make_etl.py "$in" "$out.part" "$@" \
      && mv "$out.part" "$out" && echo "  $out: $(( $(date +%s) - start )) s"' <"$jobs_file"
fi
rm -f "$jobs_file"
[ -z "$prepare_only" ] || exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Warm the page cache.
for mix in $mixes; do
  cat "${pcap[$mix]}" >/dev/null
  for f in $flavours; do cat "$(etl "$mix" "$f")" >/dev/null; done
done

# 3. Same records from every file of a mix: the events, `capture` aside, sorted.
canon() {
  python3 -c '
import hashlib, json, sys
lines = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    r.pop("capture", None)
    lines.append(json.dumps(r, sort_keys=True))
lines.sort()
print(len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16])
' "$1"
}
echo
echo "records (--events, capture key aside):"
for mix in $mixes; do
  "$bin" read "${pcap[$mix]}" --events "$work/p.jsonl" >/dev/null
  want=$(canon "$work/p.jsonl")
  printf '  %-11s %-12s %s\n' "$mix" pcap "$want"
  for f in $flavours; do
    "$bin" read "$(etl "$mix" "$f")" --events "$work/e.jsonl" >/dev/null
    got=$(canon "$work/e.jsonl")
    printf '  %-11s %-12s %s\n' "$mix" "$f" "$got"
    [ "$got" = "$want" ] || { echo "the .etl ($f) gives other records than the pcap" >&2; exit 1; }
  done
done
rm -f "$work/p.jsonl" "$work/e.jsonl"

# 4. Timings. One line per run: round mix contender file wall_s peak_kib reader_cpu_s frames.
raw=target/bench/etl_speed-raw.tsv
: >"$raw"
run() { # run ROUND MIX NAME FILE COMMAND...
  local round=$1 mix=$2 name=$3 file=$4
  shift 4
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -o "$work/time" -f "%M" "$@" >/dev/null 2>"$work/err"
  t1=$(date +%s%N)
  local reader frames
  reader=$(awk '/^cpu reader/ {print $3}' "$work/err")
  frames=$(awk '/^frames read/ {print $3}' "$work/err")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mix" "$name" "$file" \
    "$(echo "$t0 $t1" | awk '{printf "%.4f", ($2 - $1) / 1e9}')" "$(tail -1 "$work/time")" \
    "${reader:--}" "${frames:--}" >>"$raw"
}
echo
before=$(uptime)
echo "timing: $rounds rounds; $before"
for round in $(seq 1 "$rounds"); do
  for mix in $mixes; do
    p=${pcap[$mix]}
    run "$round" "$mix" "cat pcap" "$p" cat "$p"
    run "$round" "$mix" "pcap --reading one" "$p" "$bin" read "$p" --reading one --stats
    run "$round" "$mix" "pcap (map)" "$p" "$bin" read "$p" --stats
    for f in $flavours; do
      e=$(etl "$mix" "$f")
      run "$round" "$mix" "cat $f" "$e" cat "$e"
      run "$round" "$mix" "etl $f" "$e" "$bin" read "$e" --stats
    done
  done
  echo "  round $round done; $(uptime)"
done
after=$(uptime)
echo "after: $after"

table=target/bench/etl_speed-table.txt
{
  echo "$(nproc) cores; $(git rev-parse --short HEAD); $rounds rounds"
  echo "load before: $before"
  echo "load after:  $after"
} >"$table"
python3 - "$raw" <<'EOF' | tee -a "$table"
import os, statistics, sys
from collections import defaultdict

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = defaultdict(list)  # (mix, name) -> [(round, wall, kib, reader)]
files, frames = {}, {}
for rnd, mix, name, path, wall, kib, reader, fr in rows:
    runs[(mix, name)].append((int(rnd), float(wall), int(kib), None if reader == "-" else float(reader)))
    files[(mix, name)] = path
    if fr != "-":
        frames[mix] = int(fr)
mixes = list(dict.fromkeys(m for m, _ in runs))
for mix in mixes:
    pcap = files[(mix, "cat pcap")]
    n = frames[mix]
    print(f"\n{mix}: {os.path.basename(pcap)}, {os.path.getsize(pcap) / 1e6:.0f} MB, {n} packets")
    print(f"{'run':<24} {'MB':>6} {'best s':>7} {'median s':>8} {'MB/s':>7} {'Mpkt/s':>7} "
          f"{'peak MiB':>8} {'reader CPU s':>12} {'x pcap one':>10} {'x pcap map':>10}")
    def med_ratio(name, base):
        # Median of the ratios taken within each round (the runs seconds apart).
        a = {r: w for r, w, _, _ in runs[(mix, name)]}
        b = {r: w for r, w, _, _ in runs[(mix, base)]}
        return statistics.median(a[r] / b[r] for r in a if r in b)
    for (m, name), rs in runs.items():
        if m != mix:
            continue
        walls = [w for _, w, _, _ in rs]
        best, median = min(walls), statistics.median(walls)
        size = os.path.getsize(files[(m, name)]) / 1e6
        readers = [c for *_, c in rs if c is not None]
        reader = f"{min(readers):.3f}" if readers else "-"
        peak = max(k for _, _, k, _ in rs) / 1024
        base_cat = "cat pcap" if name.startswith("cat") else None
        if name.startswith("cat"):
            one = f"{med_ratio(name, 'cat pcap'):.2f}c"
            mp = ""
        else:
            one = f"{med_ratio(name, 'pcap --reading one'):.2f}"
            mp = f"{med_ratio(name, 'pcap (map)'):.2f}"
        print(f"{name:<24} {size:>6.0f} {best:>7.3f} {median:>8.3f} {size / best:>7.0f} "
              f"{n / best / 1e6:>7.2f} {peak:>8.1f} {reader:>12} {one:>10} {mp:>10}")
print("\nx pcap one / x pcap map: median over the rounds of (wall of this run / wall of the pcap read "
      "in the same round); c: against `cat` of the pcap. MB/s is of this file's own size; "
      "packets/s of the same packets in every file.")
EOF
