#!/usr/bin/env bash
# The pinned SPIRE server (the SPIFFE reference implementation), built once from
# the Go module proxy and cached; prints its path. test/integration/spire-interop.test.ts
# runs it as a federation partner. SPIRE_SERVER=/path/to/spire-server uses that binary instead.
set -euo pipefail
# The release issue 21 names; the module proxy lists no versions of it, so ask for this exact one.
SPIRE_VERSION="${SPIRE_VERSION:-v1.13.3}"
module="github.com/spiffe/spire"
# cgo: its sqlite datastore is github.com/mattn/go-sqlite3, which needs cgo.
export GO_TOOL_CGO=1
# The version stamp SPIRE's release build sets (without the "v"), so `spire-server --version` says 1.13.3.
exec bash "$(dirname "$0")/go-tool.sh" spire-server "$module" "$SPIRE_VERSION" "$module/cmd/spire-server" \
  "-X $module/pkg/common/version.gittag=${SPIRE_VERSION#v}"
