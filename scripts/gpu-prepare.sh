#!/usr/bin/env bash
# Prepares, on the build machine, what scripts/gpu-check.sh runs on a GPU
# machine that has no LLVM/MLIR (so no moec): moe-run and plans compiled
# with --target=cuda and the layer benchmark, in ./gpu-bundle, and that
# folder compressed as ./gpu-bundle.tgz (both git-ignored; carry the
# archive to the GPU machine). Usage: scripts/gpu-prepare.sh [sm_90|sm_80|...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
arch="${1:-sm_90}"
bundle="$root/gpu-bundle"

cmake --build "$build" --target moec moe-run moe-inspect moe_layer_bench >/dev/null
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/plans" "$bundle/bench"
cp "$build/bin/moe-run" "$build/bin/moe-inspect" "$build/bench/moe_layer_bench" "$bundle/bin/"
export MOEC_CACHE_DIR="${MOEC_CACHE_DIR:-$build/kernel-cache}"
# The parity models, as the device comparison compiles them.
python3 "$root/test/tools/Inputs/cuda_plans.py" "$build/bin" "$bundle/plans" "$arch" \
    "$root/models/tiny-*.yaml" "$root/test/parity/hf/*.json"
"$build/bin/moec" "$root/models/demo-kjv.yaml" --target=cuda --gpu-arch="$arch" \
    -o "$bundle/demo-kjv.moeb"
"$build/bin/moec" "$root/bench/moe_layer.mlir" --target=cuda --gpu-arch="$arch" \
    -o "$bundle/bench/layer.moeb"
# Plans carry PTX and source beside each cubin: compressed, the bundle
# travels in a quarter of the space (gpu-check.sh unpacks it).
tar -C "$root" -czf "$root/gpu-bundle.tgz" gpu-bundle
du -sh "$bundle" "$root/gpu-bundle.tgz"
