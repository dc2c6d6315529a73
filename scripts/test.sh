#!/usr/bin/env bash
# The README's test command: installs what moec needs, builds it, and runs
# every test (lit/FileCheck, GoogleTest, PyTorch parity) through CTest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j "$(nproc)"
