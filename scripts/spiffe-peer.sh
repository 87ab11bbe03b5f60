#!/usr/bin/env bash
# test/interop/spiffe-peer (a go-spiffe v2 mTLS peer, pinned by its go.mod and
# go.sum), built once per version of its sources and cached beside the other Go
# tools; prints its path. test/integration/spire-interop.test.ts runs it.
set -euo pipefail
src="$(cd "$(dirname "$0")/../test/interop/spiffe-peer" && pwd)"
version="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-12)"
CACHE_ROOT="${AIO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-identity-operator}"
BIN="$CACHE_ROOT/spiffe-peer-$version"
if [ -x "$BIN/spiffe-peer" ]; then echo "$BIN/spiffe-peer"; exit 0; fi
command -v go >/dev/null || { echo "go is required to build spiffe-peer" >&2; exit 1; }
# No VCS stamp: the sources sit in this repository, whose git state says nothing about the peer.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$BIN"
echo "spiffe-peer: building from $src (first run only)..." >&2
# A private name, then a rename: two builds at once each finish whole.
(cd "$src" && go build -trimpath -o "$BIN/spiffe-peer.$$" .)
mv "$BIN/spiffe-peer.$$" "$BIN/spiffe-peer"
echo "$BIN/spiffe-peer"
