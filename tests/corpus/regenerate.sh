#!/bin/sh
# Writes tshark's dissection of the test corpus again: truth/<local_path>.jsonl for every
# capture, truth/<local_path>.undecoded.tsv where tshark left hello-like segments undecoded,
# truth/<local_path>.x509.jsonl where it decoded Certificate messages, and
# truth/TSHARK_VERSION.
#
# Usage: tests/corpus/regenerate.sh [LOCAL_PATH...]
#   No argument: every capture named in MANIFEST.tsv. Otherwise only the captures given,
#   as paths relative to tests/corpus/ (the local_path column of MANIFEST.tsv).
#
# Output goes to tests/corpus/truth/, or to the directory named in $TRUTH_DIR (created if
# missing), so that CI can write a fresh copy and `diff -r` it against the committed one.
# $JOBS (default 1) runs that many tshark processes at once.
#
# Needs tshark (the committed files were written by Debian 12's tshark 4.0.17) and python3
# (standard library only). tshark runs with an empty configuration directory, so personal
# preferences, disabled protocols and Decode-As entries do not leak into the result.
set -eu

corpus=$(cd "$(dirname "$0")" && pwd)
out=${TRUTH_DIR:-$corpus/truth}
converter=$corpus/tools/tshark_to_truth.py
x509_converter=$corpus/tools/tshark_x509_truth.py

for tool in tshark python3; do
    if ! command -v "$tool" > /dev/null 2>&1; then
        echo "regenerate.sh: $tool not found (Debian/Ubuntu: apt-get install tshark python3)" >&2
        exit 2
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/config"
WIRESHARK_CONFIG_DIR=$work/config
export WIRESHARK_CONFIG_DIR

# The frames tshark prints: those with a hello (TLS, or SSLv2 client/server hello) or an
# alert record, and those whose TCP payload begins like a TLS or SSLv2 hello (the converter
# applies the exact test and keeps the ones tshark did not decode).
filter='tls.handshake.type == 1 || tls.handshake.type == 2 || tls.handshake.type == 4
    || tls.record.content_type == 21
    || (tcp.payload[0] == 16 && tcp.payload[1] == 03
        && (tcp.payload[5] == 01 || tcp.payload[5] == 02))
    || (tcp.payload[0] >= 80 && tcp.payload[2] == 01)'

mkdir -p "$out"
if [ -z "${REGENERATE_WORKER:-}" ]; then
    # First line of `tshark --version`, e.g. "TShark (Wireshark) 4.0.17 (Git v4.0.17
    # packaged as 4.0.17-0+deb12u3)."
    tshark --version 2> /dev/null | sed -n 1p > "$out/TSHARK_VERSION"
fi

if [ $# -eq 0 ]; then
    # shellcheck disable=SC2046 # local paths have no spaces
    set -- $(awk -F '\t' 'NR > 1 && $1 != "" { print $1 }' "$corpus/MANIFEST.tsv")
fi

jobs=${JOBS:-1}
if [ -z "${REGENERATE_WORKER:-}" ] && [ "$jobs" -gt 1 ] && [ $# -gt 1 ]; then
    # Hand the captures to $jobs copies of this script, a few at a time.
    TRUTH_DIR=$out
    export TRUTH_DIR
    printf '%s\n' "$@" | REGENERATE_WORKER=1 xargs -P "$jobs" -n 4 "$0" || exit 1
    exit 0
fi

for local_path in "$@"; do
    if [ ! -f "$corpus/$local_path" ]; then
        echo "regenerate.sh: no capture $corpus/$local_path" >&2
        exit 1
    fi
    # Extra options (Decode-As) for this capture, from decode_as.tsv.
    extra=$(awk -F '\t' -v p="$local_path" '$1 == p { print $2 }' "$corpus/decode_as.tsv")
    # Two passes (-2): a segment of a reassembly that never completed is then shown as TCP
    # only (frame.protocols of .undecoded.tsv). TCP and TLS desegmentation and IP
    # defragmentation are tshark's defaults, set here explicitly; out-of-order TCP
    # reassembly is off by default in tshark 4.0 and turned on.
    # shellcheck disable=SC2086 # $extra holds several arguments
    if ! tshark -2 -n -r "$corpus/$local_path" \
        -o tcp.desegment_tcp_streams:TRUE \
        -o tcp.reassemble_out_of_order:TRUE \
        -o tcp.analyze_sequence_numbers:TRUE \
        -o tcp.no_subdissector_on_error:TRUE \
        -o tls.desegment_ssl_records:TRUE \
        -o tls.desegment_ssl_application_data:TRUE \
        -o ip.defragment:TRUE \
        -o ipv6.defragment:TRUE \
        $extra \
        -Y "$filter" -T json > "$work/dissection.json" 2> "$work/stderr"; then
        echo "regenerate.sh: tshark failed on $local_path:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    mkdir -p "$out/$(dirname "$local_path")"
    python3 "$converter" "$local_path" \
        "$out/$local_path.jsonl" "$out/$local_path.undecoded.tsv" < "$work/dissection.json"
    # The server certificates (issue 26): every Certificate message, with the x509 fields
    # of its first certificate, in <local_path>.x509.jsonl (only when there is one).
    # shellcheck disable=SC2086 # $extra holds several arguments
    if ! tshark -2 -n -r "$corpus/$local_path" \
        -o tcp.desegment_tcp_streams:TRUE \
        -o tcp.reassemble_out_of_order:TRUE \
        -o tcp.analyze_sequence_numbers:TRUE \
        -o tcp.no_subdissector_on_error:TRUE \
        -o tls.desegment_ssl_records:TRUE \
        -o ip.defragment:TRUE \
        -o ipv6.defragment:TRUE \
        $extra \
        -Y "tls.handshake.type == 11" -T json > "$work/x509.json" 2> "$work/stderr"; then
        echo "regenerate.sh: tshark (certificates) failed on $local_path:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    python3 "$x509_converter" "$local_path" "$out/$local_path.x509.jsonl" < "$work/x509.json"
done
