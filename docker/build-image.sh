#!/usr/bin/env bash
# Builds the chiral-sim node image without any registry (docker import of a root filesystem holding this machine's
# Node binary, its shared libraries, nodes/ and the production node_modules nodes/ imports) and prints its tag,
# chiral-sim-node:<hash of the image files>. Idempotent: an existing tag is reused. Also builds chiral-sim-pause.
#
#   docker/build-image.sh                 # uses DOCKER_HOST like the docker CLI and testcontainers do
#   NODE_BIN=/path/to/node24 docker/build-image.sh
#
# Needs a Linux host of the engine's architecture; elsewhere use docker/Dockerfile (see docker/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_BIN=${NODE_BIN:-node_modules/.bin/node}
# testcontainers' reaper (Ryuk) is an image to pull; the build creates no containers, so it is not needed.
export TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-true}
exec "$NODE_BIN" sim/backends/docker-image.ts
