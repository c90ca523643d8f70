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
# ETW logs seed the etl target whole, and their compressed buffers' bodies seed xpress.
mkdir -p "$out/etl" "$out/xpress"
while IFS= read -r -d '' f; do
  cp "$f" "$out/etl/$(basename "$(dirname "$f")")-$(basename "$f")"
done < <(find "$root/tests/etl" -type f -name '*.etl' -print0 2>/dev/null | sort -z)
python3 - "$out/xpress" "$root"/tests/etl/*/*.etl "$root"/tests/etl/*/*/*.etl <<'PY' || true
import struct, sys, os
out = sys.argv[1]
for path in sys.argv[2:]:
    if not os.path.isfile(path):
        continue
    data = open(path, "rb").read()
    at, n = 0, 0
    while at + 0x48 <= len(data):
        size = struct.unpack_from("<I", data, at)[0]
        flags = struct.unpack_from("<H", data, at + 0x34)[0]
        if size < 0x48:
            break
        if flags & 0x40:
            body = data[at + 0x48:at + size][:65536]
            open(os.path.join(out, f"{os.path.basename(path)}-{n}"), "wb").write(body)
            n += 1
        at += size
PY
# Compressed captures seed the decompress target: a byte picking the format, then the file
# after its magic number (the target puts the magic back).
mkdir -p "$out/decompress"
for f in "$root"/pcaps/compressed/*; do
  [ -f "$f" ] || continue
  case "$f" in
    *.gz) pick='\x00' skip=2 ;;
    *.zst) pick='\x01' skip=4 ;;
    *.lz4) pick='\x02' skip=4 ;;
    *) continue ;;
  esac
  { printf "$pick"; tail -c +"$((skip + 1))" "$f"; } >"$out/decompress/$(basename "$f")"
done
# Crash inputs kept as regressions seed their target too: fuzz/regressions/<target>/*.
if [ -d "$here/regressions" ]; then
  for dir in "$here"/regressions/*/; do
    [ -d "$dir" ] || continue
    target="$(basename "$dir")"
    mkdir -p "$out/$target"
    cp "$dir"* "$out/$target/" 2>/dev/null || true
  done
fi
# Server logs (issue 24): the hand-written fixtures seed the two log parsers.
mkdir -p "$out/logs_iis" "$out/logs_smtp"
cp "$root"/tests/logs/u_ex*.log "$out/logs_iis/" 2>/dev/null || true
cp "$root"/tests/logs/RECV*.LOG "$root"/tests/logs/census/*.LOG "$out/logs_smtp/" 2>/dev/null || true
# The census's counts (census_counts): one service's counts from a JSON report, as written,
# and two times, the usual form and another.
mkdir -p "$out/census_counts"
printf '%s' '{"connections":6,"negotiated":{"TLSv1.0":3,"TLSv1.3":2},"max_offered":{"TLSv1.3":3},"plaintext":1,"failed":1,"failures":{"no ServerHello":1},"plaintext_reasons":{"STARTTLS refused (454)":1},"incomplete":0,"server_limited":1,"weak_cipher":0,"policy_failures":{"offers at most TLSv1.0":2},"first_seen":"2023-11-14T22:13:20.433445Z","last_seen":"2023-11-14 22:13:35","cipher_suites":{"values":{"0x1302":2},"other":0},"sni":{"values":{"a.example":1},"other":2},"alpn":{"values":{"h2":1},"other":0},"ja4":{"values":{},"other":0},"servers":{"values":{"192.0.2.1":1},"other":0},"ja3":{"values":{},"other":0},"sources":{"wire":6},"negotiated_only":1,"log_negotiated":{"TLSv1.0":1},"log_policy_failures":{}}' \
  >"$out/census_counts/report-service"
printf '%s' '2023-11-14T22:13:20.433445Z2023-11-14T22:13:20.433446Z' >"$out/census_counts/two-times"
printf '%s' '2023-11-14T22:13:20.433445Z2023-11-14 22:13:20' >"$out/census_counts/times-two-forms"
