#!/usr/bin/env bash
# Installs the Toxiproxy server the fault tests and scenarios drive (sim/faults/toxiproxy-server.ts looks for it).
# Idempotent: does nothing when a 2.12.0 server is already on PATH or in <repo>/.toxiproxy/bin.
#
# Toxiproxy ships no npm package, so it is built from source through the Go module proxy; the only prerequisite
# is Go >= 1.23 (what toxiproxy v2.12.0's go.mod requires). The result lands in <repo>/.toxiproxy/bin
# (git-ignored), never in a global location.
set -euo pipefail

VERSION=2.12.0
MODULE=github.com/Shopify/toxiproxy/v2
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$REPO_ROOT/.toxiproxy/bin"
TARGET="$BIN_DIR/toxiproxy-server"

# A plain `go install` leaves the version variable at its default "git", so `-version` alone cannot tell a 2.12.0
# build from another one; the module version recorded in the binary (`go version -m`) can.
is_wanted_version() {
  local bin="$1" out
  out="$("$bin" -version 2>&1 || true)"
  if [[ "$out" == *"$VERSION"* ]]; then
    return 0
  fi
  if command -v go >/dev/null 2>&1 &&
    go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$MODULE[[:space:]]+v$VERSION([[:space:]]|\$)"; then
    return 0
  fi
  return 1
}

if command -v toxiproxy-server >/dev/null 2>&1; then
  found="$(command -v toxiproxy-server)"
  if is_wanted_version "$found"; then
    echo "toxiproxy-server $VERSION already on PATH: $found"
    exit 0
  fi
  echo "note: $found is not Toxiproxy $VERSION ($("$found" -version 2>&1 || true)); installing $VERSION into $BIN_DIR" >&2
fi

if [[ -x "$TARGET" ]] && is_wanted_version "$TARGET"; then
  echo "toxiproxy-server $VERSION already installed: $TARGET"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
error: Go is not installed (no 'go' on PATH), so Toxiproxy $VERSION cannot be built.
Install Go >= 1.23 (https://go.dev/dl/ or your package manager), or point the harness at a running Toxiproxy
server with TOXIPROXY_URL=http://host:8474, or at an existing binary with TOXIPROXY_SERVER=/path/to/toxiproxy-server.
MSG
  exit 1
fi

mkdir -p "$BIN_DIR"
echo "building Toxiproxy $VERSION with $(go version) into $BIN_DIR ..."
# -X sets the version string so `toxiproxy-server -version` and GET /version report 2.12.0 instead of "git".
ldflags="-X $MODULE.Version=$VERSION"
if ! go_output="$(GOBIN="$BIN_DIR" go install -ldflags="$ldflags" "$MODULE/cmd/server@v$VERSION" 2>&1)"; then
  echo "error: 'go install $MODULE/cmd/server@v$VERSION' failed:" >&2
  echo "$go_output" >&2
  exit 1
fi
[[ -n "$go_output" ]] && echo "$go_output"

if [[ ! -x "$BIN_DIR/server" ]]; then
  echo "error: go install reported success but $BIN_DIR/server does not exist" >&2
  exit 1
fi
mv -f "$BIN_DIR/server" "$TARGET"

if ! is_wanted_version "$TARGET"; then
  echo "error: built $TARGET but it does not report version $VERSION: $("$TARGET" -version 2>&1 || true)" >&2
  exit 1
fi
echo "installed $("$TARGET" -version) at $TARGET"
