#!/usr/bin/env bash
# Builds pinned kube-apiserver, kube-controller-manager, kubectl and etcd from
# the Go module proxy and caches them outside the repo. Prints the bin dir on
# stdout (callers parse it); progress, with elapsed seconds, goes to stderr.
# Skipped entirely when KUBEBUILDER_ASSETS (or the TEST_ASSET_* trio) is set.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${AIO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-identity-operator}"
BIN="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

want=(kube-apiserver kube-controller-manager kubectl etcd)
have_all() { for b in "${want[@]}"; do [ -x "$BIN/$b" ] || return 1; done; }
if have_all; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { echo "go is required to build the control plane (or set KUBEBUILDER_ASSETS)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$BIN"
log() { echo "control-plane: $*" >&2; }

# One build at a time: a second caller (another terminal, a test run) waits
# for the first and then uses its binaries, instead of compiling the same
# packages again beside it and racing it for the same output files.
if command -v flock >/dev/null; then
  exec 9>"$BIN/.build.lock"
  flock -n 9 || { log "waiting for another build into $BIN to finish..."; flock 9; }
  if have_all; then echo "$BIN"; exit 0; fi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Progress over the binaries still missing: "(2/4)" and seconds per binary.
missing=(); for b in "${want[@]}"; do [ -x "$BIN/$b" ] || missing+=("$b"); done
step=0 step_started=0
building() { step=$((step + 1)); step_started=$SECONDS; log "building $1 $2 ($step/${#missing[@]})..."; }
built() { log "built $1 in $((SECONDS - step_started)) s"; }

# --- Kubernetes: the main module pins every staging repo at v0.0.0, so each
# needs a replace to the matching v0.X.Y tag; derive the list from its go.mod.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
staging="v0.${K8S_VERSION#v1.}"
step_started=$SECONDS
mkdir -p "$work/k8s" && cd "$work/k8s"
go mod init aio.local/k8sbuild >/dev/null 2>&1
gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
{
  echo "require k8s.io/kubernetes $K8S_VERSION"
  # staging modules are exactly v0.0.0 (pseudo-versions like v0.0.0-2025… are real)
  awk -v v="$staging" '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print "replace " $1 " => " $1 " " v}' "$gomod" | sort -u
} >> go.mod
cat > tools.go <<'GO'
//go:build tools
package tools
import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
log "resolving k8s.io/kubernetes $K8S_VERSION (staging $staging)..."
go mod tidy -e >/dev/null 2>&1 || true
log "resolved in $((SECONDS - step_started)) s"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
for cmd in kube-apiserver kube-controller-manager kubectl; do
  [ -x "$BIN/$cmd" ] && continue
  building "$cmd" "$K8S_VERSION"
  go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  built "$cmd"
done

# --- etcd lives in its own small module.
if [ ! -x "$BIN/etcd" ]; then
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init aio.local/etcdbuild >/dev/null 2>&1
  building etcd "$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=release" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  built etcd
fi
log "done in $SECONDS s: $BIN"
echo "$BIN"
