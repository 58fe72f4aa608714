#!/usr/bin/env bash
# Builds the interop reference nodes (interop/rust: rust-libp2p 0.54.1; interop/go: go-libp2p v0.49.0 with
# go-libp2p-kad-dht v0.42.2) from crates.io and the Go module proxy, with the versions pinned by the committed
# Cargo.lock and go.sum, and installs them as <repo>/interop/bin/chiral-{rust,go}-node (git-ignored), where the
# interop scenarios and tests look for them.
#
# Idempotent and quick on rerun: cargo's target dir and Go's build and module caches live OUTSIDE the clone
# (CHIRAL_INTEROP_CACHE, default /var/cache/chiral-sim, else ~/.cache/chiral-sim when that is not writable), so a
# fresh clone or a CI rerun reuses them. A cold build takes a few minutes (rust ≈ 3 min of CPU, go ≈ 1–3 on 2 cores); a warm one
# seconds.
#
#   bash scripts/setup-interop.sh            # both
#   bash scripts/setup-interop.sh rust       # one
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$REPO_ROOT/interop/bin"
CACHE="${CHIRAL_INTEROP_CACHE:-/var/cache/chiral-sim}"
if ! mkdir -p "$CACHE" 2>/dev/null || [[ ! -w "$CACHE" ]]; then
  CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/chiral-sim"
  mkdir -p "$CACHE"
fi
mkdir -p "$BIN_DIR"
[[ $# -gt 0 ]] && which=("$@") || which=(rust go)

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "error: '$1' is not installed, so the $2 reference node cannot be built. $3" >&2
  exit 1
}

# The sources a binary is built from, as one hash: sim/interop/binaries.ts computes the same to tell a binary built
# from older sources (a pull since the last set-up) from a current one. Keep the two file lists in step.
source_hash() {
  case "$1" in
    rust) (cd "$REPO_ROOT/interop/rust" && find Cargo.toml Cargo.lock src -type f -name '*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1) ;;
    go) (cd "$REPO_ROOT/interop/go" && find . -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1) ;;
  esac
}

# Installs $1 as $BIN_DIR/$2 only when it changed, so a rerun does not touch the file the tests run; $3 is the
# implementation, whose source hash is written next to the binary.
install_bin() {
  if ! cmp -s "$1" "$BIN_DIR/$2"; then
    cp -f "$1" "$BIN_DIR/$2.tmp" && mv -f "$BIN_DIR/$2.tmp" "$BIN_DIR/$2"
  fi
  source_hash "$3" > "$BIN_DIR/$2.source"
  echo "$2 ready: $BIN_DIR/$2"
}

build_rust() {
  need cargo rust "Install a Rust toolchain (https://rustup.rs, rustc >= 1.75) and rerun."
  local target="$CACHE/cargo-target" start=$SECONDS
  echo "building interop/rust (rust-libp2p 0.54.1, cargo $(cargo --version | cut -d' ' -f2)) into $target ..."
  CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet --manifest-path "$REPO_ROOT/interop/rust/Cargo.toml"
  echo "rust build: $((SECONDS - start)) s"
  install_bin "$target/release/chiral-rust-node" chiral-rust-node rust
}

build_go() {
  need go go "Install Go >= 1.25 (https://go.dev/dl/) and rerun."
  local start=$SECONDS out="$CACHE/go-bin/chiral-go-node"
  mkdir -p "$CACHE/go-build" "$CACHE/go-mod" "$CACHE/go-bin"
  echo "building interop/go (go-libp2p v0.49.0, kad-dht v0.42.2, $(go env GOVERSION)) ..."
  # -mod=readonly: go.sum is the pin; a build that would change it fails instead of fetching something else.
  (cd "$REPO_ROOT/interop/go" &&
    GOCACHE="$CACHE/go-build" GOMODCACHE="$CACHE/go-mod" GOFLAGS=-mod=readonly CGO_ENABLED=0 \
      go build -trimpath -o "$out" .)
  echo "go build: $((SECONDS - start)) s"
  install_bin "$out" chiral-go-node go
}

for w in "${which[@]}"; do
  case "$w" in
    rust) build_rust ;;
    go) build_go ;;
    *) echo "usage: $0 [rust] [go]" >&2; exit 2 ;;
  esac
done
