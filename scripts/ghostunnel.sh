#!/usr/bin/env bash
# The pinned ghostunnel (a SPIFFE-aware TLS proxy, the reference point of
# `make bench-proxy`), built once from the Go module proxy and cached; prints
# its path. GHOSTUNNEL=/path/to/ghostunnel uses that binary instead.
set -euo pipefail
# The module proxy lists no versions of it: ask for this exact one.
GHOSTUNNEL_VERSION="${GHOSTUNNEL_VERSION:-v1.8.4}"
module="github.com/ghostunnel/ghostunnel"
# cgo: v1.8.4 does not compile with CGO_ENABLED=0 (its no-cgo stub of
# certloader.CertificateFromPKCS11Module lacks the logger argument tls.go passes).
export GO_TOOL_CGO=1
exec bash "$(dirname "$0")/go-tool.sh" ghostunnel "$module" "$GHOSTUNNEL_VERSION" "$module" "-X main.version=$GHOSTUNNEL_VERSION"
