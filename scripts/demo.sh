#!/usr/bin/env bash
# The README's main command: installs what moec needs, builds it, and runs the
# main job. For now that is `moe-opt` reading, verifying and printing a
# Mixtral-style MoE layer; later it compiles and trains a model from models/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
"$build/bin/moe-opt" "$root/test/dialect/moe/routing/topk-softmax-mixtral.mlir"
