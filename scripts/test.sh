#!/usr/bin/env bash
# The README's test command: installs what moec needs, builds it, and runs
# every test (lit/FileCheck, GoogleTest, PyTorch parity, sharding, fuzzers)
# through CTest; then builds the runtime again with AddressSanitizer and
# UndefinedBehaviorSanitizer (./build-sanitized) and runs its unit tests
# there. The fuzzers of the first run are sanitized either way.
# MOEC_TEST_SANITIZED=full builds everything sanitized and runs the whole
# suite there (the sweeps over the models that cover every op,
# test/CMakeLists.txt): about an hour more on 2 cores, more than CI allows
# beside the normal run. MOEC_TEST_SANITIZED=0 skips the second part.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
sanitized="${MOEC_SANITIZED_BUILD_DIR:-$root/build-sanitized}"
mode="${MOEC_TEST_SANITIZED:-runtime}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
(cd "$build" && ctest --output-on-failure -j "$(nproc)")

# The runtime reads what users hand it (plans, checkpoints, token files):
# its libraries, moe-run, moe-inspect and the unit tests that drive them.
runtime_targets=(moe-run moe-inspect runtime-tests device-tests cuda-emu-tests gradient-tests
                 cpu-math-tests cuda-runtime-tests)
runtime_tests='^(unit/(runtime|device|cuda-emu|gradient|cpu-math|cuda-runtime)-tests/|runtime/links-no-llvm)'
case "$mode" in
  0) ;;
  runtime)
    echo "== the runtime's unit tests again, under ASan and UBSan ($sanitized)"
    cmake -S "$root" -B "$sanitized" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DMOEC_ENABLE_SANITIZERS=ON
    cmake --build "$sanitized" --target "${runtime_targets[@]}"
    cd "$sanitized"
    ctest --output-on-failure -j "$(nproc)" -R "$runtime_tests"
    ;;
  full)
    echo "== the suite again, under ASan and UBSan ($sanitized)"
    MOEC_BUILD_DIR="$sanitized" "$root/scripts/build.sh" -DMOEC_ENABLE_SANITIZERS=ON
    cd "$sanitized"
    ctest --output-on-failure -j "$(nproc)"
    ;;
  *) echo "MOEC_TEST_SANITIZED must be 0, runtime or full, not '$mode'" >&2; exit 2 ;;
esac
