#!/usr/bin/env bash
# Compressed copies of a few captures, for tests/compressed_captures.rs: made by the gzip, zstd
# and lz4 command-line tools (Debian packages gzip, zstd, lz4), never by tlscensus.
#
#   pcaps/make_compressed.sh          # writes pcaps/compressed/
#
# Each capture gets one file per tool at its defaults, and one per tool in the layouts other
# writers make: several gzip members (`tcpdump -z gzip` files joined with `cat`), several
# zstd frames, and lz4 in small linked blocks (blocks refer back to the ones before).
set -euo pipefail
cd "$(dirname "$0")/.."
out=pcaps/compressed
mkdir -p "$out"
rm -f "$out"/*.gz "$out"/*.zst "$out"/*.lz4

# In three pieces, each compressed on its own, joined: what concatenating streams makes.
pieces() {
  local src=$1 tool=$2 dst=$3 size
  size=$(stat -c %s "$src")
  : >"$dst"
  local at=0 part=$(( (size + 2) / 3 ))
  while [ "$at" -lt "$size" ]; do
    dd if="$src" iflag=skip_bytes,count_bytes skip="$at" count="$part" status=none | $tool >>"$dst"
    at=$((at + part))
  done
}

for src in pcaps/multi_version.pcapng \
  tests/corpus/nDPI/tests/cfgs/default/pcap/snapchat.pcap \
  tests/corpus/nDPI/tests/cfgs/default/pcap/dazn.pcapng; do
  name=$(basename "$src")
  gzip -9 -n -c "$src" >"$out/$name.gz"
  zstd -q -19 -c "$src" >"$out/$name.zst"
  lz4 -q -9 -c "$src" >"$out/$name.lz4"
  pieces "$src" "gzip -9 -n -c" "$out/$name.members.gz"
  pieces "$src" "zstd -q -19 -c" "$out/$name.frames.zst"
  # 64 KiB blocks, linked, with block and content checksums.
  lz4 -q -9 -B4 -BD -BX --content-size -c "$src" >"$out/$name.linked.lz4"
done
# An ETW log (read through the stream path) larger than one 64 KiB lz4 block, so that the
# second block refers back into the first.
etl=tests/etl/constructed/pktmon-tls12-drops.etl
lz4 -q -9 -B4 -BD -BX --content-size -c "$etl" >"$out/$(basename "$etl").linked.lz4"
zstd -q -19 -c "$etl" >"$out/$(basename "$etl").zst"
ls -l "$out"
