#!/usr/bin/env bash
# The pinned helm, built once from the Go module proxy and cached; prints its path.
# HELM=/path/to/helm uses that binary instead.
set -euo pipefail
# Newest stable helm on the Go module proxy when this was pinned (helm.sh/helm/v4).
HELM_VERSION="${HELM_VERSION:-v4.3.1}"
module="helm.sh/helm/${HELM_VERSION%%.*}"
exec bash "$(dirname "$0")/go-tool.sh" helm "$module" "$HELM_VERSION" "$module/cmd/helm" \
  "-X $module/internal/version.version=$HELM_VERSION -X $module/internal/version.metadata= -X $module/internal/version.gitTreeState=clean"
