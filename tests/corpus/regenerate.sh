#!/bin/sh
# Regenerate tshark's dissection of the test corpus (tests/corpus/truth/).
#
# Usage: tests/corpus/regenerate.sh [LOCAL_PATH...]
#   With no argument, every capture named in MANIFEST.tsv; otherwise only the captures given
#   (paths relative to tests/corpus/, as in MANIFEST.tsv).
#   Writes to tests/corpus/truth/ or to the directory in $TRUTH_DIR.
set -eu

corpus=$(cd "$(dirname "$0")" && pwd)
out=${TRUTH_DIR:-$corpus/truth}
tools=$corpus/tools

tshark_version=$(tshark --version 2>/dev/null | head -n 1)
mkdir -p "$out"
printf '%s\n' "$tshark_version" > "$out/TSHARK_VERSION"

if [ $# -eq 0 ]; then
    set -- $(awk -F '\t' 'NR > 1 && $1 != "" { print $1 }' "$corpus/MANIFEST.tsv")
fi

for local_path in "$@"; do
    extra=$(awk -F '\t' -v p="$local_path" '$1 == p { print $2 }' "$corpus/decode_as.tsv")
    mkdir -p "$out/$(dirname "$local_path")"
    # shellcheck disable=SC2086 # $extra holds several arguments
    tshark -n -r "$corpus/$local_path" \
        -o tcp.reassemble_out_of_order:TRUE \
        $extra \
        -Y 'tls.handshake.type == 1 || tls.handshake.type == 2 || tls.handshake.type == 4 || tls.record.content_type == 21' \
        -T json 2>/dev/null |
        python3 "$tools/tshark_to_truth.py" "$local_path" \
            "$out/$local_path.jsonl" "$out/$local_path.undecoded.tsv"
done
