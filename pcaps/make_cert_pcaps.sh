#!/usr/bin/env bash
# Regenerate the server-certificate captures (issue 26) and expected_certs.json: TLS 1.2
# handshakes of OpenSSL's s_client with s_server presenting openssl-made certificates,
# captured on loopback with tcpdump.
#
#   cert_normal.pcap     CA-signed RSA-2048/SHA-256 leaf with DNS and IP SANs, chain of 2
#   cert_expired.pcap    CA-signed, validity 2020-01-01 .. 2021-01-01 (expired)
#   cert_rsa1024.pcap    CA-signed RSA-1024 leaf
#   cert_sha1.pcap       CA-signed, SHA-1 signature, expires in 45 days
#   cert_selfsigned.pcap self-signed, expires in 20 days
#   cert_split.pcap      the normal chain in 512-byte records (-max_send_frag), re-sent by a
#                        relay in 100-byte TCP segments (client <-> relay leg captured)
#   cert_too_large.pcap  the normal leaf with 90 copies of its CA: a Certificate message
#                        over tlscensus's 64 KiB budget
#
# Needs (Debian 12): openssl tcpdump python3 iproute2. Run as root (tcpdump on lo).
# Usage: pcaps/make_cert_pcaps.sh
#
# Expected values come only from openssl: `openssl x509` on each leaf (subject, issuer,
# serial, dates, SANs, key size, signature algorithm, SHA-256 fingerprint), `openssl
# verify` of the leaf against itself (self-signed), the chain s_client printed
# (-showcerts: how many certificates it received), s_client's -msg trace (the Certificate
# message's length) and the capture's last packet time as `tcpdump -tt` prints it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE
HELPER="python3 $HERE/pcaphelper.py"
CIPHERS='DEFAULT:@SECLEVEL=0'

. "$HERE/lib.sh"
require_tools "apt-get install openssl tcpdump python3 iproute2" openssl tcpdump python3 ss timeout
require_root "tcpdump on lo"

scratch_dir certs
log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- certificates

cd "$WORK"
# The CA: RSA-2048, SHA-256, signs every leaf but the self-signed one.
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
  -subj "/C=DE/O=tlscensus test CA/CN=tlscensus Test Root" -keyout ca.key -out ca.pem 2>/dev/null
mkdir -p ca/newcerts && : > ca/index.txt && echo 1000 > ca/serial
cat > ca.cnf <<'EOF'
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ./ca
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = ./ca.pem
private_key = ./ca.key
policy = anything
email_in_dn = no
copy_extensions = copy
unique_subject = no
[ anything ]
countryName = optional
organizationName = optional
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# leaf NAME BITS DIGEST "DATES" SAN: a CA-signed leaf; DATES are `openssl ca` options.
leaf() {
  local name=$1 bits=$2 digest=$3 dates=$4 san=$5
  openssl req -new -newkey "rsa:$bits" -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/C=DE/O=tlscensus/CN=$name.example.test" -addext "subjectAltName=$san" 2>/dev/null
  # shellcheck disable=SC2086 # $dates holds several options
  openssl ca -batch -config ca.cnf -extensions leaf -md "$digest" $dates \
    -in "$name.csr" -out "$name.pem" 2>/dev/null
  openssl x509 -in "$name.pem" -out "$name.pem"
}
leaf normal 2048 sha256 "-days 825" "DNS:normal.example.test,DNS:www.normal.example.test,IP:127.0.0.1"
leaf expired 2048 sha256 "-startdate 20200101000000Z -enddate 20210101000000Z" \
  "DNS:expired.example.test"
leaf rsa1024 1024 sha256 "-days 365" "DNS:rsa1024.example.test"
leaf sha1 2048 sha1 "-days 45" "DNS:sha1.example.test"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 20 -keyout selfsigned.key \
  -out selfsigned.pem -subj "/O=tlscensus/CN=selfsigned.example.test" \
  -addext "subjectAltName=DNS:selfsigned.example.test" 2>/dev/null
for _ in $(seq 90); do cat ca.pem; done > big_chain.pem

# ---------------------------------------------------------------- captures

CAP_PID=
cap_start() { # cap_start FILE FILTER
  local file=$OUT/$1 err=$WORK/cap.$1.err
  rm -f "$file"
  tcpdump -i lo --immediate-mode -U -n -s 0 -w "$file" "$2" 2>"$err" &
  CAP_PID=$!
  BG_PIDS+=("$CAP_PID")
  local i
  for i in $(seq 100); do
    grep -q 'listening on' "$err" 2>/dev/null && { sleep 0.2; return; }
    sleep 0.05
  done
  echo "capture for $1 did not start:" >&2; cat "$err" >&2; exit 1
}
cap_stop() { sleep 1.2; kill -INT "$1"; wait "$1" || true; }
wait_listen() {
  local i
  for i in $(seq 100); do
    ss -ltnH "sport = :$1" | grep -q . && return
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2; exit 1
}

FACTS=$WORK/facts.tsv
: > "$FACTS"

# one FILE NAME SPORT CPORT CHAIN [RELAY_PORT [SERVER ARGS...]]: one TLS 1.2 handshake.
one() {
  local file=$1 name=$2 sport=$3 cport=$4 chain=$5 relay=${6:-}; shift 6 || shift $#
  log "$file"
  local listen=$sport
  [[ -n $relay ]] && listen=$relay
  cap_start "$file" "tcp port $listen"
  local cap=$CAP_PID
  local chain_args=()
  [[ $chain != - ]] && chain_args=(-cert_chain "$chain")
  timeout 30 openssl s_server -cert "$name.pem" -key "$name.key" "${chain_args[@]}" -www \
    -accept "127.0.0.1:$sport" -naccept 1 -cipher "$CIPHERS" "$@" </dev/null \
    >"$file.srv.log" 2>&1 &
  local srv=$!
  BG_PIDS+=("$srv")
  wait_listen "$sport"
  local relay_pid=
  if [[ -n $relay ]]; then
    $HELPER relay "127.0.0.1:$relay" "127.0.0.1:$sport" "127.0.0.1:$((cport + 1))" \
      >"$file.relay.log" 2>&1 &
    relay_pid=$!
    BG_PIDS+=("$relay_pid")
    wait_listen "$relay"
  fi
  timeout 15 openssl s_client -connect "127.0.0.1:$listen" -bind "127.0.0.1:$cport" \
    -tls1_2 -cipher "$CIPHERS" -servername "$name.example.test" -showcerts -msg \
    </dev/null >"$file.cli.log" 2>&1 || true
  [[ -n $relay_pid ]] && { wait "$relay_pid" || true; }
  wait "$srv" || true
  cap_stop "$cap"
  printf '%s\t%s\t%s\t%s\n' "$file" "$name" "$listen" "$cport" >>"$FACTS"
}

one cert_normal.pcap normal 44400 50400 ca.pem
one cert_expired.pcap expired 44401 50401 ca.pem
one cert_rsa1024.pcap rsa1024 44402 50402 ca.pem
one cert_sha1.pcap sha1 44403 50403 ca.pem
one cert_selfsigned.pcap selfsigned 44404 50404 -
one cert_split.pcap normal 44405 50405 ca.pem 44415 -max_send_frag 512
one cert_too_large.pcap normal 44406 50406 big_chain.pem

# ---------------------------------------------------------------- expectations

python3 - "$FACTS" "$OUT/expected_certs.json" <<'EOF'
import json, re, subprocess, sys

def x509(pem, *args):
    return subprocess.run(["openssl", "x509", "-in", pem, "-noout", *args], check=True,
                          capture_output=True, text=True).stdout

def value(text, key):
    for line in text.splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:]
    raise SystemExit(f"no {key} in {text!r}")

def iso(date):  # `-dateopt iso_8601`: 2026-12-07 14:30:00Z
    return date.replace(" ", "T")

entries = []
for line in open(sys.argv[1]):
    file, name, port, cport = line.rstrip("\n").split("\t")
    pem = f"{name}.pem"
    info = x509(pem, "-subject", "-issuer", "-serial", "-startdate", "-enddate",
                "-fingerprint", "-sha256", "-dateopt", "iso_8601")
    text = x509(pem, "-text")
    san = x509(pem, "-ext", "subjectAltName")
    cli = open(f"{file}.cli.log", errors="replace").read()
    # s_client -showcerts: " 0 s:..." per certificate received.
    chain = len(re.findall(r"^\s*\d+ s:", cli, re.M))
    # s_client -msg: "<<< TLS 1.2, Handshake [length 0317], Certificate"
    msg = re.search(r"<<< TLS 1\.2, Handshake \[length ([0-9a-f]+)\], Certificate", cli)
    # The 4-byte handshake header is part of -msg's length.
    message_length = int(msg.group(1), 16) - 4 if msg else None
    selfsigned = subprocess.run(["openssl", "verify", "-check_ss_sig", "-CAfile", pem, pem],
                                capture_output=True).returncode == 0
    last = subprocess.run(["tcpdump", "-tt", "-n", "-r", sys.argv[2].rsplit("/", 1)[0] + "/" + file],
                          capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    entries.append({
        "file": file,
        "server_port": int(port),
        "client_port": int(cport),
        # openssl's one-line names ("C = DE, O = x, CN = y"), in certificate order.
        "subject": value(info, "subject").replace(" = ", "="),
        "issuer": value(info, "issuer").replace(" = ", "="),
        "serial": value(info, "serial").lower(),
        "not_before": iso(value(info, "notBefore")),
        "not_after": iso(value(info, "notAfter")),
        "sha256": value(info, "sha256 Fingerprint").replace(":", "").lower(),
        "san_dns": re.findall(r"DNS:([^,\s]+)", san),
        "san_ip": re.findall(r"IP Address:([^,\s]+)", san),
        "key_type": "RSA" if "rsaEncryption" in text else None,
        "key_bits": int(re.search(r"Public-Key: \((\d+) bit\)", text).group(1)),
        "signature_algorithm": re.search(r"Signature Algorithm: (\S+)", text).group(1),
        "self_signed": selfsigned,
        "chain_length": chain,
        "message_length": message_length,
        "capture_end_unix": float(last.split()[0]),
    })
with open(sys.argv[2], "w") as f:
    json.dump(entries, f, indent=2)
    f.write("\n")
EOF
log "wrote $OUT/expected_certs.json"
