# Shared by the scripts that make captures in pcaps/: checks before a run, a scratch
# directory whose background processes are stopped on exit, and a throwaway certificate.
# Source it after `set -euo pipefail`:   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# require_tools "apt-get hint" tool...: stop with the hint when a tool is missing.
require_tools() {
  local hint=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool ($hint)" >&2; exit 1; }
  done
}

# require_root "why": capturing on lo (and binding low ports) needs root.
require_root() {
  [ "$(id -u)" = 0 ] || { echo "run as root ($1)" >&2; exit 1; }
}

# scratch_dir NAME: sets WORK to a new directory and BG_PIDS to an empty list; on exit the
# processes in BG_PIDS are killed and WORK removed (kept, and named, when KEEP_WORK is set).
scratch_dir() {
  WORK=$(mktemp -d "/tmp/tlscensus-$1.XXXXXX")
  BG_PIDS=()
  trap _scratch_cleanup EXIT
}
_scratch_cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

# test_certificate: a self-signed RSA-2048 certificate for CN=tlscensus.test, valid 7 days,
# in $WORK/cert.pem with its key in $WORK/key.pem.
test_certificate() {
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj /CN=tlscensus.test \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
}
