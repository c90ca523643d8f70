#!/usr/bin/env bash
# Build the fuzz targets' seed corpora (fuzz/corpus/<target>/, not committed) from the
# captures in pcaps/ and tests/corpus, plus the regression inputs in fuzz/regressions/.
# Usage: fuzz/seed.sh [OUT_DIR]   (default fuzz/corpus)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${1:-$here/corpus}"
captures=()
while IFS= read -r -d '' f; do captures+=("$f"); done < <(
  find "$root/pcaps" "$root/tests/corpus" -type f \
    \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) -print0 2>/dev/null | sort -z)
python3 "$here/seed.py" "$out" "${captures[@]}"
# Crash inputs kept as regressions seed their target too: fuzz/regressions/<target>/*.
if [ -d "$here/regressions" ]; then
  for dir in "$here"/regressions/*/; do
    [ -d "$dir" ] || continue
    target="$(basename "$dir")"
    mkdir -p "$out/$target"
    cp "$dir"* "$out/$target/" 2>/dev/null || true
  done
fi
