#!/usr/bin/env bash
# Regenerate the tlscensus test captures in this directory from real TLS stacks
# (OpenSSL's s_server / s_client, Python's ssl), captured on loopback with tcpdump.
#
# Needs (Debian 12 package names): openssl tcpdump python3 iproute2 wireshark-common
# (dumpcap, for the one pcapng file); tshark only for --verify.
# Must run as root (capturing on lo; the mail part binds ports 25/110/143/587).
#
# Usage: pcaps/make_pcaps.sh            regenerate TLS and mail captures + expected*.json
#        pcaps/make_pcaps.sh --tls      only the TLS part (expected.json)
#        pcaps/make_pcaps.sh --mail     only the mail / PROXY part (expected_mail.json)
#        pcaps/make_pcaps.sh --verify   no capture: cross-check expected*.json with tshark
#
# Expected values come only from the tools: s_client's -brief summary (protocol,
# ciphersuite), the alert lines s_client / s_server print, `openssl ciphers -V`
# (name -> code point), the options each client was started with (SNI, ALPN,
# highest version it may offer), the source ports the clients were pinned to
# (checked against the SYNs `tcpdump -nr` prints).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE
HELPER="python3 $HERE/pcaphelper.py"
CIPHERS='DEFAULT:@SECLEVEL=0'

mode=all
case "${1:-}" in
  "") ;;
  --tls) mode=tls ;;
  --mail) mode=mail ;;
  --verify) exec $HELPER verify "$OUT" expected.json expected_mail.json ;;
  *) echo "usage: $0 [--tls|--mail|--verify]" >&2; exit 2 ;;
esac

for tool in openssl tcpdump python3 ss dumpcap timeout; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install openssl tcpdump python3 iproute2 wireshark-common)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (tcpdump on lo, mail ports)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tlscensus-pcaps.XXXXXX)
BG_PIDS=()
cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
FACTS=$WORK/facts.jsonl
: > "$FACTS"

# Self-signed server certificate (RSA-2048, SHA-256) used by every server; never committed.
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj /CN=tlscensus.test \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
# name -> IANA code point table, straight from OpenSSL.
openssl ciphers -V 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' > "$WORK/ciphers.txt"

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- building blocks

# cap_start FILE FILTER: start a capture on lo, wait until it is live.
# .pcapng files are written by dumpcap, everything else by tcpdump.
CAP_PID=
cap_start() {
  local file=$OUT/$1 filter=$2 err=$WORK/cap.$1.err
  rm -f "$file"
  if [[ $file == *.pcapng ]]; then
    dumpcap -q -i lo -f "$filter" -w "$file" 2>"$err" &
  else
    tcpdump -i lo --immediate-mode -U -n -s 0 -w "$file" "$filter" 2>"$err" &
  fi
  CAP_PID=$!
  BG_PIDS+=("$CAP_PID")
  local i
  for i in $(seq 100); do
    grep -qE 'listening on|Capturing on' "$err" 2>/dev/null && { sleep 0.2; return; }
    sleep 0.05
  done
  echo "capture for $1 did not start:" >&2; cat "$err" >&2; exit 1
}

# cap_stop PID: let the last packets land, then stop with SIGINT so the file is flushed.
# (Without --immediate-mode, tcpdump on a TPACKET_V3 ring would drop whatever is still
# in the current ring block when interrupted; dumpcap has no such switch, so wait
# out its 1 s buffer timeout.)
cap_stop() {
  sleep 1.2
  kill -INT "$1"
  wait "$1" || true
}

wait_listen() { # wait_listen PORT
  local i
  for i in $(seq 100); do
    ss -ltnH "sport = :$1" | grep -q . && return
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2; exit 1
}

# server_start LOG PORT ARGS...: s_server answering N handshakes (-naccept in ARGS).
# -www keeps it from reading stdin; clients send no request, so it just closes.
SRV_PID=
server_start() {
  local logf=$WORK/$1 port=$2; shift 2
  timeout 30 openssl s_server -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www "$@" \
    </dev/null >"$logf" 2>&1 &
  SRV_PID=$!
  BG_PIDS+=("$SRV_PID")
  wait_listen "$port"
}

server_wait() { wait "$1" || true; }

# client LOG HOST PORT BINDHOST BINDPORT ARGS...: one s_client handshake, no data.
# -brief prints "Protocol version:" / "Ciphersuite:" as soon as the handshake is done;
# BRIEF= (empty) gives the long form instead (needed to see "Reused,").
BRIEF=-brief
client() {
  local logf=$WORK/$1 host=$2 port=$3 bhost=$4 bport=$5; shift 5
  local h=$host b=$bhost
  [[ $host == *:* ]] && h="[$host]"
  [[ $bhost == *:* ]] && b="[$bhost]"
  timeout "${CLIENT_TIMEOUT:-15}" openssl s_client -connect "$h:$port" -bind "$b:$bport" $BRIEF "$@" \
    </dev/null >"$logf" 2>&1 || true
  sleep 0.2
}

# fact key=value...: one connection's setup, for pcaphelper.py expected.
# *_port values become numbers, alpn_offered a list (comma-separated), "-" null,
# extra.K=V goes into the entry as K (numbers stay numbers, true/false booleans).
fact() {
  python3 - "$@" >>"$FACTS" <<'EOF'
import json, sys
d = {"extra": {}}
def conv(k, v):
    if v == "-": return None
    if v.isdigit():
        return int(v)
    if k == "alpn_offered": return [a for a in v.split(",") if a]
    if v in ("true", "false"): return v == "true"
    return v
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    if k.startswith("extra."):
        k = k[6:]
        d["extra"][k] = conv(k, v)
    else:
        d[k] = conv(k, v)
print(json.dumps(d))
EOF
}

# ---------------------------------------------------------------- TLS scenarios

# tls_one FILE SCEN SPORT CPORT "SERVER ARGS" "CLIENT ARGS" FACT...: one handshake, one file.
tls_one() {
  local file=$1 scen=$2 sport=$3 cport=$4 sargs=$5 cargs=$6; shift 6
  log "$file ($scen)"
  cap_start "$file" "tcp port $sport"
  local cap=$CAP_PID
  # shellcheck disable=SC2086
  server_start "$scen.srv.log" "$sport" -accept "127.0.0.1:$sport" -naccept 1 $sargs
  local srv=$SRV_PID
  # shellcheck disable=SC2086
  client "$scen.cli.log" 127.0.0.1 "$sport" 127.0.0.1 "$cport" $cargs
  server_wait "$srv"
  cap_stop "$cap"
  fact file="$file" scenario="$scen" client_ip=127.0.0.1 client_port="$cport" \
    server_ip=127.0.0.1 server_port="$sport" \
    client_log="$WORK/$scen.cli.log" server_log="$WORK/$scen.srv.log" "$@"
}

tls_part() {
  local C="-cipher $CIPHERS"

  # 1. one handshake per protocol version, each with its own SNI.
  tls_one tls10.pcap tls10 44310 50010 "$C" "$C -tls1 -servername tls10.example.test" \
    sni=tls10.example.test alpn_offered= max_offered=TLSv1.0
  tls_one tls11.pcap tls11 44311 50011 "$C" "$C -tls1_1 -servername tls11.example.test" \
    sni=tls11.example.test alpn_offered= max_offered=TLSv1.1
  tls_one tls12.pcap tls12 44312 50012 "$C -alpn h2,http/1.1" \
    "$C -tls1_2 -servername tls12.example.test -alpn h2,http/1.1" \
    sni=tls12.example.test alpn_offered=h2,http/1.1 max_offered=TLSv1.2
  tls_one tls13.pcap tls13 44313 50013 "$C" "$C -tls1_3 -servername tls13.example.test" \
    sni=tls13.example.test alpn_offered= max_offered=TLSv1.3

  # 2. TLS 1.0-only client, server that refuses < TLS 1.2: protocol_version alert.
  tls_one refused_version.pcap refused_version 44320 50020 "$C -no_tls1 -no_tls1_1" \
    "$C -tls1 -servername refused.example.test" \
    sni=refused.example.test alpn_offered= max_offered=TLSv1.0 expect_outcome=alert

  # 3. ClientHello (and every later client record) split over several TCP segments
  #    by a relay; the first segment carries only 3 bytes (half a record header).
  #    split_hello.pcap: relay -> server leg (client records split).
  #    split_server_flight.pcap: client -> relay leg (server records split).
  log "split_hello.pcap + split_server_flight.pcap"
  cap_start split_hello.pcap "tcp port 44331"
  local cap1=$CAP_PID
  cap_start split_server_flight.pcap "tcp port 44330"
  local cap2=$CAP_PID
  server_start split.srv.log 44331 -accept 127.0.0.1:44331 -naccept 1 $C -alpn http/1.1
  local srv=$SRV_PID
  $HELPER relay 127.0.0.1:44330 127.0.0.1:44331 127.0.0.1:50031 >"$WORK/relay.log" 2>&1 &
  local relay=$!
  BG_PIDS+=("$relay")
  wait_listen 44330
  client split.cli.log 127.0.0.1 44330 127.0.0.1 50030 $C -tls1_3 \
    -servername split-hello.example.test -alpn h2,http/1.1
  wait "$relay" || true
  server_wait "$srv"
  cap_stop "$cap1"
  cap_stop "$cap2"
  fact file=split_hello.pcap scenario=split_hello client_ip=127.0.0.1 client_port=50031 \
    server_ip=127.0.0.1 server_port=44331 client_log="$WORK/split.cli.log" \
    server_log="$WORK/split.srv.log" sni=split-hello.example.test alpn_offered=h2,http/1.1 \
    max_offered=TLSv1.3
  fact file=split_server_flight.pcap scenario=split_server_flight client_ip=127.0.0.1 \
    client_port=50030 server_ip=127.0.0.1 server_port=44330 client_log="$WORK/split.cli.log" \
    server_log="$WORK/split.srv.log" sni=split-hello.example.test alpn_offered=h2,http/1.1 \
    max_offered=TLSv1.3

  # 4. TLS 1.2 over IPv6 loopback.
  log "ipv6.pcap"
  cap_start ipv6.pcap "tcp port 44340"
  local cap=$CAP_PID
  server_start ipv6.srv.log 44340 -6 -accept '[::1]:44340' -naccept 1 $C
  srv=$SRV_PID
  client ipv6.cli.log ::1 44340 ::1 50040 -6 $C -tls1_2 -servername ipv6.example.test
  server_wait "$srv"
  cap_stop "$cap"
  fact file=ipv6.pcap scenario=ipv6 client_ip=::1 client_port=50040 server_ip=::1 \
    server_port=44340 client_log="$WORK/ipv6.cli.log" server_log="$WORK/ipv6.srv.log" \
    sni=ipv6.example.test alpn_offered= max_offered=TLSv1.2

  # 5. pcapng (dumpcap): several clients with different versions, one server port.
  log "multi_version.pcapng"
  cap_start multi_version.pcapng "tcp port 44350"
  cap=$CAP_PID
  server_start multi.srv.log 44350 -accept 127.0.0.1:44350 -naccept 5 $C
  srv=$SRV_PID
  local i=0 v
  for v in tls1 tls1_1 tls1_2 tls1_3 any; do
    local flag="-$v" max
    case $v in
      tls1) max=TLSv1.0 ;; tls1_1) max=TLSv1.1 ;; tls1_2) max=TLSv1.2 ;; tls1_3) max=TLSv1.3 ;;
      any) max=TLSv1.3; flag="-min_protocol TLSv1 -max_protocol TLSv1.3" ;;
    esac
    client "multi.$v.cli.log" 127.0.0.1 44350 127.0.0.1 $((50050 + i)) $C $flag \
      -servername "multi-$v.example.test"
    fact file=multi_version.pcapng scenario="multi_version_$v" client_ip=127.0.0.1 \
      client_port=$((50050 + i)) server_ip=127.0.0.1 server_port=44350 \
      client_log="$WORK/multi.$v.cli.log" server_log=- sni="multi-$v.example.test" \
      alpn_offered= max_offered=$max
    i=$((i + 1))
  done
  server_wait "$srv"
  cap_stop "$cap"

  # Extra cases.
  # Server limited to TLS 1.0, client offering TLS 1.0..1.3: negotiates TLS 1.0.
  tls_one server_limited.pcap server_limited 44360 50060 "$C -tls1" \
    "$C -min_protocol TLSv1 -max_protocol TLSv1.3 -servername limited.example.test" \
    sni=limited.example.test alpn_offered= max_offered=TLSv1.3
  # TLS 1.3 HelloRetryRequest: client key share X25519 only, server insists on P-256.
  tls_one tls13_hrr.pcap tls13_hrr 44361 50061 "$C -groups P-256" \
    "$C -tls1_3 -groups X25519:P-256 -servername hrr.example.test" \
    sni=hrr.example.test alpn_offered= max_offered=TLSv1.3 extra.hello_retry_request=true
  # NULL encryption cipher (TLS_RSA_WITH_NULL_SHA) negotiated under TLS 1.2.
  tls_one null_cipher.pcap null_cipher 44362 50062 "-cipher ALL:eNULL:@SECLEVEL=0" \
    "-cipher NULL-SHA:@SECLEVEL=0 -tls1_2 -servername null.example.test" \
    sni=null.example.test alpn_offered= max_offered=TLSv1.2
  # No common cipher: server sends handshake_failure right after the ClientHello.
  tls_one no_shared_cipher.pcap no_shared_cipher 44363 50063 "-tls1_2 -cipher AES256-SHA" \
    "-tls1_2 -cipher AES128-SHA -servername nocipher.example.test" \
    sni=nocipher.example.test alpn_offered= max_offered=TLSv1.2 expect_outcome=alert
  # Client rejects the self-signed certificate: alert from the client after a
  # full ServerHello. Both ends are pinned to one version and one cipher, and the
  # failed handshake prints no summary, so those two come from the setup.
  tls_one client_alert.pcap client_alert 44364 50064 \
    "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256" \
    "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -verify_return_error -servername badcert.example.test" \
    sni=badcert.example.test alpn_offered= max_offered=TLSv1.2 expect_outcome=alert \
    pinned_version=TLSv1.2 pinned_cipher=ECDHE-RSA-AES128-GCM-SHA256
  # ClientHello to a TCP listener that never answers. (If the listener closed first,
  # OpenSSL's client would send a decode_error alert on the unexpected EOF.)
  log "no_server_hello.pcap"
  cap_start no_server_hello.pcap "tcp port 44365"
  cap=$CAP_PID
  $HELPER silent 127.0.0.1:44365 >"$WORK/silent.log" 2>&1 &
  local sil=$!
  BG_PIDS+=("$sil")
  wait_listen 44365
  # the client gives up (is killed) after 1.5 s; the listener then sees EOF and closes.
  CLIENT_TIMEOUT=1.5 client nosh.cli.log 127.0.0.1 44365 127.0.0.1 50065 $C -servername silent.example.test
  wait "$sil" || true
  cap_stop "$cap"
  fact file=no_server_hello.pcap scenario=no_server_hello client_ip=127.0.0.1 \
    client_port=50065 server_ip=127.0.0.1 server_port=44365 client_log="$WORK/nosh.cli.log" \
    server_log=- sni=silent.example.test alpn_offered= max_offered=TLSv1.3 \
    expect_outcome=no_server_hello
  # Not TLS at all (expected: no connection records): an HTTP request sent to a
  # TLS port, and a connection that sends nothing.
  log "not_tls.pcap"
  cap_start not_tls.pcap "tcp port 44366"
  cap=$CAP_PID
  server_start nottls.srv.log 44366 -accept 127.0.0.1:44366 -naccept 2 $C
  srv=$SRV_PID
  $HELPER junk 127.0.0.1:44366 127.0.0.1:50066 'GET / HTTP/1.0\r\nHost: x\r\n\r\n'
  $HELPER junk 127.0.0.1:44366 127.0.0.1:50067 ''
  server_wait "$srv"
  cap_stop "$cap"
  # Two handshakes, the second resuming the first's TLS 1.2 session (abbreviated
  # handshake: ServerHello, ChangeCipherSpec, Finished; no Certificate).
  log "tls12_resumption.pcap"
  cap_start tls12_resumption.pcap "tcp port 44367"
  cap=$CAP_PID
  server_start resume.srv.log 44367 -accept 127.0.0.1:44367 -naccept 2 $C
  srv=$SRV_PID
  client resume1.cli.log 127.0.0.1 44367 127.0.0.1 50068 $C -tls1_2 \
    -servername resume.example.test -sess_out "$WORK/sess.pem"
  BRIEF= client resume2.cli.log 127.0.0.1 44367 127.0.0.1 50069 $C -tls1_2 \
    -servername resume.example.test -sess_in "$WORK/sess.pem"
  server_wait "$srv"
  cap_stop "$cap"
  grep -q '^Reused, ' "$WORK/resume2.cli.log" ||
    { echo "second handshake did not resume:" >&2; cat "$WORK/resume2.cli.log" >&2; exit 1; }
  fact file=tls12_resumption.pcap scenario=resumption_full client_ip=127.0.0.1 \
    client_port=50068 server_ip=127.0.0.1 server_port=44367 \
    client_log="$WORK/resume1.cli.log" server_log=- sni=resume.example.test alpn_offered= \
    max_offered=TLSv1.2 extra.resumed=false
  fact file=tls12_resumption.pcap scenario=resumption_abbreviated client_ip=127.0.0.1 \
    client_port=50069 server_ip=127.0.0.1 server_port=44367 \
    client_log="$WORK/resume2.cli.log" server_log=- sni=resume.example.test alpn_offered= \
    max_offered=TLSv1.2 extra.resumed=true

  $HELPER expected "$FACTS" "$WORK/ciphers.txt" "$OUT" expected.json
}

# ---------------------------------------------------------------- mail + PROXY scenarios
# Real service ports on 127.0.0.1 (25, 587, 143, 110), so the captures look like mail
# traffic to dissectors; servers are pcaps/mailserver.py (Python ssl), clients are
# `openssl s_client -starttls ...` and pcaps/mailclient.py (smtplib / imaplib / poplib).

MAILSRV="python3 $HERE/mailserver.py"
MAILCLI="python3 $HERE/mailclient.py"

# mail_server LOG PORT MODE COUNT [OPTS...]
MAIL_PID=
mail_server() {
  local logf=$WORK/$1 port=$2 mode=$3 count=$4; shift 4
  timeout 60 $MAILSRV "$mode" "127.0.0.1:$port" "$WORK/cert.pem" "$WORK/key.pem" "$count" "$@" \
    >"$logf" 2>&1 &
  MAIL_PID=$!
  BG_PIDS+=("$MAIL_PID")
  wait_listen "$port"
}

# py_client LOG PROTO PORT BINDPORT SNI [OPTS...]
py_client() {
  local logf=$WORK/$1; shift
  local proto=$1 port=$2 bport=$3 sni=$4; shift 4
  timeout 15 $MAILCLI "$proto" 127.0.0.1 "$port" "$bport" "$sni" "$@" >"$logf" 2>&1 ||
    { echo "mail client failed:" >&2; cat "$logf" >&2; exit 1; }
  sleep 0.2
}

# mfact FILE SCEN CPORT SPORT CLIENTLOG SERVICE VERB KEY=VALUE...
mfact() {
  local file=$1 scen=$2 cport=$3 sport=$4 clog=$5 service=$6 verb=$7; shift 7
  fact output=expected_mail.json file="$file" scenario="$scen" client_ip=127.0.0.1 \
    client_port="$cport" server_ip=127.0.0.1 server_port="$sport" client_log="$WORK/$clog" \
    server_log=- alpn_offered= extra.service="$service" extra.starttls_verb="$verb" \
    extra.proxied_ip=- extra.proxied_port=- extra.proxy_version=- "$@"
}

mail_part() {
  local cap srv

  # SMTP on 25, STARTTLS, openssl s_client -starttls smtp.
  log "smtp_starttls.pcap"
  cap_start smtp_starttls.pcap "tcp port 25"; cap=$CAP_PID
  mail_server smtp25.srv.log 25 smtp 1; srv=$MAIL_PID
  client smtp25.cli.log 127.0.0.1 25 127.0.0.1 50101 -starttls smtp -name client.example.test \
    -servername mail.example.test
  wait "$srv" || true; cap_stop "$cap"
  mfact smtp_starttls.pcap smtp_starttls 50101 25 smtp25.cli.log smtp STARTTLS \
    sni=mail.example.test max_offered=TLSv1.3 extra.plaintext=false extra.starttls_offered=true

  # SMTP submission on 587, STARTTLS, Python smtplib; a short message after TLS.
  log "smtp_submission_starttls.pcap"
  cap_start smtp_submission_starttls.pcap "tcp port 587"; cap=$CAP_PID
  mail_server smtp587.srv.log 587 smtp 1; srv=$MAIL_PID
  py_client smtp587.cli.log smtp 587 50102 submission.example.test
  wait "$srv" || true; cap_stop "$cap"
  mfact smtp_submission_starttls.pcap smtp_submission_starttls 50102 587 smtp587.cli.log \
    submission STARTTLS sni=submission.example.test max_offered=TLSv1.3 extra.plaintext=false \
    extra.starttls_offered=true

  # Exchange-style X-ANONYMOUSTLS instead of STARTTLS (client capped at TLS 1.2).
  log "smtp_x_anonymoustls.pcap"
  cap_start smtp_x_anonymoustls.pcap "tcp port 25"; cap=$CAP_PID
  mail_server smtpx.srv.log 25 smtp 1 --verb X-ANONYMOUSTLS; srv=$MAIL_PID
  py_client smtpx.cli.log smtp 25 50103 exchange.example.test --verb X-ANONYMOUSTLS --max-tls12
  wait "$srv" || true; cap_stop "$cap"
  mfact smtp_x_anonymoustls.pcap smtp_x_anonymoustls 50103 25 smtpx.cli.log smtp X-ANONYMOUSTLS \
    sni=exchange.example.test max_offered=TLSv1.2 extra.plaintext=false \
    extra.starttls_offered=true

  # STARTTLS offered, then refused with 454; the client carries on in clear.
  log "smtp_starttls_refused.pcap"
  cap_start smtp_starttls_refused.pcap "tcp port 25"; cap=$CAP_PID
  mail_server smtpr.srv.log 25 smtp 1 --refuse; srv=$MAIL_PID
  py_client smtpr.cli.log smtp 25 50104 refused.example.test
  wait "$srv" || true; cap_stop "$cap"
  grep -q '^STARTTLS reply: 454' "$WORK/smtpr.cli.log" || { cat "$WORK/smtpr.cli.log" >&2; exit 1; }
  mfact smtp_starttls_refused.pcap smtp_starttls_refused 50104 25 smtpr.cli.log smtp STARTTLS \
    sni=- max_offered=- extra.plaintext=true extra.starttls_offered=true \
    extra.starttls_reply=454

  # Server without STARTTLS: the whole session, message included, in clear.
  log "smtp_plaintext.pcap"
  cap_start smtp_plaintext.pcap "tcp port 25"; cap=$CAP_PID
  mail_server smtpp.srv.log 25 smtp 1 --verb none; srv=$MAIL_PID
  py_client smtpp.cli.log smtp 25 50105 plain.example.test
  wait "$srv" || true; cap_stop "$cap"
  mfact smtp_plaintext.pcap smtp_plaintext 50105 25 smtpp.cli.log smtp - \
    sni=- max_offered=- extra.plaintext=true extra.starttls_offered=false

  # The same with a 48 KiB message: more plaintext from the client than the mail dialogue
  # reads (32 KiB), so the session is reported before it ends.
  log "smtp_plaintext_large.pcap"
  cap_start smtp_plaintext_large.pcap "tcp port 25"; cap=$CAP_PID
  mail_server smtpl.srv.log 25 smtp 1 --verb none; srv=$MAIL_PID
  py_client smtpl.cli.log smtp 25 50140 plain.example.test --body-kib 48
  wait "$srv" || true; cap_stop "$cap"
  mfact smtp_plaintext_large.pcap smtp_plaintext_large 50140 25 smtpl.cli.log smtp - \
    sni=- max_offered=- extra.plaintext=true extra.starttls_offered=false

  # IMAP STARTTLS on 143: s_client (tag ".") and imaplib (capped at TLS 1.2).
  log "imap_starttls.pcap"
  cap_start imap_starttls.pcap "tcp port 143"; cap=$CAP_PID
  mail_server imap.srv.log 143 imap 2; srv=$MAIL_PID
  client imap1.cli.log 127.0.0.1 143 127.0.0.1 50106 -starttls imap -servername imap.example.test
  py_client imap2.cli.log imap 143 50107 imap2.example.test --max-tls12
  wait "$srv" || true; cap_stop "$cap"
  mfact imap_starttls.pcap imap_starttls_s_client 50106 143 imap1.cli.log imap STARTTLS \
    sni=imap.example.test max_offered=TLSv1.3 extra.plaintext=false extra.starttls_offered=true
  mfact imap_starttls.pcap imap_starttls_imaplib 50107 143 imap2.cli.log imap STARTTLS \
    sni=imap2.example.test max_offered=TLSv1.2 extra.plaintext=false extra.starttls_offered=true

  # POP3 STLS on 110: s_client (TLS 1.2 only) and poplib.
  log "pop3_stls.pcap"
  cap_start pop3_stls.pcap "tcp port 110"; cap=$CAP_PID
  mail_server pop3.srv.log 110 pop3 2; srv=$MAIL_PID
  client pop1.cli.log 127.0.0.1 110 127.0.0.1 50108 -starttls pop3 -tls1_2 \
    -servername pop.example.test
  py_client pop2.cli.log pop3 110 50109 pop2.example.test
  wait "$srv" || true; cap_stop "$cap"
  mfact pop3_stls.pcap pop3_stls_s_client 50108 110 pop1.cli.log pop3 STLS \
    sni=pop.example.test max_offered=TLSv1.2 extra.plaintext=false extra.starttls_offered=true
  mfact pop3_stls.pcap pop3_stls_poplib 50109 110 pop2.cli.log pop3 STLS \
    sni=pop2.example.test max_offered=TLSv1.3 extra.plaintext=false extra.starttls_offered=true

  # PROXY protocol in front of TLS: s_client -> relay (adds the header naming a
  # made-up original client) -> Python ssl backend on 44390; only the relay ->
  # backend leg (header, then TLS) is captured. TEST-NET / documentation addresses.
  local v name hdr_src hdr_sport hdr_dst cport=50110 i=0
  for v in 1 2 2; do
    case $i in
      0) name=proxy_v1.pcap; hdr_src=198.51.100.23; hdr_sport=40001; hdr_dst=192.0.2.10 ;;
      1) name=proxy_v2.pcap; hdr_src=198.51.100.24; hdr_sport=40002; hdr_dst=192.0.2.10 ;;
      2) name=proxy_v2_ipv6.pcap; hdr_src=2001:db8::24; hdr_sport=40003; hdr_dst=2001:db8::10 ;;
    esac
    log "$name"
    cap_start "$name" "tcp port 44390"; cap=$CAP_PID
    mail_server "proxy$i.srv.log" 44390 proxy-tls 1; srv=$MAIL_PID
    $HELPER proxyrelay 127.0.0.1:44391 127.0.0.1:44390 "127.0.0.1:$((cport + i))" "$v" \
      "$hdr_src" "$hdr_sport" "$hdr_dst" 443 >"$WORK/proxyrelay$i.log" 2>&1 &
    local relay=$!
    BG_PIDS+=("$relay")
    wait_listen 44391
    client "proxy$i.cli.log" 127.0.0.1 44391 127.0.0.1 $((50120 + i)) -tls1_3 \
      -servername "proxied$i.example.test" -alpn http/1.1
    wait "$relay" || true
    wait "$srv" || true; cap_stop "$cap"
    grep -q "$hdr_src" "$WORK/proxy$i.srv.log" || { cat "$WORK/proxy$i.srv.log" >&2; exit 1; }
    fact output=expected_mail.json file="$name" scenario="${name%.pcap}" client_ip=127.0.0.1 \
      client_port=$((cport + i)) server_ip=127.0.0.1 server_port=44390 \
      client_log="$WORK/proxy$i.cli.log" server_log=- sni="proxied$i.example.test" \
      alpn_offered=http/1.1 max_offered=TLSv1.3 extra.service=tls extra.starttls_verb=- \
      extra.proxied_ip="$hdr_src" extra.proxied_port="$hdr_sport" extra.proxy_version="$v" \
      extra.plaintext=false extra.starttls_offered=-
    i=$((i + 1))
  done

  $HELPER expected "$FACTS" "$WORK/ciphers.txt" "$OUT" expected_mail.json
}

# ---------------------------------------------------------------- main

if [[ $mode == all || $mode == tls ]]; then tls_part; fi
if [[ $mode == all || $mode == mail ]]; then
  if declare -F mail_part >/dev/null; then mail_part; fi
fi
ls -l "$OUT"/*.pcap "$OUT"/*.pcapng 2>/dev/null | awk '{print $5, $9}' >&2
