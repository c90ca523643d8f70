#!/bin/sh
# Build cisco/mercury, the peer of the issue-27 bench (`cargo bench --bench whole_run --
# --handshakes`), from its source as its README says (`./configure && make`), and install
# the one binary into PREFIX/bin/mercury.
#
# Usage:
#   benches/peers/build_mercury.sh SOURCE [PREFIX]
#     SOURCE  a mercury source directory, a git directory (bare or not), or a git URL
#             (https://github.com/cisco/mercury); a git source is cloned into PREFIX/src.
#     PREFIX  where it goes (default /tmp/peers/mercury): PREFIX/bin/mercury.
#   Then:  MERCURY=/tmp/peers/mercury/bin/mercury cargo bench --bench whole_run -- --handshakes
#
# Debian packages it needs (mercury's README, "Building and installing mercury": a C++
# build environment, zlib and OpenSSL; jq, tcpreplay, valgrind, clang and the Python
# modules there are for its own test suite, not needed for the binary; libxsimd-dev is
# optional and speeds up its classifier, which this bench does not use (no `-a`)):
#   apt-get install -y g++ make libssl-dev zlib1g-dev
# Only the `mercury` target is built (not its tests, Python bindings or tools), with the
# README's default variant (RelWithDebInfo: -O3 -g -DNDEBUG).
set -eu

source=${1:?usage: $0 SOURCE [PREFIX]}
prefix=${2:-/tmp/peers/mercury}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

for tool in g++ make; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool missing: apt-get install -y g++ make libssl-dev zlib1g-dev" >&2
        exit 1
    }
done
for header in openssl/evp.h zlib.h; do
    printf '#include <%s>\n' "$header" | g++ -x c++ -fsyntax-only - 2>/dev/null || {
        echo "$0: <$header> missing: apt-get install -y libssl-dev zlib1g-dev" >&2
        exit 1
    }
done

mkdir -p "$prefix/bin"
if [ -f "$source/configure.ac" ] && [ -d "$source/src/libmerc" ]; then
    tree=$source
else
    # A git directory or URL: a fresh clone of its HEAD (the xsimd submodule is optional
    # and left out). A partial mirror may lack some large blobs (test captures, data
    # tables the binary does not use): those files are left out of the checkout, by name.
    tree=$prefix/src
    rm -rf "$tree"
    git clone --quiet --no-checkout "$source" "$tree"
    missing=$(git -C "$tree" ls-tree -r HEAD |
        awk '$2 == "blob" { print $3 }' |
        git -C "$tree" cat-file --batch-check='%(objectname) %(objecttype)' |
        awk '$2 == "missing" { print $1 }')
    if [ -n "$missing" ]; then
        git -C "$tree" config core.sparseCheckout true
        {
            echo '/*'
            git -C "$tree" ls-tree -r HEAD | while read -r _ _ sha path; do
                case " $(echo $missing) " in *" $sha "*) echo "!/$path" ;; esac
            done
        } >"$tree/.git/info/sparse-checkout"
        echo "blobs absent from $source, left out of the checkout:"
        sed -n 's/^!/  /p' "$tree/.git/info/sparse-checkout"
    fi
    # (git names the absent blobs as "invalid object" while it builds the index; the
    # checkout still succeeds, so that noise is kept out of sight unless it fails.)
    git -C "$tree" checkout --quiet HEAD 2>"$prefix/checkout.log" || {
        cat "$prefix/checkout.log" >&2
        exit 1
    }
fi
echo "building mercury $(git -C "$tree" rev-parse --short HEAD 2>/dev/null || echo '(no git)') in $tree"
cd "$tree"
./configure >configure.log 2>&1 || { tail -20 configure.log >&2; exit 1; }
make -j"$jobs" mercury >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
built=$(find build -path '*/bin/mercury' -type f | head -n 1)
[ -n "$built" ] || { echo "$0: make finished but no build/*/bin/mercury" >&2; exit 1; }
cp "$built" "$prefix/bin/mercury"
"$prefix/bin/mercury" --version | head -n 3
echo "installed $prefix/bin/mercury"
