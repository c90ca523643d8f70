#!/usr/bin/env bash
# CI check: tshark's dissection of the test corpus (tests/corpus/truth/) is what
# tests/corpus/regenerate.sh writes today. Installs nothing: CI installs tshark (Debian 12:
# `apt-get install tshark`, 4.0.x) and python3 before calling this. Exits 0 when every file
# regenerates identically, 1 on any difference (and prints the diff), 2 when tshark or
# python3 is missing. Takes about 2.5 minutes of CPU (JOBS: tshark processes at once).
set -euo pipefail
cd "$(dirname "$0")/.."

# Nothing to install here, only to check.
for tool in tshark python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "truth-check: $tool not found (CI installs it)" >&2; exit 2; }
done

# Regenerate into a temporary directory, removed on exit.
fresh=$(mktemp -d)
report=$(mktemp)
trap 'rm -rf "$fresh" "$report"' EXIT
TRUTH_DIR="$fresh" JOBS="${JOBS:-2}" tests/corpus/regenerate.sh

# A different tshark names newer code points and may dissect differently: say so first.
if ! cmp -s "$fresh/TSHARK_VERSION" tests/corpus/truth/TSHARK_VERSION; then
  echo "truth-check: tshark differs from the one that wrote tests/corpus/truth/:" >&2
  echo "  committed: $(cat tests/corpus/truth/TSHARK_VERSION)" >&2
  echo "  this one:  $(cat "$fresh/TSHARK_VERSION")" >&2
fi

# Any file added, missing or changed fails the check (the first 200 lines of the diff shown).
if ! diff -r "$fresh" tests/corpus/truth >"$report"; then
  head -n 200 "$report"
  echo "truth-check: tests/corpus/truth/ differs from what tests/corpus/regenerate.sh writes" \
    "($(grep -c '^diff \|^Only in ' "$report") files; left: regenerated, right: committed)" >&2
  exit 1
fi
echo "truth-check: all $(find "$fresh" -type f | wc -l) files of tests/corpus/truth/ regenerate identically"
