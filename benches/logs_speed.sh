#!/usr/bin/env bash
# Reading server logs (issue 24) against a plain read of the same files.
#
#   benches/logs_speed.sh [MB] [ROUNDS]      (defaults: 300 MB per log, 3 rounds)
#
# 1. benches/make_logs.py writes an IIS W3C log and an Exchange SMTP receive log of about MB
#    megabytes each into target/bench/logs/ (kept; delete them to regenerate), and gzips a
#    copy of each.
# 2. Every file is read once first (page cache), then, ROUNDS times in turn, timed under
#    /usr/bin/time: `cat FILE > /dev/null` (the floor; `gzip -dc` for a .gz, whose MB/s are
#    of the decompressed text) and `tlscensus read FILE --report
#    census.json` (records counted into the census, the JSON report written).
# 3. Prints, per file and contender, the best wall time, the CPU time (user + system) of that
#    round, MB/s by each, and the peak RSS. On a shared machine the CPU time is the steadier
#    figure: wall time includes waiting for a core.
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-300}"
rounds="${2:-3}"
dir=target/bench/logs
mkdir -p "$dir"
if [[ ! -f "$dir/u_ex_bench.log" || ! -f "$dir/RECV_bench.LOG" ]]; then
  python3 benches/make_logs.py "$dir" "$mb"
fi
for f in u_ex_bench.log RECV_bench.LOG; do
  [[ -f "$dir/$f.gz" ]] || gzip -1 -c "$dir/$f" > "$dir/$f.gz"
done
nice cargo build --release --quiet
bin=target/release/tlscensus
files=("$dir/u_ex_bench.log" "$dir/u_ex_bench.log.gz" "$dir/RECV_bench.LOG" "$dir/RECV_bench.LOG.gz")
cat "${files[@]}" > /dev/null
printf '%-24s %-10s %8s %8s %9s %9s %9s\n' FILE CONTENDER WALL_S CPU_S MB/S_WALL MB/S_CPU RSS_MB
for f in "${files[@]}"; do
  # MB/s of the log's text: a .gz is measured by its decompressed size.
  size=$(stat -c %s "${f%.gz}")
  for who in cat tlscensus; do
    best=""
    for _ in $(seq "$rounds"); do
      if [[ $who == cat && $f == *.gz ]]; then
        /usr/bin/time -o "$dir/time.txt" -f '%e %U %S %M' gzip -dc "$f" > /dev/null
      elif [[ $who == cat ]]; then
        /usr/bin/time -o "$dir/time.txt" -f '%e %U %S %M' cat "$f" > /dev/null
      else
        /usr/bin/time -o "$dir/time.txt" -f '%e %U %S %M' \
          "$bin" read "$f" --report "$dir/census.json" > /dev/null 2> "$dir/stderr.txt"
      fi
      line=$(tail -1 "$dir/time.txt")
      read -r wall user sys rss <<< "$line"
      if [[ -z $best ]] || awk "BEGIN{exit !($wall < ${best%% *})}"; then
        best="$wall $user $sys $rss"
      fi
    done
    read -r wall user sys rss <<< "$best"
    awk -v f="$(basename "$f")" -v w="$who" -v s="$size" -v wall="$wall" -v u="$user" -v sy="$sys" -v rss="$rss" \
      'BEGIN { cpu = u + sy; printf "%-24s %-10s %8.2f %8.2f %9.0f %9.0f %9.0f\n", f, w, wall, cpu, s / 1e6 / (wall > 0 ? wall : 0.01), s / 1e6 / (cpu > 0 ? cpu : 0.01), rss / 1024 }'
  done
done
