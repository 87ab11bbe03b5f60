#!/usr/bin/env bash
# The pinned zlint (the X.509 linter CAs run before issuing), built once from
# the Go module proxy and cached; prints its path. test/integration/zlint.test.ts
# lints every kind of certificate the operator issues with it.
# ZLINT=/path/to/zlint uses that binary instead.
set -euo pipefail
# Newest stable zlint on the Go module proxy when this was pinned.
ZLINT_VERSION="${ZLINT_VERSION:-v3.7.3}"
exec bash "$(dirname "$0")/go-tool.sh" zlint github.com/zmap/zlint/v3 "$ZLINT_VERSION" github.com/zmap/zlint/v3/cmd/zlint
