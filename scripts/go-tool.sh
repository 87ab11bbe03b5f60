#!/usr/bin/env bash
# Builds one pinned command from the Go module proxy with the machine's Go and
# caches it outside the repo (as scripts/control-plane-build.sh does for the
# control plane). Prints the binary's path on stdout; progress goes to stderr.
#   go-tool.sh NAME MODULE VERSION PACKAGE [LDFLAGS]
# The environment variable named NAME in upper case (HELM, PROMTOOL) skips the
# build and uses that binary instead.
set -euo pipefail
name="$1" module="$2" version="$3" package="$4" ldflags="${5:-}"

override_var="$(echo "$name" | tr '[:lower:]-' '[:upper:]_')"
override="${!override_var:-}"
if [ -n "$override" ]; then
  [ -x "$override" ] || { echo "$name: $override_var=$override is not an executable file" >&2; exit 1; }
  echo "$override"; exit 0
fi

CACHE_ROOT="${AIO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-identity-operator}"
BIN="$CACHE_ROOT/$name-$version"
if [ -x "$BIN/$name" ]; then echo "$BIN/$name"; exit 0; fi

command -v go >/dev/null || { echo "go is required to build $name (or set $override_var=/path/to/$name)" >&2; exit 1; }
# Static by default; GO_TOOL_CGO=1 for a command that does not build without cgo (ghostunnel.sh says why).
export GOTOOLCHAIN=local CGO_ENABLED="${GO_TOOL_CGO:-0}" GOFLAGS=-mod=mod
mkdir -p "$BIN"
log() { echo "$name: $*" >&2; }
# One build at a time (see control-plane-build.sh): a second caller waits, then uses it.
if command -v flock >/dev/null; then
  exec 9>"$BIN/.build.lock"
  flock -n 9 || { log "waiting for another build of $name $version to finish..."; flock 9; }
  if [ -x "$BIN/$name" ]; then echo "$BIN/$name"; exit 0; fi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
log "building $name $version from $module (first run only)..."
# A throwaway module that requires exactly the pinned version and the
# dependency versions its own go.mod selects.
cd "$work"
go mod init "aio.local/${name}build" >/dev/null 2>&1
go get "$package@$version" >/dev/null 2>&1 || go get "$package@$version"
go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/$name.tmp" "$package"
mv "$BIN/$name.tmp" "$BIN/$name"
log "built $name in $((SECONDS - started)) s"
echo "$BIN/$name"
