#!/usr/bin/env bash
# The pinned promtool (Prometheus' rule checker and rule unit-test runner),
# built once from the Go module proxy and cached; prints its path. The chart
# test uses it on helm/agent-identity-operator/files/alerts.yaml.
# PROMTOOL=/path/to/promtool uses that binary instead.
set -euo pipefail
# Prometheus v3.16.0 is published on the module proxy as github.com/prometheus/prometheus v0.316.0.
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
v="${PROMETHEUS_MODULE_VERSION#v0.}"; v="3.${v:1}"   # v0.316.0 -> 3.16.0
exec bash "$(dirname "$0")/go-tool.sh" promtool github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" \
  github.com/prometheus/prometheus/cmd/promtool \
  "-X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Branch=release"
