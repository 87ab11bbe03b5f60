#!/usr/bin/env bash
# Builds a pinned promtool (Prometheus' rule checker and rule unit-test
# runner) from the Go module proxy with the machine's Go and caches it outside
# the repo. Prints the path of the binary. The chart test uses it to check and
# unit-test the alerts in helm/agent-identity-operator/files/alerts.yaml.
# PROMTOOL=/path/to/promtool skips the build and uses that binary instead.
set -euo pipefail

if [ -n "${PROMTOOL:-}" ]; then
  [ -x "$PROMTOOL" ] || { echo "chart-promtool.sh: PROMTOOL=$PROMTOOL is not an executable file" >&2; exit 1; }
  echo "$PROMTOOL"; exit 0
fi

# Prometheus v3.16.0 is published on the module proxy as github.com/prometheus/prometheus v0.316.0.
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
CACHE_ROOT="${AIO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-identity-operator}"
BIN="$CACHE_ROOT/promtool-$PROMETHEUS_MODULE_VERSION"
if [ -x "$BIN/promtool" ]; then echo "$BIN/promtool"; exit 0; fi

command -v go >/dev/null || { echo "go is required to build promtool (or set PROMTOOL=/path/to/promtool)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "promtool: building github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION (about 4 minutes on 2 cores, first run only)" >&2
cd "$work"
go mod init aio.local/promtoolbuild >/dev/null 2>&1
go get "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >/dev/null 2>&1 \
  || go get "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
v="${PROMETHEUS_MODULE_VERSION#v0.}"; v="3.${v:1}"   # v0.316.0 -> 3.16.0
ldflags="-s -w -X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Branch=release"
go build -trimpath -ldflags "$ldflags" -o "$BIN/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool
mv "$BIN/promtool.tmp" "$BIN/promtool"
echo "$BIN/promtool"
