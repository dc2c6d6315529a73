#!/usr/bin/env bash
# Configures (Release with assertions, Ninja, ccache) and builds moec into
# ./build, or into $MOEC_BUILD_DIR. Extra arguments go to CMake.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build"
