#!/usr/bin/env bash
# The README's test command: installs what moec needs, builds it, and runs
# every test (lit/FileCheck, GoogleTest, PyTorch parity, sharding, fuzzers)
# through CTest; then builds it again with AddressSanitizer and
# UndefinedBehaviorSanitizer (./build-sanitized) and runs the suite there,
# the sweeps over the models that cover every op (test/CMakeLists.txt).
# MOEC_TEST_SANITIZED=0 skips the second run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
sanitized="${MOEC_SANITIZED_BUILD_DIR:-$root/build-sanitized}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
(cd "$build" && ctest --output-on-failure -j "$(nproc)")

if [ "${MOEC_TEST_SANITIZED:-1}" != 0 ]; then
  echo "== the suite again, under ASan and UBSan ($sanitized)"
  MOEC_BUILD_DIR="$sanitized" "$root/scripts/build.sh" -DMOEC_ENABLE_SANITIZERS=ON
  cd "$sanitized"
  ctest --output-on-failure -j "$(nproc)"
fi
