#!/usr/bin/env bash
# Prints the directory holding prometheus-operator's own CRDs (ServiceMonitor,
# PrometheusRule, ...) for a pinned release, fetched from the Go module proxy
# into the Go module cache. The chart test installs the real
# ServiceMonitor and PrometheusRule CRDs from there, so the API server
# validates the chart's objects against upstream's schema rather than a copy
# of our own making.
set -euo pipefail
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
command -v go >/dev/null || { echo "go is required to fetch the prometheus-operator CRDs" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"   # outside any module, so no go.mod is consulted
dir="$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
crds="$dir/example/prometheus-operator-crd"
[ -f "$crds/monitoring.coreos.com_servicemonitors.yaml" ] || { echo "no prometheus-operator CRDs in $crds" >&2; exit 1; }
echo "$crds"
