#!/usr/bin/env bash
# ClickHouse sink benchmark (issue 25): what `--events clickhouse://...` costs `read`, how
# fast records go into ClickHouse, and how fast a spool is replayed.
#
#   benches/clickhouse_speed.sh [FILE.pcap]   (needs clickhouse-server, clickhouse-client)
#
# Default FILE: the generator's handshake-only capture, made with
#   cargo bench --bench whole_run -- --generate-only --mib 300 --bulk 0
# A ClickHouse server is started on free ports with a temporary data directory, and
# stopped at the end. Each case is run 3 times; the best wall time is shown.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-$(ls target/bench/exchange-like-v*-300MiB-bulk0-*.pcap | head -n 1)}
bin=target/release/tlscensus
[ -x "$bin" ] || cargo build --release --quiet
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port) tcp=$(port) silent=$(port)
mkdir -p "$work/ch"
cat >"$work/ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$work/ch/server.log</log><errorlog>$work/ch/err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <path>$work/ch/data/</path>
  <tmp_path>$work/ch/tmp/</tmp_path>
  <user_files_path>$work/ch/user_files/</user_files_path>
  <format_schema_path>$work/ch/format_schemas/</format_schema_path>
  <mark_cache_size>5368709</mark_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
</yandex>
XML
cat >"$work/ch/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
server=/usr/bin/clickhouse-server
[ -x "$server" ] || server=/usr/sbin/clickhouse-server
"$server" --config-file="$work/ch/config.xml" >/dev/null 2>&1 &
ch_pid=$!
# A socket that accepts and never answers: the outage case.
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$silent)); s.listen(1000); time.sleep(100000)" &
silent_pid=$!
cleanup() { kill "$ch_pid" "$silent_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
q() { clickhouse-client --port "$tcp" --query "$1"; }
for _ in $(seq 150); do q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done

best() { # best of 3 wall times of "$@", in seconds
  local b=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/last.err"
    t1=$(date +%s.%N)
    b=$(python3 -c "print(min($b, $t1 - $t0))")
  done
  echo "$b"
}
records=$("$bin" read "$file" --threads 2 --events - | wc -l)
echo "file: $file ($(stat -c %s "$file") bytes, $records records), $(nproc) cores"
base=$(best "$bin" read "$file" --threads 2)
tofile=$(best "$bin" read "$file" --threads 2 --events "$work/events.jsonl")
n=0
to_ch() { n=$((n + 1)); "$bin" read "$file" --threads 2 --sensor "b$n" --spool "$work/spool-ok" \
  --events "clickhouse://127.0.0.1:$http/bench.events"; }
toch=$(best to_ch)
stored=$(q "SELECT count() FROM bench.events FINAL")
to_silent() { rm -rf "$work/spool-silent"; "$bin" read "$file" --threads 2 --sensor s \
  --spool "$work/spool-silent" --clickhouse-timeout 1s --events "clickhouse://127.0.0.1:$silent/bench.events"; }
tosilent=$(best to_silent)
spool_bytes=$(du -sb "$work/spool-silent" | cut -f1)
# Replay: the spool of the outage run, sent by a run with nothing new to send.
t0=$(date +%s.%N)
"$bin" read pcaps/not_tls.pcap --sensor s --spool "$work/spool-silent" \
  --events "clickhouse://127.0.0.1:$http/bench.replay" >/dev/null 2>&1
t1=$(date +%s.%N)
replayed=$(q "SELECT count() FROM bench.replay FINAL")
replay=$(python3 -c "print($t1 - $t0)")
python3 - "$records" "$base" "$tofile" "$toch" "$stored" "$tosilent" "$spool_bytes" "$replay" "$replayed" <<'PY'
import sys
r, base, tofile, toch, stored, silent, spool, replay, replayed = sys.argv[1:]
r = int(r); base, tofile, toch, silent, replay = map(float, (base, tofile, toch, silent, replay))
print(f"read, no events                 {base:7.3f} s  {r / base:10.0f} records/s")
print(f"read --events FILE              {tofile:7.3f} s  {r / tofile:10.0f} records/s")
print(f"read --events clickhouse://     {toch:7.3f} s  {r / toch:10.0f} records/s  (rows stored after 3 runs: {stored.strip()}, 3 x {r} expected)")
print(f"read --events to a silent server{silent:7.3f} s  {r / silent:10.0f} records/s  (spool {int(spool) / r:.0f} bytes/record)")
print(f"spool replayed by the next run  {replay:7.3f} s  {int(replayed) / replay:10.0f} records/s  ({replayed.strip()} rows)")
PY
