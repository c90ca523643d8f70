#!/usr/bin/env bash
# Byte-for-byte comparison of two tlscensus binaries' outputs: the events (JSON lines), the
# census table on standard output and every report format (JSON, CSV, Markdown, HTML), for
# each capture of tests/corpus and pcaps/ read alone, for all of them read in one run, and
# for any extra capture given (a generated bench capture, say). A performance change must
# leave every one of these files unchanged.
#
#   benches/compare_outputs.sh BASELINE_BIN CANDIDATE_BIN [EXTRA_CAPTURE ...]
#
# Exits 0 when every output is identical, 1 (with the diffs listed) otherwise. THREADS (default
# 1) sets --threads for the per-file runs; the all-in-one and extra runs use 1 and 2.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
base=$(realpath "$1")
cand=$(realpath "$2")
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/tlscensus-compare.XXXXXX")
threads=${THREADS:-1}

# run BIN DIR THREADS CAPTURE...: every output of one read into DIR.
run() {
    local bin=$1 dir=$2 n=$3
    shift 3
    mkdir -p "$dir"
    # The exit status is part of the output (a capture with errors exits non-zero).
    set +e
    "$bin" read "$@" --threads "$n" --events "$dir/events.jsonl" \
        --report "$dir/census.json" --report "$dir/census.csv" \
        --report "$dir/census.md" --report "$dir/census.html" \
        >"$dir/table.txt" 2>"$dir/stderr.txt"
    echo "exit $?" >"$dir/status.txt"
    set -e
}

mapfile -t captures < <(cd "$root" && find tests/corpus pcaps -type f \
    \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)
for side in base cand; do
    bin=$base
    [ "$side" = cand ] && bin=$cand
    for capture in "${captures[@]}"; do
        run "$bin" "$out/$side/each/${capture//\//_}" "$threads" "$root/$capture"
    done
    (cd "$root" && run "$bin" "$out/$side/all" 2 "${captures[@]}")
    i=0
    for extra in "$@"; do
        i=$((i + 1))
        for n in 1 2; do
            run "$bin" "$out/$side/extra$i-threads$n" "$n" "$extra"
        done
    done
done

runs=$(find "$out/base" -name status.txt | wc -l)
if diff -r "$out/base" "$out/cand" >"$out/diff.txt"; then
    echo "identical: $runs runs, every events file, table and report (json csv md html) ($out)"
    rm -rf "$out"
else
    echo "DIFFERENT: see $out/diff.txt"
    grep -E '^(diff|Only|Binary)' "$out/diff.txt" | head -20
    exit 1
fi
