#!/bin/sh
# Regenerates the constructed .etl fixtures (tests/etl/constructed/) from the captures named
# in tests/etl/fixtures.tsv, checks each with the independent parser (verify_etl.py, which
# uses dissect.etl) and writes what that parser sees to tests/etl/expected/. Also checks the
# real fixtures (tests/etl/real/) and writes their expected/ files.
#
# Usage: tests/etl/make_fixtures.sh            (creates tests/etl/.venv-etl when missing)
#        PYTHON=/path/to/venv/python tests/etl/make_fixtures.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    [ -x "$here/.venv-etl/bin/python" ] || "$here/setup_venv.sh" "$here/.venv-etl"
    PYTHON="$here/.venv-etl/bin/python"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" "$here/etlwriter/xpress.py"

grep -v '^#' "$here/fixtures.tsv" | while IFS='	' read -r name source check options; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086 # options are words
    "$PYTHON" "$here/make_etl.py" "$root/$source" "$here/constructed/$name.etl" \
        $options --intent "$tmp/$name.intent.json"
    "$PYTHON" "$here/verify_etl.py" check "$here/constructed/$name.etl" \
        --intent "$tmp/$name.intent.json" --source "$root/$source" --root "$root" \
        --expected "$here/expected/$name.json"
done

"$PYTHON" "$here/verify_etl.py" real "$here/real/demikernel/PktMon.etl" \
    --pcapng "$here/real/demikernel/PktMon.cap" --expected "$here/expected/real-demikernel-PktMon.json"
