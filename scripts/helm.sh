#!/usr/bin/env bash
# Builds a pinned helm from the Go module proxy with the machine's Go and
# caches it outside the repo, as scripts/control-plane-build.sh does for the
# control plane. Prints the path of the helm binary.
# HELM=/path/to/helm skips the build and uses that binary instead.
set -euo pipefail

if [ -n "${HELM:-}" ]; then
  [ -x "$HELM" ] || { echo "helm.sh: HELM=$HELM is not an executable file" >&2; exit 1; }
  echo "$HELM"; exit 0
fi

# Newest stable helm on the Go module proxy when this was pinned (helm.sh/helm/v4).
HELM_VERSION="${HELM_VERSION:-v4.3.1}"
CACHE_ROOT="${AIO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-identity-operator}"
BIN="$CACHE_ROOT/helm-$HELM_VERSION"
if [ -x "$BIN/helm" ]; then echo "$BIN/helm"; exit 0; fi

command -v go >/dev/null || { echo "go is required to build helm (or set HELM=/path/to/helm)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
major="${HELM_VERSION%%.*}"   # v4
module="helm.sh/helm/$major"
[ "$major" = v3 ] && module="helm.sh/helm/v3"
mkdir -p "$BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "helm: building $module $HELM_VERSION (a minute or two on first run)" >&2
# A throwaway module that requires exactly the pinned helm and the versions of
# its dependencies that helm's own go.mod selects.
cd "$work"
go mod init aio.local/helmbuild >/dev/null 2>&1
go get "$module/cmd/helm@$HELM_VERSION" >/dev/null 2>&1 || go get "$module/cmd/helm@$HELM_VERSION"
ldflags="-s -w -X $module/internal/version.version=$HELM_VERSION -X $module/internal/version.metadata= -X $module/internal/version.gitTreeState=clean"
go build -trimpath -ldflags "$ldflags" -o "$BIN/helm.tmp" "$module/cmd/helm"
mv "$BIN/helm.tmp" "$BIN/helm"
echo "$BIN/helm"
