#!/bin/sh
# The HTML report's per-client view at scale: page size per client, the CPU time to write
# the page, and headless Chromium's CPU time to open it with a search in its address.
#
#   benches/html_clients_size.sh [CLIENTS]        (default 100000; needs python3, chromium)
#
# The census: the clients of the corpus captures (tests/corpus, 425 clients of real
# traffic, most on one or two services), copied with new addresses (10.x.y.z) and a DNS name
# each until there are CLIENTS of them, as a JSON report that `tlscensus merge` turns into
# HTML. The size of the view's data block is given apart from the whole page's.
set -eu
n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/tlscensus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cut -f1 "$root/tests/corpus/MANIFEST.tsv" | tail -n +2 | sed "s|^|$root/tests/corpus/|" > "$work/files"
# shellcheck disable=SC2046
"$bin" read $(cat "$work/files") --report "$work/base.json" >/dev/null 2>&1
python3 - "$work/base.json" "$work/big.json" "$n" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
base, n = report["clients"], int(sys.argv[3])
clients = []
for i in range(n):
    c = dict(base[i % len(base)])
    c["ip"] = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
    c.pop("via", None)
    c["names"] = [{"name": f"host{i}.corp.example", "source": "dns", "origin": "seen", "count": 1}]
    clients.append(c)
report["clients"] = clients
json.dump(report, open(sys.argv[2], "w"))
PY
/usr/bin/time -f "write: %U s user, %S s sys, %M KB max RSS" \
    "$bin" merge "$work/big.json" --report "$work/big.html" >/dev/null
bytes=$(wc -c < "$work/big.html")
echo "page: $bytes bytes for $n clients ($((bytes / n)) bytes per client)"
data=$(python3 -c 'import sys; s = open(sys.argv[1]).read(); a = s.index("id=\"client-data\""); print(s.index("</script>", a) - a)' "$work/big.html")
echo "the per-client view's data: $data bytes ($((data / n)) bytes per client)"
browser=${CHROMIUM:-chromium}
/usr/bin/time -o "$work/time" \
    -f "chromium, open with #q=host1: %U s user, %S s sys, %e s wall, %M KB max RSS" \
    "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
    --dump-dom "file://$work/big.html#q=host1" > "$work/dom.html" 2>/dev/null
cat "$work/time"
grep -o 'id="client-count">[^<]*' "$work/dom.html"
