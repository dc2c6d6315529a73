#!/usr/bin/env bash
# Prepares, on the build machine, what scripts/gpu-check.sh runs on a GPU
# machine that has no LLVM/MLIR (so no moec): moe-run and plans compiled
# with --target=cuda (fp32, and bf16: --precision=bf16; some with
# --fusion=all) and the layer benchmark, in ./gpu-bundle, and that
# folder compressed, with the decompressor, in ./gpu-carry (both
# git-ignored; carry gpu-carry to the GPU machine). Usage: scripts/gpu-prepare.sh [sm_90|sm_80|...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
arch="${1:-sm_90}"
bundle="$root/gpu-bundle"

cmake --build "$build" --target moec moe-run moe-inspect moe_layer_bench collective_bench \
    cuda-runtime-tests >/dev/null
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/plans" "$bundle/bench"
cp "$build/bin/moe-run" "$build/bin/moe-inspect" "$build/bin/collective_bench" "$build/bench/moe_layer_bench" \
    "$build/test/unit/cuda-runtime-tests" "$bundle/bin/"
# moe-run's GEMM library, Debian's oneDNN, which the GPU machine lacks, and
# the OpenCL loader it links (gpu-check.sh puts lib/ on LD_LIBRARY_PATH).
mkdir -p "$bundle/lib"
ldd "$build/bin/moe-run" | awk '/libdnnl|libOpenCL/ {print $3}' | xargs -r cp -L -t "$bundle/lib/"
export MOEC_CACHE_DIR="${MOEC_CACHE_DIR:-$build/kernel-cache}"
# The parity models, as the device comparison compiles them.
python3 "$root/test/tools/Inputs/cuda_plans.py" "$build/bin" "$bundle/plans" "$arch" \
    "$root/models/tiny-*.yaml" "$root/test/parity/hf/*.json"
mkdir -p "$bundle/plans-bf16"
python3 "$root/test/tools/Inputs/cuda_plans.py" --precision bf16 "$build/bin" \
    "$bundle/plans-bf16" "$arch" "$root/models/tiny-*.yaml" "$root/test/parity/hf/*.json"
# Dense GEMMs as cuBLASLt calls (--gemm=cublaslt): a few parity models, and
# the demo in both precisions to time against the generated GEMMs.
mkdir -p "$bundle/plans-cublaslt"
python3 "$root/test/tools/Inputs/cuda_plans.py" --gemm cublaslt "$build/bin" \
    "$bundle/plans-cublaslt" "$arch" "$root/models/tiny-topk.yaml" \
    "$root/models/tiny-qwen2-shared.yaml" "$root/test/parity/hf/*.json"
# Fusion (moec --fusion=all): parity on a model of every router kind, and
# the demo, the layers and OLMoE fused, to time against their unfused plans.
mkdir -p "$bundle/plans-fused"
python3 "$root/test/tools/Inputs/cuda_plans.py" --fusion all "$build/bin" "$bundle/plans-fused" \
    "$arch" "$root/models/tiny-topk.yaml" "$root/models/tiny-noaux-sigmoid.yaml" \
    "$root/models/tiny-dense-to-sparse.yaml" "$root/models/tiny-top-p.yaml" \
    "$root/models/tiny-prototype.yaml" "$root/test/parity/hf/olmoe.json"
"$build/bin/moec" "$root/models/demo-kjv.yaml" --target=cuda --gpu-arch="$arch" --fusion=all \
    -o "$bundle/demo-kjv-fused.moeb"
for precision in fp32 bf16; do
  for gemm in generated cublaslt; do
    suffix=""; [ "$precision" = fp32 ] || suffix="-$precision"
    [ "$gemm" = generated ] || suffix+="-$gemm"
    "$build/bin/moec" "$root/models/demo-kjv.yaml" --target=cuda --gpu-arch="$arch" \
        --precision="$precision" --gemm="$gemm" -o "$bundle/demo-kjv$suffix.moeb"
  done
done
"$build/bin/moec" "$root/bench/moe_layer.mlir" --target=cuda --gpu-arch="$arch" \
    -o "$bundle/bench/layer.moeb"
# The same layer for the machine's CPU host (the cpu device), fp32 and bf16.
for precision in fp32 bf16; do
  "$build/bin/moec" "$root/bench/moe_layer.mlir" --precision="$precision" \
      -o "$bundle/bench/layer-cpu-$precision.moeb"
done
# The issue's layer shapes, 16384 tokens: Mixtral-8x7B's (d 4096, 8 experts
# of 14336, top-2) and a DeepSeek-style one (d 2048, 64 experts of 1408,
# top-6); one line each in layers.txt: name tokens hidden experts width k.
printf '%s\n' "mixtral 16384 4096 8 14336 2" "deepseek 16384 2048 64 1408 6" >"$bundle/bench/layers.txt"
while read -r name tokens hidden experts width k; do
  python3 "$root/bench/make_layer.py" --tokens "$tokens" --hidden "$hidden" --experts "$experts" \
      --width "$width" --top-k "$k" >"$bundle/bench/$name.mlir"
  for precision in fp32 bf16; do
    suffix=""; [ "$precision" = fp32 ] || suffix="-$precision"
    "$build/bin/moec" "$bundle/bench/$name.mlir" --target=cuda --gpu-arch="$arch" \
        --precision="$precision" -o "$bundle/bench/$name$suffix.moeb"
  done
  # The bf16 layer on the staged tile too (moec --bf16-tile=staged): the
  # check times it beside the default, pipelined one.
  "$build/bin/moec" "$bundle/bench/$name.mlir" --target=cuda --gpu-arch="$arch" \
      --precision=bf16 --bf16-tile=staged -o "$bundle/bench/$name-bf16-staged.moeb"
  # Every fusion strategy, for the table of time and launches per strategy.
  for strategy in router dispatch expert moe all; do
    "$build/bin/moec" "$bundle/bench/$name.mlir" --target=cuda --gpu-arch="$arch" \
        --precision=bf16 --fusion="$strategy" -o "$bundle/bench/$name-bf16-$strategy.moeb"
  done
done <"$bundle/bench/layers.txt"
# The whole-model benchmark: OLMoE-1B-7B's shapes with 4 of its 16 layers,
# batch 8 x 2048, AdamW, the router's aux loss on, bf16 products.
"$build/bin/moec" "$root/models/olmoe-1b-7b.yaml" --set num_layers=4 --batch 8 --seq-len 2048 \
    --target=cuda --gpu-arch="$arch" --precision=bf16 -o "$bundle/bench/olmoe4-bf16.moeb"
for strategy in moe all; do
  "$build/bin/moec" "$root/models/olmoe-1b-7b.yaml" --set num_layers=4 --batch 8 --seq-len 2048 \
      --target=cuda --gpu-arch="$arch" --precision=bf16 --fusion="$strategy" \
      -o "$bundle/bench/olmoe4-bf16-$strategy.moeb"
done
# The cost model's step times for the plans that gpu-check.sh's fusion
# section times (the layers under every strategy, OLMoE's 4 layers), on the
# shipped description of each GPU the machine may have: its table shows
# them beside the measured ones (docs/design/cost-model.md).
# A plan the model cannot cost is left out (with a warning), not the bundle.
for cluster in 8xH200 8xH100-SXM 8xB200; do
  predicted="$bundle/bench/predicted-$cluster.txt"
  : >"$predicted"
  for plan in "$bundle"/bench/{mixtral,deepseek,olmoe4}-bf16*.moeb; do
    ms="$("$build/bin/moec" cost "$plan" --cluster "$root/clusters/$cluster.yaml" |
        awk '/ ms per run/ && !found {print $3; found = 1}')" ||
        { echo "gpu-prepare: moec cost $plan failed; no prediction for it" >&2; continue; }
    echo "$(basename "$plan" .moeb) $ms" >>"$predicted"
  done
done
# Plans carry PTX and source beside each cubin, and the plans of one
# model in several variants share most kernels: zstd with a long window
# finds the repeats across files (gzip's 32 KiB window cannot), so the
# bundle travels in about a fortieth of its size. The GPU machine may lack
# zstd: its binary and the libraries it links travel beside the archive
# (gpu-check.sh unpacks it).
carry="$root/gpu-carry"
rm -rf "$carry" "$root/gpu-bundle.tgz"
mkdir -p "$carry"
zstd_bin="$(command -v zstd)"
cp "$zstd_bin" "$carry/zstd"
ldd "$zstd_bin" | awk '/=> \// && !/libc\.so|ld-linux/ {print $3}' | xargs -r cp -L -t "$carry/"
tar -C "$root" -cf - gpu-bundle | "$zstd_bin" -q -T0 -19 --long=30 -o "$carry/gpu-bundle.tar.zst"
du -sh "$bundle" "$carry"
